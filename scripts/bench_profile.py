#!/usr/bin/env python3
"""Overhead of ``nbcvm profile`` against a plain run.

    python scripts/bench_profile.py            # fib 22 and loops 300000, 5 repeats
    python scripts/bench_profile.py -n 9 --json

For each program: the best-of-n wall time of the plain interpreter
(``Runtime`` with ``interp.execute``), of the instrumented loop at function
level and at opcode level, and the ratios.  It also times the plain loop
*after* a profiled run in the same process, to show that installing and
removing a monitor leaves ``execute`` (and its speed) untouched, and checks
that ``runtime.executor`` is ``interp.execute`` by default.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from nbcvm.runtime.monitor import PerformanceMonitor  # noqa: E402
from nbcvm.tools.run import RunConfig, make_runtime, parse_arg  # noqa: E402
from nbcvm.vm import interp, profiled  # noqa: E402

CASES = (("examples/fib.nbc", "22"), ("examples/loops.nbc", "300000"))


def once(program: str, arg: str, level: str | None) -> float:
    cfg = RunConfig(str(ROOT / program), (arg,))
    rt = make_runtime(cfg, io.StringIO())
    assert rt.executor is interp.execute, "the default executor must be the plain loop"
    inst = rt.load_program(Path(cfg.program))
    if level is not None:
        profiled.install(rt, PerformanceMonitor(level))
    t0 = time.perf_counter()
    outcome = rt.run_main(inst, [parse_arg(arg)])
    dt = time.perf_counter() - t0
    assert outcome.exit_code == 0, outcome
    return dt


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=5, help="repeats (best of n)")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    rows = []
    for program, arg in CASES:
        once(program, arg, None)  # warm caches (imports, numpy-free paths)
        times: dict[str, list[float]] = {"plain": [], "function": [], "opcode": [], "plain_after": []}
        for _ in range(a.n):  # interleaved, so a busy machine slows every mode alike
            times["plain"].append(once(program, arg, None))
            times["function"].append(once(program, arg, "function"))
            times["opcode"].append(once(program, arg, "opcode"))
            times["plain_after"].append(once(program, arg, None))
        plain, fn_level, op_level, plain_after = (min(times[k]) for k in ("plain", "function", "opcode",
                                                                          "plain_after"))
        rows.append({"program": f"{program} {arg}", "plain_s": plain, "function_s": fn_level,
                     "opcode_s": op_level, "plain_after_s": plain_after,
                     "function_ratio": fn_level / plain, "opcode_ratio": op_level / plain,
                     "plain_after_ratio": plain_after / plain})
    if a.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'program':28} {'plain':>9} {'function':>9} {'ratio':>6} {'opcode':>9} {'ratio':>6} "
          f"{'plain again':>11} {'ratio':>6}")
    for r in rows:
        print(f"{r['program']:28} {r['plain_s'] * 1e3:7.1f}ms {r['function_s'] * 1e3:7.1f}ms "
              f"{r['function_ratio']:5.2f}x {r['opcode_s'] * 1e3:7.1f}ms {r['opcode_ratio']:5.2f}x "
              f"{r['plain_after_s'] * 1e3:9.1f}ms {r['plain_after_ratio']:5.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
