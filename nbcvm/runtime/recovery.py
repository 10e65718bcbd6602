"""Error classification, recovery strategies and fault injection.

``classify(err)`` reads what the error type table says (category, severity,
recoverable) plus whether this occurrence is *transient* -- a host timeout,
an interrupted call, or an injected fault.  ``RuntimeErrorHandler`` picks a
strategy per class, configurable through ``RecoveryPolicy``:

==============  ===========================================================
strategy        applied to
==============  ===========================================================
retry           transient faults of native calls, allocations and channel
                operations: bounded attempts, exponential backoff with jitter
fallback        a JIT compile failure -> the interpreter, remembered per
                function; a native module's accelerated path -> its portable
                path; numba missing -> the interpreter
isolate         a failed VM thread never takes the runtime down; ``supervise``
                restarts it within ``restart_budget``
circuit-break   a native function failing ``breaker_threshold`` times in a row
                fails fast for ``breaker_cooldown`` seconds, then is tried again
abort           everything else: the error reaches the user with its full
                NBC traceback -- never swallowed
==============  ===========================================================

Every decision is an ``ErrorEvent`` (what failed, class, strategy, attempts,
outcome) kept on the runtime for reports and the monitor.  Recovery is
installed by *wrapping* native functions when a module loads, so a program
that never fails pays nothing in the interpreter loop.

Fault injection (``--inject-faults native:0.05,alloc:0.01,channel:0.02,thread:0.1,jit:1.0``)
raises seeded, transient faults at those points; the report counts per class
what was injected, recovered and propagated.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable

from nbcvm.errors import UsageError, VMError, from_host

FAULT_POINTS = ("native", "alloc", "channel", "thread", "jit")
TRANSIENT_HOST = (TimeoutError, InterruptedError, BlockingIOError, ConnectionError)


@dataclass(frozen=True)
class RecoveryPolicy:
    retry_attempts: int = 3  # extra attempts after the first failure
    backoff_base: float = 0.001  # seconds; doubles per attempt
    backoff_max: float = 0.05
    jitter: float = 0.5  # +- fraction of the delay
    restart_budget: int = 3  # supervised thread restarts
    breaker_threshold: int = 5
    breaker_cooldown: float = 1.0
    retry_timeouts: bool = False  # also retry a channel operation whose own timeout expired


@dataclass(frozen=True)
class ErrorEvent:
    t: float
    point: str  # native | alloc | channel | thread | jit | program
    what: str  # e.g. math.sqrt, thread 3
    error: str  # type: message
    strategy: str  # retry | fallback | isolate | circuit-break | abort
    attempts: int
    outcome: str  # recovered | propagated | fail-fast
    injected: bool

    def to_dict(self) -> dict:
        return {"t": round(self.t, 6), "point": self.point, "what": self.what, "error": self.error,
                "strategy": self.strategy, "attempts": self.attempts, "outcome": self.outcome,
                "injected": self.injected}


@dataclass(frozen=True)
class Classification:
    type: str
    code: int
    category: str
    severity: str
    recoverable: bool
    transient: bool


def classify(err: VMError) -> Classification:
    t = err.etype
    return Classification(t.name, t.code, t.category, t.severity, t.recoverable,
                          bool(err.details.get("transient")))


def parse_fault_spec(spec: str) -> dict[str, float]:
    """``native:0.05,alloc:0.01`` -> {point: probability}; UsageError when malformed."""
    out: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        point, sep, prob = part.partition(":")
        if not sep or point not in FAULT_POINTS:
            raise UsageError(f"bad fault spec '{part}': use POINT:PROBABILITY with POINT one of "
                             f"{', '.join(FAULT_POINTS)}")
        try:
            p = float(prob)
        except ValueError:
            raise UsageError(f"bad fault probability '{prob}' in '{part}'") from None
        if not 0.0 <= p <= 1.0:
            raise UsageError(f"fault probability must be in 0..1, got {p}")
        out[point] = p
    return out


class FaultInjector:
    """Seeded, thread-safe coin flips per injection point."""

    def __init__(self, spec: dict[str, float], seed: int):
        self.spec = spec
        self._rng = random.Random(seed)
        self._lock = threading.Lock()

    def __bool__(self) -> bool:
        return bool(self.spec)

    def hit(self, point: str) -> bool:
        p = self.spec.get(point, 0.0)
        if p <= 0.0:
            return False
        with self._lock:
            return self._rng.random() < p

    def fault(self, point: str, what: str) -> VMError:
        name = {"native": "NativeError", "alloc": "ResourceError", "channel": "TimeoutError",
                "thread": "ThreadError", "jit": "NativeError"}[point]
        return VMError(name, f"injected {point} fault in {what}", details={"transient": True, "injected": True})


@dataclass
class _Breaker:
    failures: int = 0
    opened_at: float | None = None


class RuntimeErrorHandler:
    def __init__(self, runtime: Any, policy: RecoveryPolicy | None = None,
                 faults: dict[str, float] | None = None, seed: int = 0):
        self.rt = runtime
        self.policy = policy or RecoveryPolicy()
        self.faults = FaultInjector(faults or {}, seed)
        self._jitter = random.Random(seed ^ 0x5EED)
        self.events: list[ErrorEvent] = []
        self._lock = threading.Lock()
        self._breakers: dict[str, _Breaker] = {}
        self.t0 = time.perf_counter()
        self.counts: dict[str, Counter] = {p: Counter() for p in FAULT_POINTS}

    # -- bookkeeping ---------------------------------------------------------------
    def record(self, point: str, what: str, err: VMError | None, strategy: str, attempts: int,
               outcome: str, injected: bool) -> None:
        ev = ErrorEvent(time.perf_counter() - self.t0, point, what,
                        f"{err.type_name}: {err.message}" if err else "", strategy, attempts, outcome, injected)
        with self._lock:
            self.events.append(ev)
            if injected:
                c = self.counts[point]
                c["injected"] += 1
                c[outcome] += 1

    def note_injected_outcome(self, point: str, outcome: str) -> None:
        with self._lock:
            self.counts[point][outcome] += 1

    def _delay(self, attempt: int) -> float:
        p = self.policy
        d = min(p.backoff_max, p.backoff_base * (2 ** attempt))
        with self._lock:
            return max(0.0, d * (1 + p.jitter * (2 * self._jitter.random() - 1)))

    # -- strategies ----------------------------------------------------------------
    def retry(self, point: str, what: str, attempt: Callable[[], Any], is_transient: Callable[[BaseException], bool]):
        """Run ``attempt``; retry transient failures with backoff; record what happened."""
        tries = 0
        injected_any = False
        while True:
            tries += 1
            try:
                if self.faults and self.faults.hit(point):
                    raise self.faults.fault(point, what)
                v = attempt()
            except BaseException as e:  # noqa: BLE001 - classified below, re-raised unless transient
                err = e if isinstance(e, VMError) else from_host(e, what)
                injected = bool(isinstance(e, VMError) and e.details.get("injected"))
                injected_any = injected_any or injected
                if not is_transient(e) or tries > self.policy.retry_attempts:
                    if injected_any or is_transient(e):
                        self.record(point, what, err, "retry", tries, "propagated", injected_any)
                    raise
                time.sleep(self._delay(tries - 1))
                continue
            if tries > 1:
                self.record(point, what, None, "retry", tries, "recovered", injected_any)
            return v

    @staticmethod
    def transient(e: BaseException) -> bool:
        if isinstance(e, VMError):
            return bool(e.details.get("transient"))
        return isinstance(e, TRANSIENT_HOST)

    def guard_native(self, qualname: str, fn: Callable) -> Callable:
        """Wrap a native function with injection, retry and a circuit breaker."""
        br = self._breakers.setdefault(qualname, _Breaker())
        pol = self.policy

        def guarded(*args: Any) -> Any:
            if br.opened_at is not None:
                if time.perf_counter() - br.opened_at < pol.breaker_cooldown:
                    err = VMError("NativeError", f"circuit open for {qualname}: {br.failures} failures in a row; "
                                  f"retrying after {pol.breaker_cooldown:g}s")
                    self.record("native", qualname, err, "circuit-break", 0, "fail-fast", False)
                    raise err
                br.opened_at = None  # half-open: one trial call
            try:
                v = self.retry("native", qualname, lambda: fn(*args), self.transient)
            except BaseException:
                br.failures += 1
                if br.failures >= pol.breaker_threshold and br.opened_at is None:
                    br.opened_at = time.perf_counter()
                raise
            br.failures = 0
            return v

        guarded.__wrapped__ = fn  # type: ignore[attr-defined]
        return guarded

    def fallback(self, point: str, what: str, err: BaseException, to: str) -> None:
        """Record a fallback (JIT -> interpreter, accelerated -> portable)."""
        e = err if isinstance(err, VMError) else from_host(err, what)
        self.record(point, what, e, f"fallback to {to}", 1, "recovered",
                    bool(isinstance(err, VMError) and err.details.get("injected")))

    # -- reporting -------------------------------------------------------------------
    def fault_table(self) -> list[dict]:
        rows = []
        for point in FAULT_POINTS:
            c = self.counts[point]
            if self.faults.spec.get(point) is None and not c:
                continue
            inj = c["injected"]
            rows.append({"point": point, "probability": self.faults.spec.get(point, 0.0), "injected": inj,
                         "recovered": c["recovered"], "propagated": c["propagated"],
                         "recovery_rate": (c["recovered"] / inj) if inj else None})
        return rows

    def summary(self) -> dict:
        return {"faults": self.fault_table(), "events": [e.to_dict() for e in self.events[-200:]],
                "events_total": len(self.events)}
