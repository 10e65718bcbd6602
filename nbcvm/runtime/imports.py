"""ImportManager: one mechanism for NBC modules and native modules.

Modules load lazily -- on the first call into them -- and exactly once, even
when many VM threads race for the same module: the first thread to ask
becomes the loader, the others wait on its event.  Each module has a record:
state (unloaded, loading, loaded, failed), kind, path, load time, and on
failure the reason and where.

A module's optional ``init`` function runs when it loads.  If initialising a
module needs, through a chain of other initialisations, the module itself, the
import can never finish: that is an ImportError naming the whole cycle
(``a -> b -> c -> a``).  Cycles of plain references (a calls b, b calls a,
after both are loaded) are fine.  Two threads each loading one module of such
a cycle would wait on each other; the wait-for chain between loaders is
followed before waiting, so that case is the same ImportError, not a hang.
"""

from __future__ import annotations

import os
import threading
from contextlib import contextmanager
import time
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from nbcvm.errors import InputError, VMError

LOAD_WAIT_SLICE = 0.05  # seconds between re-checks while another thread loads a module
# native modules that touch the host and so can fail transiently: always guarded by
# the recovery handler (pure modules are guarded only while faults are injected)
HOST_NATIVES = frozenset({"time", "fs", "env"})


class State(str, Enum):
    UNLOADED = "unloaded"
    LOADING = "loading"
    LOADED = "loaded"
    FAILED = "failed"


@dataclass
class ModuleRecord:
    name: str
    kind: str = "nbc"  # nbc | native
    state: State = State.UNLOADED
    path: str | None = None
    seconds: float = 0.0
    error: str | None = None
    where: str | None = None  # who asked for it: module (file:line)
    instance: Any = None
    owner: int | None = None  # thread id of the loader while LOADING
    done: threading.Event = field(default_factory=threading.Event)

    def to_dict(self) -> dict:
        return {"name": self.name, "kind": self.kind, "state": self.state.value, "path": self.path,
                "seconds": round(self.seconds, 6), "error": self.error, "where": self.where}


def search_path_from(program: str | Path | None, extra: tuple[str, ...] = ()) -> list[Path]:
    """The program's folder, then --path entries, then NBCPATH."""
    paths: list[Path] = []
    if program is not None:
        paths.append(Path(program).resolve().parent)
    paths += [Path(p) for p in extra]
    paths += [Path(p) for p in os.environ.get("NBCPATH", "").split(os.pathsep) if p]
    return paths


class ImportManager:
    def __init__(self, runtime: Any, search_path: list[Path] | None = None,
                 natives: dict | None = None):
        from nbcvm.vm import natives as _natives

        self.rt = runtime
        self.search_path = list(search_path or [])
        self.natives = dict(natives if natives is not None else _natives.REGISTRY)
        self.records: dict[str, ModuleRecord] = {}
        self._lock = threading.Lock()  # guards records and the wait-for map
        self._waiting: dict[int, str] = {}  # thread id -> module it waits for
        self._tls = threading.local()

    # -- resolution ------------------------------------------------------------
    def find(self, name: str) -> Path | None:
        rel = Path(*name.split("."))
        for d in self.search_path:
            for ext in (".nbc", ".nbcb"):
                p = d / (str(rel) + ext)
                if p.is_file():
                    return p
        return None

    def candidates(self, exclude: str = "") -> list[str]:
        names = set(self.natives) | {n for n, r in self.records.items() if r.state is State.LOADED}
        for d in self.search_path:
            if d.is_dir():
                names.update(p.stem for p in d.glob("*.nbc"))
        names.discard(exclude)
        return sorted(names)

    def _stack(self) -> list[str]:
        st = getattr(self._tls, "stack", None)
        if st is None:
            st = self._tls.stack = []
        return st

    # -- loading -----------------------------------------------------------------
    def register(self, name: str, instance: Any, path: str | None, kind: str = "nbc") -> None:
        with self._lock:
            rec = self.records.setdefault(name, ModuleRecord(name, kind))
            rec.state, rec.instance, rec.path = State.LOADED, instance, path
            rec.done.set()

    @contextmanager
    def initialising(self, name: str):
        """Mark a registered module as loading by this thread while its init runs.

        The program's own module is registered before ``init`` runs; while it
        runs, another module's init calling back into it is an init cycle.
        """
        rec = self.records[name]
        with self._lock:
            rec.state, rec.owner = State.LOADING, threading.get_ident()
            rec.done.clear()
        stack = self._stack()
        stack.append(name)
        try:
            yield
        except BaseException as e:
            with self._lock:
                rec.state = State.FAILED
                rec.error = e.message if isinstance(e, VMError) else f"{type(e).__name__}: {e}"
            raise
        else:
            with self._lock:
                rec.state = State.LOADED
        finally:
            stack.pop()
            rec.owner = None
            rec.done.set()

    def get(self, name: str, where: str | None = None) -> Any:
        """The loaded module ``name``, loading it first if needed (once)."""
        rec = self.records.get(name)
        if rec is not None and rec.state is State.LOADED:
            return rec.instance
        me = threading.get_ident()
        with self._lock:
            rec = self.records.get(name)
            if rec is None:
                rec = self.records[name] = ModuleRecord(name, "native" if name in self.natives else "nbc")
            if rec.state is State.LOADED:
                return rec.instance
            if rec.state is State.FAILED:
                raise VMError("ImportError", f"module '{name}' failed to load earlier: {rec.error}")
            if rec.state is State.LOADING:
                if rec.owner == me:
                    stack = self._stack()
                    cycle = stack[stack.index(name):] + [name] if name in stack else [name, name]
                    raise VMError("ImportError", "import cycle during initialisation: "
                                  + " -> ".join(cycle), details={"cycle": cycle})
                chain = self._wait_chain(me, name)
                if chain:
                    raise VMError("ImportError", "import cycle between loading threads: "
                                  + " -> ".join(chain), details={"cycle": chain})
                self._waiting[me] = name
                wait_for = rec
            else:
                rec.state, rec.owner, rec.where = State.LOADING, me, where
                wait_for = None
        if wait_for is not None:
            try:
                # wait as long as the loader is working (a slow init is fine), re-checking
                # for a cycle between loaders and the run's deadline in between
                while not wait_for.done.wait(LOAD_WAIT_SLICE):
                    with self._lock:
                        chain = self._wait_chain(me, name) if wait_for.owner is not None else None
                    if chain:
                        raise VMError("ImportError", "import cycle between loading threads: "
                                      + " -> ".join(chain), details={"cycle": chain})
                    self.rt.meter.check_deadline()
            finally:
                with self._lock:
                    self._waiting.pop(me, None)
            return self.get(name, where)
        return self._load(rec)

    def _wait_chain(self, me: int, name: str) -> list[str] | None:
        """Follow loader -> module it waits for; a path back to ``me`` is a cycle."""
        chain, seen, cur = [name], set(), name
        while True:
            owner = self.records[cur].owner
            if owner == me:
                stack = self._stack()
                head = stack[stack.index(cur):] if cur in stack else [cur]
                return head + chain
            if owner is None or owner in seen or owner not in self._waiting:
                return None
            seen.add(owner)
            cur = self._waiting[owner]
            chain.append(cur)

    def _load(self, rec: ModuleRecord) -> Any:
        stack = self._stack()
        stack.append(rec.name)
        t0 = time.perf_counter()
        try:
            from nbcvm.runtime.capabilities import CAPABILITY_MODULES

            if rec.name in CAPABILITY_MODULES and rec.name not in self.natives:
                raise VMError("PermissionError", f"module '{rec.name}' reaches the host and was not "
                              f"granted; the runner must allow it with {CAPABILITY_MODULES[rec.name]}")
            if rec.name in self.natives:
                from nbcvm.vm.natives import instantiate

                inst = instantiate(rec.name, self.rt, self._native_factory(rec.name))
                rec.kind = "native"
                handler = getattr(self.rt, "errors", None)
                if handler is not None and (handler.faults or rec.name in HOST_NATIVES):
                    for nf in inst.functions.values():  # retry / circuit breaker / injection
                        nf.fn = handler.guard_native(nf.qualname, nf.fn)
            else:
                path = self.find(rec.name)
                if path is None:
                    from nbcvm.errors import suggest

                    raise VMError("ImportError", f"no module named '{rec.name}'"
                                  f"{suggest(rec.name, self.candidates(rec.name))} "
                                  f"(searched {', '.join(str(p) for p in self.search_path) or 'nothing'})")
                rec.path = str(path)
                try:
                    inst = self.rt.instantiate_file(path, rec.name)
                except InputError as e:
                    raise VMError("ImportError", f"module '{rec.name}' is invalid: {e}") from None
            rec.instance = inst
            if not getattr(inst, "is_native", False):
                self.rt.run_init(inst)  # still LOADING: a cycle back to it is detected
            with self._lock:
                rec.state = State.LOADED
        except BaseException as e:
            with self._lock:
                rec.state = State.FAILED
                rec.error = e.message if isinstance(e, VMError) else f"{type(e).__name__}: {e}"
                rec.instance = None
            raise
        finally:
            rec.seconds = time.perf_counter() - t0
            rec.owner = None
            stack.pop()
            rec.done.set()
        return inst

    def _native_factory(self, name: str):
        entry = self.natives[name]
        return entry[0] if isinstance(entry, tuple) else entry

    def status(self) -> list[dict]:
        with self._lock:
            return [r.to_dict() for r in self.records.values()]
