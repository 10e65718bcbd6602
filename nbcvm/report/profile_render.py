"""Rich renderings for ``nbcvm profile``: report tables, the call tree, comparisons, the live view."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from nbcvm.report.tables import _bytes, _si

SORTS = ("time", "calls", "inclusive", "percall", "name")


def _t(s: float | None) -> str:
    if s is None:
        return "-"
    if s >= 1:
        return f"{s:.3f}s"
    if s >= 1e-3:
        return f"{s * 1e3:.3g}ms"
    if s >= 1e-6:
        return f"{s * 1e6:.3g}µs"
    return f"{s * 1e9:.0f}ns"


def _sorted_functions(rows: tuple, sort: str) -> list:
    key = {"time": lambda r: -r.exclusive_s, "calls": lambda r: -r.calls, "inclusive": lambda r: -r.inclusive_s,
           "percall": lambda r: -r.per_call_s, "name": lambda r: r.qualname}[sort]
    return sorted(rows, key=key)


def summary_table(report: Any) -> Table:
    s = report.summary
    t = Table(title=f"profile of {report.program} ({report.level} level)", header_style="bold")
    t.add_column("metric")
    t.add_column("value", justify="right")
    t.add_row("exit code", str(report.exit_code))
    t.add_row("wall time", _t(s["seconds"]))
    t.add_row("instructions", f"{s['instructions']:,}")
    t.add_row("instructions/s", _si(s["instructions_per_second"]))
    t.add_row("calls", f"{s['calls']:,}")
    t.add_row("peak call depth", f"{s['peak_depth']:,} of {s['max_depth']:,}")
    t.add_row("errors raised", f"{s['errors']:,}")
    t.add_row("threads", str(s["threads"]))
    if s.get("rss_bytes_max_sampled"):
        t.add_row("RSS (highest sampled)", _bytes(s["rss_bytes_max_sampled"]))
    t.add_row("peak RSS (process)", _bytes(s["peak_rss_bytes"]))
    if report.error:
        t.add_row("error", f"{report.error.get('type')}: {report.error.get('message')}")
    return t


def functions_table(report: Any, top: int, sort: str, width: int = 120) -> Table:
    """Calls, inclusive/exclusive/per-call time; per-call percentiles as the width allows."""
    total = sum(r.exclusive_s for r in report.functions) or 1.0
    pcts = ("p50", "p95", "p99") if width >= 100 else ("p95",) if width >= 88 else ()
    t = Table(title=f"hot functions (top {top}, by {sort})", header_style="bold", box=box.SIMPLE_HEAD)
    for col in ("function", "calls", "inclusive", "exclusive", "%", "per call", *pcts):
        t.add_column(col, justify="left" if col == "function" else "right", no_wrap=col != "function",
                     overflow="fold" if col == "function" else "ellipsis", min_width=12 if col == "function" else None)
    for r in _sorted_functions(report.functions, sort)[:top]:
        t.add_row(r.qualname, f"{r.calls:,}", _t(r.inclusive_s), _t(r.exclusive_s),
                  f"{100 * r.exclusive_s / total:.1f}", _t(r.per_call_s), *(_t(getattr(r, f"{p}_s")) for p in pcts))
    return t


def opcodes_table(report: Any, top: int, sort: str) -> Table:
    rows = list(report.opcodes)
    if sort in ("time", "inclusive", "percall"):
        rows.sort(key=lambda r: -r.seconds)
    elif sort == "name":
        rows.sort(key=lambda r: r.name)
    t = Table(title=f"opcodes (top {top})", header_style="bold")
    for col in ("opcode", "count", "% count", "time", "% time", "per op"):
        t.add_column(col, justify="left" if col == "opcode" else "right")
    for r in rows[:top]:
        t.add_row(r.name, f"{r.count:,}", f"{r.pct_count:.1f}", _t(r.seconds), f"{r.pct_time:.1f}",
                  _t(r.seconds / r.count if r.count else 0))
    return t


def lines_table(report: Any, top: int, sort: str) -> Table:
    rows = list(report.lines)
    if sort in ("time", "inclusive", "percall"):
        rows.sort(key=lambda r: -r.seconds)
    elif sort == "name":
        rows.sort(key=lambda r: (r.file, r.line))
    t = Table(title=f"hot lines (top {top})", header_style="bold")
    for col in ("file:line", "function", "source", "count", "time"):
        t.add_column(col, justify="right" if col in ("count", "time") else "left",
                     overflow="fold" if col in ("source", "function", "file:line") else "ellipsis",
                     min_width=10 if col == "source" else None)
    for r in rows[:top]:
        t.add_row(f"{Path(r.file).name}:{r.line}", r.function, r.source, f"{r.count:,}", _t(r.seconds))
    return t


def call_tree(report: Any, max_depth: int = 8, min_share: float = 0.005) -> Tree:
    root = Tree("[bold]call tree[/] (inclusive time, calls)")
    for th in report.threads:
        total = sum(n.inclusive_s for n in th.tree if n.parent == -1) or 1e-12
        branch = root.add(f"thread {th.name}") if len(report.threads) > 1 else root
        nodes: dict[int, Tree] = {-1: branch}
        hidden = 0
        for n in th.tree:
            parent = nodes.get(n.parent)
            if parent is None or n.depth >= max_depth or n.inclusive_s < min_share * total:
                hidden += parent is not None
                continue
            label = (f"{n.function}  [cyan]{_t(n.inclusive_s)}[/] ({100 * n.inclusive_s / total:.1f}%)"
                     f"  self {_t(n.exclusive_s)}  [dim]x{n.calls:,}[/]")
            nodes[n.id] = parent.add(label)
        if hidden:
            branch.add(f"[dim]... {hidden} smaller or deeper path(s) not shown[/]")
    return root


def suggestions_view(report: Any) -> Table | None:
    if not report.suggestions:
        return None
    t = Table(title="suggestions", header_style="bold", show_lines=True)
    t.add_column("kind")
    t.add_column("finding and advice", overflow="fold")
    t.add_column("evidence", overflow="fold")
    for s in report.suggestions:
        ev = ", ".join(f"{k}={v}" for k, v in s.evidence.items())
        where = f" [dim]({s.where})[/]" if s.where else ""
        t.add_row(s.kind, f"[bold]{s.title}[/]{where}\n{s.advice}", ev)
    return t


def threads_table(report: Any) -> Table:
    t = Table(title="threads", header_style="bold")
    for col in ("thread", "ident", "calls", "instructions", "errors", "time in NBC"):
        t.add_column(col, justify="left" if col == "thread" else "right")
    for th in report.threads:
        t.add_row(th.name, str(th.ident), f"{th.calls:,}", f"{th.instructions:,}", str(th.errors), _t(th.seconds))
    return t


def alerts_view(report: Any) -> Text | None:
    if not report.alerts:
        return None
    return Text("\n".join(a.message for a in report.alerts), style="bold red")


def render_report(console: Console, report: Any, *, top: int = 15, sort: str = "time", tree: bool = True,
                  tree_depth: int = 8) -> None:
    console.print(summary_table(report))
    console.print(functions_table(report, top, sort, console.width))
    if report.opcodes:
        console.print(opcodes_table(report, top, sort))
    if report.lines:
        console.print(lines_table(report, top, sort))
    if len(report.threads) > 1:
        console.print(threads_table(report))
    if tree:
        console.print(call_tree(report, tree_depth))
    s = suggestions_view(report)
    if s is not None:
        console.print(s)
    a = alerts_view(report)
    if a is not None:
        console.print(a)


def _pct(v: float | None) -> str:
    if v is None:
        return "-"
    style = "red" if v > 0.5 else "green" if v < -0.5 else ""
    txt = f"{v:+.1f}%"
    return f"[{style}]{txt}[/]" if style else txt


def _num(v: Any, label: str) -> str:
    if v is None:
        return "-"
    if "(s)" in label:
        return _t(v)
    if "/s" in label:
        return _si(v)
    return f"{v:,}" if isinstance(v, int) else f"{v:,.4g}"


def render_comparison(console: Console, cmp: Any, top: int = 15) -> None:
    t = Table(title=f"comparison: {cmp.old} -> {cmp.new}", header_style="bold")
    for col in ("", "old", "new", "change"):
        t.add_column(col, justify="left" if not col else "right")
    for r in cmp.overall:
        t.add_row(r.name, _num(r.old, r.name), _num(r.new, r.name), _pct(r.change_pct))
    console.print(t)
    f = Table(title=f"functions, exclusive time (top {top})", header_style="bold")
    for col in ("function", "old", "new", "change", "calls old", "calls new"):
        f.add_column(col, justify="left" if col == "function" else "right")
    for r in cmp.functions[:top]:
        f.add_row(r.name, _t(r.old), _t(r.new), _pct(r.change_pct),
                  "-" if r.old_calls is None else f"{r.old_calls:,}",
                  "-" if r.new_calls is None else f"{r.new_calls:,}")
    console.print(f)
    for n in cmp.notes:
        console.print(f"[yellow]note:[/] {n}")
    if cmp.regression:
        console.print(f"[bold red]REGRESSION[/]: {'; '.join(cmp.reasons)}")
    else:
        console.print(f"[bold green]no regression[/] (limits: time +{cmp.max_time_regression * 100:.0f}%, "
                      f"throughput -{cmp.max_throughput_regression * 100:.0f}%)")


# ---------------------------------------------------------------------------
# live view


def live_table(snap: dict, top: int = 12) -> Group:
    """A py-spy-top-like view of a monitor snapshot."""
    head = Text.assemble(
        ("nbcvm profile", "bold"), f"  {snap['seconds']:.1f} s  ",
        f"instructions {snap['steps']:,}  ", f"{_si(snap['ips'])} ips  ", f"calls {snap['calls']:,}  ",
        f"errors {snap['errors']}  ", f"threads {snap['threads']}  ",
        f"RSS {_bytes(snap['rss'])}" if snap.get("rss") else "")
    funcs = sorted(snap["functions"], key=lambda f: -f.exclusive_ns)[:top]
    total = sum(f.exclusive_ns for f in snap["functions"]) or 1
    t = Table(header_style="bold reverse", box=None, expand=False)
    for col in ("%Own", "%Total", "OwnTime", "TotalTime", "Calls", "Function"):
        t.add_column(col, justify="left" if col == "Function" else "right")
    for f in funcs:
        t.add_row(f"{100 * f.exclusive_ns / total:5.1f}%", f"{100 * f.inclusive_ns / total:5.1f}%",
                  _t(f.exclusive_ns / 1e9), _t(f.inclusive_ns / 1e9), f"{f.calls:,}", f.qualname)
    parts: list = [head, t]
    ops = snap.get("opcodes") or {}
    if ops:
        tot = sum(v[0] for v in ops.values()) or 1
        hot = sorted(ops.items(), key=lambda kv: -kv[1][0])[:8]
        parts.append(Text("opcodes: " + "  ".join(f"{k} {100 * v[0] / tot:.0f}%" for k, v in hot), style="dim"))
    return Group(*parts)


class LiveView:
    """Refreshes a rich Live display on stderr from a sampler thread while the program runs."""

    def __init__(self, console: Console, *, refresh_per_second: float = 4.0, top: int = 12):
        self.console = console
        self.interval = 1.0 / max(2.0, refresh_per_second)
        self.top = top
        self.updates = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._live: Live | None = None
        self._mon: Any = None

    def start(self, mon: Any) -> None:
        self._mon = mon
        self._live = Live(live_table(mon.snapshot(), self.top), console=self.console, auto_refresh=False,
                          transient=True, redirect_stdout=False, redirect_stderr=False)
        self._live.start()
        self._thread = threading.Thread(target=self._run, name="nbcvm-profile-live", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.refresh()

    def refresh(self) -> None:
        if self._live is None or self._mon is None:
            return
        try:
            self._live.update(live_table(self._mon.snapshot(), self.top), refresh=True)
            self.updates += 1
        except RuntimeError:  # a dict grew while we copied it: skip this frame
            pass

    def print(self, *objects: Any, **kw: Any) -> None:
        """Print above the live display (alerts as they fire)."""
        (self._live.console if self._live is not None else self.console).print(*objects, **kw)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self._live is not None:
            self._live.stop()
            self._live = None
