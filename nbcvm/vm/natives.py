"""Native modules: host functions a program reaches through ``.import``.

The ImportManager loads these like NBC modules (same states, same lazy
loading).  Every module here is *pure*: no files, environment, network or
processes -- a program gets host access only through capability modules the
runner grants (see ``nbcvm.runtime.capabilities``).

A native function declares its arity; calls are checked when linked.
Arguments and results are NBC values; host exceptions map to NBC errors by
type (``errors.HOST_MAP``).
"""

from __future__ import annotations

import math
import random as _random
import time as _time
from typing import Any, Callable

from nbcvm.errors import VMError
from nbcvm.vm.compile import NativeFn
from nbcvm.vm.ops_arith import INT_MAX, INT_MIN
from nbcvm.vm.values import to_str, type_name

VARIADIC = -1


class NativeModule:
    """A loaded native module: its name and functions."""

    is_native = True

    def __init__(self, name: str, functions: dict[str, NativeFn], doc: str = ""):
        self.name, self.functions, self.doc = name, functions, doc

    def lookup(self, fname: str) -> NativeFn | None:
        return self.functions.get(fname)


def _num(x: Any, fn: str) -> float:
    if type(x) not in (int, float, bool):
        raise VMError("TypeError", f"{fn} needs a number, got {type_name(x)}")
    return x


def _int(x: Any, fn: str) -> int:
    if type(x) is not int:
        raise VMError("TypeError", f"{fn} needs an int, got {type_name(x)}")
    return x


def _checked(v: Any, fn: str) -> Any:
    if type(v) is int and not INT_MIN <= v <= INT_MAX:
        raise VMError("OverflowError", f"int overflow in {fn}")
    return v


def _math(rt: Any) -> dict[str, tuple[int, Callable]]:
    def unary(name: str, f: Callable) -> tuple[int, Callable]:
        return 1, lambda x: f(_num(x, name))

    def ipow(a: Any, b: Any) -> Any:
        _num(a, "pow"), _num(b, "pow")
        if type(a) is int and type(b) is int:
            if b < 0:
                return float(a) ** b
            if abs(a) > 1 and b > 63:
                raise VMError("OverflowError", "int overflow in pow")
            return _checked(a**b, "pow")
        return math.pow(a, b)

    def iabs(x: Any) -> Any:
        return _checked(abs(_num(x, "abs")), "abs")

    def floor(x: Any) -> int:
        return _to_int(math.floor(_finite(_num(x, "floor"), "floor")), "floor")

    def ceil(x: Any) -> int:
        return _to_int(math.ceil(_finite(_num(x, "ceil"), "ceil")), "ceil")

    return {
        "sqrt": unary("sqrt", math.sqrt), "sin": unary("sin", math.sin), "cos": unary("cos", math.cos),
        "tan": unary("tan", math.tan), "exp": unary("exp", math.exp), "log": unary("log", math.log),
        "atan": unary("atan", math.atan),
        "atan2": (2, lambda y, x: math.atan2(_num(y, "atan2"), _num(x, "atan2"))),
        "pow": (2, ipow), "abs": (1, iabs), "floor": (1, floor), "ceil": (1, ceil),
        "min": (2, lambda a, b: min(_num(a, "min"), _num(b, "min"))),
        "max": (2, lambda a, b: max(_num(a, "max"), _num(b, "max"))),
        "pi": (0, lambda: math.pi), "inf": (0, lambda: math.inf),
        "isnan": (1, lambda x: math.isnan(_num(x, "isnan"))),
    }


def _finite(v: Any, fn: str) -> Any:
    if type(v) is float and (math.isinf(v) or math.isnan(v)):
        raise VMError("ValueError", f"{fn} of {v}")
    return v


def _to_int(v: float, fn: str) -> int:
    if math.isinf(v) or math.isnan(v):
        raise VMError("ValueError", f"{fn} of {v}")
    return _checked(int(v), fn)


def _time_mod(rt: Any) -> dict[str, tuple[int, Callable]]:
    t0 = _time.perf_counter()

    def sleep(s: Any) -> None:
        s = _num(s, "sleep")
        if s < 0:
            raise VMError("ValueError", "sleep time must not be negative")
        rt.meter.sleep(s)  # bounded by the run's deadline

    return {
        "now": (0, lambda: _time.perf_counter() - t0),  # seconds since the runtime started
        "ms": (0, lambda: int((_time.perf_counter() - t0) * 1000)),
        "sleep": (1, sleep),
    }


def _random_mod(rt: Any) -> dict[str, tuple[int, Callable]]:
    rng = _random.Random(rt.seed)

    def randint(a: Any, b: Any) -> int:
        a, b = _int(a, "int"), _int(b, "int")
        if a > b:
            raise VMError("ValueError", f"random.int: empty range {a}..{b}")
        return rng.randint(a, b)

    def choice(lst: Any) -> Any:
        if type(lst) is not list or not lst:
            raise VMError("ValueError", "random.choice needs a non-empty list")
        return rng.choice(lst)

    def seed(s: Any) -> None:
        rng.seed(_int(s, "seed"))

    return {"float": (0, rng.random), "int": (2, randint), "choice": (1, choice), "seed": (1, seed)}


def _str_mod(rt: Any) -> dict[str, tuple[int, Callable]]:
    def s(x: Any, fn: str) -> str:
        if type(x) is not str:
            raise VMError("TypeError", f"str.{fn} needs a string, got {type_name(x)}")
        return x

    def fixed(x: Any, digits: Any) -> str:
        d = _int(digits, "fixed")
        if not 0 <= d <= 50:
            raise VMError("ValueError", "str.fixed: digits must be 0..50")
        return f"{float(_num(x, 'fixed')):.{d}f}"

    def fmt(template: Any, args: Any) -> str:
        t = s(template, "format")
        if type(args) is not list:
            raise VMError("TypeError", "str.format needs a list of values")
        parts = t.split("{}")
        if len(parts) - 1 != len(args):
            raise VMError("ValueError", f"str.format: {len(parts) - 1} placeholders, {len(args)} values")
        out = [parts[0]]
        for a, p in zip(args, parts[1:]):
            out += [to_str(a), p]
        return "".join(out)

    def split(x: Any, sep: Any) -> list:
        sep = s(sep, "split")
        if not sep:
            raise VMError("ValueError", "str.split: empty separator")
        return s(x, "split").split(sep)

    def join(sep: Any, items: Any) -> str:
        if type(items) is not list:
            raise VMError("TypeError", "str.join needs a list")
        return s(sep, "join").join(to_str(i) for i in items)

    def find(x: Any, sub: Any) -> int:
        return s(x, "find").find(s(sub, "find"))

    def replace(x: Any, old: Any, new: Any) -> str:
        old, new, x = s(old, "replace"), s(new, "replace"), s(x, "replace")
        if not old:
            raise VMError("ValueError", "str.replace: empty pattern")
        if len(new) > len(old):  # bound the result before making it
            rt.meter.charge_memory(x.count(old) * (len(new) - len(old)))
        return x.replace(old, new)

    def repeat(x: Any, n: Any) -> str:
        n = _int(n, "repeat")
        x = s(x, "repeat")
        if n < 0:
            raise VMError("ValueError", "str.repeat: negative count")
        rt.meter.charge_memory(len(x) * n)
        return x * n

    def charged(f: Callable) -> Callable:
        def g(*args: Any) -> Any:
            v = f(*args)
            rt.meter.charge_memory(len(v) * (1 if type(v) is str else 8) + 56)
            return v
        return g

    join, replace, fmt, split = charged(join), charged(replace), charged(fmt), charged(split)
    return {
        "upper": (1, lambda x: s(x, "upper").upper()), "lower": (1, lambda x: s(x, "lower").lower()),
        "strip": (1, lambda x: s(x, "strip").strip()), "split": (2, split), "join": (2, join),
        "find": (2, find), "replace": (3, replace), "fixed": (2, fixed), "format": (2, fmt),
        "repeat": (2, repeat), "chr": (1, lambda n: _chr(n)), "ord": (1, lambda c: _ord(c)),
    }


def _chr(n: Any) -> str:
    n = _int(n, "chr")
    if not 0 <= n <= 0x10FFFF or 0xD800 <= n <= 0xDFFF:
        raise VMError("ValueError", f"str.chr: {n} is not a code point")
    return chr(n)


def _ord(c: Any) -> int:
    if type(c) is not str or len(c) != 1:
        raise VMError("TypeError", "str.ord needs a one-character string")
    return ord(c)


def _tensor_mod(rt: Any) -> dict[str, tuple[int, Callable]]:
    from nbcvm.lazy import NUMPY
    from nbcvm.vm.ops_tensor import MAX_ELEMENTS

    rng_holder: list = []

    def shape_of(shape: Any, fn: str) -> tuple[int, ...]:
        if type(shape) is int:
            shape = [shape]
        if type(shape) is not list or not all(type(x) is int and x >= 0 for x in shape) or len(shape) > 8:
            raise VMError("TypeError", f"tensor.{fn} needs a shape: a list of up to 8 non-negative ints")
        size = 1
        for x in shape:
            size *= x
        if size > MAX_ELEMENTS:
            raise VMError("ResourceError", f"tensor.{fn}: {size} elements is more than {MAX_ELEMENTS}")
        rt.meter.charge_memory(size * 8)
        return tuple(shape)

    def zeros(shape: Any):
        return NUMPY.get().zeros(shape_of(shape, "zeros"))

    def ones(shape: Any):
        return NUMPY.get().ones(shape_of(shape, "ones"))

    def full(shape: Any, v: Any):
        return NUMPY.get().full(shape_of(shape, "full"), float(_num(v, "full")))

    def arange(n: Any):
        return NUMPY.get().arange(float(shape_of(_int(n, "arange"), "arange")[0]))

    def eye(n: Any):
        k = shape_of([_int(n, "eye"), n], "eye")[0]
        return NUMPY.get().eye(k)

    def rand(shape: Any):
        np = NUMPY.get()
        if not rng_holder:
            rng_holder.append(np.random.default_rng(rt.seed))
        return rng_holder[0].random(shape_of(shape, "rand"))

    return {"zeros": (1, zeros), "ones": (1, ones), "full": (2, full), "arange": (1, arange),
            "eye": (1, eye), "rand": (1, rand)}


def _sys_mod(rt: Any) -> dict[str, tuple[int, Callable]]:
    return {"args": (0, lambda: list(rt.argv)), "seed": (0, lambda: rt.seed)}


# name -> (factory(runtime) -> {function: (arity, callable)}, one-line doc)
REGISTRY: dict[str, tuple[Callable[[Any], dict[str, tuple[int, Callable]]], str]] = {
    "math": (_math, "sqrt, sin, cos, tan, atan, atan2, exp, log, pow, abs, floor, ceil, min, max, pi, inf, isnan"),
    "time": (_time_mod, "now (seconds since start), ms, sleep (bounded by the deadline)"),
    "random": (_random_mod, "float, int a b, choice, seed -- seeded by --seed"),
    "str": (_str_mod, "upper, lower, strip, split, join, find, replace, fixed, format, repeat, chr, ord"),
    "tensor": (_tensor_mod, "zeros, ones, full, arange, eye, rand (seeded) -- numpy-backed"),
    "sys": (_sys_mod, "args (the program's command-line arguments as strings), seed"),
}


def instantiate(name: str, rt: Any, factory: Callable | None = None) -> NativeModule:
    make, doc = (factory, "") if factory else REGISTRY[name]
    fns = {fname: NativeFn(name, fname, arity, f) for fname, (arity, f) in make(rt).items()}
    return NativeModule(name, fns, doc)
