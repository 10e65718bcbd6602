"""Resource handlers: regions and explicit tensor handles (see runtime/resources.py)."""

from __future__ import annotations

from nbcvm.errors import VMError
from nbcvm.lazy import NUMPY
from nbcvm.vm.values import site_str
from nbcvm.vm.compile import InsCtx, handler
from nbcvm.vm.ops_tensor import MAX_ELEMENTS


def _site(c: InsCtx) -> tuple[str, str, str, int]:
    return (c.inst.name, c.fn.name, c.inst.module.source, c.fn.line_of(c.pc))


@handler("region")
def _region(c: InsCtx):
    rm, pc, nxt = c.inst.runtime.resources, c.pc, c.nxt

    def h(r: list) -> int:
        rm.open_region(id(r), pc)
        return nxt

    return h


@handler("endregion")
def _endregion(c: InsCtx):
    rm, nxt = c.inst.runtime.resources, c.nxt

    def h(r: list) -> int:
        rm.close_region()
        return nxt

    return h


def shape_of(v) -> tuple[int, ...]:
    if type(v) is int and 0 <= v <= MAX_ELEMENTS:
        return (v,)
    shape = [v] if type(v) is int else v
    if type(shape) is not list or not shape or len(shape) > 8 or \
            not all(type(x) is int and x >= 0 for x in shape):
        raise VMError("TypeError", "alloc needs a shape: an int or a list of up to 8 non-negative ints")
    n = 1
    for x in shape:
        n *= x
    if n > MAX_ELEMENTS:
        raise VMError("ResourceError", f"alloc of {n} elements is more than {MAX_ELEMENTS}")
    return tuple(shape)


@handler("alloc")
def _alloc(c: InsCtx):
    rm, s, nxt, site = c.inst.runtime.resources, c.sp - 1, c.nxt, _site(c)

    def h(r: list) -> int:
        np = NUMPY.get()
        shape = shape_of(r[s])
        nbytes = 8
        for x in shape:
            nbytes *= x
        if nbytes < 64:
            nbytes = 64  # a handle costs at least its bookkeeping
        rm.charge(nbytes, r)  # may raise: nothing has been made yet
        r[s] = rm.register("tensor", np.zeros(shape), nbytes, site)
        return nxt

    return h


@handler("free")
def _free(c: InsCtx):
    rm, s, nxt = c.inst.runtime.resources, c.sp - 1, c.nxt
    where = site_str(_site(c))

    def h(r: list) -> int:
        rm.free(r[s], where)
        r[s] = None
        return nxt

    return h
