"""Superinstructions: rewrite hot instruction shapes into single closures.

Runs after every instruction has its plain closure.  A fused closure is
placed at the first pc of its group and returns the pc after the group; the
inner pcs keep their plain closures but are never entered, because a group
never contains a jump target, handler entry or try boundary (``leaders``).
Errors raised by a fused closure are reported at the pc of the operation that
failed (``fn.errpc``), so tracebacks name the right line.

Shapes (S = load | push | gload; B = a binary op; C = a comparison):
  S S B [store|gstore]     S B [store|gstore]     B store|gstore
  S S C jt|jf              S C jt|jf              C jt|jf
  load ret
"""

from __future__ import annotations

from nbcvm.bytecode.model import CodeObject
from nbcvm.isa import BY_CODE, Flow, OperandKind
from nbcvm.vm import (  # noqa: F401  (each family registers its handlers)
    ops_arith, ops_concurrency, ops_control, ops_data, ops_error, ops_resource, ops_stack, ops_tensor)
from nbcvm.vm.compile import RET, Fn, Handler, check_handlers
from nbcvm.vm.ops_arith import BINOPS, COMPARE, binop_factory

check_handlers()  # every opcode of isa.py has exactly one handler


def leaders(fn: Fn) -> set[int]:
    code: CodeObject = fn.code
    out = {0}
    for pc, (opc, args) in enumerate(code.code):
        op = BY_CODE[opc]
        for a, k in zip(args, op.operands):
            if k is OperandKind.LABEL:
                out.add(a)
        if op.name in ("try", "endtry", "finally", "endfinally"):
            out.update((pc, pc + 1))
        if op.flow is not Flow.NEXT:
            out.add(pc + 1)
    return out


def _source(fn: Fn, pc: int) -> tuple[str, object] | None:
    opc, args = fn.code.code[pc]
    name = BY_CODE[opc].name
    if name == "load":
        return ("r", args[0])
    if name == "gload":
        return ("g", args[0])
    if name == "push":
        v = fn.inst.module.consts[args[0]]
        kind = "ki" if type(v) is int else "kf" if type(v) is float else "k"
        return (kind, v)
    return None


ENABLED = True  # tests switch fusion off to compare against plain dispatch


def fuse(fn: Fn, ops: list[Handler], meter) -> None:
    if not ENABLED:
        return
    code = fn.code.code
    n = len(code)
    depths = fn.info.depths
    lead = leaders(fn)
    G = fn.inst.globals
    name = [BY_CODE[opc].name for opc, _ in code]
    for i in range(n):
        if depths[i] is None:
            continue
        srcs: list[tuple[str, object]] = []
        j = i
        while len(srcs) < 2 and j < n and (j == i or j not in lead):
            s = _source(fn, j)
            if s is None:
                break
            srcs.append(s)
            j += 1
        if j >= n or (j != i and j in lead) or depths[j] is None:
            continue
        op = name[j]
        if op == "ret" and srcs and srcs[-1][0] == "r":
            fn.ctrl[j] = (RET, srcs[-1][1], 0, 0)
            code_ = -(j + 2)
            ops[j - 1] = lambda r, code_=code_: code_
            continue
        if op not in BINOPS:
            continue
        base = fn.nlocals + depths[j]  # type: ignore[operator]
        if len(srcs) == 2:
            (ka, a), (kb, b) = srcs[0], srcs[1]
        elif len(srcs) == 1:
            (ka, a), (kb, b) = ("r", base - 2), srcs[0]
        else:
            (ka, a), (kb, b) = ("r", base - 2), ("r", base - 1)
        kd, dst, nxt, branch, target = "r", base - 2, j + 1, None, 0
        k = j + 1
        if k < n and k not in lead:
            if name[k] == "store":
                kd, dst, nxt = "r", code[k][1][0], k + 1
            elif name[k] == "gstore":
                kd, dst, nxt = "g", code[k][1][0], k + 1
            elif name[k] in ("jt", "jf") and op in COMPARE:
                branch, target, nxt = name[k], code[k][1][0], k + 1
        if branch is None and nxt < n and nxt not in lead and fn.ctrl[nxt] is not None:
            nxt = -(nxt + 2)  # the next instruction is a return or local call: go straight to it
        if not srcs and nxt == j + 1 and branch is None:
            continue  # nothing to fuse
        ct = fn.runcost[target] if branch else 0
        cf = fn.runcost[nxt] if branch and 0 <= nxt < n else 0
        f = binop_factory(op, ka, kb, kd, branch)
        ops[i] = f(a, b, dst, nxt, target, ct, cf, G, meter)
        fn.errpc[i] = j
        fn.opinfo[i] = (op, (ka, a), (kb, b))
