"""The calling convention between the numba tier's wrapper and compiled code.

Pure data, no numba: the wrapper (``nbtier.Compiled``) and the object-mode
replacements (``nbhost``) use it on the warm path, where a cached native
library is loaded without importing numba at all.

Compiled functions receive the *addresses* of four arrays as int64s (``sp``,
``fp``, ``gip``, ``gfp``) and view them as raw pointers (``nbrt.iptr`` /
``fptr``): passing numpy arrays between numba functions costs a reference
count update per array per call (fib: 0.4-0.6x CPython with arrays, 0.08x
with pointers).  The wrapper keeps the arrays (ctypes arrays) alive for as
long as compiled code runs; every index the generated code uses is a
constant inside the arrays' sizes, and frame records are bounded by
``ST_SIZE``.  Compiled code calls back into Python only through the function
pointers in st[11..15] (ctypes callbacks made by ``nbhost``), never through
numba's object mode, so the machine code depends on nothing of numba's
runtime and can be saved as a plain shared library.

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
st[11] callback ``int64 tick(fid, pc, depth)``            (``meter.tick``)
st[12] callback ``int64 print_int(value, is_bool)``
st[13] callback ``int64 print_float(double value)``
st[14] callback ``int64 deep(spec id, depth)``            (a call run by the interpreter)
st[15] callback ``double truediv(a, b)``                  (int / int past 2**53, exact)
st[16...31]  int/bool arguments of a deep call
st[32...]  (function index, pc) per unwound frame, innermost first
=====  =====================================================================

``sf`` (float64, ``SF_SIZE``): sf[0], sf[1] float operands of a failed
instruction, sf[2] the float result of a deep call, sf[4...19] its float
arguments.  ``GI``/``GF``: the module globals the closure uses, by type.
"""

from __future__ import annotations

OPERR, PENDING, EXIT, DEPTH = 1, 2, 3, 4
CB_TICK, CB_PRINT_INT, CB_PRINT_FLOAT, CB_DEEP, CB_TRUEDIV = 11, 12, 13, 14, 15
ARG0, FARG0, DEEP_ARGS = 16, 4, 16  # where a deep call's int / float arguments go in st / sf
FRAMES = 32
NBNEST = 400  # compiled frames nested per entry before a call goes to the interpreter (native stack)
ST_SIZE = FRAMES + 2 * (NBNEST + 8)  # header + (function, pc) per frame of one entry
SF_SIZE = 24
ENTRY = "nbcvm_entry"  # the C symbol of a closure's entry in its shared library
