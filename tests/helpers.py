"""Shared helpers for the tests: run NBC source in-process."""

from __future__ import annotations

import io
import textwrap

from nbcvm.asm.assembler import assemble
from nbcvm.runtime.limits import Limits
from nbcvm.runtime.runtime import Runtime


def run_src(src: str, args: list | None = None, limits: Limits | None = None, name: str = "t.nbc",
            search_path=None):
    """Assemble and run; returns (outcome, stdout text, runtime)."""
    out = io.StringIO()
    rt = Runtime(limits, stdout=out, search_path=search_path)
    inst = rt.instantiate(assemble(textwrap.dedent(src), name))
    outcome = rt.run_main(inst, args or [])
    return outcome, out.getvalue(), rt


def body(code: str, locals_: str = "") -> str:
    """Wrap instructions into a main function."""
    loc = f"    .local {locals_}\n" if locals_ else ""
    return ".func main\n" + loc + textwrap.dedent(code) + "\n.end\n"


# naive recursive fib with a main that returns it (no print): the profiler tests' workload
FIB_SOURCE = """
.func fib n
    load n
    push 2
    lt
    jf recurse
    load n
    ret
recurse:
    load n
    push 1
    sub
    call fib 1
    load n
    push 2
    sub
    call fib 1
    add
    ret
.end
.func main n
    load n
    call fib 1
    ret
.end
"""
