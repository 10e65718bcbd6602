"""Static facts the JIT translates from: basic blocks and value types.

Everything here reads the verified bytecode and the ISA table only (no numba,
no numpy), so deciding *whether* a function can be compiled costs nothing at
start-up.

Blocks
    A block starts at a *leader* -- pc 0, a jump target, a ``try`` handler,
    or the pc after a jump/branch/end -- and runs to the next leader or up to
    and including a control instruction.  Calls do not end blocks: the
    translated code calls the callee directly and carries on.  Unreachable
    pcs (verifier depth ``None``) belong to no block.

Types (numba tier)
    ``infer`` runs a forward data-flow over the pcs of one function for one
    *signature* -- the types of its arguments and of the module globals it
    may touch -- and gives the type of every local and stack slot before
    every pc.  Types: ``i`` int, ``f`` float, ``b`` bool, ``u`` nil (an
    unset local), ``o`` anything else, ``x`` conflicting paths, ``N`` no value
    yet (bottom: a call whose callee's return type is still unknown).  Two
    paths that bring different types meet as ``x``; an ``x`` that is *read*
    makes the signature ineligible for numba.  The result says why not, with
    the pc.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from nbcvm.isa import BY_CODE, Flow, OperandKind

NUMERIC = frozenset("ifb")
PLAIN = frozenset("ifbu")  # numbers and nil: what the numba tier can hold (nil only moves, never computes)


@dataclass
class Block:
    start: int
    end: int  # exclusive
    succs: list[int] = field(default_factory=list)
    preds: list[int] = field(default_factory=list)
    loop_depth: int = 0


def op_names(code) -> list[str]:
    return [BY_CODE[opc].name for opc, _ in code.code]


def leaders(code, depths, regions) -> list[int]:
    n = len(code.code)
    out = {0}
    for r in regions:
        out.add(r.handler)
    for pc, (opc, args) in enumerate(code.code):
        if depths[pc] is None:
            continue
        op = BY_CODE[opc]
        for a, k in zip(args, op.operands):
            if k is OperandKind.LABEL and op.flow in (Flow.JUMP, Flow.BRANCH):
                out.add(a)
        if op.flow in (Flow.JUMP, Flow.BRANCH, Flow.END) and pc + 1 < n:
            out.add(pc + 1)
    return sorted(p for p in out if p < n and depths[p] is not None)


def blocks(code, depths, regions) -> dict[int, Block]:
    """Basic blocks by start pc, with predecessor lists and a loop-depth heuristic."""
    n = len(code.code)
    lead = leaders(code, depths, regions)
    lset = set(lead)
    out: dict[int, Block] = {}
    for i, start in enumerate(lead):
        pc = start
        while True:
            op = BY_CODE[code.code[pc][0]]
            if op.flow in (Flow.JUMP, Flow.BRANCH, Flow.END):
                end = pc + 1
                break
            if pc + 1 >= n or pc + 1 in lset:
                end = pc + 1
                break
            pc += 1
        b = Block(start, end)
        last = end - 1
        op = BY_CODE[code.code[last][0]]
        if op.flow is Flow.JUMP:
            b.succs = [code.code[last][1][0]]
        elif op.flow is Flow.BRANCH:
            b.succs = [code.code[last][1][0], end]
        elif op.flow is not Flow.END:
            b.succs = [end]
        out[start] = b
    for b in out.values():
        for s in b.succs:
            if s in out:
                out[s].preds.append(b.start)
    # loop depth: a back edge u -> h (h <= u) marks every block in [h, u] as inside a loop
    for b in out.values():
        for s in b.succs:
            if s <= b.start:
                for c in out.values():
                    if s <= c.start <= b.start:
                        c.loop_depth += 1
    return out


def topo_order(blks: dict[int, Block]) -> list[int] | None:
    """Blocks in topological order from block 0, or None if the flow graph has a cycle."""
    state: dict[int, int] = {}  # 1 on the DFS stack, 2 done
    post: list[int] = []
    stack = [(0, iter(blks[0].succs))] if 0 in blks else []
    if stack:
        state[0] = 1
    while stack:
        b, it = stack[-1]
        for s in it:
            if s not in blks:
                continue
            st = state.get(s)
            if st == 1:
                return None
            if st is None:
                state[s] = 1
                stack.append((s, iter(blks[s].succs)))
                break
        else:
            stack.pop()
            state[b] = 2
            post.append(b)
    return post[::-1]


# ---------------------------------------------------------------------------
# type inference for the numba tier


def tname(v) -> str:
    t = type(v)
    if t is int:
        return "i"
    if t is float:
        return "f"
    if t is bool:
        return "b"
    if v is None:
        return "u"
    return "o"


def join(a: str | None, b: str | None) -> str | None:
    if a is None or a == "N":
        return b if b is not None else a
    if b is None or b == "N":
        return a
    return a if a == b else "x"


class Ineligible(Exception):
    """This function/signature cannot run in the numba tier (the message says why)."""


ARITH = {"add", "sub", "mul", "idiv", "mod"}
BITS = {"band", "bor", "bxor"}
SHIFTS = {"shl", "shr"}
COMPARE = {"eq", "ne", "lt", "le", "gt", "ge"}

# math natives the numba tier implements itself (same results and errors as nbcvm.vm.natives)
NATIVE_UNARY_F = {"sqrt", "sin", "cos", "tan", "exp", "log", "atan"}
NATIVES = NATIVE_UNARY_F | {"atan2", "floor", "ceil", "abs", "min", "max", "pi", "inf", "isnan"}


def arith_result(op: str, a: str, b: str, pc: int) -> str:
    if a == "N" or b == "N":
        return "N"
    if a not in NUMERIC or b not in NUMERIC:
        raise Ineligible(f"pc {pc}: {op} on {a}/{b} values")
    if op in ARITH:
        return "f" if "f" in (a, b) else "i"
    if op == "div":
        return "f"
    if op in BITS:
        if "f" in (a, b):
            raise Ineligible(f"pc {pc}: {op} on a float (a TypeError)")
        return "b" if a == b == "b" else "i"
    if op in SHIFTS:
        if "f" in (a, b):
            raise Ineligible(f"pc {pc}: {op} on a float (a TypeError)")
        return "i"
    if op in COMPARE:
        return "b"
    raise Ineligible(f"pc {pc}: {op}")


def native_result(name: str, args: list[str], pc: int) -> str:
    if any(a == "N" for a in args):
        return "N"
    if any(a not in NUMERIC for a in args):
        raise Ineligible(f"pc {pc}: math.{name} on {'/'.join(args)}")
    if name in NATIVE_UNARY_F or name == "atan2":
        return "f"
    if name in ("floor", "ceil"):
        return "i"
    if name == "abs":
        return "f" if args[0] == "f" else "i"
    if name in ("min", "max"):
        if len(set(args)) != 1:  # min(1, 1.0) returns whichever compares first: not a static type
            raise Ineligible(f"pc {pc}: math.{name} of mixed types")
        return args[0]
    if name in ("pi", "inf"):
        return "f"
    if name == "isnan":
        return "b"
    raise Ineligible(f"pc {pc}: math.{name}")


@dataclass
class TypeFacts:
    """Types before each pc: (locals, stack), None where unreachable."""

    states: list[tuple[tuple[str, ...], tuple[str, ...]] | None]
    ret: str  # the joined type of every ``ret``; N if it never returns
    calls: dict[int, tuple[str, tuple[str, ...]]]  # pc -> (callee name, argument types)
    natives: dict[int, str]  # pc -> math function name
    fails: dict[int, str] = field(default_factory=dict)  # pc -> why it always raises (a TypeError)


NB_OPS = frozenset({
    "nop", "push", "pop", "dup", "swap", "over", "rot", "load", "store", "gload", "gstore", "inc",
    "add", "sub", "mul", "div", "idiv", "mod", "neg", "band", "bor", "bxor", "shl", "shr",
    "eq", "ne", "lt", "le", "gt", "ge", "not", "and", "or", "jmp", "jt", "jf", "call", "ret", "halt",
    "print", "toint", "tofloat",
})


def infer(code, depths, consts, names, argtypes: tuple[str, ...], gtypes: dict[int, str],
          ret_of, native_ok, start: int = 0) -> TypeFacts:
    """Type every slot before every pc for one signature; raise Ineligible with the reason.

    ``ret_of(name, argtypes)`` gives the current return type of a same-module
    callee (N while unknown); ``native_ok(qualified)`` says whether a
    cross-module call is a math native this tier implements.
    """
    n = len(code.code)
    nloc = len(code.locals)
    # from pc 0 the arguments then nil; from a loop header (on-stack replacement) every local's type
    init_locals = tuple(argtypes) + ("u",) * (nloc - len(argtypes))
    states: list = [None] * n
    states[start] = (init_locals, ())
    work = [start]
    calls: dict[int, tuple[str, tuple[str, ...]]] = {}
    natives: dict[int, str] = {}
    fails: dict[int, str] = {}
    ret = "N"
    names_ = [BY_CODE[opc].name for opc, _ in code.code]
    for pc, nm in enumerate(names_):
        if depths[pc] is not None and nm not in NB_OPS:
            raise Ineligible(f"pc {pc}: '{nm}' is not translated to numba")

    def flow(target: int, st) -> None:
        old = states[target]
        if old is None:
            states[target] = st
            work.append(target)
            return
        loc = tuple(join(a, b) for a, b in zip(old[0], st[0]))
        stk = tuple(join(a, b) for a, b in zip(old[1], st[1]))
        for t in stk:
            if t == "x":
                raise Ineligible(f"pc {target}: stack slots of different types meet")
        new = (loc, stk)
        if new != old:
            states[target] = new
            work.append(target)

    def read(t: str, pc: int, what: str) -> str:
        if t == "x":
            raise Ineligible(f"pc {pc}: {what} has different types on different paths")
        return t

    while work:
        pc = work.pop()
        loc, stk = states[pc]
        loc, stk = list(loc), list(stk)
        opc, args = code.code[pc]
        op = BY_CODE[opc]
        nm = op.name
        nxt = [pc + 1]
        if nm == "nop":
            pass
        elif nm == "push":
            t = tname(consts[args[0]])
            if t not in PLAIN:
                raise Ineligible(f"pc {pc}: a {type(consts[args[0]]).__name__} constant")
            stk.append(t)
        elif nm == "pop":
            stk.pop()
        elif nm == "dup":
            stk.append(stk[-1])
        elif nm == "swap":
            stk[-1], stk[-2] = stk[-2], stk[-1]
        elif nm == "over":
            stk.append(stk[-2])
        elif nm == "rot":
            stk[-3], stk[-2], stk[-1] = stk[-2], stk[-1], stk[-3]
        elif nm == "load":
            t = read(loc[args[0]], pc, f"local '{code.locals[args[0]]}'")
            if t not in PLAIN and t != "N":
                raise Ineligible(f"pc {pc}: local '{code.locals[args[0]]}' may be a {t}")
            stk.append(t)
        elif nm == "store":
            loc[args[0]] = stk.pop()
        elif nm == "gload":
            t = gtypes.get(args[0], "o")
            if t not in NUMERIC:
                raise Ineligible(f"pc {pc}: global {args[0]} is not a number")
            stk.append(t)
        elif nm == "gstore":
            t = stk.pop()
            if t != "N" and t != gtypes.get(args[0]):
                raise Ineligible(f"pc {pc}: stores a {t} into a {gtypes.get(args[0], 'o')} global")
        elif nm == "inc":
            t = read(loc[args[0]], pc, f"local '{code.locals[args[0]]}'")
            if t not in NUMERIC and t != "N":
                raise Ineligible(f"pc {pc}: inc of a non-number")
            loc[args[0]] = "f" if t == "f" else ("N" if t == "N" else "i")
        elif nm in ARITH or nm in BITS or nm in SHIFTS or nm in COMPARE or nm == "div":
            b, a = stk.pop(), stk.pop()
            if (nm in BITS or nm in SHIFTS) and "f" in (a, b) and a in NUMERIC and b in NUMERIC:
                fails[pc] = f"{nm} on a float"  # always a TypeError: compiled as a raise
                continue
            stk.append(arith_result(nm, a, b, pc))
        elif nm == "neg":
            a = stk.pop()
            if a not in NUMERIC and a != "N":
                raise Ineligible(f"pc {pc}: neg of a non-number")
            stk.append("N" if a == "N" else "f" if a == "f" else "i")
        elif nm == "not":
            a = stk.pop()
            if a not in NUMERIC and a != "N":
                raise Ineligible(f"pc {pc}: not of a non-number")
            stk.append("b")
        elif nm in ("and", "or"):
            b, a = stk.pop(), stk.pop()
            if (a not in NUMERIC and a != "N") or (b not in NUMERIC and b != "N"):
                raise Ineligible(f"pc {pc}: {nm} of a non-number")
            stk.append("b")
        elif nm == "jmp":
            nxt = [args[0]]
        elif nm in ("jt", "jf"):
            a = stk.pop()
            if a not in NUMERIC and a != "N":
                raise Ineligible(f"pc {pc}: branch on a non-number")
            nxt = [args[0], pc + 1]
        elif nm == "call":
            fname = names[args[0]]
            nargs = args[1]
            targs = tuple(stk[len(stk) - nargs:]) if nargs else ()
            del stk[len(stk) - nargs:]
            for t in targs:
                if t not in PLAIN and t != "N":
                    raise Ineligible(f"pc {pc}: call of {fname} with a non-number argument")
            if "." in fname and "u" in targs:
                raise Ineligible(f"pc {pc}: call of {fname} with nil")
            if "N" in targs:
                stk.append("N")
            elif "." in fname:
                mod, _, f = fname.rpartition(".")
                if not native_ok(fname) or f not in NATIVES:
                    raise Ineligible(f"pc {pc}: call of {fname} (not a numeric math native)")
                natives[pc] = f
                stk.append(native_result(f, list(targs), pc))
            else:
                calls[pc] = (fname, targs)
                stk.append(ret_of(fname, targs))
        elif nm == "ret":
            t = stk.pop()
            if t not in PLAIN and t != "N":
                raise Ineligible(f"pc {pc}: returns a non-number")
            r2 = join(ret, t)
            if r2 == "x":
                raise Ineligible(f"pc {pc}: returns {t} here but {ret} elsewhere")
            ret = r2
            nxt = []
        elif nm == "halt":
            a = stk.pop()
            if a not in NUMERIC and a != "N":
                raise Ineligible(f"pc {pc}: halt with a non-number")
            nxt = []
        elif nm == "print":
            a = stk.pop()
            if a not in NUMERIC and a != "N":
                raise Ineligible(f"pc {pc}: prints a non-number")
        elif nm == "toint":
            a = stk.pop()
            if a not in NUMERIC and a != "N":
                raise Ineligible(f"pc {pc}: toint of a non-number")
            stk.append("N" if a == "N" else "i")
        elif nm == "tofloat":
            a = stk.pop()
            if a not in NUMERIC and a != "N":
                raise Ineligible(f"pc {pc}: tofloat of a non-number")
            stk.append("N" if a == "N" else "f")
        else:  # pragma: no cover - NB_OPS is checked above
            raise Ineligible(f"pc {pc}: '{nm}'")
        st = (tuple(loc), tuple(stk))
        for t in nxt:
            flow(t, st)
    return TypeFacts(states, ret, calls, natives, fails)
