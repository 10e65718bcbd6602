"""Rich rendering of a LeakReport, and the progress bar ``nbcvm leak-check`` draws on stderr."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from nbcvm.report.tables import _bytes


def _amount(v: float, unit: str) -> str:
    if unit == "bytes":
        return ("-" if v < 0 else "") + _bytes(abs(v))
    return f"{v:,.0f}" if float(v).is_integer() else f"{v:,.2f}"


def _signed(v: float, unit: str) -> str:
    return ("+" if v > 0 else "") + _amount(v, unit) if v else "0"


def leak_report(console: Console, report: Any) -> None:
    args = " ".join(report.args)
    t = Table(title=f"leak-check {report.program} ({report.entry}{' ' + args if args else ''}): "
              f"{report.runs} runs after {report.warmup} warm-up, {report.seconds:.1f} s",
              header_style="bold", pad_edge=False, padding=(0, 1))
    for c in ("metric", "first", "last", "growth", "slope/run", "trend", "verdict", "why"):
        t.add_column(c, justify="left" if c in ("metric", "verdict", "why") else "right",
                     no_wrap=c != "why", overflow="fold")
    for m in report.metrics:
        if m.verdict is None:
            t.add_row(m.name, "-", "-", "-", "-", "-", "[dim]n/a[/]", escape(m.note))
            continue
        v = m.verdict
        if not m.values or (m.name.startswith("handles.") and not any(m.values)):
            continue  # a kind that never had a live handle while sampled
        verdict = "[red bold]LEAK[/]" if m.leak else "[green]clean[/]"
        t.add_row(m.name, _amount(m.values[0], m.unit), _amount(m.values[-1], m.unit),
                  _signed(v.growth, m.unit), _signed(round(v.slope, 2), m.unit) if m.unit == "count"
                  else _signed(v.slope, m.unit), f"{v.relative_growth:+.2%}", verdict, escape(v.reason))
    console.print(t)
    if report.sites:
        s = Table(title="growing handle sites (first vs last sample)", header_style="bold", pad_edge=False,
                  padding=(0, 1))
        for c in ("where", "function", "kind", "+count", "+bytes", "source"):
            s.add_column(c, justify="right" if c.startswith("+") else "left", overflow="fold")
        for g in report.sites:
            s.add_row(escape(g.where), escape(g.function), g.kind, f"+{g.count_growth:,}",
                      _signed(g.bytes_growth, "bytes"), escape(g.source))
        console.print(s)
    if report.globals:
        gt = Table(title="growing globals (VM data reachable from each)", header_style="bold", pad_edge=False,
                   padding=(0, 1))
        for c in ("global", "first", "last", "growth"):
            gt.add_column(c, justify="left" if c == "global" else "right")
        for g in report.globals:
            gt.add_row(escape(f"{g.module}.{g.name}"), _bytes(g.first), _bytes(g.last),
                       _signed(g.last - g.first, "bytes"))
        console.print(gt)
    if report.python_sites:
        p = Table(title="growing Python allocation sites (tracemalloc)", header_style="bold", pad_edge=False,
                  padding=(0, 1))
        p.add_column("where", overflow="fold")
        p.add_column("+size", justify="right")
        p.add_column("+blocks", justify="right")
        for site in report.python_sites:
            p.add_row(escape(f"{site.filename}:{site.lineno}"), _signed(site.size_diff, "bytes"),
                      f"{site.count_diff:+,}")
        console.print(p)
    if report.budget_exceeded:
        console.print(f"[red bold]RSS budget exceeded[/] at run {report.budget_exceeded_at}: "
                      f"{_bytes(report.peak_rss)} > --max-rss {_bytes(report.max_rss)}")
    if report.leaks:
        console.print(f"[red bold]leak[/]: {', '.join(m.name for m in report.leaks)}")
    elif not report.budget_exceeded:
        console.print("[green bold]clean[/]: no metric grows")


class LeakProgress:
    """Callable ``(phase, done, total)``: a transient progress bar, redrawn at most 10x/s.

    It refreshes by hand (no refresh thread, so the thread count it measures is
    not disturbed) and keeps a 1 s speed window, so its own samples stay few.
    """

    def __init__(self, console: Console):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._p = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                           TimeRemainingColumn(), console=console, transient=True, auto_refresh=False,
                           speed_estimate_period=1.0)
        self._task = None
        self._last = 0.0

    def __call__(self, phase: str, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self._last < 0.1 and done < total:
            return
        self._last = now
        if self._task is None:
            self._p.start()
            self._task = self._p.add_task(phase, total=total)
        self._p.update(self._task, completed=done, description=phase, refresh=True)

    def close(self) -> None:
        if self._task is not None:
            self._p.stop()
