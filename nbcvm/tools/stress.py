"""Driver for ``nbcvm stress-threads`` (alias ``stress``): many threads, one runtime.

A *workload* is an NBC module with an entry (``stress`` taking the thread
index, or ``main`` taking nothing) and optionally a ``check`` that returns
``true``/``false`` or the number of violations (e.g. lost updates), taking
nothing, the total number of calls, or (threads, iterations) -- whose product
is the total (in ``duration`` mode it gets (1, total calls)).  N host threads are released together
by a barrier and each calls the entry ``iterations`` times (or until
``duration`` passes) on ONE shared Runtime; then ``check`` runs once.

Without a program, a built-in suite exercises the runtime's shared state:
atomic counters, channel ping-pong and fan-in, racing lazy imports (each module
initialised exactly once), concurrent tensor ops and consistent lock ordering.

A watchdog dumps every thread's NBC stack if the run hangs.  Small
``switch_interval`` values (sys.setswitchinterval) provoke interleavings; the
default, 10 µs, is small enough to expose an unguarded read-modify-write.
"""

from __future__ import annotations

import io
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from nbcvm.asm.assembler import assemble
from nbcvm.errors import UsageError, VMError
from nbcvm.runtime.limits import Limits
from nbcvm.runtime.runtime import Runtime
from nbcvm.vm.values import to_str

DEFAULT_SWITCH_INTERVAL = 1e-5


@dataclass(frozen=True)
class StressConfig:
    program: str | None = None
    threads: int = 20
    iterations: int | None = None
    duration: float | None = None
    seed: int = 0
    switch_interval: float = DEFAULT_SWITCH_INTERVAL
    watchdog: float = 60.0
    limits: Limits = field(default_factory=Limits)
    search_path: tuple[str, ...] = ()
    workloads: tuple[str, ...] = ()  # subset of the built-in suite (empty = all)
    faults: tuple[tuple[str, float], ...] = ()  # fault injection: (point, probability)


@dataclass(frozen=True)
class WorkloadResult:
    name: str
    threads: int
    calls: int
    operations: int
    seconds: float
    p50_us: float
    p99_us: float
    lock_wait_s: float
    contention: float  # contended acquires / acquires
    violations: int
    deadlocks: int
    errors: int
    messages: tuple[str, ...] = ()
    hung: bool = False
    stacks: dict = field(default_factory=dict)
    faults: tuple[dict, ...] = ()  # per fault point: injected, recovered, propagated

    @property
    def ops_per_s(self) -> float:
        return self.operations / self.seconds if self.seconds > 0 else 0.0

    @property
    def ok(self) -> bool:
        return not (self.violations or self.deadlocks or self.errors or self.hung)

    def to_dict(self) -> dict:
        return {"name": self.name, "threads": self.threads, "calls": self.calls,
                "operations": self.operations, "seconds": round(self.seconds, 6),
                "ops_per_s": round(self.ops_per_s, 1), "p50_us": round(self.p50_us, 2),
                "p99_us": round(self.p99_us, 2), "lock_wait_s": round(self.lock_wait_s, 6),
                "contention": round(self.contention, 4), "violations": self.violations,
                "deadlocks": self.deadlocks, "errors": self.errors, "messages": list(self.messages),
                "hung": self.hung, "stacks": self.stacks, "faults": list(self.faults), "ok": self.ok}


@dataclass(frozen=True)
class StressReport:
    workloads: tuple[WorkloadResult, ...]
    threads: int
    switch_interval: float
    seed: int

    @property
    def ok(self) -> bool:
        return all(w.ok for w in self.workloads)

    def to_dict(self) -> dict:
        return {"ok": self.ok, "threads": self.threads, "switch_interval": self.switch_interval,
                "seed": self.seed, "workloads": [w.to_dict() for w in self.workloads]}


@dataclass(frozen=True)
class Workload:
    name: str
    source: str
    ops_per_call: int = 1
    iterations: int = 10
    extra_modules: dict[str, str] = field(default_factory=dict)


def percentile(sorted_xs: list[float], q: float) -> float:
    """Linear-interpolated percentile of sorted data (numpy's default method)."""
    if not sorted_xs:
        return 0.0
    k = (len(sorted_xs) - 1) * q / 100.0
    lo = int(k)
    hi = min(lo + 1, len(sorted_xs) - 1)
    return sorted_xs[lo] + (sorted_xs[hi] - sorted_xs[lo]) * (k - lo)


def run_workload(w: Workload, cfg: StressConfig, progress: Callable[[str, int, int], None] | None = None,
                 path: str | None = None) -> WorkloadResult:
    tmp = None
    search: list[Path] = [Path(p) for p in cfg.search_path]
    if w.extra_modules:
        tmp = tempfile.TemporaryDirectory(prefix="nbcvm-stress-")
        for name, src in w.extra_modules.items():
            (Path(tmp.name) / f"{name}.nbc").write_text(src)
        search.append(Path(tmp.name))
    if path is not None:
        search.insert(0, Path(path).resolve().parent)
    out = io.StringIO()
    rt = Runtime(cfg.limits, stdout=out, seed=cfg.seed, search_path=search, faults=dict(cfg.faults))
    try:
        module = assemble(w.source, path or f"<stress:{w.name}>", module_name=None if path else "stress")
        inst = rt.instantiate(module, path)
        entry, with_index = _entry(inst)
        rt.meter.start_clock()
        rt.run_init(inst)
        iterations = cfg.iterations if cfg.iterations is not None else w.iterations
        n = cfg.threads
        barrier = threading.Barrier(n)
        latencies: list[list[float]] = [[] for _ in range(n)]
        errors: list[str] = []
        err_count = [0]
        deadlocks = [0]
        done = [0]
        stop_at = [None]

        def worker(i: int) -> None:
            args = [i] if with_index else []
            barrier.wait()
            k = 0
            while True:
                if cfg.duration is not None:
                    if stop_at[0] is not None and time.perf_counter() >= stop_at[0]:
                        break
                elif k >= iterations:
                    break
                t0 = time.perf_counter()
                try:
                    rt.call(inst, entry, args)
                except VMError as e:
                    err_count[0] += 1
                    if e.type_name == "ThreadError" and "deadlock" in e.message:
                        deadlocks[0] += 1
                    if len(errors) < 5:
                        errors.append(f"thread {i}: {e.type_name}: {e.message}")
                latencies[i].append(time.perf_counter() - t0)
                k += 1
                done[0] += 1

        old = sys.getswitchinterval()
        sys.setswitchinterval(cfg.switch_interval)
        hosts = [threading.Thread(target=worker, args=(i,), daemon=True, name=f"stress-{i}") for i in range(n)]
        t_start = time.perf_counter()
        if cfg.duration is not None:
            stop_at[0] = t_start + cfg.duration
        hung, stacks = False, {}
        try:
            for h in hosts:
                h.start()
            total = n * iterations if cfg.duration is None else 0
            seen, last_change = -1, time.perf_counter()
            while any(h.is_alive() for h in hosts):
                for h in hosts:
                    h.join(0.05)
                if progress:
                    progress(w.name, done[0], total)
                now = time.perf_counter()
                if done[0] != seen:  # hung means no call finished for a whole watchdog period,
                    seen, last_change = done[0], now  # not a long run
                elif now - last_change > cfg.watchdog:
                    hung, stacks = True, rt.threads.dump_stacks()
                    break
            if progress and not hung:
                progress(w.name, done[0], total)  # the final count, also when it was all done at once
        finally:
            sys.setswitchinterval(old)
        seconds = time.perf_counter() - t_start
        flat = sorted(x for xs in latencies for x in xs)
        # check(threads, iterations) multiplies to the total calls; in duration mode
        # threads ran different numbers of calls, so it gets (1, total calls)
        shape = (n, iterations) if cfg.duration is None else (1, len(flat))
        violations, msgs = (0, []) if hung else _check(rt, inst, *shape)
        stats = rt.threads.lock_stats
        calls = len(flat)
        return WorkloadResult(
            w.name, n, calls, calls * w.ops_per_call, seconds,
            percentile(flat, 50) * 1e6, percentile(flat, 99) * 1e6, stats["wait_seconds"],
            stats["contended"] / stats["acquires"] if stats["acquires"] else 0.0,
            violations, deadlocks[0], err_count[0], tuple(msgs + errors), hung, stacks,
            tuple(rt.errors.fault_table()))
    finally:
        if tmp is not None:
            tmp.cleanup()


def _entry(inst: Any) -> tuple[str, bool]:
    fn = inst.fns.get("stress")
    if fn is not None:
        if fn.nparams != 1:
            raise UsageError("stress must take one parameter: the thread index")
        return "stress", True
    fn = inst.fns.get("main")
    if fn is None or fn.nparams != 0:
        raise UsageError("a stress program needs `stress i` or a `main` without parameters")
    return "main", False


def _check(rt: Runtime, inst: Any, threads: int, iterations: int) -> tuple[int, list[str]]:
    fn = inst.fns.get("check")
    if fn is None:
        return 0, []
    args = [threads, iterations] if fn.nparams == 2 else [threads * iterations] if fn.nparams == 1 else []
    try:
        v = rt.call(inst, "check", args)
    except VMError as e:
        return 1, [f"check failed: {e.type_name}: {e.message}"]
    if v is True:
        return 0, []
    if v is False:
        return 1, ["check returned false"]
    if type(v) is int:
        return v, ([f"check: {v} violation(s) (e.g. lost updates)"] if v else [])
    return 1, [f"check returned {to_str(v)}, expected a bool or an int"]


def run_stress(cfg: StressConfig, progress: Callable[[str, int, int], None] | None = None) -> StressReport:
    if cfg.threads < 1:
        raise UsageError("--threads must be at least 1")
    if cfg.program is not None:
        from nbcvm.runtime.loader import load_file

        module = load_file(cfg.program)  # InputError -> exit 2
        from nbcvm.asm.disasm import disassemble

        w = Workload(Path(cfg.program).stem, disassemble(module))
        results = [run_workload(w, cfg, progress, path=cfg.program)]
    else:
        from nbcvm.tools.stress_suite import SUITE

        names = cfg.workloads or tuple(SUITE)
        unknown = [n for n in names if n not in SUITE]
        if unknown:
            raise UsageError(f"unknown workload(s) {', '.join(unknown)}; known: {', '.join(SUITE)}")
        results = [run_workload(SUITE[n], cfg, progress) for n in names]
    return StressReport(tuple(results), cfg.threads, cfg.switch_interval, cfg.seed)
