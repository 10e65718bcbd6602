"""NBC values as host objects, and how they print.

=========  ==========================  ========================
NBC type   host representation         printed
=========  ==========================  ========================
nil        None                        nil
bool       bool                        true / false
int        int in the int64 range      42
float      float                       3.5, 1e+100, inf, nan
string     str                         the text itself
list       list                        [1, "a", 2.5]
map        dict                        {"k": 1}
tensor     numpy.ndarray (float64)     tensor([[1.0, 2.0]])
error      nbcvm.errors.VMError        <ZeroDivisionError: ...>
=========  ==========================  ========================

Printing is cycle-safe (a list holding itself prints ``[...]``) and depth
limited, so no program can make the host recurse without bound.
"""

from __future__ import annotations

import math

from nbcvm.errors import VMError

Site = tuple[str, str, str, int]  # where a resource was made: module, function, file, line


def site_str(site: Site) -> str:
    return f"{site[0]}.{site[1]} ({site[2]}:{site[3]})"

MAX_PRINT_DEPTH = 64


def type_name(v: object) -> str:
    if v is None:
        return "nil"
    t = type(v)
    if t is bool:
        return "bool"
    if t is int:
        return "int"
    if t is float:
        return "float"
    if t is str:
        return "string"
    if t is list:
        return "list"
    if t is dict:
        return "map"
    if isinstance(v, VMError):
        return "error"
    if t.__name__ == "ndarray":
        return "tensor"
    return "handle"


def fmt_float(x: float) -> str:
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return repr(x)


def to_str(v: object) -> str:
    """The printed form of a value (strings print bare at top level)."""
    if type(v) is str:
        return v
    out: list[str] = []
    _fmt(v, out, set(), 0)
    return "".join(out)


def _fmt(v: object, out: list[str], seen: set[int], depth: int) -> None:
    t = type(v)
    if v is None:
        out.append("nil")
    elif t is bool:
        out.append("true" if v else "false")
    elif t is int:
        out.append(str(v))
    elif t is float:
        out.append(fmt_float(v))  # type: ignore[arg-type]
    elif t is str:
        from nbcvm.asm.lexer import encode_string

        out.append(encode_string(v))  # type: ignore[arg-type]
    elif t is list or t is dict:
        if id(v) in seen or depth >= MAX_PRINT_DEPTH:
            out.append("[...]" if t is list else "{...}")
            return
        seen.add(id(v))
        if t is list:
            out.append("[")
            for i, x in enumerate(v):  # type: ignore[arg-type]
                if i:
                    out.append(", ")
                _fmt(x, out, seen, depth + 1)
            out.append("]")
        else:
            out.append("{")
            for i, (k, x) in enumerate(v.items()):  # type: ignore[union-attr]
                if i:
                    out.append(", ")
                _fmt(k, out, seen, depth + 1)
                out.append(": ")
                _fmt(x, out, seen, depth + 1)
            out.append("}")
        seen.discard(id(v))
    elif isinstance(v, VMError):
        out.append(f"<{v.type_name}: {v.message}>")
    elif t.__name__ == "Handle":
        out.append(f"<{v.kind} handle #{v.id}{' freed' if v.released_at else ''}>")
    elif t.__name__ == "ndarray":
        out.append("tensor(")
        _fmt(_tensor_list(v), out, seen, depth)
        out.append(")")
    else:
        out.append(f"<{type_name(v)}>")


def _tensor_list(a) -> object:
    return a.tolist() if a.ndim else float(a)


def truthy(v: object) -> bool:
    if type(v).__name__ == "ndarray":
        raise TypeError("a tensor has no truth value; reduce it first (tsum, tmax ...)")
    return bool(v)


def held_bytes(roots: list) -> int:
    """Bytes held by the values reachable from ``roots`` (lists of values).

    Iterative and cycle-safe; shared objects count once.  Scalars inside
    containers are counted through the container's own size.
    """
    import sys

    seen: set[int] = set()
    total = 0
    stack = list(roots)
    while stack:
        v = stack.pop()
        t = type(v)
        if t is str:
            if id(v) not in seen:
                seen.add(id(v))
                total += sys.getsizeof(v)
        elif t is list:
            if id(v) not in seen:
                seen.add(id(v))
                total += sys.getsizeof(v)
                stack.extend(v)
        elif t is dict:
            if id(v) not in seen:
                seen.add(id(v))
                total += sys.getsizeof(v)
                stack.extend(v.keys())
                stack.extend(v.values())
        elif t.__name__ == "ndarray":
            if id(v) not in seen:
                seen.add(id(v))
                total += int(v.nbytes) + 112
        elif t.__name__ == "Handle":  # a live handle holds its value (an alloc'd tensor)
            if id(v) not in seen and v.value is not None:
                seen.add(id(v))
                stack.append(v.value)
    return total
