"""Tensor handlers, backed by numpy float64 arrays.

numpy is imported through ``nbcvm.lazy`` when a function that uses a tensor
instruction is first compiled -- a program without tensors never loads it.
Tensors are values: elementwise ops and matmul return new arrays.
"""

from __future__ import annotations

from nbcvm.errors import VMError
from nbcvm.lazy import NUMPY
from nbcvm.vm.compile import InsCtx, handler
from nbcvm.vm.values import type_name

MAX_ELEMENTS = 1 << 26  # 512 MiB of float64; larger requests are refused


def unwrap(v):
    """A tensor handle stands for its tensor (refused once freed)."""
    return v.get() if type(v).__name__ == "Handle" else v


def _is_tensor(v) -> bool:
    return type(v).__name__ == "ndarray"


def _need(v, what: str):
    if not _is_tensor(v):
        raise VMError("TypeError", f"{what} needs a tensor, got {type_name(v)}")
    return v


def make_tensor(v):
    np = NUMPY.get()
    if _is_tensor(v):
        return v.copy()
    if type(v) is not list:
        raise VMError("TypeError", f"tensor needs a (nested) list of numbers, got {type_name(v)}")
    try:
        a = np.array(v, dtype=np.float64)
    except (ValueError, TypeError):
        raise VMError("ValueError", "tensor needs a rectangular nested list of numbers") from None
    if a.dtype != np.float64:
        raise VMError("ValueError", "tensor needs a rectangular nested list of numbers")
    return a


def _elementwise(name: str, f):
    def op(a, b):
        np = NUMPY.get()
        if not (_is_tensor(a) or _is_tensor(b)):
            raise VMError("TypeError", f"{name} needs at least one tensor, got {type_name(a)} and {type_name(b)}")
        for x in (a, b):
            if not _is_tensor(x) and type(x) not in (int, float, bool):
                raise VMError("TypeError", f"{name} operand must be a tensor or number, got {type_name(x)}")
        if _is_tensor(a) and _is_tensor(b):
            try:
                np.broadcast_shapes(a.shape, b.shape)
            except ValueError:
                raise VMError("ValueError", f"{name}: shapes {list(a.shape)} and {list(b.shape)} do not match") from None
        with np.errstate(divide="raise", invalid="ignore", over="ignore"):
            try:
                return np.asarray(f(a, b), dtype=np.float64)
            except FloatingPointError:
                raise VMError("ZeroDivisionError", f"{name}: division by zero") from None
    return op


def matmul(a, b):
    _need(a, "matmul"), _need(b, "matmul")
    if a.ndim == 0 or b.ndim == 0 or a.shape[-1] != b.shape[0 if b.ndim == 1 else -2]:
        raise VMError("ValueError", f"matmul: shapes {list(a.shape)} and {list(b.shape)} do not agree")
    if a.ndim > 2 or b.ndim > 2:
        raise VMError("ValueError", "matmul takes vectors and matrices (at most 2 dimensions)")
    rows = a.shape[0] if a.ndim == 2 else 1
    cols = b.shape[-1] if b.ndim == 2 else 1
    if rows * cols > MAX_ELEMENTS:
        raise VMError("ResourceError", f"matmul result of {rows * cols} elements is too large")
    out = a @ b
    return out if _is_tensor(out) else NUMPY.get().float64(out).reshape(())


def _reduce(name: str, attr: str):
    def op(a):
        _need(a, name)
        if a.size == 0 and attr in ("max", "min", "mean"):
            raise VMError("ValueError", f"{name} of an empty tensor")
        return float(getattr(a, attr)())
    return op


def reshape(a, shape):
    _need(a, "reshape")
    if type(shape) is not list or not all(type(x) is int and x >= 0 for x in shape):
        raise VMError("TypeError", "reshape needs a list of non-negative ints")
    size = 1
    for x in shape:
        size *= x
    if size != a.size:
        raise VMError("ValueError", f"cannot reshape {list(a.shape)} to {shape}")
    return a.reshape(shape).copy()


def _shape(a):
    return [int(x) for x in _need(a, "shape").shape]


def _tolist(a):
    _need(a, "tolist")
    return a.tolist() if a.ndim else float(a)


_UNARY = {"tensor": make_tensor, "shape": _shape, "tsum": _reduce("tsum", "sum"),
          "tmean": _reduce("tmean", "mean"), "tmax": _reduce("tmax", "max"),
          "tmin": _reduce("tmin", "min"), "tolist": _tolist}
_BINARY = {"tadd": _elementwise("tadd", lambda a, b: a + b),
           "tsub": _elementwise("tsub", lambda a, b: a - b),
           "tmul": _elementwise("tmul", lambda a, b: a * b),
           "tdiv": _elementwise("tdiv", lambda a, b: a / b),
           "matmul": matmul, "reshape": reshape}


@handler(*_UNARY)
def _unary(c: InsCtx):
    NUMPY.get()  # fail at compile time of the function if numpy is missing
    f, s, nxt, m = _UNARY[c.op.name], c.sp - 1, c.nxt, c.meter

    def h(r: list) -> int:
        v = f(unwrap(r[s]))
        if _is_tensor(v):
            m.charge_memory(v.nbytes + 112, r)
        elif type(v) is list:
            m.charge_memory(8 * len(v) + 56, r)
        r[s] = v
        return nxt

    return h


@handler(*_BINARY)
def _binary(c: InsCtx):
    NUMPY.get()
    f, s, nxt = _BINARY[c.op.name], c.sp - 2, c.nxt

    m = c.meter

    def h(r: list) -> int:
        v = f(unwrap(r[s]), unwrap(r[s + 1]))
        if _is_tensor(v):
            m.charge_memory(v.nbytes + 112, r)
        r[s] = v
        return nxt

    return h
