"""Every program of tests/programs and examples runs on both tiers with the same result.

``--jit off`` (the interpreter) against ``--jit eager`` (every function
translated at its first call, numeric ones compiled with numba): stdout, the
exit code, the uncaught error's type and message, and the whole NBC traceback
(function and pc of every frame) must be identical.  Expectations (args,
flags) come from the programs' own ``; args:`` / ``; flags:`` comments.  The
one thing allowed to differ is a *measured time* inside a message ("used
0.2 s"), which no two runs share.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from jitutil import run_cli

ROOT = Path(__file__).resolve().parents[2]
PROGRAMS = sorted((ROOT / "tests" / "programs").glob("*.nbc")) + sorted((ROOT / "examples").glob("*.nbc"))
TIMED = re.compile(r"used [0-9.]+ s of")


def expectations(path: Path):
    import sys

    sys.path.insert(0, str(ROOT / "tests"))
    from test_programs import parse_expectations

    return parse_expectations(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("path", PROGRAMS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_tiers_agree(path: Path) -> None:
    exp = expectations(path)
    base = ["run", *exp.flags]
    off = run_cli(base + ["--jit", "off", str(path), *exp.args])
    jit = run_cli(base + ["--jit", "eager", str(path), *exp.args])
    assert "Traceback (most recent call last):\n  File" not in jit.stderr, jit.stderr
    assert "internal error" not in jit.stderr, jit.stderr
    assert jit.stdout == off.stdout
    assert jit.code == off.code
    assert jit.error == off.error
    assert jit.innermost == off.innermost
    assert jit.frames == off.frames
    assert TIMED.sub("used T s of", jit.stderr) == TIMED.sub("used T s of", off.stderr)


def test_there_are_programs() -> None:
    assert len(PROGRAMS) >= 40


@pytest.fixture
def eager_auto(monkeypatch):
    """auto mode promoting at once: every loop of a running frame is taken over (OSR).

    The Python tier only: the numba tier's loop-header entries are one more
    compile per loop, covered by test_random.py and test_tiering.py instead
    (the suite has a time budget).
    """
    from nbcvm.jit.tier import JitManager

    monkeypatch.setattr(JitManager, "py_samples", 1)
    monkeypatch.setattr(JitManager, "want_numba", lambda self, fn: False)
    monkeypatch.setattr("nbcvm.runtime.limits.CHECK_INTERVAL", 500)  # sample often: promote mid-loop


@pytest.mark.parametrize("path", PROGRAMS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_auto_with_on_stack_replacement_agrees(path: Path, eager_auto) -> None:
    exp = expectations(path)
    base = ["run", *exp.flags]
    off = run_cli(base + ["--jit", "off", str(path), *exp.args])
    jit = run_cli(base + ["--jit", "auto", str(path), *exp.args])
    assert "internal error" not in jit.stderr, jit.stderr
    assert (jit.stdout, jit.code, jit.frames) == (off.stdout, off.code, off.frames)
    assert TIMED.sub("used T s of", jit.stderr) == TIMED.sub("used T s of", off.stderr)
