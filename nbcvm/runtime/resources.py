"""ResourceManager: every handle has a kind, a size, an owner scope and a creation site.

Handles the VM makes:

===========  ==================================  ===========================
kind         made by                             released by
===========  ==================================  ===========================
tensor       ``alloc SHAPE`` (explicit memory)   ``free``, or its scope ending
channel      ``chan``                            ``close``, or being collected
lock         ``newlock``                         being collected
thread       ``spawn``                           finishing (and being joined)
native       a native module (``register``)      its scope ending
===========  ==================================  ===========================

Scopes, innermost first: a *region* (``region`` ... ``endregion``; the
verifier proves regions are balanced in every function, so a region never
outlives its frame -- the frame scope), the VM thread, the runtime.
Everything a scope owns is released when it ends, also when an error unwinds
through it; cleanup callbacks run exactly once, in reverse order of creation,
and a failing callback does not stop the others (the first failure is raised
afterwards as a ResourceError).  Double free and use after free are clean NBC
ResourceErrors naming where the handle was made and freed.

Memory pressure (no background thread): every allocation adds to the VM's
count; every ``PRESSURE_EVERY`` bytes the process RSS is read with psutil.
Over ``Limits.memory_soft`` the runtime cleans up (gc, released regions) and
records an event; over ``Limits.memory_hard`` the allocation fails with a
catchable ResourceError and nothing is left half-made.
"""

from __future__ import annotations

import gc
import itertools
import threading
import time
import weakref
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any, Callable

from nbcvm.errors import LimitExceeded, VMError
from nbcvm.vm.values import Site, site_str  # noqa: F401 - defined beside the VM values, used here too

PRESSURE_EVERY = 1 << 20  # bytes allocated between RSS readings

class Handle:
    """A VM resource.  NBC code holds the Handle; ``get()`` refuses after release."""

    __slots__ = ("id", "kind", "size", "site", "scope", "value", "released_at", "cleanup", "__weakref__")

    def __init__(self, hid: int, kind: str, size: int, site: Site, value: Any,
                 cleanup: Callable[[], None] | None):
        self.id, self.kind, self.size, self.site = hid, kind, size, site
        self.value = value
        self.scope: Scope | None = None
        self.released_at: str | None = None
        self.cleanup = cleanup

    def get(self) -> Any:
        if self.released_at is not None:
            raise VMError("ResourceError", f"use after free of {self.kind} handle #{self.id} "
                          f"(made at {site_str(self.site)}, freed at {self.released_at})")
        return self.value

    def __repr__(self) -> str:
        state = "freed" if self.released_at else "live"
        return f"<{self.kind} handle #{self.id} {state}>"


@dataclass
class Scope:
    kind: str  # region | thread | runtime
    frame: int = 0  # id() of the frame's registers, for regions
    pc: int = 0  # where the region was opened
    handles: dict[int, Handle] = field(default_factory=dict)  # by id, in creation order


@dataclass(frozen=True)
class ResourceEvent:
    t: float
    kind: str  # soft-limit | hard-limit | region-error | cleanup-error
    detail: str

    def to_dict(self) -> dict:
        return {"t": round(self.t, 6), "kind": self.kind, "detail": self.detail}


class ResourceManager:
    def __init__(self, runtime: Any):
        self.rt = runtime
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self.live: dict[int, Handle] = {}
        # ids of weak handles whose value was collected.  The finalizer may run inside
        # any allocation -- also while this thread holds _lock -- so it only appends
        # here (deque.append is atomic) and the ids are reaped under the lock later.
        self._dead: deque[int] = deque()
        self.created: Counter[str] = Counter()
        self.released: Counter[str] = Counter()
        self._main_ident = threading.get_ident()
        self.runtime_scope = Scope("runtime")
        self.thread_scopes: dict[int, Scope] = {}
        self.regions: dict[int, list[Scope]] = {}  # host thread ident -> open regions, innermost last
        self.events: list[ResourceEvent] = []
        self._since_check = 0
        self.t0 = time.perf_counter()

    # -- making and releasing ----------------------------------------------------
    def register(self, kind: str, value: Any, size: int, site: Site, *,
                 cleanup: Callable[[], None] | None = None, weak: bool = False) -> Handle:
        """Record a new handle owned by the innermost scope (weak: released when collected)."""
        scope = None if weak else self._scope()
        with self._lock:
            self._reap()
            live = self.live
            cap = self.rt.limits.max_handles
            if cap is not None and len(live) >= cap:
                raise LimitExceeded("handles", len(live) + 1, cap, "handles")
            h = Handle(next(self._ids), kind, size, site, None if weak else value, cleanup)
            live[h.id] = h
            self.created[kind] += 1
            if scope is not None:
                h.scope = scope
                scope.handles[h.id] = h
        if weak:
            weakref.finalize(value, self._collected, h.id)
        return h

    def _collected(self, hid: int) -> None:
        self._dead.append(hid)  # no lock here: see __init__

    def _reap(self) -> None:
        """Release the weak handles that were collected (call with _lock held)."""
        dead = self._dead
        while dead:
            h = self.live.pop(dead.popleft(), None)
            if h is not None:
                h.released_at = "garbage collection"
                self.released[h.kind] += 1

    def free(self, h: Any, where: str) -> None:
        if not isinstance(h, Handle):
            raise VMError("TypeError", f"free needs a handle, got {type(h).__name__}")
        if h.released_at is not None:
            raise VMError("ResourceError", f"double free of {h.kind} handle #{h.id} (made at "
                          f"{site_str(h.site)}, already freed at {h.released_at})")
        self._release(h, where)
        if h.scope is not None:
            h.scope.handles.pop(h.id, None)

    def _release(self, h: Handle, where: str) -> None:
        with self._lock:
            self._reap()
            if h.released_at is not None:
                return
            h.released_at = where
            self.live.pop(h.id, None)
            self.released[h.kind] += 1
            if h.kind == "tensor" and h.value is not None:
                self.rt.meter.memory = max(0, self.rt.meter.memory - h.size)
            h.value = None
        if h.cleanup is not None:
            cb, h.cleanup = h.cleanup, None  # exactly once
            cb()

    # -- scopes ------------------------------------------------------------------
    def _scope(self) -> Scope:
        ident = threading.get_ident()
        regions = self.regions.get(ident)
        if regions:
            return regions[-1]
        if ident == self._main_ident:
            return self.runtime_scope
        tid = self.rt.threads.by_ident.get(ident, 0)
        if tid == 0:
            return self.runtime_scope
        scope = self.thread_scopes.get(tid)
        if scope is None:
            scope = self.thread_scopes[tid] = Scope("thread")
        return scope

    def open_region(self, frame: int, pc: int) -> None:
        self.regions.setdefault(threading.get_ident(), []).append(Scope("region", frame, pc))

    def close_region(self) -> None:
        regions = self.regions.get(threading.get_ident())
        if not regions:
            raise VMError("ResourceError", "endregion without an open region")
        self.close_scope(regions.pop(), "end of region")

    def unwind(self, frame: int, lo: int = 0, hi: int = 1 << 62) -> None:
        """Close this thread's regions opened by ``frame`` at a pc in [lo, hi) (error unwinding)."""
        regions = self.regions.get(threading.get_ident())
        while regions and regions[-1].frame == frame and lo <= regions[-1].pc < hi:
            self.close_scope(regions.pop(), "error unwinding its region", raise_errors=False)

    def close_scope(self, scope: Scope, why: str, raise_errors: bool = True) -> None:
        """Release everything the scope owns, newest first; every callback runs once."""
        errors: list[str] = []
        handles, scope.handles = scope.handles, {}
        for h in reversed(list(handles.values())):
            try:
                self._release(h, why)
            except Exception as e:  # noqa: BLE001 - one failing cleanup must not stop the rest
                msg = e.message if isinstance(e, VMError) else f"{type(e).__name__}: {e}"
                errors.append(f"{h.kind} handle #{h.id}: {msg}")
                self.events.append(ResourceEvent(self._now(), "cleanup-error", errors[-1]))
        if errors and raise_errors:
            raise VMError("ResourceError", f"{len(errors)} cleanup(s) failed at {why}: {errors[0]}")

    def end_thread(self, tid: int) -> None:
        scope = self.thread_scopes.pop(tid, None)
        self.regions.pop(threading.get_ident(), None)
        if scope is not None:
            self.close_scope(scope, f"end of thread {tid}", raise_errors=False)

    def end_runtime(self) -> None:
        for regions in list(self.regions.values()):
            while regions:
                self.close_scope(regions.pop(), "end of run", raise_errors=False)
        self.close_scope(self.runtime_scope, "end of run", raise_errors=False)

    # -- pressure ----------------------------------------------------------------
    def charge(self, nbytes: int, regs: list | None = None) -> None:
        """Account an allocation: VM memory limit, then process memory pressure."""
        handler = self.rt.errors
        if handler.faults:  # injected allocation faults are transient: clean up and retry
            def attempt() -> None:
                self._charge(nbytes, regs)

            handler.retry("alloc", f"alloc of {nbytes} bytes", attempt, handler.transient)
            return
        self._charge(nbytes, regs)

    def _charge(self, nbytes: int, regs: list | None) -> None:
        self.rt.meter.charge_memory(nbytes, regs)
        self._since_check += nbytes
        lim = self.rt.limits
        if (lim.memory_soft is None and lim.memory_hard is None) or self._since_check < PRESSURE_EVERY:
            return
        self._since_check = 0
        rss = _rss()
        if lim.memory_soft is not None and rss > lim.memory_soft:
            gc.collect()
            after = _rss()
            self.events.append(ResourceEvent(self._now(), "soft-limit",
                                             f"rss {rss} > soft {lim.memory_soft}: collected, now {after}"))
            rss = after
        if lim.memory_hard is not None and rss + nbytes > lim.memory_hard:
            self.events.append(ResourceEvent(self._now(), "hard-limit", f"rss {rss} + {nbytes} > {lim.memory_hard}"))
            raise VMError("ResourceError", f"memory pressure: process uses {rss} bytes, allocating {nbytes} "
                          f"more would pass the hard limit of {lim.memory_hard}")

    def _now(self) -> float:
        return time.perf_counter() - self.t0

    # -- reporting ---------------------------------------------------------------
    def snapshot(self) -> dict:
        """Live handles by kind (count, bytes) and by creation site."""
        with self._lock:
            self._reap()
            live = list(self.live.values())
        kinds: dict[str, list[int]] = {}
        sites: dict[str, list] = {}
        for h in live:
            k = kinds.setdefault(h.kind, [0, 0])
            k[0] += 1
            k[1] += h.size
            s = sites.setdefault(site_str(h.site), [0, 0, h.kind, h.site])
            s[0] += 1
            s[1] += h.size
        return {"kinds": {k: {"count": v[0], "bytes": v[1]} for k, v in kinds.items()},
                "sites": {k: {"count": v[0], "bytes": v[1], "kind": v[2], "module": v[3][0],
                              "function": f"{v[3][0]}.{v[3][1]}", "file": v[3][2], "line": v[3][3]}
                          for k, v in sites.items()},
                "live": len(live), "bytes": sum(h.size for h in live)}


def _rss() -> int:
    import psutil

    return psutil.Process().memory_info().rss
