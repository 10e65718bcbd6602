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
    # a frame taken over from the interpreter (O<i>, registers RR) is listed under the interpreter's
    # key for it, so the interpreter's unwinding does not add it a second time
    rr = frame_locals.get("RR")
    key = id(rr) if rr is not None else id(tb.tb_frame) if tb is not None else 0
    seen = err.seen_frames
    if key not in seen:  # a re-raise in a frame already listed keeps its first entry
        seen.add(key)
        err.traceback.insert(0, TraceEntry(fn.inst.name, fn.name, fn.inst.module.source,
                                           fn.line_of(epc), epc, fn.op_at(epc)))
    region = _find_region(fn, epc, err)
    if region is None:
        return err, -1
    return err, rec.regions.index(region)


def _caller_key() -> int:
    """The identity of the translated frame asking (the traceback key of a frame handed to numba)."""
    import sys

    return id(sys._getframe(1))


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
            "TRUTH": branch_truth, "ONERR": on_error, "SLOW": self.slow, "DECLINE": DECLINE,
            "FKEY": _caller_key,
        }
        for i, f in enumerate(self.fns):
            ns[f"FN{i}"] = f
            ns[f"F{i}"] = self.interp_stub(f)
            ns[f"NBO{i}"] = None  # its compiled loop-header entry, once there is one (auto mode)
        self.ns = ns
        self.py: dict[int, Any] = {}  # function index -> its translated Python function
        self.osr_headers: dict[int, list[int]] = {}  # function index -> loop headers with an OSR handler
        self.osr_numba: dict[int, Any] = {}  # function index -> compiled on-stack-replacement entry

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


class LiveFrames:
    """Memory roots in translated frames, for ``Meter.measure``.

    The interpreter's registers are memory roots (``meter.stacks``); a
    translated function keeps its values in Python locals instead.  This
    object sits in ``meter.stacks`` for the runtime's life and, only when the
    meter measures (a memory limit is close), walks the live Python frames of
    every thread and yields the locals of the translated ones in the shape
    the meter reads (``frame[3]`` is a list of values).
    """

    def __iter__(self):
        import sys

        for top in list(sys._current_frames().values()):
            f = top
            while f is not None:
                if f.f_code.co_filename.startswith("<nbcvm-jit "):
                    # the NBC locals and stack slots, as the interpreter's register list would hold them
                    yield (None, None, None, [v for k, v in f.f_locals.items() if k[0] in "LS" and k[1:].isdigit()])
                f = f.f_back


def osr_handler(ms: "ModuleNS", fn: Any, header: int, original: Any, enter: Any):
    """An interpreter handler for a loop header: hand the running frame to translated code.

    Installed in ``fn.ops`` when ``fn`` is promoted while frames of it may be
    running (auto mode).  The interpreter calls it with the frame's registers
    when control reaches the loop header (the jump has charged the fuel); it
    reads the frame depth from the interpreter loop that called it, runs the
    rest of the call through ``enter(registers, header, depth, nesting)`` and
    makes the interpreter return the result through one of the function's
    ``ret`` instructions.  Anything unusual -- a caller that is not the plain
    interpreter loop (a profiler's), too many nested translated frames -- runs
    the original handler instead.
    """
    import sys

    from nbcvm.vm.compile import RET

    rets = [(pc, e[1]) for pc, e in enumerate(fn.ctrl) if e is not None and e[0] == RET]
    ret_pc, ret_reg = rets[0] if rets else (-1, 0)
    exec_code = execute.__code__

    def h(r: list) -> int:
        caller = sys._getframe(1)
        n = TLS.nest
        if caller.f_code is not exec_code or n >= NEST:
            return original(r)
        loc = caller.f_locals
        D = loc["base_depth"] + loc["depth"] + 1
        v = enter(r, header, D, n + 1)
        if v is DECLINE:
            return original(r)
        if ret_pc < 0:  # pragma: no cover - a function without ret never returns normally
            raise RuntimeError(f"nbcvm jit: {fn.qualname} returned but has no ret")
        r[ret_reg] = v
        return -(ret_pc + 2)

    h.osr_original = original  # type: ignore[attr-defined]
    return h


def make_entry(call):
    """``Fn.jit_state`` for a translated function: the interpreter's way in."""

    def entry(args: list, D: int) -> Any:
        n = TLS.nest
        if n >= NEST:
            return DECLINE
        return call(*args, D, n + 1)

    return entry
