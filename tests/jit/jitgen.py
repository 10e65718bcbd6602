"""Random NBC programs for the differential tests (hypothesis strategies).

``programs(numeric=True)`` makes modules whose every value is an int, float or
bool -- the numba tier's domain -- with the edge values that matter
(INT_MAX, INT_MIN, 0, -1, -0.0, huge floats, shift counts around 63), every
arithmetic, comparison and logic instruction, branches, bounded loops, calls
between functions, module globals and math natives.  ``numeric=False`` adds
strings, nil, lists and try regions (the Python tier's domain).  Errors
(overflow, division by zero, TypeError ...) are expected: the tiers must agree
on them too.  Programs are built from statements that leave the stack empty,
so every generated program verifies.
"""

from __future__ import annotations

from hypothesis import strategies as st

INT_EDGES = [0, 1, -1, 2, 3, 7, -7, 10, 63, 64, -64, 1000, 2**31, 2**53 + 1, 2**62, 2**63 - 1, -(2**63),
             -(2**63) + 1, 3037000499, 3037000500, -3037000500]
FLOAT_EDGES = [0.0, -0.0, 0.5, -1.5, 2.0, 3.25, 1e300, -1e300, 1e-300, 9.2e18, -9.3e18, 2.0**53, 1e16 + 1.0]
BINOPS = ["add", "sub", "mul", "div", "idiv", "mod", "band", "bor", "bxor", "shl", "shr",
          "eq", "ne", "lt", "le", "gt", "ge", "and", "or"]
NATIVES = [("sqrt", 1), ("floor", 1), ("ceil", 1), ("abs", 1), ("min", 2), ("max", 2), ("exp", 1),
           ("log", 1), ("sin", 1), ("atan2", 2), ("isnan", 1)]


def fmt_const(v) -> str:
    if v is True:
        return "true"
    if v is False:
        return "false"
    if v is None:
        return "nil"
    if isinstance(v, str):
        return '"' + v + '"'
    if isinstance(v, float):
        r = repr(v)
        return r if ("." in r or "e" in r or "n" in r) else r + ".0"
    return str(v)


class _Gen:
    def __init__(self, draw, numeric: bool, nfuncs: int):
        self.draw = draw
        self.numeric = numeric
        self.nfuncs = nfuncs
        self.labels = 0
        self.uses_math = False

    def label(self) -> str:
        self.labels += 1
        return f"L{self.labels}"

    def const(self):
        d = self.draw
        kind = d(st.integers(0, 9))
        if kind <= 3:
            return d(st.sampled_from(INT_EDGES))
        if kind <= 5:
            return d(st.integers(-20, 20))
        if kind <= 7:
            return d(st.sampled_from(FLOAT_EDGES))
        if kind == 8 or self.numeric:
            return d(st.booleans())
        return d(st.sampled_from(["ab", "", None]))

    def expr(self, fn: "_Fn", depth: int) -> list[str]:
        d = self.draw
        choice = d(st.integers(0, 12)) if depth < 3 else d(st.integers(0, 3))
        if choice == 0 or choice == 1:
            return [f"push {fmt_const(self.const())}"]
        if choice == 2:
            return [f"load {d(st.sampled_from(fn.vars))}"]
        if choice == 3:
            return [f"gload g{d(st.integers(0, 2))}"]
        if choice <= 7:
            op = d(st.sampled_from(BINOPS))
            if self.numeric and op in ("band", "bor", "bxor", "shl", "shr"):
                # bit operations on ints (toint keeps floats out: a float here is a TypeError)
                return self.expr(fn, depth + 1) + ["toint"] + self.expr(fn, depth + 1) + ["toint", op]
            return self.expr(fn, depth + 1) + self.expr(fn, depth + 1) + [op]
        if choice == 8:
            return self.expr(fn, depth + 1) + [d(st.sampled_from(["neg", "not", "tofloat", "toint"]))]
        if choice == 9 and fn.index + 1 < self.nfuncs:
            callee = d(st.integers(fn.index + 1, self.nfuncs - 1))
            code: list[str] = []
            for _ in range(2):
                code += self.expr(fn, depth + 1)
            return code + [f"call f{callee} 2"]
        if choice == 10:
            self.uses_math = True
            name, n = d(st.sampled_from(NATIVES))
            code = []
            for _ in range(n):
                code += self.expr(fn, depth + 1)
            return code + [f"call math.{name} {n}"]
        if choice == 11:  # stack shuffles that leave one value
            a, b = self.expr(fn, depth + 1), self.expr(fn, depth + 1)
            tail = d(st.sampled_from([["swap", "pop"], ["over", "pop", "pop"], ["dup", "pop", "pop"],
                                      ["push 3", "rot", "pop", "pop"], ["over", "swap", "pop", "swap", "pop"]]))
            return a + b + tail
        return [f"push {fmt_const(self.const())}"]

    def stmts(self, fn: "_Fn", depth: int, n: int) -> list[str]:
        out: list[str] = []
        for _ in range(n):
            out += self.stmt(fn, depth)
        return out

    def stmt(self, fn: "_Fn", depth: int) -> list[str]:
        d = self.draw
        choice = d(st.integers(0, 9)) if depth < 2 else d(st.integers(0, 4))
        if choice <= 1:
            return self.expr(fn, 0) + [f"store {d(st.sampled_from(fn.vars))}"]
        if choice == 2:
            return self.expr(fn, 0) + ["print"]
        if choice == 3:
            return [f"inc {d(st.sampled_from(fn.vars))} {d(st.sampled_from([1, -1, 5, 2**62, -(2**63)]))}"]
        if choice == 4:
            return self.expr(fn, 0) + [f"gstore g{d(st.integers(0, 2))}"] if not self.numeric else \
                self.expr_typed_global(fn)
        if choice <= 6:
            els, end = self.label(), self.label()
            return (self.expr(fn, 0) + [f"{d(st.sampled_from(['jf', 'jt']))} {els}"]
                    + self.stmts(fn, depth + 1, d(st.integers(0, 3))) + [f"jmp {end}", f"{els}:"]
                    + self.stmts(fn, depth + 1, d(st.integers(0, 2))) + [f"{end}:", "nop"])
        if choice <= 8:
            c = f"c{depth}"
            top, end = self.label(), self.label()
            return ([f"push {d(st.integers(0, 6))}", f"store {c}", f"{top}:", f"load {c}", "push 0", "gt",
                     f"jf {end}"] + self.stmts(fn, depth + 1, d(st.integers(1, 3)))
                    + [f"inc {c} -1", f"jmp {top}", f"{end}:", "nop"])
        if not self.numeric:
            h, ok = self.label(), self.label()
            return ([f"try {h} *"] + self.stmts(fn, depth + 1, d(st.integers(1, 3))) + ["endtry", f"jmp {ok}",
                    f"{h}:", "errfield type", "print", f"{ok}:", "nop"])
        return self.expr(fn, 0) + ["print"]

    def expr_typed_global(self, fn: "_Fn") -> list[str]:
        # numeric mode keeps each global's type (float globals get float values): stays numba-friendly
        g = self.draw(st.integers(0, 2))
        return self.expr(fn, 0) + ["tofloat" if g == 0 else "toint" if g == 1 else "not", f"gstore g{g}"]


class _Fn:
    def __init__(self, index: int, params: list[str]):
        self.index = index
        self.params = params
        self.vars = params + ["x", "y"]


@st.composite
def programs(draw, numeric: bool = True) -> str:
    nfuncs = draw(st.integers(1, 3))
    g = _Gen(draw, numeric, nfuncs)
    funcs: list[str] = []
    for i in range(nfuncs - 1, -1, -1):
        main = i == 0
        params = [] if main else ["a", "b"]
        fn = _Fn(i, params)
        body = [f"push {fmt_const(g.const() if not numeric else draw(st.sampled_from([0, 1, 2.5, -3])))}",
                "store x", "push 1", "store y"]
        body += g.stmts(fn, 0, draw(st.integers(1, 5)))
        if main:
            body += ["push 0", "ret"]
        else:
            body += g.expr(fn, 1) + ["ret"]
        name = "main" if main else f"f{i}"
        head = f".func {name}" + "".join(" " + p for p in params)
        funcs.append("\n".join([head, "    .local x y c0 c1 c2"] + ["    " + line if not line.endswith(":")
                                                                      else line for line in body] + [".end"]))
    mods = [".module rnd"]
    if g.uses_math:
        mods.append(".import math")
    gvals = [1.5, 7, True] if numeric else [g.const(), g.const(), g.const()]
    mods += [f".global g{k} {fmt_const(v)}" for k, v in enumerate(gvals)]
    # main first, helpers after (their order does not matter to the assembler)
    return "\n".join(mods + funcs[::-1]) + "\n"
