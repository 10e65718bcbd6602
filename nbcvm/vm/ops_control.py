"""Control handlers: jumps, branches, calls, returns, halt.

Every control instruction ends a straight-line run, so it is where fuel is
charged for the run it enters (compile.py).  Calls and returns are carried
out by the loop (``interp.py``): their handlers return ``-(pc + 2)`` and the
loop reads the instruction's entry in ``fn.ctrl``.  A call to another module
resolves its callee on first execution (the lazy import) and patches itself:
native callees become a direct host call, NBC callees a ctrl entry.
"""

from __future__ import annotations

from nbcvm.errors import ExitProgram, VMError
from nbcvm.vm.compile import BUDGET, CALL, RET, InsCtx, handler
from nbcvm.vm.ops_arith import INT_MAX, INT_MIN


@handler("jmp")
def _jmp(c: InsCtx):
    t, ct, m = c.args[0], c.charge(c.args[0]), c.meter

    def h(r: list) -> int:
        m.budget -= ct
        if m.budget < 0:
            m.resume = t
            return BUDGET
        return t

    return h


@handler("jt", "jf")
def _branch(c: InsCtx):
    s, m = c.sp - 1, c.meter
    t, ct, nxt, cf = c.args[0], c.charge(c.args[0]), c.nxt, c.charge(c.nxt)
    if c.op.name == "jf":
        t, ct, nxt, cf = nxt, cf, t, ct  # "jump if falsy" = "continue if truthy"

    def h(r: list) -> int:
        v = r[s]
        if v.__class__ is not bool and v.__class__.__name__ == "ndarray":
            raise TypeError("a tensor has no truth value; reduce it first (tsum, tmax ...)")
        if v:
            m.budget -= ct
            if m.budget < 0:
                m.resume = t
                return BUDGET
            return t
        m.budget -= cf
        if m.budget < 0:
            m.resume = nxt
            return BUDGET
        return nxt

    return h


@handler("call")
def _call(c: InsCtx):
    fname = c.name
    nargs = c.args[1]
    base = c.sp - nargs
    entry = (CALL, None, nargs, base, base + nargs, c.charge(c.nxt))
    if "." not in fname:  # same module: resolved now, called by the loop
        return c.set_ctrl(entry[:1] + (c.inst.fns[fname],) + entry[2:])
    fn, pc, inst, m = c.fn, c.pc, c.inst, c.meter
    cont, nxt = c.charge(c.nxt), c.nxt

    def first_call(r: list) -> int:
        callee = inst.resolve(fname, nargs)  # may raise ImportError at this instruction
        if callee.is_native:
            h = native_call(callee, base, nargs, nxt, cont, m)
        else:
            h = c.set_ctrl(entry[:1] + (callee,) + entry[2:])
        fn.ops[pc] = h  # type: ignore[index]
        return h(r)

    return first_call


def native_call(callee, base: int, nargs: int, nxt: int, cont: int, m):
    f = callee.fn
    if nargs == 1:
        def h(r: list) -> int:
            r[base] = f(r[base])
            m.budget -= cont
            if m.budget < 0:
                m.resume = nxt
                return BUDGET
            return nxt
    else:
        end = base + nargs

        def h(r: list) -> int:
            r[base] = f(*r[base:end])
            m.budget -= cont
            if m.budget < 0:
                m.resume = nxt
                return BUDGET
            return nxt
    return h


@handler("ret")
def _ret(c: InsCtx):
    return c.set_ctrl((RET, c.sp - 1, 0, 0))


@handler("halt")
def _halt(c: InsCtx):
    s = c.sp - 1

    def h(r: list) -> int:
        v = r[s]
        if type(v) is not int or not INT_MIN <= v <= INT_MAX:
            raise VMError("TypeError", f"halt needs an int exit code, got {v!r}")
        raise ExitProgram(v)

    return h
