"""The static program model: ``Module`` and ``CodeObject`` (immutable).

A Module is what the assembler produces from ``.nbc`` text and the codec from
``.nbcb`` bytes; the two encodings round-trip exactly.  Operands are stored
already encoded as ints (constant index, local index, pc, ...), so the binary
codec and the verifier treat every instruction uniformly.

Constants are compared by a *typed key*: ``1``, ``1.0`` and ``true`` are three
different constants although Python calls them equal.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field

Const = int | float | str | bool | None
Instr = tuple[int, tuple[int, ...]]  # (opcode, encoded operands)


def const_key(v: Const) -> tuple:
    """A hashable key that tells 1, 1.0, true, -0.0 and nan apart."""
    if isinstance(v, float):
        return ("float", v.hex() if not math.isnan(v) else "nan")
    return (type(v).__name__, v)


@dataclass(frozen=True)
class CodeObject:
    name: str
    nparams: int
    locals: tuple[str, ...]  # parameters first
    code: tuple[Instr, ...]
    lines: tuple[int, ...]  # source line of each instruction (0 = unknown)

    @property
    def params(self) -> tuple[str, ...]:
        return self.locals[: self.nparams]

    def digest(self) -> str:
        """A hash of the function's code (not its debug info)."""
        h = hashlib.sha256(repr((self.name, self.nparams, len(self.locals), self.code)).encode())
        return h.hexdigest()[:16]


@dataclass(frozen=True, eq=False)
class Module:
    name: str
    consts: tuple[Const, ...]
    names: tuple[str, ...]
    globals: tuple[tuple[str, int], ...]  # (name, const index of the initial value, -1 = nil)
    imports: tuple[str, ...]
    functions: tuple[CodeObject, ...]
    source: str = "<input>"
    import_lines: tuple[int, ...] = field(default=(), compare=False)  # where each .import is (not part of identity)
    func_index: dict[str, int] = field(default_factory=dict, compare=False, repr=False)
    verified: list = field(default_factory=list, compare=False, repr=False)  # memo: the verifier's FuncInfos

    def __post_init__(self) -> None:
        if not self.func_index:
            self.func_index.update({f.name: i for i, f in enumerate(self.functions)})

    def function(self, name: str) -> CodeObject | None:
        i = self.func_index.get(name)
        return None if i is None else self.functions[i]

    def key(self, debug: bool = True) -> tuple:
        """Everything that defines the module, with constants typed."""
        funcs = tuple((f.name, f.nparams, f.locals, f.code) + ((f.lines,) if debug else ())
                      for f in self.functions)
        base = (self.name, tuple(const_key(c) for c in self.consts), self.names, self.globals,
                self.imports, funcs)
        return base + ((self.source,) if debug else ())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Module) and self.key() == other.key()

    def __hash__(self) -> int:
        return hash(self.key())

    def same_code(self, other: "Module") -> bool:
        """Equal ignoring debug information (lines, source name)."""
        return self.key(debug=False) == other.key(debug=False)
