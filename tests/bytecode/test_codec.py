"""The binary codec (.nbcb): round trips, every distinct error, "never crashes", the CLI.

The helpers below re-implement the byte layout independently of the codec, so
the hand-built files double as a check that the codec follows
docs/binary-format.md.
"""

from __future__ import annotations

import math
import re
import struct
import time
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nbcvm.asm.assembler import assemble
from nbcvm.asm.disasm import disassemble
from nbcvm.bytecode.codec import decode, encode
from nbcvm.bytecode.model import CodeObject, Module
from nbcvm.cli import main
from nbcvm.errors import AsmError, FormatError
from nbcvm.isa import BY_CODE, BY_NAME

ROOT = Path(__file__).resolve().parents[2]
PROGRAMS = sorted(ROOT.glob("examples/*.nbc")) + sorted(ROOT.glob("tests/programs/*.nbc"))

HELLO = """.module hello
.func main
    push "Hello, world!"
    print
    push 0
    ret
.end
"""


def _assembled(path: Path) -> Module:
    try:
        return assemble(path.read_text(encoding="utf-8"), str(path))
    except AsmError as e:  # other people's work in progress: not ours to test
        pytest.skip(f"does not assemble: {e}")


# -- an independent writer for hand-made files ----------------------------------


def uv(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def zz(n: int) -> bytes:
    return uv((n << 1) ^ (n >> 63))


def s(text: str) -> bytes:
    b = text.encode()
    return uv(len(b)) + b


def sec(sid: int, body: bytes) -> bytes:
    return bytes([sid]) + uv(len(body)) + body


def wrap(payload: bytes, flags: int = 1, version: int = 1) -> bytes:
    return b"NBCB" + struct.pack("<HHII", version, flags, len(payload), zlib.crc32(payload)) + payload


def reseal(data: bytes) -> bytes:
    return data[:8] + struct.pack("<II", len(data) - 16, zlib.crc32(data[16:])) + data[16:]


PUSH, RET, CALL = BY_NAME["push"].code, BY_NAME["ret"].code, BY_NAME["call"].code
NO_SUCH_OP = max(set(range(256)) - set(BY_CODE))  # a byte the opcode table does not use


def func(name: str, code: bytes, ninstr: int, nparams: int = 0, locals_: tuple[str, ...] = ()) -> bytes:
    return s(name) + uv(nparams) + uv(len(locals_)) + b"".join(s(x) for x in locals_) + uv(ninstr) \
        + uv(len(code)) + code


def base_sections(code: bytes = bytes([PUSH, 0, RET]), ninstr: int = 2,
                  lines: bytes = uv(2) + zz(1) + zz(1)) -> dict[int, bytes]:
    """A module 't' with one function main: push 0; ret (lines 1, 2), source 't.nbc'."""
    return {
        1: s("t"),
        2: uv(1) + b"\x03" + zz(0),
        3: uv(0),
        4: uv(0),
        5: uv(0),
        6: uv(1) + func("main", code, ninstr),
        7: uv(1) + lines,
        8: s("t.nbc"),
    }


def build(sections: dict[int, bytes], order: list[int] | None = None, flags: int = 1) -> bytes:
    return wrap(b"".join(sec(i, sections[i]) for i in (order or sorted(sections))), flags)


def fails(data: bytes, pattern: str) -> str:
    with pytest.raises(FormatError) as ei:
        decode(data, "x.nbcb")
    msg = str(ei.value)
    assert re.search(pattern, msg), msg
    assert "\n" not in msg and "offset" in msg, msg
    return msg


# -- round trips ------------------------------------------------------------------


@pytest.mark.parametrize("path", PROGRAMS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_round_trip_programs(path: Path) -> None:
    m = _assembled(path)
    data = encode(m)
    back = decode(data, "copy.nbcb")
    assert back == m
    assert encode(back) == data
    assert back.import_lines == ()  # not part of identity, not encoded
    # text -> binary -> disasm text -> binary is byte-identical
    assert encode(assemble(disassemble(back), str(path))) == data
    # without debug info: same code, lines 0, the reading path as source
    bare = decode(encode(m, debug=False), "bare.nbcb")
    assert bare.same_code(m) and bare.source == "bare.nbcb"
    assert all(set(f.lines) <= {0} for f in bare.functions)
    assert encode(bare, debug=False) == encode(m, debug=False)


def test_hand_built_file_matches_the_documented_layout() -> None:
    m = decode(build(base_sections()))
    want = Module("t", (0,), (), (), (), (CodeObject("main", 0, (), ((PUSH, (0,)), (RET, ())), (1, 2)),),
                  source="t.nbc")
    assert m == want
    assert encode(want) == build(base_sections())


def test_constants_keep_their_types_and_bits() -> None:
    consts = (None, False, True, 0, 1, -1, 2**63 - 1, -(2**63), 1.0, -0.0, math.inf, -math.inf, math.nan,
              5e-324, "", "é☃\U0001F600", "a\0b")
    m = Module("c", consts, (), tuple((f"g{i}", i) for i in range(len(consts))) + (("n", -1),), (), ())
    back = decode(encode(m))
    assert back == m
    assert [type(c) for c in back.consts] == [type(c) for c in consts]
    assert math.copysign(1, back.consts[9]) == -1.0


def test_docs_hex_dump_is_real() -> None:
    doc = (ROOT / "docs/binary-format.md").read_text(encoding="utf-8")
    src = re.search(r"\(`tiny.nbc`\):\n\n```\n(.*?)```", doc, re.S).group(1)
    dump = re.search(r"\(`xxd tiny.nbcb`\):\n\n```\n(.*?)```", doc, re.S).group(1)
    data = bytes.fromhex("".join(line[10:49].replace(" ", "") for line in dump.splitlines()))
    assert data == encode(assemble(src, "tiny.nbc"))


def test_decode_accepts_bytearray_and_memoryview() -> None:
    data = encode(assemble(HELLO))
    assert decode(bytearray(data)) == decode(memoryview(data)) == decode(data)


# -- header errors ------------------------------------------------------------------


@pytest.fixture(scope="module")
def hello_bytes() -> bytes:
    return encode(assemble(HELLO, "hello.nbc"))


def test_newer_version(hello_bytes: bytes) -> None:
    data = hello_bytes[:4] + struct.pack("<H", 2) + hello_bytes[6:]
    fails(data, re.escape("format version 2 is newer than this nbcvm supports (1); upgrade nbcvm"))
    fails(hello_bytes[:4] + b"\0\0" + hello_bytes[6:], "format version 0 does not exist")


def test_unknown_flags(hello_bytes: bytes) -> None:
    fails(hello_bytes[:6] + b"\x03\x00" + hello_bytes[8:], "unknown flags 0x0002")


def test_truncated_at_every_prefix(hello_bytes: bytes) -> None:
    for n in range(len(hello_bytes)):
        msg = fails(hello_bytes[:n], r"truncated: expected \d+ bytes at offset \d+, file has \d+")
        assert f"file has {n}" in msg
    huge = hello_bytes[:8] + struct.pack("<I", 0xFFFFFFFF) + hello_bytes[12:]  # a 4 GiB payload
    fails(huge, r"truncated: expected 4294967295 bytes at offset 16")


def test_bad_checksum(hello_bytes: bytes) -> None:
    damaged = bytearray(hello_bytes)
    damaged[20] ^= 0x10
    fails(bytes(damaged), r"checksum mismatch: header says CRC-32 0x[0-9a-f]{8}, payload has")


def test_trailing_garbage(hello_bytes: bytes) -> None:
    fails(hello_bytes + b"\0\0\0", r"trailing garbage: 3 byte\(s\) after the \d+-byte payload")


def test_bad_magic(hello_bytes: bytes) -> None:
    fails(b"NBCX" + hello_bytes[4:], "bad magic")
    fails(b"\x7fELF\x02\x01\x01" + bytes(20), "bad magic")


# -- section and content errors ------------------------------------------------------


def test_unknown_section() -> None:
    secs = base_sections()
    secs[9] = b""
    fails(build(secs), "unknown section id 9")


def test_duplicate_and_out_of_order_sections() -> None:
    secs = base_sections()
    fails(build(secs, [1, 2, 3, 3, 4, 5, 6, 7, 8]), "duplicate section 'names'")
    fails(build(secs, [1, 3, 2, 4, 5, 6, 7, 8]), r"section 'consts' out of order \(after 'names'\)")


def test_missing_sections() -> None:
    secs = base_sections()
    fails(build(secs, [1, 2, 3, 4, 5, 7, 8]), "missing section 'funcs'")
    fails(build(secs, [1, 2, 3, 4, 5, 6, 7]), "missing section 'source'")
    fails(build(secs, [1, 2, 3, 4, 5, 6, 7, 8], flags=0), "debug section 'lines' but the header's debug flag")
    assert decode(build(secs, [1, 2, 3, 4, 5, 6], flags=0), "nodebug.nbcb").source == "nodebug.nbcb"


def test_unknown_opcode() -> None:
    fails(build(base_sections(bytes([PUSH, 0, NO_SUCH_OP]), 2)),
          rf"unknown opcode 0x{NO_SUCH_OP:02x} at pc 1 \(function 0, at offset 48\)")


def test_operand_count_mismatch() -> None:
    too_few = base_sections(bytes([PUSH, 0, CALL, 0]), 2)  # call needs a name and a count
    fails(build(too_few), r"operand count mismatch: 'call' at pc 1 needs 2 operand\(s\) but the code ends")
    too_many = base_sections(bytes([PUSH, 0, RET, 0]), 2)
    fails(build(too_many), r"operand count mismatch: 1 byte\(s\) of code left after its 2 instructions")
    fails(build(base_sections(bytes([PUSH, 0, RET]), 3)), "code ends after 2 of its 3 instructions")
    fails(build(base_sections(bytes([PUSH, 0, RET]), 4)), "4 instructions claimed in 3 byte")


def test_huge_counts_fail_before_allocating() -> None:
    for field, body in [(2, uv(2**60) + b"\x00"), (3, uv(2**60)), (6, uv(2**63))]:
        secs = base_sections()
        secs[field] = body
        t0 = time.perf_counter()
        fails(build(secs), r"count \d+ is more than the \d+ byte\(s\) left")
        assert time.perf_counter() - t0 < 0.5
    secs = base_sections()
    secs[1] = uv(2**40) + b"t"  # a string length
    fails(build(secs), "overruns its end")


def test_bad_varints() -> None:
    for body, pattern in [(b"\xff" * 11, "longer than 10 bytes"), (b"\xff" * 9 + b"\x02", "does not fit in 64 bits"),
                          (b"\x81\x00" + b"\x00", "not in its shortest form"), (b"\x80", "varint .* runs past")]:
        secs = base_sections()
        secs[3] = body
        fails(build(secs), pattern)


def test_bad_constants_and_strings() -> None:
    secs = base_sections()
    secs[2] = uv(1) + b"\x09"
    fails(build(secs), "unknown constant tag 9")
    secs[2] = uv(1) + b"\x04" + b"\0" * 7
    fails(build(secs), "float constant needs 8 byte")
    for raw in (b"\xff", b"\xed\xa0\x80", b"\xc0\x80"):  # bad byte, surrogate, overlong NUL
        secs[2] = uv(1) + b"\x05" + uv(len(raw)) + raw
        fails(build(secs), "string constant is not valid UTF-8")


def test_section_length_must_be_used_exactly() -> None:
    secs = base_sections()
    secs[3] = uv(0) + b"\0\0"
    fails(build(secs), r"2 unused byte\(s\) at the end of section 'names'")
    secs = base_sections()
    secs[1] = uv(5) + b"t"
    fails(build(secs), "section 'module' overruns its end")


def test_line_tables_must_match_the_code() -> None:
    fails(build(base_sections(lines=uv(1) + zz(1))), r"line table has 1 entries for 2 instructions \(function 0, at offset")
    fails(build(base_sections(lines=uv(2) + zz(-5) + zz(1))), "line number -5 out of range")
    secs = base_sections()
    secs[7] = uv(2) + uv(2) + zz(1) + zz(1)
    fails(build(secs), "2 line tables for 1 functions")


def test_encode_refuses_what_no_file_can_hold() -> None:
    def mod(code, lines=None, consts=()) -> Module:
        return Module("m", consts, (), (), (), (CodeObject("f", 0, (), code, lines or (0,) * len(code)),))

    with pytest.raises(ValueError, match="unknown opcode"):
        encode(mod(((NO_SUCH_OP, ()),)))
    with pytest.raises(ValueError, match="operand count mismatch"):
        encode(mod(((PUSH, (0, 1)),)))
    with pytest.raises(ValueError, match="64-bit"):
        encode(mod((), consts=(2**63,)))
    with pytest.raises(ValueError, match="not valid Unicode"):
        encode(mod((), consts=("\ud800",)))
    with pytest.raises(ValueError, match="line numbers"):
        encode(mod(((RET, ()),), lines=(1, 2)))


# -- properties --------------------------------------------------------------------


names = st.text(max_size=6)
int64 = st.integers(-(2**63), 2**63 - 1)
consts = st.one_of(st.none(), st.booleans(), int64, st.floats(), st.text(max_size=8))


@st.composite
def code_objects(draw) -> CodeObject:
    ops = draw(st.lists(st.sampled_from(sorted(BY_CODE)), max_size=12))
    code = tuple((op, tuple(draw(int64) for _ in BY_CODE[op].operands)) for op in ops)
    lines = tuple(draw(st.integers(0, 2**63 - 1)) for _ in code)
    return CodeObject(draw(names), draw(st.integers(0, 2**64 - 1)), tuple(draw(st.lists(names, max_size=4))),
                      code, lines)


modules = st.builds(
    Module, name=names, consts=st.lists(consts, max_size=6).map(tuple), names=st.lists(names, max_size=4).map(tuple),
    globals=st.lists(st.tuples(names, int64), max_size=3).map(tuple), imports=st.lists(names, max_size=3).map(tuple),
    functions=st.lists(code_objects(), max_size=3).map(tuple), source=names)

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(modules)
def test_generated_modules_round_trip(m: Module) -> None:
    data = encode(m)
    back = decode(data)
    assert back == m and encode(back) == data
    assert decode(encode(m, debug=False)).same_code(m)


def _decode_or_format_error(data: bytes) -> None:
    try:
        m = decode(data)
    except FormatError as e:
        assert "\n" not in str(e) and "offset" in str(e)
        return
    flags = struct.unpack_from("<H", data, 6)[0]
    assert encode(m, debug=bool(flags & 1)) == data  # the encoding is canonical


@FAST
@given(st.binary(max_size=96))
def test_random_bytes_only_ever_format_error(data: bytes) -> None:
    _decode_or_format_error(data)
    _decode_or_format_error(b"NBCB" + data)
    _decode_or_format_error(reseal(b"NBCB\x01\x00\x01\x00" + bytes(8) + data))


@FAST
@given(modules, st.data())
def test_mutated_encodings_only_ever_format_error(m: Module, data) -> None:
    b = bytearray(encode(m, debug=data.draw(st.booleans())))
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(16, max(16, len(b) - 1)))
        kind = data.draw(st.integers(0, 3))
        if kind == 0 and i < len(b):
            b[i] ^= 1 << data.draw(st.integers(0, 7))
        elif kind == 1:
            del b[i:i + data.draw(st.integers(1, 4))]
        elif kind == 2:
            b[i:i] = data.draw(st.binary(min_size=1, max_size=10))
        else:
            b[i:i] = data.draw(st.sampled_from([b"\xff" * 10, b"\x80" * 9 + b"\x10", b"\x80\x00"]))
    _decode_or_format_error(reseal(bytes(b)))


# -- the command line ---------------------------------------------------------------


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_asm_disasm_verify_run(tmp_path: Path, capsys) -> None:
    src = tmp_path / "prog.nbc"
    src.write_text(HELLO)
    binary = tmp_path / "prog.nbcb"
    code, out, _ = _run(capsys, "asm", str(src), "-o", str(binary))
    assert code == 0 and f"-> {binary}" in out
    assert binary.read_bytes()[:4] == b"NBCB"
    code, out, _ = _run(capsys, "disasm", str(binary))
    assert code == 0 and out == disassemble(assemble(HELLO, str(src)))
    code, _, _ = _run(capsys, "verify", str(binary))
    assert code == 0
    code, out, _ = _run(capsys, "run", str(binary))
    assert code == 0 and out == "Hello, world!\n"
    # detection by content, not by name: binary named .nbc, text named .nbcb
    (tmp_path / "bin.nbc").write_bytes(binary.read_bytes())
    (tmp_path / "text.nbcb").write_text(HELLO)
    for name in ("bin.nbc", "text.nbcb"):
        code, out, _ = _run(capsys, "run", str(tmp_path / name))
        assert code == 0 and out == "Hello, world!\n"


def _malformed(good: bytes) -> dict[str, bytes]:
    flipped = bytearray(good)
    flipped[-3] ^= 0xFF
    return {
        "truncated": good[:-5],
        "checksum": bytes(flipped),
        "trailing": good + b"junk",
        "newer": good[:4] + b"\x07\x00" + good[6:],
        "magic": b"NBCX" + good[4:],
        "opcode": reseal(good.replace(bytes([BY_NAME["print"].code, PUSH]), bytes([NO_SUCH_OP, PUSH]), 1)),
        "count": wrap(sec(1, s("m")) + sec(2, uv(2**60))),
    }


@pytest.mark.parametrize("kind", sorted(_malformed(b"NBCB" + bytes(20))))
def test_cli_malformed_binary_exits_2(tmp_path: Path, capsys, kind: str) -> None:
    bad = tmp_path / "bad.nbcb"
    bad.write_bytes(_malformed(encode(assemble(HELLO, "hello.nbc")))[kind])
    with pytest.raises(FormatError):
        decode(bad.read_bytes())
    for cmd in ("run", "disasm", "verify"):
        code, _, err = _run(capsys, cmd, str(bad))
        assert code == 2, (cmd, err)
        assert "Traceback" not in err
        lines = err.strip().splitlines()
        assert len(lines) == 1 and str(bad) in lines[0], (cmd, err)
