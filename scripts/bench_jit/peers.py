"""The benchmark programs for Lua (5.4 and LuaJIT, through lupa) and WebAssembly (WAT, through wasmtime).

Each is the same algorithm as the NBC program and the CPython function of
scripts/bench.py, in the same order of floating-point operations, so that
they print the same answers (checked by scripts/bench_jit.py).
"""

from __future__ import annotations

from itertools import combinations

LUA = r"""
function fib(n) if n < 2 then return n end return fib(n - 1) + fib(n - 2) end

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

_BODIES = [
    (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, None),
    (4.84143144246472090e+00, -1.16032004402742839e+00, -1.03622044471123109e-01,
     1.66007664274403694e-03, 7.69901118419740425e-03, -6.90460016972063023e-05, 9.54791938424326609e-04),
    (8.34336671824457987e+00, 4.12479856412430479e+00, -4.03523417114321381e-01,
     -2.76742510726862411e-03, 4.99852801234917238e-03, 2.30417297573763929e-05, 2.85885980666130812e-04),
    (1.28943695621391310e+01, -1.51111514016986312e+01, -2.23307578892655734e-01,
     2.96460137564761618e-03, 2.37847173959480950e-03, -2.96589568540237556e-05, 4.36624404335156298e-05),
    (1.53796971148509165e+01, -2.59193146099879641e+01, 1.79258772950371181e-01,
     2.68067772490389322e-03, 1.62824170038242295e-03, -9.51592254519715870e-05, 5.15138902046611451e-05),
]


def wat_nbody() -> str:
    """n-body in WAT, unrolled over the 10 pairs, one mutable global per coordinate (like nbody.nbc)."""
    import math

    sm = 4.0 * math.pi * math.pi
    days = 365.24
    f = lambda x: f"(f64.const {x!r})"  # noqa: E731
    g = lambda name: f"(global.get ${name})"  # noqa: E731
    out = ["(module", "  (global $e0 (mut f64) (f64.const 0))"]
    for b in range(5):
        x, y, z, vx, vy, vz, m = _BODIES[b]
        mass = sm if m is None else m * sm
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
