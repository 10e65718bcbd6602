"""Plain-text rendering of errors: diagnostics with carets, NBC tracebacks.

Kept free of rich so that ``nbcvm run`` can report a failure without loading
it.  Errors carry positions; the text is drawn only here.
"""

from __future__ import annotations

from pathlib import Path

from nbcvm.errors import Diagnostic, InputError, VMError

MAX_SHOWN = 20  # diagnostics printed in full; the rest are counted


def diagnostic(d: Diagnostic, kind: str = "error") -> str:
    head = f"{d.location()}: {kind}: {d.message}"
    if d.source_line is None or not d.line:
        return head
    src = d.source_line.expandtabs(1)
    gutter = f"{d.line:>5} | "
    caret = " " * (len(gutter) - 2) + "| " + " " * max(0, d.col - 1) + "^" * max(1, d.width)
    return f"{head}\n{gutter}{src}\n{caret}"


def input_error(err: InputError) -> str:
    shown = [diagnostic(d, err.kind) for d in err.diagnostics[:MAX_SHOWN]]
    extra = len(err.diagnostics) - MAX_SHOWN
    if extra > 0:
        shown.append(f"... and {extra} more error(s)")
    elif len(err.diagnostics) > 1:
        shown.append(f"{len(err.diagnostics)} errors")
    return "\n".join(shown)


def _source_line(path: str, line: int, cache: dict[str, list[str]]) -> str | None:
    if line <= 0:
        return None
    if path not in cache:
        try:
            cache[path] = Path(path).read_text(encoding="utf-8", errors="replace").split("\n")
        except OSError:
            cache[path] = []
    lines = cache[path]
    return lines[line - 1].strip() if line <= len(lines) else None


REPEAT_SHOWN = 3  # identical consecutive frames shown before they are counted instead


def _flush_repeats(out: list[str], repeats: int) -> None:
    if repeats > REPEAT_SHOWN:
        out.append(f"  [previous frame repeated {repeats - REPEAT_SHOWN} more times]")


def traceback(err: VMError) -> str:
    """An NBC traceback, outermost frame first (most recent call last)."""
    out = ["Traceback (most recent call last):"]
    cache: dict[str, list[str]] = {}
    prev, repeats = None, 0
    for e in err.traceback:
        key = (e.module, e.function, e.line, e.pc)
        if key == prev:
            repeats += 1
            if repeats > REPEAT_SHOWN:
                continue
        else:
            _flush_repeats(out, repeats)
            prev, repeats = key, 0
        out.append(f"  {e.module}.{e.function}  {e.file}:{e.line}  pc {e.pc}: {e.op}")
        src = _source_line(e.file, e.line, cache)
        if src:
            out.append(f"      {src}")
    _flush_repeats(out, repeats)
    out.append(f"{err.type_name} (code {err.etype.code}): {err.message}")
    return "\n".join(out)
