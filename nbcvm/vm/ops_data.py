"""Data handlers: output, strings, lists, maps, conversions.

Operations check their operand types themselves and raise host TypeError /
IndexError / KeyError / ValueError, which the loop maps to NBC errors by type.
Lists index from 0; a negative index counts from the end.  Map keys are
nil, bools, numbers and strings (hashable scalars).
"""

from __future__ import annotations

import math

from nbcvm.errors import VMError
from nbcvm.vm.compile import InsCtx, handler
from nbcvm.vm.ops_arith import INT_MAX, INT_MIN
from nbcvm.vm.values import to_str, type_name

_KEY_TYPES = (type(None), bool, int, float, str)


def _h1(c: InsCtx, f):
    """Handler for a one-operand function: r[top] = f(r[top])."""
    s, nxt = c.sp - 1, c.nxt

    def h(r: list) -> int:
        r[s] = f(r[s])
        return nxt

    return h


def _h2(c: InsCtx, f):
    s, nxt = c.sp - 2, c.nxt

    def h(r: list) -> int:
        r[s] = f(r[s], r[s + 1])
        return nxt

    return h


@handler("print")
def _print(c: InsCtx):
    s, nxt, out = c.sp - 1, c.nxt, c.inst.runtime.output

    def h(r: list) -> int:
        out.write(to_str(r[s]) + "\n")
        r[s] = None
        return nxt

    return h


def concat(a, b):
    ta, tb = type(a), type(b)
    if ta is tb and (ta is str or ta is list):
        return a + b
    raise VMError("TypeError", f"concat needs two strings or two lists, got {type_name(a)} and {type_name(b)}")


def _unwrap(v):
    return v.get() if type(v).__name__ == "Handle" else v


def length(v) -> int:
    v = _unwrap(v)
    t = type(v)
    if t is str or t is list or t is dict:
        return len(v)
    if t.__name__ == "ndarray":
        return int(v.shape[0]) if v.ndim else 1
    raise VMError("TypeError", f"len of {type_name(v)}")


def to_int(v) -> int:
    t = type(v)
    if t is int:
        return v
    if t is bool:
        return int(v)
    if t is float:
        if math.isnan(v) or math.isinf(v):
            raise VMError("ValueError", f"cannot convert {to_str(v)} to int")
        i = int(v)
    elif t is str:
        try:
            i = int(v.strip().replace("_", "x"), 10)  # no underscores, base 10 only
        except ValueError:
            raise VMError("ValueError", f"not an int: {v[:40]!r}") from None
    else:
        raise VMError("TypeError", f"cannot convert {type_name(v)} to int")
    if not INT_MIN <= i <= INT_MAX:
        raise VMError("OverflowError", f"{to_str(v)[:40]} does not fit in 64 bits")
    return i


def to_float(v) -> float:
    t = type(v)
    if t is float:
        return v
    if t is int or t is bool:
        return float(v)
    if t is str:
        if len(v) > 400:
            raise VMError("ValueError", "numeric string too long")
        try:
            return float(v.replace("_", "x"))
        except ValueError:
            raise VMError("ValueError", f"not a float: {v[:40]!r}") from None
    raise VMError("TypeError", f"cannot convert {type_name(v)} to float")


def _index(seq, key, what: str) -> int:
    if type(key) is not int:
        raise VMError("TypeError", f"{what} index must be an int, got {type_name(key)}")
    n = len(seq)
    i = key + n if key < 0 else key
    if not 0 <= i < n:
        raise VMError("IndexError", f"{what} index {key} out of range (length {n})")
    return i


def getitem(c, k):
    c = _unwrap(c)
    t = type(c)
    if t is list:
        return c[_index(c, k, "list")]
    if t is dict:
        if type(k) not in _KEY_TYPES:
            raise VMError("TypeError", f"map key must be a scalar, got {type_name(k)}")
        try:
            return c[k]
        except KeyError:
            raise VMError("KeyError", f"key {to_str(k) if type(k) is not str else repr(k)} not in map") from None
    if t is str:
        return c[_index(c, k, "string")]
    if t.__name__ == "ndarray":
        i = _index(c, k, "tensor")
        v = c[i]
        return float(v) if c.ndim == 1 else v.copy()
    raise VMError("TypeError", f"cannot index {type_name(c)}")


def setitem(c, k, v) -> None:
    c = _unwrap(c)
    t = type(c)
    if t is list:
        c[_index(c, k, "list")] = v
    elif t is dict:
        if type(k) not in _KEY_TYPES:
            raise VMError("TypeError", f"map key must be a scalar, got {type_name(k)}")
        c[k] = v
    elif t.__name__ == "ndarray" and c.ndim == 1:
        if type(v) not in (int, float, bool):
            raise VMError("TypeError", f"tensor element must be a number, got {type_name(v)}")
        c[_index(c, k, "tensor")] = v
    else:
        raise VMError("TypeError", f"cannot assign into {type_name(c)}")


def has(c, k) -> bool:
    t = type(c)
    if t is dict:
        return type(k) in _KEY_TYPES and k in c
    if t is list:
        return k in c
    if t is str:
        if type(k) is not str:
            raise VMError("TypeError", f"string contains needs a string, got {type_name(k)}")
        return k in c
    raise VMError("TypeError", f"has on {type_name(c)}")


def delitem(c, k) -> None:
    t = type(c)
    if t is list:
        del c[_index(c, k, "list")]
    elif t is dict:
        if type(k) not in _KEY_TYPES or k not in c:
            raise VMError("KeyError", f"key {to_str(k)} not in map")
        del c[k]
    else:
        raise VMError("TypeError", f"cannot delete from {type_name(c)}")


def slice_(s, a, b):
    if type(s) not in (str, list):
        raise VMError("TypeError", f"slice of {type_name(s)}")
    for x in (a, b):
        if x is not None and type(x) is not int:
            raise VMError("TypeError", f"slice bounds must be ints or nil, got {type_name(x)}")
    return s[a:b]


@handler("concat")
def _concat(c: InsCtx):
    s, nxt, m = c.sp - 2, c.nxt, c.meter

    def h(r: list) -> int:
        a, b = r[s], r[s + 1]
        if type(a) is type(b) and (type(a) is str or type(a) is list):
            m.charge_memory((len(a) + len(b)) * (1 if type(a) is str else 8) + 56, r)
        r[s] = concat(a, b)
        return nxt

    return h


@handler("len")
def _len(c: InsCtx):
    return _h1(c, length)


@handler("tostr")
def _tostr(c: InsCtx):
    s, nxt, m = c.sp - 1, c.nxt, c.meter

    def h(r: list) -> int:
        v = to_str(r[s])
        m.charge_memory(len(v) + 49, r)
        r[s] = v
        return nxt

    return h


@handler("toint")
def _toint(c: InsCtx):
    return _h1(c, to_int)


@handler("tofloat")
def _tofloat(c: InsCtx):
    return _h1(c, to_float)


@handler("typeof")
def _typeof(c: InsCtx):
    return _h1(c, type_name)


@handler("newlist")
def _newlist(c: InsCtx):
    n, nxt = c.args[0], c.nxt
    s = c.sp - n

    m = c.meter

    def h(r: list) -> int:
        m.charge_memory(8 * n + 56, r)
        r[s] = r[s:s + n]
        return nxt

    return h


@handler("newmap")
def _newmap(c: InsCtx):
    n, nxt = c.args[0], c.nxt
    s = c.sp - 2 * n

    m = c.meter

    def h(r: list) -> int:
        m.charge_memory(64 * n + 64, r)
        items = r[s:s + 2 * n]
        d = {}
        for i in range(0, 2 * n, 2):
            k = items[i]
            if type(k) not in _KEY_TYPES:
                raise VMError("TypeError", f"map key must be a scalar, got {type_name(k)}")
            d[k] = items[i + 1]
        r[s] = d
        return nxt

    return h


@handler("getitem")
def _getitem(c: InsCtx):
    return _h2(c, getitem)


@handler("setitem")
def _setitem(c: InsCtx):
    s, nxt, m = c.sp - 3, c.nxt, c.meter

    def h(r: list) -> int:
        d = r[s]
        if type(d) is dict and type(r[s + 1]) in _KEY_TYPES and r[s + 1] not in d:
            m.charge_memory(64, r)  # a new map entry (a bad key: setitem raises the TypeError)
        setitem(d, r[s + 1], r[s + 2])
        return nxt

    return h


@handler("append")
def _append(c: InsCtx):
    s, nxt, m = c.sp - 2, c.nxt, c.meter

    def h(r: list) -> int:
        m.charge_memory(8, r)
        lst = r[s]
        if type(lst) is not list:
            raise VMError("TypeError", f"append to {type_name(lst)}")
        lst.append(r[s + 1])
        return nxt

    return h


@handler("has")
def _has(c: InsCtx):
    return _h2(c, has)


@handler("keys")
def _keys(c: InsCtx):
    s, nxt, m = c.sp - 1, c.nxt, c.meter

    def h(r: list) -> int:
        d = r[s]
        if type(d) is not dict:
            raise VMError("TypeError", f"keys of {type_name(d)}")
        m.charge_memory(8 * len(d) + 56, r)
        r[s] = list(d)
        return nxt

    return h


@handler("delitem")
def _delitem(c: InsCtx):
    s, nxt = c.sp - 2, c.nxt

    def h(r: list) -> int:
        delitem(r[s], r[s + 1])
        return nxt

    return h


@handler("slice")
def _slice(c: InsCtx):
    s, nxt = c.sp - 3, c.nxt

    m = c.meter

    def h(r: list) -> int:
        v = slice_(r[s], r[s + 1], r[s + 2])
        m.charge_memory(len(v) * (1 if type(v) is str else 8) + 56, r)
        r[s] = v
        return nxt

    return h
