"""Tokenizer for NBC assembly: one line at a time, positions kept for carets.

A line is ``[label:] [mnemonic|.directive] [operand ...] [; comment]``.
Tokens are identifiers (dots allowed, for ``module.func``), numbers, strings
with escapes, ``*`` and ``name:`` labels.  Nothing here knows the ISA.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from nbcvm.errors import Diagnostic


@dataclass(frozen=True)
class Token:
    kind: str  # ident | directive | label | int | float | string | star
    text: str  # the raw text
    value: object  # decoded value (int, float, str)
    col: int  # 1-based column of the first character


_TOKEN = re.compile(
    r"""
    (?P<ws>[ \t\r\f\v]+)
  | (?P<comment>;.*)
  | (?P<string>"(?:[^"\\\n]|\\.)*"?)
  | (?P<float>[-+]?(?:\d[\d_]*\.\d[\d_]*(?:[eE][-+]?\d+)?|\d[\d_]*[eE][-+]?\d+))
  | (?P<int>[-+]?(?:0[xX][0-9a-fA-F_]+|0[bB][01_]+|\d[\d_]*))
  | (?P<label>[A-Za-z_][\w.$]*:)
  | (?P<directive>\.[A-Za-z_]\w*)
  | (?P<ident>[-+]?[A-Za-z_$][\w.$]*)
  | (?P<star>\*)
    """,
    re.VERBOSE,
)

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", "\\": "\\", '"': '"', "'": "'"}


class LexError(Exception):
    def __init__(self, message: str, col: int, width: int = 1):
        super().__init__(message)
        self.message, self.col, self.width = message, col, width


def decode_string(raw: str, col: int) -> str:
    """Decode a quoted string literal with escapes (\\n \\t \\r \\0 \\\\ \\" \\xHH \\uHHHH)."""
    if len(raw) < 2 or not raw.endswith('"') or raw.endswith('\\"') and _odd_backslashes(raw):
        raise LexError("unterminated string", col, len(raw))
    body, out, i = raw[1:-1], [], 0
    while i < len(body):
        c = body[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        e = body[i + 1] if i + 1 < len(body) else ""
        if e in _ESCAPES:
            out.append(_ESCAPES[e])
            i += 2
        elif e in ("x", "u"):
            n = 2 if e == "x" else 4
            digits = body[i + 2:i + 2 + n]
            if len(digits) != n or not all(d in "0123456789abcdefABCDEF" for d in digits):
                raise LexError(f"bad \\{e} escape: expected {n} hex digits", col + 1 + i, 2 + len(digits))
            cp = int(digits, 16)
            if 0xD800 <= cp <= 0xDFFF:
                raise LexError("surrogate code point in \\u escape", col + 1 + i, 2 + n)
            out.append(chr(cp))
            i += 2 + n
        else:
            raise LexError(f"unknown escape \\{e}", col + 1 + i, 2)
    return "".join(out)


def _odd_backslashes(raw: str) -> bool:
    n = len(raw) - len(raw[:-1].rstrip("\\")) - 1
    return n % 2 == 1


def encode_string(s: str) -> str:
    """Quote a string so that ``decode_string`` gives it back exactly."""
    out = ['"']
    for c in s:
        if c == "\\":
            out.append("\\\\")
        elif c == '"':
            out.append('\\"')
        elif c == "\n":
            out.append("\\n")
        elif c == "\t":
            out.append("\\t")
        elif c == "\r":
            out.append("\\r")
        elif ord(c) < 0x20 or ord(c) == 0x7F:
            out.append(f"\\x{ord(c):02x}")
        elif 0xD800 <= ord(c) <= 0xDFFF or ord(c) > 0xFFFF and not c.isprintable():
            out.append(f"\\u{ord(c):04x}" if ord(c) <= 0xFFFF else c)
        else:
            out.append(c)
    out.append('"')
    return "".join(out)


def tokenize_line(line: str) -> list[Token]:
    """Split one source line into tokens, or raise LexError with a column."""
    toks: list[Token] = []
    pos = 0
    while pos < len(line):
        m = _TOKEN.match(line, pos)
        if not m or m.end() == pos:
            raise LexError(f"unexpected character {line[pos]!r}", pos + 1)
        kind = m.lastgroup
        text = m.group()
        col = pos + 1
        pos = m.end()
        if kind in ("ws", "comment"):
            continue
        # A number glued to letters (12abc) is one bad token, not two.
        if kind in ("int", "float") and pos < len(line) and (line[pos].isalnum() or line[pos] in "_."):
            end = pos
            while end < len(line) and (line[end].isalnum() or line[end] in "_."):
                end += 1
            raise LexError(f"malformed number {line[col - 1:end]!r}", col, end - col + 1)
        if kind == "string":
            toks.append(Token("string", text, decode_string(text, col), col))
        elif kind in ("int", "float"):
            try:
                value: object = (int(text.replace("_", ""), 0) if kind == "int"
                                 else float(text.replace("_", "")))
            except ValueError:
                raise LexError(f"malformed number {text!r}", col, len(text)) from None
            toks.append(Token(kind, text, value, col))
        elif kind == "label":
            toks.append(Token("label", text, text[:-1], col))
        else:
            toks.append(Token(kind, text, text, col))
    return toks


def diag(path: str, lineno: int, line: str, message: str, col: int, width: int = 1) -> Diagnostic:
    return Diagnostic(message, path=path, line=lineno, col=col, width=max(1, width),
                      source_line=line.rstrip("\n"))
