"""Properties: asm -> disasm -> asm is the identity; junk text raises only NBC errors."""

import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nbcvm.asm.assembler import assemble
from nbcvm.asm.disasm import disassemble
from nbcvm.bytecode.verifier import verify
from nbcvm.errors import AsmError, NBCError, VerifyError
from nbcvm.isa import OPS, OperandKind

consts = st.one_of(
    st.integers(-(2**63), 2**63 - 1).map(str),
    st.floats(allow_nan=True).map(lambda f: "nan" if f != f else ("inf" if f == float("inf") else "-inf" if f == float("-inf") else repr(f))),
    st.text(max_size=8).map(lambda s: '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r") + '"'),
    st.sampled_from(["true", "false", "nil"]),
)


@st.composite
def programs(draw):
    nfuncs = draw(st.integers(1, 3))
    names = [f"f{i}" for i in range(nfuncs)]
    params = {n: draw(st.integers(0, 2)) for n in names}
    lines = [".module gen", ".import math", ".global g0 " + draw(consts), ".global g1"]
    for n in names:
        lines.append(".func " + " ".join([n] + [f"p{i}" for i in range(params[n])]))
        lines.append("    .local v0 v1")
        nins = draw(st.integers(1, 12))
        labels = [f"l{i}" for i in range(nins)]
        locals_ = [f"p{i}" for i in range(params[n])] + ["v0", "v1"]
        for i in range(nins):
            lines.append(f"{labels[i]}:")
            op = draw(st.sampled_from(OPS))
            ops = []
            for k in op.operands:
                if k is OperandKind.CONST:
                    ops.append(draw(consts))
                elif k is OperandKind.LOCAL:
                    ops.append(draw(st.sampled_from(locals_)))
                elif k is OperandKind.GLOBAL:
                    ops.append(draw(st.sampled_from(["g0", "g1"])))
                elif k is OperandKind.LABEL:
                    ops.append(draw(st.sampled_from(labels)))
                elif k is OperandKind.FUNC:
                    ops.append(draw(st.sampled_from(names + ["math.sqrt"])))
                elif k is OperandKind.INT:
                    ops.append(str(draw(st.integers(0, 3))))
                elif k is OperandKind.NAME:
                    ops.append({"try": "*", "throw": "UserError", "errfield": "message"}[op.name])
            lines.append("    " + " ".join([op.name] + ops))
        lines.append(".end")
    return "\n".join(lines) + "\n"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(programs())
def test_asm_disasm_asm_is_identity(src):
    m = assemble(src, "gen.nbc")
    text = disassemble(m)
    assert assemble(text, "other.nbc") == m
    assert disassemble(assemble(text, "x.nbc")) == text
    assert assemble(disassemble(m, debug=False)).same_code(m)
    try:
        verify(m)
    except VerifyError:
        pass


alphabet = string.ascii_letters + string.digits + " \t.:;\"\\-_*\n"
tokens = st.sampled_from([".func", ".end", ".module", ".import", ".global", ".local", ".line", ".source",
                          "push", "load", "call", "jmp", "try", "x", "1", "1.5", '"s"', "main", "l:", ";c", "\n"])


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(alphabet, max_size=200), st.lists(tokens, max_size=60).map(" ".join)))
def test_junk_raises_only_nbc_errors(text):
    try:
        m = assemble(text, "junk.nbc")
        verify(m)
    except (AsmError, VerifyError):
        pass
    except NBCError as e:  # pragma: no cover - would be a wrong error class
        raise AssertionError(f"unexpected {type(e).__name__}") from e


def test_large_line_numbers_round_trip():
    # the binary format keeps int64 line numbers; .line used to stop at 2**31
    from nbcvm.bytecode.codec import decode, encode

    big = 2**63 - 1
    m = assemble(f".func main\n    .line {big}\n    push 1\n    ret\n.end\n", "big.nbc")
    assert m.function("main").lines == (big, big)  # runs on by one, saturating at the int64 maximum
    text = disassemble(decode(encode(m)))
    assert f".line {big}" in text
    assert encode(assemble(text, "big.nbc")) == encode(m)
    try:
        assemble(f".func main\n    .line {big + 1}\n    push 1\n    ret\n.end\n", "big.nbc")
    except AsmError as e:
        assert ".line takes a line number (0..9223372036854775807)" in str(e)
    else:
        raise AssertionError(".line past int64 accepted")
