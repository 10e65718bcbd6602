"""The NBC instruction set: one table, everything else derives from it.

Each row is one instruction: number, mnemonic, operand kinds, stack effect
(pops, pushes), fuel cost, family and a one-line meaning.  The assembler and
disassembler read the operand kinds, the verifier reads the stack effect and
the control-flow flags, the interpreter builds its dispatch list by family
(and fails at import if a handler is missing or extra), and
``docs/language.md`` is generated from ``OPS`` by ``scripts/gendocs.py``.

Operand kinds (a small closed set, see ``OperandKind``):

=====  ============================================================
int    an integer immediate (argument counts, sizes)
const  a literal: int, float, string, true, false, nil -> constant pool
local  a parameter or ``.local`` of the current function -> local index
global a module global declared with ``.global`` -> global index
label  a label of the current function -> instruction index (pc)
func   a function: ``name`` (this module) or ``module.name`` -> name index
name   an identifier such as an error type -> name index
=====  ============================================================

A stack effect ``pops`` may be an int or ``"n"`` / ``"2n"``: a multiple of the
instruction's int operand (``call f n`` pops ``n`` arguments).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from nbcvm.errors import CATEGORIES, ERROR_TYPES, suggest


class OperandKind(str, Enum):
    INT = "int"
    CONST = "const"
    LOCAL = "local"
    GLOBAL = "global"
    LABEL = "label"
    FUNC = "func"
    NAME = "name"


class Flow(str, Enum):
    """How an instruction passes control on, for the verifier and compiler."""

    NEXT = "next"  # falls through to pc + 1
    JUMP = "jump"  # always goes to its label
    BRANCH = "branch"  # goes to its label or falls through
    CALL = "call"  # calls, then continues at pc + 1
    END = "end"  # leaves the function: ret, halt, throw, rethrow


@dataclass(frozen=True)
class Op:
    code: int
    name: str
    operands: tuple[OperandKind, ...]
    pops: int | str
    pushes: int
    fuel: int
    family: str
    flow: Flow
    doc: str

    def pop_count(self, args: tuple[int, ...]) -> int:
        """Values popped, given the encoded operands (``n`` is the int operand)."""
        if isinstance(self.pops, int):
            return self.pops
        n = next(a for a, k in zip(args, self.operands) if k is OperandKind.INT)
        return 2 * n if self.pops == "2n" else n


K = OperandKind
_ROWS: list[Op] = []


def _op(code: int, name: str, operands: str, pops: int | str, pushes: int, family: str,
        doc: str, *, flow: Flow = Flow.NEXT, fuel: int = 1) -> None:
    kinds = tuple(OperandKind(k) for k in operands.split()) if operands else ()
    _ROWS.append(Op(code, name, kinds, pops, pushes, fuel, family, flow, doc))


# --- stack: constants and shuffles (0x00-0x0F) --------------------------------
_op(0x00, "nop", "", 0, 0, "stack", "Do nothing.")
_op(0x01, "push", "const", 0, 1, "stack", "Push a constant (int, float, string, true, false, nil).")
_op(0x02, "pop", "", 1, 0, "stack", "Discard the top value.")
_op(0x03, "dup", "", 1, 2, "stack", "Duplicate the top value.")
_op(0x04, "swap", "", 2, 2, "stack", "Exchange the two top values.")
_op(0x05, "over", "", 2, 3, "stack", "Push a copy of the second value: a b -> a b a.")
_op(0x06, "rot", "", 3, 3, "stack", "Rotate the third value to the top: a b c -> b c a.")
# --- variables (0x10-0x1F) ----------------------------------------------------
_op(0x10, "load", "local", 0, 1, "vars", "Push a local variable (parameters are locals).")
_op(0x11, "store", "local", 1, 0, "vars", "Pop into a local variable.")
_op(0x12, "gload", "global", 0, 1, "vars", "Push a module global.")
_op(0x13, "gstore", "global", 1, 0, "vars", "Pop into a module global.")
_op(0x14, "inc", "local int", 0, 0, "vars", "Add an int immediate to a local in place (checked).")
# --- arithmetic, comparison, logic (0x20-0x3F) --------------------------------
_op(0x20, "add", "", 2, 1, "arith", "a + b on ints/floats; int overflow raises OverflowError.")
_op(0x21, "sub", "", 2, 1, "arith", "a - b.")
_op(0x22, "mul", "", 2, 1, "arith", "a * b.")
_op(0x23, "div", "", 2, 1, "arith", "a / b, always float; b == 0 raises ZeroDivisionError.")
_op(0x24, "idiv", "", 2, 1, "arith", "Floor division a // b (rounds toward -infinity).")
_op(0x25, "mod", "", 2, 1, "arith", "Floor modulo a % b (sign of b, like Python).")
_op(0x26, "neg", "", 1, 1, "arith", "-a.")
_op(0x27, "band", "", 2, 1, "arith", "Bitwise and of ints.")
_op(0x28, "bor", "", 2, 1, "arith", "Bitwise or of ints.")
_op(0x29, "bxor", "", 2, 1, "arith", "Bitwise xor of ints.")
_op(0x2A, "shl", "", 2, 1, "arith", "a << b; b in 0..63, overflow raises OverflowError.")
_op(0x2B, "shr", "", 2, 1, "arith", "Arithmetic a >> b; b in 0..63.")
_op(0x30, "eq", "", 2, 1, "arith", "a == b (1 == 1.0 is true).")
_op(0x31, "ne", "", 2, 1, "arith", "a != b.")
_op(0x32, "lt", "", 2, 1, "arith", "a < b on numbers or on strings.")
_op(0x33, "le", "", 2, 1, "arith", "a <= b.")
_op(0x34, "gt", "", 2, 1, "arith", "a > b.")
_op(0x35, "ge", "", 2, 1, "arith", "a >= b.")
_op(0x38, "not", "", 1, 1, "arith", "Logical not of the value's truth.")
_op(0x39, "and", "", 2, 1, "arith", "true if both values are truthy (both are evaluated).")
_op(0x3A, "or", "", 2, 1, "arith", "true if either value is truthy (both are evaluated).")
# --- control (0x40-0x4F) ------------------------------------------------------
_op(0x40, "jmp", "label", 0, 0, "control", "Jump to a label.", flow=Flow.JUMP)
_op(0x41, "jt", "label", 1, 0, "control", "Pop; jump if truthy.", flow=Flow.BRANCH)
_op(0x42, "jf", "label", 1, 0, "control", "Pop; jump if falsy.", flow=Flow.BRANCH)
_op(0x43, "call", "func int", "n", 1, "control",
    "Call a function with n arguments (first pushed = first parameter); push its result.",
    flow=Flow.CALL)
_op(0x44, "ret", "", 1, 0, "control", "Return the top value to the caller.", flow=Flow.END)
_op(0x45, "halt", "", 1, 0, "control",
    "Stop the whole program; the popped int is the exit code.", flow=Flow.END)
# --- data: strings, lists, maps, conversions, output (0x50-0x6F) --------------
_op(0x50, "print", "", 1, 0, "data", "Pop and print a value and a newline to stdout.")
_op(0x51, "concat", "", 2, 1, "data", "Concatenate two strings (or two lists).")
_op(0x52, "len", "", 1, 1, "data", "Length of a string, list, map or tensor (first axis).")
_op(0x53, "tostr", "", 1, 1, "data", "Convert any value to its printed string.")
_op(0x54, "toint", "", 1, 1, "data", "Convert a float (truncating), bool or numeric string to int.")
_op(0x55, "tofloat", "", 1, 1, "data", "Convert an int or numeric string to float.")
_op(0x56, "typeof", "", 1, 1, "data", "Push the value's type name as a string.")
_op(0x58, "newlist", "int", "n", 1, "data", "Pop n values into a new list (first pushed first).")
_op(0x59, "newmap", "int", "2n", 1, "data", "Pop n key/value pairs (key pushed first) into a new map.")
_op(0x5A, "getitem", "", 2, 1, "data", "container[key]: list index (negative from end), map key, string char.")
_op(0x5B, "setitem", "", 3, 0, "data", "container[key] = value (pops container key value).")
_op(0x5C, "append", "", 2, 0, "data", "Append a value to a list (pops list value).")
_op(0x5D, "has", "", 2, 1, "data", "true if a map has the key, or a list/string contains the value.")
_op(0x5E, "keys", "", 1, 1, "data", "The keys of a map as a new list, in insertion order.")
_op(0x5F, "delitem", "", 2, 0, "data", "Remove a map key or list index (pops container key).")
_op(0x60, "slice", "", 3, 1, "data", "s[a:b] of a string or list (pops s a b; nil means the end).")
# --- tensors, numpy-backed (0x70-0x7F) ----------------------------------------
_op(0x70, "tensor", "", 1, 1, "tensor", "Make a float64 tensor from a (nested) list of numbers.")
_op(0x71, "shape", "", 1, 1, "tensor", "The shape of a tensor as a list of ints.")
_op(0x72, "tadd", "", 2, 1, "tensor", "Elementwise a + b (tensors or a tensor and a number).")
_op(0x73, "tsub", "", 2, 1, "tensor", "Elementwise a - b.")
_op(0x74, "tmul", "", 2, 1, "tensor", "Elementwise a * b.")
_op(0x75, "tdiv", "", 2, 1, "tensor", "Elementwise a / b.")
_op(0x76, "matmul", "", 2, 1, "tensor", "Matrix product a @ b; shapes must agree.")
_op(0x77, "tsum", "", 1, 1, "tensor", "Sum of all elements, as a float.")
_op(0x78, "tmean", "", 1, 1, "tensor", "Mean of all elements, as a float.")
_op(0x79, "tmax", "", 1, 1, "tensor", "Largest element, as a float.")
_op(0x7A, "tmin", "", 1, 1, "tensor", "Smallest element, as a float.")
_op(0x7B, "reshape", "", 2, 1, "tensor", "Reshape a tensor to a list of ints (sizes must agree).")
_op(0x7C, "tolist", "", 1, 1, "tensor", "Convert a tensor to nested lists of floats.")
# --- errors (0x80-0x8F) -------------------------------------------------------
_op(0x80, "try", "label name", 0, 0, "errors",
    "Open a protected region up to the matching endtry; an error of the named type "
    "(or category; * for any) jumps to the label with the error value pushed.")
_op(0x81, "endtry", "", 0, 0, "errors", "Close the innermost protected region.")
_op(0x82, "throw", "name", 1, 0, "errors",
    "Pop a message and raise an error of the named type (e.g. UserError).", flow=Flow.END)
_op(0x83, "rethrow", "", 1, 0, "errors", "Pop an error value and raise it again, keeping its traceback.",
    flow=Flow.END)
_op(0x84, "errfield", "name", 1, 1, "errors",
    "Read a field of an error value: type, category, code, message, traceback, recoverable.")
_op(0x85, "finally", "label local", 0, 0, "errors",
    "Open a protected region up to endtry whose cleanup block at the label runs on every unwind: "
    "the error goes into the local (nil when the block is reached normally).")
_op(0x86, "endfinally", "local", 0, 0, "errors",
    "End a cleanup block: if the local holds an error, raise it again (keeping its traceback).")

# --- concurrency: VM threads, channels, locks, atomics (0x90-0x9F) -------------
_op(0x90, "spawn", "func int", "n", 1, "concurrency",
    "Start a VM thread running the function with n arguments; push its thread handle.")
_op(0x91, "join", "", 1, 1, "concurrency",
    "Pop a thread handle, wait for it, push its result (its error is raised here, with its traceback).")
_op(0x92, "chan", "int", 0, 1, "concurrency", "Push a new channel holding up to n values (n >= 1).")
_op(0x93, "send", "", 3, 0, "concurrency",
    "Pop channel, value, timeout (seconds or nil = 5 s); wait for room; TimeoutError if none in time.")
_op(0x94, "recv", "", 2, 2, "concurrency",
    "Pop channel, timeout; push the next value and true, or nil and false once it is closed and empty.")
_op(0x95, "close", "", 1, 0, "concurrency", "Pop a channel and close it; receivers drain what is left.")
_op(0x96, "newlock", "", 0, 1, "concurrency", "Push a new lock.")
_op(0x97, "acquire", "", 2, 0, "concurrency",
    "Pop lock, timeout (nil = 5 s); ThreadError on a deadlock, TimeoutError when time runs out.")
_op(0x98, "release", "", 1, 0, "concurrency", "Pop a lock held by this thread and release it.")
_op(0x99, "atomic_add", "global", 1, 1, "concurrency",
    "Pop n; add it to the global atomically (checked); push the new value.")
_op(0x9A, "cas", "global", 2, 1, "concurrency",
    "Pop expected, new; if the global equals expected, set it to new, atomically; push true/false.")
_op(0x9B, "threadid", "", 0, 1, "concurrency", "Push the current VM thread's id (0 for the main thread).")
_op(0x9C, "supervise", "func int", "n", 1, "concurrency",
    "Like spawn, but a thread that fails is restarted (up to the runtime's restart budget); push its handle.")

# --- resources: regions and explicit handles (0xA0-0xAF) ---------------------
_op(0xA0, "region", "", 0, 0, "resources",
    "Open a region: handles allocated until its endregion are freed when it ends (or unwinds).")
_op(0xA1, "endregion", "", 0, 0, "resources", "Close the innermost region, releasing what it owns.")
_op(0xA2, "alloc", "", 1, 1, "resources",
    "Pop a shape (int or list of ints); push a handle to a new zeroed tensor owned by the current scope.")
_op(0xA3, "free", "", 1, 0, "resources", "Pop a handle and release it now (double free is a ResourceError).")

OPS: tuple[Op, ...] = tuple(sorted(_ROWS, key=lambda o: o.code))
BY_NAME: dict[str, Op] = {o.name: o for o in OPS}
BY_CODE: dict[int, Op] = {o.code: o for o in OPS}
FAMILIES: tuple[str, ...] = tuple(dict.fromkeys(o.family for o in OPS))

# Opcode ranges kept free for the services that extend the ISA (documented so
# that binary files made today stay valid when those rows land).
RESERVED = {
    "concurrency (more primitives)": (0x9D, 0x9F),
    "resources (more primitives)": (0xA4, 0xAF),
}

ERROR_FIELDS = ("type", "category", "code", "message", "traceback", "recoverable")


def check_name(op: str, text: str) -> None:
    """Names an instruction accepts; ValueError if not (the assembler and the verifier use it)."""
    if op == "try":
        if text != "*" and text not in ERROR_TYPES and text not in CATEGORIES:
            raise ValueError(f"'{text}' is not an error type or category"
                               f"{suggest(text, list(ERROR_TYPES) + list(CATEGORIES))}")
    elif op == "throw":
        if text not in ERROR_TYPES or text in ("LimitExceeded", "InternalError", "VerificationError"):
            raise ValueError(f"cannot throw '{text}'{suggest(text, ERROR_TYPES)}")
    elif op == "errfield" and text not in ERROR_FIELDS:
        raise ValueError(f"unknown error field '{text}'{suggest(text, ERROR_FIELDS)}")



assert len(BY_NAME) == len(OPS) and len(BY_CODE) == len(OPS), "duplicate opcode row"
assert all(0 <= o.code < 0x100 for o in OPS)
