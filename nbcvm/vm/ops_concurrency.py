"""Concurrency handlers: spawn/join, channels, locks, atomic globals.

The blocking work lives in ``nbcvm.runtime.threads.ThreadManager`` (one per
Runtime); the handlers only move values between registers and it.  Atomic
operations take the runtime's ``atomic_lock`` so that they are atomic with
respect to each other (plain gload/gstore are not: that is the race the
stress tool exists to catch).
"""

from __future__ import annotations

from nbcvm.errors import VMError
from nbcvm.vm.compile import InsCtx, handler
from nbcvm.vm.ops_arith import INT_MAX, INT_MIN, overflow
from nbcvm.vm.ops_resource import _site


@handler("spawn", "supervise")
def _spawn(c: InsCtx):
    fname, nargs, nxt = c.name, c.args[1], c.nxt
    base = c.sp - nargs
    inst = c.inst
    rt = inst.runtime
    site = _site(c)
    supervised = c.op.name == "supervise"

    def h(r: list) -> int:
        callee = inst.fns[fname] if "." not in fname else inst.resolve(fname, nargs)
        if callee.is_native:
            raise VMError("TypeError", f"spawn needs an NBC function, {fname} is native")
        if callee.nparams != nargs:
            raise VMError("TypeError", f"{fname} takes {callee.nparams} argument(s), spawned with {nargs}")
        t = rt.threads.spawn(callee, r[base:base + nargs], rt.executor, supervised)  # the profiler's or JIT's loop too
        rt.resources.register("thread", t, 0, site, weak=True)
        r[base] = t
        return nxt

    return h


@handler("join")
def _join(c: InsCtx):
    s, nxt, tm = c.sp - 1, c.nxt, c.inst.runtime.threads

    def h(r: list) -> int:
        r[s] = tm.join(r[s])
        return nxt

    return h


@handler("chan")
def _chan(c: InsCtx):
    s, n, nxt, tm, rm, site = c.sp, c.args[0], c.nxt, c.inst.runtime.threads, c.inst.runtime.resources, _site(c)

    def h(r: list) -> int:
        ch = tm.new_channel(n)
        rm.register("channel", ch, 64 + 8 * n, site, weak=True)
        r[s] = ch
        return nxt

    return h


@handler("send")
def _send(c: InsCtx):
    s, nxt, tm = c.sp - 3, c.nxt, c.inst.runtime.threads

    def h(r: list) -> int:
        tm.send(r[s], r[s + 1], r[s + 2])
        return nxt

    return h


@handler("recv")
def _recv(c: InsCtx):
    s, nxt, tm = c.sp - 2, c.nxt, c.inst.runtime.threads

    def h(r: list) -> int:
        r[s], r[s + 1] = tm.recv(r[s], r[s + 1])
        return nxt

    return h


@handler("close")
def _close(c: InsCtx):
    s, nxt, tm = c.sp - 1, c.nxt, c.inst.runtime.threads

    def h(r: list) -> int:
        tm.close(r[s])
        return nxt

    return h


@handler("newlock")
def _newlock(c: InsCtx):
    s, nxt, tm, rm, site = c.sp, c.nxt, c.inst.runtime.threads, c.inst.runtime.resources, _site(c)

    def h(r: list) -> int:
        lk = tm.new_lock()
        rm.register("lock", lk, 64, site, weak=True)
        r[s] = lk
        return nxt

    return h


@handler("acquire")
def _acquire(c: InsCtx):
    s, nxt, tm = c.sp - 2, c.nxt, c.inst.runtime.threads

    def h(r: list) -> int:
        tm.acquire(r[s], r[s + 1])
        return nxt

    return h


@handler("release")
def _release(c: InsCtx):
    s, nxt, tm = c.sp - 1, c.nxt, c.inst.runtime.threads

    def h(r: list) -> int:
        tm.release(r[s])
        return nxt

    return h


@handler("atomic_add")
def _atomic_add(c: InsCtx):
    s, i, g, nxt, lock = c.sp - 1, c.args[0], c.inst.globals, c.nxt, c.inst.runtime.atomic_lock

    def h(r: list) -> int:
        d = r[s]
        with lock:
            v = g[i] + d
            if not INT_MIN <= v <= INT_MAX and v.__class__ is int:
                overflow("atomic_add")
            g[i] = v
        r[s] = v
        return nxt

    return h


@handler("cas")
def _cas(c: InsCtx):
    s, i, g, nxt, lock = c.sp - 2, c.args[0], c.inst.globals, c.nxt, c.inst.runtime.atomic_lock

    def h(r: list) -> int:
        with lock:
            cur = g[i]
            ok = cur == r[s] and type(cur) is type(r[s])
            if ok:
                g[i] = r[s + 1]
        r[s] = ok
        return nxt

    return h


@handler("threadid")
def _threadid(c: InsCtx):
    s, nxt, tm = c.sp, c.nxt, c.inst.runtime.threads

    def h(r: list) -> int:
        r[s] = tm.current()
        return nxt

    return h
