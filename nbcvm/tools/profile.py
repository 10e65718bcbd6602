"""Driver for ``nbcvm profile``: config in, a frozen ``ProfileReport`` out (no printing).

``profile_program`` builds the same Runtime as ``nbcvm run``, installs a
``PerformanceMonitor`` with the instrumented loop (``nbcvm.vm.profiled``),
runs the program and turns what the monitor recorded into report rows:
functions, opcodes, source lines, opcode pairs, the call tree per thread,
metrics, fired alerts and rule-based suggestions.

Also here, all plain data and functions: alert rules (``parse_rule``), the
comparison of two saved reports (``compare``, for ``--baseline`` and
``profile diff``) and the run log (``append_log``).  Rendering lives in
``nbcvm.report.profile_render``, export formats in ``nbcvm.report.exports``.
"""

from __future__ import annotations

import hashlib
import json
import math
import operator
import os
import platform
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Callable, Protocol

from nbcvm.errors import UsageError
from nbcvm.runtime.monitor import PerformanceMonitor
from nbcvm.tools.run import RunConfig, make_runtime, parse_arg

SCHEMA = "nbcvm-profile/1"
MAX_TREE_DEPTH = 128  # call paths deeper than this are merged into their prefix in the report


# ---------------------------------------------------------------------------
# Alert rules

_TIME_UNITS = {"": 1.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9, "m": 60.0, "min": 60.0}
_BYTE_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12, "kib": 1 << 10,
               "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40}
_COUNT_UNITS = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9}
_PCT_UNITS = {"": 1.0, "%": 1.0}

# metric -> (unit kind, evaluated live at meter ticks?, meaning)
GLOBAL_METRICS: dict[str, tuple[str, bool, str]] = {
    "rss": ("bytes", True, "resident set size of the process (psutil), highest sampled"),
    "memory": ("bytes", True, "bytes of VM-held data (the meter's count)"),
    "ips": ("count", True, "instructions per second over the run so far (live after 1 s)"),
    "errors": ("count", True, "NBC errors raised, caught or not"),
    "steps": ("count", True, "instructions executed"),
    "instructions": ("count", True, "instructions executed (same as steps)"),
    "calls": ("count", True, "NBC function calls"),
    "time": ("time", True, "wall time of the run"),
    "depth": ("count", True, "peak call depth"),
    "threads": ("count", True, "host threads that ran NBC code"),
    "handles": ("count", True, "live resource handles, highest sampled"),
}
FN_STATS: dict[str, tuple[str, bool]] = {
    "calls": ("count", True), "total": ("time", True), "inclusive": ("time", True),
    "self": ("time", True), "exclusive": ("time", True), "percall": ("time", True),
    "p50": ("time", False), "p95": ("time", False), "p99": ("time", False), "mean": ("time", False),
    "max": ("time", False), "min": ("time", False),
}
OP_STATS: dict[str, tuple[str, bool]] = {"count": ("count", True), "time": ("time", True),
                                         "pct": ("pct", True)}
_CMP = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le, "==": operator.eq,
        "!=": operator.ne}
_RULE = re.compile(r"^\s*(?:(fn|op):([^:\s]+):)?([A-Za-z_][A-Za-z0-9_]*)\s*(>=|<=|==|!=|>|<)\s*"
                   r"([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*([A-Za-zµ%]*)\s*$")
RULE_HELP = ("METRIC OP NUMBER[UNIT] where METRIC is one of " + ", ".join(GLOBAL_METRICS)
             + ", fn:NAME:STAT (" + ", ".join(FN_STATS) + ") or op:NAME:STAT (" + ", ".join(OP_STATS)
             + "); e.g. fn:fib:p95>5ms, rss>200MB, ips<1e6, op:add:count>100")


@dataclass(frozen=True)
class AlertRule:
    text: str
    scope: str  # "global" | "fn" | "op"
    target: str  # function or opcode name ("" for global)
    stat: str
    cmp: str
    threshold: float  # in base units: seconds, bytes, counts, percent
    kind: str  # "time" | "bytes" | "count" | "pct"
    live: bool

    def to_dict(self) -> dict:
        return {"rule": self.text, "scope": self.scope, "target": self.target, "stat": self.stat,
                "cmp": self.cmp, "threshold": self.threshold, "unit": self.kind, "live": self.live}


def parse_rule(text: str) -> AlertRule:
    """``fn:fib:p95>5ms`` -> AlertRule; ValueError with the reason for anything else."""
    from nbcvm.isa import BY_NAME

    m = _RULE.match(text)
    if not m:
        raise ValueError(f"cannot parse alert rule '{text}': expected {RULE_HELP}")
    scope, target, stat, cmp, num, unit = m.groups()
    scope = scope or "global"
    stat = stat.lower()
    if scope == "global":
        if stat not in GLOBAL_METRICS:
            raise ValueError(f"alert rule '{text}': unknown metric '{stat}' (one of {', '.join(GLOBAL_METRICS)})")
        kind, live = GLOBAL_METRICS[stat][:2]
    elif scope == "fn":
        if stat not in FN_STATS:
            raise ValueError(f"alert rule '{text}': unknown function statistic '{stat}' "
                             f"(one of {', '.join(FN_STATS)})")
        kind, live = FN_STATS[stat]
    else:
        if target not in BY_NAME:
            raise ValueError(f"alert rule '{text}': unknown opcode '{target}'")
        if stat not in OP_STATS:
            raise ValueError(f"alert rule '{text}': unknown opcode statistic '{stat}' "
                             f"(one of {', '.join(OP_STATS)})")
        kind, live = OP_STATS[stat]
    units = {"time": _TIME_UNITS, "bytes": _BYTE_UNITS, "count": _COUNT_UNITS, "pct": _PCT_UNITS}[kind]
    key = unit if kind == "time" else unit.lower()
    if key not in units:
        raise ValueError(f"alert rule '{text}': unit '{unit}' does not fit a {kind} metric "
                         f"(use one of {', '.join(u for u in units if u) or 'no unit'})")
    return AlertRule(text.strip(), scope, target or "", stat, cmp, float(num) * units[key], kind, live)


@dataclass(frozen=True)
class Alert:
    rule: str
    value: float
    threshold: float
    unit: str
    at_seconds: float
    live: bool  # fired while running (at a meter tick) rather than at the end
    message: str

    def to_dict(self) -> dict:
        return {"rule": self.rule, "value": self.value, "threshold": self.threshold, "unit": self.unit,
                "at_seconds": round(self.at_seconds, 6), "live": self.live, "message": self.message}


def fmt_value(v: float, kind: str) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    if kind == "time":
        for unit, div in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
            if abs(v) >= div:
                return f"{v / div:.3g} {unit}"
        return f"{v * 1e9:.0f} ns"
    if kind == "bytes":
        for unit, div in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
            if abs(v) >= div:
                return f"{v / div:.3g} {unit}"
        return f"{v:.0f} B"
    if kind == "pct":
        return f"{v:.2f} %"
    if float(v).is_integer() and abs(v) < 1e15:
        return f"{int(v):,}"
    return f"{v:.4g}"


class AlertEngine:
    """Evaluates rules against a running monitor; each rule fires at most once."""

    WARMUP = 1.0  # seconds before ips is judged live

    def __init__(self, rules: tuple[AlertRule, ...], on_alert: Callable[[Alert], None] | None = None):
        self.rules = rules
        self.on_alert = on_alert
        self.fired: dict[str, Alert] = {}

    def value(self, rule: AlertRule, mon: PerformanceMonitor, final: bool,
              seconds: float | None = None) -> float | None:
        rt = mon.runtime
        elapsed = seconds if seconds is not None else time.perf_counter() - mon.started
        if rule.scope == "global":
            s = rule.stat
            if s in ("steps", "instructions"):
                return rt.meter.steps
            if s == "ips":
                if not final and elapsed < self.WARMUP:
                    return None
                return rt.meter.steps / elapsed if elapsed > 0 else None
            if s == "errors":
                return mon.errors()
            if s == "calls":
                return mon.total_calls()
            if s == "time":
                return elapsed
            if s == "depth":
                return max(rt.meter.peak_depth, mon.peak()[0])
            if s == "threads":
                return len(mon.threads)
            if s == "memory":
                g = mon.gauges.get("memory")
                return max(rt.meter.memory, (g.max or 0) if g else 0)
            if s == "rss":
                g = mon.gauges.get("rss")
                return g.max if g is not None else mon.rss()
            if s == "handles":
                g = mon.gauges.get("handles")
                return g.max if g is not None else 0
            return None
        if rule.scope == "fn":
            live_stat = FN_STATS[rule.stat][1]
            f = mon.function(rule.target, with_hist=not live_stat, running=not final)
            if f is None:
                return 0.0 if rule.stat == "calls" else None
            s = rule.stat
            if s == "calls":
                return f.calls
            if s in ("total", "inclusive"):
                return f.inclusive_ns / 1e9
            if s in ("self", "exclusive"):
                return f.exclusive_ns / 1e9
            if s == "percall":
                return f.per_call_ns / 1e9
            h = f.hist
            if h.count == 0:
                return None
            if s == "mean":
                return h.mean / 1e9
            if s == "max":
                return h.max / 1e9
            if s == "min":
                return h.min / 1e9
            return h.percentile(float(s[1:])) / 1e9
        ops = mon.opcode_counts()
        row = ops.get(rule.target, [0, 0])
        if rule.stat == "count":
            return row[0]
        if rule.stat == "time":
            return row[1] / 1e9
        total = sum(v[0] for v in ops.values())
        return 100.0 * row[0] / total if total else 0.0

    def check(self, mon: PerformanceMonitor, *, final: bool, seconds: float | None = None) -> list[Alert]:
        new = []
        for rule in self.rules:
            if rule.text in self.fired or (not final and not rule.live):
                continue
            v = self.value(rule, mon, final, seconds)
            if v is None or not _CMP[rule.cmp](v, rule.threshold):
                continue
            at = seconds if seconds is not None else time.perf_counter() - mon.started
            what = rule.stat if rule.scope == "global" else f"{rule.scope} {rule.target} {rule.stat}"
            msg = (f"ALERT {rule.text}: {what} = {fmt_value(v, rule.kind)} "
                   f"({rule.cmp} {fmt_value(rule.threshold, rule.kind)}) at {at:.2f} s"
                   + ("" if not final else " (end of run)"))
            a = Alert(rule.text, float(v), rule.threshold, rule.kind, at, not final, msg)
            self.fired[rule.text] = a
            new.append(a)
            if self.on_alert is not None:
                self.on_alert(a)
        return new

    def tick(self, mon: PerformanceMonitor, meter: Any) -> None:
        self.check(mon, final=False)


# ---------------------------------------------------------------------------
# Config and report


@dataclass(frozen=True)
class ProfileConfig:
    run: RunConfig
    level: str = "opcode"  # "function" | "opcode"
    alerts: tuple[AlertRule, ...] = ()
    record_events: bool = False  # keep the call timeline (chrome / speedscope exports)
    max_events: int = 500_000
    hot_fraction: float = 0.10  # a function with this share of time is "hot" (JIT suggestion)
    min_loop_count: int = 100  # executions before a loop-body suggestion is made
    pair_fraction: float = 0.05  # share of instructions a pair needs to suggest a superinstruction
    min_pair_count: int = 1000


@dataclass(frozen=True)
class FunctionRow:
    qualname: str
    file: str
    line: int
    calls: int
    inclusive_s: float
    exclusive_s: float
    per_call_s: float
    p50_s: float
    p95_s: float
    p99_s: float
    max_s: float
    exact: bool

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class OpcodeRow:
    name: str
    count: int
    seconds: float
    pct_count: float
    pct_time: float

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class LineRow:
    file: str
    line: int
    function: str
    source: str
    count: int
    seconds: float

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class PairRow:
    first: str
    second: str
    count: int
    fused: bool  # a superinstruction of vm/fuse.py already covers this pair

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class TreeNode:
    id: int
    parent: int  # -1 for a thread's top-level calls
    function: str
    file: str
    line: int
    calls: int
    inclusive_s: float
    exclusive_s: float
    depth: int

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class ThreadRow:
    ident: int
    name: str
    calls: int
    instructions: int
    errors: int
    seconds: float  # time in NBC code on this thread (sum of its top-level calls)
    tree: tuple[TreeNode, ...]
    events_recorded: int
    events_truncated: bool

    def to_dict(self) -> dict:
        return {"ident": self.ident, "name": self.name, "calls": self.calls, "instructions": self.instructions,
                "errors": self.errors, "seconds": self.seconds, "call_tree": [n.to_dict() for n in self.tree],
                "events_recorded": self.events_recorded, "events_truncated": self.events_truncated}


@dataclass(frozen=True)
class Suggestion:
    kind: str  # jit | tensor-in-loop | cache-global | deep-recursion | superinstruction
    title: str
    advice: str
    where: str
    evidence: dict

    def to_dict(self) -> dict:
        return {"kind": self.kind, "title": self.title, "advice": self.advice, "where": self.where,
                "evidence": self.evidence}


@dataclass(frozen=True)
class Event:
    """One completed call of the recorded timeline (ns from the start of the profile)."""

    function: str
    file: str
    line: int
    start_ns: int
    end_ns: int
    depth: int


@dataclass(frozen=True)
class ProfileReport:
    program: str
    args: tuple[str, ...]
    sha256: str
    level: str
    seed: int
    exit_code: int
    error: dict | None
    result: str | None
    summary: dict
    functions: tuple[FunctionRow, ...]
    opcodes: tuple[OpcodeRow, ...]
    lines: tuple[LineRow, ...]
    pairs: tuple[PairRow, ...]
    threads: tuple[ThreadRow, ...]
    metrics: dict
    alerts: tuple[Alert, ...]
    rules: tuple[AlertRule, ...]
    suggestions: tuple[Suggestion, ...]
    machine: dict
    created: str
    timeline: tuple[tuple[int, str, tuple[Event, ...]], ...] = field(default=(), compare=False, repr=False)
    error_obj: Any = field(default=None, compare=False, repr=False)  # the VMError, for the NBC traceback

    @property
    def alerted(self) -> bool:
        return bool(self.alerts)

    def to_dict(self) -> dict:
        """The complete report (everything but the raw call timeline, which the exports carry)."""
        return {
            "schema": SCHEMA, "program": self.program, "args": list(self.args), "sha256": self.sha256,
            "level": self.level, "seed": self.seed, "created": self.created,
            "outcome": {"exit_code": self.exit_code, "error": self.error, "result": self.result},
            "summary": dict(self.summary),
            "functions": [r.to_dict() for r in self.functions],
            "opcodes": [r.to_dict() for r in self.opcodes],
            "lines": [r.to_dict() for r in self.lines],
            "pairs": [r.to_dict() for r in self.pairs],
            "threads": [t.to_dict() for t in self.threads],
            "metrics": self.metrics,
            "alert_rules": [r.to_dict() for r in self.rules],
            "alerts": [a.to_dict() for a in self.alerts],
            "suggestions": [s.to_dict() for s in self.suggestions],
            "machine": self.machine,
        }


def machine_info() -> dict:
    return {"platform": platform.platform(), "python": platform.python_version(),
            "implementation": platform.python_implementation(), "cpu_count": os.cpu_count(),
            "machine": platform.machine()}


def file_sha256(path: str | Path) -> str:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return ""


# ---------------------------------------------------------------------------
# Running


class Live(Protocol):
    """What ``profile_program`` needs from a live view (``report.profile_render.LiveView``)."""

    def start(self, mon: PerformanceMonitor) -> None: ...

    def stop(self) -> None: ...


def profile_program(cfg: ProfileConfig, stdout: IO[str] | None = None, *,
                    on_alert: Callable[[Alert], None] | None = None, live: Live | None = None) -> ProfileReport:
    """Load, verify and run a program under the monitor; InputError/UsageError propagate (exit 2)."""
    from nbcvm.vm import profiled

    if cfg.level == "function" and any(r.scope == "op" for r in cfg.alerts):
        raise UsageError("op: alert rules need per-opcode counts: drop --level function")
    rc = cfg.run
    rt = make_runtime(rc, stdout)
    inst = rt.load_program(Path(rc.program))
    args = [parse_arg(a) for a in rc.args]
    mon = PerformanceMonitor(cfg.level, record_events=cfg.record_events, max_events=cfg.max_events)
    engine = AlertEngine(cfg.alerts, on_alert)
    if any(r.live for r in cfg.alerts):
        mon.tick_listeners.append(engine.tick)
    profiled.install(rt, mon)
    mon.started = time.perf_counter()
    mon.started_ns = time.perf_counter_ns()
    if live is not None:
        live.start(mon)
    try:
        outcome = rt.run_main(inst, args, entry=rc.entry)
    finally:
        if live is not None:
            live.stop()
        profiled.uninstall(rt, mon)
    mon.sample_gauges()
    engine.check(mon, final=True, seconds=outcome.stats.seconds)
    return build_report(cfg, mon, rt, outcome, tuple(engine.fired.values()))


def build_report(cfg: ProfileConfig, mon: PerformanceMonitor, rt: Any, outcome: Any,
                 alerts: tuple[Alert, ...]) -> ProfileReport:
    from datetime import datetime, timezone

    rc = cfg.run
    st = outcome.stats
    funcs = mon.functions()
    total_excl = sum(f.exclusive_ns for f in funcs) or 1
    frows = []
    for f in funcs:
        h = f.hist
        p = h.percentiles() if h.count else {"p50": 0.0, "p95": 0.0, "p99": 0.0}
        frows.append(FunctionRow(f.qualname, f.file, f.line, f.calls, f.inclusive_ns / 1e9, f.exclusive_ns / 1e9,
                                 f.per_call_ns / 1e9, p["p50"] / 1e9, p["p95"] / 1e9, p["p99"] / 1e9,
                                 (h.max if h.count else 0) / 1e9, h.exact))
    frows.sort(key=lambda r: (-r.exclusive_s, r.qualname))
    pcs = mon.pc_counts() if mon.per_opcode else {}
    opcodes, lines, pairs = _opcode_views(pcs)
    peak_depth, peak_fn = mon.peak()
    rss = mon.gauges.get("rss")
    summary = {
        "seconds": st.seconds, "instructions": st.steps,
        "instructions_per_second": st.steps / st.seconds if st.seconds > 0 else 0.0,
        "calls": mon.total_calls(), "peak_depth": max(st.max_depth, peak_depth), "max_depth": rt.limits.max_depth,
        "errors": mon.errors(), "threads": len(mon.threads),
        "peak_rss_bytes": st.peak_rss_bytes, "rss_bytes_max_sampled": rss.max if rss else None,
        "memory_bytes": rt.meter.memory, "output_bytes": st.output_bytes,
        "profiled_seconds": total_excl / 1e9 if funcs else 0.0,
    }
    threads, timeline = _threads(mon)
    metrics = {"counters": {k: c.to_dict() for k, c in mon.counters.items()},
               "gauges": {k: g.to_dict() for k, g in mon.gauges.items()},
               "histograms": {k: h.to_dict() for k, h in mon.histograms.items()}}
    for f in funcs:  # per-call durations of every function, in seconds
        metrics["histograms"][f"fn:{f.qualname}:call_seconds"] = f.hist.to_dict(scale=1e-9)
    sugg = suggest(cfg, mon, rt, funcs, pcs, total_excl, peak_depth, peak_fn)
    error = outcome.error.to_dict() if outcome.error is not None else None
    from nbcvm.vm.values import to_str

    result = None if outcome.result is None else to_str(outcome.result)
    return ProfileReport(
        program=rc.program, args=tuple(rc.args), sha256=file_sha256(rc.program), level=cfg.level, seed=rc.seed,
        exit_code=outcome.exit_code, error=error, result=result, summary=summary, functions=tuple(frows),
        opcodes=opcodes, lines=lines, pairs=pairs, threads=threads, metrics=metrics, alerts=alerts,
        rules=cfg.alerts, suggestions=sugg, machine=machine_info(),
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"), timeline=timeline,
        error_obj=outcome.error)


def _opcode_views(pcs: dict) -> tuple[tuple[OpcodeRow, ...], tuple[LineRow, ...], tuple[PairRow, ...]]:
    from nbcvm.isa import BY_CODE
    from nbcvm.vm.fuse import leaders

    ops: dict[str, list[int]] = {}
    lines: dict[tuple[str, int], list] = {}
    pairs: dict[tuple[str, str], list] = {}
    for fn, (cnt, tm) in pcs.items():
        code = fn.code.code
        names = [BY_CODE[c[0]].name for c in code]
        src = fn.inst.module.source
        lead = leaders(fn)
        for pc, c in enumerate(cnt):
            if not c:
                continue
            row = ops.setdefault(names[pc], [0, 0])
            row[0] += c
            row[1] += tm[pc]
            key = (src, fn.line_of(pc))
            lr = lines.setdefault(key, [0, 0, fn.qualname])
            lr[0] += c
            lr[1] += tm[pc]
            # inside a basic block, pc is entered only from pc - 1: the pair count is exact
            if pc > 0 and pc not in lead and BY_CODE[code[pc - 1][0]].flow.value == "next":
                pr = pairs.setdefault((names[pc - 1], names[pc]), [0, False])
                pr[0] += c
                pr[1] = pr[1] or fused_pair(names, pc - 1, lead)
    total = sum(v[0] for v in ops.values()) or 1
    total_t = sum(v[1] for v in ops.values()) or 1
    orows = tuple(sorted((OpcodeRow(k, v[0], v[1] / 1e9, 100.0 * v[0] / total, 100.0 * v[1] / total_t)
                          for k, v in ops.items()), key=lambda r: (-r.count, r.name)))
    cache: dict[str, list[str]] = {}
    lrows = tuple(sorted((LineRow(f, ln, v[2], _source_line(f, ln, cache), v[0], v[1] / 1e9)
                          for (f, ln), v in lines.items()), key=lambda r: (-r.count, r.file, r.line)))
    prows = tuple(sorted((PairRow(a, b, v[0], v[1]) for (a, b), v in pairs.items()),
                         key=lambda r: (-r.count, r.first, r.second)))
    return orows, lrows, prows


_SOURCES = frozenset({"load", "push", "gload"})


def fused_pair(names: list[str], pc: int, lead: set[int]) -> bool:
    """Would vm/fuse.py put the instructions at pc and pc + 1 into one superinstruction?

    Mirrors fuse.py's shapes: S S B, S B, B store|gstore, C jt|jf, load ret, and a binary
    operation that continues straight into a call or return (S = load|push|gload,
    B = a binary operator, C = a comparison).
    """
    from nbcvm.vm.ops_arith import BINOPS, COMPARE

    a, b = names[pc], names[pc + 1]
    if a in _SOURCES and b in BINOPS:
        return True
    if a in _SOURCES and b in _SOURCES:
        return pc + 2 < len(names) and pc + 2 not in lead and names[pc + 2] in BINOPS
    if a in BINOPS and b in ("store", "gstore"):
        return True
    if a in COMPARE and b in ("jt", "jf"):
        return True
    if a in BINOPS and b in ("call", "ret"):  # a fused operation jumps straight to the call/return
        return True
    return a == "load" and b == "ret"


def _source_line(path: str, line: int, cache: dict[str, list[str]]) -> str:
    if line <= 0:
        return ""
    if path not in cache:
        try:
            cache[path] = Path(path).read_text(encoding="utf-8", errors="replace").split("\n")
        except (OSError, ValueError):
            cache[path] = []
    lines = cache[path]
    return lines[line - 1].split(";")[0].strip() if line <= len(lines) else ""


def _threads(mon: PerformanceMonitor) -> tuple[tuple[ThreadRow, ...], tuple]:
    rows, timeline = [], []
    t0 = getattr(mon, "started_ns", 0)
    for ts in mon.thread_list():
        tree: list[TreeNode] = []
        ids: dict[int, int] = {}
        stack = [(k, -1) for k in sorted(ts.root.kids.values(), key=lambda n: -n.incl)]
        stack.reverse()
        while stack:  # depth first, hottest child first; deep paths fold into their prefix
            node, parent = stack.pop()
            fn = node.fn
            if node.depth > MAX_TREE_DEPTH:
                continue
            incl, calls = node.incl, node.calls
            # at the depth cap the whole subtree folds into this node: its self time is all of it
            excl = incl if node.depth == MAX_TREE_DEPTH else node.excl
            nid = len(tree)
            ids[id(node)] = nid
            tree.append(TreeNode(nid, parent, fn.qualname, fn.inst.module.source, _line0(fn), calls,
                                 incl / 1e9, excl / 1e9, node.depth - 1))
            kids = sorted(node.kids.values(), key=lambda n: -n.incl)
            stack.extend((k, nid) for k in reversed(kids))
        instr = sum(sum(c) for c, _ in ts.pcs.values())
        calls = sum(n.calls for n in ts.nodes())
        seconds = sum(n.incl for n in ts.root.kids.values()) / 1e9
        recorded = (ts.events if ts.events is not None else ts.kept)[:ts.max_events]
        events = tuple(Event(n.fn.qualname, n.fn.inst.module.source, _line0(n.fn), s - t0, e - t0, n.depth - 1)
                       for n, s, e in sorted(recorded, key=lambda x: (x[1], -x[2])))
        truncated = ts.events_truncated or len(ts.events or ts.kept) > ts.max_events
        rows.append(ThreadRow(ts.ident, ts.name, calls, instr, ts.errors, seconds, tuple(tree), len(events),
                              truncated))
        if mon.record_events:
            timeline.append((ts.ident, ts.name, events))
    return tuple(rows), tuple(timeline)


def _line0(fn: Any) -> int:
    for ln in fn.code.lines:
        if ln:
            return ln
    return 0


# ---------------------------------------------------------------------------
# Suggestions

_NUMERIC_OPS = frozenset({"nop", "push", "pop", "dup", "swap", "over", "rot", "load", "store", "inc",
                          "jmp", "jt", "jf", "call", "ret"})
_TENSOR_MAKERS = frozenset({"tensor", "reshape", "alloc"})
_TENSOR_NATIVES = frozenset({"zeros", "ones", "full", "arange", "eye", "rand"})


def _all_fns(mon: PerformanceMonitor, pcs: dict) -> list:
    seen: dict[int, Any] = {}
    for ts in mon.thread_list():
        for n in ts.nodes():
            if n.fn is not None:
                seen[id(n.fn)] = n.fn
    for fn in pcs:
        seen[id(fn)] = fn
    return list(seen.values())


def _operand(fn: Any, pc: int, kind: str) -> int | None:
    from nbcvm.isa import BY_CODE, OperandKind

    opc, args = fn.code.code[pc]
    for a, k in zip(args, BY_CODE[opc].operands):
        if k is OperandKind(kind):
            return a
    return None


def _numeric(fn: Any) -> tuple[bool, str]:
    from nbcvm.isa import BY_CODE

    consts = fn.inst.module.consts
    names = fn.inst.module.names
    for pc, (opc, _) in enumerate(fn.code.code):
        op = BY_CODE[opc]
        if op.family == "arith":
            continue
        if op.name not in _NUMERIC_OPS:
            return False, f"{op.name} at pc {pc}"
        if op.name == "push":
            v = consts[_operand(fn, pc, "const")]
            if type(v) not in (int, float, bool):
                return False, f"push of a {type(v).__name__} at pc {pc}"
        if op.name == "call" and "." in names[_operand(fn, pc, "func")]:
            return False, f"call to {names[_operand(fn, pc, 'func')]} at pc {pc}"
    return True, ""


def _loops(fn: Any) -> list[tuple[int, int]]:
    """(head, tail) pc ranges closed by a backward jump or branch."""
    from nbcvm.isa import BY_CODE, OperandKind

    out = []
    for pc, (opc, args) in enumerate(fn.code.code):
        op = BY_CODE[opc]
        for a, k in zip(args, op.operands):
            if k is OperandKind.LABEL and a <= pc and op.name in ("jmp", "jt", "jf"):
                out.append((a, pc))
    return out


def _gstores(fn: Any, seen: set[int] | None = None) -> set[int]:
    """Globals ``fn`` and the same-module functions it calls (transitively) may store."""
    from nbcvm.isa import BY_CODE

    seen = set() if seen is None else seen
    if id(fn) in seen:
        return set()
    seen.add(id(fn))
    out: set[int] = set()
    names = fn.inst.module.names
    for pc, (opc, args) in enumerate(fn.code.code):
        name = BY_CODE[opc].name
        if name in ("gstore", "atomic_add", "cas"):
            out.add(args[0])
        elif name in ("call", "spawn"):
            callee = names[_operand(fn, pc, "func")]
            if "." not in callee and callee in fn.inst.fns:
                out |= _gstores(fn.inst.fns[callee], seen)
    return out


def _range_stores(fn: Any, lo: int, hi: int) -> set[int]:
    from nbcvm.isa import BY_CODE

    out: set[int] = set()
    names = fn.inst.module.names
    for pc in range(lo, hi + 1):
        opc, args = fn.code.code[pc]
        name = BY_CODE[opc].name
        if name in ("gstore", "atomic_add", "cas"):
            out.add(args[0])
        elif name in ("call", "spawn"):
            callee = names[_operand(fn, pc, "func")]
            if "." not in callee and callee in fn.inst.fns:
                out |= _gstores(fn.inst.fns[callee])
    return out


def _where(fn: Any, pc: int) -> str:
    return f"{fn.inst.module.source}:{fn.line_of(pc)}"


def suggest(cfg: ProfileConfig, mon: PerformanceMonitor, rt: Any, funcs: list, pcs: dict, total_excl: int,
            peak_depth: int, peak_fn: Any) -> tuple[Suggestion, ...]:
    from nbcvm.isa import BY_CODE

    out: list[Suggestion] = []
    by_q = {f.qualname: f for f in funcs}
    fns = _all_fns(mon, pcs)
    # 1. hot numeric function -> JIT
    for fn in fns:
        f = by_q.get(fn.qualname)
        if f is None or f.exclusive_ns < cfg.hot_fraction * total_excl:
            continue
        ok, _why = _numeric(fn)
        if ok:
            used = sorted({BY_CODE[c[0]].name for c in fn.code.code})
            share = 100.0 * f.exclusive_ns / total_excl
            out.append(Suggestion(
                "jit", f"{fn.qualname} is hot and purely numeric",
                "run it with the JIT (nbcvm run --jit auto): every value is an int or float, so numba "
                "can compile it", f"{fn.inst.module.source}:{_line0(fn)}",
                {"function": fn.qualname, "share_of_time_pct": round(share, 1), "calls": f.calls,
                 "exclusive_s": round(f.exclusive_ns / 1e9, 6), "opcodes": used}))
    for fn in fns:
        cnt = pcs.get(fn, (None, None))[0]
        names = fn.inst.module.names
        code = fn.code.code
        loops = _loops(fn)
        done_alloc: set[int] = set()
        done_g: set[tuple[int, int]] = set()
        for lo, hi in loops:
            # 2. tensor allocated inside a loop
            for pc in range(lo, hi + 1):
                opn = BY_CODE[code[pc][0]].name
                maker = None
                if opn in _TENSOR_MAKERS:
                    maker = opn
                elif opn == "call":
                    callee = names[_operand(fn, pc, "func")]
                    mod, _, fname = callee.rpartition(".")
                    if mod == "tensor" and fname in _TENSOR_NATIVES:
                        maker = f"call {callee}"
                if maker is None or pc in done_alloc:
                    continue
                n = cnt[pc] if cnt is not None else None
                if n is not None and n < 2:
                    continue
                done_alloc.add(pc)
                out.append(Suggestion(
                    "tensor-in-loop", f"tensor allocated inside a loop in {fn.qualname}",
                    "hoist the allocation out of the loop (reuse one tensor), or wrap the body in "
                    "region ... endregion so each iteration's tensors are released",
                    _where(fn, pc),
                    {"function": fn.qualname, "instruction": maker, "pc": pc, "executions": n,
                     "loop_lines": [fn.line_of(lo), fn.line_of(hi)]}))
            # 3. the same global loaded again and again in a loop that never stores it
            stores = _range_stores(fn, lo, hi)
            for pc in range(lo, hi + 1):
                if BY_CODE[code[pc][0]].name != "gload":
                    continue
                g = code[pc][1][0]
                if g in stores or (g, lo) in done_g:
                    continue
                n = cnt[pc] if cnt is not None else None
                if n is not None and n < cfg.min_loop_count:
                    continue
                done_g.add((g, lo))
                gname = fn.inst.module.globals[g][0]
                out.append(Suggestion(
                    "cache-global", f"global '{gname}' reloaded in a loop of {fn.qualname}",
                    f"load '{gname}' once into a local before the loop (gload {gname}; store tmp) -- nothing "
                    "in the loop stores it", _where(fn, pc),
                    {"function": fn.qualname, "global": gname, "executions": n, "pc": pc,
                     "loop_lines": [fn.line_of(lo), fn.line_of(hi)]}))
    # 4. recursion close to the depth limit
    max_depth = rt.limits.max_depth
    if max_depth and peak_depth > 0.5 * max_depth:
        name = peak_fn.qualname if peak_fn is not None else "?"
        out.append(Suggestion(
            "deep-recursion", f"recursion reached {100.0 * peak_depth / max_depth:.0f}% of the depth limit",
            "turn the recursion into a loop (or an explicit stack), or raise --max-depth if the depth is "
            "expected", f"{peak_fn.inst.module.source}:{_line0(peak_fn)}" if peak_fn is not None else "",
            {"peak_depth": peak_depth, "max_depth": max_depth, "function_at_peak": name}))
    # 5. hot opcode pair that no superinstruction covers
    if pcs:
        _, _, pairs = _opcode_views(pcs)
        total = sum(sum(c) for c, _ in pcs.values()) or 1
        for p in pairs:
            if p.fused or p.count < cfg.min_pair_count or p.count < cfg.pair_fraction * total:
                continue
            out.append(Suggestion(
                "superinstruction", f"hot opcode pair {p.first} -> {p.second}",
                f"a fused '{p.first}+{p.second}' superinstruction in vm/fuse.py would save one dispatch "
                f"per execution", "",
                {"first": p.first, "second": p.second, "count": p.count,
                 "share_of_instructions_pct": round(100.0 * p.count / total, 1)}))
    return tuple(out)


# ---------------------------------------------------------------------------
# History and baselines


def log_record(report: ProfileReport) -> dict:
    s = report.summary
    return {"time": report.created, "program": report.program, "sha256": report.sha256,
            "args": list(report.args), "level": report.level, "exit_code": report.exit_code,
            "seconds": s["seconds"], "instructions": s["instructions"],
            "instructions_per_second": s["instructions_per_second"], "calls": s["calls"],
            "peak_depth": s["peak_depth"], "peak_rss_bytes": s["peak_rss_bytes"],
            "alerts": [a.rule for a in report.alerts],
            "top_functions": [{"function": f.qualname, "exclusive_s": f.exclusive_s, "calls": f.calls}
                              for f in report.functions[:5]],
            "machine": report.machine}


def append_log(directory: str | Path, report: ProfileReport) -> Path:
    """Append one JSON line to DIR/profile-log.jsonl (the folder is made if missing)."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    path = d / "profile-log.jsonl"
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(log_record(report), sort_keys=True) + "\n")
    return path


def read_log(path: str | Path) -> list[dict]:
    return [json.loads(ln) for ln in Path(path).read_text(encoding="utf-8").splitlines() if ln.strip()]


def load_report(path: str | Path) -> dict:
    """A saved ``--json`` report (or ``--export FILE --format json``); UsageError if it is not one."""
    p = Path(path)
    try:
        d = json.loads(p.read_text(encoding="utf-8"))
    except OSError as e:
        raise UsageError(f"{path}: cannot read: {e.strerror or e}") from None
    except ValueError as e:
        raise UsageError(f"{path}: not a JSON profile report ({e})") from None
    if not isinstance(d, dict) or d.get("schema") != SCHEMA:
        raise UsageError(f"{path}: not an nbcvm profile report (expected schema {SCHEMA})")
    return d


@dataclass(frozen=True)
class CompareRow:
    name: str  # a function, or "(overall) ..." for the totals
    old: float | None
    new: float | None
    change_pct: float | None  # (new - old) / old
    old_calls: int | None = None
    new_calls: int | None = None

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class Comparison:
    old: str
    new: str
    overall: tuple[CompareRow, ...]
    functions: tuple[CompareRow, ...]
    max_time_regression: float
    max_throughput_regression: float
    time_change_pct: float | None
    throughput_change_pct: float | None
    regression: bool
    reasons: tuple[str, ...]
    notes: tuple[str, ...]

    def to_dict(self) -> dict:
        return {"old": self.old, "new": self.new, "overall": [r.to_dict() for r in self.overall],
                "functions": [r.to_dict() for r in self.functions],
                "max_time_regression_pct": self.max_time_regression * 100,
                "max_throughput_regression_pct": self.max_throughput_regression * 100,
                "time_change_pct": self.time_change_pct, "throughput_change_pct": self.throughput_change_pct,
                "regression": self.regression, "reasons": list(self.reasons), "notes": list(self.notes)}


def _pct(old: float | None, new: float | None) -> float | None:
    if old is None or new is None or old == 0:
        return None
    return 100.0 * (new - old) / old


def compare(old: dict, new: dict, *, max_time_regression: float = 0.20,
            max_throughput_regression: float = 0.15, old_name: str = "baseline",
            new_name: str = "this run") -> Comparison:
    """Compare two report dicts: % change per function (exclusive time) and overall; a verdict."""
    so, sn = old.get("summary", {}), new.get("summary", {})
    overall = []
    for key, label in (("seconds", "wall time (s)"), ("instructions", "instructions"),
                       ("instructions_per_second", "instructions/s"), ("calls", "calls"),
                       ("peak_depth", "peak depth")):
        o, n = so.get(key), sn.get(key)
        overall.append(CompareRow(f"(overall) {label}", o, n, _pct(o, n)))
    fo = {f["qualname"]: f for f in old.get("functions", [])}
    fnew = {f["qualname"]: f for f in new.get("functions", [])}
    rows = []
    for name in sorted(set(fo) | set(fnew), key=lambda q: -max(fo.get(q, {}).get("exclusive_s", 0),
                                                               fnew.get(q, {}).get("exclusive_s", 0))):
        a, b = fo.get(name), fnew.get(name)
        o = a["exclusive_s"] if a else None
        n = b["exclusive_s"] if b else None
        rows.append(CompareRow(name, o, n, _pct(o, n), a["calls"] if a else None, b["calls"] if b else None))
    t = _pct(so.get("seconds"), sn.get("seconds"))
    ips = _pct(so.get("instructions_per_second"), sn.get("instructions_per_second"))
    reasons = []
    if t is not None and t > max_time_regression * 100:
        reasons.append(f"wall time {t:+.1f}% (allowed +{max_time_regression * 100:.0f}%)")
    if ips is not None and -ips > max_throughput_regression * 100:
        reasons.append(f"throughput {ips:+.1f}% (allowed -{max_throughput_regression * 100:.0f}%)")
    notes = []
    if old.get("level") != new.get("level"):
        notes.append(f"profiling levels differ ({old.get('level')} vs {new.get('level')}): "
                     "times include different overheads")
    if old.get("sha256") and new.get("sha256") and old["sha256"] != new["sha256"]:
        notes.append("the program changed between the two reports (sha256 differs)")
    if list(old.get("args", [])) != list(new.get("args", [])):
        notes.append("the programs ran with different arguments")
    return Comparison(old_name, new_name, tuple(overall), tuple(rows), max_time_regression,
                      max_throughput_regression, t, ips, bool(reasons), tuple(reasons), tuple(notes))


def dumps(report: ProfileReport) -> str:
    return dumps_dict(report.to_dict())


def dumps_dict(d: dict) -> str:
    return json.dumps(d, indent=2, sort_keys=True, default=str)
