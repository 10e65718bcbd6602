"""Assembler: directives, constants, and diagnostics with positions."""

import math

import pytest

from nbcvm.asm.assembler import MAX_ERRORS, assemble
from nbcvm.asm.lexer import decode_string, encode_string
from nbcvm.errors import AsmError
from nbcvm.isa import BY_NAME
from nbcvm.report.text import input_error


def test_module_structure():
    m = assemble(""".module geo
.import math
.global g 1.5
.global h
.func f a b
    .local c
    load a
    ret
.end
.func main
    push "x\\ty"
    push nil
    push true
    push -0x10
    push inf
    call f 2
    ret
.end
""", "geo.nbc")
    assert m.name == "geo" and m.imports == ("math",) and m.import_lines == (2,)
    assert [g for g, _ in m.globals] == ["g", "h"] and m.globals[1][1] == -1
    f = m.function("f")
    assert f.params == ("a", "b") and f.locals == ("a", "b", "c") and f.lines == (7, 8)
    consts = m.consts
    assert 1.5 in consts and "x\ty" in consts and None in consts and -16 in consts
    assert any(isinstance(c, float) and math.isinf(c) for c in consts)
    assert m.function("main").code[-2] == (BY_NAME["call"].code, (m.names.index("f"), 2))


def test_typed_constants_are_distinct():
    m = assemble(".func main\npush 1\npush 1.0\npush true\npush 1\nret\n.end\n")
    assert len(m.consts) == 3


def test_module_name_defaults_to_stem():
    assert assemble(".func main\npush 0\nret\n.end\n", "dir/hello.nbc").name == "hello"


def errors(src: str):
    with pytest.raises(AsmError) as ei:
        assemble(src, "bad.nbc")
    return ei.value.diagnostics


def test_every_error_is_reported_with_position():
    ds = errors(".func main\n    pussh 1\n    load nope\n    jmp nowhere\n    push 99999999999999999999\n"
                "    ret\n.end\n")
    assert [(d.line, d.col) for d in ds] == [(2, 5), (3, 10), (4, 9), (5, 10)]
    assert "did you mean 'push'" in ds[0].message
    text = input_error(AsmError(ds))
    assert "bad.nbc:2:5: syntax error: unknown instruction 'pussh'" in text
    assert "    2 |     pussh 1\n      |     ^^^^^" in text


@pytest.mark.parametrize("src,msg", [
    (".func main\nret", "missing its .end"),
    ("push 1\n", "outside a function"),
    (".func main\n.func f\n.end\n", "inside function"),
    (".func main\nadd 1\nret\n.end\n", "takes 0 operand"),
    (".func main\ncall g 0\nret\n.end\n", "unknown function 'g'"),
    (".func main\ncall m.g 0\nret\n.end\n", "not imported"),
    (".func main\ngload x\nret\n.end\n", "unknown global"),
    (".func main\npush \"abc\nret\n.end\n", "unterminated string"),
    (".func main\npush \"\\q\"\nret\n.end\n", "unknown escape"),
    (".func main\npush 12abc\nret\n.end\n", "malformed number"),
    (".func main\ntry h Nope\nendtry\nret\n.end\n", "not an error type"),
    (".func main\npush 1\nthrow LimitExceeded\n.end\n", "cannot throw"),
    (".func main\nerrfield colour\n.end\n", "unknown error field"),
    (".func f a a\n.end\n", "duplicate parameter"),
    (".func main\nx:\nx:\nret\n.end\n", "duplicate label"),
    (".bogus\n", "unknown directive"),
    (".end\n", ".end without .func"),
    (".func main\nnewlist -1\n.end\n", "must not be negative"),
    ("@\n", "unexpected character"),
])
def test_error_messages(src, msg):
    ds = errors(src)
    assert any(msg in d.message for d in ds), [d.message for d in ds]


def test_error_cap():
    ds = errors("".join(f"bogus{i}\n" for i in range(200)))
    assert len(ds) == MAX_ERRORS


@pytest.mark.parametrize("s", ["", "plain", "tab\there", "q\"uote", "back\\slash", "nl\n", "\x00\x7f",
                               "üñí€", "\U0001F600"])
def test_string_escape_round_trip(s):
    assert decode_string(encode_string(s), 1) == s
