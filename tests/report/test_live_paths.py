"""ProgressLine: the stress commands' one-line status on a terminal, throttled to 10 redraws/s."""

import io
import types

import pytest
from rich.console import Console

from nbcvm.report import live


@pytest.fixture
def clock(monkeypatch):
    now = [100.0]
    monkeypatch.setattr(live, "time", types.SimpleNamespace(monotonic=lambda: now[0]))
    return now


def terminal():
    buf = io.StringIO()
    return buf, Console(file=buf, force_terminal=True, width=60, color_system=None)


def test_updates_within_a_tenth_of_a_second_are_dropped(clock):
    buf, console = terminal()
    line = live.ProgressLine(console)
    line("stress", 1, 10)
    clock[0] += 0.05
    line("stress", 2, 10)  # too soon: not drawn
    line.close()
    out = buf.getvalue()
    assert "stress: 1/10 calls" in out and "2/10" not in out
    assert out.startswith("\x1b[?25l") and "\x1b[?25h" in out  # cursor hidden while drawing, then restored


def test_without_a_total_only_the_count_is_shown(clock):
    buf, console = terminal()
    line = live.ProgressLine(console)
    line("stress", 1, 10)
    clock[0] += 0.2
    line("warm-up", 5, 0)
    line.close()
    drawn, _, erased = buf.getvalue().rpartition("\n\x1b[?25h")
    assert drawn.endswith("warm-up: 5 calls")  # the last frame drawn before stopping
    assert erased == "\r\x1b[1A\x1b[2K"  # the status line is transient: wiped when closed


def test_close_before_any_update_draws_nothing(clock):
    buf, console = terminal()
    line = live.ProgressLine(console)
    line.close()
    assert buf.getvalue() == ""
