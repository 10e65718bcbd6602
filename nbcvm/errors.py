"""One error tree for everything nbcvm reports.

Two branches, told apart by who is at fault:

* ``InputError`` -- the input could not be accepted (unreadable file, assembler
  or verifier diagnostics, a malformed binary, bad usage).  Exit code 2.
  Each carries ``Diagnostic`` records with a position; the text with carets is
  drawn by ``nbcvm.report.render``, never here.
* ``VMError`` -- a running NBC program failed.  It is also the NBC *error
  value* a ``try`` region catches: it has an ``ErrorType`` (name, stable
  numeric code, category, severity, recoverable) and the NBC traceback
  collected while unwinding.  Uncaught, exit code 1.

Host (Python) exceptions raised while executing are mapped onto NBC error
types by their *type* in ``HOST_MAP``, never by message text.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass


# ---------------------------------------------------------------------------
# Input errors (exit 2)


@dataclass(frozen=True)
class Diagnostic:
    """One problem in an input, with where it is."""

    message: str
    path: str = "<input>"
    line: int = 0  # 1-based; 0 when the input has no lines (binary)
    col: int = 0  # 1-based
    width: int = 1  # caret width
    source_line: str | None = None
    function: str | None = None  # verifier: the function, pc and instruction
    pc: int | None = None
    op: str | None = None

    def location(self) -> str:
        if self.function is not None:  # verifier: function, pc, instruction
            where = f"{self.path}:{self.line}" if self.line else self.path
            at = f" at pc {self.pc} ({self.op})" if self.pc is not None else ""
            return f"{where}: in function '{self.function}'{at}"
        if self.line:
            return f"{self.path}:{self.line}:{self.col}"
        return self.path


class NBCError(Exception):
    """Base of every error nbcvm raises on purpose."""


class InputError(NBCError):
    """Input that nbcvm refuses; carries one or more diagnostics."""

    kind = "error"

    def __init__(self, diagnostics: list[Diagnostic] | Diagnostic | str, path: str = "<input>"):
        if isinstance(diagnostics, str):
            diagnostics = Diagnostic(diagnostics, path=path)
        if isinstance(diagnostics, Diagnostic):
            diagnostics = [diagnostics]
        self.diagnostics: list[Diagnostic] = list(diagnostics)
        first = self.diagnostics[0]
        super().__init__(f"{first.location()}: {first.message}")


class AsmError(InputError):
    kind = "syntax error"


class VerifyError(InputError):
    kind = "verify error"


class FormatError(InputError):
    kind = "format error"


class UsageError(InputError):
    kind = "usage error"


# ---------------------------------------------------------------------------
# NBC runtime error types (stable codes; the table is the contract)


@dataclass(frozen=True)
class ErrorType:
    name: str
    code: int
    category: str
    parent: str | None
    recoverable: bool
    severity: str  # "error" | "fatal"
    doc: str


ERROR_TYPES: dict[str, ErrorType] = {}


def _et(name: str, code: int, category: str, parent: str | None, doc: str,
        recoverable: bool = True, severity: str = "error") -> None:
    ERROR_TYPES[name] = ErrorType(name, code, category, parent, recoverable, severity, doc)


_et("Error", 1, "any", None, "Root of every NBC error.")
_et("ArithmeticError", 100, "arithmetic", "Error", "Arithmetic failure.")
_et("ZeroDivisionError", 101, "arithmetic", "ArithmeticError", "Division or modulo by zero.")
_et("OverflowError", 102, "arithmetic", "ArithmeticError", "Result outside the 64-bit int range.")
_et("TypeError", 200, "type", "Error", "Operation applied to values of the wrong type.")
_et("ValueError", 201, "type", "Error", "Right type, unacceptable value (e.g. toint \"abc\").")
_et("IndexError", 300, "index", "Error", "List or string index out of range.")
_et("KeyError", 301, "index", "Error", "Map key not present.")
_et("ImportError", 400, "import", "Error", "A module could not be resolved, loaded or linked.")
_et("ResourceError", 500, "resource", "Error", "A resource could not be had, or was misused.")
_et("LimitExceeded", 600, "limit", "Error",
    "A sandbox limit ran out (fuel, depth, time, memory, output). Not catchable.",
    recoverable=False, severity="fatal")
_et("TimeoutError", 700, "timeout", "Error", "An operation did not finish in its time.")
_et("ThreadError", 800, "thread", "Error", "A VM thread failed, or a deadlock was found.")
_et("NativeError", 900, "native", "Error", "A native (host) function failed.")
_et("PermissionError", 901, "native", "NativeError", "A capability was not granted to the program.")
_et("VerificationError", 1000, "verification", "Error", "Bytecode failed verification.",
    recoverable=False, severity="fatal")
_et("UserError", 1100, "user", "Error", "Raised by the program with throw.")
_et("InternalError", 1200, "internal", "Error", "A fault inside nbcvm itself; please report it.",
    recoverable=False, severity="fatal")

CATEGORIES = tuple(dict.fromkeys(t.category for t in ERROR_TYPES.values()))


def type_matches(etype: ErrorType, selector: str) -> bool:
    """Does a catch selector (type name, category, or ``*``) match this type?"""
    if selector in ("*", "Error"):
        return True
    if selector == etype.category:
        return True
    t: ErrorType | None = etype
    while t is not None:
        if t.name == selector:
            return True
        t = ERROR_TYPES.get(t.parent) if t.parent else None
    return False


def is_selector(name: str) -> bool:
    return name == "*" or name in ERROR_TYPES or name in CATEGORIES


@dataclass(frozen=True)
class TraceEntry:
    """One NBC frame of a traceback: innermost last, like Python's."""

    module: str
    function: str
    file: str
    line: int
    pc: int
    op: str

    def to_dict(self) -> dict:
        return {"module": self.module, "function": self.function, "file": self.file,
                "line": self.line, "pc": self.pc, "op": self.op}


class VMError(NBCError):
    """An NBC error value; raised through the host while it unwinds."""

    def __init__(self, type_name: str, message: str, *, details: dict | None = None):
        self.etype: ErrorType = ERROR_TYPES[type_name]
        self.message = message
        self.traceback: list[TraceEntry] = []
        self.seen_frames: set[int] = set()  # frames already in the traceback (see interp)
        self.details: dict = details or {}
        super().__init__(f"{type_name}: {message}")

    @property
    def type_name(self) -> str:
        return self.etype.name

    @property
    def catchable(self) -> bool:
        return self.etype.name != "LimitExceeded"

    def to_dict(self) -> dict:
        t = self.etype
        return {"type": t.name, "code": t.code, "category": t.category, "severity": t.severity,
                "recoverable": t.recoverable, "message": self.message,
                "traceback": [e.to_dict() for e in self.traceback], "details": self.details}


class LimitExceeded(VMError):
    """A sandbox limit ran out; names the limit, the amount used and the maximum."""

    def __init__(self, limit: str, used: float, maximum: float, unit: str = ""):
        self.limit, self.used, self.maximum, self.unit = limit, used, maximum, unit
        u = f" {unit}" if unit else ""
        super().__init__("LimitExceeded", f"{limit} limit exceeded: used {_num(used)}{u} "
                         f"of {_num(maximum)}{u}",
                         details={"limit": limit, "used": used, "max": maximum, "unit": unit})


class Cancelled(LimitExceeded):
    """The run ended (main returned) while this VM thread still ran; not catchable."""

    def __init__(self, why: str):
        VMError.__init__(self, "LimitExceeded", f"cancelled: {why}",
                         details={"limit": "cancelled", "used": 0, "max": 0, "unit": ""})
        self.limit, self.used, self.maximum, self.unit = "cancelled", 0, 0, ""


def _num(x: float) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


@dataclass
class ExitProgram(Exception):
    """``halt`` unwinds the host with this; not an error."""

    code: int = 0


# Host exceptions raised inside instruction handlers or native functions map by
# type.  Order matters: the first isinstance match wins (subclasses first).
HOST_MAP: tuple[tuple[type[BaseException], str], ...] = (
    (ZeroDivisionError, "ZeroDivisionError"),
    (OverflowError, "OverflowError"),
    (FloatingPointError, "ArithmeticError"),
    (ArithmeticError, "ArithmeticError"),
    (KeyError, "KeyError"),
    (IndexError, "IndexError"),
    (TypeError, "TypeError"),
    (ValueError, "ValueError"),
    (RecursionError, "ValueError"),  # e.g. comparing lists nested thousands deep
    (MemoryError, "ResourceError"),
    (TimeoutError, "TimeoutError"),
    (PermissionError, "PermissionError"),
    (OSError, "NativeError"),
)


def from_host(exc: BaseException, context: str = "") -> VMError:
    """Map a host exception to an NBC error by its type (never its text)."""
    if isinstance(exc, VMError):
        return exc
    for py_type, name in HOST_MAP:
        if isinstance(exc, py_type):
            msg = _host_message(exc)
            return VMError(name, f"{context}: {msg}" if context else msg)
    return VMError("InternalError", f"{type(exc).__name__}: {exc}"
                   + (f" (in {context})" if context else ""))


def _host_message(exc: BaseException) -> str:
    if isinstance(exc, KeyError) and exc.args:
        return f"key {exc.args[0]!r} not found"
    text = str(exc)
    return text or type(exc).__name__


def suggest(word: str, options) -> str:
    """`` (did you mean 'x'?)`` for the closest option, or nothing."""
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""
