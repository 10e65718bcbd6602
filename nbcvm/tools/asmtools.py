"""Drivers for ``asm``, ``disasm`` and ``verify``."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from nbcvm.asm.disasm import disassemble
from nbcvm.bytecode.model import Module
from nbcvm.bytecode.verifier import verify
from nbcvm.errors import InputError
from nbcvm.runtime.loader import load_file


def disasm_file(path: str, debug: bool = True) -> str:
    """Disassemble a verified module (a decodable but invalid binary is a VerifyError)."""
    module = load_file(path)
    verify(module)
    return disassemble(module, debug=debug)


@dataclass(frozen=True)
class VerifyResult:
    path: str
    ok: bool
    module: str | None
    functions: int
    instructions: int
    max_stack: int
    seconds: float
    errors: tuple[str, ...]  # one line each: "where: kind: message"
    error: InputError | None = field(default=None, compare=False)  # for the full text (source + caret)

    def to_dict(self) -> dict:
        return {"path": self.path, "ok": self.ok, "module": self.module, "functions": self.functions,
                "instructions": self.instructions, "max_stack": self.max_stack,
                "seconds": round(self.seconds, 6), "errors": list(self.errors)}


def verify_file(path: str) -> VerifyResult:
    """Assemble/decode and verify one file; problems are collected, not raised."""
    t0 = time.perf_counter()
    module: Module | None = None
    try:
        module = load_file(path)
        infos = verify(module)
    except InputError as e:
        return VerifyResult(path, False, module.name if module else None, 0, 0, 0,
                            time.perf_counter() - t0,
                            tuple(f"{d.location()}: {e.kind}: {d.message}" for d in e.diagnostics), e)
    return VerifyResult(path, True, module.name, len(module.functions),
                        sum(len(f.code) for f in module.functions),
                        max((i.max_stack for i in infos), default=0), time.perf_counter() - t0, ())


def assemble_file(src: str, out: str | None) -> tuple[Module, bytes | None]:
    """Assemble and verify; with ``out``, write the binary encoding there."""
    module = load_file(src)
    verify(module)
    data = None
    if out is not None:
        from nbcvm.bytecode.codec import encode

        data = encode(module)
        try:
            Path(out).write_bytes(data)
        except OSError as e:
            raise InputError(f"cannot write: {e.strerror or e}", out) from None
    return module, data
