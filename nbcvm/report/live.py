"""Live progress on stderr for long-running tools (only drawn on a terminal)."""

from __future__ import annotations

import time

from rich.console import Console


class ProgressLine:
    """Callable ``(label, done, total)`` that redraws one status line at most 10x/s."""

    def __init__(self, console: Console):
        self.console = console
        self._last = 0.0
        self._status = console.status("")
        self._started = False

    def __call__(self, label: str, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self._last < 0.1:
            return
        self._last = now
        if not self._started:
            self._status.start()
            self._started = True
        frac = f"{done}/{total}" if total else f"{done}"
        self._status.update(f"[bold]{label}[/]: {frac} calls")

    def close(self) -> None:
        if self._started:
            self._status.stop()
