"""The Runtime facade: one object owns the services every tool drives.

``Runtime`` holds the limits meter, the ImportManager, the output stream and
the loaded module instances.  ``run_main`` runs a program the way ``nbcvm
run`` does and returns a ``RunOutcome``; tools (profile, leak-check, stress)
build on the same calls.  Nothing here prints to the user except the
program's own output.
"""

from __future__ import annotations

import resource
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from nbcvm.bytecode.model import Module
from nbcvm.bytecode.verifier import verify
from nbcvm.errors import ExitProgram, UsageError, VMError
from nbcvm.runtime.imports import ImportManager, search_path_from
from nbcvm.runtime.limits import Limits, Meter
from nbcvm.vm.compile import Fn
from nbcvm.vm.interp import execute
from nbcvm.vm.values import to_str

if TYPE_CHECKING:
    from nbcvm.runtime.capabilities import Grants
    from nbcvm.runtime.recovery import RecoveryPolicy

INIT = "init"  # a module's initialiser, run once when the module loads


class Output:
    """The program's stdout: counted against ``max_output``; one print is one write."""

    def __init__(self, stream: IO[str], meter: Meter):
        self.stream, self.meter = stream, meter
        self._lock = threading.Lock()

    def write(self, s: str) -> None:
        n = len(s) if s.isascii() else len(s.encode("utf-8", "surrogatepass"))
        with self._lock:
            self.meter.charge_output(n)
            self.stream.write(s)

    def flush(self) -> None:
        try:
            self.stream.flush()
        except (OSError, ValueError):  # closed pipe or stream: nothing left to flush to
            pass


class ModuleInstance:
    """A verified module loaded into a runtime: its globals and functions."""

    is_native = False

    def __init__(self, runtime: "Runtime", module: Module):
        if not module.verified:  # a Module never changes, so one verification serves every runtime
            module.verified.append(verify(module))
        infos = module.verified[0]
        self.runtime = runtime
        self.module = module
        self.name = module.name
        self.globals: list = [module.consts[i] if i >= 0 else None for _, i in module.globals]
        self.fns: dict[str, Fn] = {f.name: Fn(f, info, self) for f, info in zip(module.functions, infos)}
        jit = getattr(runtime, "jit", None)
        if jit is not None:  # the JIT tier (nbcvm/jit) sets up its entry points
            jit.attach(self)

    def lookup(self, fname: str) -> Fn | None:
        return self.fns.get(fname)

    def resolve(self, qualified: str, nargs: int) -> Any:
        """Resolve ``module.function`` at its first call (loads the module)."""
        mod, _, fname = qualified.rpartition(".")
        target = self.runtime.imports.get(mod, where=self.name)
        callee = target.lookup(fname)
        if callee is None:
            from nbcvm.errors import suggest

            names = target.functions if target.is_native else target.fns
            raise VMError("ImportError", f"module '{mod}' has no function '{fname}'{suggest(fname, names)}")
        arity = callee.arity if callee.is_native else callee.nparams
        if arity >= 0 and arity != nargs:
            raise VMError("TypeError", f"{qualified} takes {arity} argument(s), called with {nargs}")
        return callee


@dataclass(frozen=True)
class RunStats:
    steps: int
    calls: int
    max_depth: int
    seconds: float
    peak_rss_bytes: int
    output_bytes: int

    @property
    def ips(self) -> float:
        return self.steps / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict:
        return {"instructions": self.steps, "calls": self.calls, "max_depth": self.max_depth,
                "seconds": round(self.seconds, 6), "instructions_per_second": round(self.ips),
                "peak_rss_bytes": self.peak_rss_bytes, "output_bytes": self.output_bytes}


@dataclass(frozen=True)
class RunOutcome:
    exit_code: int
    result: Any
    error: VMError | None
    stats: RunStats
    recovery: dict | None = None  # fault-injection table and recovery events, when any
    cancelled_threads: int = 0  # VM threads still running after main's grace, then cancelled
    jit: dict | None = None  # the JIT's decisions and events (JitManager.report), when it is on

    def to_dict(self) -> dict:
        return {"exit_code": self.exit_code,
                "result": None if self.result is None else to_str(self.result),
                "error": self.error.to_dict() if self.error else None, "stats": self.stats.to_dict(),
                "recovery": self.recovery, "cancelled_threads": self.cancelled_threads, "jit": self.jit}


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


class Runtime:
    def __init__(self, limits: Limits | None = None, *, stdout: IO[str] | None = None,
                 seed: int = 0, search_path: list[Path] | None = None, argv: tuple[str, ...] = (),
                 grants: "Grants | None" = None, faults: dict[str, float] | None = None,
                 recovery: "RecoveryPolicy | None" = None, jit: str = "off"):
        from nbcvm.runtime.capabilities import Grants, capability_natives
        from nbcvm.runtime.recovery import RuntimeErrorHandler
        from nbcvm.vm.natives import REGISTRY

        self.limits = limits or Limits()
        self.meter = Meter(self.limits)
        self.executor = execute  # the interpreter loop; nbcvm profile swaps in an instrumented one
        self.seed = seed
        self.argv = tuple(argv)
        self.output = Output(stdout if stdout is not None else sys.stdout, self.meter)
        from nbcvm.runtime.threads import ThreadManager

        from nbcvm.runtime.resources import ResourceManager

        self.errors = RuntimeErrorHandler(self, recovery, faults, seed)
        self.threads = ThreadManager(self)
        self.resources = ResourceManager(self)
        self.atomic_lock = threading.Lock()
        self.grants = grants or Grants()
        self.imports = ImportManager(self, search_path, {**REGISTRY, **capability_natives(self.grants)})
        self.meter.root_provider = self._memory_roots
        self.jit = None  # the JIT tier (nbcvm/jit): off, auto or eager
        if jit != "off":
            from nbcvm.jit.tier import JitManager

            self.jit = JitManager(self, jit)
            self.executor = self.jit.executor

    def _memory_roots(self) -> list:
        return [rec.instance.globals for rec in list(self.imports.records.values())
                if rec.instance is not None and not rec.instance.is_native]

    # -- host API --------------------------------------------------------------
    def set_limit(self, name: str, value: Any) -> None:
        """Change one limit, also while a program runs."""
        self.limits = self.limits.replace(**{name: value})
        self.meter.set_limits(self.limits)

    def usage(self) -> dict:
        return self.meter.usage()

    # -- loading -----------------------------------------------------------------
    def instantiate(self, module: Module, path: str | None = None) -> ModuleInstance:
        """Verify a module and register it as loaded under its name (no init yet)."""
        inst = ModuleInstance(self, module)
        self.imports.register(module.name, inst, path)
        return inst

    def instantiate_file(self, path: Path, name: str) -> ModuleInstance:
        from nbcvm.runtime.loader import load_file

        module = load_file(path, module_name=name)
        if module.name != name:
            raise VMError("ImportError", f"{path} declares .module {module.name}, expected {name}")
        return ModuleInstance(self, module)

    def load_program(self, path: str | Path) -> ModuleInstance:
        from nbcvm.runtime.loader import load_file

        if not self.imports.search_path or self.imports.search_path[0] != Path(path).resolve().parent:
            self.imports.search_path[:0] = search_path_from(path)[:1]
        return self.instantiate(load_file(path), str(path))

    def run_init(self, inst: ModuleInstance) -> None:
        fn = inst.fns.get(INIT)
        if fn is not None:
            if fn.nparams:
                raise VMError("TypeError", f"{inst.name}.{INIT} must take no parameters")
            self.executor(self, fn, [])

    # -- running -----------------------------------------------------------------
    def call(self, inst: ModuleInstance, fname: str, args: list) -> Any:
        fn = inst.fns.get(fname)
        if fn is None:
            raise UsageError(f"module '{inst.name}' has no function '{fname}'")
        if len(args) != fn.nparams:
            raise UsageError(f"{fname} takes {fn.nparams} argument(s) "
                             f"({' '.join(fn.code.params) or 'none'}), got {len(args)}")
        return self.executor(self, fn, list(args))

    def run_main(self, inst: ModuleInstance, args: list | None = None, entry: str = "main") -> RunOutcome:
        """Run ``init`` then ``entry``; map the result to an exit code."""
        args = list(args or [])
        fn = inst.fns.get(entry)
        if fn is None:
            raise UsageError(f"{inst.module.source}: no function '{entry}' to run")
        if len(args) != fn.nparams:
            want = " ".join(fn.code.params) or "no arguments"
            raise UsageError(f"{entry} takes {fn.nparams} argument(s) ({want}), got {len(args)}")
        self.meter.start_clock()
        t0 = time.perf_counter()
        result, error, code = None, None, 0
        try:
            with self.imports.initialising(inst.name):
                self.run_init(inst)
            result = self.executor(self, fn, args)
            code = exit_code_of(result)
        except ExitProgram as e:
            code = e.code & 0xFF
        except VMError as e:
            error, code = e, 1
        cancelled = self.finish_threads()
        self.resources.end_runtime()
        seconds = time.perf_counter() - t0
        self.output.flush()
        rec = self.errors.summary() if (self.errors.faults or self.errors.events) else None
        return RunOutcome(code, result, error, self.stats(seconds), rec, cancelled,
                          self.jit.report() if self.jit is not None else None)

    def finish_threads(self) -> int:
        """End of a run: main lets go of its locks, VM threads still running get the
        rest of the deadline (10 s without one), then are cancelled.  Returns how many
        were cancelled."""
        self.threads.release_all(self.threads.current())
        cancelled = self.threads.finish(self._grace(), self.meter.cancel)
        if cancelled and not self.threads.live:
            self.meter.uncancel()
        return cancelled

    def _grace(self) -> float:
        """How long to wait for VM threads still running when main ends."""
        d = self.meter.deadline
        return 10.0 if d is None else max(0.0, d - time.perf_counter())

    def stats(self, seconds: float) -> RunStats:
        return RunStats(self.meter.steps, self.meter.calls, self.meter.peak_depth, seconds, peak_rss_bytes(),
                        self.meter.output_bytes)


def exit_code_of(result: Any) -> int:
    """main's int result is the exit code (mod 256); any other result means 0."""
    if type(result) is int:
        return result & 0xFF
    return 0
