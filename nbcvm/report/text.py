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


REPEAT_SHOWN = 3  # repetitions shown (after the first) of a repeating run of frames; the rest are counted
MAX_PERIOD = 4  # the longest run of frames recognised as repeating (mutual recursion of up to 4)


def _collapse(keys: list) -> list[tuple[int, int, int]]:
    """(start, period, hidden repetitions) for each stretch where a run of ``period`` frames occurs
    more than REPEAT_SHOWN + 1 times in a row; the period that covers most frames wins (the
    shortest, on a tie)."""
    spans, i, n = [], 0, len(keys)
    while i < n:
        best = None
        for p in range(1, MAX_PERIOD + 1):
            reps = 1
            while i + (reps + 1) * p <= n and keys[i + reps * p:i + (reps + 1) * p] == keys[i:i + p]:
                reps += 1
            if reps > REPEAT_SHOWN + 1 and (best is None or reps * p > best[1] * best[2]):
                best = (i, p, reps)
        if best is None:
            i += 1
            continue
        start, p, reps = best
        spans.append((start, p, reps - REPEAT_SHOWN - 1))
        i = start + reps * p
    return spans


def traceback(err: VMError) -> str:
    """An NBC traceback, outermost frame first (most recent call last)."""
    out = ["Traceback (most recent call last):"]
    cache: dict[str, list[str]] = {}
    entries = err.traceback
    spans = {start: (p, extra) for start, p, extra in
             _collapse([(e.module, e.function, e.line, e.pc) for e in entries])}
    i = 0
    while i < len(entries):
        shown = [i]
        span = spans.get(i)
        if span is not None:
            p, extra = span
            shown = range(i, i + (REPEAT_SHOWN + 1) * p)
        for k in shown:
            e = entries[k]
            out.append(f"  {e.module}.{e.function}  {e.file}:{e.line}  pc {e.pc}: {e.op}")
            src = _source_line(e.file, e.line, cache)
            if src:
                out.append(f"      {src}")
        if span is not None:
            what = "previous frame" if p == 1 else f"previous {p} frames"
            out.append(f"  [{what} repeated {extra} more times]")
            i += (REPEAT_SHOWN + 1 + extra) * p
        else:
            i += 1
    out.append(f"{err.type_name} (code {err.etype.code}): {err.message}")
    return "\n".join(out)
