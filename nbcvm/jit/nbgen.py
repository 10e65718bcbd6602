"""Numeric functions -> numba source (the numba tier's code generator).

Same block state machine and symbolic stack as ``translate.py``, but every
value has a static type from ``analysis.infer`` and every variable is named
by its slot *and* type (``S2i``, ``L0f``, ``L3b``), so numba never unifies an
int with a float.  Every check the interpreter makes implicitly is spelled
out with arithmetic that cannot wrap:

* ``add``/``sub``: the operand range is tested *before* adding
  (``b > 0 and a > IMAX - b``); ``mul``: ``nbrt.mul_ovf`` (a float pre-test,
  then an exact test with floor divisions); ``idiv``/``mod``: zero,
  ``IMIN // -1``; ``shl``: ``IMIN >> b <= a <= IMAX >> b``; ``neg``/``abs``
  of ``IMIN``; ``toint`` of a float out of range or not finite;
* division by zero is tested for ints *and* floats (the interpreter raises
  for ``x / 0.0`` too; numba runs with ``error_model='numpy'`` and never
  raises by itself);
* int/float comparisons are exact (``nbrt.cmp_if``), as in Python, and
  int/int true division is correctly rounded (``nbrt.int_truediv``);
* ``math.sqrt``/``log`` of a negative, ``sin``/``cos``/``tan`` of an
  infinity, an ``exp`` that overflows, ``floor``/``ceil`` that do not fit.

A failing instruction stores its operands in the state array and returns;
the Python wrapper re-runs that one instruction with the interpreter's own
code to raise the identical error (message included).  Fuel is charged at
the interpreter's points into ``st[0]``; when it runs out ``nbrt.tick`` calls
``meter.tick`` in object mode (deadline, hooks, the fuel limit itself), so
``LimitExceeded`` trips at the same step.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from nbcvm.jit import analysis
from nbcvm.jit.abi import ARG0, DEEP_ARGS, ENTRY, FARG0, NBNEST
from nbcvm.jit.translate import Emitter, block_order, inline_plan, int_literal
from nbcvm.vm.ops_arith import BINOPS, COMPARE

# nil ("u") is carried as an int64 0: it can only be moved, stored, passed and returned
DUMMY = {"i": "0", "f": "0.0", "b": "False", "N": "0", "u": "0"}
NBTYPE = {"i": "int64", "f": "float64", "b": "boolean", "N": "int64", "u": "int64"}
INIT = {"i": "0", "f": "0.0", "b": "False", "u": "0"}
CAST = {"i": "np.int64", "f": "np.float64", "b": "np.bool_", "N": "np.int64", "u": "np.int64"}


@dataclass
class Spec:
    """One function compiled for one signature."""

    sid: int
    fn: object
    idx: int  # function index in its module
    argtypes: tuple[str, ...]
    ret: str = "N"
    facts: analysis.TypeFacts | None = None
    recursive: bool = False  # calls itself: its calls may nest deep (see NBNEST)
    osr: int | None = None  # entered at this loop header with ``argtypes`` = every local's type

    @property
    def name(self) -> str:
        if self.osr is not None:
            return f"nb{self.idx}_o{self.osr}_{''.join(self.argtypes)}"
        return f"nb{self.idx}_{''.join(self.argtypes)}"

    @property
    def params(self) -> list[int]:
        """Locals passed in: the arguments, or (on-stack replacement) every local holding a value."""
        if self.osr is None:
            return list(range(len(self.argtypes)))
        return [k for k, t in enumerate(self.argtypes) if t in "ifbu"]

    def signature(self) -> str:
        args = [NBTYPE[self.argtypes[k]] for k in self.params] + ["int64"] * 6  # D, N, 4 addresses
        return f"{NBTYPE[self.ret]}({', '.join(args)})"


@dataclass
class TEnt:
    expr: str
    t: str
    locs: frozenset = frozenset()
    glob: bool = False
    slot: int = -1


def ival(e: str, t: str) -> str:
    return f"(1 if {e} else 0)" if t == "b" else e


def fval(e: str, t: str) -> str:
    if t == "f":
        return e
    if t == "b":
        return f"(1.0 if {e} else 0.0)"
    return f"float({e})"


def truth(e: str, t: str) -> str:
    if t == "b":
        return e
    return f"({e} != 0)" if t == "i" else f"({e} != 0.0)"


def lit(v) -> str:
    if v is None:
        return "0"
    if type(v) is bool:
        return repr(v)
    if type(v) is int:
        if v == -(2**63):
            return "IMIN"
        return repr(v) if v >= 0 else f"({v})"
    if v != v:
        return "NAN"
    if v in (float("inf"), float("-inf")):
        return "INF" if v > 0 else "(-INF)"
    r = repr(v)
    return r if not r.startswith("-") else f"({r})"


REL_IF = {"lt": "c == -1", "le": "(c == -1 or c == 0)", "gt": "c == 1", "ge": "(c == 1 or c == 0)",
          "eq": "c == 0", "ne": "c != 0"}
SWAP = {"lt": "gt", "le": "ge", "gt": "lt", "ge": "le", "eq": "eq", "ne": "ne"}


@dataclass
class NbFunction:
    source: str
    sites: dict = field(default_factory=dict)  # pc -> (kind, op or native name, operand types)


class NbGen:
    def __init__(self, spec: Spec, specs: dict, gmap: dict, names: dict[str, int]):
        self.spec = spec
        self.specs = specs  # (idx, argtypes) -> Spec
        self.gmap = gmap  # global index -> (array "i"/"f", k, type)
        self.names = names
        fn = spec.fn
        self.fn = fn
        self.code = fn.code
        self.mod = fn.inst.module
        self.depths = fn.info.depths
        self.runcost = fn.runcost
        self.facts = spec.facts
        self.opnames = analysis.op_names(self.code)
        self.e = Emitter()
        self.vars: set[str] = set()
        self.sites: dict[int, tuple] = {}
        self.fid = spec.idx
        self.dummy = DUMMY[spec.ret]

    # -- helpers ---------------------------------------------------------------------------
    def var(self, name: str) -> str:
        self.vars.add(name)
        return name

    def slot(self, i: int, t: str) -> TEnt:
        t = "i" if t == "N" else t
        return TEnt(self.var(f"S{i}{t}"), t, slot=i)

    def charge(self, ind: int, cost: int, resume: int, check: bool = True) -> None:
        """Charge a run's fuel; the countdown is checked here or (jumps) at the target block's start."""
        e = self.e
        e.emit(ind, f"fu -= {cost}", resume)
        if check:
            self.check(ind, resume)

    def check(self, ind: int, resume: int) -> None:
        """The countdown lives in the local ``fu`` (a register); st[0] is written before anything
        that reads it (a tick, a call, leaving) and read back after anything that changes it."""
        e = self.e
        e.emit(ind, "if fu < 0:", resume)
        e.emit(ind + 1, "st[0] = fu", resume)
        e.emit(ind + 1, f"if R.tick(st, {self.fid}, {resume}, D) != 0:", resume)
        e.emit(ind + 2, f"return {self.dummy}", resume)  # the tick left st[0] right
        e.emit(ind + 1, "fu = st[0]", resume)

    def leave(self, ind: int, value: str, pc: int) -> None:
        """``return value`` with the countdown written back."""
        self.e.emit(ind, "st[0] = fu", pc)
        self.e.emit(ind, f"return {value}", pc)

    def fail(self, ind: int, pc: int, kind: str, what: str, operands: list[tuple[str, str]]) -> None:
        """Store the operands of a failing instruction and leave (the wrapper raises)."""
        e = self.e
        ki = kf = 0
        for expr, t in operands:
            if t == "f":
                e.emit(ind, f"sf[{kf}] = {expr}", pc)
                kf += 1
            else:
                e.emit(ind, f"st[{5 + ki}] = {ival(expr, t)}", pc)
                ki += 1
        e.emit(ind, f"R.fail(st, {self.fid}, {pc})", pc)
        self.leave(ind, self.dummy, pc)
        self.sites[pc] = (kind, what, tuple(t for _, t in operands))

    def fail_if(self, ind: int, pc: int, cond: str, kind: str, what: str, operands) -> None:
        self.e.emit(ind, f"if {cond}:", pc)
        self.fail(ind + 1, pc, kind, what, operands)

    def materialize(self, stk: list[TEnt], ind: int, pc: int, which=None) -> None:
        dst, src = [], []
        for i, ent in enumerate(stk):
            if ent.slot == i:
                continue
            if which is not None and not which(i, ent):
                continue
            s = self.slot(i, ent.t)
            dst.append(s.expr)
            src.append(ent.expr)
            stk[i] = s
        if dst:
            self.e.emit(ind, f"{', '.join(dst)} = {', '.join(src)}", pc)

    def gexpr(self, gidx: int) -> tuple[str, str]:
        arr, k, t = self.gmap[gidx]
        if t == "b":
            return f"(GI[{k}] != 0)", t
        return (f"GI[{k}]" if arr == "i" else f"GF[{k}]"), t

    # -- the function --------------------------------------------------------------------------
    def generate(self) -> NbFunction:
        code, depths = self.code, self.depths
        blks = analysis.blocks(code, depths, ())
        topo = analysis.topo_order(blks) if self.spec.osr is None else None
        body = Emitter()
        self.e = body
        if topo is not None:
            # no loops: the blocks run once each in topological order, with no dispatch loop --
            # numba's type inference of a recursive function is much faster without back edges
            self.dag = True
            for start in topo:
                body.emit(1, f"if blk == {start}:", start)
                self.block(blks[start], 2, None)
            body.emit(1, "st[0] = fu", 0)
            body.emit(1, f"return {self.dummy}", 0)
        else:
            plan = inline_plan(blks, code, {0} if self.spec.osr is None else {0, self.spec.osr})
            inlined = set(plan.values())
            body.emit(1, "while True:", 0)
            for start in block_order(blks, inlined):
                body.emit(2, f"if blk == {start}:", start)
                cur = start
                while True:
                    self.block(blks[cur], 3, plan.get(cur))
                    if cur not in plan:
                        break
                    cur = plan[cur]
            body.emit(2, "st[0] = fu", 0)
            body.emit(2, f"return {self.dummy}", 0)
        head = Emitter()
        spec = self.spec
        params = [f"L{k}{spec.argtypes[k]}" for k in spec.params]
        note = "" if spec.osr is None else f", entered at its loop header pc {spec.osr}"
        head.emit(0, f"def {spec.name}({', '.join(params + ['D', 'N', 'sp', 'fp', 'gip', 'gfp'])}):"
                  f"  # {self.fn.qualname}{note}", 0)
        for name, view, addr in (("st", "iptr", "sp"), ("sf", "fptr", "fp"), ("GI", "iptr", "gip"),
                                 ("GF", "fptr", "gfp")):  # raw views of the wrapper's arrays (nbrt.py)
            head.emit(1, f"{name} = R.{view}({addr})", 0)
        head.emit(1, "fu = st[0]", 0)  # the fuel countdown, kept in a register (see check())
        for v in sorted(self.vars - set(params)):
            head.emit(1, f"{v} = {INIT[v[-1]] if v[-1] in INIT else '0'}", 0)
        head.emit(1, "c = 0", 0)
        self.e = head
        if spec.osr is None:
            head.emit(1, "st[3] += 1", 0)
            head.emit(1, "if D > st[4]:", 0)
            head.emit(2, "st[4] = D", 0)
            self.charge(1, self.runcost[0], 0)
            head.emit(1, "blk = 0", 0)
        else:  # the frame exists (the interpreter counted it) and the jump here has charged its fuel
            head.emit(1, f"blk = {spec.osr}", 0)
        head.lines.extend(body.lines)
        src, _ = head.render()
        return NbFunction(src, self.sites)

    def state(self, pc: int):
        return self.facts.states[pc]

    def block(self, b: analysis.Block, ind: int, follow: int | None) -> None:
        st = self.state(b.start)
        if st is None:  # reached only past an instruction that always raises
            self.leave(ind, self.dummy, b.start)
            return
        stk = [self.slot(k, t) for k, t in enumerate(st[1])]
        if b.start != 0:
            # every jump into this block charged the run it starts: one countdown check here
            # instead of one per incoming edge (the tick's resume pc is this block's start)
            self.check(ind, b.start)
        pc = b.start
        while pc < b.end:
            nm = self.opnames[pc]
            if nm in COMPARE and pc + 1 < b.end and self.opnames[pc + 1] in ("jt", "jf"):
                self.compare_branch(stk, ind, pc, follow)
                return
            if self.op(stk, ind, pc, nm, follow):
                return
            pc += 1
        self.materialize(stk, ind, b.end - 1)
        self.goto(ind, b.end, b.end - 1, follow, charge=False)

    dag = False

    def goto(self, ind: int, target: int, pc: int, follow: int | None, charge: bool) -> None:
        if charge:
            self.charge(ind, self.runcost[target], target, check=target == 0)
        if follow == target:
            return
        self.e.emit(ind, f"blk = {target}", pc)
        if not self.dag:
            self.e.emit(ind, "continue", pc)

    def else_(self, ind: int, pc: int) -> int:
        """After the taken side of a branch: where the fall-through side goes (indent)."""
        if self.dag:
            self.e.emit(ind, "else:", pc)
            return ind + 1
        return ind

    def compare(self, op: str, a: TEnt, b: TEnt, ind: int, pc: int) -> str:
        sym = BINOPS[op][0]
        A, B, ta, tb = a.expr, b.expr, a.t, b.t
        if ta == "f" and tb == "f":
            return f"{A} {sym} {B}"
        if "f" not in (ta, tb):
            return f"{ival(A, ta)} {sym} {ival(B, tb)}"
        if "b" in (ta, tb):
            return f"{fval(A, ta)} {sym} {fval(B, tb)}"
        if ta == "i":
            self.e.emit(ind, f"c = R.cmp_if({A}, {B})", pc)
            return REL_IF[op]
        self.e.emit(ind, f"c = R.cmp_if({B}, {A})", pc)
        return REL_IF[SWAP[op]]

    def compare_branch(self, stk: list[TEnt], ind: int, pc: int, follow: int | None) -> None:
        op = self.opnames[pc]
        b = stk.pop()
        a = stk.pop()
        self.materialize(stk, ind, pc)
        cond = self.compare(op, a, b, ind, pc)
        br = self.opnames[pc + 1]
        target = self.code.code[pc + 1][1][0]
        if br == "jf":
            cond = f"not ({cond})"
        self.e.emit(ind, f"if {cond}:", pc)
        self.goto(ind + 1, target, pc + 1, None, charge=True)
        self.goto(self.else_(ind, pc), pc + 2, pc + 1, follow, charge=True)

    def arith(self, nm: str, a: TEnt, b: TEnt, ind: int, pc: int) -> tuple[str, str]:
        """Emit checks for a binary op; return (result expression, type)."""
        A, B, ta, tb = a.expr, b.expr, a.t, b.t
        ops = [(A, ta), (B, tb)]
        rt = analysis.arith_result(nm, ta, tb, pc)
        if nm in COMPARE:
            return self.compare(nm, a, b, ind, pc), "b"
        sym = BINOPS[nm][0]
        if nm in ("add", "sub", "mul"):
            if rt == "f":
                return f"{fval(A, ta)} {sym} {fval(B, tb)}", "f"
            x, y = ival(A, ta), ival(B, tb)
            k = int_literal(y)
            if nm == "add" and k is not None:
                cond = f"{x} > IMAX - {y}" if k > 0 else f"{x} < IMIN - {y}" if k < 0 else None
            elif nm == "add":
                cond = f"({y} > 0 and {x} > IMAX - {y}) or ({y} < 0 and {x} < IMIN - {y})"
            elif nm == "sub" and k is not None:
                cond = f"{x} < IMIN + {y}" if k > 0 else f"{x} > IMAX + {y}" if k < 0 else None
            elif nm == "sub":
                cond = f"({y} < 0 and {x} > IMAX + {y}) or ({y} > 0 and {x} < IMIN + {y})"
            else:  # the float test decides almost every case inline; the exact test is a call
                self.vars.add("c_f")
                self.e.emit(ind, f"c_f = float({x}) * float({y})", pc)
                cond = f"not (-4.611686018427388e18 < c_f < 4.611686018427388e18) and R.mul_ovf({x}, {y})"
            if cond is not None:
                self.fail_if(ind, pc, cond, "op", nm, ops)
            return f"{x} {sym} {y}", "i"
        if nm == "div":
            self.fail_if(ind, pc, f"{B} == 0", "op", nm, ops)
            if "f" in (ta, tb):
                return f"{fval(A, ta)} / {fval(B, tb)}", "f"
            return f"R.int_truediv(st, {ival(A, ta)}, {ival(B, tb)})", "f"
        if nm in ("idiv", "mod"):
            self.fail_if(ind, pc, f"{B} == 0", "op", nm, ops)
            if rt == "f":
                return f"{fval(A, ta)} {sym} {fval(B, tb)}", "f"
            x, y = ival(A, ta), ival(B, tb)
            if nm == "idiv":
                self.fail_if(ind, pc, f"{y} == -1 and {x} == IMIN", "op", nm, ops)
                return f"{x} // {y}", "i"
            return f"(0 if {y} == -1 else {x} % {y})", "i"
        if nm in ("band", "bor", "bxor"):
            if rt == "b":
                return f"{A} {sym} {B}", "b"
            return f"{ival(A, ta)} {sym} {ival(B, tb)}", "i"
        if nm in ("shl", "shr"):
            x, y = ival(A, ta), ival(B, tb)
            self.fail_if(ind, pc, f"{y} < 0 or {y} > 63", "op", nm, ops)
            if nm == "shl":
                self.fail_if(ind, pc, f"{x} < (IMIN >> {y}) or {x} > (IMAX >> {y})", "op", nm, ops)
            return f"{x} {sym} {y}", "i"
        raise analysis.Ineligible(f"pc {pc}: {nm}")

    def op(self, stk: list[TEnt], ind: int, pc: int, nm: str, follow: int | None) -> bool:
        e = self.e
        args = self.code.code[pc][1]
        n = len(stk)
        locs = self.state(pc)[0]
        if nm == "nop":
            return False
        if nm == "push":
            v = self.mod.consts[args[0]]
            stk.append(TEnt(lit(v), analysis.tname(v)))
        elif nm == "pop":
            stk.pop()
        elif nm == "dup":
            top = stk[-1]
            stk.append(TEnt(top.expr, top.t, top.locs, top.glob, -1))
        elif nm == "over":
            self.materialize(stk, ind, pc)
            s = stk[n - 2]
            stk.append(TEnt(s.expr, s.t))
        elif nm in ("swap", "rot"):
            self.materialize(stk, ind, pc)
            if nm == "swap":
                a, b = stk[n - 2], stk[n - 1]
                na, nb = self.slot(n - 2, b.t), self.slot(n - 1, a.t)
                e.emit(ind, f"{na.expr}, {nb.expr} = {b.expr}, {a.expr}", pc)
                stk[n - 2], stk[n - 1] = na, nb
            else:
                a, b, c = stk[n - 3], stk[n - 2], stk[n - 1]
                x, y, z = self.slot(n - 3, b.t), self.slot(n - 2, c.t), self.slot(n - 1, a.t)
                e.emit(ind, f"{x.expr}, {y.expr}, {z.expr} = {b.expr}, {c.expr}, {a.expr}", pc)
                stk[n - 3], stk[n - 2], stk[n - 1] = x, y, z
        elif nm == "load":
            x = args[0]
            t = locs[x]
            stk.append(TEnt(self.var(f"L{x}{t}"), t, frozenset((x,))))
        elif nm == "store":
            x = args[0]
            v = stk.pop()
            self.materialize(stk, ind, pc, lambda i, ent: x in ent.locs)
            e.emit(ind, f"{self.var(f'L{x}{v.t}')} = {v.expr}", pc)
        elif nm == "gload":
            expr, t = self.gexpr(args[0])
            stk.append(TEnt(expr, t, glob=True))
        elif nm == "gstore":
            v = stk.pop()
            self.materialize(stk, ind, pc, lambda i, ent: ent.glob)
            arr, k, t = self.gmap[args[0]]
            if t == "b":
                e.emit(ind, f"GI[{k}] = 1 if {v.expr} else 0", pc)
            else:
                e.emit(ind, f"{'GI' if arr == 'i' else 'GF'}[{k}] = {v.expr}", pc)
        elif nm == "inc":
            x, k = args
            t = locs[x]
            self.materialize(stk, ind, pc, lambda i, ent: x in ent.locs)
            src = self.var(f"L{x}{t}")
            kl = lit(k)
            if t == "f":
                e.emit(ind, f"{src} = {src} + {kl}", pc)
            else:
                xv = ival(src, t)
                cond = (f"{xv} > IMAX - {kl}" if k > 0 else f"{xv} < IMIN - {kl}") if k != 0 else "False"
                if k != 0:
                    self.fail_if(ind, pc, cond, "op", "inc", [(src, t)])
                e.emit(ind, f"{self.var(f'L{x}i')} = {xv} + {kl}", pc)
        elif nm in BINOPS and pc in self.facts.fails:  # these operand types always raise
            b = stk.pop()
            a = stk.pop()
            self.materialize(stk, ind, pc)
            self.fail(ind, pc, "op", nm, [(a.expr, a.t), (b.expr, b.t)])
            return True
        elif nm in BINOPS:
            b = stk.pop()
            a = stk.pop()
            self.materialize(stk, ind, pc)  # keep checks simple: nothing pending below
            expr, t = self.arith(nm, a, b, ind, pc)
            s = self.slot(len(stk), t)
            e.emit(ind, f"{s.expr} = {expr}", pc)
            stk.append(s)
        elif nm == "neg":
            a = stk.pop()
            if a.t == "f":
                expr, t = f"-{a.expr}", "f"
            else:
                if a.t == "i":
                    self.fail_if(ind, pc, f"{a.expr} == IMIN", "op", "neg", [(a.expr, a.t)])
                expr, t = f"-{ival(a.expr, a.t)}", "i"
            s = self.slot(len(stk), t)
            e.emit(ind, f"{s.expr} = {expr}", pc)
            stk.append(s)
        elif nm == "not":
            a = stk.pop()
            s = self.slot(len(stk), "b")
            e.emit(ind, f"{s.expr} = not {truth(a.expr, a.t)}", pc)
            stk.append(s)
        elif nm in ("and", "or"):
            b = stk.pop()
            a = stk.pop()
            s = self.slot(len(stk), "b")
            e.emit(ind, f"{s.expr} = {truth(a.expr, a.t)} {nm} {truth(b.expr, b.t)}", pc)
            stk.append(s)
        elif nm == "print":
            a = stk.pop()
            self.materialize(stk, ind, pc, lambda i, ent: ent.glob)
            e.emit(ind, f"if R.print_{a.t}(st, {a.expr}, {self.fid}, {pc}) != 0:", pc)
            self.leave(ind + 1, self.dummy, pc)
        elif nm == "toint":
            a = stk.pop()
            if a.t == "f":
                cond = f"not ({a.expr} >= -9.223372036854775808e18 and {a.expr} < 9.223372036854775808e18)"
                self.fail_if(ind, pc, cond, "op", "toint", [(a.expr, "f")])
                expr = f"int({a.expr})"
            else:
                expr = ival(a.expr, a.t)
            s = self.slot(len(stk), "i")
            e.emit(ind, f"{s.expr} = {expr}", pc)
            stk.append(s)
        elif nm == "tofloat":
            a = stk.pop()
            s = self.slot(len(stk), "f")
            e.emit(ind, f"{s.expr} = {fval(a.expr, a.t)}", pc)
            stk.append(s)
        elif nm == "jmp":
            self.materialize(stk, ind, pc)
            self.goto(ind, args[0], pc, follow, charge=True)
            return True
        elif nm in ("jt", "jf"):
            a = stk.pop()
            self.materialize(stk, ind, pc)
            cond = truth(a.expr, a.t)
            e.emit(ind, f"if {'not ' if nm == 'jf' else ''}{cond}:", pc)
            self.goto(ind + 1, args[0], pc, None, charge=True)
            self.goto(self.else_(ind, pc), pc + 1, pc, follow, charge=True)
            return True
        elif nm == "ret":
            a = stk.pop()
            self.leave(ind, a.expr, pc)
            return True
        elif nm == "halt":
            a = stk.pop()
            if a.t != "i":
                self.fail(ind, pc, "op", "halt", [(a.expr, a.t)])
            else:
                e.emit(ind, "st[1] = 3", pc)
                e.emit(ind, f"st[2] = {a.expr}", pc)
                self.leave(ind, self.dummy, pc)
            return True
        elif nm == "call":
            self.call(stk, ind, pc, args)
        else:  # pragma: no cover - infer() rejects everything else
            raise analysis.Ineligible(f"pc {pc}: '{nm}'")
        return False

    def call(self, stk: list[TEnt], ind: int, pc: int, args) -> None:
        e = self.e
        fname = self.mod.names[args[0]]
        nargs = args[1]
        argv = stk[len(stk) - nargs:] if nargs else []
        del stk[len(stk) - nargs:]
        self.materialize(stk, ind, pc)
        facts = self.facts
        if pc in facts.natives:
            expr, t = self.native(facts.natives[pc], argv, ind, pc)
        else:
            idx = self.names[fname]
            callee = self.specs[(idx, tuple(a.t for a in argv))]
            t = callee.ret if callee.ret != "N" else "i"
            s = self.slot(len(stk), t)
            e.emit(ind, "if D >= st[8]:", pc)
            e.emit(ind + 1, f"R.depth_error(st, {self.fid}, {pc}, D + 1)", pc)
            self.leave(ind + 1, self.dummy, pc)
            # cast every argument: a literal would make numba compile (and cache) a separate
            # Literal[int](1) version whose symbol is unresolved when the cache is reloaded
            argstr = "".join(f"{CAST[x.t]}({x.expr}), " for x in argv)
            if not callee.recursive:  # a call outside any cycle cannot nest deeper than the call graph
                e.emit(ind, "st[0] = fu", pc)
                e.emit(ind, f"{s.expr} = {callee.name}({argstr}D + 1, N + 1, sp, fp, gip, gfp)", pc)
                e.emit(ind, "if st[1] != 0:", pc)
                e.emit(ind + 1, f"R.record(st, {self.fid}, {pc})", pc)
                e.emit(ind + 1, f"return {self.dummy}", pc)  # the callee left st[0] right
                e.emit(ind, "fu = st[0]", pc)
                stk.append(s)
                self.charge(ind, self.runcost[pc + 1], pc + 1)
                return
            e.emit(ind, f"if N >= {NBNEST}:", pc)
            ints = [a for a in argv if a.t != "f"]
            flts = [a for a in argv if a.t == "f"]
            if len(ints) > DEEP_ARGS or len(flts) > DEEP_ARGS:
                raise analysis.Ineligible(f"pc {pc}: a recursive call with more than {DEEP_ARGS} arguments of a type")
            for k, a in enumerate(ints):  # arguments travel in the state arrays: no allocation here
                e.emit(ind + 1, f"st[{ARG0 + k}] = {ival(a.expr, a.t)}", pc)
            for k, a in enumerate(flts):
                e.emit(ind + 1, f"sf[{FARG0 + k}] = {a.expr}", pc)
            e.emit(ind + 1, "st[0] = fu", pc)
            e.emit(ind + 1, f"if R.deep(st, {callee.sid}, D + 1, {self.fid}, {pc}) != 0:", pc)
            e.emit(ind + 2, f"return {self.dummy}", pc)
            e.emit(ind + 1, "fu = st[0]", pc)
            res = {"i": "st[9]", "b": "st[9] != 0", "f": "sf[2]", "u": "0"}[t]
            e.emit(ind + 1, f"{s.expr} = {res}", pc)
            e.emit(ind, "else:", pc)
            e.emit(ind + 1, "st[0] = fu", pc)
            e.emit(ind + 1, f"{s.expr} = {callee.name}({argstr}D + 1, N + 1, sp, fp, gip, gfp)", pc)
            e.emit(ind + 1, "if st[1] != 0:", pc)
            e.emit(ind + 2, f"R.record(st, {self.fid}, {pc})", pc)
            e.emit(ind + 2, f"return {self.dummy}", pc)
            e.emit(ind + 1, "fu = st[0]", pc)
            stk.append(s)
            self.charge(ind, self.runcost[pc + 1], pc + 1)
            return
        s = self.slot(len(stk), t)
        e.emit(ind, f"{s.expr} = {expr}", pc)
        stk.append(s)
        self.charge(ind, self.runcost[pc + 1], pc + 1)

    def native(self, name: str, argv: list[TEnt], ind: int, pc: int) -> tuple[str, str]:
        """A math native inline, with the checks that make CPython's math raise."""
        e = self.e
        ops = [(a.expr, a.t) for a in argv]
        fl = lambda a: fval(a.expr, a.t)  # noqa: E731
        if name in ("pi", "inf"):
            return ("math.pi" if name == "pi" else "INF"), "f"
        if name == "isnan":
            a = argv[0]
            return (f"math.isnan({a.expr})" if a.t == "f" else "False"), "b"
        if name == "atan2":
            return f"math.atan2({fl(argv[0])}, {fl(argv[1])})", "f"
        if name in ("min", "max"):
            a, b = argv
            rel = "<" if name == "min" else ">"
            return f"({b.expr} if {b.expr} {rel} {a.expr} else {a.expr})", a.t
        a = argv[0]
        x = fl(a)
        if name == "sqrt":
            self.fail_if(ind, pc, f"{x} < 0.0", "native", name, ops)
            return f"math.sqrt({x})", "f"
        if name in ("sin", "cos", "tan"):
            self.fail_if(ind, pc, f"math.isinf({x})", "native", name, ops)
            return f"math.{name}({x})", "f"
        if name == "log":
            self.fail_if(ind, pc, f"{x} <= 0.0", "native", name, ops)
            return f"math.log({x})", "f"
        if name == "atan":
            return f"math.atan({x})", "f"
        if name == "exp":
            e.emit(ind, f"c_f = math.exp({x})", pc)
            self.vars.add("c_f")
            self.fail_if(ind, pc, f"math.isinf(c_f) and not math.isinf({x})", "native", name, ops)
            return "c_f", "f"
        if name in ("floor", "ceil"):
            if a.t != "f":
                return ival(a.expr, a.t), "i"
            e.emit(ind, f"c_f = np.{name}({a.expr})", pc)  # math.floor would return an int64 (wrapping)
            self.vars.add("c_f")
            self.fail_if(ind, pc, "not (c_f >= -9.223372036854775808e18 and c_f < 9.223372036854775808e18)",
                         "native", name, ops)
            return "int(c_f)", "i"
        if name == "abs":
            if a.t == "f":
                return f"abs({a.expr})", "f"
            if a.t == "i":
                self.fail_if(ind, pc, f"{a.expr} == IMIN", "native", name, ops)
            return f"abs({ival(a.expr, a.t)})", "i"
        raise analysis.Ineligible(f"pc {pc}: math.{name}")


def module_source(funcs: list[NbFunction], header: str, entry: Spec) -> str:
    """One module: the closure's functions and ``nbcvm_entry``, the C-callable entry.

    The entry takes ints for bools (and returns a bool as an int), so that its
    machine signature has only int64 and double (``native.py`` calls it).
    """
    parts = [
        f"# {header}",
        "# Generated by nbcvm.jit.nbgen: do not edit (the cache key is the hash of this text).",
        "import math",
        "import numpy as np",
        "from numba import njit",
        "from nbcvm.jit import nbrt as R",
        "IMIN = -9223372036854775807 - 1",
        "IMAX = 9223372036854775807",
        "INF = float('inf')",
        "NAN = float('nan')",
        "",
    ]
    for f in funcs:
        parts.append("")
        parts.append("@njit(error_model='numpy')")
        parts.append(f.source)
    params = [f"a{k}" for k in entry.params]
    passed = [f"a{k} != 0" if entry.argtypes[k] == "b" else f"a{k}" for k in entry.params]
    tail = ["D", "N", "sp", "fp", "gip", "gfp"]
    call = f"{entry.name}({', '.join(passed + tail)})"
    parts += ["", "@njit(error_model='numpy')", f"def {ENTRY}({', '.join(params + tail)}):",
              f"    return np.int64({call})" if entry.ret == "b" else f"    return {call}", ""]
    return "\n".join(parts) + "\n"
