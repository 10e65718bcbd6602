"""Disassembler: ``Module`` -> ``.nbc`` text that re-assembles to an equal Module.

Labels are named after their target pc (``L12``).  Debug information is kept
with ``.source`` and ``.line`` directives unless ``debug=False``, so that text
-> binary -> text -> binary is byte-identical.
"""

from __future__ import annotations

from nbcvm.asm.lexer import encode_string
from nbcvm.asm.operands import PRINTERS, format_const, label_name
from nbcvm.bytecode.model import Module
from nbcvm.isa import BY_CODE, OperandKind


def disassemble(module: Module, *, debug: bool = True) -> str:
    out = [f".module {module.name}"]
    if debug:
        out.append(f".source {encode_string(module.source)}")
    out += [f".import {name}" for name in module.imports]
    for name, init in module.globals:
        out.append(f".global {name}" + (f" {format_const(module.consts[init])}" if init >= 0 else ""))
    for f in module.functions:
        out.append("")
        out.append(" ".join([".func", f.name, *f.params]))
        extra = f.locals[f.nparams:]
        if extra:
            out.append("    .local " + " ".join(extra))
        targets = {
            args[i]
            for opc, args in f.code
            for i, k in enumerate(BY_CODE[opc].operands)
            if k is OperandKind.LABEL
        }
        line = None
        for pc, (opc, args) in enumerate(f.code):
            if pc in targets:
                out.append(f"{label_name(pc)}:")
            if debug and f.lines[pc] != line:
                out.append(f"    .line {f.lines[pc]}")
            line = f.lines[pc] + 1  # .line numbers run on by one per instruction
            op = BY_CODE[opc]
            ops = [PRINTERS[k](a, module, f) for a, k in zip(args, op.operands)]
            out.append("    " + " ".join([op.name, *ops]))
        if len(f.code) in targets:
            out.append(f"{label_name(len(f.code))}:")
        out.append(".end")
    return "\n".join(out) + "\n"
