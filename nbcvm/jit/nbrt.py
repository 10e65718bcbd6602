"""Helpers compiled with numba, called from generated numba code.

Imported only when a closure is compiled (never on the warm path, which
loads a cached shared library).  Its source hash is part of every cache key
(``NumbaTier.versions``), so a change here recompiles everything.  The
layout of the state arrays and the callbacks is in ``abi.py``.

Nothing here uses numba's object mode: Python is reached through the
function pointers in ``st[11..15]`` (``call_*`` below), so compiled code
depends on nothing of numba's runtime and can be saved as a plain shared
library (``native.py``).
"""

from __future__ import annotations

from llvmlite import ir as llir
from numba import njit, types
from numba.extending import intrinsic

from nbcvm.jit.abi import (CB_DEEP, CB_PRINT_FLOAT, CB_PRINT_INT, CB_TICK, CB_TRUEDIV, DEPTH, FRAMES, OPERR,
                           PENDING, ST_SIZE)

IMIN = -9223372036854775808
IMAX = 9223372036854775807
TWO53 = 9007199254740992

P = types.CPointer(types.int64)
I = types.int64
F = types.float64


def _to_pointer(to):
    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], context.get_value_type(types.CPointer(to)))

    return types.CPointer(to)(types.int64), codegen


@intrinsic
def iptr(typingctx, addr):
    """int64 address -> int64* (see abi.py)."""
    return _to_pointer(types.int64)


@intrinsic
def fptr(typingctx, addr):
    """int64 address -> float64*."""
    return _to_pointer(types.float64)


def _call_pointer(sig):
    """Call the C function whose address is the first argument with the others."""
    def codegen(context, builder, signature, args):
        fnty = llir.FunctionType(context.get_value_type(sig.return_type),
                                 [context.get_value_type(t) for t in sig.args[1:]])
        fn = builder.inttoptr(args[0], fnty.as_pointer())
        return builder.call(fn, args[1:])

    return sig, codegen


@intrinsic
def call_iii(typingctx, addr, a, b, c):
    """int64 f(int64, int64, int64) at ``addr``."""
    return _call_pointer(I(I, I, I, I))


@intrinsic
def call_ii(typingctx, addr, a, b):
    """int64 f(int64, int64) at ``addr``."""
    return _call_pointer(I(I, I, I))


@intrinsic
def call_f(typingctx, addr, x):
    """int64 f(double) at ``addr``."""
    return _call_pointer(I(I, F))


@intrinsic
def call_ii_f(typingctx, addr, a, b):
    """double f(int64, int64) at ``addr``."""
    return _call_pointer(F(I, I, I))


@njit(types.void(P, I, I))
def record(st, fid, pc):
    k = st[7]
    i = FRAMES + 2 * k
    if i + 1 < ST_SIZE:
        st[i] = fid
        st[i + 1] = pc
    st[7] = k + 1


@njit(types.void(P, I, I))
def fail(st, fid, pc):
    """An instruction failed: the wrapper re-runs it in Python to raise the exact error."""
    st[1] = OPERR
    st[2] = pc
    record(st, fid, pc)


@njit(types.void(P, I, I, I))
def depth_error(st, fid, pc, frames):
    st[1] = DEPTH
    st[2] = frames
    record(st, fid, pc)


@njit(I(P, I, I))
def pending(st, fid, pc):
    """A callback failed: its exception waits in ``nbhost`` for the wrapper to raise."""
    st[1] = PENDING
    record(st, fid, pc)
    return 1


@njit(I(P, I, I, I))
def tick(st, fid, pc, depth):
    """The fuel countdown ran out: ``meter.tick`` (fuel, deadline, hooks) in Python."""
    if call_iii(st[CB_TICK], fid, pc, depth) != 0:
        return pending(st, fid, pc)
    return 0


@njit(I(P, I, I, I))
def print_i(st, v, fid, pc):
    if call_ii(st[CB_PRINT_INT], v, 0) != 0:
        return pending(st, fid, pc)
    return 0


@njit(I(P, F, I, I))
def print_f(st, v, fid, pc):
    if call_f(st[CB_PRINT_FLOAT], v) != 0:
        return pending(st, fid, pc)
    return 0


@njit(I(P, types.boolean, I, I))
def print_b(st, v, fid, pc):
    flag = 1 if v else 0
    if call_ii(st[CB_PRINT_INT], flag, 1) != 0:
        return pending(st, fid, pc)
    return 0


@njit(I(P, I, I, I, I))
def deep(st, sid, depth, fid, pc):
    """Run a call in the interpreter (too many native frames nested); result in st[9]/sf[2]."""
    if call_ii(st[CB_DEEP], sid, depth) != 0:
        return pending(st, fid, pc)
    return 0


@njit(F(P, I, I))
def int_truediv(st, a, b):
    """a / b for ints, correctly rounded like Python (b != 0; cannot fail for int64 operands)."""
    if -TWO53 <= a <= TWO53 and -TWO53 <= b <= TWO53:
        return float(a) / float(b)
    return call_ii_f(st[CB_TRUEDIV], a, b)


@njit("boolean(int64, int64)")
def mul_ovf(a, b):
    """True if a * b does not fit in int64 (exact; no wrapping arithmetic)."""
    f = float(a) * float(b)
    if -4.611686018427388e18 < f < 4.611686018427388e18:  # |a*b| < 2**62 for sure
        return False
    if a == 0 or b == 0:
        return False
    if a > 0:
        if b > 0:
            return b > IMAX // a
        return b < (IMIN + a - 1) // a  # ceil(IMIN / a)
    if b > 0:
        return a < (IMIN + b - 1) // b
    if a == IMIN:
        return True
    return b < -(IMAX // -a)  # ceil(IMAX / a), a < 0


@njit("int64(int64, float64)")
def cmp_if(i, f):
    """Compare int i with float f exactly: -1, 0, 1, or 2 when f is nan."""
    if f != f:
        return 2
    x = float(i)
    if x < f:
        return -1
    if x > f:
        return 1
    # float(i) == f: f is an integral value; compare exactly in ints
    if f >= 9.223372036854775808e18:
        return -1
    if f < -9.223372036854775808e18:
        return 1
    j = int(f)
    if i < j:
        return -1
    if i > j:
        return 1
    return 0
