"""Native modules: math, str, random, time, tensor, sys -- values and errors."""

import pytest

from helpers import run_src


def call(module: str, fn: str, *args: str, more: str = "") -> tuple:
    pushes = "\n".join(f"    push {a}" for a in args)
    src = (f".import {module}\n{more}.func main\n{pushes}\n    call {module}.{fn} {len(args)}\n"
           "    print\n    push 0\n    ret\n.end\n")
    outcome, out, _ = run_src(src)
    return outcome.error, out.strip()


@pytest.mark.parametrize("module,fn,args,want", [
    ("math", "sqrt", ["16"], "4.0"), ("math", "pow", ["2", "10"], "1024"), ("math", "pow", ["2", "-1"], "0.5"),
    ("math", "pow", ["2.0", "0.5"], "1.4142135623730951"), ("math", "abs", ["-3"], "3"),
    ("math", "floor", ["2.7"], "2"), ("math", "ceil", ["2.1"], "3"), ("math", "min", ["3", "2.5"], "2.5"),
    ("math", "max", ["3", "2.5"], "3"), ("math", "pi", [], "3.141592653589793"), ("math", "inf", [], "inf"),
    ("math", "isnan", ["nan"], "true"), ("math", "atan2", ["1.0", "1.0"], "0.7853981633974483"),
    ("math", "exp", ["0"], "1.0"), ("math", "log", ["1"], "0.0"),
    ("str", "upper", ['"ab"'], "AB"), ("str", "lower", ['"AB"'], "ab"), ("str", "strip", ['"  x "'], "x"),
    ("str", "find", ['"hello"', '"ll"'], "2"), ("str", "replace", ['"aXa"', '"X"', '"yy"'], "ayya"),
    ("str", "fixed", ["2.0", "3"], "2.000"), ("str", "repeat", ['"ab"', "3"], "ababab"),
    ("str", "chr", ["65"], "A"), ("str", "ord", ['"A"'], "65"),
    ("sys", "seed", [], "0"), ("sys", "args", [], "[]"),
])
def test_native_values(module, fn, args, want):
    err, out = call(module, fn, *args)
    assert err is None and out == want


@pytest.mark.parametrize("module,fn,args,etype", [
    ("math", "sqrt", ['"x"'], "TypeError"), ("math", "sqrt", ["-1"], "ValueError"),
    ("math", "pow", ["2", "64"], "OverflowError"), ("math", "abs", [str(-(2**63))], "OverflowError"),
    ("math", "floor", ["inf"], "ValueError"), ("str", "fixed", ["1.0", "99"], "ValueError"),
    ("str", "split", ['"a"', '""'], "ValueError"), ("str", "replace", ['"a"', '""', '"b"'], "ValueError"),
    ("str", "repeat", ['"a"', "-1"], "ValueError"), ("str", "chr", ["55296"], "ValueError"),
    ("str", "ord", ['"ab"'], "TypeError"), ("str", "upper", ["1"], "TypeError"),
    ("random", "int", ["5", "1"], "ValueError"), ("random", "int", ["1.5", "2"], "TypeError"),
    ("tensor", "zeros", ['"x"'], "TypeError"), ("tensor", "zeros", [str(1 << 40)], "ResourceError"),
    ("time", "sleep", ["-1"], "ValueError"),
])
def test_native_errors(module, fn, args, etype):
    err, _ = call(module, fn, *args)
    assert err is not None and err.type_name == etype, err


def test_str_split_join_format():
    src = """
    .import str
    .func main
        push "a,b,c"
        push ","
        call str.split 2
        dup
        print
        push "-"
        swap
        call str.join 2
        print
        push "{} + {} = {}"
        push 1
        push 2
        push 3
        newlist 3
        call str.format 2
        print
        push "{}"
        newlist 0
        call str.format 2
        print
        push 0
        ret
    .end
    """
    outcome, out, _ = run_src(src)
    assert out.splitlines()[:3] == ['["a", "b", "c"]', "a-b-c", "1 + 2 = 3"]
    assert outcome.error.type_name == "ValueError"


def test_random_is_seeded():
    src = """
    .import random
    .func main
        push 1
        push 100
        call random.int 2
        call random.float 0
        push 1
        push 2
        push 3
        newlist 3
        call random.choice 1
        newlist 3
        print
        push 0
        ret
    .end
    """
    a = run_src(src)[1]
    assert a == run_src(src)[1] and a.startswith("[")


def test_tensor_constructors():
    src = """
    .import tensor
    .func main
        push 2
        call tensor.eye 1
        print
        push 3
        call tensor.arange 1
        print
        push 2
        push 1
        newlist 2
        push 7
        call tensor.full 2
        print
        push 2
        call tensor.ones 1
        tsum
        print
        push 2
        call tensor.rand 1
        shape
        print
        push 0
        ret
    .end
    """
    outcome, out, _ = run_src(src)
    assert out.splitlines() == ["tensor([[1.0, 0.0], [0.0, 1.0]])", "tensor([0.0, 1.0, 2.0])",
                                "tensor([[7.0], [7.0]])", "2.0", "[2]"]


@pytest.mark.parametrize("code,etype", [
    ("push 1\ntensor", "TypeError"), ("push 1\npush 2\nnewlist 2\npush 3\nnewlist 1\nnewlist 2\ntensor", "ValueError"),
    ("push 1\npush 2\nnewlist 2\ntensor\npush 1\npush 2\npush 3\nnewlist 3\ntensor\ntadd", "ValueError"),
    ("push 1\npush 2\nnewlist 2\ntensor\npush 1\npush 2\npush 3\nnewlist 3\ntensor\nmatmul", "ValueError"),
    ("push 1\npush 2\ntadd", "TypeError"), ("push 1\npush 2\nnewlist 2\ntensor\npush 0\ntdiv", "ZeroDivisionError"),
    ("newlist 0\ntensor\ntmax", "ValueError"), ("push 1\npush 2\nnewlist 2\ntensor\npush 3\nnewlist 1\nreshape", "ValueError"),
    ("push 1\nshape", "TypeError"), ("push 1\npush 2\nnewlist 2\ntensor\njt x\nx:\npush 0\nret", "TypeError"),
])
def test_tensor_errors(code, etype):
    outcome, _, _ = run_src(f".func main\n{code}\npush 0\nret\n.end\n")
    assert outcome.error is not None and outcome.error.type_name == etype, outcome.error


def test_tensor_misc_ops():
    src = """
    .func main
        push 1
        push 2
        push 3
        push 4
        newlist 4
        tensor
        dup
        push 2
        push 2
        newlist 2
        reshape
        dup
        tolist
        print
        push 1
        getitem
        print
        dup
        tmean
        print
        dup
        tmin
        print
        dup
        len
        print
        push 2.0
        tmul
        push 1
        tsub
        push 0
        getitem
        print
        push 0
        ret
    .end
    """
    outcome, out, _ = run_src(src)
    assert out.splitlines() == ["[[1.0, 2.0], [3.0, 4.0]]", "tensor([3.0, 4.0])", "2.5", "1.0", "4", "1.0"], outcome.error
