#!/usr/bin/env python3
"""Benchmark ``validate_nbc`` on a synthetic tree of NBC modules (target: 1,000 in < 2 s).

    python scripts/bench_imports.py                  # 1,000 modules, best of 3
    python scripts/bench_imports.py -n 5000 --repeat 1 --keep /tmp/tree

The tree is shaped like a real code base, not a worst case: modules come in
groups of ``--group`` that import each other in a ring (one import cycle per
group), each module also imports two modules of later groups (so groups
layer without cycles between them) and the native ``math``; every fifth
module has an ``init`` that calls a helper one layer down, every fiftieth
one calls a module that has an init of its own (short init chains), and
one group's inits call around the ring (a cycle that fails at load time).
The same findings come out on every run; the script checks their counts,
then prints the best wall time and the time per module.

Every module is import-checked in a fresh Runtime, so a module whose init
reaches k other initialising modules costs k + 1 loads.  ``--deep-inits``
makes every init call a module with an init, giving chains through all the
later layers (about 10 loads per module on average at 1,000 modules) -- the
worst case, for comparison.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from nbcvm.tools.nbcimports import validate_nbc  # noqa: E402

TARGET_SECONDS = 2.0


def module_source(i: int, n: int, group: int, init_cycle_group: int, deep: bool) -> str:
    g, k = divmod(i, group)
    ring = g * group + (k + 1) % group  # next module of the same group: the ring
    later = [(g + 1 + d) * group + (i * 7 + d) % group for d in (0, 1)]
    later = [j for j in later if j < n]
    imports = [ring, *later]
    lines = [f"; synthetic module {i} of {n}", f".module m{i}"]
    lines += [f".import m{j}" for j in dict.fromkeys(imports)] + [".import math", ".global total 0"]
    if g == init_cycle_group:  # this group's inits call around the ring: fails at load time
        lines += [".func init", f"    call m{ring}.value 0", "    gstore total", "    push 0", "    ret", ".end"]
    elif i % 5 == 0 and later:
        # later[0] of a module with i % 5 == 0 has an init too; later[1] has none.
        callee = later[0] if deep or i % 50 == 0 or len(later) == 1 else later[1]
        lines += [".func init", f"    push {i}", f"    call m{callee}.scale 1", "    gstore total",
                  "    push 0", "    ret", ".end"]
    lines += [
        ".func value", "    gload total", "    push 1", "    add", "    ret", ".end",
        ".func scale x", "    .local y", "    load x", "    push 2", "    mul", "    store y",
        "    load y", "    push 0", "    lt", "    jf done", "    push 0", "    store y",
        "done:", "    load y", "    ret", ".end",
        ".func run x",
        f"    call m{ring}.value 0",
        *[f"    load x\n    call m{j}.scale 1\n    add" for j in later],
        "    tofloat", "    call math.sqrt 1", "    ret", ".end",
    ]
    return "\n".join(lines) + "\n"


def make_tree(root: Path, n: int, group: int, deep: bool = False) -> int:
    init_cycle_group = min(3, max(0, n // group - 2))
    for i in range(n):
        (root / f"m{i}.nbc").write_text(module_source(i, n, group, init_cycle_group, deep))
    return init_cycle_group


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", "--modules", type=int, default=1000)
    ap.add_argument("--group", type=int, default=10, help="modules per import ring (cycle)")
    ap.add_argument("--repeat", type=int, default=3, help="runs; the best is reported")
    ap.add_argument("--keep", metavar="DIR", help="write the tree here and keep it")
    ap.add_argument("--deep-inits", action="store_true", help="every init calls a module with an init")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="nbc-bench-") as tmp:
        root = Path(args.keep or tmp)
        root.mkdir(parents=True, exist_ok=True)
        make_tree(root, args.modules, args.group, args.deep_inits)
        times, report = [], None
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            report = validate_nbc([str(root)])
            times.append(time.perf_counter() - t0)
        assert report is not None
        kinds: dict[str, int] = {}
        for f in report.findings:
            kinds[f.kind] = kinds.get(f.kind, 0) + 1
        groups = -(-args.modules // args.group)
        assert len(report.modules) == args.modules, len(report.modules)
        assert kinds.get("cycle") == groups, kinds
        best = min(times)
        slowest = max(report.modules, key=lambda m: m.seconds)
        print(f"{args.modules} modules, {len(report.cycles)} cycles, findings {kinds}")
        print(f"validate_nbc: best {best:.3f} s of {len(times)} "
              f"({best / args.modules * 1e3:.2f} ms/module; runs: {', '.join(f'{t:.3f}' for t in times)})")
        print(f"slowest module load: {slowest.name} {slowest.seconds * 1e3:.1f} ms; "
              f"sum of module load times {sum(m.seconds for m in report.modules):.3f} s")
        verdict = "OK" if best < TARGET_SECONDS else "TOO SLOW"
        print(f"target < {TARGET_SECONDS:g} s: {verdict}")
        return 0 if best < TARGET_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
