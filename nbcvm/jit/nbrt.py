"""Helpers compiled with numba, called from generated numba code.

This file is imported only by the numba tier.  Its source is copied into the
JIT cache directory under a name carrying its hash (``nbcvm_nbrt_<hash>.py``)
and imported from there, so numba caches its compiled code next to the
generated modules and any change to it changes every cache key.

Compiled functions receive the *addresses* of four arrays as int64s (``sp``,
``fp``, ``gip``, ``gfp``) and view them as raw pointers (``iptr``/``fptr``):
passing numpy arrays between numba functions costs a reference count update
per array per call (fib: 0.4-0.6x CPython with arrays, 0.08x with pointers).
The wrapper that enters compiled code keeps the arrays alive (and finds them
again for the object-mode calls: ``nbhost.Context``), so the pointers are
always valid while compiled code runs; every index the generated code uses
is a constant inside the arrays' sizes, and frame records are bounded by
``ST_SIZE``.

The *state array* ``st`` (int64, ``ST_SIZE`` items):

=====  =====================================================================
st[0]  fuel countdown (the meter's ``budget``, copied in and out)
st[1]  status: 0 running, 1 an instruction failed (re-run in Python for the
       exact error), 2 a Python exception is pending (tick, print, deep
       call), 3 ``halt`` (code in st[2]), 4 depth limit (frames in st[2])
st[2]  status detail
st[3]  calls started (folded into ``meter.calls``)
st[4]  peak frame depth
st[5]  st[6]  int operands of a failed instruction
st[7]  frames recorded while unwinding
st[8]  max_depth in force
st[9]  int/bool result of a deep call
st[10] offset of the countdown over the meter's budget (ticks that would do nothing are skipped)
st[16...31]  int/bool arguments of a deep call
st[32...]  (function index, pc) per unwound frame, innermost first
=====  =====================================================================

``sf`` (float64, ``SF_SIZE``): sf[0], sf[1] float operands of a failed
instruction, sf[2] the float result of a deep call, sf[4...19] its float
arguments.  ``GI``/``GF``: the module globals the closure uses, by type.
"""

from __future__ import annotations

import nbcvm.jit.nbhost as H
from numba import njit, objmode, types
from numba.extending import intrinsic

OPERR, PENDING, EXIT, DEPTH = 1, 2, 3, 4
FRAMES = 32
IMIN = -9223372036854775808
IMAX = 9223372036854775807
TWO53 = 9007199254740992
NBNEST = 400  # compiled frames nested per entry (nbgen.NBNEST)
ST_SIZE = FRAMES + 2 * (NBNEST + 8)  # header + (function, pc) per frame of one entry
SF_SIZE = 24

P = types.CPointer(types.int64)
I = types.int64


def _to_pointer(to):
    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], context.get_value_type(types.CPointer(to)))

    return types.CPointer(to)(types.int64), codegen


@intrinsic
def iptr(typingctx, addr):
    """int64 address -> int64* (see the module doc)."""
    return _to_pointer(types.int64)


@intrinsic
def fptr(typingctx, addr):
    """int64 address -> float64*."""
    return _to_pointer(types.float64)


@njit(types.void(P, I, I), cache=True)
def record(st, fid, pc):
    k = st[7]
    i = FRAMES + 2 * k
    if i + 1 < ST_SIZE:
        st[i] = fid
        st[i + 1] = pc
    st[7] = k + 1


@njit(types.void(P, I, I), cache=True)
def fail(st, fid, pc):
    """An instruction failed: the wrapper re-runs it in Python to raise the exact error."""
    st[1] = OPERR
    st[2] = pc
    record(st, fid, pc)


@njit(types.void(P, I, I, I), cache=True)
def depth_error(st, fid, pc, frames):
    st[1] = DEPTH
    st[2] = frames
    record(st, fid, pc)


@njit(I(P, I, I, I), cache=True)
def tick(st, fid, pc, depth):
    """The fuel countdown ran out: ``meter.tick`` (fuel, deadline, hooks) in Python."""
    with objmode(rc="int64"):
        rc = H.tick(fid, pc, depth)
    if rc != 0:
        st[1] = PENDING
        record(st, fid, pc)
    return rc


@njit(I(P, I, I, I), cache=True)
def check(st, fid, pc, depth):
    """The countdown check after a charge: one call per site keeps compiled code small."""
    if st[0] >= 0:
        return 0
    return tick(st, fid, pc, depth)


@njit(I(P, types.int64, I, I), cache=True)
def print_i(st, v, fid, pc):
    with objmode(rc="int64"):
        rc = H.print_value(int(v))
    if rc != 0:
        st[1] = PENDING
        record(st, fid, pc)
    return rc


@njit(I(P, types.float64, I, I), cache=True)
def print_f(st, v, fid, pc):
    with objmode(rc="int64"):
        rc = H.print_value(float(v))
    if rc != 0:
        st[1] = PENDING
        record(st, fid, pc)
    return rc


@njit(I(P, types.boolean, I, I), cache=True)
def print_b(st, v, fid, pc):
    with objmode(rc="int64"):
        rc = H.print_value(bool(v))
    if rc != 0:
        st[1] = PENDING
        record(st, fid, pc)
    return rc


@njit(I(P, I, I, I, I), cache=True)
def deep(st, sid, depth, fid, pc):
    """Run a call in the interpreter (too many native frames nested); result in st[9]/sf[2]."""
    with objmode(rc="int64"):
        rc = H.deep(sid, depth)
    if rc != 0:
        st[1] = PENDING
        record(st, fid, pc)
    return rc


@njit("boolean(int64, int64)", cache=True)
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


@njit("float64(int64, int64)", cache=True)
def int_truediv(a, b):
    """a / b for ints, correctly rounded like Python (b != 0)."""
    if -TWO53 <= a <= TWO53 and -TWO53 <= b <= TWO53:
        return float(a) / float(b)
    with objmode(r="float64"):
        r = H.truediv(int(a), int(b))
    return r


@njit("int64(int64, float64)", cache=True)
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
