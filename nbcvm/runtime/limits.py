"""Limits (plain frozen data) and the Meter that enforces them while running.

``Limits`` is what a host asks for; ``Meter`` is the mutable counter set one
Runtime uses, readable and adjustable from the host while a program runs
(``runtime.meter.usage()``, ``runtime.set_limit("max_steps", n)``).

Fuel is charged per straight-line run (see ``vm/compile.py``); the hot path
only decrements ``budget``.  When it goes negative, ``tick()`` folds the
consumed fuel into ``used``, checks every limit and refills the countdown with
at most ``CHECK_INTERVAL`` units -- so the deadline is checked every few
thousand instructions and fuel trips exactly when a run would pass the limit.
Running out raises ``LimitExceeded`` naming the limit, the amount used and
the maximum; NBC code cannot catch it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, fields, replace

from nbcvm.errors import Cancelled, LimitExceeded

CHECK_INTERVAL = 20_000  # instructions between deadline/hook checks (~1 ms)


@dataclass(frozen=True)
class Limits:
    """Sandbox limits; ``None`` means unlimited.  Defaults are safe for untrusted code."""

    max_steps: int | None = None  # instructions (fuel)
    max_depth: int = 100_000  # call frames
    timeout: float | None = None  # wall-clock seconds
    max_memory: int | None = 1 << 30  # bytes held by strings, lists, maps, tensors (VM-counted)
    max_output: int | None = 64 << 20  # bytes written to stdout
    max_threads: int = 64
    max_handles: int = 10_000
    memory_soft: int | None = None  # process RSS (bytes) at which the runtime cleans up
    memory_hard: int | None = None  # process RSS (bytes) past which allocations fail (ResourceError)

    def replace(self, **changes) -> "Limits":
        return replace(self, **changes)

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _cap(v: int | None) -> float:
    return float("inf") if v is None else v


class Meter:
    """Live counters and the limits in force for one Runtime."""

    def __init__(self, limits: Limits):
        self.limits = limits
        self.used = 0  # fuel consumed before the current countdown
        self.grant = 0
        self.budget = 0
        self._here = threading.local()  # per host thread: the pc a tick resumes at (``resume``)
        self.peak_depth = 0
        self.calls = 0  # NBC function calls started
        self.output_bytes = 0
        self.memory = 0
        self.started = time.perf_counter()
        self.deadline: float | None = None
        self.hooks: list = []  # callables(meter, fn, depth) run at each tick
        self.stacks: dict[int, list] = {}  # frame lists of running executions (memory roots)
        self.root_provider = None  # callable -> iterable of root containers (module globals)
        self.reconciles = 0
        self.max_depth = limits.max_depth
        self.mem_cap = _cap(limits.max_memory)  # charge_memory's test, for inlined charges (JIT)
        self.cancelled: str | None = None  # why the run was cancelled (set from another thread)
        self._cancel_event = threading.Event()
        self._refill()

    @property
    def resume(self) -> int:
        """The pc to resume at after a tick, set by the code that ran out of fuel.

        Per host thread: VM threads share the meter, and a pc written by one
        thread must never be read by another (it resumed another thread's frame
        at this one's pc: lost or repeated work under ``nbcvm stress``).  Only
        the out-of-fuel path touches it, never the hot loop.
        """
        return getattr(self._here, "pc", 0)

    @resume.setter
    def resume(self, pc: int) -> None:
        self._here.pc = pc

    @property
    def depth(self) -> int:
        """Frames held by outer executions on this host thread (nested runs): per thread too."""
        return getattr(self._here, "depth", 0)

    @depth.setter
    def depth(self, d: int) -> None:
        self._here.depth = d

    # -- host API --------------------------------------------------------------
    @property
    def steps(self) -> int:
        """Instructions executed (fuel used) so far, exactly."""
        return self.used + (self.grant - self.budget)

    def start_clock(self) -> None:
        self.started = time.perf_counter()
        t = self.limits.timeout
        self.deadline = None if t is None else self.started + t

    def set_limits(self, limits: Limits) -> None:
        """Raise or lower limits, also while a program runs (takes effect at the next tick)."""
        self.used = self.steps
        self.limits = limits
        self.max_depth = limits.max_depth
        self.mem_cap = _cap(limits.max_memory)  # charge_memory's test, for inlined charges (JIT)
        t = limits.timeout
        self.deadline = None if t is None else self.started + t
        self._refill()
        self.budget = min(self.budget, 0) if self._fuel_left() == 0 else self.budget

    def cancel(self, why: str) -> None:
        """Make every VM thread on this meter stop at its next tick or wait (Cancelled).

        Called from another host thread: forcing the countdown below zero sends
        the running code to ``tick`` within one straight-line run.  Call again to
        re-force it if a thread's own decrement raced with the store.
        """
        self.cancelled = why
        self._cancel_event.set()
        self.budget = -(1 << 40)

    def uncancel(self) -> None:
        """After the cancelled threads are gone: a fresh countdown for the next run."""
        if self.cancelled is not None:
            self.cancelled = None
            self._cancel_event.clear()
            self._refill()

    def usage(self) -> dict:
        return {"steps": self.steps, "peak_depth": self.peak_depth, "output_bytes": self.output_bytes,
                "memory": self.memory, "seconds": time.perf_counter() - self.started}

    # -- slow path ---------------------------------------------------------------
    def _fuel_left(self) -> int | None:
        cap = self.limits.max_steps
        return None if cap is None else max(0, cap - self.used)

    def _refill(self) -> None:
        left = self._fuel_left()
        self.grant = self.budget = CHECK_INTERVAL if left is None else min(CHECK_INTERVAL, left)

    def tick(self, fn=None, depth: int = 0) -> int:
        """Called when the countdown runs out; returns the pc to resume at."""
        if self.cancelled is not None:
            raise Cancelled(self.cancelled)
        self.used += self.grant - self.budget
        cap = self.limits.max_steps
        if cap is not None and self.used > cap:
            self.grant = self.budget = 0
            raise LimitExceeded("steps", self.used, cap, "instructions")
        self.check_deadline()
        for hook in self.hooks:
            hook(self, fn, depth)
        self._refill()
        return self.resume

    def check_deadline(self) -> None:
        if self.cancelled is not None:
            raise Cancelled(self.cancelled)
        if self.deadline is not None:
            now = time.perf_counter()
            if now > self.deadline:
                raise LimitExceeded("time", round(now - self.started, 3), self.limits.timeout, "s")

    def note_depth(self, d: int) -> None:
        if d > self.peak_depth:
            self.peak_depth = d

    def charge_output(self, n: int) -> None:
        self.output_bytes += n
        cap = self.limits.max_output
        if cap is not None and self.output_bytes > cap:
            raise LimitExceeded("output", self.output_bytes, cap, "bytes")

    def charge_memory(self, n: int, regs: list | None = None) -> None:
        """Count ``n`` bytes of VM data about to be made (strings, lists, maps, tensors).

        The count only grows on allocation; when it passes ``max_memory`` the
        data really held is measured from the roots (module globals, every live
        frame's registers, ``regs``) and the allocation fails only if what is
        held plus ``n`` is over the limit.
        """
        self.memory += n
        cap = self.limits.max_memory
        if cap is not None and self.memory > cap:
            held = self.measure(regs)
            self.reconciles += 1
            self.memory = held + n
            if self.memory > cap:
                self.memory = held
                raise LimitExceeded("memory", held + n, cap, "bytes")

    def measure(self, regs: list | None = None) -> int:
        """Bytes held by VM values reachable from the roots (an exact walk)."""
        from nbcvm.vm.values import held_bytes

        roots: list = [regs] if regs is not None else []
        if self.root_provider is not None:
            roots.extend(self.root_provider())
        for frames in list(self.stacks.values()):
            roots.extend(f[3] for f in list(frames))
        return held_bytes(roots)

    def sleep(self, seconds: float) -> None:
        """Sleep, cut short by the deadline or a cancel (both raise)."""
        if self.deadline is not None:
            left = self.deadline - time.perf_counter()
            if seconds > left:
                self._cancel_event.wait(max(0.0, left))
                self.check_deadline()
        if self._cancel_event.wait(seconds):
            raise Cancelled(self.cancelled or "cancelled")
