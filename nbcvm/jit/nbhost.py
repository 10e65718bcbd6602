"""The Python side of compiled code's callbacks (``abi.py``: st[11..15]).

Compiled code cannot hold references to the running runtime (its machine
code is cached on disk and shared by every run), so the wrapper that enters
compiled code pushes a ``Context`` on a per-thread stack and these functions
find the meter, the output, the function table and the state arrays there.
They are called through ctypes callbacks (``callbacks()``): each returns 0,
or 1 after parking the exception in ``ctx.pending`` for the wrapper to raise
with the NBC traceback of the compiled frames added -- an exception never
crosses into compiled code.
"""

from __future__ import annotations

import threading
from typing import Any

from nbcvm.jit.abi import ARG0, FARG0
from nbcvm.vm.values import to_str


class Context:
    """One entry into compiled code; ``st``/``sf``/``gi``/``gf`` are the arrays it points into."""

    __slots__ = ("tier", "rt", "meter", "out", "fns", "specs", "gmap", "globals", "pending", "ms",
                 "st", "sf", "gi", "gf")

    def __init__(self, tier: Any, ms: Any, specs: list, gmap: tuple, st: Any, sf: Any, gi: Any, gf: Any):
        self.tier, self.ms, self.specs, self.gmap = tier, ms, specs, gmap
        self.st, self.sf, self.gi, self.gf = st, sf, gi, gf
        self.rt = ms.rt
        self.meter = ms.rt.meter
        self.out = ms.rt.output
        self.fns = ms.fns
        self.globals = ms.inst.globals
        self.pending: BaseException | None = None


# Ctrl-C while compiled code runs.  Python would raise KeyboardInterrupt in whatever Python code runs
# next -- possibly numba's own object-mode glue, which then fails with a SystemError.  So while compiled
# code runs, SIGINT only sets a flag, and the next tick (at most ~20M instructions later) raises it
# where it is safe; outside compiled code the previous handler runs as before.
_running = [0]  # entries into compiled code in progress (any thread)
_interrupted = [False]
_previous: Any = None


def _on_sigint(signum, frame) -> None:
    if _running[0] > 0:
        _interrupted[0] = True
    elif callable(_previous):
        _previous(signum, frame)
    else:
        raise KeyboardInterrupt


def install_sigint() -> None:
    """Route SIGINT as above (main thread, and only if Python's default handler is in place)."""
    global _previous
    import signal

    if threading.current_thread() is not threading.main_thread() or _previous is not None:
        return
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        _previous = signal.default_int_handler
        signal.signal(signal.SIGINT, _on_sigint)


def take_interrupt() -> bool:
    if _interrupted[0]:
        _interrupted[0] = False
        return True
    return False


class _TLS(threading.local):
    def __init__(self) -> None:
        self.stack: list[Context] = []


TLS = _TLS()


def current() -> Context:
    return TLS.stack[-1]


def tick(fid: int, pc: int, depth: int) -> int:
    """``meter.tick`` for compiled code; st[10] is the countdown's offset (``NumbaTier.fuel_offset``)."""
    ctx = current()
    st = ctx.st
    m = ctx.meter
    m.budget = int(st[0] - st[10])
    m.resume = int(pc)
    try:
        if take_interrupt():
            raise KeyboardInterrupt
        m.tick(ctx.fns[int(fid)], int(depth) - 1)
    except BaseException as e:  # noqa: BLE001 - handed to the wrapper, which raises it
        ctx.pending = e
        st[0] = m.budget + st[10]
        return 1
    off = ctx.tier.fuel_offset(m)
    st[10] = off
    st[0] = m.budget + off
    st[8] = m.max_depth
    return 0


def print_int(v: int, is_bool: int) -> int:
    return print_value(bool(v) if is_bool else v)


def print_value(v: Any) -> int:
    ctx = current()
    try:
        ctx.out.write(to_str(v) + "\n")
    except BaseException as e:  # noqa: BLE001
        ctx.pending = e
        return 1
    return 0


def truediv(a: int, b: int) -> float:
    return a / b  # int64 operands, b != 0 (checked by compiled code): cannot raise


_CALLBACKS: tuple | None = None


def callbacks() -> tuple[int, int, int, int, int]:
    """Addresses of the callbacks for st[11..15] (made once; the ctypes objects live here)."""
    global _CALLBACKS
    if _CALLBACKS is None:
        import ctypes

        i64, f64 = ctypes.c_int64, ctypes.c_double
        made = (ctypes.CFUNCTYPE(i64, i64, i64, i64)(tick),
                ctypes.CFUNCTYPE(i64, i64, i64)(print_int),
                ctypes.CFUNCTYPE(i64, f64)(print_value),
                ctypes.CFUNCTYPE(i64, i64, i64)(deep),
                ctypes.CFUNCTYPE(f64, i64, i64)(truediv))
        _CALLBACKS = (made, tuple(ctypes.cast(cb, ctypes.c_void_p).value for cb in made))
    return _CALLBACKS[1]


def deep(sid: int, depth: int) -> int:
    """A call nested past the native-frame bound: run it in the interpreter."""
    ctx = current()
    st, sf, gi, gf = ctx.st, ctx.sf, ctx.gi, ctx.gf
    spec = ctx.specs[int(sid)]
    m = ctx.meter
    G = ctx.globals
    gmap = ctx.gmap
    for gidx, (arr, k, t) in gmap:  # compiled code's globals -> the module's
        a = gi if arr == "i" else gf
        G[gidx] = float(a[k]) if t == "f" else bool(a[k]) if t == "b" else int(a[k])
    m.budget = int(st[0] - st[10])
    args, ki, kf = [], ARG0, FARG0
    for t in spec.argtypes:
        if t == "f":
            args.append(float(sf[kf]))
            kf += 1
        elif t == "u":
            args.append(None)
            ki += 1
        else:
            v = int(st[ki])
            args.append(bool(v) if t == "b" else v)
            ki += 1
    rc = 0
    try:
        v = ctx.ms.deep(spec.fn, tuple(args), int(depth))
        if spec.ret == "f":
            sf[2] = v
        elif spec.ret != "u":
            st[9] = int(v)
    except BaseException as e:  # noqa: BLE001
        ctx.pending = e
        rc = 1
    st[0] = m.budget + st[10]
    st[8] = m.max_depth
    for gidx, (arr, k, t) in gmap:  # and back (their types cannot change: inference proved it)
        a = gi if arr == "i" else gf
        a[k] = G[gidx]
    return rc
