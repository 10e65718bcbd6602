"""Edge-value semantics of the numba tier, operation by operation.

One numeric function ``f k a b`` applies operation ``k`` to ``a`` and ``b`` and
prints the result.  It is called through the host API (``Runtime.call``) for
every operation and every pair of edge values, once per argument-type
combination -- so each combination is one numba compile -- and the result or
the error (type *and* message) must equal the interpreter's.
"""

from __future__ import annotations

import io
import math

import pytest

from nbcvm.asm.assembler import assemble
from nbcvm.errors import VMError
from nbcvm.runtime.runtime import Runtime

OPS = ["add", "sub", "mul", "div", "idiv", "mod", "band", "bor", "bxor", "shl", "shr",
       "eq", "ne", "lt", "le", "gt", "ge", "and", "or"]
UNARY = ["neg", "not", "toint", "tofloat"]
REVERSED = ["sub", "div", "idiv", "mod", "eq", "lt", "le", "gt", "ge"]
NATIVE1 = ["sqrt", "sin", "cos", "tan", "exp", "log", "atan", "floor", "ceil", "abs", "isnan"]
NATIVE2 = ["atan2", "min", "max"]

INTS = [0, 1, -1, 2, -2, 3, 7, -7, 63, 64, -64, 2**31, 3037000499, 3037000500, -3037000500, 2**53, 2**53 + 1,
        2**62, 2**63 - 1, -(2**63), -(2**63) + 1]
FLOATS = [0.0, -0.0, 0.5, -0.5, 1.0, -3.0, 7.25, 1e300, -1e300, 1e-310, 2.0**53, 2.0**63, -(2.0**63),
          9.3e18, math.inf, -math.inf, math.nan, 710.0, -710.0]


def _source(natives: bool) -> str:
    lines = [".module sem", ".import math", ".func f k a b"]
    if natives:  # math natives by themselves: min/max of mixed types would make f not numeric
        cases = [("n1", op) for op in NATIVE1] + [("n2", op) for op in NATIVE2]
    else:
        cases = [("bin", op) for op in OPS] + [("un", op) for op in UNARY] + [("inc", 1), ("inc", -1)] + \
            [("rbin", op) for op in REVERSED]
    for i, (kind, op) in enumerate(cases):
        lines += ["    load k", f"    push {i}", "    eq", f"    jf next{i}"]
        if kind == "bin":
            lines += ["    load a", "    load b", f"    {op}"]
        elif kind == "rbin":  # operands the other way round: float-int when called as int-float
            lines += ["    load b", "    load a", f"    {op}"]
        elif kind == "un":
            lines += ["    load a", f"    {op}"]
        elif kind == "n1":
            lines += ["    load a", f"    call math.{op} 1"]
        elif kind == "n2":
            lines += ["    load a", "    load b", f"    call math.{op} 2"]
        else:
            lines += [f"    inc a {op * (2**62)}", "    load a"]
        lines += ["    print", "    push 0", "    ret", f"next{i}:"]
    lines += ["    push 1", "    ret", ".end"]
    return "\n".join(lines) + "\n", len(cases)


def _results(mode: str, pairs, natives: bool = False) -> list:
    src, ncases = _source(natives)
    out = io.StringIO()
    rt = Runtime(stdout=out, jit=mode)
    inst = rt.instantiate(assemble(src, "sem.nbc"))
    res = []
    for k in range(ncases):
        for a, b in pairs:
            n = out.tell()
            try:
                rt.call(inst, "f", [k, a, b])
                res.append(("ok", out.getvalue()[n:]))
            except VMError as e:
                res.append((e.type_name, e.message, [(t.function, t.pc) for t in e.traceback]))
    return res, rt


SIGNATURES = {
    "int-int": ([(a, b) for a in INTS for b in INTS], False),
    "float-float": ([(a, b) for a in FLOATS for b in FLOATS], False),
    # float-int would be one more compile: the "rbin" cases run the operands the other way round
    "int-float": ([(a, b) for a in INTS[::2] for b in FLOATS], False),
    "natives-float": ([(a, b) for a in FLOATS for b in FLOATS[::3]], True),
}
# bools and int arguments of natives are covered by the random programs (test_random.py): every
# signature here is one more numba compile, and the suite must stay well under a minute


@pytest.mark.parametrize("sig", sorted(SIGNATURES))
def test_edge_values(sig: str) -> None:
    pairs, natives = SIGNATURES[sig]
    want, _ = _results("off", pairs, natives)
    got, rt = _results("eager", pairs, natives)
    tiers = {d["function"]: d for d in rt.jit.report()["decisions"]}
    assert tiers["sem.f"]["tier"] == "numba", tiers["sem.f"]
    for i, (w, g) in enumerate(zip(want, got)):
        k, (a, b) = divmod(i, len(pairs))[0], pairs[i % len(pairs)]
        assert g == w, f"case {k} with a={a!r} b={b!r}: interpreter {w} but numba {g}"
