"""nbcvm.jit -- the JIT tier: verified bytecode -> Python source -> numba.

This package file stays tiny: nothing here may import numba or numpy (``nbcvm run hello.nbc`` must not
load them).  See docs/jit.md for the model and ``nbcvm.jit.tier`` for the
per-runtime manager.

==============  ===============================================================
translate.py    a verified function -> Python source (the Python tier)
analysis.py     basic blocks; type inference for the numba tier
pyrt.py         run-time support of translated code (calls, errors, nesting)
nbgen.py        numeric functions -> numba source (typed locals, explicit checks)
nbtier.py       compiling that source with numba, the disk cache, the wrappers
nbrt.py         helpers compiled with numba (fuel ticks, printing, exact compares)
nbhost.py       the Python side of compiled code's callbacks (meter.tick, output, deep calls)
abi.py          the state arrays and callbacks shared by wrapper and compiled code
native.py       compiled closures as shared libraries (numba's IR -> llvmlite -> cc), loaded with ctypes
tier.py         JitManager: modes off/auto/eager, promotion, OSR, decisions, events
==============  ===============================================================
"""

MODES = ("off", "auto", "eager")


from nbcvm.vm.compile import DECLINE  # noqa: E402 - the interpreter's protocol, defined beside Fn

__all__ = ["DECLINE", "MODES"]
