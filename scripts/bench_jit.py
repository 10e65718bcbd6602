"""The peer table: nbcvm's interpreter and JIT against CPython, Lua and WebAssembly.

    python scripts/bench_jit.py             # full sizes
    python scripts/bench_jit.py --quick     # CI sizes (seconds, not minutes)
    python scripts/bench_jit.py --json out.json

Benchmarks (the same algorithm everywhere, checked by comparing answers):
fib(30), an integer loop of 1e7 steps (examples/loops.nbc), n-body 1e5 steps
(examples/nbody.nbc), mandelbrot 200x200x50 (examples/mandelbrot.nbc) and a
matmul-heavy tensor program (``MATMUL_NBC`` below; numpy does the
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

import os

# one BLAS thread: numpy's matmul then times the same in every nbcvm tier and in CPython, instead of
# depending on how many other processes its worker threads compete with
for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import platform
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Callable  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import bench as pybench  # noqa: E402  -- scripts/bench.py: the CPython versions
from itertools import combinations  # noqa: E402

from nbcvm.runtime.runtime import Runtime  # noqa: E402
from nbcvm.tools.run import parse_arg  # noqa: E402


# ---------------------------------------------------------------------------
# The matmul program (written to a temp file when run): numpy does the work in every nbcvm tier.

MATMUL_NBC = """\
; matmul.nbc -- a matmul-heavy tensor program for scripts/bench_jit.py.
;
;   nbcvm run matmul.nbc 100 20     prints 0.000200642652
;
; A = arange(n*n) / (n*n) as an n x n tensor; C = A, then reps times
; C = C @ A, normalised by its sum.  Prints max(C) with 12 decimals.  The
; work is numpy's (tensors are numpy-backed), so every tier runs it at about
; the same speed: this row shows what the JIT does *not* change.
.module matmul
.import tensor
.import str

.func main n reps
    .local a c r nn
    load n
    load n
    mul
    store nn
    load nn
    call tensor.arange 1
    load n
    load n
    newlist 2
    reshape
    load nn
    tdiv
    store a
    load a
    store c
    push 0
    store r
    jmp test
body:
    load c
    load a
    matmul
    store c
    load c
    load c
    tsum
    tdiv
    store c
    inc r 1
test:
    load r
    load reps
    lt
    jt body
    load c
    tmax
    push 12
    call str.fixed 2
    print
    push 0
    ret
.end
"""


# ---------------------------------------------------------------------------
# Lua (5.4, LuaJIT) and WebAssembly versions: the same algorithms, same order of float operations.

LUA = r"""
function fib(n) if n < 2 then return n end return fib(n - 1) + fib(n - 2) end

function words(n)
  local counts, nkeys, total = {}, 0, 0
  for i = 0, n - 1 do
    local w = "w" .. string.format("%d", i % 997)
    if counts[w] == nil then counts[w] = 0; nkeys = nkeys + 1 end
    counts[w] = counts[w] + 1
  end
  for _, c in pairs(counts) do total = total + c end
  return string.format("%d\n%d", nkeys, total)
end

function loops(n)
  local acc, i = 0, 0
  while i < n do acc = (acc + i * i) % 1000003; i = i + 1 end
  return acc
end

function mandelbrot(w, h)
  local count = 0
  for py = 0, h - 1 do
    local ci = 2.0 * py / h - 1.0
    for px = 0, w - 1 do
      local cr = 2.0 * px / w - 1.5
      local zr, zi, inside = 0.0, 0.0, true
      for _ = 1, 50 do
        local zr2, zi2 = zr * zr, zi * zi
        if zr2 + zi2 > 4.0 then inside = false; break end
        zi = 2.0 * zr * zi + ci
        zr = zr2 - zi2 + cr
      end
      if inside then count = count + 1 end
    end
  end
  return count
end

local SOLAR_MASS = 4.0 * math.pi * math.pi
local DAYS = 365.24
function nbody(n)
  local B = {
    {0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0},
    {4.84143144246472090e+00, -1.16032004402742839e+00, -1.03622044471123109e-01,
     1.66007664274403694e-03, 7.69901118419740425e-03, -6.90460016972063023e-05, 9.54791938424326609e-04},
    {8.34336671824457987e+00, 4.12479856412430479e+00, -4.03523417114321381e-01,
     -2.76742510726862411e-03, 4.99852801234917238e-03, 2.30417297573763929e-05, 2.85885980666130812e-04},
    {1.28943695621391310e+01, -1.51111514016986312e+01, -2.23307578892655734e-01,
     2.96460137564761618e-03, 2.37847173959480950e-03, -2.96589568540237556e-05, 4.36624404335156298e-05},
    {1.53796971148509165e+01, -2.59193146099879641e+01, 1.79258772950371181e-01,
     2.68067772490389322e-03, 1.62824170038242295e-03, -9.51592254519715870e-05, 5.15138902046611451e-05},
  }
  for i = 1, 5 do
    local b = B[i]
    b[4], b[5], b[6] = b[4] * DAYS, b[5] * DAYS, b[6] * DAYS
    b[7] = (i == 1) and SOLAR_MASS or b[7] * SOLAR_MASS
  end
  for k = 4, 6 do
    local p = 0.0
    for i = 1, 5 do p = p + B[i][k] * B[i][7] end
    B[1][k] = -p / SOLAR_MASS
  end
  local sqrt = math.sqrt
  local function energy()
    local e = 0.0
    for i = 1, 5 do
      local b = B[i]
      e = e + 0.5 * b[7] * (b[4] * b[4] + b[5] * b[5] + b[6] * b[6])
    end
    for i = 1, 5 do for j = i + 1, 5 do
      local a, b = B[i], B[j]
      local dx, dy, dz = a[1] - b[1], a[2] - b[2], a[3] - b[3]
      e = e - a[7] * b[7] / sqrt(dx * dx + dy * dy + dz * dz)
    end end
    return e
  end
  local e0 = energy()
  for _ = 1, n do
    for i = 1, 5 do for j = i + 1, 5 do
      local a, b = B[i], B[j]
      local dx, dy, dz = a[1] - b[1], a[2] - b[2], a[3] - b[3]
      local d2 = dx * dx + dy * dy + dz * dz
      local mag = 0.01 / (sqrt(d2) * d2)
      local mam, mbm = a[7] * mag, b[7] * mag
      a[4] = a[4] - dx * mbm; a[5] = a[5] - dy * mbm; a[6] = a[6] - dz * mbm
      b[4] = b[4] + dx * mam; b[5] = b[5] + dy * mam; b[6] = b[6] + dz * mam
    end end
    for i = 1, 5 do
      local b = B[i]
      b[1] = b[1] + 0.01 * b[4]; b[2] = b[2] + 0.01 * b[5]; b[3] = b[3] + 0.01 * b[6]
    end
  end
  return string.format("%.9f\n%.9f", e0, energy())
end

function matmul(n, reps)
  local nn = n * n
  local a, c = {}, {}
  for i = 0, nn - 1 do a[i] = i / nn; c[i] = a[i] end
  for _ = 1, reps do
    local t, s = {}, 0.0
    for i = 0, n - 1 do
      for j = 0, n - 1 do
        local acc = 0.0
        for k = 0, n - 1 do acc = acc + c[i * n + k] * a[k * n + j] end
        t[i * n + j] = acc
      end
    end
    for i = 0, nn - 1 do s = s + t[i] end
    for i = 0, nn - 1 do c[i] = t[i] / s end
  end
  local m = c[0]
  for i = 1, nn - 1 do if c[i] > m then m = c[i] end end
  return string.format("%.12f", m)
end
"""

WAT_SIMPLE = r"""
(module
  (memory (export "mem") 16)
  (func $fib (export "fib") (param $n i64) (result i64)
    (if (result i64) (i64.lt_s (local.get $n) (i64.const 2))
      (then (local.get $n))
      (else (i64.add (call $fib (i64.sub (local.get $n) (i64.const 1)))
                     (call $fib (i64.sub (local.get $n) (i64.const 2)))))))

  (func (export "loops") (param $n i64) (result i64)
    (local $i i64) (local $acc i64)
    (block $done (loop $top
      (br_if $done (i64.ge_s (local.get $i) (local.get $n)))
      (local.set $acc (i64.rem_s (i64.add (local.get $acc) (i64.mul (local.get $i) (local.get $i)))
                                 (i64.const 1000003)))
      (local.set $i (i64.add (local.get $i) (i64.const 1)))
      (br $top)))
    (local.get $acc))

  (func (export "mandelbrot") (param $w i32) (param $h i32) (result i32)
    (local $px i32) (local $py i32) (local $count i32) (local $k i32)
    (local $cr f64) (local $ci f64) (local $zr f64) (local $zi f64) (local $zr2 f64) (local $zi2 f64)
    (block $ydone (loop $yloop
      (br_if $ydone (i32.ge_s (local.get $py) (local.get $h)))
      (local.set $ci (f64.sub (f64.div (f64.mul (f64.const 2) (f64.convert_i32_s (local.get $py)))
                                       (f64.convert_i32_s (local.get $h))) (f64.const 1)))
      (local.set $px (i32.const 0))
      (block $xdone (loop $xloop
        (br_if $xdone (i32.ge_s (local.get $px) (local.get $w)))
        (local.set $cr (f64.sub (f64.div (f64.mul (f64.const 2) (f64.convert_i32_s (local.get $px)))
                                         (f64.convert_i32_s (local.get $w))) (f64.const 1.5)))
        (local.set $zr (f64.const 0)) (local.set $zi (f64.const 0)) (local.set $k (i32.const 0))
        (block $escaped
          (loop $it
            (local.set $zr2 (f64.mul (local.get $zr) (local.get $zr)))
            (local.set $zi2 (f64.mul (local.get $zi) (local.get $zi)))
            (br_if $escaped (f64.gt (f64.add (local.get $zr2) (local.get $zi2)) (f64.const 4)))
            (local.set $zi (f64.add (f64.mul (f64.mul (f64.const 2) (local.get $zr)) (local.get $zi)) (local.get $ci)))
            (local.set $zr (f64.add (f64.sub (local.get $zr2) (local.get $zi2)) (local.get $cr)))
            (local.set $k (i32.add (local.get $k) (i32.const 1)))
            (br_if $it (i32.lt_s (local.get $k) (i32.const 50))))
          (local.set $count (i32.add (local.get $count) (i32.const 1))))
        (local.set $px (i32.add (local.get $px) (i32.const 1)))
        (br $xloop)))
      (local.set $py (i32.add (local.get $py) (i32.const 1)))
      (br $yloop)))
    (local.get $count))

  ;; A at 0, C at n*n*8, T at 2*n*n*8 (f64 each); returns max(C) after reps normalised products
  (func (export "matmul") (param $n i32) (param $reps i32) (result f64)
    (local $nn i32) (local $i i32) (local $j i32) (local $k i32) (local $r i32)
    (local $c i32) (local $t i32) (local $acc f64) (local $s f64) (local $m f64)
    (local.set $nn (i32.mul (local.get $n) (local.get $n)))
    (local.set $c (i32.mul (local.get $nn) (i32.const 8)))
    (local.set $t (i32.mul (local.get $nn) (i32.const 16)))
    (local.set $i (i32.const 0))
    (block $d (loop $l
      (br_if $d (i32.ge_s (local.get $i) (local.get $nn)))
      (f64.store (i32.shl (local.get $i) (i32.const 3))
                 (f64.div (f64.convert_i32_s (local.get $i)) (f64.convert_i32_s (local.get $nn))))
      (f64.store (i32.add (local.get $c) (i32.shl (local.get $i) (i32.const 3)))
                 (f64.load (i32.shl (local.get $i) (i32.const 3))))
      (local.set $i (i32.add (local.get $i) (i32.const 1))) (br $l)))
    (block $rd (loop $rl
      (br_if $rd (i32.ge_s (local.get $r) (local.get $reps)))
      (local.set $i (i32.const 0))
      (block $id (loop $il
        (br_if $id (i32.ge_s (local.get $i) (local.get $n)))
        (local.set $j (i32.const 0))
        (block $jd (loop $jl
          (br_if $jd (i32.ge_s (local.get $j) (local.get $n)))
          (local.set $acc (f64.const 0)) (local.set $k (i32.const 0))
          (block $kd (loop $kl
            (br_if $kd (i32.ge_s (local.get $k) (local.get $n)))
            (local.set $acc (f64.add (local.get $acc)
              (f64.mul (f64.load (i32.add (local.get $c) (i32.shl (i32.add (i32.mul (local.get $i) (local.get $n)) (local.get $k)) (i32.const 3))))
                       (f64.load (i32.shl (i32.add (i32.mul (local.get $k) (local.get $n)) (local.get $j)) (i32.const 3))))))
            (local.set $k (i32.add (local.get $k) (i32.const 1))) (br $kl)))
          (f64.store (i32.add (local.get $t) (i32.shl (i32.add (i32.mul (local.get $i) (local.get $n)) (local.get $j)) (i32.const 3)))
                     (local.get $acc))
          (local.set $j (i32.add (local.get $j) (i32.const 1))) (br $jl)))
        (local.set $i (i32.add (local.get $i) (i32.const 1))) (br $il)))
      (local.set $s (f64.const 0)) (local.set $i (i32.const 0))
      (block $sd (loop $sl
        (br_if $sd (i32.ge_s (local.get $i) (local.get $nn)))
        (local.set $s (f64.add (local.get $s) (f64.load (i32.add (local.get $t) (i32.shl (local.get $i) (i32.const 3))))))
        (local.set $i (i32.add (local.get $i) (i32.const 1))) (br $sl)))
      (local.set $i (i32.const 0))
      (block $cd (loop $cl
        (br_if $cd (i32.ge_s (local.get $i) (local.get $nn)))
        (f64.store (i32.add (local.get $c) (i32.shl (local.get $i) (i32.const 3)))
                   (f64.div (f64.load (i32.add (local.get $t) (i32.shl (local.get $i) (i32.const 3)))) (local.get $s)))
        (local.set $i (i32.add (local.get $i) (i32.const 1))) (br $cl)))
      (local.set $r (i32.add (local.get $r) (i32.const 1))) (br $rl)))
    (local.set $m (f64.load (local.get $c))) (local.set $i (i32.const 1))
    (block $md (loop $ml
      (br_if $md (i32.ge_s (local.get $i) (local.get $nn)))
      (local.set $m (f64.max (local.get $m) (f64.load (i32.add (local.get $c) (i32.shl (local.get $i) (i32.const 3))))))
      (local.set $i (i32.add (local.get $i) (i32.const 1))) (br $ml)))
    (local.get $m))
)
"""



def wat_nbody() -> str:
    """n-body in WAT, unrolled over the 10 pairs, one mutable global per coordinate (like nbody.nbc)."""
    sm, days = pybench._SOLAR_MASS, pybench._DAYS_PER_YEAR
    f = lambda x: f"(f64.const {x!r})"  # noqa: E731
    g = lambda name: f"(global.get ${name})"  # noqa: E731
    out = ["(module", "  (global $e0 (mut f64) (f64.const 0))"]
    for b in range(5):
        x, y, z, vx, vy, vz, m = pybench._BODIES[b]  # the same bodies as the CPython version
        mass = m * sm
        for name, v in (("x", x), ("y", y), ("z", z), ("vx", vx * days), ("vy", vy * days), ("vz", vz * days),
                        ("m", mass)):
            out.append(f"  (global ${name}{b} (mut f64) {f(v)})")
    # offset momentum: sun's v = -sum(v_i * m_i) / SOLAR_MASS
    body = []
    for k in ("vx", "vy", "vz"):
        acc = f(0.0)
        for b in range(5):
            acc = f"(f64.add {acc} (f64.mul {g(k + str(b))} {g('m' + str(b))}))"
        body.append(f"(global.set ${k}0 (f64.div (f64.neg {acc}) {f(sm)}))")
    out.append("  (func $offset " + " ".join(body) + ")")

    def d(axis, a, b):
        return f"(f64.sub {g(axis + str(a))} {g(axis + str(b))})"

    e = f(0.0)
    for b in range(5):
        v2 = (f"(f64.add (f64.add (f64.mul {g('vx%d' % b)} {g('vx%d' % b)}) (f64.mul {g('vy%d' % b)} {g('vy%d' % b)}))"
              f" (f64.mul {g('vz%d' % b)} {g('vz%d' % b)}))")
        e = f"(f64.add {e} (f64.mul (f64.mul {f(0.5)} {g('m%d' % b)}) {v2}))"
    for a, b in combinations(range(5), 2):
        dist = (f"(f64.sqrt (f64.add (f64.add (f64.mul {d('x', a, b)} {d('x', a, b)}) (f64.mul {d('y', a, b)} "
                f"{d('y', a, b)})) (f64.mul {d('z', a, b)} {d('z', a, b)})))")
        e = f"(f64.sub {e} (f64.div (f64.mul {g('m%d' % a)} {g('m%d' % b)}) {dist}))"
    out.append(f"  (func $energy (result f64) {e})")
    step = []
    for a, b in combinations(range(5), 2):
        step += [f"(local.set $dx {d('x', a, b)})", f"(local.set $dy {d('y', a, b)})", f"(local.set $dz {d('z', a, b)})",
                 "(local.set $d2 (f64.add (f64.add (f64.mul (local.get $dx) (local.get $dx)) "
                 "(f64.mul (local.get $dy) (local.get $dy))) (f64.mul (local.get $dz) (local.get $dz))))",
                 f"(local.set $mag (f64.div {f(0.01)} (f64.mul (f64.sqrt (local.get $d2)) (local.get $d2))))",
                 f"(local.set $mam (f64.mul {g('m%d' % a)} (local.get $mag)))",
                 f"(local.set $mbm (f64.mul {g('m%d' % b)} (local.get $mag)))"]
        for ax, dv in (("vx", "$dx"), ("vy", "$dy"), ("vz", "$dz")):
            step.append(f"(global.set ${ax}{a} (f64.sub {g(ax + str(a))} (f64.mul (local.get {dv}) (local.get $mbm))))")
        for ax, dv in (("vx", "$dx"), ("vy", "$dy"), ("vz", "$dz")):
            step.append(f"(global.set ${ax}{b} (f64.add {g(ax + str(b))} (f64.mul (local.get {dv}) (local.get $mam))))")
    for b in range(5):
        for ax in ("x", "y", "z"):
            step.append(f"(global.set ${ax}{b} (f64.add {g(ax + str(b))} (f64.mul {f(0.01)} {g('v' + ax + str(b))})))")
    out.append('  (func (export "nbody") (param $n i32) (result f64)'
               " (local $i i32) (local $dx f64) (local $dy f64) (local $dz f64) (local $d2 f64) (local $mag f64)"
               " (local $mam f64) (local $mbm f64)"
               " (call $offset) (global.set $e0 (call $energy))"
               " (block $done (loop $top (br_if $done (i32.ge_s (local.get $i) (local.get $n)))"
               f" {' '.join(step)} (local.set $i (i32.add (local.get $i) (i32.const 1))) (br $top)))"
               " (call $energy))")
    out.append('  (func (export "energy0") (result f64) (global.get $e0))')
    out.append(")")
    return "\n".join(out)


def py_words(n: int) -> str:
    counts: dict = {}
    for i in range(n):
        w = "w" + str(i % 997)
        if w not in counts:
            counts[w] = 0
        counts[w] = counts[w] + 1
    keys = list(counts)
    total = 0
    for k in keys:
        total += counts[k]
    return f"{len(keys)}\n{total}\n"


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
    lua: str  # function name in LUA
    wasm: str | None  # export name (None: no WebAssembly version)


BENCHES = (
    Bench("fib", ROOT / "examples" / "fib.nbc", (30,), (22,), pybench.py_fib, "fib", "fib"),
    Bench("int loop", ROOT / "examples" / "loops.nbc", (10_000_000,), (200_000,), pybench.py_loops, "loops", "loops"),
    Bench("n-body", ROOT / "examples" / "nbody.nbc", (100_000,), (2_000,), pybench.py_nbody, "nbody", "nbody"),
    Bench("mandelbrot", ROOT / "examples" / "mandelbrot.nbc", (200, 200), (60, 60), pybench.py_mandelbrot,
          "mandelbrot", "mandelbrot"),
    Bench("matmul", Path(tempfile.gettempdir()) / "nbcvm_bench_matmul.nbc", (200, 20), (60, 10), py_matmul,
          "matmul", "matmul"),
    # not numeric: the JIT's Python tier (target <= 2x CPython)
    Bench("words", ROOT / "examples" / "words.nbc", (1_000_000,), (50_000,), py_words, "words", None),
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
            lua.execute(LUA)
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
    simple = wasmtime.Instance(store, wasmtime.Module(eng, WAT_SIMPLE), []).exports(store)
    nbody = wasmtime.Instance(store, wasmtime.Module(eng, wat_nbody()), []).exports(store)
    return store, simple, nbody


def run_wasm(w, b: Bench, args: tuple[int, ...]) -> tuple[float, str]:
    store, simple, nbody = w
    if b.wasm == "nbody":
        import wasmtime

        eng = store.engine
        inst = wasmtime.Instance(store, wasmtime.Module(eng, wat_nbody()), []).exports(store)
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


PY_FIB = """
import sys
def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)
print(fib(int(sys.argv[1])))
"""


def whole_process(n: int, repeat: int, cache: str) -> dict:
    """``nbcvm run examples/fib.nbc N`` (default --jit auto) as a user runs it, against ``python3``
    running the same algorithm: whole processes, wall time.  The first nbcvm run fills the JIT
    cache; the figure is the best of the runs after it.  Bytecode (.pyc) writing is left on, as
    on a user's machine."""
    env = dict(os.environ, NBCVM_JIT_CACHE=cache, PYTHONPATH=str(ROOT))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    nbc = [sys.executable, "-m", "nbcvm", "run", str(ROOT / "examples" / "fib.nbc"), str(n)]
    py = [sys.executable, "-c", PY_FIB, str(n)]

    def wall(cmd: list[str]) -> tuple[float, str]:
        t0 = time.perf_counter()
        p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
        dt = time.perf_counter() - t0
        if p.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed:\n{p.stderr[-2000:]}")
        return dt, p.stdout

    first, out1 = wall(nbc)
    runs = [wall(nbc) for _ in range(repeat)]
    pys = [wall(py) for _ in range(repeat)]
    assert all(o == out1 for _, o in runs + pys), (out1, runs, pys)
    return {"n": n, "nbcvm_first": first, "nbcvm": min(t for t, _ in runs), "python3": min(t for t, _ in pys)}


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
    if wasm is not None and b.wasm is not None:
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
    out.append(f"numba start-up (import + helpers, once in a process that compiles; a process whose closures "
               f"are all in the disk cache never imports numba; not in the columns above): "
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
    (Path(tempfile.gettempdir()) / "nbcvm_bench_matmul.nbc").write_text(MATMUL_NBC)
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
    whole = None
    if not a.only or "whole" in a.only:
        whole = whole_process(27 if a.quick else 32, max(3, repeat), tempfile.mkdtemp(prefix="nbcvm-bench-whole-"))
        print(f"\nWhole process, `nbcvm run examples/fib.nbc {whole['n']}` (--jit auto, JIT cache warm) vs "
              f"`python3` running the same function: {whole['nbcvm']:.2f} s vs {whole['python3']:.2f} s "
              f"({whole['nbcvm'] / whole['python3']:.2f}x); first nbcvm run (cold cache) {whole['nbcvm_first']:.2f} s")
    if a.json:
        Path(a.json).write_text(json.dumps({"rows": [r.__dict__ for r in rows], "startup": startup,
                                            "systems": systems, "whole_process": whole}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
