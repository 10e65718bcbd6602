#!/usr/bin/env python3
"""A longer differential run of the numba tier than the test suite's: random numeric
programs (tests/jit/jitgen.py) run by the interpreter and compiled by the JIT must agree
exactly (output, exit code, error, traceback, instruction count).

    python scripts/jit_differential.py --examples 150 --seed 7

Each program is compiled with numba and linked (about 1-3 s each); the JIT cache
goes to a fresh temporary directory.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "jit"))

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from jitgen import programs  # noqa: E402
from jitutil import run_src, tiers  # noqa: E402
from nbcvm.runtime.limits import Limits  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--examples", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    os.environ["NBCVM_JIT_CACHE"] = tempfile.mkdtemp(prefix="nbcvm-jit-diff-")
    counts = {"programs": 0, "compiled functions": 0, "with fuel limit": 0}
    t0 = time.perf_counter()

    @settings(max_examples=a.examples, deadline=None, suppress_health_check=list(HealthCheck),
              database=None, derandomize=False)
    @given(programs(numeric=True), st.one_of(st.none(), st.integers(1, 300)))
    def check(src: str, steps: int | None) -> None:
        limits = Limits(max_steps=steps)
        off = run_src(src, "off", limits=limits)
        jit = run_src(src, "eager", limits=limits)
        assert jit.key() == off.key(), f"tiers differ on:\n{src}\ninterpreter: {off.key()}\njit: {jit.key()}"
        counts["programs"] += 1
        counts["compiled functions"] += sum(1 for v in tiers(jit.runtime).values() if v == "numba")
        counts["with fuel limit"] += steps is not None

    import random

    random.seed(a.seed)
    check()
    print(f"{counts['programs']} random numeric programs, {counts['compiled functions']} functions compiled "
          f"with numba, {counts['with fuel limit']} under a fuel limit: interpreter and JIT agree "
          f"({time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
