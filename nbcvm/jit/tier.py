"""JitManager: which functions run translated, when they are promoted, and why not.

One manager per Runtime (``Runtime(jit="auto")``).  Modes:

``off``    nothing is translated; the interpreter runs everything.
``eager``  every function is translated at its first call (``Fn.jit_state``
           starts as a stub that translates, then replaces itself), and a
           numeric function is compiled with numba for the argument types of
           that call.
``auto``   functions are promoted when hot.  Hotness is *sampled* from the
           meter's fuel ticks (every ``CHECK_INTERVAL`` instructions the tick
           names the function running), so the interpreter's hot path pays
           nothing for it: ``py_samples`` ticks in a function (~40k
           instructions) translate it to Python (milliseconds); a numeric
           function whose fuel since then would pay for numba's compile time
           is compiled with numba (see ``numba_due``).  Frames already running
           switch at their next loop header (on-stack replacement: the
           interpreter's handler there hands the registers to the translated
           ``O<i>`` entry; translated code hands its locals to numba's ``NBO<i>``).

Every decision is recorded per function (``decisions``: tier and reason) and
every compile, cache hit and fallback is an event (``events``); a failure is
recorded once and never retried.
"""

from __future__ import annotations

import linecache
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from nbcvm.isa import BY_CODE
from nbcvm.jit import DECLINE, MODES
from nbcvm.jit.pyrt import FnRecord, LiveFrames, ModuleNS, make_entry, osr_handler
from nbcvm.vm.compile import HANDLERS, InsCtx
from nbcvm.vm.interp import execute


@dataclass
class Decision:
    function: str
    tier: str  # interpreter | python | numba
    reason: str = ""
    specs: list[str] = field(default_factory=list)  # numba signatures compiled

    def to_dict(self) -> dict:
        return {"function": self.function, "tier": self.tier, "reason": self.reason, "specs": list(self.specs)}


class JitManager:
    py_samples = 2  # fuel ticks in a function before it is translated to Python

    def __init__(self, runtime: Any, mode: str = "auto", *, cache_dir: str | None = None,
                 numba: bool = True):
        if mode not in MODES:
            raise ValueError(f"jit mode must be one of {', '.join(MODES)}, not {mode!r}")
        self.rt = runtime
        self.mode = mode
        self.numba_enabled = numba
        self.numba_off = ""  # why numba is off for this runtime, once that is known
        self.cache_dir = cache_dir
        self.modules: dict[int, ModuleNS] = {}
        self.decisions: dict[str, Decision] = {}
        self.events: list[dict] = []
        self.samples: dict[Any, int] = {}
        self.translated: set = set()
        self.numba_tried: set = set()  # compiling allowed (numba_due said so)
        self.numba_probed: set = set()  # wrapper installed, cache hits used, misses wait
        self._warm: bool | None = None  # has numba run with this disk cache before?
        self.nb = None  # the numba tier (nbtier.NumbaTier), made on first need
        self.lock = threading.RLock()  # promotion can happen on any VM thread's tick
        self.t0 = time.perf_counter()
        if mode == "auto":
            runtime.meter.hooks.append(self.sample)
        stacks = runtime.meter.stacks
        if isinstance(stacks, dict):  # translated frames are memory roots too
            self.live_frames = LiveFrames()
            stacks[id(self.live_frames)] = self.live_frames

    # -- bookkeeping -----------------------------------------------------------------
    def event(self, kind: str, function: str, detail: str = "", seconds: float | None = None) -> None:
        ev = {"t": round(time.perf_counter() - self.t0, 6), "event": kind, "function": function, "detail": detail}
        if seconds is not None:
            ev["seconds"] = round(seconds, 6)
        self.events.append(ev)

    def decide(self, fn: Any, tier: str, reason: str = "") -> Decision:
        d = self.decisions.get(fn.qualname)
        if d is None:
            d = self.decisions[fn.qualname] = Decision(fn.qualname, tier, reason)
        else:
            d.tier, d.reason = tier, reason
        return d

    def report(self) -> dict:
        return {"mode": self.mode, "decisions": [d.to_dict() for d in self.decisions.values()],
                "events": list(self.events)}

    # -- wiring into the runtime --------------------------------------------------------
    def module_ns(self, inst: Any) -> ModuleNS:
        ms = self.modules.get(id(inst))
        if ms is None:
            ms = self.modules[id(inst)] = ModuleNS(self, inst)
        return ms

    def attach(self, inst: Any) -> None:
        """A module instance was created: in eager mode, every function translates at first call."""
        if self.mode == "eager":
            for fn in inst.fns.values():
                fn.jit_state = self._eager_stub(fn)

    def executor(self, rt: Any, fn: Any, args: list) -> Any:
        """``runtime.executor``: a top-level call (init, main, threads) goes to the JIT first."""
        js = fn.jit_state
        if js is not None:
            v = js(list(args), rt.meter.depth + 1)
            if v is not DECLINE:
                return v
        return execute(rt, fn, args)

    def _eager_stub(self, fn: Any):
        def stub(args: list, D: int) -> Any:
            self.promote(fn)
            js = fn.jit_state
            if js is None or js is stub:
                return DECLINE
            return js(args, D)

        return stub

    def sample(self, meter: Any, fn: Any, depth: int) -> None:
        """Meter hook (auto mode): a fuel tick landed in ``fn``."""
        if fn is None or getattr(fn, "is_native", True):
            return
        c = self.samples.get(fn, 0) + 1
        self.samples[fn] = c
        if c >= self.py_samples and fn not in self.translated:
            self.promote(fn)
        elif self.nb is not None or self.numba_enabled:
            self._maybe_numba(fn, c)

    # -- the numba tier ------------------------------------------------------------------
    # seconds, measured with scripts/bench_jit.py on 2 slow cores: importing numba and compiling its helper
    # module cold ~3 s (~0.8 s when they are in the disk cache); a closure compiles in 0.2-5 s cold and loads
    # in 0.01-0.1 s from the cache
    startup_estimate = 3.0
    warm_startup_estimate = 1.0
    compile_estimate = 1.0

    def numba_tier(self):
        if self.nb is None:
            from nbcvm.jit.nbtier import NumbaTier

            self.nb = NumbaTier(self, self.cache_dir)
        return self.nb

    def want_numba(self, fn: Any) -> bool:
        """Install the numba wrapper on a translated function if it could be numeric."""
        if not self.numba_enabled or fn.jit_state is None:
            if self.numba_off and fn.jit_state is not None:
                self.decide(fn, "python", self.numba_off)
            return False
        if self.nb is not None and fn in self.nb.wrappers:
            return True
        from nbcvm.jit.nbtier import closure_reason
        from nbcvm.lazy import NUMBA

        reason = closure_reason(fn)
        if reason is not None:
            self.decide(fn, "python", f"numba: {reason}")
            return False
        if not NUMBA.installed:  # not imported here: a cached library runs without numba
            self.numba_enabled = False
            self.numba_off = f"numba unavailable: {NUMBA.reason or 'not installed'}"
            self.decide(fn, "python", self.numba_off)
            self.event("numba-unavailable", fn.qualname, self.numba_off)
            return False
        try:
            with self.lock:
                return self.numba_tier().install(fn)
        except Exception as e:  # noqa: BLE001 - never break the program: stay in the Python tier
            self.numba_enabled = False
            self.numba_off = f"numba tier failed to start: {type(e).__name__}: {e}"
            self.decide(fn, "python", self.numba_off)
            self.event("numba-failed", fn.qualname, f"{type(e).__name__}: {e}")
            self._fallback(fn, e)
            return False

    def numba_due(self, fn: Any, samples: int) -> bool:
        """Has ``fn`` spent enough fuel to pay for compiling it?  (ski-rental: fuel >= cost * rate)"""
        from nbcvm.runtime.limits import CHECK_INTERVAL

        m = self.rt.meter
        elapsed = max(1e-3, time.perf_counter() - m.started)
        rate = m.steps / elapsed  # instructions per second so far
        cost = self.compile_estimate + (0.0 if self.nb is not None else self._startup_cost())
        if self.nb is not None and self.nb.compiles + self.nb.cache_hits:
            n = self.nb.compiles + self.nb.cache_hits
            cost = self.nb.compile_seconds / n
        if m.deadline is not None and time.perf_counter() + cost > m.deadline:
            return False  # compiling would eat the time the program has left
        return samples * CHECK_INTERVAL >= cost * rate

    def _startup_cost(self) -> float:
        if self._warm is None:
            from nbcvm.jit.nbtier import default_cache_dir

            d = default_cache_dir() if self.cache_dir is None else self.cache_dir
            try:
                self._warm = any(p.suffix == ".so" for p in __import__("pathlib").Path(d).iterdir())
            except OSError:
                self._warm = False
        return min(self.startup_estimate, self.warm_startup_estimate) if self._warm else self.startup_estimate

    def _maybe_numba(self, fn: Any, c: int) -> None:
        """Compile ``fn`` once its fuel pays for it; before that, use it if it is in the disk cache.

        The first sample after translation installs the numba wrapper in probe mode:
        a closure found in the cache loads in milliseconds and runs at once; a miss
        is remembered and compiles only when ``numba_due`` says it is worth it.
        """
        if fn.jit_state is None or fn in self.numba_tried:
            return
        due = self.numba_due(fn, c)
        if not due and fn in self.numba_probed:
            return
        self.numba_probed.add(fn)
        if due:
            self.numba_tried.add(fn)
        if self.want_numba(fn):
            with self.lock:  # frames of fn already running switch at their next loop header
                if due:
                    self.nb.allow_compile(fn)
                self.nb.install_osr(fn)

    # -- promotion --------------------------------------------------------------------
    def promote(self, fn: Any) -> bool:
        """Translate ``fn`` to Python (once); True if it now runs translated."""
        with self.lock:
            return self._promote(fn)

    def _promote(self, fn: Any) -> bool:
        if fn in self.translated:
            return fn.jit_state is not None
        self.translated.add(fn)
        ms = self.module_ns(fn.inst)
        idx = ms.index[fn.name]
        t0 = time.perf_counter()
        from nbcvm.jit.translate import Untranslatable, translate_py  # on first promotion: keeps start-up lean

        try:
            self.inject_fault(fn)
            fn.compile(self.rt.meter)  # the interpreter's closures: its errpc table and handlers
            pf = translate_py(fn, idx, ms.index)
            ns = ms.ns
            ns.update(pf.consts)
            for pc, name in pf.generic.items():
                ns[name] = _generic_handler(fn, pc, self.rt.meter)
            for pc, (name, qualified, nargs) in pf.xcalls.items():
                ns[name] = ms.linker(name, qualified, nargs)
            ns[f"REC{idx}"] = FnRecord(fn, pf.linemap, pf.operands, pf.regions, ns)
            filename = f"<nbcvm-jit {fn.qualname}>"
            linecache.cache[filename] = (len(pf.source), None, pf.source.splitlines(True), filename)
            exec(compile(pf.source, filename, "exec"), ns)  # noqa: S102 - our own generated code
        except Untranslatable as e:
            fn.jit_state = None
            self.decide(fn, "interpreter", str(e))
            self.event("not-translated", fn.qualname, str(e))
            return False
        except Exception as e:  # a translator bug must never break the program: interpret it
            fn.jit_state = None
            self.decide(fn, "interpreter", f"translation failed: {type(e).__name__}: {e}")
            self.event("translate-failed", fn.qualname, f"{type(e).__name__}: {e}")
            self._fallback(fn, e)
            return False
        py = ns[f"P{idx}"]
        ms.ns[f"F{idx}"] = py
        ms.py[idx] = py
        fn.jit_state = make_entry(py)
        if self.mode == "auto" and pf.osr:
            self._install_osr(fn, ms, idx, pf.osr, ns[f"O{idx}"])
        self.decide(fn, "python")
        self.event("translated", fn.qualname, f"{len(fn.code.code)} instructions",
                   time.perf_counter() - t0)
        if self.mode == "eager":
            self.want_numba(fn)
        return True

    def _install_osr(self, fn: Any, ms: ModuleNS, idx: int, headers: list[int], osr_py: Any) -> None:
        """Let frames of ``fn`` already running in the interpreter continue translated (auto mode)."""
        ops = fn.ops
        if ops is None:
            return

        nl = len(fn.code.locals)

        def enter(r: list, header: int, D: int, N: int) -> Any:
            nbo = ms.osr_numba.get(idx)
            if nbo is not None:  # compiled already: straight to numba (the stack is empty at a header)
                v = nbo(r[:nl], header, D, N, id(r))
                if v is not DECLINE:
                    return v
            return osr_py(r, header, D, N)

        for h in headers:
            ops[h] = osr_handler(ms, fn, h, ops[h], enter)
        ms.osr_headers[idx] = headers
        self.event("osr-ready", fn.qualname, f"loop headers at pc {', '.join(map(str, headers))}")

    def inject_fault(self, fn: Any) -> None:
        """``--inject-faults jit:P``: fail this compile on purpose (the fallback must recover it)."""
        errors = getattr(self.rt, "errors", None)
        faults = getattr(errors, "faults", None)
        if faults and faults.hit("jit"):
            raise faults.fault("jit", fn.qualname)

    def _fallback(self, fn: Any, err: BaseException) -> None:
        errors = getattr(self.rt, "errors", None)
        if errors is not None:
            try:
                errors.fallback("jit", fn.qualname, err, "the interpreter")
            except Exception:  # noqa: BLE001 - bookkeeping must not fail a run
                pass


def _generic_handler(fn: Any, pc: int, meter: Any):
    """The interpreter's handler for one instruction, on a register list holding just its operands."""
    opc, args = fn.code.code[pc]
    op = BY_CODE[opc]
    pops = op.pop_count(args)
    ctx = InsCtx(fn, pc, op, args, pops, pc + 1, meter, fn.inst)
    return HANDLERS[op.name](ctx)
