"""Verifier: proves a Module safe to run without per-step checks.

For every function it proves, from the ISA table alone:

* every opcode exists and has the operands its row names, each in range
  (constant, local, global, name indices; jump targets inside the function);
* the stack depth at each instruction is the same on every path that reaches
  it (joins agree) and never goes negative; handler entries of ``try`` regions
  get the depth at ``try`` plus the error value;
* ``try``/``endtry`` nest properly, and ``region``/``endregion`` are balanced on
  every path (no endregion without a region, none open at ``ret``), so a
  resource region never outlives its frame;
* calls to functions of the same module pass exactly their parameter count;
* no path falls off the end: each ends in ret, halt, throw or rethrow.

The result, ``FuncInfo`` per function, is what the interpreter compiles from:
the stack depth before each instruction (None where unreachable), the maximum
depth, and the exception regions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from nbcvm.isa import check_name
from nbcvm.bytecode.model import CodeObject, Module
from nbcvm.errors import Diagnostic, VerifyError
from nbcvm.isa import BY_CODE, Flow, OperandKind

MAX_ERRORS = 50
MAX_COUNT = 65535  # largest argument/element count an instruction may name
MAX_STACK = 65535
# fullmatch, never match(...$): "$" also matches before a trailing newline
_IDENT = re.compile(r"[A-Za-z_$][\w$]*")
_MODNAME = re.compile(r"[A-Za-z_$][\w$]*(\.[A-Za-z_$][\w$]*)*")


@dataclass(frozen=True)
class Region:
    """A try region: instructions start..end-1 are protected by handler."""

    start: int
    end: int
    handler: int
    selector: str
    depth: int  # stack depth at the try (the handler sees depth + 1)
    store: int = -1  # finally: the local that receives the error (the stack is left as at entry)

    @property
    def entry_depth(self) -> int:
        return self.depth if self.store >= 0 else self.depth + 1


@dataclass(frozen=True)
class FuncInfo:
    depths: tuple[int | None, ...]
    max_stack: int
    regions: tuple[Region, ...]  # innermost first for any pc


class _Errors:
    def __init__(self, module: Module):
        self.module = module
        self.items: list[Diagnostic] = []

    def add(self, f: CodeObject | None, pc: int | None, message: str) -> None:
        op = line = None
        if f is not None and pc is not None and 0 <= pc < len(f.code):
            code = f.code[pc][0]
            op = BY_CODE[code].name if code in BY_CODE else f"opcode 0x{code:02x}"
            line = f.lines[pc] if pc < len(f.lines) else 0
        self.items.append(Diagnostic(message, path=self.module.source, line=line or 0,
                                     function=f.name if f else None, pc=pc, op=op))
        if len(self.items) >= MAX_ERRORS:
            raise _Stop()


class _Stop(Exception):
    pass


def verify(module: Module) -> tuple[FuncInfo, ...]:
    """Verify a module; return per-function facts or raise VerifyError."""
    errs = _Errors(module)
    infos: list[FuncInfo] = []
    try:
        _check_module(module, errs)
        for f in module.functions:
            infos.append(_check_function(module, f, errs))
    except _Stop:
        pass
    if errs.items:
        raise VerifyError(errs.items, module.source)
    return tuple(infos)


def _check_module(m: Module, errs: _Errors) -> None:
    if not _MODNAME.fullmatch(m.name):
        errs.add(None, None, f"bad module name {m.name!r}")
    seen: set[str] = set()
    for f in m.functions:
        if not _IDENT.fullmatch(f.name):
            errs.add(None, None, f"bad function name {f.name!r}")
        if f.name in seen:
            errs.add(None, None, f"duplicate function '{f.name}'")
        seen.add(f.name)
        if not 0 <= f.nparams <= len(f.locals):
            errs.add(f, None, f"{f.nparams} parameters but only {len(f.locals)} locals")
        if len(f.lines) != len(f.code):
            errs.add(f, None, "line table does not match the code")
        if len(set(f.locals)) != len(f.locals) or not all(_IDENT.fullmatch(x) for x in f.locals):
            errs.add(f, None, "locals must be distinct names")
    for imp in m.imports:
        if not _MODNAME.fullmatch(imp):
            errs.add(None, None, f"bad import name {imp!r}")
    if len(set(m.imports)) != len(m.imports):
        errs.add(None, None, "duplicate import")
    gnames = [g for g, _ in m.globals]
    if len(set(gnames)) != len(gnames) or not all(_IDENT.fullmatch(g) for g in gnames):
        errs.add(None, None, "globals must be distinct names")
    for g, init in m.globals:
        if not -1 <= init < len(m.consts):
            errs.add(None, None, f"global '{g}' has a bad initial constant index {init}")
    for c in m.consts:
        if not (c is None or isinstance(c, (bool, int, float, str))):
            errs.add(None, None, f"constant of unsupported type {type(c).__name__}")
        elif isinstance(c, int) and not isinstance(c, bool) and not -(2**63) <= c < 2**63:
            errs.add(None, None, f"int constant {c} outside the 64-bit range")


def _check_operands(m: Module, f: CodeObject, pc: int, errs: _Errors) -> bool:
    opc, args = f.code[pc]
    op = BY_CODE.get(opc)
    if op is None:
        errs.add(f, pc, f"unknown opcode 0x{opc:02x}")
        return False
    if len(args) != len(op.operands):
        errs.add(f, pc, f"'{op.name}' needs {len(op.operands)} operand(s), has {len(args)}")
        return False
    ok = True
    for v, k in zip(args, op.operands):
        bad = None
        if k is OperandKind.CONST and not 0 <= v < len(m.consts):
            bad = f"constant index {v} out of range (pool has {len(m.consts)})"
        elif k is OperandKind.LOCAL and not 0 <= v < len(f.locals):
            bad = f"local index {v} out of range ({len(f.locals)} locals)"
        elif k is OperandKind.GLOBAL and not 0 <= v < len(m.globals):
            bad = f"global index {v} out of range ({len(m.globals)} globals)"
        elif k is OperandKind.LABEL and not 0 <= v < len(f.code):
            bad = f"jump target {v} outside the function (0..{len(f.code) - 1})"
        elif k is OperandKind.INT and op.name != "inc" and not 0 <= v <= MAX_COUNT:
            bad = f"count {v} out of range (0..{MAX_COUNT})"
        elif k is OperandKind.INT and op.name == "inc" and not -(2**63) <= v < 2**63:
            bad = f"increment {v} outside the 64-bit range"
        elif k in (OperandKind.FUNC, OperandKind.NAME) and not 0 <= v < len(m.names):
            bad = f"name index {v} out of range ({len(m.names)} names)"
        elif k is OperandKind.FUNC:
            bad = _check_callee(m, m.names[v], args, f)
        elif k is OperandKind.NAME:
            try:
                check_name(op.name, m.names[v])
            except ValueError as e:
                bad = str(e)
        if bad:
            errs.add(f, pc, bad)
            ok = False
    return ok


def _check_callee(m: Module, name: str, args: tuple[int, ...], f: CodeObject) -> str | None:
    if not _MODNAME.fullmatch(name):
        return f"bad function name {name!r} in call"
    if "." in name:
        mod = name.rpartition(".")[0]
        if mod not in m.imports:
            return f"call of '{name}' but module '{mod}' is not imported"
        return None
    callee = m.function(name)
    if callee is None:
        return f"call of unknown function '{name}'"
    if args[1] != callee.nparams:
        return f"'{name}' takes {callee.nparams} argument(s), called with {args[1]}"
    return None


# Per opcode, what the dataflow pass needs, flattened for speed:
# (op, pops or -1 when it depends on an operand, pushes, flow, special)
_F_NEXT, _F_JUMP, _F_BRANCH, _F_END = 0, 1, 2, 3
_S_NONE, _S_REGION, _S_ENDREGION, _S_RET, _S_TRY = 0, 1, 2, 3, 4
_FLOW = {Flow.NEXT: _F_NEXT, Flow.CALL: _F_NEXT, Flow.JUMP: _F_JUMP, Flow.BRANCH: _F_BRANCH, Flow.END: _F_END}
_SPECIAL = {"region": _S_REGION, "endregion": _S_ENDREGION, "ret": _S_RET, "try": _S_TRY, "finally": _S_TRY}
_ROWS = {code: (op, op.pops if isinstance(op.pops, int) else -1, op.pushes, _FLOW[op.flow],
                _SPECIAL.get(op.name, _S_NONE)) for code, op in BY_CODE.items()}
# Operand kinds checked by a plain range test; the others (counts, names, callees) take
# the full path in _check_operands.
_RANGED = (OperandKind.CONST, OperandKind.LOCAL, OperandKind.GLOBAL, OperandKind.LABEL)
_SIMPLE = {code: op.operands for code, op in BY_CODE.items() if all(k in _RANGED for k in op.operands)}


def _operands_ok(m: Module, f: CodeObject, errs: _Errors) -> bool:
    """Every instruction's operands in range (fast path; problems reported by _check_operands)."""
    bound = {OperandKind.CONST: len(m.consts), OperandKind.LOCAL: len(f.locals),
             OperandKind.GLOBAL: len(m.globals), OperandKind.LABEL: len(f.code)}
    simple = _SIMPLE
    ok = True
    for pc, (opc, args) in enumerate(f.code):
        kinds = simple.get(opc)
        if kinds is not None and len(args) == len(kinds):
            for v, k in zip(args, kinds):
                if not 0 <= v < bound[k]:
                    break
            else:
                continue
        if not _check_operands(m, f, pc, errs):
            ok = False
    return ok


def _check_function(m: Module, f: CodeObject, errs: _Errors) -> FuncInfo:
    code = f.code
    n = len(code)
    if n == 0:
        errs.add(f, None, "empty function (every function must end in ret, halt or throw)")
        return FuncInfo((), 0, ())
    if not _operands_ok(m, f, errs):
        return FuncInfo((None,) * n, 0, ())
    regions = _regions(m, f, errs)
    depths: list[int | None] = [None] * n
    rdepths: list[int] = [0] * n  # open resource regions before each instruction
    max_stack = 0
    depths[0] = 0
    work = [(0, 0, 0)]
    rows = _ROWS

    def reach(target: int, depth: int, rdepth: int, src: int) -> None:
        if target >= n:
            errs.add(f, src, "control falls off the end of the function (add ret, halt or throw)")
            return
        if depths[target] is None:
            depths[target] = depth
            rdepths[target] = rdepth
            work.append((target, depth, rdepth))
        elif depths[target] != depth:
            errs.add(f, target, f"stack depth {depth} from pc {src} disagrees with depth "
                     f"{depths[target]} on another path")
        elif rdepths[target] != rdepth:
            errs.add(f, target, f"{rdepth} open region(s) from pc {src} but {rdepths[target]} on another path")

    seeded: set[int] = set()
    while work:
        pc, depth, rdepth = work.pop()
        while True:  # follow fall-through directly; branches and joins go through reach()
            opc, args = code[pc]
            op, pops, pushes, flow, special = rows[opc]
            if pops < 0:
                pops = op.pop_count(args)
            if depth < pops:
                errs.add(f, pc, f"stack underflow: '{op.name}' pops {pops} but the stack holds {depth}")
                break
            after = depth - pops + pushes
            if after > MAX_STACK:
                errs.add(f, pc, f"stack deeper than {MAX_STACK}")
                break
            if after > max_stack:
                max_stack = after
            if depth > max_stack:
                max_stack = depth
            rafter = rdepth
            if special:
                if special == _S_REGION:
                    rafter += 1
                elif special == _S_ENDREGION:
                    if rdepth == 0:
                        errs.add(f, pc, "endregion without an open region")
                        break
                    rafter -= 1
                elif special == _S_RET:
                    if rdepth:
                        errs.add(f, pc, f"returns with {rdepth} open region(s) (add endregion)")
                        break
                else:  # try / finally: the handler sees the regions open at the try
                    for reg in regions:
                        if reg.start == pc + 1 and reg.handler not in seeded:
                            seeded.add(reg.handler)
                            reach(reg.handler, reg.entry_depth, rdepth, pc)
            if flow == _F_NEXT:
                nxt = pc + 1
                if nxt < n and depths[nxt] is None:
                    depths[nxt] = after
                    rdepths[nxt] = rafter
                    pc, depth, rdepth = nxt, after, rafter
                    continue
                reach(nxt, after, rafter, pc)
            elif flow == _F_BRANCH:
                reach(pc + 1, after, rafter, pc)
                reach(args[0], after, rafter, pc)
            elif flow == _F_JUMP:
                reach(args[0], after, rafter, pc)
            break
    for r in regions:
        if depths[r.start - 1] is not None and depths[r.start - 1] != r.depth:
            errs.add(f, r.start - 1, "try region depth mismatch")
    return FuncInfo(tuple(depths), max_stack, tuple(regions))


def _regions(m: Module, f: CodeObject, errs: _Errors) -> list[Region]:
    """Match try/endtry lexically; depth at each try comes from a first pass."""
    open_: list[int] = []
    pairs: list[tuple[int, int]] = []
    for pc, (opc, _) in enumerate(f.code):
        name = BY_CODE[opc].name
        if name in ("try", "finally"):
            open_.append(pc)
        elif name == "endtry":
            if not open_:
                errs.add(f, pc, "endtry without a matching try")
            else:
                pairs.append((open_.pop(), pc))
    for pc in open_:
        errs.add(f, pc, "try without a matching endtry")
    if not pairs:
        return []
    # The depth at each try is needed before the main pass; compute it with a
    # plain pass that ignores handlers (handlers cannot reach a try's entry
    # without going through code the main pass checks again).
    depths = _straight_depths(f)
    regions = []
    for start, end in pairs:
        d = depths[start]
        if d is None:
            continue  # unreachable try: nothing to protect
        handler = f.code[start][1][0]
        if start < handler <= end:
            errs.add(f, start, "a try's handler must not be inside its own region")
            continue
        opc, args = f.code[start]
        if BY_CODE[opc].name == "finally":
            regions.append(Region(start + 1, end, handler, "*", d, store=args[1]))
        else:
            regions.append(Region(start + 1, end, handler, m.names[args[1]], d))
    # innermost first: a region nested in another starts later and ends earlier
    regions.sort(key=lambda r: (r.end - r.start))
    return regions


def _straight_depths(f: CodeObject) -> list[int | None]:
    n = len(f.code)
    depths: list[int | None] = [None] * n
    work = [(0, 0)]
    seen_handlers: set[int] = set()
    while work:
        pc, d = work.pop()
        if pc >= n or depths[pc] is not None or d < 0:
            continue
        depths[pc] = d
        opc, args = f.code[pc]
        op = BY_CODE[opc]
        after = d - op.pop_count(args) + op.pushes
        if op.name in ("try", "finally") and args[0] not in seen_handlers:
            seen_handlers.add(args[0])
            work.append((args[0], d + (1 if op.name == "try" else 0)))
        if op.flow in (Flow.NEXT, Flow.CALL, Flow.BRANCH):
            work.append((pc + 1, after))
        if op.flow in (Flow.JUMP, Flow.BRANCH):
            work.append((args[0], after))
    return depths
