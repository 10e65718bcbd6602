"""Binary codec: ``Module`` <-> ``.nbcb`` bytes (format version 1).

Layout (every multi-byte integer little-endian; docs/binary-format.md has a
worked hex dump)::

    offset  size  field
    ------  ----  ---------------------------------------------------------
         0     4  magic  b"NBCB"
         4     2  u16 format version (1)
         6     2  u16 flags: bit 0 = debug info (line tables + source name);
                  all other bits must be 0
         8     4  u32 payload length P
        12     4  u32 CRC-32 of the payload (zlib.crc32)
        16     P  payload: sections, each in this fixed order, each at most once

    section    = u8 id | varint body length | body
    +----+----------+-------------------------------------------------------+
    | id | name     | body                                                  |
    +----+----------+-------------------------------------------------------+
    |  1 | module   | str name                                              |
    |  2 | consts   | varint n, n x const                                   |
    |  3 | names    | varint n, n x str                                     |
    |  4 | globals  | varint n, n x (str name, zigzag const index; -1 = nil)|
    |  5 | imports  | varint n, n x str                                     |
    |  6 | funcs    | varint n, n x func                                    |
    |  7 | lines    | debug only: varint n (= funcs), n x line table        |
    |  8 | source   | debug only: str source file name                      |
    +----+----------+-------------------------------------------------------+
    str        = varint byte length | UTF-8 (strict)
    const      = u8 tag | data: 0 nil, 1 false, 2 true, 3 int (zigzag varint),
                 4 float (8 bytes IEEE 754 binary64), 5 str
    func       = str name | varint nparams | varint nlocals | nlocals x str
                 | varint ninstr | varint code byte length | code
    code       = ninstr x (u8 opcode | k x zigzag varint), k = len(BY_CODE[op].operands)
    line table = varint ninstr | ninstr x zigzag varint (line - previous line, from 0)
    varint     = unsigned LEB128, canonical (shortest form), at most 10 bytes / 64 bits
    zigzag     = signed int64 as varint: 0, -1, 1, -2 ... -> 0, 1, 2, 3 ...

Why these choices: the header checksum catches damage before anything is
parsed; the per-section and per-function byte lengths let a reader bound every
count by the bytes that are left (a count of 2**60 fails before any list is
made) and tell "the operands of this ISA do not match" from plain truncation;
canonical varints make the encoding unique, so ``encode(decode(b)) == b``
for every ``b`` that decodes.

Decoding is hostile-input safe and recursion-free: every failure is a
``FormatError`` with a one-line message naming the byte offset.  It checks the
*format* only -- indices, stack discipline and names are the verifier's job,
and callers verify what they decode.  Without the debug flag the decoded
module has all line numbers 0 and the reading path as its source name.
``import_lines`` (where each ``.import`` stood in the text) are not part of a
Module's identity and are not encoded.
"""

from __future__ import annotations

import struct
import zlib

from nbcvm.bytecode.model import CodeObject, Const, Module
from nbcvm.errors import Diagnostic, FormatError
from nbcvm.isa import BY_CODE

MAGIC = b"NBCB"
VERSION = 1
FLAG_DEBUG = 0x0001
KNOWN_FLAGS = FLAG_DEBUG
HEADER = struct.Struct("<4sHHII")  # magic, version, flags, payload length, crc32
HEADER_SIZE = HEADER.size  # 16
MAX_PAYLOAD = 0xFFFF_FFFF
MAX_VARINT_BYTES = 10

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MAX_LINE = INT64_MAX  # also the assembler's bound for .line

# Section ids, in the order they must appear.
S_MODULE, S_CONSTS, S_NAMES, S_GLOBALS, S_IMPORTS, S_FUNCS, S_LINES, S_SOURCE = range(1, 9)
SECTION_NAMES = {S_MODULE: "module", S_CONSTS: "consts", S_NAMES: "names", S_GLOBALS: "globals",
                 S_IMPORTS: "imports", S_FUNCS: "funcs", S_LINES: "lines", S_SOURCE: "source"}
REQUIRED = (S_MODULE, S_CONSTS, S_NAMES, S_GLOBALS, S_IMPORTS, S_FUNCS)
DEBUG_SECTIONS = (S_LINES, S_SOURCE)

# Constant tags.
T_NIL, T_FALSE, T_TRUE, T_INT, T_FLOAT, T_STR = range(6)
_F64 = struct.Struct("<d")

# Operand count per opcode byte; -1 = no such opcode.  Derived from the ISA table.
_NOPERANDS: tuple[int, ...] = tuple(len(BY_CODE[c].operands) if c in BY_CODE else -1
                                    for c in range(256))
_NOARG: tuple[tuple[int, tuple[()]], ...] = tuple((c, ()) for c in range(256))  # shared, immutable
_ZZ1: tuple[int, ...] = tuple((z >> 1) ^ -(z & 1) for z in range(128))  # one-byte zigzag values


# ---------------------------------------------------------------------------
# Encoding


def encode(module: Module, *, debug: bool = True) -> bytes:
    """The binary encoding of ``module``; with ``debug=False`` lines and source are left out.

    Raises ``ValueError`` for a module no NBC file can hold (an unknown opcode,
    operands that do not match the ISA, an int outside 64 bits, a string that
    is not valid Unicode); modules from the assembler or the decoder always encode.
    """
    sections = [
        (S_MODULE, _str(module.name)),
        (S_CONSTS, _consts(module.consts)),
        (S_NAMES, _strs(module.names)),
        (S_GLOBALS, _globals(module.globals)),
        (S_IMPORTS, _strs(module.imports)),
        (S_FUNCS, _funcs(module.functions)),
    ]
    if debug:
        sections.append((S_LINES, _line_tables(module.functions)))
        sections.append((S_SOURCE, _str(module.source)))
    payload = b"".join(bytes([sid]) + _uvarint(len(body)) + body for sid, body in sections)
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"module too large for the format: payload of {len(payload)} bytes")
    flags = FLAG_DEBUG if debug else 0
    return HEADER.pack(MAGIC, VERSION, flags, len(payload), zlib.crc32(payload)) + payload


def _uvarint(n: int) -> bytes:
    if not 0 <= n < 2**64:
        raise ValueError(f"{n} does not fit an unsigned 64-bit varint")
    if n < 0x80:
        return bytes((n,))
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _svarint(n: int) -> bytes:
    if not INT64_MIN <= n <= INT64_MAX:
        raise ValueError(f"{n} is outside the 64-bit int range")
    return _uvarint((n << 1) ^ (n >> 63))


def _str(s: str) -> bytes:
    if not isinstance(s, str):
        raise ValueError(f"expected a string, got {type(s).__name__}")
    try:
        b = s.encode("utf-8")
    except UnicodeEncodeError as e:
        raise ValueError(f"string {s[:40]!r} is not valid Unicode: {e.reason}") from None
    return _uvarint(len(b)) + b


def _strs(items: tuple[str, ...]) -> bytes:
    return _uvarint(len(items)) + b"".join(_str(s) for s in items)


def _consts(consts: tuple[Const, ...]) -> bytes:
    out = [_uvarint(len(consts))]
    for c in consts:
        if c is None:
            out.append(b"\x00")
        elif c is False:
            out.append(b"\x01")
        elif c is True:
            out.append(b"\x02")
        elif type(c) is int:
            out.append(b"\x03" + _svarint(c))
        elif type(c) is float:
            out.append(b"\x04" + _F64.pack(c))
        elif type(c) is str:
            out.append(b"\x05" + _str(c))
        else:
            raise ValueError(f"constant of unsupported type {type(c).__name__}")
    return b"".join(out)


def _globals(globs: tuple[tuple[str, int], ...]) -> bytes:
    return _uvarint(len(globs)) + b"".join(_str(name) + _svarint(init) for name, init in globs)


def _funcs(funcs: tuple[CodeObject, ...]) -> bytes:
    out = [_uvarint(len(funcs))]
    for f in funcs:
        code = bytearray()
        for pc, (opc, args) in enumerate(f.code):
            n = _NOPERANDS[opc] if type(opc) is int and 0 <= opc < 256 else -1
            if n < 0:
                raise ValueError(f"function '{f.name}' pc {pc}: unknown opcode {opc!r}")
            if len(args) != n:
                raise ValueError(f"function '{f.name}' pc {pc}: operand count mismatch: "
                                 f"'{BY_CODE[opc].name}' takes {n} operand(s), has {len(args)}")
            code.append(opc)
            for a in args:
                code += _svarint(a)
        out.append(_str(f.name) + _uvarint(f.nparams) + _strs(f.locals)
                   + _uvarint(len(f.code)) + _uvarint(len(code)) + code)
    return b"".join(out)


def _line_tables(funcs: tuple[CodeObject, ...]) -> bytes:
    out = [_uvarint(len(funcs))]
    for f in funcs:
        if len(f.lines) != len(f.code):
            raise ValueError(f"function '{f.name}': {len(f.lines)} line numbers for "
                             f"{len(f.code)} instructions")
        prev = 0
        table = [_uvarint(len(f.lines))]
        for line in f.lines:
            if not 0 <= line <= MAX_LINE:
                raise ValueError(f"function '{f.name}': line number {line} out of range")
            table.append(_svarint(line - prev))
            prev = line
        out.append(b"".join(table))
    return b"".join(out)


# ---------------------------------------------------------------------------
# Decoding


class _Reader:
    """A cursor over ``data[pos:end]`` (absolute offsets, so errors name file offsets)."""

    __slots__ = ("data", "pos", "end", "path", "what", "func")

    def __init__(self, data: bytes, pos: int, end: int, path: str, what: str):
        self.data, self.pos, self.end, self.path, self.what = data, pos, end, path, what
        self.func: int | None = None  # the function being read, named in errors

    def fail(self, message: str, at: int | None = None) -> FormatError:
        at = self.pos if at is None else at
        where = "" if self.func is None else f"function {self.func}, "
        return FormatError(Diagnostic(f"{message} ({where}at offset {at})", path=self.path))

    def need(self, n: int, what: str) -> None:
        if n > self.end - self.pos:
            raise self.fail(f"{self.what} overruns its end: {what} needs {n} byte(s), "
                            f"{self.end - self.pos} left before offset {self.end}")

    def u8(self, what: str) -> int:
        if self.pos >= self.end:
            self.need(1, what)
        b = self.data[self.pos]
        self.pos += 1
        return b

    def uvarint(self, what: str) -> int:
        data, pos, end = self.data, self.pos, self.end
        if pos < end:
            b = data[pos]
            if b < 0x80:  # the common one-byte case
                self.pos = pos + 1
                return b
        start, result, shift = pos, 0, 0
        while True:
            if pos >= end:
                self.pos = start
                raise self.fail(f"{self.what} overruns its end: varint {what} runs past offset {end}")
            b = data[pos]
            pos += 1
            result |= (b & 0x7F) << shift
            if b < 0x80:
                break
            shift += 7
            if pos - start >= MAX_VARINT_BYTES:
                raise self.fail(f"varint {what} is longer than {MAX_VARINT_BYTES} bytes", start)
        if pos - start == MAX_VARINT_BYTES and b > 1:
            raise self.fail(f"varint {what} does not fit in 64 bits", start)
        if b == 0 and pos - start > 1:
            raise self.fail(f"varint {what} is not in its shortest form", start)
        self.pos = pos
        return result

    def svarint(self, what: str) -> int:
        z = self.uvarint(what)
        return (z >> 1) ^ -(z & 1)

    def count(self, what: str, min_size: int = 1) -> int:
        """A count of items that take at least ``min_size`` bytes each, bounded by the bytes left."""
        at = self.pos
        n = self.uvarint(what)
        if n * min_size > self.end - self.pos:
            raise self.fail(f"{what} {n} is more than the {self.end - self.pos} byte(s) left in "
                            f"{self.what} can hold", at)
        return n

    def string(self, what: str) -> str:
        at = self.pos
        n = self.uvarint(f"{what} length")
        self.need(n, what)
        raw = self.data[self.pos:self.pos + n]
        try:
            s = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise self.fail(f"{what} is not valid UTF-8 (byte {e.start} of the string: {e.reason})",
                            at) from None
        self.pos += n
        return s

    def strings(self, what: str) -> tuple[str, ...]:
        n = self.count(what + " count")
        return tuple([self.string(what) for _ in range(n)])


def _fail(path: str, message: str, at: int | None = None) -> FormatError:
    """A one-line FormatError; ``at`` (the byte offset) is appended unless the message names it."""
    text = message if at is None else f"{message} (at offset {at})"
    return FormatError(Diagnostic(text, path=path))


def decode(data: bytes, path: str = "<input>") -> Module:
    """Decode ``.nbcb`` bytes into a Module (not verified), or raise FormatError."""
    data = bytes(data)
    size = len(data)
    if data[:len(MAGIC)] != MAGIC[:size]:
        raise _fail(path, f"bad magic {data[:4]!r}: not an NBC binary (expected {MAGIC!r})", 0)
    if size < HEADER_SIZE:
        field = ("magic", "format version", "flags", "payload length", "checksum")
        ends = (4, 6, 8, 12, 16)
        i = next(k for k, e in enumerate(ends) if e > size)
        start = ends[i - 1] if i else 0
        raise _fail(path, f"truncated: expected {ends[i] - start} bytes at offset {start}, "
                    f"file has {size} ({field[i]} of the {HEADER_SIZE}-byte header)")
    _, version, flags, plen, crc = HEADER.unpack_from(data)
    if version > VERSION:
        raise _fail(path, f"format version {version} is newer than this nbcvm supports "
                    f"({VERSION}); upgrade nbcvm", 4)
    if version < 1:
        raise _fail(path, f"format version {version} does not exist (this nbcvm reads {VERSION})", 4)
    if flags & ~KNOWN_FLAGS:
        raise _fail(path, f"unknown flags 0x{flags & ~KNOWN_FLAGS:04x} in header "
                    f"(version {VERSION} defines only 0x{KNOWN_FLAGS:04x}, debug info)", 6)
    if size < HEADER_SIZE + plen:
        raise _fail(path, f"truncated: expected {plen} bytes at offset {HEADER_SIZE}, "
                    f"file has {size} (the payload ends at offset {HEADER_SIZE + plen})")
    if size > HEADER_SIZE + plen:
        extra = size - HEADER_SIZE - plen
        raise _fail(path, f"trailing garbage: {extra} byte(s) after the {plen}-byte payload",
                    HEADER_SIZE + plen)
    actual = zlib.crc32(memoryview(data)[HEADER_SIZE:])
    if actual != crc:
        raise _fail(path, f"checksum mismatch: header says CRC-32 0x{crc:08x}, payload has "
                    f"0x{actual:08x} (file damaged)", 12)
    return _payload(data, path, bool(flags & FLAG_DEBUG))


def _payload(data: bytes, path: str, debug: bool) -> Module:
    top = _Reader(data, HEADER_SIZE, len(data), path, "payload")
    bodies: dict[int, tuple[int, int]] = {}  # section id -> (start, end) of its body
    last = 0
    while top.pos < top.end:
        at = top.pos
        sid = top.u8("section id")
        name = SECTION_NAMES.get(sid)
        if name is None:
            raise top.fail(f"unknown section id {sid}", at)
        if sid in bodies:
            raise top.fail(f"duplicate section '{name}'", at)
        if sid < last:
            raise top.fail(f"section '{name}' out of order (after '{SECTION_NAMES[last]}')", at)
        if sid in DEBUG_SECTIONS and not debug:
            raise top.fail(f"debug section '{name}' but the header's debug flag is clear", at)
        n = top.uvarint(f"length of section '{name}'")
        top.need(n, f"section '{name}'")
        bodies[sid] = (top.pos, top.pos + n)
        top.pos += n
        last = sid
    for sid in REQUIRED + (DEBUG_SECTIONS if debug else ()):
        if sid not in bodies:
            extra = " (the header's debug flag is set)" if sid in DEBUG_SECTIONS else ""
            raise top.fail(f"missing section '{SECTION_NAMES[sid]}'{extra}", top.end)

    def section(sid: int) -> _Reader:
        start, end = bodies[sid]
        return _Reader(data, start, end, path, f"section '{SECTION_NAMES[sid]}'")

    def done(r: _Reader) -> None:
        if r.pos != r.end:
            raise r.fail(f"{r.end - r.pos} unused byte(s) at the end of {r.what}")

    r = section(S_MODULE)
    name = r.string("module name")
    done(r)

    r = section(S_CONSTS)
    consts = _read_consts(r)
    done(r)

    r = section(S_NAMES)
    names = r.strings("name")
    done(r)

    r = section(S_GLOBALS)
    n = r.count("global count", 2)
    globs = tuple((r.string("global name"), r.svarint("global initial constant")) for _ in range(n))
    done(r)

    r = section(S_IMPORTS)
    imports = r.strings("import")
    done(r)

    r = section(S_FUNCS)
    funcs = _read_funcs(r)
    done(r)

    source = path
    lines: list[tuple[int, ...]] = [(0,) * len(f[3]) for f in funcs]
    if debug:
        r = section(S_LINES)
        lines = _read_lines(r, funcs)
        done(r)
        r = section(S_SOURCE)
        source = r.string("source name")
        done(r)

    functions = tuple(CodeObject(fname, nparams, locs, code, ln)
                      for (fname, nparams, locs, code), ln in zip(funcs, lines))
    return Module(name=name, consts=consts, names=names, globals=globs, imports=imports,
                  functions=functions, source=source)


def _read_consts(r: _Reader) -> tuple[Const, ...]:
    n = r.count("constant count")
    out: list[Const] = []
    for _ in range(n):
        at = r.pos
        tag = r.u8("constant tag")
        if tag == T_NIL:
            out.append(None)
        elif tag == T_FALSE:
            out.append(False)
        elif tag == T_TRUE:
            out.append(True)
        elif tag == T_INT:
            out.append(r.svarint("int constant"))
        elif tag == T_FLOAT:
            r.need(8, "float constant")
            out.append(_F64.unpack_from(r.data, r.pos)[0])
            r.pos += 8
        elif tag == T_STR:
            out.append(r.string("string constant"))
        else:
            raise r.fail(f"unknown constant tag {tag}", at)
    return tuple(out)


_RawFunc = tuple[str, int, tuple[str, ...], tuple]


def _read_funcs(r: _Reader) -> list[_RawFunc]:
    # A function takes at least 5 bytes: name length, nparams, nlocals, ninstr, code length.
    n = r.count("function count", 5)
    nops, noarg, zz1 = _NOPERANDS, _NOARG, _ZZ1
    funcs: list[_RawFunc] = []
    for i in range(n):
        r.func = i
        fname = r.string("function name")
        nparams = r.uvarint("parameter count")
        locs = r.strings("local name")
        ninstr = r.count("instruction count")
        clen = r.uvarint("code length")
        r.need(clen, "code")
        if ninstr > clen:
            raise r.fail(f"{ninstr} instructions claimed in {clen} byte(s) of code")
        data, pos, end = r.data, r.pos, r.pos + clen
        code = []
        append = code.append
        cr: _Reader | None = None  # made only for the rare multi-byte operand
        for pc in range(ninstr):
            if pos >= end:
                raise r.fail(f"code ends after {pc} of its {ninstr} instructions", pos)
            opc = data[pos]
            pos += 1
            k = nops[opc]
            if k == 0:  # fast paths: no operand, or one one-byte operand
                append(noarg[opc])
                continue
            if k == 1 and pos < end and data[pos] < 0x80:
                append((opc, (zz1[data[pos]],)))
                pos += 1
                continue
            if k < 0:
                raise r.fail(f"unknown opcode 0x{opc:02x} at pc {pc}", pos - 1)
            args = []
            for j in range(k):
                if pos < end and data[pos] < 0x80:
                    args.append(zz1[data[pos]])
                    pos += 1
                    continue
                if pos >= end:
                    raise r.fail(f"operand count mismatch: '{BY_CODE[opc].name}' at pc {pc} needs "
                                 f"{k} operand(s) but the code ends after {j}", pos)
                if cr is None:
                    cr = _Reader(data, pos, end, r.path, "code")
                    cr.func = i
                cr.pos = pos
                args.append(cr.svarint(f"operand {j} of pc {pc}"))
                pos = cr.pos
            append((opc, tuple(args)))
        if pos != end:
            raise r.fail(f"operand count mismatch: {end - pos} byte(s) of code left after its "
                         f"{ninstr} instructions (written for a different ISA?)", pos)
        r.pos = end
        funcs.append((fname, nparams, locs, tuple(code)))
    r.func = None
    return funcs


def _read_lines(r: _Reader, funcs: list[_RawFunc]) -> list[tuple[int, ...]]:
    zz1 = _ZZ1
    at = r.pos
    n = r.count("line table count")
    if n != len(funcs):
        raise r.fail(f"{n} line tables for {len(funcs)} functions", at)
    out = []
    for i, f in enumerate(funcs):
        at = r.pos
        r.func = i
        m = r.count("line count")
        if m != len(f[3]):
            raise r.fail(f"line table has {m} entries for {len(f[3])} instructions", at)
        line, ln = 0, []
        append = ln.append
        data, pos, end = r.data, r.pos, r.end
        for _ in range(m):
            at = pos
            if pos < end and data[pos] < 0x80:  # the common one-byte delta
                line += zz1[data[pos]]
                pos += 1
            else:
                r.pos = pos
                line += r.svarint("line delta")
                pos = r.pos
            if not 0 <= line <= MAX_LINE:
                raise r.fail(f"line number {line} out of range (0..{MAX_LINE})", at)
            append(line)
        r.pos = pos
        out.append(tuple(ln))
    r.func = None
    return out


__all__ = ["encode", "decode", "MAGIC", "VERSION", "FLAG_DEBUG"]
