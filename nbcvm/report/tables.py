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


def verify_results(console: Console, results: list) -> None:
    t = Table(title="verify", header_style="bold")
    for col in ("file", "module", "result", "functions", "instructions", "max stack", "time"):
        t.add_column(col, overflow="fold",
                     justify="right" if col in ("functions", "instructions", "max stack", "time") else "left")
    for r in results:
        t.add_row(r.path, r.module or "-", "[green]ok[/]" if r.ok else f"[red]{len(r.errors)} error(s)[/]",
                  str(r.functions), str(r.instructions), str(r.max_stack), f"{r.seconds * 1000:.1f} ms")
    console.print(t)
