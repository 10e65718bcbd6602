"""The Python tier's inline data instructions (translate.FAST_DATA) against the interpreter.

Each instruction has a guarded fast path for the common types and falls back to
the interpreter's handler otherwise; both sides of every guard are run here, with
errors caught and printed, and must match the interpreter exactly.
"""

from __future__ import annotations

import pytest
from jitutil import run_src, tiers

from nbcvm.runtime.limits import Limits


def _wrapper(name: str, params: str, body: str) -> str:
    return f"""
.func {name} {params}
    try bad *
{body}
    endtry
    print
    push 0
    ret
bad:
    dup
    errfield type
    print
    errfield message
    print
    push 0
    ret
.end
"""


OPS = (_wrapper("g2", "c k", "    load c\n    load k\n    getitem")
       + _wrapper("h2", "c k", "    load c\n    load k\n    has")
       + _wrapper("l1", "c", "    load c\n    len")
       + _wrapper("t1", "c", "    load c\n    tostr")
       + _wrapper("c2", "a b", "    load a\n    load b\n    concat")
       + _wrapper("s3", "c k v", "    load c\n    load k\n    load v\n    setitem\n    load c")
       + _wrapper("a2", "c v", "    load c\n    load v\n    append\n    load c"))

CASES = """
    ; m = {"a": 1}, l = [10, 20, 30]
    newmap 0
    store m
    load m
    push "a"
    push 1
    setitem
    push 10
    push 20
    push 30
    newlist 3
    store l
    load m
    push "a"
    call g2 2
    pop
    load m
    push "zz"
    call g2 2
    pop
    load m
    push 1
    call g2 2
    pop
    load l
    push 1
    call g2 2
    pop
    load l
    push -1
    call g2 2
    pop
    load l
    push 5
    call g2 2
    pop
    load l
    push "a"
    call g2 2
    pop
    push "xyz"
    push 1
    call g2 2
    pop
    push 5
    push 1
    call g2 2
    pop
    load m
    push "a"
    call h2 2
    pop
    load m
    push "q"
    call h2 2
    pop
    load l
    push 20
    call h2 2
    pop
    push "xyz"
    push "y"
    call h2 2
    pop
    push "xyz"
    push 1
    call h2 2
    pop
    push 5
    push 1
    call h2 2
    pop
    load m
    call l1 1
    pop
    load l
    call l1 1
    pop
    push "xyz"
    call l1 1
    pop
    push 5
    call l1 1
    pop
    push 5
    call t1 1
    pop
    push -1.5
    call t1 1
    pop
    load l
    call t1 1
    pop
    push nil
    call t1 1
    pop
    push true
    call t1 1
    pop
    push "a"
    push "b"
    call c2 2
    pop
    load l
    load l
    call c2 2
    pop
    push "a"
    push 1
    call c2 2
    pop
    load m
    push "b"
    push 2
    call s3 3
    pop
    load l
    push 0
    push 99
    call s3 3
    pop
    load l
    push -1
    push 98
    call s3 3
    pop
    load l
    push 9
    push 1
    call s3 3
    pop
    push 5
    push 0
    push 0
    call s3 3
    pop
    load m
    load l
    push 0
    call s3 3
    pop
    load l
    push 7
    call a2 2
    pop
    load m
    push 1
    call a2 2
    pop
    push 0
    ret
"""

PROGRAM = OPS + ".func main\n    .local m l\n" + CASES + ".end\n"


def test_every_guard_both_ways_matches_the_interpreter() -> None:
    off = run_src(PROGRAM, "off")
    jit = run_src(PROGRAM, "eager")
    assert off.exit_code == 0 and "KeyError" in off.stdout and "IndexError" in off.stdout
    assert jit.key() == off.key()
    t = tiers(jit.runtime)
    assert t["t.g2"] == t["t.s3"] == t["t.main"] == "python"


GROW = """
.func main n
    .local s i
    push ""
    store s
    push 0
    store i
top:
    load s
    load i
    tostr
    concat
    store s
    inc i 1
    load i
    load n
    lt
    jt top
    load s
    len
    print
    push 0
    ret
.end
"""


@pytest.mark.parametrize("cap", [None, 20_000, 200_000])
def test_inline_memory_charges_trip_the_limit_like_the_interpreter(cap) -> None:
    lim = Limits(max_memory=cap)
    off = run_src(GROW, "off", args=[3000], limits=lim)
    jit = run_src(GROW, "eager", args=[3000], limits=lim)
    assert (jit.exit_code, jit.stdout, jit.error) == (off.exit_code, off.stdout, off.error)
    # (where exactly it trips may differ by a few allocations: the roots' containers differ in
    # size between the tiers -- docs/jit.md, "Memory accounting")
    assert abs(jit.steps - off.steps) < 200
    if cap == 20_000:
        assert off.error == "LimitExceeded"
    else:
        assert off.error is None and off.stdout == "10890\n"
