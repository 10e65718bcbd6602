"""leak-check's table and its terminal progress bar."""

import io
import types

import pytest
from rich.console import Console

from nbcvm.report import leak_render
from nbcvm.tools.leakcheck import LeakReport, Metric, judge


def metric(name, unit, values):
    return Metric(name, unit, tuple(values), judge(values))


def render(report) -> str:
    buf = io.StringIO()
    leak_render.leak_report(Console(file=buf, width=140, no_color=True), report)
    return buf.getvalue()


def test_handle_kinds_never_live_are_left_out_and_unmeasured_metrics_say_why():
    r = LeakReport("p.nbc", "main", (), 4, 1, 0.05, 1.0, (
        metric("vm_bytes", "bytes", [100, 100, 100, 100]),
        metric("handles.lock", "count", [0, 0, 0, 0]),
        metric("handles.tensor", "count", [1, 2, 3, 4]),
        Metric("uss", "bytes", (), None, "needs psutil"),
    ), (), (), ())
    out = render(r)
    rows = {line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:-1]]
            for line in out.splitlines() if line.startswith("│")}
    assert rows == {
        "vm_bytes": ["100 B", "100 B", "0", "0", "+0.00%", "clean", "no growth"],
        "handles.tensor": ["1", "4", "+3", "+1", "+300.00%", "LEAK", "grew in every one of 3 runs"],
        "uss": ["-", "-", "-", "-", "-", "n/a", "needs psutil"],
    }
    assert "handles.lock" not in out
    assert out.splitlines()[-1] == "leak: handles.tensor"


@pytest.fixture
def clock(monkeypatch):
    now = [50.0]
    monkeypatch.setattr(leak_render, "time", types.SimpleNamespace(monotonic=lambda: now[0]))
    return now


def test_progress_is_throttled_but_always_draws_the_last_step(clock):
    buf = io.StringIO()
    bar = leak_render.LeakProgress(Console(file=buf, force_terminal=True, width=70, color_system=None))
    bar("warm-up", 1, 4)
    clock[0] += 0.05
    bar("warm-up", 2, 4)  # too soon after the last redraw: skipped
    bar("warm-up", 4, 4)  # the end is drawn however soon it comes
    bar.close()
    out = buf.getvalue()
    assert "1/4" in out and "2/4" not in out and "4/4" in out
    assert out.endswith("\x1b[?25h\r\x1b[1A\x1b[2K")  # transient: the bar is wiped when closed


def test_progress_close_without_updates_writes_nothing(clock):
    buf = io.StringIO()
    leak_render.LeakProgress(Console(file=buf, force_terminal=True)).close()
    assert buf.getvalue() == ""
