"""Regions vs kept handles (peak memory), and what resource tracking costs (time).

    python scripts/bench_regions.py                 # 200 iterations of 256x256, 100k allocations
    python scripts/bench_regions.py --quick         # small sizes, a few seconds
    python scripts/bench_regions.py --json out.json

1. Peak memory.  Each iteration allocates a 256x256 float64 tensor (512 KiB)
   with ``alloc``, writes one element per 4 KiB page (np.zeros uses calloc:
   pages never written cost no RSS, so without this the "kept" run would look
   free), reshapes it and does a matmul.  ``region`` variant: the handle lives
   in a region that ends with the iteration.  ``keep`` variant: the handle is
   appended to a global list and only freed (explicitly) after the last
   iteration.  The host calls one iteration at a time.  Live handle bytes are
   checked at every ``alloc`` (their true peak); after each call the script
   samples the VM data reachable from the roots, tensors behind live
   handles included (``Meter.measure``) and the
   process RSS.  Each variant runs
   in a fresh subprocess, so its ``ru_maxrss`` (the kernel's peak RSS) is its
   own.
2. Tracking overhead.  The same allocation-heavy loop, in NBC, three ways:
   ``alloc``/``free`` (a tracked handle: registered with its creation site and
   owner scope, released explicitly), ``alloc`` inside a region per iteration,
   and ``call tensor.zeros 1`` / ``pop`` (a plain tensor value, not tracked).
   Best of ``--repeat`` timings; overhead = alloc/free time over zeros time - 1.
"""

from __future__ import annotations

import argparse
import io
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PEAK_SRC = """
.module bench_regions
.global kept nil

.func init
    newlist 0
    gstore kept
    push nil
    ret
.end

; alloc n*n floats, write one element per 4 KiB page, return the tensor as n x n
.func touched h n
    .local j
    push 0
    store j
    jmp test
body:
    load h
    load j
    push 1.0
    setitem
    inc j 512
test:
    load j
    load n
    load n
    mul
    lt
    jt body
    load h
    load n
    load n
    newlist 2
    reshape
    ret
.end

.func step_region n
    .local a s
    region
    load n
    load n
    mul
    alloc
    load n
    call touched 2
    store a
    load a
    load a
    matmul
    tsum
    store s
    endregion
    load s
    ret
.end

.func step_keep n
    .local h a
    load n
    load n
    mul
    alloc
    store h
    gload kept
    load h
    append
    load h
    load n
    call touched 2
    store a
    load a
    load a
    matmul
    tsum
    ret
.end

; free every kept handle (the end of the "keep" variant)
.func release
    .local i
    push 0
    store i
    jmp test
body:
    gload kept
    load i
    getitem
    free
    inc i 1
test:
    load i
    gload kept
    len
    lt
    jt body
    newlist 0
    gstore kept
    push nil
    ret
.end
"""

OVERHEAD_SRC = """
.module bench_alloc
.import tensor

.func alloc_free n size
    .local i
    push 0
    store i
    jmp test
body:
    load size
    alloc
    free
    inc i 1
test:
    load i
    load n
    lt
    jt body
    push nil
    ret
.end

.func alloc_region n size
    .local i
    push 0
    store i
    jmp test
body:
    region
    load size
    alloc
    pop
    endregion
    inc i 1
test:
    load i
    load n
    lt
    jt body
    push nil
    ret
.end

.func zeros n size
    .local i
    push 0
    store i
    jmp test
body:
    load size
    call tensor.zeros 1
    pop
    inc i 1
test:
    load i
    load n
    lt
    jt body
    push nil
    ret
.end
"""


def _runtime(src: str, name: str):
    from nbcvm.asm.assembler import assemble
    from nbcvm.runtime.limits import Limits
    from nbcvm.runtime.runtime import Runtime

    rt = Runtime(Limits(max_memory=None), stdout=io.StringIO())
    inst = rt.instantiate(assemble(src, name))
    rt.meter.start_clock()
    rt.run_init(inst)
    return rt, inst


def peak_child(variant: str, iterations: int, n: int) -> dict:
    """One variant in this (fresh) process; prints nothing, returns the figures."""
    import psutil

    proc = psutil.Process()
    rt, inst = _runtime(PEAK_SRC, "<bench_regions>")
    entry = "step_region" if variant == "region" else "step_keep"
    rt.call(inst, entry, [8])  # compile and load numpy before the baseline
    if variant == "keep":
        rt.call(inst, "release", [])
    rss0 = proc.memory_info().rss
    rm = rt.resources
    register, in_call = rm.register, [0]

    def counting_register(*args, **kw):  # the true peak of handle bytes, also inside a call
        h = register(*args, **kw)
        in_call[0] = max(in_call[0], sum(x.size for x in list(rm.live.values())))
        return h

    rm.register = counting_register
    peak_held = peak_rss = 0
    t0 = time.perf_counter()
    for _ in range(iterations):
        rt.call(inst, entry, [n])
        peak_held = max(peak_held, rt.meter.measure())
        peak_rss = max(peak_rss, proc.memory_info().rss)
    seconds = time.perf_counter() - t0
    live_before_release = rt.resources.snapshot()["live"]
    if variant == "keep":
        rt.call(inst, "release", [])
    return {"variant": variant, "iterations": iterations, "n": n, "seconds": round(seconds, 3),
            "peak_handle_bytes": in_call[0], "peak_vm_held_after_call": peak_held,
            "rss_baseline": rss0, "peak_rss_sampled": peak_rss, "peak_rss_growth": peak_rss - rss0,
            "ru_maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
            "live_handles_at_end": live_before_release,
            "live_handles_after_release": rt.resources.snapshot()["live"]}


def peak(variant: str, iterations: int, n: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", variant, "--iterations", str(iterations),
                          "--size", str(n)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def overhead(count: int, sizes: list[int], repeat: int) -> list[dict]:
    rt, inst = _runtime(OVERHEAD_SRC, "<bench_alloc>")
    rows = []
    for size in sizes:
        best = {}
        for fn in ("alloc_free", "alloc_region", "zeros"):
            rt.call(inst, fn, [100, size])  # warm: compile, numpy, native module
            times = []
            for _ in range(repeat):
                t0 = time.perf_counter()
                rt.call(inst, fn, [count, size])
                times.append(time.perf_counter() - t0)
            best[fn] = min(times)
        rows.append({"elements": size, "bytes": 8 * size, "count": count,
                     "alloc_free_us": round(best["alloc_free"] / count * 1e6, 3),
                     "alloc_region_us": round(best["alloc_region"] / count * 1e6, 3),
                     "zeros_us": round(best["zeros"] / count * 1e6, 3),
                     "overhead_alloc_free": round(best["alloc_free"] / best["zeros"] - 1, 4),
                     "overhead_alloc_region": round(best["alloc_region"] / best["zeros"] - 1, 4)})
    assert rt.resources.snapshot()["live"] == 0
    return rows


def _mib(n: float) -> str:
    return f"{n / (1 << 20):8.1f} MiB"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--iterations", type=int, default=200)
    ap.add_argument("--size", type=int, default=256, help="tensor side (n x n float64)")
    ap.add_argument("--count", type=int, default=100_000, help="allocations per overhead timing")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", dest="json_out")
    ap.add_argument("--child", choices=("region", "keep"), help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child:
        print(json.dumps(peak_child(a.child, a.iterations, a.size)))
        return 0
    if a.quick:
        a.iterations, a.count, a.repeat = 40, 20_000, 3
    results = {"peak": [peak(v, a.iterations, a.size) for v in ("region", "keep")],
               "overhead": overhead(a.count, [8, 1024, 65536], a.repeat)}
    print(f"peak memory: {a.iterations} iterations of alloc {a.size}x{a.size} float64 "
          f"({a.size * a.size * 8 >> 10} KiB each) + matmul")
    print(f"  {'variant':8} {'handles peak':>14} {'held after call':>16} {'RSS growth':>14} {'ru_maxrss':>14} "
          f"{'time':>8}")
    for r in results["peak"]:
        print(f"  {r['variant']:8} {_mib(r['peak_handle_bytes'])} {_mib(r['peak_vm_held_after_call']):>16} "
              f"{_mib(r['peak_rss_growth'])} {_mib(r['ru_maxrss'])} {r['seconds']:7.2f}s")
    print("  handles peak: live handle bytes at their highest (checked at every alloc); held after call:")
    print("  VM data reachable from the roots, tensors behind handles included (Meter.measure), highest after a call;")
    print("  RSS growth: highest RSS after a call minus the RSS before the first; ru_maxrss: kernel's peak.")
    print(f"tracking overhead: {a.count:,} allocations, best of {a.repeat} (µs per allocation)")
    print(f"  {'elements':>8} {'alloc/free':>11} {'in region':>10} {'tensor.zeros':>13} {'overhead':>9} "
          f"{'(region)':>9}")
    for r in results["overhead"]:
        print(f"  {r['elements']:>8} {r['alloc_free_us']:>11.2f} {r['alloc_region_us']:>10.2f} "
              f"{r['zeros_us']:>13.2f} {r['overhead_alloc_free']:>+9.1%} {r['overhead_alloc_region']:>+9.1%}")
    if a.json_out:
        Path(a.json_out).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
