"""The peer table: nbcvm's interpreter and JIT against CPython, Lua and WebAssembly.

    python scripts/bench_jit.py             # full sizes
    python scripts/bench_jit.py --quick     # CI sizes (seconds, not minutes)
    python scripts/bench_jit.py --json out.json

Benchmarks (the same algorithm everywhere, checked by comparing answers):
fib(30), an integer loop of 1e7 steps (examples/loops.nbc), n-body 1e5 steps
(examples/nbody.nbc), mandelbrot 200x200x50 (examples/mandelbrot.nbc) and a
matmul-heavy tensor program (scripts/bench_jit/matmul.nbc; numpy does the
work in every nbcvm tier and in CPython, plain loops in Lua and wasm).

Systems:
* nbcvm interpreter -- ``Runtime(jit="off")``, in this process;
* nbcvm JIT -- ``Runtime(jit="eager")``: *compute* time is a run whose
  compiled code already exists (best of --repeat, fresh runtimes reusing the
  compiled modules); compile time is reported apart: ``cold`` compiles into
  an empty disk cache (in this process, so it excludes numba's import, shown
  once as "numba start-up"), ``warm`` is a *new process* loading the same
  disk cache (it must compile nothing: the script checks the events);
* CPython -- the functions of scripts/bench.py (numpy for matmul);
* Lua 5.4 and LuaJIT 2.1 through ``lupa``, WebAssembly through ``wasmtime``
  (WAT text, compiled before timing) -- each only when installed
  (``pip install lupa wasmtime``: the ``bench`` extra); skipped otherwise.

Ratios are time / CPython's time and time / the fastest peer's time (peers:
CPython, Lua 5.4, LuaJIT, wasmtime).  Wall-clock seconds; on a shared
machine expect noise of tens of percent.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "scripts" / "bench_jit"))

import bench as pybench  # noqa: E402  -- scripts/bench.py: the CPython versions
import peers  # noqa: E402

from nbcvm.runtime.runtime import Runtime  # noqa: E402
from nbcvm.tools.run import parse_arg  # noqa: E402


def py_matmul(n: int, reps: int) -> str:
    import numpy as np

    a = np.arange(float(n * n)).reshape(n, n) / (n * n)
    c = a
    for _ in range(reps):
        c = c @ a
        c = c / c.sum()
    return f"{c.max():.12f}\n"


@dataclass(frozen=True)
class Bench:
    name: str
    program: Path
    full: tuple[int, ...]
    quick: tuple[int, ...]
    python: Callable[..., str]
    lua: str  # function name in peers.LUA
    wasm: str  # export name


BENCHES = (
    Bench("fib", ROOT / "examples" / "fib.nbc", (30,), (22,), pybench.py_fib, "fib", "fib"),
    Bench("int loop", ROOT / "examples" / "loops.nbc", (10_000_000,), (200_000,), pybench.py_loops, "loops", "loops"),
    Bench("n-body", ROOT / "examples" / "nbody.nbc", (100_000,), (2_000,), pybench.py_nbody, "nbody", "nbody"),
    Bench("mandelbrot", ROOT / "examples" / "mandelbrot.nbc", (200, 200), (60, 60), pybench.py_mandelbrot,
          "mandelbrot", "mandelbrot"),
    Bench("matmul", ROOT / "scripts" / "bench_jit" / "matmul.nbc", (200, 20), (60, 10), py_matmul, "matmul", "matmul"),
)


@dataclass
class Row:
    bench: str
    size: str
    seconds: dict[str, float | None] = field(default_factory=dict)
    jit_cold: float | None = None
    jit_warm: float | None = None
    jit_tiers: str = ""
    notes: list[str] = field(default_factory=list)


def _same(a: str, b: str) -> bool:
    """Equal answers (floats within 1e-9 relative: a different summation order may differ in the last bit)."""
    xa, xb = a.split(), b.split()
    if len(xa) != len(xb):
        return False
    for u, v in zip(xa, xb):
        if u == v:
            continue
        try:
            fu, fv = float(u), float(v)
        except ValueError:
            return False
        if abs(fu - fv) > 1e-9 * max(abs(fu), abs(fv), 1e-300):
            return False
    return True


def run_nbc(b: Bench, args: tuple[int, ...], mode: str) -> tuple[float, str, Runtime]:
    out = io.StringIO()
    rt = Runtime(stdout=out, jit=mode)
    inst = rt.load_program(b.program)
    t0 = time.perf_counter()
    o = rt.run_main(inst, [parse_arg(str(a)) for a in args])
    dt = time.perf_counter() - t0
    if o.error is not None or o.exit_code != 0:
        raise SystemExit(f"{b.name}: exit {o.exit_code}: {o.error}")
    return dt, out.getvalue(), rt


def best(repeat: int, f: Callable[[], tuple[float, str]]) -> tuple[float, str]:
    res = [f() for _ in range(repeat)]
    return min(res, key=lambda x: x[0])


def lua_runtimes() -> dict[str, object]:
    out: dict[str, object] = {}
    for label, mod in (("Lua 5.4", "lupa.lua54"), ("LuaJIT", "lupa.luajit21")):
        try:
            m = __import__(mod, fromlist=["LuaRuntime"])
            lua = m.LuaRuntime()
            lua.execute(peers.LUA)
            out[label] = lua.globals()
        except ImportError:
            pass
    return out


def wasm_instance():
    try:
        import wasmtime
    except ImportError:
        return None
    eng = wasmtime.Engine()
    store = wasmtime.Store(eng)
    simple = wasmtime.Instance(store, wasmtime.Module(eng, peers.WAT_SIMPLE), []).exports(store)
    nbody = wasmtime.Instance(store, wasmtime.Module(eng, peers.wat_nbody()), []).exports(store)
    return store, simple, nbody


def run_wasm(w, b: Bench, args: tuple[int, ...]) -> tuple[float, str]:
    store, simple, nbody = w
    if b.wasm == "nbody":
        import wasmtime

        eng = store.engine
        inst = wasmtime.Instance(store, wasmtime.Module(eng, peers.wat_nbody()), []).exports(store)
        t0 = time.perf_counter()
        e1 = inst["nbody"](store, *args)
        dt = time.perf_counter() - t0
        return dt, f"{inst['energy0'](store):.9f}\n{e1:.9f}\n"
    t0 = time.perf_counter()
    v = simple[b.wasm](store, *args)
    dt = time.perf_counter() - t0
    return dt, (f"{v:.12f}\n" if isinstance(v, float) else f"{v}\n")


def run_lua(g, b: Bench, args: tuple[int, ...]) -> tuple[float, str]:
    f = getattr(g, b.lua)
    t0 = time.perf_counter()
    v = f(*args)
    dt = time.perf_counter() - t0
    if isinstance(v, float) and v.is_integer() and b.lua != "matmul":
        v = int(v)  # LuaJIT numbers are doubles
    return dt, f"{v}\n"


WARM_SCRIPT = r"""
import io, json, sys, time
t0 = time.perf_counter()
from nbcvm.runtime.runtime import Runtime
from nbcvm.tools.run import parse_arg
rt = Runtime(stdout=io.StringIO(), jit="eager")
inst = rt.load_program(sys.argv[1])
o = rt.run_main(inst, [parse_arg(a) for a in sys.argv[2:]])
print(json.dumps({"events": rt.jit.events, "wall": time.perf_counter() - t0}))
"""


def jit_warm(b: Bench, args: tuple[int, ...], cache: str) -> tuple[float, list[dict]]:
    env = dict(os.environ, NBCVM_JIT_CACHE=cache, PYTHONPATH=str(ROOT))
    p = subprocess.run([sys.executable, "-c", WARM_SCRIPT, str(b.program), *map(str, args)],
                       capture_output=True, text=True, env=env, timeout=600)
    if p.returncode != 0:
        raise SystemExit(f"warm run of {b.name} failed:\n{p.stderr[-2000:]}")
    data = json.loads(p.stdout.strip().splitlines()[-1])
    ev = data["events"]
    load = sum(e.get("seconds", 0.0) for e in ev if e["event"] in ("numba-cache-hit", "numba-compiled", "translated"))
    return load, ev


def measure(b: Bench, quick: bool, repeat: int, luas: dict, wasm, cache_root: str, startup: dict) -> Row:
    args = b.quick if quick else b.full
    row = Row(b.name, "x".join(f"{a:,}" for a in args))
    print(f"  {b.name} {row.size} ...", file=sys.stderr, flush=True)
    t, ref = best(repeat if quick else 1, lambda: run_nbc(b, args, "off")[:2])
    row.seconds["nbcvm interp"] = t
    # JIT: compile cold into an empty cache, then time runs that reuse the compiled code
    cache = tempfile.mkdtemp(prefix=f"nbcvm-bench-{b.program.stem}-", dir=cache_root)
    os.environ["NBCVM_JIT_CACHE"] = cache
    t1, out, rt = run_nbc(b, args, "eager")
    assert _same(out, ref), (b.name, out, ref)
    ev = rt.jit.events
    if "numba-loaded" not in startup:
        startup["numba-loaded"] = sum(e.get("seconds", 0) for e in ev if e["event"] == "numba-loaded")
    row.jit_cold = sum(e.get("seconds", 0.0) for e in ev if e["event"] in ("numba-compiled", "numba-cache-hit",
                                                                           "translated"))
    row.jit_tiers = ", ".join(f"{d['function'].split('.')[-1]}={d['tier']}" for d in rt.jit.report()["decisions"])
    def jit_compute() -> tuple[float, str]:
        # a fresh runtime reuses the compiled code; its own translation work (Python source for
        # each function, ~ms) is compile time too, so it is taken out of the compute time
        t, out, rt = run_nbc(b, args, "eager")
        return t - sum(e.get("seconds", 0.0) for e in rt.jit.events), out

    t, out = best(repeat, jit_compute)
    assert _same(out, ref), (b.name, out, ref)
    row.seconds["nbcvm JIT"] = t
    row.jit_warm, wev = jit_warm(b, args, cache)
    if any(e["event"] == "numba-compiled" for e in wev):
        row.notes.append("warm run compiled something!")
    t, out = best(repeat, lambda: (lambda t0: (lambda o: (time.perf_counter() - t0, o))(b.python(*args)))(
        time.perf_counter()))
    assert _same(out, ref), (b.name, out, ref)
    row.seconds["CPython"] = t
    for label, g in luas.items():
        t, out = best(repeat, lambda: run_lua(g, b, args))
        assert _same(out, ref), (label, b.name, out, ref)
        row.seconds[label] = t
    if wasm is not None:
        t, out = best(repeat, lambda: run_wasm(wasm, b, args))
        assert _same(out, ref), ("wasm", b.name, out, ref)
        row.seconds["wasmtime"] = t
    return row


SYSTEMS = ["nbcvm interp", "nbcvm JIT", "CPython", "Lua 5.4", "LuaJIT", "wasmtime"]
PEERS = ["CPython", "Lua 5.4", "LuaJIT", "wasmtime"]


def fmt(x: float | None, digits: int = 3) -> str:
    if x is None:
        return "-"
    return f"{x:.{digits}f}" if x < 100 else f"{x:.0f}"


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(r) for r in rows])


def render(rows: list[Row], startup: dict, systems: list[str]) -> str:
    out = []
    out.append("Seconds (best of runs; JIT = compute with compiled code present)")
    out.append(table(["benchmark", "size"] + systems + ["JIT compile cold", "JIT load warm"],
                     [[r.bench, r.size] + [fmt(r.seconds.get(s)) for s in systems]
                      + [fmt(r.jit_cold), fmt(r.jit_warm)] for r in rows]))
    out.append("")
    out.append("Ratios: time / CPython time (x CPy) and time / fastest peer's time (x best; peers: "
               + ", ".join(p for p in PEERS if p in systems) + ")")
    hdr, body = ["benchmark", "size"], []
    for s in systems:
        hdr += [f"{s} xCPy", f"{s} xbest"]
    for r in rows:
        cpy = r.seconds.get("CPython")
        fastest = min(v for k, v in r.seconds.items() if k in PEERS and v is not None)
        cells = [r.bench, r.size]
        for s in systems:
            v = r.seconds.get(s)
            cells += [fmt(v / cpy if v and cpy else None, 2), fmt(v / fastest if v else None, 2)]
        body.append(cells)
    out.append(table(hdr, body))
    out.append("")
    out.append(f"numba start-up (import + helper module, once per process, not in the columns above): "
               f"{startup.get('numba-loaded', 0):.2f} s")
    out.append("JIT compile cold: translating to Python + numba compiling into an empty disk cache; "
               "JIT load warm: the same in a new process with that cache (nothing compiled)")
    for r in rows:
        out.append(f"{r.bench}: tiers {r.jit_tiers}" + (f"  NOTE: {'; '.join(r.notes)}" if r.notes else ""))
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, for CI")
    ap.add_argument("--repeat", type=int, default=None, help="runs per system (best is kept)")
    ap.add_argument("--only", action="append", help="run only these benchmarks (by name)")
    ap.add_argument("--json", help="also write the results as JSON")
    a = ap.parse_args(argv)
    repeat = a.repeat or (3 if a.quick else 2)
    luas = lua_runtimes()
    wasm = wasm_instance()
    missing = ([] if luas else ["lupa (Lua 5.4, LuaJIT)"]) + ([] if wasm else ["wasmtime"])
    systems = [s for s in SYSTEMS if s.startswith("nbcvm") or s == "CPython" or s in luas
               or (s == "wasmtime" and wasm is not None)]
    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} cpu(s); "
          + (f"skipped (not installed): {', '.join(missing)}" if missing else "all peers installed"),
          file=sys.stderr)
    cache_root = tempfile.mkdtemp(prefix="nbcvm-bench-jit-")
    startup: dict = {}
    rows = [measure(b, a.quick, repeat, luas, wasm, cache_root, startup) for b in BENCHES
            if not a.only or b.name in a.only]
    text = render(rows, startup, systems)
    print(text)
    if a.json:
        Path(a.json).write_text(json.dumps({"rows": [r.__dict__ for r in rows], "startup": startup,
                                            "systems": systems}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
