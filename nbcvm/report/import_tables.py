"""Rich rendering of an ``ImportReport`` (``nbcvm validate-imports``'s table format).

Four parts, top to bottom: a summary line; the findings table (severity,
kind, module, location, message, suggestion); each cycle as a path; and the
per-module table (module, ok, load time) -- for a big tree only the slowest
``slowest`` modules, so the table stays readable.  Stale baseline entries are
listed last.  Also the progress bar the command shows on a terminal.

All text from the report is passed as ``Text`` (never markup), so a module
name or message with square brackets is shown as is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO

from rich.console import Console
from rich.table import Table
from rich.text import Text

from nbcvm.report.ci_formats import display_path
from nbcvm.tools.findings import Finding, ImportReport

SLOWEST = 20
_SEVERITY_STYLE = {"error": "bold red", "warning": "yellow"}


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 10 else f"{seconds:.1f} s"


def _location(f: Finding) -> str:
    if not f.file:
        return "-"
    where = display_path(f.file)
    if f.line:
        where += f":{f.line}" + (f":{f.col}" if f.col else "")
    return where


def summary_text(report: ImportReport) -> Text:
    failed = sum(1 for m in report.modules if not m.ok)
    verdict = Text("OK", style="bold green") if report.ok else Text("FAILED", style="bold red")
    parts = [f"{len(report.modules)} module(s) checked", f"{failed} failed to import",
             f"{len(report.errors)} error(s)", f"{len(report.warnings)} warning(s)",
             f"{len(report.cycles)} cycle(s)"]
    if report.baseline_suppressed:
        parts.append(f"{report.baseline_suppressed} suppressed by the baseline")
    if report.stale_baseline:
        n = len(report.stale_baseline)
        parts.append(f"{n} stale baseline entr{'y' if n == 1 else 'ies'}")
    text = Text(f"validate-imports ({report.tool}): ")
    text.append_text(verdict)
    text.append(" -- " + ", ".join(parts) + f" in {_ms(report.seconds)}")
    return text


def findings_table(findings: tuple[Finding, ...]) -> Table:
    t = Table(title="findings", header_style="bold", show_lines=False, expand=False)
    t.add_column("severity", no_wrap=True)
    t.add_column("kind", no_wrap=True)
    t.add_column("module", overflow="fold")
    t.add_column("location", overflow="fold")
    t.add_column("message", overflow="fold", ratio=3)
    t.add_column("suggestion", overflow="fold", ratio=2)
    for f in findings:
        t.add_row(Text(f.severity, style=_SEVERITY_STYLE.get(f.severity, "")), Text(f.kind), Text(f.module),
                  Text(_location(f)), Text(f.message), Text(f.suggestion or ""))
    return t


def cycles_text(report: ImportReport) -> Text:
    text = Text()
    cycles = [f for f in report.findings if f.kind in ("cycle", "package-cycle") and f.detail]
    for i, f in enumerate(cycles):
        if i:
            text.append("\n")
        text.append("cycle ", style="bold")
        text.append(" -> ".join(f.detail), style="cyan")
        text.append(f"  (closed by the import at {_location(f)})")
    return text


def modules_table(report: ImportReport, slowest: int = SLOWEST) -> Table:
    mods = sorted(report.modules, key=lambda m: (-m.seconds, m.name))
    shown = mods if len(mods) <= slowest else mods[:slowest]
    caption = None if len(shown) == len(mods) else f"the slowest {len(shown)} of {len(mods)} modules"
    t = Table(title="modules", caption=caption, header_style="bold")
    t.add_column("module", overflow="fold")
    t.add_column("ok", justify="center", no_wrap=True)
    t.add_column("load time", justify="right", no_wrap=True)
    t.add_column("file", overflow="fold")
    for m in shown:
        ok = Text("yes", style="green") if m.ok else Text("no", style="bold red")
        t.add_row(Text(m.name), ok, _ms(m.seconds), Text(display_path(m.file) if m.file else "-"))
    return t


def import_report(console: Console, report: ImportReport, *, slowest: int = SLOWEST) -> None:
    """Print the whole report: summary, findings, cycles, modules, stale baseline entries."""
    console.print(summary_text(report))
    if report.findings:
        console.print(findings_table(report.findings))
    cycles = cycles_text(report)
    if cycles.plain:
        console.print(cycles)
    if report.modules:
        console.print(modules_table(report, slowest))
    if report.stale_baseline:
        console.print(Text("stale baseline entries (no longer found; rewrite the baseline to drop them):",
                           style="yellow"))
        for entry in report.stale_baseline:
            console.print(Text(f"  {entry}"))


def import_report_to_file(fh: IO[str], report: ImportReport, *, width: int = 120) -> None:
    """The same rendering as plain text (no colours, no control sequences) for a file."""
    import_report(Console(file=fh, width=width, no_color=True, force_terminal=False), report)


@contextmanager
def progress_bar(console: Console) -> Iterator[Callable[[str, int, int, str], None] | None]:
    """A progress callback ``(phase, done, total, label)`` drawing on ``console``.

    Yields None when the console is not a terminal, so that logs and pipes get
    no control sequences.
    """
    if not console.is_terminal:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    names = {"nbc": "NBC modules", "python": "Python modules"}
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), TextColumn("{task.fields[label]}", markup=False),
                  console=console, transient=True) as bar:
        tasks: dict[str, int] = {}

        def update(phase: str, done: int, total: int, label: str) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(names.get(phase, phase), total=total, label="")
            bar.update(tasks[phase], completed=done, total=total, label=label)

        yield update


__all__ = ["SLOWEST", "cycles_text", "findings_table", "import_report", "import_report_to_file", "modules_table",
           "progress_bar", "summary_text"]
