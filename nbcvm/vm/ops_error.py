"""Error handlers: try/endtry regions, throw, rethrow, errfield.

``try``/``endtry`` cost nothing at run time: the verifier turns them into a
static region table (like CPython's and the JVM's exception tables) that the
loop consults only when an error unwinds.  So both compile to no-ops.
"""

from __future__ import annotations

from nbcvm.errors import VMError
from nbcvm.vm.compile import InsCtx, handler
from nbcvm.vm.values import to_str, type_name


@handler("try", "endtry")
def _region_marker(c: InsCtx):
    nxt = c.nxt
    return lambda r: nxt


@handler("finally")
def _finally(c: InsCtx):
    x, nxt = c.args[1], c.nxt

    def h(r: list) -> int:
        r[x] = None  # no error yet: the cleanup block will be reached normally
        return nxt

    return h


@handler("endfinally")
def _endfinally(c: InsCtx):
    x, nxt = c.args[0], c.nxt

    def h(r: list) -> int:
        v = r[x]
        if isinstance(v, VMError):
            r[x] = None
            raise v
        return nxt

    return h


@handler("throw")
def _throw(c: InsCtx):
    s, tname = c.sp - 1, c.name

    def h(r: list) -> int:
        v = r[s]
        raise VMError(tname, v if type(v) is str else to_str(v))

    return h


@handler("rethrow")
def _rethrow(c: InsCtx):
    s = c.sp - 1

    def h(r: list) -> int:
        v = r[s]
        if not isinstance(v, VMError):
            raise VMError("TypeError", f"rethrow needs an error value, got {type_name(v)}")
        raise v

    return h


def error_field(e, field: str):
    if not isinstance(e, VMError):
        raise VMError("TypeError", f"errfield needs an error value, got {type_name(e)}")
    t = e.etype
    if field == "type":
        return t.name
    if field == "category":
        return t.category
    if field == "code":
        return t.code
    if field == "message":
        return e.message
    if field == "recoverable":
        return t.recoverable
    # traceback: a list of "module.function (file:line)" strings, outermost first
    return [f"{x.module}.{x.function} ({x.file}:{x.line})" for x in e.traceback]


@handler("errfield")
def _errfield(c: InsCtx):
    s, field, nxt = c.sp - 1, c.name, c.nxt

    def h(r: list) -> int:
        r[s] = error_field(r[s], field)
        return nxt

    return h
