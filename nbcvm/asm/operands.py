"""Code per operand kind: how each kind is parsed from a token and printed back.

Every operand is encoded as an int (constant index, local index, pc, ...), so
the binary codec needs nothing per kind; parsing and printing do, and live here
together so that a new kind is one entry in ``PARSERS`` and one in ``PRINTERS``.
"""

from __future__ import annotations

import math
from typing import Callable, Protocol

from nbcvm.asm.lexer import Token, encode_string
from nbcvm.bytecode.model import CodeObject, Const, Module
from nbcvm.isa import OperandKind, check_name

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


class OperandError(Exception):
    pass


class Scope(Protocol):
    """What the assembler offers an operand parser."""

    def const(self, value: Const) -> int: ...
    def name(self, text: str) -> int: ...
    locals: dict[str, int]
    labels: dict[str, int]
    globals: dict[str, int]
    functions: set[str]
    imports: set[str]
    module_name: str


from nbcvm.errors import suggest  # noqa: E402  (re-exported for the assembler)


def _ident(tok: Token, what: str) -> str:
    if tok.kind != "ident":
        raise OperandError(f"expected {what}, got {tok.text!r}")
    return tok.text


def parse_int(tok: Token, scope: Scope, op: str) -> int:
    if tok.kind != "int":
        raise OperandError(f"expected an int, got {tok.text!r}")
    v = int(tok.value)  # type: ignore[arg-type]
    if not INT64_MIN <= v <= INT64_MAX:
        raise OperandError(f"int {tok.text} is outside the 64-bit range")
    if op != "inc" and v < 0:
        raise OperandError(f"count must not be negative, got {v}")
    return v


def literal(tok: Token) -> Const:
    """The constant a token denotes (shared with the CLI's argument parser)."""
    if tok.kind == "int":
        v = int(tok.value)  # type: ignore[arg-type]
        if not INT64_MIN <= v <= INT64_MAX:
            raise OperandError(f"int {tok.text} is outside the 64-bit range")
        return v
    if tok.kind == "float":
        return float(tok.value)  # type: ignore[arg-type]
    if tok.kind == "string":
        return str(tok.value)
    if tok.kind == "ident":
        words = {"true": True, "false": False, "nil": None, "inf": math.inf, "+inf": math.inf,
                 "-inf": -math.inf, "nan": math.nan}
        if tok.text in words:
            return words[tok.text]
    raise OperandError(f"expected a constant (number, string, true, false, nil), got {tok.text!r}")


def parse_const(tok: Token, scope: Scope, op: str) -> int:
    return scope.const(literal(tok))


def parse_local(tok: Token, scope: Scope, op: str) -> int:
    name = _ident(tok, "a local name")
    if name not in scope.locals:
        raise OperandError(f"unknown local '{name}'{suggest(name, scope.locals)}")
    return scope.locals[name]


def parse_global(tok: Token, scope: Scope, op: str) -> int:
    name = _ident(tok, "a global name")
    if name not in scope.globals:
        raise OperandError(f"unknown global '{name}' (declare it with .global)"
                           f"{suggest(name, scope.globals)}")
    return scope.globals[name]


def parse_label(tok: Token, scope: Scope, op: str) -> int:
    name = _ident(tok, "a label")
    if name not in scope.labels:
        raise OperandError(f"unknown label '{name}'{suggest(name, scope.labels)}")
    return scope.labels[name]


def parse_func(tok: Token, scope: Scope, op: str) -> int:
    name = _ident(tok, "a function name")
    if "." in name:
        mod, _, fn = name.rpartition(".")
        if mod == scope.module_name:
            name = fn
        elif mod not in scope.imports:
            raise OperandError(f"module '{mod}' is not imported (add .import {mod})"
                               f"{suggest(mod, scope.imports)}")
        elif not fn:
            raise OperandError(f"expected a function name after '{mod}.'")
    if "." not in name and name not in scope.functions:
        raise OperandError(f"unknown function '{name}'{suggest(name, scope.functions)}")
    return scope.name(name)


def parse_name(tok: Token, scope: Scope, op: str) -> int:
    text = "*" if tok.kind == "star" else _ident(tok, "a name")
    try:
        check_name(op, text)
    except ValueError as e:
        raise OperandError(str(e)) from None
    return scope.name(text)


PARSERS: dict[OperandKind, Callable[[Token, Scope, str], int]] = {
    OperandKind.INT: parse_int,
    OperandKind.CONST: parse_const,
    OperandKind.LOCAL: parse_local,
    OperandKind.GLOBAL: parse_global,
    OperandKind.LABEL: parse_label,
    OperandKind.FUNC: parse_func,
    OperandKind.NAME: parse_name,
}


def format_const(v: Const) -> str:
    if v is None:
        return "nil"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        r = repr(v)
        return r if ("." in r or "e" in r) else r + ".0"
    if isinstance(v, int):
        return str(v)
    return encode_string(v)


def label_name(pc: int) -> str:
    return f"L{pc}"


PRINTERS: dict[OperandKind, Callable[[int, Module, CodeObject], str]] = {
    OperandKind.INT: lambda v, m, f: str(v),
    OperandKind.CONST: lambda v, m, f: format_const(m.consts[v]),
    OperandKind.LOCAL: lambda v, m, f: f.locals[v],
    OperandKind.GLOBAL: lambda v, m, f: m.globals[v][0],
    OperandKind.LABEL: lambda v, m, f: label_name(v),
    OperandKind.FUNC: lambda v, m, f: m.names[v],
    OperandKind.NAME: lambda v, m, f: m.names[v],
}

assert set(PARSERS) == set(OperandKind) == set(PRINTERS), "operand kind without parser/printer"
