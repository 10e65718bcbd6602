"""Stack and variable handlers: constants, shuffles, locals, globals.

Stack slots are registers (see compile.py), so ``push`` is a store into the
slot the verifier assigned and ``swap`` exchanges two registers.
"""

from __future__ import annotations

from nbcvm.vm.compile import InsCtx, handler
from nbcvm.vm.ops_arith import INT_MAX, INT_MIN, overflow


@handler("nop")
def _nop(c: InsCtx):
    nxt = c.nxt
    return lambda r: nxt


@handler("push")
def _push(c: InsCtx):
    s, k, nxt = c.sp, c.const, c.nxt

    def h(r: list) -> int:
        r[s] = k
        return nxt

    return h


@handler("pop")
def _pop(c: InsCtx):
    s, nxt = c.sp - 1, c.nxt

    def h(r: list) -> int:
        r[s] = None  # drop the reference so the value can be freed
        return nxt

    return h


@handler("dup")
def _dup(c: InsCtx):
    s, nxt = c.sp, c.nxt

    def h(r: list) -> int:
        r[s] = r[s - 1]
        return nxt

    return h


@handler("swap")
def _swap(c: InsCtx):
    a, b, nxt = c.sp - 2, c.sp - 1, c.nxt

    def h(r: list) -> int:
        r[a], r[b] = r[b], r[a]
        return nxt

    return h


@handler("over")
def _over(c: InsCtx):
    s, nxt = c.sp, c.nxt

    def h(r: list) -> int:
        r[s] = r[s - 2]
        return nxt

    return h


@handler("rot")
def _rot(c: InsCtx):
    a, nxt = c.sp - 3, c.nxt

    def h(r: list) -> int:
        r[a], r[a + 1], r[a + 2] = r[a + 1], r[a + 2], r[a]
        return nxt

    return h


@handler("load")
def _load(c: InsCtx):
    s, x, nxt = c.sp, c.args[0], c.nxt

    def h(r: list) -> int:
        r[s] = r[x]
        return nxt

    return h


@handler("store")
def _store(c: InsCtx):
    s, x, nxt = c.sp - 1, c.args[0], c.nxt

    def h(r: list) -> int:
        r[x] = r[s]
        return nxt

    return h


@handler("gload")
def _gload(c: InsCtx):
    s, i, g, nxt = c.sp, c.args[0], c.inst.globals, c.nxt

    def h(r: list) -> int:
        r[s] = g[i]
        return nxt

    return h


@handler("gstore")
def _gstore(c: InsCtx):
    s, i, g, nxt = c.sp - 1, c.args[0], c.inst.globals, c.nxt

    def h(r: list) -> int:
        g[i] = r[s]
        return nxt

    return h


@handler("inc")
def _inc(c: InsCtx):
    x, k, nxt = c.args[0], c.args[1], c.nxt

    def h(r: list) -> int:
        v = r[x] + k
        if not INT_MIN <= v <= INT_MAX and v.__class__ is int:
            overflow("inc")
        r[x] = v
        return nxt

    return h
