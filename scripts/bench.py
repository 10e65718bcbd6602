"""NBC vs CPython, side by side: the same four programs, timed in one process.

    python scripts/bench.py                 # full sizes, best of 3
    python scripts/bench.py --quick         # small sizes, for CI
    python scripts/bench.py --json out.json # also write the results as JSON
    python scripts/bench.py --limits        # cost of a fuel limit + timeout vs none

Each benchmark is an example program (examples/*.nbc) run in-process through
the runtime exactly as ``nbcvm run`` runs it -- load, assemble, verify,
execute; its stdout captured in a StringIO -- and a CPython function doing the
same work step for step.  Both must print the same answer, or the benchmark
fails.  Times are wall-clock (``--clock cpu``: this process's CPU time, steadier
on a busy machine), best of ``--repeat``; NBC and CPython runs alternate so
that drift in the machine's speed hits both alike.

``--limits`` times the NBC programs with ``Limits(max_steps=10**12,
timeout=3600)`` against no fuel limit and no timeout.  Fuel is charged per
straight-line run and the deadline is read once per few thousand
instructions (see nbcvm/runtime/limits.py), so the overhead should be noise.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from nbcvm.runtime.limits import Limits  # noqa: E402
from nbcvm.tools.run import RunConfig, run_program  # noqa: E402

# ---------------------------------------------------------------------------
# CPython equivalents: the same algorithms as the NBC programs, same order of
# floating-point operations, printing the same lines.


def fib(n: int) -> int:
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def py_fib(n: int) -> str:
    return f"{fib(n)}\n"


def py_loops(n: int) -> str:
    acc = 0
    for i in range(n):
        acc = (acc + i * i) % 1000003
    return f"{acc}\n"


_SOLAR_MASS = 4.0 * math.pi * math.pi
_DAYS_PER_YEAR = 365.24
_BODIES = [  # x, y, z, vx, vy, vz (per day), mass (solar masses)
    (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0),
    (4.84143144246472090e+00, -1.16032004402742839e+00, -1.03622044471123109e-01,
     1.66007664274403694e-03, 7.69901118419740425e-03, -6.90460016972063023e-05, 9.54791938424326609e-04),
    (8.34336671824457987e+00, 4.12479856412430479e+00, -4.03523417114321381e-01,
     -2.76742510726862411e-03, 4.99852801234917238e-03, 2.30417297573763929e-05, 2.85885980666130812e-04),
    (1.28943695621391310e+01, -1.51111514016986312e+01, -2.23307578892655734e-01,
     2.96460137564761618e-03, 2.37847173959480950e-03, -2.96589568540237556e-05, 4.36624404335156298e-05),
    (1.53796971148509165e+01, -2.59193146099879641e+01, 1.79258772950371181e-01,
     2.68067772490389322e-03, 1.62824170038242295e-03, -9.51592254519715870e-05, 5.15138902046611451e-05),
]


def py_nbody(n: int) -> str:
    sqrt = math.sqrt
    bodies = []  # [position list, velocity list, mass]
    for i, (x, y, z, vx, vy, vz, m) in enumerate(_BODIES):
        mass = _SOLAR_MASS if i == 0 else m * _SOLAR_MASS
        bodies.append(([x, y, z], [vx * _DAYS_PER_YEAR, vy * _DAYS_PER_YEAR, vz * _DAYS_PER_YEAR], mass))
    pairs = [(bodies[i], bodies[j]) for i in range(5) for j in range(i + 1, 5)]

    sun_v = bodies[0][1]
    for k in range(3):
        p = 0.0
        for _, v, m in bodies:
            p = p + v[k] * m
        sun_v[k] = -p / _SOLAR_MASS

    def energy() -> float:
        e = 0.0
        for _, (vx, vy, vz), m in bodies:
            e = e + 0.5 * m * (vx * vx + vy * vy + vz * vz)
        for (ra, _, ma), (rb, _, mb) in pairs:
            dx, dy, dz = ra[0] - rb[0], ra[1] - rb[1], ra[2] - rb[2]
            e = e - ma * mb / sqrt(dx * dx + dy * dy + dz * dz)
        return e

    out = [f"{energy():.9f}"]
    for _ in range(n):
        for (ra, va, ma), (rb, vb, mb) in pairs:
            dx, dy, dz = ra[0] - rb[0], ra[1] - rb[1], ra[2] - rb[2]
            d2 = dx * dx + dy * dy + dz * dz
            mag = 0.01 / (sqrt(d2) * d2)
            mam, mbm = ma * mag, mb * mag
            va[0] -= dx * mbm
            va[1] -= dy * mbm
            va[2] -= dz * mbm
            vb[0] += dx * mam
            vb[1] += dy * mam
            vb[2] += dz * mam
        for r, (vx, vy, vz), _ in bodies:
            r[0] += 0.01 * vx
            r[1] += 0.01 * vy
            r[2] += 0.01 * vz
    out.append(f"{energy():.9f}")
    return "\n".join(out) + "\n"


def py_mandelbrot(w: int, h: int) -> str:
    count = 0
    for py in range(h):
        ci = 2.0 * py / h - 1.0
        for px in range(w):
            cr = 2.0 * px / w - 1.5
            zr = zi = 0.0
            for _ in range(50):
                zr2 = zr * zr
                zi2 = zi * zi
                if zr2 + zi2 > 4.0:
                    break
                zi = 2.0 * zr * zi + ci
                zr = zr2 - zi2 + cr
            else:
                count += 1
    return f"{count}\n"


# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Bench:
    name: str
    program: str  # under examples/
    full: tuple[int, ...]
    quick: tuple[int, ...]
    python: Callable[..., str]


BENCHES = (
    Bench("fib", "fib.nbc", (27,), (20,), py_fib),
    Bench("loops", "loops.nbc", (1_000_000,), (100_000,), py_loops),
    Bench("nbody", "nbody.nbc", (10_000,), (1_000,), py_nbody),
    Bench("mandelbrot", "mandelbrot.nbc", (200, 200), (50, 50), py_mandelbrot),
)


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
clock = CLOCKS["wall"]


def run_nbc(program: Path, args: tuple[int, ...], limits: Limits) -> tuple[float, str]:
    buf = io.StringIO()
    cfg = RunConfig(str(program), tuple(str(a) for a in args), limits)
    t0 = clock()
    outcome = run_program(cfg, stdout=buf)
    dt = clock() - t0
    if outcome.error is not None or outcome.exit_code != 0:
        raise SystemExit(f"{program.name}: exit {outcome.exit_code}: {outcome.error}")
    return dt, buf.getvalue()


def run_py(f: Callable[..., str], args: tuple[int, ...]) -> tuple[float, str]:
    t0 = clock()
    out = f(*args)
    return clock() - t0, out


def best_of(repeat: int, *runs: Callable[[], tuple[float, str]]) -> list[tuple[float, str]]:
    """Run each callable ``repeat`` times, interleaved; keep each one's best time and its output."""
    best: list[tuple[float, str] | None] = [None] * len(runs)
    for _ in range(repeat):
        for i, run in enumerate(runs):
            t, out = run()
            if best[i] is None or t < best[i][0]:  # type: ignore[index]
                best[i] = (t, out)
    return best  # type: ignore[return-value]


def size_text(args: tuple[int, ...]) -> str:
    return "x".join(f"{a:,}" for a in args)


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    return "\n".join([line(headers), "  ".join("-" * w for w in widths), *(line(r) for r in rows)])


def compare(benches: list[Bench], quick: bool, repeat: int) -> dict:
    results = []
    for b in benches:
        args = b.quick if quick else b.full
        prog = ROOT / "examples" / b.program
        (nbc_t, nbc_out), (py_t, py_out) = best_of(
            repeat, lambda: run_nbc(prog, args, Limits()), lambda: run_py(b.python, args))
        if nbc_out != py_out:
            raise SystemExit(f"{b.name}: NBC printed {nbc_out!r} but CPython printed {py_out!r}")
        results.append({"benchmark": b.name, "size": list(args), "nbc_seconds": nbc_t,
                        "cpython_seconds": py_t, "ratio": nbc_t / py_t,
                        "answer": nbc_out.strip().split("\n")})
    rows = [[r["benchmark"], size_text(tuple(r["size"])), f"{r['nbc_seconds']:.3f}",
             f"{r['cpython_seconds']:.3f}", f"{r['ratio']:.2f}x", " / ".join(r["answer"])] for r in results]
    print(table(["benchmark", "size", "NBC s", "CPython s", "NBC/CPython", "answer (both)"], rows))
    return {"mode": "compare", "results": results}


def limits_overhead(benches: list[Bench], quick: bool, repeat: int) -> dict:
    limited = Limits(max_steps=10**12, timeout=3600)
    results = []
    for b in benches:
        args = b.quick if quick else b.full
        prog = ROOT / "examples" / b.program
        (free_t, free_out), (lim_t, lim_out) = best_of(
            repeat, lambda: run_nbc(prog, args, Limits()), lambda: run_nbc(prog, args, limited))
        if free_out != lim_out:
            raise SystemExit(f"{b.name}: output differs with limits set")
        results.append({"benchmark": b.name, "size": list(args), "unlimited_seconds": free_t,
                        "limited_seconds": lim_t, "overhead_percent": (lim_t / free_t - 1) * 100})
    rows = [[r["benchmark"], size_text(tuple(r["size"])), f"{r['unlimited_seconds']:.3f}",
             f"{r['limited_seconds']:.3f}", f"{r['overhead_percent']:+.1f}%"] for r in results]
    print(table(["benchmark", "size", "unlimited s", "max_steps+timeout s", "overhead"], rows))
    return {"mode": "limits", "limits": limited.to_dict(), "results": results}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3, help="runs per measurement; the best counts [3]")
    ap.add_argument("--quick", action="store_true", help="small sizes (for CI)")
    ap.add_argument("--limits", action="store_true",
                    help="measure NBC with max_steps=10**12 and timeout=3600 against no limits")
    ap.add_argument("--only", action="append", choices=[b.name for b in BENCHES],
                    help="run just this benchmark (repeatable)")
    ap.add_argument("--clock", choices=sorted(CLOCKS), default="wall",
                    help="wall-clock time, or this process's CPU time [wall]")
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON to FILE")
    a = ap.parse_args(argv)
    if a.repeat < 1:
        ap.error("--repeat must be at least 1")
    global clock
    clock = CLOCKS[a.clock]
    benches = [b for b in BENCHES if not a.only or b.name in a.only]
    print(f"nbcvm bench: Python {platform.python_version()} ({platform.python_implementation()}), "
          f"{'quick' if a.quick else 'full'} sizes, best of {a.repeat}, {a.clock} clock")
    report = (limits_overhead if a.limits else compare)(benches, a.quick, a.repeat)
    report.update({"python": platform.python_version(), "platform": platform.platform(),
                   "quick": a.quick, "repeat": a.repeat, "clock": a.clock})
    if a.json:
        Path(a.json).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {a.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
