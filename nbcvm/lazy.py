"""Lazy loading of the heavy optional libraries (numpy, numba, rich).

``nbcvm run hello.nbc`` must not pay for numpy or numba.  Each library is a
``LazyModule``: imported on first ``get()``, exactly once even when threads
race, and when it cannot be imported the reason is kept (``reason``) and
reported, never swallowed by a bare ``try/except``.  The runtime's
ImportManager reports these beside NBC modules.
"""

from __future__ import annotations

import importlib
import threading
import time
from types import ModuleType


class LazyModule:
    def __init__(self, name: str, purpose: str):
        self.name, self.purpose = name, purpose
        self._module: ModuleType | None = None
        self._reason: str | None = None
        self._lock = threading.Lock()
        self.load_seconds = 0.0

    @property
    def loaded(self) -> bool:
        return self._module is not None

    def _load(self) -> None:
        with self._lock:
            if self._module is not None or self._reason is not None:
                return
            t0 = time.perf_counter()
            try:
                self._module = importlib.import_module(self.name)
            except ImportError as e:  # the reason is kept and reported, see ``reason``
                self._reason = f"{type(e).__name__}: {e}"
            self.load_seconds = time.perf_counter() - t0

    @property
    def installed(self) -> bool:
        """Could it be imported?  (Looks for the package only: nothing is imported.)"""
        if self._module is not None:
            return True
        if self._reason is not None:
            return False
        import importlib.util

        try:
            return importlib.util.find_spec(self.name) is not None
        except (ImportError, ValueError):
            return False

    @property
    def available(self) -> bool:
        self._load()
        return self._module is not None

    @property
    def reason(self) -> str | None:
        self._load()
        return self._reason

    def get(self) -> ModuleType:
        """The module, or ImportError naming what it is needed for and why it failed."""
        m = self._module
        if m is not None:  # the common case: no lock once loaded
            return m
        self._load()
        if self._module is None:
            raise ImportError(f"{self.name} is needed for {self.purpose} but cannot be "
                              f"imported ({self._reason})")
        return self._module


NUMPY = LazyModule("numpy", "tensors")
NUMBA = LazyModule("numba", "the JIT tier")
REGISTRY = {m.name: m for m in (NUMPY, NUMBA)}
