"""Reading program files: text or binary, told apart by content, not extension."""

from __future__ import annotations

from pathlib import Path

from nbcvm.bytecode.model import Module
from nbcvm.errors import Diagnostic, FormatError, InputError

MAGIC = b"NBCB"  # first bytes of every .nbcb file (see bytecode/codec.py)
MAX_SOURCE_BYTES = 64 << 20


def read_bytes(path: str | Path) -> bytes:
    p = Path(path)
    try:
        if p.is_dir():
            raise InputError("is a directory, not a program file", str(path))
        size = p.stat().st_size
        if size > MAX_SOURCE_BYTES:
            raise InputError(f"file is {size} bytes; the limit is {MAX_SOURCE_BYTES}", str(path))
        return p.read_bytes()
    except FileNotFoundError:
        raise InputError("no such file", str(path)) from None
    except PermissionError:
        raise InputError("permission denied", str(path)) from None
    except OSError as e:
        raise InputError(f"cannot read: {e.strerror or e}", str(path)) from None


def is_binary(data: bytes) -> bool:
    return data[:4] == MAGIC


def decode_text(data: bytes, path: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        col = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        raise InputError(Diagnostic(f"not UTF-8 text (byte 0x{data[e.start]:02x}); "
                                    "is this a .nbcb file with a damaged header?",
                                    path=path, line=line, col=col)) from None


def module_from_bytes(data: bytes, path: str, module_name: str | None = None) -> Module:
    if is_binary(data):
        from nbcvm.bytecode.codec import decode

        return decode(data, path)
    if b"\0" in data[:4096]:
        raise FormatError("binary data that is not an NBC binary (no NBCB magic)", path)
    from nbcvm.asm.assembler import assemble

    return assemble(decode_text(data, path), path, module_name=module_name)


def load_file(path: str | Path, module_name: str | None = None) -> Module:
    """Read a .nbc or .nbcb file into a Module (not yet verified)."""
    return module_from_bytes(read_bytes(path), str(path), module_name)
