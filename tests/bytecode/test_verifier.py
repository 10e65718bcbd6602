"""Verifier: every rule rejects what it must, and names function, pc, instruction."""

import pytest

from nbcvm.asm.assembler import assemble
from nbcvm.bytecode.model import CodeObject, Module
from nbcvm.bytecode.verifier import verify
from nbcvm.errors import VerifyError
from nbcvm.isa import BY_NAME


def bad(src: str):
    with pytest.raises(VerifyError) as ei:
        verify(assemble(src, "v.nbc"))
    return ei.value.diagnostics


@pytest.mark.parametrize("code,msg", [
    ("add\nret", "stack underflow"),
    ("push 1", "falls off the end"),
    ("push 1\njt l\npush 2\nl:\nret", "disagrees"),
    ("push 1\npop", "falls off the end"),
    ("try h *\npush 1\nendtry\npush 0\nret\nh:\npop", "falls off"),
])
def test_stack_rules(code, msg):
    ds = bad(f".func main\n{code}\n.end\n")
    assert any(msg in d.message for d in ds), [d.message for d in ds]


def test_diagnostic_names_function_pc_and_op():
    d = bad(".func main\npush 1\nadd\nret\n.end\n")[0]
    assert (d.function, d.pc, d.op, d.line) == ("main", 1, "add", 3)
    assert d.location() == "v.nbc:3: in function 'main' at pc 1 (add)"


def test_call_arity():
    ds = bad(".func f a b\nload a\nret\n.end\n.func main\npush 1\ncall f 1\nret\n.end\n")
    assert "'f' takes 2 argument(s), called with 1" in ds[0].message


def test_try_nesting():
    ds = bad(".func main\nendtry\npush 0\nret\n.end\n")
    assert "endtry without a matching try" in ds[0].message


def test_good_program_facts():
    infos = verify(assemble(".func main\npush 1\npush 2\nadd\nret\n.end\n"))
    assert infos[0].depths == (0, 1, 2, 1) and infos[0].max_stack == 2


def _module(code, consts=(0,), names=(), locals_=("x",), nparams=0):
    f = CodeObject("main", nparams, locals_, tuple(code), tuple(0 for _ in code))
    return Module("m", tuple(consts), tuple(names), (), (), (f,), "m.nbcb")


@pytest.mark.parametrize("code,msg", [
    ([(0xEE, ())], "unknown opcode"),
    ([(BY_NAME["push"].code, (5,))], "constant index 5 out of range"),
    ([(BY_NAME["load"].code, (3,))], "local index 3"),
    ([(BY_NAME["gload"].code, (0,))], "global index 0"),
    ([(BY_NAME["jmp"].code, (9,))], "jump target 9"),
    ([(BY_NAME["push"].code, ())], "needs 1 operand"),
    ([(BY_NAME["newlist"].code, (70000,))], "count 70000"),
    ([(BY_NAME["call"].code, (0, 0))], "name index 0"),
])
def test_binary_level_operand_checks(code, msg):
    with pytest.raises(VerifyError) as ei:
        verify(_module(code))
    assert any(msg in d.message for d in ei.value.diagnostics), [d.message for d in ei.value.diagnostics]


def test_module_level_checks():
    f = CodeObject("main", 0, (), ((BY_NAME["push"].code, (0,)), (BY_NAME["ret"].code, ())), (1, 2))
    m = Module("bad name!", (2**70, object()), (), (("g", 9),), ("ok", "ok"), (f, f), "x")
    msgs = " | ".join(d.message for d in pytest.raises(VerifyError, verify, m).value.diagnostics)
    for want in ("bad module name", "duplicate function", "duplicate import", "bad initial constant",
                 "outside the 64-bit range", "unsupported type"):
        assert want in msgs


@pytest.mark.parametrize("name,msg", [
    ("fib\n", "bad function name 'fib\\n' in call"),       # "$" used to accept a trailing newline
    ("math.\nsqrt", "bad function name"),
    ("math.", "bad function name"),
    ("a b", "bad function name"),
])
def test_callee_names_must_be_identifiers(name, msg):
    code = [(BY_NAME["call"].code, (0, 0)), (BY_NAME["ret"].code, ())]
    m = Module("m", (0,), (name,), (), ("math",), (CodeObject("main", 0, (), tuple(code), (0, 0)),), "m.nbcb")
    with pytest.raises(VerifyError) as ei:
        verify(m)
    assert any(msg in d.message for d in ei.value.diagnostics), [d.message for d in ei.value.diagnostics]


def test_names_with_trailing_newline_are_refused():
    f = CodeObject("main\n", 0, ("x\n",), ((BY_NAME["push"].code, (0,)), (BY_NAME["ret"].code, ())), (1, 2))
    m = Module("m\n", (0,), (), (("g\n", -1),), ("math\n",), (f,), "x")
    msgs = " | ".join(d.message for d in pytest.raises(VerifyError, verify, m).value.diagnostics)
    for want in ("bad module name", "bad function name", "locals must be distinct names", "bad import name",
                 "globals must be distinct names"):
        assert want in msgs
