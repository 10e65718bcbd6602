"""nbcvm.jit -- the JIT tier: verified bytecode -> Python source -> numba.

This package file stays tiny: the interpreter imports ``DECLINE`` from it,
and nothing here may import numba or numpy (``nbcvm run hello.nbc`` must not
load them).  See docs/jit.md for the model and ``nbcvm.jit.tier`` for the
per-runtime manager.

==============  ===============================================================
translate.py    a verified function -> Python source (the Python tier)
analysis.py     basic blocks; type inference for the numba tier
pyrt.py         run-time support of translated code (calls, errors, nesting)
nbgen.py        numeric functions -> numba source (typed locals, explicit checks)
nbtier.py       compiling that source with numba, the disk cache, the wrappers
nbrt.py         helpers compiled with numba (fuel ticks, printing, exact compares)
nbhost.py       the Python side of those helpers (object mode: meter.tick, output, deep calls)
tier.py         JitManager: modes off/auto/eager, promotion, OSR, decisions, events
==============  ===============================================================
"""

MODES = ("off", "auto", "eager")


class _Decline:
    """Returned by ``Fn.jit_state(args, depth)`` when the interpreter should run the call."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "DECLINE"


DECLINE = _Decline()
