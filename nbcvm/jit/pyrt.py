"""Run-time support of translated code: the module namespace, calls, errors.

Every translated function of one module instance lives in one namespace
(``ModuleNS.ns``) so that functions call each other by plain global names:
``F3`` is function 3's *current best version* -- its translated code, its
numba wrapper, or until then a stub that runs it in the interpreter.  All of
them take ``(args..., D, N)``: ``D`` is the callee's frame depth (frames on
the stack including its own, as ``max_depth`` counts them) and ``N`` how many
translated frames are nested on this host thread.

Host stack.  The interpreter keeps NBC frames on a list, but a translated
call is a host call.  So translated code nests at most ``NEST`` frames per
host thread; a call past that runs the callee in the interpreter with the JIT
declined below it (``deep``), which has no host-stack limit.  ``TLS.nest``
carries the count across interpreter frames.

Entry from the interpreter.  ``Fn.jit_state`` is the function the
interpreter calls instead of pushing a frame: ``state(args, D) -> value`` or
``DECLINE`` (then the interpreter runs the call itself).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from nbcvm.errors import ExitProgram, LimitExceeded, TraceEntry, VMError, from_host
from nbcvm.jit import DECLINE
from nbcvm.vm.interp import _find_region, execute
from nbcvm.vm.ops_arith import NUMT, bad_operands, bad_shift, overflow
from nbcvm.vm.values import to_str, truthy

NEST = 250  # translated frames nested per host thread before calls go to the interpreter
HUGE = 1 << 40


class _TLS(threading.local):
    nest = 0  # translated frames nested on this host thread (see module doc)


TLS = _TLS()


def branch_truth(v: Any) -> bool:
    """``jt``/``jf`` on a non-bool: the interpreter's test (a tensor has no truth value)."""
    if v.__class__.__name__ == "ndarray":
        raise TypeError("a tensor has no truth value; reduce it first (tsum, tmax ...)")
    return bool(v)


@dataclass
class FnRecord:
    """What the error path needs about one translated function."""

    fn: Any
    linemap: dict[int, int]
    operands: dict[int, tuple[str, str, str]]
    regions: list
    ns: dict


def on_error(exc: BaseException, rec: FnRecord, frame_locals: dict) -> tuple[VMError, int]:
    """The interpreter's unwinding step for one translated frame.

    Maps the failing line to its pc, turns a host exception into an NBC error
    (arithmetic TypeErrors name the operand types, as the interpreter's
    ``_host_error`` does), adds this frame's traceback entry and returns the
    index of the ``try`` region that catches it, or -1.
    """
    tb = exc.__traceback__
    pc = rec.linemap.get(tb.tb_lineno, 0) if tb is not None else 0
    fn = rec.fn
    if isinstance(exc, VMError):
        err = exc
    else:
        info = rec.operands.get(pc)
        if info is not None and isinstance(exc, TypeError):
            op, ea, eb = info
            err = bad_operands(op, eval(ea, rec.ns, frame_locals), eval(eb, rec.ns, frame_locals))  # noqa: S307
        else:
            err = from_host(exc)
    epc = fn.errpc.get(pc, pc)
    key = id(tb.tb_frame) if tb is not None else 0
    seen = err.seen_frames
    if key not in seen:  # a re-raise in a frame already listed keeps its first entry
        seen.add(key)
        err.traceback.insert(0, TraceEntry(fn.inst.name, fn.name, fn.inst.module.source,
                                           fn.line_of(epc), epc, fn.op_at(epc)))
    region = _find_region(fn, epc, err)
    if region is None:
        return err, -1
    return err, rec.regions.index(region)


class ModuleNS:
    """The namespace shared by the translated functions of one module instance."""

    def __init__(self, jit: Any, inst: Any):
        self.jit = jit
        self.inst = inst
        rt = inst.runtime
        self.rt = rt
        m = rt.meter
        self.fns = list(inst.fns.values())
        self.index = {f.name: i for i, f in enumerate(self.fns)}
        ns: dict[str, Any] = {
            "__name__": f"nbcvm.jit.ns.{inst.name}", "M": m, "GL": inst.globals, "OUT": rt.output,
            "NEST": NEST, "NUMT": NUMT, "ExitProgram": ExitProgram, "VMError": VMError,
            "to_str": to_str, "truthy": truthy, "overflow": overflow, "bad_shift": bad_shift,
            "TRUTH": branch_truth, "ONERR": on_error, "SLOW": self.slow,
        }
        for i, f in enumerate(self.fns):
            ns[f"FN{i}"] = f
            ns[f"F{i}"] = self.interp_stub(f)
        self.ns = ns
        self.py: dict[int, Any] = {}  # function index -> its translated Python function

    # -- calls leaving translated code -----------------------------------------------
    def slow(self, fn: Any, args: tuple, D: int, N: int) -> Any:
        """Prologue slow path: the depth limit, or too many nested host frames."""
        m = self.rt.meter
        if D > m.max_depth:
            raise LimitExceeded("depth", D, m.max_depth, "frames")
        return self.deep(fn, args, D)

    def deep(self, fn: Any, args: tuple, D: int) -> Any:
        """Run ``fn`` in the interpreter with the JIT declined below it (no host recursion)."""
        m = self.rt.meter
        saved_n, saved_d = TLS.nest, m.depth
        TLS.nest, m.depth = HUGE, D - 1
        try:
            return execute(self.rt, fn, list(args))
        finally:
            TLS.nest, m.depth = saved_n, saved_d

    def icall(self, fn: Any, args: tuple, D: int, N: int) -> Any:
        """Call a function that has no translated version (yet)."""
        m = self.rt.meter
        if D > m.max_depth:
            raise LimitExceeded("depth", D, m.max_depth, "frames")
        saved_n, saved_d = TLS.nest, m.depth
        TLS.nest = N
        try:
            js = fn.jit_state
            if js is not None:  # eager: compiles now; or promoted meanwhile
                v = js(list(args), D)
                if v is not DECLINE:
                    return v
            m.depth = D - 1
            return execute(self.rt, fn, list(args))
        finally:
            TLS.nest, m.depth = saved_n, saved_d

    def interp_stub(self, fn: Any):
        icall = self.icall

        def stub(*a):
            return icall(fn, a[:-2], a[-2], a[-1])

        return stub

    def linker(self, name: str, qualified: str, nargs: int):
        """A cross-module call site: resolve on first execution, then patch itself."""
        inst, ns = self.inst, self.ns

        def link(*a):
            callee = inst.resolve(qualified, nargs)  # may raise ImportError, at this call
            if callee.is_native:
                f = callee.fn
                if nargs == 0:
                    thunk = lambda D, N: f()  # noqa: E731
                elif nargs == 1:
                    thunk = lambda x, D, N: f(x)  # noqa: E731
                else:
                    thunk = lambda *x: f(*x[:-2])  # noqa: E731
            else:
                icall, fn = self.icall_any, callee

                def thunk(*x):
                    return icall(fn, x[:-2], x[-2] + 1, x[-1] + 1)

            ns[name] = thunk
            return thunk(*a)

        return link

    def icall_any(self, fn: Any, args: tuple, D: int, N: int) -> Any:
        """Call a function of another NBC module (its own JIT state decides how)."""
        m = self.rt.meter
        if D > m.max_depth:
            raise LimitExceeded("depth", D, m.max_depth, "frames")
        saved_n, saved_d = TLS.nest, m.depth
        TLS.nest = N
        try:
            js = fn.jit_state
            if js is not None:
                v = js(list(args), D)
                if v is not DECLINE:
                    return v
            m.depth = D - 1
            return execute(self.rt, fn, list(args))
        finally:
            TLS.nest, m.depth = saved_n, saved_d


def make_entry(call):
    """``Fn.jit_state`` for a translated function: the interpreter's way in."""

    def entry(args: list, D: int) -> Any:
        n = TLS.nest
        if n >= NEST:
            return DECLINE
        return call(*args, D, n + 1)

    return entry
