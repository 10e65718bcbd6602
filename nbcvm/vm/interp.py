"""The interpreter loop.

A boring hot loop (STYLE 4): ``pc = ops[pc](r)`` while ``pc >= 0``.  A
negative pc is the one flag: ``BUDGET`` means the fuel countdown ran out and
``meter.tick()`` checks fuel, deadline and hooks; any other negative value
``-(pc + 2)`` is a call or return for the loop to carry out from the
function's ``ctrl`` table.  Frames live on an explicit list, so recursion
depth is bounded by ``Limits.max_depth``, not by the host's stack.

When a handler raises, ``pc`` still holds the instruction that raised (the
assignment never happened), which is how every error names its instruction.
The error is mapped to an NBC error (by type), one traceback entry is added
per frame it unwinds through, and the innermost ``try`` region that covers
the pc and matches the error's type catches it.
"""

from __future__ import annotations

from typing import Any

from nbcvm.errors import ExitProgram, LimitExceeded, TraceEntry, VMError, from_host, type_matches
from nbcvm.vm.compile import BUDGET, CALL, DECLINE, Fn
from nbcvm.vm.ops_arith import bad_operands


def execute(rt: Any, fn: Fn, args: list) -> Any:
    """Run ``fn(*args)`` to completion on the calling host thread."""
    m = rt.meter
    frames: list[tuple] = []  # (fn, ops, ctrl, regs, return pc, result register, its fuel)
    ops = fn.ops if fn.ops is not None else fn.compile(m)
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
    m.stacks[id(frames)] = frames  # a memory root while it runs (dict ops are atomic)
    try:
        while True:
            try:
                while pc >= 0:
                    pc = ops[pc](r)
                if pc == BUDGET:
                    pc = m.tick(fn, depth + base_depth)
                    maxdepth = m.max_depth - base_depth - 1  # a host may change limits mid-run
                    continue
                cpc = -2 - pc
                e = ctrl[cpc]
                if e[0] == CALL:  # (CALL, callee, nargs, base, end, fuel after return)
                    if depth >= maxdepth:
                        pc = cpc
                        raise LimitExceeded("depth", depth + base_depth + 2, m.max_depth, "frames")
                    if e[1].jit_state is not None:  # the JIT tier runs this call (nbcvm/jit)
                        v = e[1].jit_state(r[e[3]:e[4]], base_depth + depth + 2)
                        if v is not DECLINE:
                            r[e[3]] = v
                            m.budget -= e[5]
                            pc = cpc + 1
                            if m.budget < 0:
                                m.resume, pc = pc, BUDGET
                            continue
                    frames.append((fn, ops, ctrl, r, cpc + 1, e[3], e[5]))
                    depth += 1
                    if depth > peak:
                        peak = depth
                    ncalls += 1
                    fn = e[1]
                    r = r[e[3]:e[4]] + fn.pad
                    ops = fn.ops
                    if ops is None:
                        ops = fn.compile(m)
                    ctrl = fn.ctrl
                    m.budget -= fn.entry_cost
                    if m.budget < 0:
                        m.resume, pc = 0, BUDGET
                    else:
                        pc = 0
                else:  # (RET, register)
                    v = r[e[1]]
                    if not depth:
                        return v
                    depth -= 1
                    fn, ops, ctrl, r, pc, dst, cost = frames.pop()
                    r[dst] = v
                    m.budget -= cost
                    if m.budget < 0:
                        m.resume, pc = pc, BUDGET
            except ExitProgram:
                raise
            except Exception as exc:  # every failure becomes an NBC error here
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
                    fn, ops, ctrl, r, epc = frames.pop()[:5]
                    epc -= 1  # the call instruction
    finally:
        del m.stacks[id(frames)]
        m.calls += ncalls
        m.note_depth(base_depth + peak + 1)


def _find_region(fn: Fn, pc: int, err: VMError):
    if not fn.regions or not err.catchable:
        return None
    for reg in fn.regions:  # innermost first
        if reg.start <= pc < reg.end and type_matches(err.etype, reg.selector):
            return reg
    return None


def _host_error(exc: BaseException, fn: Fn, pc: int, r: list) -> VMError:
    """Map a host exception; explain operand types for arithmetic TypeErrors."""
    info = fn.opinfo.get(pc)
    if info is not None and isinstance(exc, TypeError):
        op, (ka, a), (kb, b) = info
        G = fn.inst.globals
        vals = [r[x] if k == "r" else G[x] if k == "g" else x for k, x in ((ka, a), (kb, b))]
        return bad_operands(op, vals[0], vals[1])
    return from_host(exc)
