#!/usr/bin/env python3
"""Decode + verify time of large binary modules (issue #3: aim < 0.5 s for 10,000 functions).

    python scripts/bench_load.py            # best of 5 per module shape
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from nbcvm.asm.assembler import assemble  # noqa: E402
from nbcvm.bytecode.codec import decode, encode  # noqa: E402
from nbcvm.bytecode.verifier import verify  # noqa: E402

SHORT = "    load x\n    push 1\n    add\n    store x\n    load x\n    ret\n"
LONG = "".join("    load x\n    push 1\n    add\n    store x\n    load x\n    push 0\n    lt\n    jf skip%d\n"
               "    push 0\n    store x\nskip%d:\n" % (k, k) for k in range(3)) + "    load x\n    ret\n"


def module_source(nfuncs: int, body: str) -> str:
    parts = [f".func f{i} x\n" + body.replace("{i}", str(i)) + ".end\n" for i in range(nfuncs)]
    return "".join(parts) + ".func main\n    push 0\n    ret\n.end\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--functions", type=int, default=10_000)
    a = ap.parse_args(argv)
    print(f"{'module':<28} {'bytes':>9} {'instrs':>8} {'decode':>8} {'verify':>8} {'total':>8}")
    for label, body in (("short functions (6 instrs)", SHORT), ("branchy functions (35)", LONG)):
        m0 = assemble(module_source(a.functions, body), "big.nbc")
        data = encode(m0)
        ninstr = sum(len(f.code) for f in m0.functions)
        best = (9e9, 0.0, 0.0)
        for _ in range(a.repeat):
            t0 = time.perf_counter()
            m = decode(data, "big.nbcb")
            t1 = time.perf_counter()
            verify(m)
            t2 = time.perf_counter()
            best = min(best, (t2 - t0, t1 - t0, t2 - t1))
        print(f"{label:<28} {len(data):>9,} {ninstr:>8,} {best[1]:>7.3f}s {best[2]:>7.3f}s {best[0]:>7.3f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
