"""Random programs (tests/jit/jitgen.py) give identical results on every tier.

Each example is run by the interpreter and by the JIT in eager mode, with and
without a fuel limit, and must agree on stdout, exit code, error type and
message, the full NBC traceback (function and pc of every frame) and the
statistics -- instructions executed (fuel), calls and peak depth -- which
shows fuel is charged exactly where the interpreter charges it.

The numeric programs exercise the numba tier (overflow, division by zero,
mixed int/float comparisons and arithmetic, shifts, math natives); each new
program is a new compile, so their number is kept small.  The general
programs (strings, nil, try regions, TypeErrors) exercise the Python tier
and are cheap.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jitgen import programs
from jitutil import run_src, tiers
from nbcvm.runtime.limits import Limits

def fast(n: int) -> settings:
    return settings(deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
                    max_examples=n, database=None)


def _compare(src: str, steps: int | None, numba: bool) -> dict:
    limits = Limits(max_steps=steps)
    off = run_src(src, "off", limits=limits)
    jit = run_src(src, "eager", limits=limits, numba=numba)
    assert jit.key() == off.key(), f"tiers differ on:\n{src}\ninterpreter: {off.key()}\njit: {jit.key()}"
    return tiers(jit.runtime)


@fast(100)
@given(programs(numeric=False), st.one_of(st.none(), st.integers(1, 400)))
def test_python_tier_matches_interpreter(src: str, steps: int | None) -> None:
    _compare(src, steps, numba=False)


NUMBA_SEEN: list[int] = []


@fast(8)
@given(programs(numeric=True), st.one_of(st.none(), st.integers(1, 300)))
def test_numba_tier_matches_interpreter(src: str, steps: int | None) -> None:
    t = _compare(src, steps, numba=True)
    NUMBA_SEEN.append(sum(1 for v in t.values() if v == "numba"))


def test_numba_tier_was_exercised() -> None:
    if not NUMBA_SEEN:  # run alone: generate a few now
        test_numba_tier_matches_interpreter()
    assert sum(NUMBA_SEEN) >= 3, NUMBA_SEEN


@pytest.fixture
def aggressive_auto(monkeypatch):
    """auto mode that promotes at once and samples often: running loops are taken over (OSR)."""
    from nbcvm.jit.tier import JitManager

    monkeypatch.setattr(JitManager, "py_samples", 1)
    monkeypatch.setattr(JitManager, "startup_estimate", 0.0)
    monkeypatch.setattr(JitManager, "compile_estimate", 0.0)
    monkeypatch.setattr("nbcvm.runtime.limits.CHECK_INTERVAL", 7)


def _compare_auto(src: str, steps: int | None, numba: bool) -> None:
    limits = Limits(max_steps=steps)
    off = run_src(src, "off", limits=limits)
    jit = run_src(src, "auto", limits=limits, numba=numba)
    assert jit.key() == off.key(), f"tiers differ on:\n{src}\ninterpreter: {off.key()}\njit: {jit.key()}"


@fast(60)
@given(programs(numeric=False), st.one_of(st.none(), st.integers(1, 400)))
def test_auto_osr_python_tier(aggressive_auto, src: str, steps: int | None) -> None:
    _compare_auto(src, steps, numba=False)


@fast(5)
@given(programs(numeric=True), st.one_of(st.none(), st.integers(1, 300)))
def test_auto_osr_numba_tier(aggressive_auto, src: str, steps: int | None) -> None:
    _compare_auto(src, steps, numba=True)
