"""Driver for ``nbcvm leak-check``: run an entry many times in ONE runtime, watch what grows.

Model (CPython's ``regrtest -R``, applied to a VM): instantiate the program
once, run its ``init`` once, then call the entry ``warmup`` times (caches,
lazy imports and compiled functions settle) and ``runs`` more times.  After
every post-warm-up run the garbage collector runs and one sample of every
metric is taken:

=================  ===========================================================
metric             what it counts
=================  ===========================================================
handles            live VM handles (all kinds), and their bytes
handles.KIND       live handles of one kind (tensor, channel, lock, thread ...)
vm_bytes           bytes of NBC values reachable from the roots (``Meter.measure``)
traced_bytes       Python heap traced by tracemalloc (started before warm-up)
rss / uss          process resident / unique set size (psutil; USS may be n/a)
fds / threads      open file descriptors / OS threads of the process
=================  ===========================================================

Verdict per metric on its post-warm-up values ``v0 .. v(n-1)`` (see
``judge``): **leak** when the metric grew by at least its minimum absolute
growth (``MIN_GROWTH``) and either every delta is positive (consistent
growth), or the least-squares trend is a real one -- fitted growth
``slope * (n - 1)`` over ``max(|v0|, 1)`` is above ``threshold``, the
slope's t statistic is at least ``T_MIN`` and both halves of the soak grow on
their own (so a single step in RSS is not a leak).  Everything else is clean.

Per-run storage is preallocated (``array``) before tracemalloc starts, so the
tool's own bookkeeping does not show up as growth; program output goes to a
null sink.  Limits apply per run: fuel, the timeout and the output budget are
renewed before each call.
"""

from __future__ import annotations

import gc
import math
import os
import sys
import time
import tracemalloc
from array import array
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from nbcvm.errors import ExitProgram, UsageError
from nbcvm.runtime.limits import Limits

KiB = 1 << 10
DEFAULT_RUNS = 20
DEFAULT_WARMUP = 3
DEFAULT_THRESHOLD = 0.01  # fitted growth over the soak, relative to the first post-warm-up value
T_MIN = 4.0  # t statistic of the slope a trend needs (noise rarely reaches it)
TOP_SITES = 10

# Minimum absolute growth over the soak before a metric may be called a leak.
# Exact counters (handles, VM bytes, fds, threads) need one unit; process and
# allocator figures jitter by pages and arenas, so they need 64 KiB.
MIN_GROWTH: dict[str, int] = {"traced_bytes": 64 * KiB, "rss": 64 * KiB, "uss": 64 * KiB}

_UNAVAILABLE = -1  # sample value of a metric the platform does not provide

Progress = Callable[[str, int, int], None]  # (phase, done, total)


# -- config and report -------------------------------------------------------------


@dataclass(frozen=True)
class LeakConfig:
    program: str
    args: tuple[str, ...] = ()
    entry: str = "main"
    runs: int = DEFAULT_RUNS
    warmup: int = DEFAULT_WARMUP
    threshold: float = DEFAULT_THRESHOLD
    max_rss: int | None = None  # bytes; the check fails (and stops) once RSS passes it
    limits: Limits = field(default_factory=Limits)
    seed: int = 0
    search_path: tuple[str, ...] = ()
    allow: tuple[str, ...] = ()
    show_output: bool = False
    top: int = TOP_SITES
    trace_python: bool = True  # tracemalloc on (slower, but names Python allocation sites)


@dataclass(frozen=True)
class Verdict:
    verdict: str  # leak | clean
    slope: float  # units per run (least squares)
    fitted_growth: float  # slope * (n - 1)
    relative_growth: float  # fitted_growth / max(|v0|, 1)
    growth: int  # v[-1] - v[0]
    consistent: bool  # every delta > 0
    t: float  # slope / its standard error (inf for a perfect line)
    reason: str


@dataclass(frozen=True)
class Metric:
    name: str
    unit: str  # bytes | count
    values: tuple[int, ...]
    verdict: Verdict | None  # None: not measured (see note)
    note: str = ""

    @property
    def deltas(self) -> tuple[int, ...]:
        return tuple(b - a for a, b in zip(self.values, self.values[1:]))

    @property
    def leak(self) -> bool:
        return self.verdict is not None and self.verdict.verdict == "leak"

    def to_dict(self) -> dict:
        v = self.verdict
        d: dict[str, Any] = {"name": self.name, "unit": self.unit, "values": list(self.values),
                             "deltas": list(self.deltas), "verdict": v.verdict if v else "n/a"}
        if v is None:
            d["reason"] = self.note
        if v is not None:
            d.update(slope=round(v.slope, 4), fitted_growth=round(v.fitted_growth, 2),
                     relative_growth=round(v.relative_growth, 6), growth=v.growth, consistent=v.consistent,
                     t=None if math.isinf(v.t) else round(v.t, 3), reason=v.reason)
        return d


@dataclass(frozen=True)
class SiteGrowth:
    """An NBC source line whose live handles grew between the first and last sample."""

    file: str
    line: int
    source: str  # the text of that line ('' when the file cannot be read)
    function: str  # module.function
    kind: str
    count_growth: int
    bytes_growth: int
    count: int  # live at the last sample

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"

    def to_dict(self) -> dict:
        return {"where": self.where, "file": self.file, "line": self.line, "source": self.source,
                "function": self.function, "kind": self.kind, "count_growth": self.count_growth,
                "bytes_growth": self.bytes_growth, "count": self.count}


@dataclass(frozen=True)
class GlobalGrowth:
    """A module global whose reachable VM data grew."""

    module: str
    name: str
    first: int
    last: int

    def to_dict(self) -> dict:
        return {"global": f"{self.module}.{self.name}", "first_bytes": self.first, "last_bytes": self.last,
                "growth": self.last - self.first}


@dataclass(frozen=True)
class PySite:
    """A Python allocation site (tracemalloc snapshot diff, first vs last sample)."""

    filename: str
    lineno: int
    size_diff: int
    count_diff: int

    def to_dict(self) -> dict:
        return {"where": f"{self.filename}:{self.lineno}", "size_diff": self.size_diff,
                "count_diff": self.count_diff}


@dataclass(frozen=True)
class LeakReport:
    program: str
    entry: str
    args: tuple[str, ...]
    runs: int  # post-warm-up runs completed
    warmup: int
    threshold: float
    seconds: float
    metrics: tuple[Metric, ...]
    sites: tuple[SiteGrowth, ...]
    globals: tuple[GlobalGrowth, ...]
    python_sites: tuple[PySite, ...]
    max_rss: int | None = None
    peak_rss: int = 0
    budget_exceeded_at: int | None = None  # run (1-based, warm-up included) that went over --max-rss

    @property
    def leaks(self) -> tuple[Metric, ...]:
        return tuple(m for m in self.metrics if m.leak)

    @property
    def budget_exceeded(self) -> bool:
        return self.budget_exceeded_at is not None

    @property
    def verdict(self) -> str:
        return "leak" if self.leaks else "clean"

    @property
    def ok(self) -> bool:
        return not self.leaks and not self.budget_exceeded

    def metric(self, name: str) -> Metric:
        for m in self.metrics:
            if m.name == name:
                return m
        raise KeyError(name)

    def to_dict(self) -> dict:
        return {"program": self.program, "entry": self.entry, "args": list(self.args), "runs": self.runs,
                "warmup": self.warmup, "threshold": self.threshold, "seconds": round(self.seconds, 3),
                "verdict": self.verdict, "ok": self.ok, "leaking": [m.name for m in self.leaks],
                "metrics": [m.to_dict() for m in self.metrics], "sites": [s.to_dict() for s in self.sites],
                "globals": [g.to_dict() for g in self.globals],
                "python_sites": [p.to_dict() for p in self.python_sites],
                "budget": {"max_rss": self.max_rss, "peak_rss": self.peak_rss,
                           "exceeded_at_run": self.budget_exceeded_at}}


# -- the verdict ---------------------------------------------------------------------


def judge(values: list[int] | tuple[int, ...], threshold: float = DEFAULT_THRESHOLD,
          min_growth: int = 1) -> Verdict:
    """Leak or clean for one metric's post-warm-up series (see the module docstring)."""
    n = len(values)
    if n < 2:
        return Verdict("clean", 0.0, 0.0, 0.0, 0, False, 0.0, "too few samples")
    deltas = [b - a for a, b in zip(values, values[1:])]
    growth = values[-1] - values[0]
    slope, t = _fit(values)
    fitted = slope * (n - 1)
    rel = fitted / max(abs(values[0]), 1)
    consistent = all(d > 0 for d in deltas)
    if consistent and growth >= min_growth:
        return Verdict("leak", slope, fitted, rel, growth, True, t, f"grew in every one of {n - 1} runs")
    if fitted >= min_growth and rel > threshold and t >= T_MIN and n >= 4:
        half = n // 2
        s1, _ = _fit(values[:half + (n % 2)])
        s2, _ = _fit(values[half:])
        if s1 > 0 and s2 > 0:
            return Verdict("leak", slope, fitted, rel, growth, False, t,
                           f"trend {rel:+.2%} over the soak (> {threshold:.2%}), t = {t:.1f}")
        why = "growth stopped: one step, not a trend"
    elif growth <= 0 and fitted <= 0:
        why = "no growth"
    elif fitted < min_growth and growth < min_growth:
        why = f"growth under the minimum ({min_growth:,})"
    elif rel <= threshold:
        why = f"trend {rel:+.2%} within {threshold:.2%}"
    else:
        why = f"no significant trend (t = {t:.1f} < {T_MIN:g})"
    return Verdict("clean", slope, fitted, rel, growth, consistent, t, why)


def _fit(values) -> tuple[float, float]:
    """Least-squares slope per run and its t statistic (inf for an exact line with a slope)."""
    n = len(values)
    if n < 2:
        return 0.0, 0.0
    xm = (n - 1) / 2
    vm = sum(values) / n
    sxx = n * (n * n - 1) / 12
    slope = sum((i - xm) * (v - vm) for i, v in enumerate(values)) / sxx
    if n < 3:
        return slope, (math.inf if slope > 0 else 0.0)
    ssr = sum((v - vm - slope * (i - xm)) ** 2 for i, v in enumerate(values))
    scale = max(abs(vm), 1.0)
    if ssr <= (1e-12 * scale) ** 2 * n:
        return slope, (math.inf if slope > 0 else (-math.inf if slope < 0 else 0.0))
    se = math.sqrt(ssr / (n - 2) / sxx)
    return slope, slope / se


# -- sampling --------------------------------------------------------------------------


class _NullSink:
    """Program output goes nowhere (a StringIO would grow and look like a leak)."""

    def write(self, s: str) -> int:
        return len(s)

    def flush(self) -> None:
        pass


class _Series:
    """Preallocated per-run storage: appending allocates nothing while traced."""

    def __init__(self, n: int):
        self.n = n
        self.cols: dict[str, array] = {}

    def col(self, name: str) -> array:
        c = self.cols.get(name)
        if c is None:  # a new handle kind appeared: one allocation, once
            c = self.cols[name] = array("q", bytes(8 * self.n))
        return c


class _Process:
    def __init__(self) -> None:
        import psutil

        self.p = psutil.Process()
        self.psutil = psutil
        self.uss_ok = True
        self.fds_ok = hasattr(self.p, "num_fds")

    def rss(self) -> int:
        return self.p.memory_info().rss

    def sample(self) -> tuple[int, int, int, int]:
        """rss, uss, fds, threads (``_UNAVAILABLE`` where the platform has no figure)."""
        uss = _UNAVAILABLE
        if self.uss_ok:
            try:
                mi = self.p.memory_full_info()
                rss, uss = mi.rss, getattr(mi, "uss", _UNAVAILABLE)
                if uss == _UNAVAILABLE:
                    self.uss_ok = False
            except (self.psutil.AccessDenied, NotImplementedError, OSError):
                self.uss_ok = False
                rss = self.rss()
        else:
            rss = self.rss()
        fds = self.p.num_fds() if self.fds_ok else _UNAVAILABLE
        return rss, uss, fds, self.p.num_threads()


_COLUMNS = ("handles", "handle_bytes", "vm_bytes", "traced_bytes", "rss", "uss", "fds", "threads")


def run_leak_check(cfg: LeakConfig, progress: Progress | None = None) -> LeakReport:
    """Run the soak and judge every metric; InputError/UsageError propagate (exit 2)."""
    from nbcvm.tools.run import RunConfig, make_runtime, parse_arg

    if cfg.runs < 3:
        raise UsageError("--runs must be at least 3")
    if cfg.warmup < 0:
        raise UsageError("--warmup must not be negative")
    if not cfg.threshold > 0:
        raise UsageError("--threshold must be positive")
    rcfg = RunConfig(cfg.program, cfg.args, cfg.limits, cfg.seed, cfg.search_path, cfg.entry, cfg.allow)
    rt = make_runtime(rcfg, sys.stdout if cfg.show_output else _NullSink())  # type: ignore[arg-type]
    inst = rt.load_program(Path(cfg.program))
    args = [parse_arg(a) for a in cfg.args]
    fn = inst.fns.get(cfg.entry)
    if fn is None:
        raise UsageError(f"{cfg.program}: no function '{cfg.entry}' to run")
    if len(args) != fn.nparams:
        raise UsageError(f"{cfg.entry} takes {fn.nparams} argument(s) "
                         f"({' '.join(fn.code.params) or 'none'}), got {len(args)}")

    proc = _Process()
    proc.sample()  # psutil caches what it needs on first use: not a growth of the program
    series = _Series(cfg.runs)
    for c in _COLUMNS:
        series.col(c)
    first_snap: dict | None = None
    first_globals: dict[tuple[str, str], int] = {}
    py_first = None
    own_tracing = cfg.trace_python and not tracemalloc.is_tracing()
    peak_rss, over_at, done, frozen = 0, None, 0, False
    total = cfg.warmup + cfg.runs
    t0 = time.perf_counter()
    if own_tracing:
        tracemalloc.start(1)
    tracing = cfg.trace_python and tracemalloc.is_tracing()  # a host may trace already: then use it
    try:
        rt.meter.start_clock()
        rt.run_init(inst)
        for k in range(total):
            if k == cfg.warmup and gc.get_freeze_count() == 0:  # (a host's own freeze is left alone)
                # Everything alive after the warm-up moves to gc's permanent generation:
                # the per-run collection then scans only what the soak makes (~100x faster).
                gc.collect()
                gc.freeze()
                frozen = True
            _one_run(rt, inst, cfg, args)
            post = k - cfg.warmup  # index among the sampled runs, < 0 during warm-up
            if post < 0:
                rss = proc.rss()
                peak_rss = max(peak_rss, rss)
                if cfg.max_rss is not None and rss > cfg.max_rss:
                    over_at = k + 1
                    break
                if progress:
                    progress("warm-up", k + 1, total)
                continue
            gc.collect()
            snap = rt.resources.snapshot()
            if post == 0:  # baselines of the site diffs: made before the first sample, so they are in it
                first_snap, first_globals = snap, _global_bytes(rt)
                if tracing:
                    py_first = tracemalloc.take_snapshot()
            _store(series, post, snap, rt, proc, tracing)
            done = post + 1
            rss = series.cols["rss"][post]
            peak_rss = max(peak_rss, rss)
            snap = None
            if progress:
                progress("soak", k + 1, total)
            if cfg.max_rss is not None and rss > cfg.max_rss:
                over_at = k + 1
                break
        py_last = tracemalloc.take_snapshot() if tracing and py_first is not None else None
        last_snap = rt.resources.snapshot()
        last_globals = _global_bytes(rt)
    finally:
        if frozen:
            gc.unfreeze()
        if own_tracing:
            tracemalloc.stop()
        rt.finish_threads()
        rt.resources.end_runtime()
        rt.output.flush()
    seconds = time.perf_counter() - t0
    metrics = _metrics(series, done, cfg) if done else ()
    sites = _site_growth(first_snap, last_snap, cfg.top) if first_snap is not None else ()
    globs = _global_growth(first_globals, last_globals) if first_snap is not None else ()
    pysites = _py_growth(py_first, py_last, cfg.top, max(2, done - 1)) if py_last is not None else ()
    return LeakReport(cfg.program, cfg.entry, cfg.args, done, cfg.warmup, cfg.threshold, seconds, metrics,
                      sites, globs, pysites, cfg.max_rss, peak_rss, over_at)


def _one_run(rt: Any, inst: Any, cfg: LeakConfig, args: list) -> None:
    """One call of the entry with fresh per-run limits; halt ends the run, errors propagate."""
    m = rt.meter
    if cfg.limits.max_steps is not None:
        rt.set_limit("max_steps", m.steps + cfg.limits.max_steps)
    m.output_bytes = 0
    m.start_clock()
    try:
        rt.call(inst, cfg.entry, args)
    except ExitProgram:
        pass
    finally:
        rt.finish_threads()


def _store(series: _Series, i: int, snap: dict, rt: Any, proc: _Process, tracing: bool) -> None:
    cols = series.cols
    # tracemalloc first: nothing the other readings allocate is counted
    cols["traced_bytes"][i] = tracemalloc.get_traced_memory()[0] if tracing else _UNAVAILABLE
    cols["handles"][i] = snap["live"]
    cols["handle_bytes"][i] = snap["bytes"]
    for kind, v in snap["kinds"].items():
        series.col(f"handles.{kind}")[i] = v["count"]
        series.col(f"handles.{kind}.bytes")[i] = v["bytes"]
    cols["vm_bytes"][i] = rt.meter.measure()
    cols["rss"][i], cols["uss"][i], cols["fds"][i], cols["threads"][i] = proc.sample()


_UNITS = {"handles": "count", "fds": "count", "threads": "count"}
_NOT_MEASURED = {"traced_bytes": "tracemalloc is off (--no-tracemalloc)",
                 "uss": "USS not available here (psutil memory_full_info)",
                 "fds": "no open-descriptor count on this platform"}


def _metrics(series: _Series, n: int, cfg: LeakConfig) -> tuple[Metric, ...]:
    out = []
    for name, col in series.cols.items():
        values = tuple(col[:n])
        unit = "count" if name in _UNITS or (name.startswith("handles.") and not name.endswith(".bytes")) \
            else "bytes"
        if any(v == _UNAVAILABLE for v in values):
            out.append(Metric(name, unit, (), None, _NOT_MEASURED.get(name, "not available")))
            continue
        out.append(Metric(name, unit, values, judge(values, cfg.threshold, MIN_GROWTH.get(name, 1))))
    return tuple(_uss_needs_rss(out))


def _uss_needs_rss(metrics: list[Metric]) -> list[Metric]:
    """USS alone is no leak: a new private page raises RSS too.

    USS also moves when *other* processes map or unmap the same files (library
    pages turn private when the last other user exits), with RSS unchanged --
    so a USS "leak" counts only when RSS grew by its minimum as well.
    """
    by = {m.name: m for m in metrics}
    uss, rss = by.get("uss"), by.get("rss")
    if uss is None or not uss.leak or rss is None or rss.verdict is None:
        return metrics
    rv = rss.verdict
    if max(rv.growth, rv.fitted_growth) >= MIN_GROWTH["rss"]:
        return metrics
    v = replace(uss.verdict, verdict="clean", reason="USS moved but RSS did not: pages changed sharing, "
                "not an allocation")
    return [replace(m, verdict=v) if m is uss else m for m in metrics]


# -- sites -----------------------------------------------------------------------------


def _global_bytes(rt: Any) -> dict[tuple[str, str], int]:
    from nbcvm.vm.values import held_bytes

    out = {}
    for rec in list(rt.imports.records.values()):
        inst = rec.instance
        if inst is None or inst.is_native:
            continue
        for (name, _), v in zip(inst.module.globals, inst.globals):
            out[(inst.name, name)] = held_bytes([v])
    return out


def _global_growth(first: dict, last: dict) -> tuple[GlobalGrowth, ...]:
    grown = [GlobalGrowth(mod, name, first.get((mod, name), 0), b)
             for (mod, name), b in last.items() if b > first.get((mod, name), 0)]
    return tuple(sorted(grown, key=lambda g: g.first - g.last))


def _site_growth(first: dict, last: dict, top: int) -> tuple[SiteGrowth, ...]:
    before = first["sites"]
    out = []
    for key, s in last["sites"].items():
        b = before.get(key, {"count": 0, "bytes": 0})
        dc, db = s["count"] - b["count"], s["bytes"] - b["bytes"]
        if dc <= 0 and db <= 0:
            continue
        func = s.get("function") or key.rsplit(" (", 1)[0]
        out.append(SiteGrowth(s["file"], s["line"], _source_line(s["file"], s["line"]), func, s["kind"],
                              dc, db, s["count"]))
    out.sort(key=lambda g: (-g.bytes_growth, -g.count_growth, g.file, g.line))
    return tuple(out[:top])


def _source_line(path: str, line: int) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            for i, text in enumerate(f, 1):
                if i == line:
                    return text.strip()
    except (OSError, UnicodeDecodeError):
        pass
    return ""


def _py_growth(first: Any, last: Any, top: int, min_blocks: int) -> tuple[PySite, ...]:
    # filtering the stats, not the traces: Snapshot.filter_traces is slow (fnmatch per trace)
    ignore = {tracemalloc.__file__, __file__, "<frozen importlib._bootstrap>",
              "<frozen importlib._bootstrap_external>", "<unknown>"}
    out = []
    for st in last.compare_to(first, "lineno"):
        fr = st.traceback[0]
        # a site counts when it grew by 1 KiB, or by a block in (nearly) every run
        if fr.filename in ignore or st.size_diff <= 0 or (st.size_diff < KiB and st.count_diff < min_blocks):
            continue
        out.append(PySite(_short(fr.filename), fr.lineno, st.size_diff, st.count_diff))
        if len(out) >= top:
            break
    return tuple(out)


def _short(filename: str) -> str:
    """A path relative to the working folder or site-packages, for reading in a table."""
    try:
        rel = os.path.relpath(filename)
        if not rel.startswith(".."):
            return rel
    except ValueError:
        pass
    marker = "site-packages" + os.sep
    i = filename.find(marker)
    return filename[i + len(marker):] if i >= 0 else filename


# -- sizes on the command line -----------------------------------------------------------

_SUFFIXES = {"": 1, "b": 1, "k": 1 << 10, "kb": 10 ** 3, "kib": 1 << 10, "m": 1 << 20, "mb": 10 ** 6,
             "mib": 1 << 20, "g": 1 << 30, "gb": 10 ** 9, "gib": 1 << 30, "t": 1 << 40, "tb": 10 ** 12,
             "tib": 1 << 40}


def parse_size(text: str) -> int:
    """``200MB`` (10^6), ``1GiB`` (2^30), ``512k``/``512M`` (bare letters are binary), ``4096``."""
    s = text.strip().lower().replace(" ", "").replace("_", "")
    i = len(s)
    while i and not (s[i - 1].isdigit() or s[i - 1] == "."):
        i -= 1
    num, unit = s[:i], s[i:]
    if unit not in _SUFFIXES or not num:
        raise ValueError(f"not a size: {text!r} (try 200MB, 1GiB or a number of bytes)")
    try:
        value = float(num)
    except ValueError:
        raise ValueError(f"not a size: {text!r} (try 200MB, 1GiB or a number of bytes)") from None
    if value < 0 or math.isinf(value) or math.isnan(value):
        raise ValueError(f"not a size: {text!r}")
    return int(value * _SUFFIXES[unit])
