"""Translation: a verified function -> Python source (the Python tier).

The verifier proved the stack depth before every instruction, so each stack
slot is a plain Python local (``S0``, ``S1`` ...) next to the NBC locals
(``L0`` ...; parameters first).  Within a block the translator keeps a
*symbolic* stack: ``load x; push 2; lt; jf L`` becomes ``if not (L0 < 2)``
and no value is copied until it has to be (before the local it reads is
written, before a call or ``gstore`` that could change a global it reads, at
the end of the block).  Jumps become a block state machine::

    while True:
        if blk == 4:      # hottest blocks (deepest loops) are tested first
            ...
            blk = 9
            continue

Semantics are the interpreter's, instruction for instruction:

* arithmetic is the same Python expression with the same guards and the same
  int64 overflow test as ``vm/ops_arith.py`` (so the same errors, messages
  included);
* fuel is charged at exactly the points where the interpreter charges it --
  on entry, at every jump/branch for the run it enters, after every call for
  the run it resumes, on entry to a ``try`` handler -- with the same amounts
  (``compile.run_costs``), so ``LimitExceeded`` trips after the same
  instruction, and ``meter.tick`` (deadline, hooks) runs at the same steps;
* a call to a function of the same module is a direct Python call of its
  current best version (``F<i>`` in the module namespace: translated code,
  the numba wrapper, or a stub that runs the interpreter); depth is counted
  in ``D`` and checked against ``max_depth`` in the callee's prologue,
  *before* its frame exists, as the interpreter does;
* any instruction the translator does not spell out (strings, lists, maps,
  tensors, throw ...) calls the interpreter's own handler for it on a small
  register list, so there is one definition of its behaviour;
* when an error escapes, the ``except`` clause maps the Python line number of
  the failure to the pc (every generated line belongs to one pc), adds this
  frame's ``TraceEntry`` and consults the ``try`` regions, exactly like the
  interpreter's unwinding loop.

Functions using instructions outside ``PY_OPS`` (``finally``, threads,
resource regions) are not translated: they stay in the interpreter, and
``Untranslatable`` says why.
"""

from __future__ import annotations

import re

import math
from dataclasses import dataclass, field

from nbcvm.isa import BY_CODE, BY_NAME, Flow
from nbcvm.jit import analysis
from nbcvm.vm.ops_arith import BINOPS, COMPARE

INT_MIN, INT_MAX = -(2**63), 2**63 - 1

# instructions translated inline
INLINE_OPS = frozenset({
    "nop", "push", "pop", "dup", "swap", "over", "rot", "load", "store", "gload", "gstore", "inc",
    *BINOPS, "neg", "not", "and", "or", "jmp", "jt", "jf", "call", "ret", "print", "try", "endtry",
})
# instructions run through the interpreter's handler (operands and results on the stack only)
GENERIC_OPS = frozenset(
    {o.name for o in BY_NAME.values() if o.family in ("data", "tensor")}
    | {"halt", "throw", "rethrow", "errfield"}
) - INLINE_OPS
PY_OPS = INLINE_OPS | GENERIC_OPS


class Untranslatable(Exception):
    """The function stays in the interpreter; the message says why."""


@dataclass
class Ent:
    """A symbolic stack entry: a Python expression and what it reads."""

    expr: str
    locs: frozenset = frozenset()  # local indices it reads
    glob: bool = False  # reads a module global
    slot: int = -1  # >= 0: the slot variable S<slot> it names
    boolean: bool = False  # always a bool (a compare's or ``has``'s result): jt/jf test it directly


def slot_ent(i: int, boolean: bool = False) -> Ent:
    return Ent(f"S{i}", slot=i, boolean=boolean)


def literal(v) -> str | None:
    """Python source for a constant, or None if it needs a name."""
    if v is None or type(v) is bool:
        return repr(v)
    if type(v) is int:
        return repr(v) if v >= 0 else f"({v})"
    if type(v) is float and math.isfinite(v):
        r = repr(v)
        return r if not r.startswith("-") else f"({r})"
    return None


@dataclass
class PyFunction:
    source: str
    pyname: str
    linemap: dict[int, int]  # line number in source -> pc
    operands: dict[int, tuple[str, str, str]]  # pc -> (op, expr a, expr b) for binop TypeErrors
    regions: list  # Region objects, in the order the except clause numbers them
    consts: dict[str, object] = field(default_factory=dict)  # names the source needs in the namespace
    generic: dict[int, str] = field(default_factory=dict)  # pc -> namespace name of its handler
    xcalls: dict[int, tuple[str, str, int]] = field(default_factory=dict)  # pc -> (ns name, callee, nargs)
    osr: list[int] = field(default_factory=list)  # loop headers where O<i> can take over a running frame


class Emitter:
    """Lines with the pc each belongs to (so a Python line number maps back to a pc)."""

    def __init__(self) -> None:
        self.lines: list[tuple[int, str, int]] = []  # (indent, text, pc)

    def emit(self, ind: int, text: str, pc: int) -> None:
        self.lines.append((ind, text, pc))

    def render(self, first_line: int = 1) -> tuple[str, dict[int, int]]:
        out, lm = [], {}
        for n, (ind, text, pc) in enumerate(self.lines):
            out.append("    " * ind + text)
            lm[first_line + n] = pc
        return "\n".join(out) + "\n", lm


def osr_headers(blks: dict[int, analysis.Block], inlined: set[int], depths) -> list[int]:
    """Targets of backward edges with an empty stack that the dispatch loop can enter."""
    out = set()
    for b in blks.values():
        for t in b.succs:
            if t <= b.start and t in blks and t not in inlined and depths[t] == 0:
                out.add(t)
    return sorted(out)


def block_order(blks: dict[int, analysis.Block], inlined: set[int]) -> list[int]:
    keep = [s for s in blks if s not in inlined]
    return sorted(keep, key=lambda s: (-blks[s].loop_depth, s))


def inline_plan(blks: dict[int, analysis.Block], code, fixed: set[int]) -> dict[int, int]:
    """Block -> the block emitted right after it in the same place (single-predecessor chains)."""
    plan: dict[int, int] = {}
    for b in blks.values():
        last = BY_CODE[code.code[b.end - 1][0]]
        if last.flow is Flow.BRANCH or last.flow is Flow.END:
            # a branch's fall-through successor can follow it inline (the taken side jumps)
            if last.flow is Flow.BRANCH:
                s = b.end
            else:
                continue
        else:
            if len(b.succs) != 1:
                continue
            s = b.succs[0]
        if s in blks and s not in fixed and s != b.start and blks[s].preds == [b.start]:
            plan[b.start] = s
    # break cycles (a chain must not lead back to itself)
    for start in list(plan):
        seen, cur = {start}, plan.get(start)
        while cur is not None:
            if cur in seen:
                plan.pop(start, None)
                break
            seen.add(cur)
            cur = plan.get(cur)
    return plan


class PyGen:
    """Generates the Python-tier source of one function."""

    def __init__(self, fn, idx: int, names: dict[str, int]):
        self.fn = fn
        self.idx = idx
        self.names = names  # same-module function name -> index
        self.code = fn.code
        self.info = fn.info
        self.mod = fn.inst.module
        self.depths = fn.info.depths
        self.runcost = fn.runcost
        self.nl = len(fn.code.locals)
        self.e = Emitter()
        self.operands: dict[int, tuple[str, str, str]] = {}
        self.consts: dict[str, object] = {}
        self.generic: dict[int, str] = {}
        self.xcalls: dict[int, tuple[str, str, int]] = {}
        self.opnames = analysis.op_names(self.code)

    # -- helpers -----------------------------------------------------------------
    def const_expr(self, ci: int) -> Ent:
        v = self.mod.consts[ci]
        lit = literal(v)
        if lit is None:
            name = f"K{ci}"
            self.consts[name] = v
            lit = name
        return Ent(lit)

    def charge(self, ind: int, cost: int, resume: int) -> None:
        self.e.emit(ind, f"m.budget -= {cost}", resume)
        self.e.emit(ind, f"if m.budget < 0: m.resume = {resume}; m.tick(FN{self.idx}, D - 1)", resume)

    def materialize(self, stk: list[Ent], ind: int, pc: int, which=None) -> None:
        """Write entries (all, or those ``which`` selects) into their slot variables."""
        dst, src = [], []
        for i, ent in enumerate(stk):
            if ent.slot == i:
                continue
            if which is not None and not which(i, ent):
                continue
            dst.append(f"S{i}")
            src.append(ent.expr)
            stk[i] = slot_ent(i)
        if dst:
            self.e.emit(ind, f"{', '.join(dst)} = {', '.join(src)}", pc)

    # -- the function ----------------------------------------------------------------
    def generate(self) -> PyFunction:
        code, depths = self.code, self.depths
        for pc, nm in enumerate(self.opnames):
            if depths[pc] is not None and nm not in PY_OPS:
                raise Untranslatable(f"pc {pc}: '{nm}' is not translated")
        regions = list(self.info.regions)
        for r in regions:
            if r.store >= 0:
                raise Untranslatable("finally regions are not translated")
        blks = analysis.blocks(code, depths, regions)
        fixed = {0} | {r.handler for r in regions}
        plan = inline_plan(blks, code, fixed)
        inlined = set(plan.values())
        i = self.idx
        params = [f"L{k}" for k in range(self.code.nparams)]
        e = self.e
        e.emit(0, f"def P{i}({', '.join(params + ['D', 'N'])}):  # {self.fn.qualname}", 0)
        e.emit(1, f"if D > M.max_depth or N > NEST: return SLOW(FN{i}, ({''.join(p + ', ' for p in params)}), D, N)", 0)
        e.emit(1, "m = M", 0)
        e.emit(1, "m.calls += 1", 0)
        e.emit(1, "if D > m.peak_depth: m.peak_depth = D", 0)
        e.emit(1, "G = GL", 0)
        others = [f"L{k}" for k in range(self.code.nparams, self.nl)]
        if others:
            e.emit(1, " = ".join(others) + " = None", 0)
        e.emit(1, "blk = 0", 0)
        body = 3
        if regions:
            e.emit(1, "try:", 0)
            self.charge(2, self.runcost[0], 0)
            self.except_clause(1, [])
            e.emit(1, "while True:", 0)
            e.emit(2, "try:", 0)
            e.emit(3, "while True:", 0)
            body = 4
        else:
            e.emit(1, "try:", 0)
            self.charge(2, self.runcost[0], 0)
            e.emit(2, "while True:", 0)
        self.osr = osr_headers(blks, inlined, depths) if not regions else []
        self.protect = [0] * len(code.code)
        for r in regions:
            for p in range(r.start - 1, r.end):
                self.protect[p] = max(self.protect[p], r.depth)
        for start in block_order(blks, inlined):
            e.emit(body, f"if blk == {start}:", start)
            cur = start
            while True:
                self.block(blks[cur], body + 1, plan.get(cur))
                if cur not in plan:
                    break
                cur = plan[cur]
        for k, r in enumerate(regions):  # entering a handler charges the run it starts
            e.emit(body, f"if blk == {-1 - k}:", r.handler)
            self.charge(body + 1, self.runcost[r.handler], r.handler)
            e.emit(body + 1, f"blk = {r.handler}", r.handler)
            e.emit(body + 1, "continue", r.handler)
        e.emit(body, "raise RuntimeError(f'nbcvm jit: no block {blk}')", 0)
        body_end = len(e.lines)
        if regions:
            self.except_clause(2, regions)
        else:
            self.except_clause(1, [])
        osr: list[int] = []
        if not regions:
            # the on-stack-replacement entry: the same blocks, entered at a loop header of a frame
            # the interpreter is running (registers RR), with no prologue -- the frame exists and
            # the jump that led here has charged its fuel
            osr = self.osr
            body_start = next(k for k, ln in enumerate(e.lines) if ln[1] == "while True:")
            loop = [(ind, text.replace("@KEY@", "id(RR)"), pc) for ind, text, pc in e.lines[body_start:body_end]]
            for k in range(body_start, body_end):
                ind, text, pc = e.lines[k]
                e.lines[k] = (ind, text.replace("@KEY@", "FKEY()"), pc)
            e.emit(0, f"def O{i}(RR, blk, D, N):  # {self.fn.qualname}, entered at a loop header", 0)
            e.emit(1, "m = M", 0)
            e.emit(1, "G = GL", 0)
            names = [f"L{k}" for k in range(self.nl)] + [f"S{k}" for k in range(self.info.max_stack)]
            if names:
                e.emit(1, f"{', '.join(names)}, = RR", 0)
            e.emit(1, "try:", 0)
            e.lines.extend(loop)
            self.except_clause(1, [])
        src, lm = e.render()
        return PyFunction(src, f"P{i}", lm, self.operands, regions, self.consts, self.generic, self.xcalls, osr)

    def except_clause(self, ind: int, regions: list) -> None:
        e = self.e
        e.emit(ind, "except ExitProgram:", 0)
        e.emit(ind + 1, "raise", 0)
        e.emit(ind, "except Exception as exc:", 0)
        e.emit(ind + 1, f"err, h = ONERR(exc, REC{self.idx}, locals())", 0)
        e.emit(ind + 1, "if h < 0: raise err from None", 0)
        for k, r in enumerate(regions):
            e.emit(ind + 1, f"if h == {k}: S{r.depth} = err; blk = {-1 - k}", 0)
        if not regions:
            e.emit(ind + 1, "raise err from None", 0)

    # -- one block ----------------------------------------------------------------------
    def block(self, b: analysis.Block, ind: int, follow: int | None) -> None:
        """Emit a block; ``follow`` is the block emitted right after it (no dispatch needed)."""
        depth = self.depths[b.start]
        stk = [slot_ent(k) for k in range(depth)]
        pc = b.start
        if pc in self.osr:
            # a loop header: once numba has compiled this function (auto mode), a call running here
            # in Python hands its locals to the compiled entry for this header and returns its result
            i = self.idx
            e = self.e
            e.emit(ind, f"if NBO{i} is not None:", pc)
            e.emit(ind + 1, f"v = NBO{i}([{', '.join(f'L{k}' for k in range(self.nl))}], {pc}, D, N, @KEY@)", pc)
            e.emit(ind + 1, "if v is not DECLINE: return v", pc)
        while pc < b.end:
            nm = self.opnames[pc]
            if nm in COMPARE and pc + 1 < b.end and self.opnames[pc + 1] in ("jt", "jf"):
                self.compare_branch(stk, ind, pc, follow)
                return
            done = self.op(stk, ind, pc, nm, follow)
            if done:
                return
            if self.protect[pc]:
                # inside a try region the handler reads the slots below the try's depth:
                # keep them in their variables, as the interpreter keeps its registers
                lim = self.protect[pc]
                self.materialize(stk, ind, pc, lambda i, ent: i < lim)
            pc += 1
        # fell off the end of the block into the next leader: no fuel (the run continues)
        self.materialize(stk, ind, b.end - 1)
        self.goto(ind, b.end, b.end - 1, follow, charge=False)

    def goto(self, ind: int, target: int, pc: int, follow: int | None, charge: bool) -> None:
        if charge:
            self.charge(ind, self.runcost[target], target)
        if follow == target:
            return  # the target's code follows right here
        self.e.emit(ind, f"blk = {target}", pc)
        self.e.emit(ind, "continue", pc)

    def binop_parts(self, op: str, a: Ent, b: Ent, pc: int, ind: int) -> tuple[str, str, bool]:
        """Emit the guards of a binary op; return (a expr, b expr, overflow check needed)."""
        sym, check, guard = BINOPS[op]
        A, B = a.expr, b.expr
        self.operands[pc] = (op, A, B)
        numconst = lambda ent: _is_num_literal(ent.expr)  # noqa: E731
        if guard == "num":
            tests = [f"({x.expr}).__class__ not in NUMT" for x in (a, b) if not numconst(x)]
            if tests:
                self.e.emit(ind, f"if {' or '.join(tests)}: raise TypeError", pc)
        elif guard == "nostr" and not numconst(a):
            self.e.emit(ind, f"if ({A}).__class__ is str: raise TypeError", pc)
        elif guard == "shift":
            self.e.emit(ind, f"if not 0 <= {B} <= 63: bad_shift({B})", pc)
        if check and (_is_float_literal(A) or _is_float_literal(B)):
            check = False  # a float constant makes the result a float (or a TypeError)
        return A, B, check

    def compare_branch(self, stk: list[Ent], ind: int, pc: int, follow: int | None) -> None:
        op = self.opnames[pc]
        b = stk.pop()
        a = stk.pop()
        self.materialize(stk, ind, pc)
        A, B, _ = self.binop_parts(op, a, b, pc, ind)
        sym = BINOPS[op][0]
        br = self.opnames[pc + 1]
        target = self.code.code[pc + 1][1][0]
        nxt = pc + 2
        self.e.emit(ind, f"c = {A} {sym} {B}", pc)
        self.e.emit(ind, "if c.__class__ is not bool: raise TypeError", pc)  # as the interpreter
        cond = "not c" if br == "jf" else "c"
        self.e.emit(ind, f"if {cond}:", pc)
        self.goto(ind + 1, target, pc + 1, None, charge=True)
        self.goto(ind, nxt, pc + 1, follow, charge=True)

    def op(self, stk: list[Ent], ind: int, pc: int, nm: str, follow: int | None) -> bool:
        """Emit one instruction; True if it ended the block."""
        e = self.e
        args = self.code.code[pc][1]
        n = len(stk)
        if nm in ("nop", "try", "endtry"):
            return False
        if nm == "push":
            stk.append(self.const_expr(args[0]))
        elif nm == "pop":
            ent = stk.pop()
            if ent.slot == n - 1:
                e.emit(ind, f"S{n - 1} = None", pc)  # drop the reference, as the interpreter does
        elif nm == "dup":
            top = stk[-1]
            stk.append(Ent(top.expr, top.locs, top.glob, -1))
        elif nm == "over":
            self.materialize(stk, ind, pc, None)
            stk.append(Ent(f"S{n - 2}"))
        elif nm in ("swap", "rot"):
            self.materialize(stk, ind, pc, None)
            if nm == "swap":
                e.emit(ind, f"S{n - 2}, S{n - 1} = S{n - 1}, S{n - 2}", pc)
            else:
                e.emit(ind, f"S{n - 3}, S{n - 2}, S{n - 1} = S{n - 2}, S{n - 1}, S{n - 3}", pc)
        elif nm == "load":
            x = args[0]
            stk.append(Ent(f"L{x}", frozenset((x,))))
        elif nm == "store":
            x = args[0]
            v = stk.pop()
            self.materialize(stk, ind, pc, lambda i, ent: x in ent.locs)
            e.emit(ind, f"L{x} = {v.expr}", pc)
        elif nm == "gload":
            stk.append(Ent(f"G[{args[0]}]", glob=True))
        elif nm == "gstore":
            v = stk.pop()
            self.materialize(stk, ind, pc, lambda i, ent: ent.glob)
            e.emit(ind, f"G[{args[0]}] = {v.expr}", pc)
        elif nm == "inc":
            x, k = args
            self.materialize(stk, ind, pc, lambda i, ent: x in ent.locs)
            e.emit(ind, f"v = L{x} + {k if k >= 0 else f'({k})'}", pc)
            e.emit(ind, f"if {overflow_test('add', str(k))} and v.__class__ is int: overflow('inc')", pc)
            e.emit(ind, f"L{x} = v", pc)
        elif nm in BINOPS:
            b = stk.pop()
            a = stk.pop()
            dst = len(stk)
            A, B, check = self.binop_parts(nm, a, b, pc, ind)
            sym = BINOPS[nm][0]
            test = overflow_test(nm, B) if check else None
            if test is not None:
                e.emit(ind, f"v = {A} {sym} {B}", pc)
                e.emit(ind, f"if {test} and v.__class__ is int: overflow({nm!r})", pc)
                e.emit(ind, f"S{dst} = v", pc)
            elif check:
                e.emit(ind, f"S{dst} = {A} {sym} {B}", pc)
            elif nm in COMPARE:  # always a bool, as in the interpreter (tensors compare elementwise)
                e.emit(ind, f"v = {A} {sym} {B}", pc)
                e.emit(ind, "if v.__class__ is not bool: raise TypeError", pc)
                e.emit(ind, f"S{dst} = v", pc)
            else:
                e.emit(ind, f"S{dst} = {A} {sym} {B}", pc)
            stk.append(slot_ent(dst, boolean=nm in COMPARE))
        elif nm == "neg":
            a = stk.pop()
            dst = len(stk)
            e.emit(ind, f"v = -{a.expr}", pc)
            e.emit(ind, f"if not {INT_MIN} <= v <= {INT_MAX} and v.__class__ is int: overflow('neg')", pc)
            e.emit(ind, f"S{dst} = v", pc)
            stk.append(slot_ent(dst))
        elif nm == "not":
            a = stk.pop()
            dst = len(stk)
            e.emit(ind, f"S{dst} = not truthy({a.expr})", pc)
            stk.append(slot_ent(dst))
        elif nm in ("and", "or"):
            b = stk.pop()
            a = stk.pop()
            dst = len(stk)
            e.emit(ind, f"S{dst} = truthy({a.expr}) {nm} truthy({b.expr})", pc)
            stk.append(slot_ent(dst))
        elif nm == "print":
            a = stk.pop()
            e.emit(ind, f"OUT.write(to_str({a.expr}) + '\\n')", pc)
            if a.slot == len(stk):
                e.emit(ind, f"S{len(stk)} = None", pc)
        elif nm == "jmp":
            self.materialize(stk, ind, pc)
            self.goto(ind, args[0], pc, follow, charge=True)
            return True
        elif nm in ("jt", "jf"):
            a = stk.pop()
            self.materialize(stk, ind, pc)
            e.emit(ind, f"v = {a.expr}", pc)
            cond = "v" if a.boolean else "(v if v.__class__ is bool else TRUTH(v))"
            e.emit(ind, f"if {'not ' if nm == 'jf' else ''}{cond}:", pc)
            self.goto(ind + 1, args[0], pc, None, charge=True)
            self.goto(ind, pc + 1, pc, follow, charge=True)
            return True
        elif nm == "ret":
            a = stk.pop()
            e.emit(ind, f"return {a.expr}", pc)
            return True
        elif nm == "call":
            self.call(stk, ind, pc, args)
        elif nm in GENERIC_OPS:
            self.generic_op(stk, ind, pc, nm, args)
            if BY_NAME[nm].flow is Flow.END:
                e.emit(ind, "raise RuntimeError('nbcvm jit: instruction did not end the function')", pc)
                return True
        else:  # pragma: no cover - checked in generate()
            raise Untranslatable(f"pc {pc}: '{nm}'")
        return False

    def call(self, stk: list[Ent], ind: int, pc: int, args) -> None:
        fname = self.mod.names[args[0]]
        nargs = args[1]
        argv = stk[len(stk) - nargs:] if nargs else []
        del stk[len(stk) - nargs:]
        self.materialize(stk, ind, pc, lambda i, ent: ent.glob)  # the callee may change globals
        dst = len(stk)
        a = "".join(x.expr + ", " for x in argv)
        if "." in fname:
            name = f"X{self.idx}_{pc}"
            self.xcalls[pc] = (name, fname, nargs)
            self.e.emit(ind, f"S{dst} = {name}({a}D, N)", pc)
        else:
            self.e.emit(ind, f"S{dst} = F{self.names[fname]}({a}D + 1, N + 1)", pc)
        stk.append(slot_ent(dst))
        self.charge(ind, self.runcost[pc + 1], pc + 1)

    def generic_op(self, stk: list[Ent], ind: int, pc: int, nm: str, args) -> None:
        op = BY_NAME[nm]
        pops = op.pop_count(args)
        argv = stk[len(stk) - pops:] if pops else []
        del stk[len(stk) - pops:]
        self.materialize(stk, ind, pc, lambda i, ent: ent.glob)
        name = f"H{self.idx}_{pc}"
        self.generic[pc] = name
        dst = len(stk)
        fast = FAST_DATA.get(nm)
        if fast is not None and nm in ("getitem", "setitem") and not _VARIABLE.match(argv[0].expr):
            fast = None  # a constant container: always the handler's error (and no SyntaxWarning
            # from compiling ``0.5[k]``, which Python flags even in code that never runs)
        if fast is not None:  # the common case inline, guarded; anything else: the handler
            x = [a.expr for a in argv]
            guard, body = fast
            lines = [ln.format(*x, S=f"S{dst}") for ln in body]
            if guard is None:
                for ln in lines:
                    self.e.emit(ind, ln, pc)
            else:
                self.e.emit(ind, f"if {guard.format(*x)}:", pc)
                for ln in lines:
                    self.e.emit(ind + 1, ln, pc)
                self.e.emit(ind, "else:", pc)
                self._handler_call(ind + 1, pc, name, op, argv, dst)
        else:
            self._handler_call(ind, pc, name, op, argv, dst)
        for k in range(op.pushes):
            stk.append(slot_ent(dst + k, boolean=nm == "has"))  # has: a bool, or it raised

    def _handler_call(self, ind: int, pc: int, name: str, op, argv: list[Ent], dst: int) -> None:
        """The interpreter's handler for this instruction, on a register list of its operands."""
        room = max(0, op.pushes - len(argv))
        items = [x.expr for x in argv] + ["None"] * room
        self.e.emit(ind, f"R = [{', '.join(items)}]", pc)
        self.e.emit(ind, f"{name}(R)", pc)
        for k in range(op.pushes):
            self.e.emit(ind, f"S{dst + k} = R[{k}]", pc)


_VARIABLE = re.compile(r"^(?:[LS]\d+|G\[\d+\])$")

# Meter.charge_memory(n) inline: count the bytes; only past the cap does the meter measure (and
# perhaps raise) -- the same test in the same place as the method itself.
CHARGE = ["n += m.memory", "if n > m.mem_cap: m.charge_memory(n - m.memory, None)", "else: m.memory = n"]

# Data instructions inline for the common types: (guard over the operands {0} {1} {2}, or None
# when the body covers every case; body lines, result in {S}).  Each does what the interpreter's
# handler (nbcvm/vm/ops_data.py) does for those types, memory charges included and in the same
# order; every other case calls the handler itself, so errors and their messages are the same.
FAST_DATA = {
    "getitem": ("({0}.__class__ is dict and {1}.__class__ is str and {1} in {0}) or "
                "({0}.__class__ is list and {1}.__class__ is int and 0 <= {1} < len({0}))",
                ["{S} = {0}[{1}]"]),
    "setitem": ("({0}.__class__ is dict and {1}.__class__ is str) or "
                "({0}.__class__ is list and {1}.__class__ is int and 0 <= {1} < len({0}))",
                ["if {0}.__class__ is dict and {1} not in {0}:", "    n = 64", *("    " + c for c in CHARGE),
                 "{0}[{1}] = {2}"]),
    "has": ("{0}.__class__ is dict and {1}.__class__ is str", ["{S} = {1} in {0}"]),
    "len": ("{0}.__class__ is str or {0}.__class__ is list or {0}.__class__ is dict", ["{S} = len({0})"]),
    "tostr": (None, ["v = str({0}) if {0}.__class__ is int else to_str({0})", "n = len(v) + 49", *CHARGE,
                     "{S} = v"]),
    "concat": ("{0}.__class__ is str and {1}.__class__ is str",
               ["n = len({0}) + len({1}) + 56", *CHARGE, "{S} = {0} + {1}"]),
    "append": ("{0}.__class__ is list", ["n = 8", *CHARGE, "{0}.append({1})"]),
}


def overflow_test(op: str, B: str) -> str | None:
    """The int64 range test for ``v = a <op> b`` (None: the result always fits).

    With an int constant ``b`` only one bound can be passed (``a + 1`` can only
    grow), and ``a % b`` always fits, so the test is one comparison or none.
    """
    k = int_literal(B)
    if k is None or op not in ("add", "sub", "mod"):
        return f"not {INT_MIN} <= v <= {INT_MAX}"
    if op == "mod":
        return None  # |a % k| < |k| (k == 0 raised already)
    up = (k >= 0) if op == "add" else (k <= 0)
    return f"v > {INT_MAX}" if up else f"v < {INT_MIN}"


def int_literal(s: str) -> int | None:
    """The value of an int constant expression (``7``, ``(-3)``), else None."""
    try:
        return int(s.strip("()"))
    except ValueError:
        return None


def _is_num_literal(s: str) -> bool:
    t = s.strip("()")
    try:
        float(t)
        return True
    except ValueError:
        return False


def _is_float_literal(s: str) -> bool:
    t = s.strip("()")
    if not _is_num_literal(s):
        return False
    return any(c in t for c in ".eE") or t in ("inf", "nan")


def translate_py(fn, idx: int, names: dict[str, int]) -> PyFunction:
    """Python-tier source of ``fn`` (raises Untranslatable)."""
    gen = PyGen(fn, idx, names)
    return gen.generate()
