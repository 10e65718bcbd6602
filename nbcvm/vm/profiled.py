"""The instrumented interpreter loop used by ``nbcvm profile``.

``nbcvm.vm.interp.execute`` stays exactly as it is -- a program run without a
monitor pays nothing for profiling.  ``install(runtime, monitor)`` swaps this
loop in as ``runtime.executor``; it is the same loop (same fuel, limits,
errors, tracebacks and frame layout, so memory measuring and nested runs
still work) with three additions:

* call/return hooks: every NBC call enters a node of the thread's call tree
  and is timed (``perf_counter_ns``) on return, by normal return or by an
  error unwinding through it, so inclusive/exclusive times always add up;
* at "opcode" level, functions are compiled *without* superinstructions
  (a fused closure covers several pcs) and the inner loop counts and times
  every instruction per pc: ``cnt[pc] += 1`` and one clock read per
  instruction.  Counts are exact -- the sum over all pcs equals the meter's
  instruction count for a run that ends normally;
* the completed-call timeline, when a timeline export was asked for.

Profiling runs on the interpreter tier: ``install`` replaces whatever
executor the runtime had (the JIT tier's included), so every call is seen.

Time spent carrying out a call or return in the loop is charged to the
``call``/``ret`` instruction; time in ``meter.tick`` (limits, hooks, the live
view) is charged to no instruction.  All times include the profiler's own
overhead (see docs/profile.md for measured ratios).
"""

from __future__ import annotations

import threading
from time import perf_counter_ns
from typing import TYPE_CHECKING, Any

from nbcvm.errors import ExitProgram, LimitExceeded, TraceEntry, VMError
from nbcvm.vm import compile as _c
from nbcvm.vm.compile import BUDGET, CALL, Fn
from nbcvm.vm.interp import _find_region, _host_error

if TYPE_CHECKING:  # the monitor is handed in by the profiler; the VM does not depend on it
    from nbcvm.runtime.monitor import PerformanceMonitor, ThreadState

_FALLBACK_LOCK = threading.Lock()


def compile_plain(fn: Fn, meter: Any, mon: PerformanceMonitor) -> list:
    """Compile ``fn`` with one closure per instruction (no superinstructions), once per monitor."""
    from nbcvm.vm import fuse

    lock = getattr(_c, "_COMPILE_LOCK", _FALLBACK_LOCK)
    with lock:  # the same lock Fn.compile takes, so nobody compiles while fusion is off
        if id(fn) not in mon.plain:
            old = fuse.ENABLED
            fuse.ENABLED = False
            try:
                fn.ops = None
                _c._compile(fn, meter)
            finally:
                fuse.ENABLED = old
            mon.plain[id(fn)] = fn
    return fn.ops  # type: ignore[return-value]


def _pcs(ts: ThreadState, fn: Fn, meter: Any, mon: PerformanceMonitor) -> tuple[list, list, list]:
    """(ops, counts, times) of ``fn`` for this thread, compiling it plainly on first sight."""
    ops = fn.ops if id(fn) in mon.plain else compile_plain(fn, meter, mon)
    n = len(fn.code.code)
    row = ts.pcs[fn] = ([0] * n, [0] * n)
    return ops, row[0], row[1]


class ProfiledExecutor:
    """``runtime.executor`` while a monitor is installed."""

    def __init__(self, monitor: PerformanceMonitor):
        self.monitor = monitor

    def __call__(self, rt: Any, fn: Fn, args: list) -> Any:
        return execute(rt, fn, args, self.monitor)


def install(rt: Any, mon: PerformanceMonitor) -> None:
    """Run everything ``rt`` executes (main, init, VM threads) under ``mon``."""
    mon.runtime = rt
    rt.executor = ProfiledExecutor(mon)
    rt.meter.hooks.append(mon.on_tick)  # VM threads use rt.executor too (the spawn handler)


def uninstall(rt: Any, mon: PerformanceMonitor) -> None:
    from nbcvm.vm.interp import execute as plain

    rt.executor = plain
    if mon.on_tick in rt.meter.hooks:
        rt.meter.hooks.remove(mon.on_tick)


def _close(stk: list, now: int, ev: list | None) -> None:
    """Pop the innermost open call and record its duration."""
    node, t0 = stk.pop()
    node.samples.append(now - t0)
    if ev is not None:
        ev.append((node, t0, now))


def execute(rt: Any, fn: Fn, args: list, mon: PerformanceMonitor) -> Any:
    """``interp.execute`` with call/return hooks and, at opcode level, per-pc counts and times."""
    m = rt.meter
    clk = perf_counter_ns
    ts = mon.thread_state()
    stk = ts.stack
    base_len = len(stk)
    counting = mon.per_opcode
    frames: list[tuple] = []  # (fn, ops, ctrl, regs, return pc, result register, its fuel, counts, times)
    if counting:
        pcs = ts.pcs.get(fn)
        if pcs is None:
            ops, cnt, tm = _pcs(ts, fn, m, mon)
        else:
            ops = fn.ops
            cnt, tm = pcs
    else:
        ops = fn.ops if fn.ops is not None else fn.compile(m)
        cnt = tm = None
    ctrl = fn.ctrl
    r = list(args) + fn.pad
    pc = 0
    m.budget -= fn.entry_cost
    if m.budget < 0:
        m.resume, pc = 0, BUDGET
    base_depth = m.depth
    maxdepth = m.max_depth - base_depth - 1
    depth = peak = 0
    ncalls = 1
    ev = ts.events  # the timeline, or None (re-read after each tick: the cap may switch it off)
    t = clk()
    stk.append((stk[-1][0].child(fn), t))
    if base_depth + 1 > ts.peak_depth:
        ts.peak_depth, ts.peak_fn = base_depth + 1, fn
    stacks = m.stacks
    if isinstance(stacks, dict):
        stacks[id(frames)] = frames  # a memory root while it runs
    else:
        stacks.append(frames)
    try:
        while True:
            try:
                if counting:
                    while pc >= 0:
                        p = pc
                        cnt[p] += 1
                        pc = ops[p](r)
                        now = clk()
                        tm[p] += now - t
                        t = now
                else:
                    while pc >= 0:
                        pc = ops[pc](r)
                if pc == BUDGET:
                    pc = m.tick(fn, depth + base_depth)
                    maxdepth = m.max_depth - base_depth - 1  # a host may change limits mid-run
                    ev = ts.events
                    t = clk()
                    continue
                cpc = -2 - pc
                e = ctrl[cpc]
                if e[0] == CALL:  # (CALL, callee, nargs, base, end, fuel after return)
                    if depth >= maxdepth:
                        pc = cpc
                        raise LimitExceeded("depth", depth + base_depth + 2, m.max_depth, "frames")
                    frames.append((fn, ops, ctrl, r, cpc + 1, e[3], e[5], cnt, tm))
                    depth += 1
                    if depth > peak:
                        peak = depth
                        if depth + base_depth + 1 > ts.peak_depth:
                            ts.peak_depth, ts.peak_fn = depth + base_depth + 1, e[1]
                    ncalls += 1
                    fn = e[1]
                    r = r[e[3]:e[4]] + fn.pad
                    if counting:
                        pcs = ts.pcs.get(fn)
                        now = clk()
                        tm[cpc] += now - t
                        if pcs is None:
                            ops, cnt, tm = _pcs(ts, fn, m, mon)
                            now = clk()
                        else:
                            ops = fn.ops
                            cnt, tm = pcs
                        t = now
                    else:
                        ops = fn.ops
                        if ops is None:
                            ops = fn.compile(m)
                        now = clk()
                    ctrl = fn.ctrl
                    kid = stk[-1][0].kids.get(fn)
                    if kid is None:
                        kid = stk[-1][0].child(fn)
                    stk.append((kid, now))
                    m.budget -= fn.entry_cost
                    if m.budget < 0:
                        m.resume, pc = 0, BUDGET
                    else:
                        pc = 0
                else:  # (RET, register)
                    v = r[e[1]]
                    now = clk()
                    if counting:
                        tm[cpc] += now - t
                        t = now
                    node, t0 = stk.pop()
                    node.samples.append(now - t0)
                    if ev is not None:
                        ev.append((node, t0, now))
                    if not depth:
                        return v
                    depth -= 1
                    fn, ops, ctrl, r, pc, dst, cost, cnt, tm = frames.pop()
                    r[dst] = v
                    m.budget -= cost
                    if m.budget < 0:
                        m.resume, pc = pc, BUDGET
            except ExitProgram:
                raise
            except Exception as exc:  # every failure becomes an NBC error here
                ts.errors += 1
                epc = pc if pc >= 0 else (m.resume if pc == BUDGET else -2 - pc)
                err = exc if isinstance(exc, VMError) else _host_error(exc, fn, epc, r)
                epc = fn.errpc.get(epc, epc)
                rm = rt.resources
                seen = err.seen_frames
                while True:
                    if id(r) not in seen:  # a re-raise in a frame already listed keeps its first entry
                        seen.add(id(r))
                        err.traceback.insert(0, TraceEntry(fn.inst.name, fn.name, fn.inst.module.source,
                                                           fn.line_of(epc), epc, fn.op_at(epc)))
                    region = _find_region(fn, epc, err)
                    if rm.regions:  # close the resource regions this unwinding leaves
                        if region is None:
                            rm.unwind(id(r))
                        else:
                            rm.unwind(id(r), region.start, region.end)
                    if region is not None:
                        r[region.store if region.store >= 0 else fn.nlocals + region.depth] = err
                        pc = region.handler
                        m.budget -= fn.runcost[pc]
                        if m.budget < 0:
                            m.resume, pc = pc, BUDGET
                        break
                    if not depth:
                        raise err from None
                    depth -= 1
                    _close(stk, clk(), ev)  # the frame the error unwinds out of
                    fn, ops, ctrl, r, epc, _, _, cnt, tm = frames.pop()
                    epc -= 1  # the call instruction
                t = clk()
    finally:
        now = clk()
        while len(stk) > base_len:  # frames left open by halt, an uncaught error or a host exception
            _close(stk, now, ts.events)
        if isinstance(stacks, dict):
            del stacks[id(frames)]
        else:
            for i in range(len(stacks) - 1, -1, -1):
                if stacks[i] is frames:
                    del stacks[i]
                    break
        m.calls += ncalls
        m.note_depth(base_depth + peak + 1)
