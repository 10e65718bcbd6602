"""VM threads, channels and locks on one shared Runtime.

Every VM thread is a host thread running the interpreter on the same
Runtime: same modules, globals, meter and output.  What is shared and how it
is guarded (the locking order, outermost first -- a thread holding one of
these never waits for one above it):

1. ``ImportManager._lock``   module records and the import wait-for map
2. ``ThreadManager._lock``   thread table, lock owners, the wait-for graph
3. ``Runtime.atomic_lock``   atomic_add / cas on module globals
4. ``Output._lock``          one print is one write, never interleaved
5. ``compile._COMPILE_LOCK`` compiling a function to closures (once)

Plain ``gload``/``gstore`` are single list operations and so individually
atomic, but a read-modify-write of a global from two threads is a race: that
is what ``examples/racy_counter.nbc`` shows and ``nbcvm stress`` catches.

Deadlocks: before a thread blocks on an NBC lock or a join it records what it
waits for; the wait-for graph (thread -> lock -> owner thread, or thread ->
joined thread) is followed, and a path back to the waiting thread is reported
as a ThreadError naming every thread and lock in the cycle, instead of
hanging.  Every wait also has a timeout (default 5 s) -> TimeoutError.
"""

from __future__ import annotations

import itertools
import sys
import threading
import time
from collections import deque
from typing import Any, Callable

from nbcvm.errors import LimitExceeded, VMError

DEFAULT_TIMEOUT = 5.0
POLL = 0.05  # seconds between deadlock/deadline re-checks while waiting
CANCEL_WAIT = 5.0  # seconds a cancelled run waits for its threads to unwind


def _timeout(v: Any) -> float:
    if v is None:
        return DEFAULT_TIMEOUT
    if type(v) not in (int, float) or v < 0:
        raise VMError("TypeError", f"timeout must be a non-negative number of seconds or nil, got {v!r}")
    return float(v)


class VMThread:
    """A handle to a VM thread; ``join`` gives its result or raises its error."""

    __slots__ = ("id", "name", "host", "result", "error", "done", "ident", "__weakref__")

    def __init__(self, tid: int, name: str):
        self.id, self.name = tid, name
        self.host: threading.Thread | None = None
        self.result: Any = None
        self.error: VMError | None = None
        self.done = threading.Event()
        self.ident: int | None = None

    def __repr__(self) -> str:
        return f"<thread {self.id} {self.name}>"


class Channel:
    """A bounded FIFO of NBC values; closing lets receivers drain, then report closed."""

    __slots__ = ("id", "cap", "items", "closed", "cond", "__weakref__")

    def __init__(self, cid: int, cap: int):
        self.id, self.cap = cid, max(1, cap)
        self.items: deque = deque()
        self.closed = False
        self.cond = threading.Condition(threading.Lock())


class VMLock:
    """An NBC lock: owned by one VM thread at a time (not re-entrant)."""

    __slots__ = ("id", "lock", "owner", "waits", "contended", "wait_seconds", "__weakref__")

    def __init__(self, lid: int):
        self.id = lid
        self.lock = threading.Lock()
        self.owner: int | None = None  # VM thread id
        self.waits = 0
        self.contended = 0
        self.wait_seconds = 0.0


class ThreadManager:
    """The runtime's thread table, locks and wait-for graph."""

    def __init__(self, runtime: Any):
        self.rt = runtime
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._cids = itertools.count(1)
        self.threads: dict[int, VMThread] = {}
        self.by_ident: dict[int, int] = {threading.get_ident(): 0}  # host ident -> VM thread id
        self.waiting: dict[int, tuple[str, Any]] = {}  # VM thread id -> ("lock", VMLock) | ("join", VMThread)
        self.live = 0
        self.started = 0
        self.lock_stats = {"acquires": 0, "contended": 0, "wait_seconds": 0.0}
        self.held: dict[int, list[VMLock]] = {}  # VM thread id -> locks it holds

    # -- identity --------------------------------------------------------------
    def current(self) -> int:
        ident = threading.get_ident()
        tid = self.by_ident.get(ident)
        if tid is None:  # a host thread driving the runtime (e.g. nbcvm stress): give it an id
            with self._lock:
                tid = self.by_ident.setdefault(ident, -next(self._ids))
        return tid

    # -- threads -----------------------------------------------------------------
    def spawn(self, fn: Any, args: list, execute: Callable, supervised: bool = False) -> VMThread:
        cap = self.rt.limits.max_threads
        with self._lock:
            if self.live >= cap:
                raise LimitExceeded("threads", self.live + 1, cap, "threads")
            t = VMThread(next(self._ids), fn.qualname)
            self.threads[t.id] = t
            self.live += 1
            self.started += 1

        def body() -> None:
            with self._lock:
                t.ident = threading.get_ident()
                self.by_ident[t.ident] = t.id
            try:
                t.result = self._run(t, fn, args, execute, supervised)
            except VMError as e:  # contained: re-raised at join, never kills the runtime
                t.error = e
                self.rt.errors.record("thread", f"thread {t.id} ({t.name})", e, "isolate", 1, "propagated",
                                      bool(e.details.get("injected")))
            except BaseException as e:  # noqa: BLE001 - halt or a host fault inside a thread
                from nbcvm.errors import ExitProgram, from_host

                t.error = (VMError("ThreadError", f"halt inside thread {t.id} (only main may halt)")
                           if isinstance(e, ExitProgram) else from_host(e))
            finally:
                self.release_all(t.id)  # a thread that ends (or dies) holding locks lets them go
                self.rt.resources.end_thread(t.id)  # and what its scope owns is released
                with self._lock:
                    self.live -= 1
                    self.by_ident.pop(t.ident, None)
                    self.threads.pop(t.id, None)  # only NBC values keep a finished thread alive
                t.done.set()

        t.host = threading.Thread(target=body, name=f"nbc-{t.id}", daemon=True)
        t.host.start()
        return t

    def _run(self, t: VMThread, fn: Any, args: list, execute: Callable, supervised: bool) -> Any:
        """Run the thread body; a supervised thread is restarted after a failure, within budget."""
        h = self.rt.errors
        budget = h.policy.restart_budget if supervised else 0
        attempt = 0
        injected_any = False
        while True:
            attempt += 1
            try:
                if h.faults and h.faults.hit("thread"):
                    raise h.faults.fault("thread", f"start of thread {t.id}")
                v = execute(self.rt, fn, list(args))
            except VMError as e:
                injected_any = injected_any or bool(e.details.get("injected"))
                if not e.catchable or attempt > budget:
                    if injected_any:
                        e.details.setdefault("injected", True)
                    raise
                self.rt.resources.end_thread(t.id)  # a fresh start: release the failed run's scope
                continue
            if attempt > 1:
                h.record("thread", f"thread {t.id} ({t.name})", None, "isolate+restart", attempt, "recovered",
                         injected_any)
            return v

    def join(self, t: Any) -> Any:
        if not isinstance(t, VMThread):
            raise VMError("TypeError", f"join needs a thread handle, got {type(t).__name__}")
        me = self.current()
        if t.id == me:
            raise VMError("ThreadError", f"thread {me} cannot join itself")
        self._wait(me, ("join", t), lambda timeout: t.done.wait(timeout), float("inf"),
                   f"join of thread {t.id}")
        if t.error is not None:
            err = VMError(t.error.type_name, f"in thread {t.id} ({t.name}): {t.error.message}",
                          details={**t.error.details, "thread": t.id})
            err.traceback = list(t.error.traceback)  # the thread's own frames, then ours as we unwind
            raise err
        return t.result

    def wait_all(self, timeout: float = 10.0, on_poll: Callable[[], None] | None = None) -> list[VMThread]:
        """Wait for every VM thread to finish -- also threads started while waiting.

        Returns the ones still running when ``timeout`` seconds have passed.
        ``on_poll`` runs between short waits (the cancel path re-forces the
        meter with it).
        """
        end = time.monotonic() + timeout
        while True:
            with self._lock:
                running = [t for t in self.threads.values() if not t.done.is_set()]
            left = end - time.monotonic()
            if not running or left <= 0:
                return running
            if on_poll is not None:
                on_poll()
            running[0].done.wait(min(POLL, left) if on_poll is not None else left)

    def finish(self, grace: float, cancel: Callable[[str], None]) -> int:
        """At the end of a run: wait up to ``grace`` s, then cancel what still runs.

        Returns how many VM threads were cancelled.  A cancelled thread stops at its
        next tick or wait with an uncatchable ``Cancelled`` (its finally blocks do
        not run, its locks and handles are released as for any dying thread).
        """
        running = self.wait_all(grace)
        if not running:
            return 0
        why = (f"main returned and {len(running)} VM thread(s) were still running "
               f"after a grace of {grace:g}s")
        cancel(why)
        self.wait_all(CANCEL_WAIT, on_poll=lambda: cancel(why))
        return len(running)

    # -- locks -------------------------------------------------------------------
    def new_lock(self) -> VMLock:
        return VMLock(next(self._cids))

    def acquire(self, lk: Any, timeout: Any) -> None:
        if not isinstance(lk, VMLock):
            raise VMError("TypeError", "acquire needs a lock")
        me = self.current()
        if lk.owner == me:
            raise VMError("ThreadError", f"thread {me} already holds lock {lk.id} (locks are not re-entrant)")
        limit = _timeout(timeout)
        self.lock_stats["acquires"] += 1
        if lk.lock.acquire(blocking=False):
            self._take(lk, me)
            return
        lk.contended += 1
        self.lock_stats["contended"] += 1
        t0 = time.perf_counter()
        try:
            self._wait(me, ("lock", lk), lambda tmo: lk.lock.acquire(timeout=tmo), limit, f"lock {lk.id}")
        finally:
            dt = time.perf_counter() - t0
            lk.wait_seconds += dt
            self.lock_stats["wait_seconds"] += dt
        self._take(lk, me)

    def _take(self, lk: VMLock, me: int) -> None:
        lk.owner = me
        with self._lock:
            self.held.setdefault(me, []).append(lk)

    def release_all(self, tid: int) -> None:
        with self._lock:
            locks = self.held.pop(tid, [])
        for lk in reversed(locks):
            if lk.owner == tid:
                lk.owner = None
                lk.lock.release()

    def release(self, lk: Any) -> None:
        if not isinstance(lk, VMLock):
            raise VMError("TypeError", "release needs a lock")
        me = self.current()
        if lk.owner != me:
            raise VMError("ThreadError", f"thread {me} releases lock {lk.id} it does not hold")
        lk.owner = None
        with self._lock:
            mine = self.held.get(me)
            if mine is not None and lk in mine:
                mine.remove(lk)
        lk.lock.release()

    def _wait(self, me: int, what: tuple[str, Any], attempt: Callable[[float], bool], limit: float,
              label: str) -> None:
        """Block on ``attempt`` in short slices, checking for deadlock and the deadline."""
        end = time.monotonic() + limit
        with self._lock:
            self.waiting[me] = what
        try:
            while True:
                cycle = self._cycle_from(me)
                if cycle:
                    raise VMError("ThreadError", "deadlock: " + cycle, details={"deadlock": cycle})
                left = end - time.monotonic()
                if left <= 0:
                    raise VMError("TimeoutError", f"{label} not available within {limit:g}s")
                if attempt(min(POLL, left)):
                    return
                self.rt.meter.check_deadline()
        finally:
            with self._lock:
                self.waiting.pop(me, None)

    def _owner_of(self, what: tuple[str, Any]) -> int | None:
        kind, obj = what
        if kind == "lock":
            return obj.owner
        return None if obj.done.is_set() else obj.id

    def _cycle_from(self, me: int) -> str | None:
        with self._lock:
            steps, cur, seen = [], me, set()
            while cur in self.waiting and cur not in seen:
                seen.add(cur)
                what = self.waiting[cur]
                owner = self._owner_of(what)
                label = f"lock {what[1].id}" if what[0] == "lock" else f"thread {what[1].id} to finish"
                steps.append(f"thread {cur} waits for {label}"
                             + (f" (held by thread {owner})" if what[0] == "lock" and owner is not None else ""))
                if owner is None:
                    return None
                if owner == me:
                    return "; ".join(steps)
                cur = owner
            return None

    # -- channels ----------------------------------------------------------------
    def new_channel(self, cap: int) -> Channel:
        return Channel(next(self._cids), cap)

    def _guarded(self, what: str, attempt: Callable[[], Any]) -> Any:
        """Channel operations under fault injection (or --retry-timeouts) go through retry."""
        h = self.rt.errors
        if not h.faults and not h.policy.retry_timeouts:
            return attempt()
        retry_own = h.policy.retry_timeouts

        def transient(e: BaseException) -> bool:
            return h.transient(e) or (retry_own and isinstance(e, VMError) and e.type_name == "TimeoutError")

        return h.retry("channel", what, attempt, transient)

    def send(self, ch: Any, v: Any, timeout: Any) -> None:
        return self._guarded(f"send on channel {getattr(ch, 'id', '?')}", lambda: self._send(ch, v, timeout))

    def recv(self, ch: Any, timeout: Any) -> tuple[Any, bool]:
        return self._guarded(f"recv on channel {getattr(ch, 'id', '?')}", lambda: self._recv(ch, timeout))

    def _send(self, ch: Any, v: Any, timeout: Any) -> None:
        if not isinstance(ch, Channel):
            raise VMError("TypeError", "send needs a channel")
        limit = _timeout(timeout)
        end = time.monotonic() + limit
        with ch.cond:
            while True:
                if ch.closed:
                    raise VMError("ThreadError", f"send on closed channel {ch.id}")
                if len(ch.items) < ch.cap:
                    ch.items.append(v)
                    ch.cond.notify_all()
                    return
                left = end - time.monotonic()
                if left <= 0:
                    raise VMError("TimeoutError", f"channel {ch.id} stayed full for {limit:g}s")
                ch.cond.wait(min(POLL, left))
                self.rt.meter.check_deadline()

    def _recv(self, ch: Any, timeout: Any) -> tuple[Any, bool]:
        if not isinstance(ch, Channel):
            raise VMError("TypeError", "recv needs a channel")
        limit = _timeout(timeout)
        end = time.monotonic() + limit
        with ch.cond:
            while True:
                if ch.items:
                    v = ch.items.popleft()
                    ch.cond.notify_all()
                    return v, True
                if ch.closed:
                    return None, False
                left = end - time.monotonic()
                if left <= 0:
                    raise VMError("TimeoutError", f"nothing received on channel {ch.id} in {limit:g}s")
                ch.cond.wait(min(POLL, left))
                self.rt.meter.check_deadline()

    def close(self, ch: Any) -> None:
        if not isinstance(ch, Channel):
            raise VMError("TypeError", "close needs a channel")
        with ch.cond:
            ch.closed = True
            ch.cond.notify_all()

    # -- diagnostics -------------------------------------------------------------
    def dump_stacks(self) -> dict[str, list[str]]:
        """Every host thread's NBC stack, read from the interpreter frames (no cost while running)."""
        out: dict[str, list[str]] = {}
        frames = sys._current_frames()
        for ident, top in frames.items():
            tid = self.by_ident.get(ident)
            name = f"thread {tid}" if tid is not None else f"host thread {ident}"
            stack: list[str] = []
            f = top
            while f is not None:
                if f.f_code.co_name == "execute" and "frames" in f.f_locals:
                    loc = f.f_locals
                    inner = [f"{x[0].qualname} (line {x[0].line_of(x[4] - 1)})" for x in loc.get("frames", [])]
                    fn, pc = loc.get("fn"), loc.get("pc", 0)
                    if fn is not None:
                        at = pc if isinstance(pc, int) and pc >= 0 else 0
                        inner.append(f"{fn.qualname} (line {fn.line_of(at)}, pc {at}: {fn.op_at(at)})")
                    stack = inner + stack
                f = f.f_back
            if stack:
                out[name] = stack
        return out
