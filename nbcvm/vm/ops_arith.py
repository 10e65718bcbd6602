"""Arithmetic, comparison and logic handlers.

Binary operations are generated from one template per operator so that the
plain instruction and every fused variant (operands read from a local, a
constant or a global; result stored to a local or global; a comparison that
branches) share one definition.  Factories are made once per *shape* with
``exec`` and cached; an instruction then only binds its register indices.

Semantics (DESIGN.md): ints are 64-bit and checked -- a result outside the
range raises OverflowError, never wraps; ``/`` is float division;
``idiv``/``mod`` floor like Python; division by zero raises
ZeroDivisionError (for floats too).  ``true``/``false`` count as 1/0 in
arithmetic, as in Python.  The overflow test is one chained comparison that
also rejects non-numbers (comparing a string with an int raises TypeError).
"""

from __future__ import annotations

from typing import Any

from nbcvm.errors import VMError
from nbcvm.vm.compile import BUDGET, InsCtx, handler
from nbcvm.vm.values import truthy, type_name

INT_MIN, INT_MAX = -(2**63), 2**63 - 1
NUMT = frozenset({int, float, bool})

# name: (python operator, checks int overflow, guard)
BINOPS: dict[str, tuple[str, bool, str | None]] = {
    "add": ("+", True, None),
    "sub": ("-", True, None),
    "mul": ("*", True, "num"),  # "ab" * 10**9 must never run
    "div": ("/", False, None),
    "idiv": ("//", True, None),
    "mod": ("%", True, "nostr"),  # "%9999999d" % 1 must never run
    "band": ("&", False, None),
    "bor": ("|", False, None),
    "bxor": ("^", False, None),
    "shl": ("<<", True, "shift"),
    "shr": (">>", False, "shift"),
    "eq": ("==", False, None),
    "ne": ("!=", False, None),
    "lt": ("<", False, None),
    "le": ("<=", False, None),
    "gt": (">", False, None),
    "ge": (">=", False, None),
}
COMPARE = frozenset({"eq", "ne", "lt", "le", "gt", "ge"})


def overflow(op: str) -> None:
    raise VMError("OverflowError", f"int overflow in {op} (results must fit in 64 bits)")


def bad_shift(b: Any) -> None:
    if type(b) is not int and type(b) is not bool:
        raise TypeError("shift count must be an int")
    if b < 0:
        raise VMError("ValueError", f"negative shift count {b}")
    raise VMError("OverflowError", f"shift count {b} too large (0..63)")


def bad_operands(op: str, a: Any, b: Any) -> VMError:
    return VMError("TypeError", f"unsupported operand types for {op}: {type_name(a)} and {type_name(b)}")


# Source kinds: r = register, g = module global, ki/kf/k = int/float/other constant
def _src(kind: str, var: str) -> str:
    return {"r": f"r[{var}]", "g": f"G[{var}]"}.get(kind, var)


_FACTORIES: dict[tuple, Any] = {}


def binop_factory(op: str, ka: str, kb: str, kd: str, branch: str | None = None):
    """Factory(A, B, D, NXT, T, CT, CF, G, m) -> handler for one shape."""
    key = (op, ka, kb, kd, branch)
    f = _FACTORIES.get(key)
    if f is not None:
        return f
    sym, check, guard = BINOPS[op]
    a, b = _src(ka, "A"), _src(kb, "B")
    body: list[str] = []
    if guard == "num":
        body.append(f"x = {a}; y = {b}")
        tests = [f"{v}.__class__ not in NUMT" for v, k in (("x", ka), ("y", kb)) if k not in ("ki", "kf")]
        if tests:
            body.append(f"if {' or '.join(tests)}: raise TypeError")
        a, b = "x", "y"
    elif guard == "nostr" and ka not in ("ki", "kf"):
        body.append(f"x = {a}")
        body.append("if x.__class__ is str: raise TypeError")
        a = "x"
    elif guard == "shift":
        body.append(f"y = {b}")
        body.append("if not 0 <= y <= 63: bad_shift(y)")
        b = "y"
    # a float constant makes the result a float (or a TypeError): no int check needed
    if check and "kf" in (ka, kb):
        check = False
    if branch:
        taken, fall = ("T", "NXT") if branch == "jt" else ("NXT", "T")
        ctaken, cfall = ("CT", "CF") if branch == "jt" else ("CF", "CT")
        body += [
            f"c = {a} {sym} {b}",
            "if c.__class__ is not bool: raise TypeError",  # e.g. tensors compare elementwise
            "if c:",
            f"    m.budget -= {ctaken}",
            f"    if m.budget < 0: m.resume = {taken}; return {BUDGET}",
            f"    return {taken}",
            f"m.budget -= {cfall}",
            f"if m.budget < 0: m.resume = {fall}; return {BUDGET}",
            f"return {fall}",
        ]
    else:
        body.append(f"v = {a} {sym} {b}")
        if check:
            body.append(f"if not MIN <= v <= MAX and v.__class__ is int: overflow({op!r})")
        if op in COMPARE:  # a tensor compared elementwise would not be a bool
            body.append("if v.__class__ is not bool: raise TypeError")
        body.append("G[D] = v" if kd == "g" else "r[D] = v")
        body.append("return NXT")
    src = "def factory(A, B, D, NXT, T, CT, CF, G, m):\n    def h(r):\n"
    src += "".join(f"        {line}\n" for line in body) + "    return h\n"
    env = {"MIN": INT_MIN, "MAX": INT_MAX, "NUMT": NUMT, "overflow": overflow, "bad_shift": bad_shift}
    exec(compile(src, f"<nbcvm {op} {ka}{kb}{kd} {branch or ''}>", "exec"), env)
    f = env["factory"]
    _FACTORIES[key] = f
    return f


def _plain(op: str):
    @handler(op)
    def make(c: InsCtx):
        c.fn.opinfo[c.pc] = (op, ("r", c.sp - 2), ("r", c.sp - 1))
        return binop_factory(op, "r", "r", "r")(c.sp - 2, c.sp - 1, c.sp - 2, c.nxt, 0, 0, 0, None, c.meter)

    return make


for _name in BINOPS:
    _plain(_name)


@handler("neg")
def _neg(c: InsCtx):
    s, nxt = c.sp - 1, c.nxt

    def h(r: list) -> int:
        v = -r[s]
        if not INT_MIN <= v <= INT_MAX and v.__class__ is int:
            overflow("neg")
        r[s] = v
        return nxt

    return h


@handler("not")
def _not(c: InsCtx):
    s, nxt = c.sp - 1, c.nxt

    def h(r: list) -> int:
        r[s] = not truthy(r[s])
        return nxt

    return h


@handler("and", "or")
def _andor(c: InsCtx):
    s, nxt = c.sp - 2, c.nxt
    if c.op.name == "and":
        def h(r: list) -> int:
            r[s] = truthy(r[s]) and truthy(r[s + 1])
            return nxt
    else:
        def h(r: list) -> int:
            r[s] = truthy(r[s]) or truthy(r[s + 1])
            return nxt
    return h
