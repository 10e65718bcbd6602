"""Closure compiler: a verified function -> a list of handler closures.

The interpreter does not decode bytecode at run time.  When a function is
first called, each instruction is turned into a small closure ``h(r) -> pc``
over the function's *register file* ``r``: its locals followed by its stack
slots.  The verifier proved the stack depth before every instruction, so a
stack slot is a fixed register index and no push/pop happens at run time.

Handlers are registered per opcode by family modules (``ops_*.py``) against
the ISA table; ``check_handlers()`` fails at import if one is missing or extra.

Fuel is charged per straight-line *run*: the instructions from a point
control enters up to the next control instruction (jump, branch, call, end).
Control instructions charge the run they enter; when the countdown in the
``Meter`` goes negative they return ``BUDGET`` and the loop's slow path checks
fuel, deadline and hooks.  So the hot path pays one subtraction per run.

Superinstructions: a binary operation whose operands come straight from
``load``/``push``/``gload`` reads them in place, may store straight into a
``store``/``gstore`` destination, and a comparison may branch directly
(``load i; push 10; lt; jt L`` is one closure).  Fusion never crosses a jump
target, so every pc that control can reach still has its own closure.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Callable

from nbcvm.bytecode.model import CodeObject
from nbcvm.bytecode.verifier import FuncInfo, Region
from nbcvm.isa import BY_CODE, BY_NAME, Flow, Op, OperandKind

BUDGET = -1  # a handler's return value: "fuel countdown ran out, see meter.resume"

# ctrl table kinds: instructions the loop itself carries out
CALL, RET = 0, 1

Handler = Callable[[list], int]
Factory = Callable[["InsCtx"], Handler]
HANDLERS: dict[str, Factory] = {}
_COMPILE_LOCK = threading.Lock()


def handler(*names: str) -> Callable[[Factory], Factory]:
    """Register a handler factory for one or more opcodes."""

    def deco(fn: Factory) -> Factory:
        for n in names:
            if n not in BY_NAME:
                raise RuntimeError(f"handler for unknown opcode '{n}'")
            if n in HANDLERS:
                raise RuntimeError(f"two handlers for opcode '{n}'")
            HANDLERS[n] = fn
        return fn

    return deco


def check_handlers() -> None:
    missing = set(BY_NAME) - set(HANDLERS)
    extra = set(HANDLERS) - set(BY_NAME)
    if missing or extra:
        raise RuntimeError(f"handler table out of step with isa.py: missing {sorted(missing)}, "
                           f"extra {sorted(extra)}")


class _Decline:
    """Returned by ``Fn.jit_state(args, depth)`` when the interpreter should run the call."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "DECLINE"


DECLINE = _Decline()  # the JIT tier's answer "run it yourself" (nbcvm.jit re-exports it)


class Fn:
    """A function of a loaded module, compiled to closures on first call."""

    __slots__ = ("code", "info", "inst", "name", "qualname", "nparams", "nlocals", "nregs", "pad",
                 "ops", "ctrl", "runcost", "errpc", "opinfo", "regions", "entry_cost", "is_native",
                 "calls", "jit_state")

    def __init__(self, code: CodeObject, info: FuncInfo, inst: Any):
        self.code, self.info, self.inst = code, info, inst
        self.name = code.name
        self.qualname = f"{inst.name}.{code.name}"
        self.nparams = code.nparams
        self.nlocals = len(code.locals)
        self.nregs = self.nlocals + info.max_stack
        self.pad = [None] * (self.nregs - self.nparams)
        self.ops: list[Handler] | None = None
        self.ctrl: list[tuple] = []
        self.runcost: list[int] = []
        self.errpc: dict[int, int] = {}
        self.opinfo: dict[int, tuple] = {}
        self.regions: tuple[Region, ...] = info.regions
        self.entry_cost = 0
        self.is_native = False
        self.calls = 0
        self.jit_state = None

    def compile(self, meter: Any) -> list[Handler]:
        if self.ops is None:
            with _COMPILE_LOCK:  # two threads calling a new function compile it once
                if self.ops is None:
                    _compile(self, meter)
        return self.ops  # type: ignore[return-value]

    def line_of(self, pc: int) -> int:
        lines = self.code.lines
        return lines[pc] if 0 <= pc < len(lines) else 0

    def op_at(self, pc: int) -> str:
        code = self.code.code
        return BY_CODE[code[pc][0]].name if 0 <= pc < len(code) else "?"


class NativeFn:
    """A host function of a native module."""

    __slots__ = ("name", "qualname", "arity", "fn", "is_native", "calls")

    def __init__(self, module: str, name: str, arity: int, fn: Callable):
        self.name, self.qualname, self.arity, self.fn = name, f"{module}.{name}", arity, fn
        self.is_native = True
        self.calls = 0


@dataclass
class InsCtx:
    """What a handler factory knows about one instruction."""

    fn: Fn
    pc: int
    op: Op
    args: tuple[int, ...]
    sp: int  # register index one past the top of stack before the instruction
    nxt: int
    meter: Any
    inst: Any  # the ModuleInstance: globals, consts, runtime

    @property
    def const(self) -> Any:
        return self.inst.module.consts[self.args[0]]

    @property
    def name(self) -> str:
        i = [k for k in self.op.operands].index(
            OperandKind.NAME if OperandKind.NAME in self.op.operands else OperandKind.FUNC)
        return self.inst.module.names[self.args[i]]

    def charge(self, target: int) -> int:
        return self.fn.runcost[target] if target < len(self.fn.runcost) else 0

    def set_ctrl(self, entry: tuple) -> Handler:
        self.fn.ctrl[self.pc] = entry
        code = -(self.pc + 2)
        return lambda r: code


def _is_control(op: Op) -> bool:
    return op.flow is not Flow.NEXT


def run_costs(code: CodeObject) -> list[int]:
    """Fuel of the straight-line run starting at each pc (up to a control op)."""
    n = len(code.code)
    cost = [0] * (n + 1)
    for pc in range(n - 1, -1, -1):
        op = BY_CODE[code.code[pc][0]]
        cost[pc] = op.fuel + (0 if _is_control(op) else cost[pc + 1])
    return cost[:n]


def _compile(fn: Fn, meter: Any) -> None:
    from nbcvm.vm import fuse  # noqa: F401  (registers handlers on first use)

    code = fn.code
    n = len(code.code)
    fn.runcost = run_costs(code)
    fn.entry_cost = fn.runcost[0] if n else 0
    fn.ctrl = [None] * n  # type: ignore[list-item]
    ops: list[Handler] = []
    depths = fn.info.depths
    for pc, (opc, args) in enumerate(code.code):
        op = BY_CODE[opc]
        d = depths[pc]
        if d is None:
            ops.append(_unreachable(fn, pc))
            continue
        ctx = InsCtx(fn, pc, op, args, fn.nlocals + d, pc + 1, meter, fn.inst)
        ops.append(HANDLERS[op.name](ctx))
    fuse.fuse(fn, ops, meter)
    fn.ops = ops


def _unreachable(fn: Fn, pc: int) -> Handler:
    def h(r: list) -> int:
        raise RuntimeError(f"unreachable pc {pc} of {fn.qualname} executed")

    return h
