"""Rich renderings of reports (the only module family that imports rich)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table


def _si(x: float) -> str:
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= div:
            return f"{x / div:.2f}{unit}"
    return f"{x:.0f}"


def _bytes(n: float) -> str:
    for unit, div in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= div:
            return f"{n / div:.1f} {unit}"
    return f"{n:.0f} B"


def run_stats(console: Console, outcome: Any) -> None:
    s = outcome.stats
    t = Table(title="run statistics", show_header=True, header_style="bold")
    t.add_column("metric")
    t.add_column("value", justify="right")
    t.add_row("exit code", str(outcome.exit_code))
    t.add_row("instructions executed", f"{s.steps:,}")
    t.add_row("calls", f"{s.calls:,}")
    t.add_row("max call depth", f"{s.max_depth:,}")
    t.add_row("wall time", f"{s.seconds * 1000:.1f} ms")
    t.add_row("instructions/s", _si(s.ips))
    t.add_row("output", _bytes(s.output_bytes))
    t.add_row("peak memory (RSS)", _bytes(s.peak_rss_bytes))
    if outcome.error is not None:
        t.add_row("error", f"{outcome.error.type_name}: {outcome.error.message}")
    console.print(t)


def jit_table(console: Console, report: dict) -> None:
    """``run --stats`` with the JIT on: the tier of every promoted function, and compile/cache time."""
    t = Table(title=f"JIT ({report['mode']})", header_style="bold")
    t.add_column("function")
    t.add_column("tier")
    t.add_column("why / compiled signatures", overflow="fold")
    for d in report["decisions"]:
        t.add_row(d["function"], d["tier"], d["reason"] or ", ".join(d["specs"]))
    events = report["events"]
    for kind, label in (("numba-compiled", "compiled"), ("numba-cache-hit", "loaded from the disk cache"),
                        ("numba-loaded", "numba start-up")):
        hits = [e for e in events if e["event"] == kind]
        if hits:
            secs = sum(e.get("seconds", 0.0) for e in hits)
            t.add_row(f"[dim]{len(hits)} x {label}[/]", "", f"[dim]{secs * 1000:.1f} ms[/]")
    console.print(t)


def verify_results(console: Console, results: list) -> None:
    t = Table(title="verify", header_style="bold")
    for col in ("file", "module", "result", "functions", "instructions", "max stack", "time"):
        t.add_column(col, overflow="fold",
                     justify="right" if col in ("functions", "instructions", "max stack", "time") else "left")
    for r in results:
        t.add_row(r.path, r.module or "-", "[green]ok[/]" if r.ok else f"[red]{len(r.errors)} error(s)[/]",
                  str(r.functions), str(r.instructions), str(r.max_stack), f"{r.seconds * 1000:.1f} ms")
    console.print(t)


def fault_table(console: Console, rows: list, title: str = "fault injection and recovery") -> None:
    t = Table(title=title, header_style="bold")
    for c in ("point", "probability", "injected", "recovered", "propagated", "recovery rate"):
        t.add_column(c, justify="left" if c == "point" else "right")
    for r in rows:
        rate = "-" if r["recovery_rate"] is None else f"{r['recovery_rate']:.1%}"
        t.add_row(r["point"], f"{r['probability']:g}", str(r["injected"]), str(r["recovered"]),
                  _red(r["propagated"]), rate)
    console.print(t)


def stress_report(console: Console, report: Any) -> None:
    t = Table(title=f"stress: {report.threads} threads, switch interval {report.switch_interval:g}s "
              "(latency per call in µs)", header_style="bold", pad_edge=False, padding=(0, 1))
    cols = ("workload", "ops", "ops/s", "p50", "p99", "lock wait", "cont.", "viol.", "dlock", "err",
            "result")
    for c in cols:
        t.add_column(c, justify="left" if c in ("workload", "result") else "right", no_wrap=True)
    for w in report.workloads:
        t.add_row(w.name, _si(w.operations), _si(w.ops_per_s), _si(w.p50_us), _si(w.p99_us),
                  f"{w.lock_wait_s * 1000:.1f} ms", f"{w.contention:.1%}",
                  _red(w.violations), _red(w.deadlocks), _red(w.errors),
                  "[red]HUNG[/]" if w.hung else ("[green]ok[/]" if w.ok else "[red]FAIL[/]"))
    console.print(t)
    for w in report.workloads:
        if w.faults:
            fault_table(console, list(w.faults), title=f"{w.name}: fault injection and recovery")
        for m in w.messages:
            console.print(f"  [bold]{w.name}[/]: {m}")
        for name, stack in w.stacks.items():
            console.print(f"  [bold]{w.name}[/] {name} stack:")
            for frame in stack:
                console.print(f"      {frame}")


def _red(n: int) -> str:
    return f"[red]{n}[/]" if n else "0"
