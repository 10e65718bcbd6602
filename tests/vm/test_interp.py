"""Interpreter semantics: arithmetic, control, calls, errors, limits, fusion."""

import math

import pytest

from helpers import body, run_src
from nbcvm.runtime.limits import Limits
from nbcvm.vm import fuse

INT_MAX = 2**63 - 1


@pytest.fixture(params=[True, False], ids=["fused", "plain"])
def fusion(request, monkeypatch):
    """Every test in this file runs with and without superinstructions."""
    monkeypatch.setattr(fuse, "ENABLED", request.param)
    return request.param


def out_of(code: str, locals_: str = "", **kw) -> str:
    outcome, out, _ = run_src(body(code, locals_), **kw)
    assert outcome.error is None, outcome.error
    return out


def err_of(code: str, locals_: str = "", **kw):
    outcome, out, _ = run_src(body(code, locals_), **kw)
    assert outcome.error is not None and outcome.exit_code == 1
    return outcome.error


@pytest.mark.parametrize("expr,want", [
    ("push 7\npush 2\nidiv", "3"), ("push -7\npush 2\nidiv", "-4"), ("push -7\npush 2\nmod", "1"),
    ("push 7\npush -2\nmod", "-1"), ("push 7\npush 2\ndiv", "3.5"), ("push 1\npush 2\nadd", "3"),
    ("push 1.5\npush 2\nmul", "3.0"), ("push 2\npush 3\nsub", "-1"), ("push 5\nneg", "-5"),
    ("push 6\npush 3\nband", "2"), ("push 6\npush 3\nbor", "7"), ("push 6\npush 3\nbxor", "5"),
    ("push 1\npush 62\nshl", str(1 << 62)), ("push -8\npush 1\nshr", "-4"),
    ("push 1\npush 1.0\neq", "true"), ("push \"a\"\npush \"b\"\nlt", "true"),
    ("push 0\nnot", "true"), ("push \"\"\npush 1\nor", "true"), ("push 1\npush nil\nand", "false"),
    ("push 0.1\npush 0.2\nadd", "0.30000000000000004"), ("push 1e100\npush 10.0\nmul", "1e+101"),
])
def test_arith(fusion, expr, want):
    assert out_of(expr + "\nprint\npush 0\nret") == want + "\n"


@pytest.mark.parametrize("expr", [
    f"push {INT_MAX}\npush 1\nadd", f"push {-INT_MAX - 1}\npush 1\nsub", f"push {INT_MAX}\npush 2\nmul",
    f"push {-INT_MAX - 1}\nneg", f"push {-INT_MAX - 1}\npush -1\nidiv", "push 1\npush 63\nshl",
    "push 1\npush 64\nshl",
])
def test_overflow(fusion, expr):
    e = err_of(expr + "\nprint\npush 0\nret")
    assert e.type_name == "OverflowError"


def test_inc_overflow(fusion):
    assert err_of(f"push {INT_MAX}\nstore x\ninc x 1\npush 0\nret", "x").type_name == "OverflowError"


@pytest.mark.parametrize("op", ["div", "idiv", "mod"])
@pytest.mark.parametrize("zero", ["0", "0.0"])
def test_zero_division(fusion, op, zero):
    e = err_of(f"push 1\npush {zero}\n{op}\nprint\npush 0\nret")
    assert e.type_name == "ZeroDivisionError" and e.etype.category == "arithmetic"


@pytest.mark.parametrize("expr,msg", [
    ('push "a"\npush 1\nadd', "add: string and int"),
    ('push "a"\npush 3\nmul', "mul: string and int"),
    ('push "%d"\npush 3\nmod', "mod: string and int"),
    ('push 1\npush "x"\nlt', "lt: int and string"),
])
def test_type_errors_name_operands(fusion, expr, msg):
    e = err_of(expr + "\nprint\npush 0\nret")
    assert e.type_name == "TypeError" and msg in e.message


def test_fused_operands_from_locals_and_globals(fusion):
    src = """
    .global g 10
    .func main
        .local a b
        push 3
        store a
        gload g
        load a
        sub
        store b
        load b
        print
        load a
        push 2
        mul
        gstore g
        gload g
        print
        push 0
        ret
    .end
    """
    outcome, out, _ = run_src(src)
    assert out == "7\n6\n"


def test_loop_and_branch_fusion(fusion):
    out = out_of("""
    push 0
    store i
    push 0
    store s
top:
    load i
    push 10
    lt
    jf done
    load s
    load i
    add
    store s
    inc i 1
    jmp top
done:
    load s
    print
    push 0
    ret""", "i s")
    assert out == "45\n"


def test_recursion_and_depth(fusion):
    src = """
    .func sum n
        load n
        push 0
        eq
        jf more
        push 0
        ret
    more:
        load n
        load n
        push 1
        sub
        call sum 1
        add
        ret
    .end
    .func main n
        load n
        call sum 1
        print
        push 0
        ret
    .end
    """
    outcome, out, _ = run_src(src, [50000])
    assert out == "1250025000\n" and outcome.stats.max_depth == 50002
    outcome, out, _ = run_src(src, [50000], limits=Limits(max_depth=1000))
    e = outcome.error
    assert e.type_name == "LimitExceeded" and e.details["limit"] == "depth" and e.details["max"] == 1000
    assert e.traceback[-1].function == "sum" and len(e.traceback) == 1000


def test_fuel_is_exact(fusion):
    # 5 instructions before the loop, each iteration 4 (load, push, lt, jt) + body
    src = body("""
    push 0
    store i
top:
    inc i 1
    load i
    push 100
    lt
    jt top
    push 0
    ret""", "i")
    outcome, _, _ = run_src(src)
    steps = outcome.stats.steps
    assert steps == 2 + 100 * 5 + 2
    ok, _, _ = run_src(src, limits=Limits(max_steps=steps))
    assert ok.error is None
    bad, _, _ = run_src(src, limits=Limits(max_steps=steps - 1))
    assert bad.error.type_name == "LimitExceeded" and bad.error.details["limit"] == "steps"
    assert bad.error.details["max"] == steps - 1


def test_timeout(fusion):
    e = err_of("top:\njmp top\npush 0\nret", limits=Limits(timeout=0.2))
    assert e.details["limit"] == "time" and not e.catchable


def test_limit_not_catchable(fusion):
    e = err_of("try h *\ntop:\njmp top\nendtry\npush 0\nret\nh:\npop\npush 5\nret",
               limits=Limits(max_steps=1000))
    assert e.type_name == "LimitExceeded"


def test_try_catch_by_type_category_and_fields(fusion):
    out = out_of("""
    try h1 ZeroDivisionError
    push 1
    push 0
    idiv
    pop
    endtry
    push 0
    ret
h1:
    dup
    errfield type
    print
    dup
    errfield category
    print
    dup
    errfield code
    print
    errfield message
    print
    try h2 index
    newlist 0
    push 3
    getitem
    pop
    endtry
    push 1
    ret
h2:
    errfield type
    print
    push 0
    ret""")
    assert out.splitlines()[:3] == ["ZeroDivisionError", "arithmetic", "101"]
    assert out.splitlines()[-1] == "IndexError"


def test_uncaught_through_frames_has_traceback(fusion):
    src = """
    .func inner x
        load x
        push 0
        div
        ret
    .end
    .func main
        push 1
        call inner 1
        ret
    .end
    """
    outcome, _, _ = run_src(src)
    tb = outcome.error.traceback
    assert [t.function for t in tb] == ["main", "inner"]
    assert tb[-1].op == "div" and tb[-1].line == 5 and tb[0].op == "call"


def test_rethrow_and_nested(fusion):
    out = out_of("""
    try outer *
    try inner TypeError
    push "boom"
    throw UserError
    endtry
    push 0
    ret
inner:
    pop
    push 9
    ret
    endtry
    push 0
    ret
outer:
    errfield message
    print
    push 3
    ret""")
    assert out == "boom\n"


def test_halt_exit_code(fusion):
    outcome, _, _ = run_src(body("push 7\nhalt"))
    assert outcome.exit_code == 7
    outcome, _, _ = run_src(body("push 300\nret"))
    assert outcome.exit_code == 300 & 0xFF


def test_data_ops(fusion):
    out = out_of("""
    push 1
    push "two"
    push 3.0
    newlist 3
    store l
    load l
    push -1
    getitem
    print
    load l
    push nil
    append
    load l
    len
    print
    push "k"
    push 1
    push "j"
    push 2
    newmap 2
    store m
    load m
    push "z"
    push 26
    setitem
    load m
    keys
    print
    load m
    print
    load l
    print
    push "hello"
    push 1
    push 3
    slice
    print
    push "ab"
    push "cd"
    concat
    print
    push 42
    tostr
    push "7"
    toint
    push "2.5"
    tofloat
    newlist 3
    print
    push 1.5
    typeof
    print
    push 0
    ret""", "l m")
    assert out.splitlines() == ["3.0", "4", '["k", "j", "z"]', '{"k": 1, "j": 2, "z": 26}',
                                '[1, "two", 3.0, nil]', "el", "abcd", '["42", 7, 2.5]', "float"]


def test_self_referential_list_prints(fusion):
    assert out_of("newlist 0\nstore l\nload l\nload l\nappend\nload l\nprint\npush 0\nret", "l") \
        == "[[...]]\n"


def test_tensors(fusion):
    out = out_of("""
    push 1
    push 2
    newlist 2
    push 3
    push 4
    newlist 2
    newlist 2
    tensor
    dup
    matmul
    dup
    print
    dup
    shape
    print
    tsum
    print
    push 0
    ret""")
    assert out.splitlines() == ["tensor([[7.0, 10.0], [15.0, 22.0]])", "[2, 2]", "54.0"]


def test_natives():
    src = """
    .import math
    .import str
    .func main
        push 2.0
        call math.sqrt 1
        push 3
        call str.fixed 2
        print
        push 2
        push 10
        call math.pow 2
        print
        push 0
        ret
    .end
    """
    outcome, out, _ = run_src(src)
    assert out == "1.414\n1024\n"


def test_import_error_names_candidates():
    src = ".import maths\n.func main\n push 1.0\n call maths.sqrt 1\n ret\n.end\n"
    outcome, _, _ = run_src(src)
    assert outcome.error.type_name == "ImportError" and "did you mean 'math'" in outcome.error.message
    src = ".import math\n.func main\n push 1.0\n call math.sqr 1\n ret\n.end\n"
    outcome, _, _ = run_src(src)
    assert "no function 'sqr'" in outcome.error.message and "sqrt" in outcome.error.message


def test_host_can_change_limits_while_running():
    src = body("top:\njmp top\npush 0\nret")
    seen = []

    def hook(meter, fn, depth):
        seen.append(meter.steps)
        if len(seen) == 3:
            rt.set_limit("max_steps", meter.steps + 5)

    import io

    from nbcvm.asm.assembler import assemble
    from nbcvm.runtime.runtime import Runtime

    rt = Runtime(stdout=io.StringIO())
    rt.meter.hooks.append(hook)
    inst = rt.instantiate(assemble(src))
    outcome = rt.run_main(inst)
    assert outcome.error.details["limit"] == "steps"
    assert outcome.stats.steps <= seen[-1] + 6


def test_memory_limit_counts_held_data(fusion):
    grow = """
    push "x"
    store s
top:
    load s
    load s
    concat
    store s
    jmp top"""
    e = err_of(grow, "s", limits=Limits(max_memory=1 << 20))
    assert e.details["limit"] == "memory" and e.details["max"] == 1 << 20
    # garbage does not count: the same total allocation, but nothing is kept
    churn = """
    push 0
    store i
top:
    push "abcdefgh"
    push 1000
    call str.repeat 2
    pop
    inc i 1
    load i
    push 3000
    lt
    jt top
    push 0
    ret"""
    src = ".import str\n" + body(churn, "i")
    outcome, _, rt = run_src(src, limits=Limits(max_memory=1 << 20))
    assert outcome.error is None and rt.meter.reconciles > 0


def test_list_growth_hits_memory_limit(fusion):
    e = err_of("newlist 0\nstore l\ntop:\nload l\npush 1\nappend\njmp top", "l",
               limits=Limits(max_memory=1 << 18))
    assert e.details["limit"] == "memory"


def test_output_limit(fusion):
    e = err_of('top:\npush "0123456789"\nprint\njmp top', limits=Limits(max_output=1000))
    assert e.details["limit"] == "output" and e.details["used"] > 1000


def test_tensor_comparison_is_a_type_error(fusion):
    e = err_of("push 1\npush 2\nnewlist 2\ntensor\ndup\neq\nprint\npush 0\nret")
    assert e.type_name == "TypeError" and "eq: tensor and tensor" in e.message


def test_deep_traceback_is_collapsed():
    from nbcvm.report.text import traceback

    src = ".func f n\n    load n\n    push 1\n    add\n    call f 1\n    ret\n.end\n.func main\n    push 0\n    call f 1\n    ret\n.end\n"
    outcome, _, _ = run_src(src, limits=Limits(max_depth=500))
    text = traceback(outcome.error)
    assert "[previous frame repeated 495 more times]" in text and len(text.splitlines()) < 40


def test_mutual_recursion_traceback_is_collapsed_by_its_cycle():
    from nbcvm.report.text import traceback

    src = (".func a n\n    load n\n    call b 1\n    ret\n.end\n"
           ".func b n\n    load n\n    call a 1\n    ret\n.end\n"
           ".func main\n    push 0\n    call a 1\n    ret\n.end\n")
    outcome, _, _ = run_src(src, limits=Limits(max_depth=400))
    text = traceback(outcome.error)
    frames = [ln for ln in text.splitlines() if ln.startswith("  t.")]
    # main, then a/b shown four times over, then the rest counted, then the innermost a
    assert [f.split()[0] for f in frames] == ["t.main"] + ["t.a", "t.b"] * 4 + ["t.a"]
    assert "  [previous 2 frames repeated 195 more times]" in text
    assert 1 + 8 + 2 * 195 + 1 == len(outcome.error.traceback)
