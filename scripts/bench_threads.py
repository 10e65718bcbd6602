#!/usr/bin/env python3
"""Concurrency figures for the closing note and docs/concurrency.md.

1. Thread-safety overhead, single-threaded: the same programs on the runtime as
   shipped vs. with every runtime lock swapped for a no-op (the "single-threaded
   fast path"), side by side, best of --repeat.
2. Channel ping-pong between two VM threads: round-trip latency p50/p99,
   measured inside NBC with time.now.
3. 20 threads x 10,000 atomic increments: the total must be exact, every time.

    python scripts/bench_threads.py [--repeat 5] [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from nbcvm.asm.assembler import assemble  # noqa: E402
from nbcvm.runtime import runtime as rtmod  # noqa: E402
from nbcvm.runtime.runtime import Runtime  # noqa: E402
from nbcvm.tools.run import RunConfig, run_program  # noqa: E402
from nbcvm.tools.stress import StressConfig, percentile, run_stress  # noqa: E402
from nbcvm.vm import compile as compmod  # noqa: E402

PING = """
.import time
.func pong c d
    .local v ok
loop:
    load c
    push nil
    recv
    store ok
    store v
    load ok
    jf done
    load d
    load v
    push nil
    send
    jmp loop
done:
    push 0
    ret
.end
.func main n
    .local c d t k lat t0
    chan 1
    store c
    chan 1
    store d
    load c
    load d
    spawn pong 2
    store t
    newlist 0
    store lat
    push 0
    store k
top:
    call time.now 0
    store t0
    load c
    load k
    push nil
    send
    load d
    push nil
    recv
    pop
    pop
    load lat
    call time.now 0
    load t0
    sub
    append
    inc k 1
    load k
    load n
    lt
    jt top
    load c
    close
    load t
    join
    pop
    load lat
    ret
.end
"""


class _NoLock:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False

    def acquire(self, *a, **k):
        return True

    def release(self):
        pass


@contextlib.contextmanager
def no_locks():
    """Swap the runtime's locks for no-ops: the single-threaded fast path."""
    saved = compmod._COMPILE_LOCK, rtmod.Output.__init__
    init = rtmod.Output.__init__

    def unlocked_init(self, stream, meter):
        init(self, stream, meter)
        self._lock = _NoLock()

    compmod._COMPILE_LOCK = _NoLock()
    rtmod.Output.__init__ = unlocked_init
    try:
        yield
    finally:
        compmod._COMPILE_LOCK, rtmod.Output.__init__ = saved


def best(cfg: RunConfig, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        run_program(cfg, stdout=io.StringIO())
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    fib_n, loop_n, pings, incs = (20, 100_000, 500, 1000) if a.quick else (25, 1_000_000, 5000, 10_000)
    ex = ROOT / "examples"
    print("1. thread-safety overhead (single-threaded; best of", a.repeat, ")")
    print(f"   {'program':<24}{'locked s':>10}{'no-lock s':>11}{'overhead':>10}")
    for name, args in (("fib.nbc", (str(fib_n),)), ("loops.nbc", (str(loop_n),))):
        cfg = RunConfig(str(ex / name), args)
        locked = best(cfg, a.repeat)
        with no_locks():
            free = best(cfg, a.repeat)
        print(f"   {name + ' ' + args[0]:<24}{locked:>10.3f}{free:>11.3f}{(locked / free - 1) * 100:>9.1f}%")

    print("2. channel ping-pong between two VM threads")
    rt = Runtime(stdout=io.StringIO())
    inst = rt.instantiate(assemble(PING, "ping.nbc"))
    lat = sorted(rt.call(inst, "main", [pings]))
    print(f"   {pings} round trips: p50 {percentile(lat, 50) * 1e6:.1f} µs, "
          f"p99 {percentile(lat, 99) * 1e6:.1f} µs, max {lat[-1] * 1e6:.1f} µs")

    print(f"3. 20 threads x {incs} atomic increments")
    src = (ROOT / "examples" / "atomic_counter.nbc").read_text().replace("push 200\n    lt", f"push {incs}\n    lt")
    src = src.replace("push 200\n    mul", f"push {incs}\n    mul")
    tmp = ROOT / "build" / "bench_atomic.nbc"
    tmp.parent.mkdir(exist_ok=True)
    tmp.write_text(src)
    for trial in range(3):
        r = run_stress(StressConfig(str(tmp), threads=20, iterations=1))
        w = r.workloads[0]
        print(f"   trial {trial + 1}: {w.calls * incs:,} increments, violations {w.violations}, "
              f"{w.seconds:.2f}s -> {'exact' if w.ok else 'WRONG'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
