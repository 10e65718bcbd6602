#!/usr/bin/env python3
"""Fuzz the decoder, assembler, verifier and interpreter of nbcvm, and the JIT against it.

    python scripts/fuzz.py --seconds 60 --target all --seed 1
    python scripts/fuzz.py --count 5000 --target decoder
    python scripts/fuzz.py --seed 1 --target verifier --replay 1234   # one input again

Every input is derived from ``(seed, target, index)`` and the corpus
(examples/*.nbc and tests/programs/*.nbc as they are), so a run is
deterministic for a given ``--seed`` -- up to the interleaving of VM threads
that fuzzed programs spawn -- and any input can be replayed by its index.
Expected outcomes are counted per class (ok, FormatError, AsmError,
VerifyError, VMError:<type>, LimitExceeded:<limit> ...).  A FAILURE is:

* any other Python exception, or an NBC ``InternalError`` (a fault in nbcvm);
* a broken round trip: decoded bytes that re-encode differently, an assembled
  module that does not decode back equal, or verified text whose disassembly
  does not re-assemble byte-identically;
* an input that runs more than 2 s past its wall-time budget (a watchdog
  thread ends the process if one never returns);
* VM threads still running when run_main has returned (it waits for them, then
  cancels them), or alive a minute after their run ended (stuck for good);
* resident memory growing more than ``--max-rss-growth`` MiB over the run;
* (target ``jit``) a program whose run in the JIT's Python tier differs from
  the interpreter's in exit code, output, error type or message, or
  instruction count -- or that makes the JIT emit a Python warning.  Programs
  with threads or the clock are skipped; time and memory limits are compared
  by kind only (docs/jit.md).

A failure prints a reproducer (hex of the bytes / the text) and the command
to replay it; the exit code is then 1.  ``--keep-going`` collects distinct
failures instead of stopping at the first.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import struct
import sys
import threading
import time
import traceback
import warnings
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from nbcvm.asm.assembler import assemble  # noqa: E402
from nbcvm.asm.disasm import disassemble  # noqa: E402
from nbcvm.bytecode import codec  # noqa: E402
from nbcvm.bytecode.codec import decode, encode  # noqa: E402
from nbcvm.bytecode.model import CodeObject, Module  # noqa: E402
from nbcvm.bytecode.verifier import verify  # noqa: E402
from nbcvm.errors import (CATEGORIES, ERROR_TYPES, AsmError, FormatError, LimitExceeded,  # noqa: E402
                          VerifyError, VMError)
from nbcvm.isa import BY_CODE, BY_NAME, OPS, Flow, OperandKind  # noqa: E402
from nbcvm.runtime.limits import Limits  # noqa: E402
from nbcvm.runtime.runtime import Runtime  # noqa: E402
from nbcvm.runtime.threads import CANCEL_WAIT  # noqa: E402
from nbcvm.vm import natives  # noqa: E402

TARGETS = ("decoder", "assembler", "verifier", "interpreter", "jit")
SLACK = 2.0  # seconds an input may run past its budget before it is a failure
RUN_TIMEOUT = 1.0
HARD_HANG = 30.0  # the watchdog ends the process after budget + this
STUCK_AFTER = 60.0  # a VM thread older than this is stuck for good


def limits() -> Limits:
    return Limits(max_steps=10_000, max_depth=200, timeout=RUN_TIMEOUT, max_output=1 << 16,
                  max_memory=1 << 26)


# ---------------------------------------------------------------------------
# Corpus


EXTRA_SOURCES = [
    # Regions, errors, maps, lists, strings, natives: the corpus should reach every family.
    """.module extra1
.import math
.import str
.global g 7
.func helper a b
    .local t
    load a
    load b
    add
    store t
    inc t -3
    load t
    ret
.end
.func main
    .local m l s
    try caught *
    push 1
    push 2
    call helper 2
    gload g
    mul
    gstore g
    push "k"
    push 1.5
    newmap 1
    store m
    load m
    push "k"
    getitem
    call math.sqrt 1
    print
    push 3
    push 4
    push 5
    newlist 3
    store l
    load l
    push -1
    getitem
    print
    push "abc"
    call str.upper 1
    dup
    len
    print
    store s
    load s
    push 0
    push 2
    slice
    print
    push 1
    push 0
    idiv
    pop
    endtry
    push 0
    ret
caught:
    dup
    errfield type
    print
    errfield code
    print
    push 1
    ret
.end
""",
    """.module extra2
.import tensor
.func main
    .local t
    push 2
    call tensor.eye 1
    store t
    load t
    load t
    matmul
    tsum
    print
    push 1.0
    push 2.0
    newlist 2
    tensor
    push 3.0
    tmul
    tolist
    print
    push "x"
    typeof
    print
    push 5
    push 1
    shl
    push 3
    bxor
    print
    push true
    push nil
    or
    not
    print
    push "boom"
    throw UserError
.end
""",
]


def corpus_sources() -> list[tuple[str, str]]:
    out = []
    for pattern in ("examples/*.nbc", "tests/programs/*.nbc"):
        for p in sorted(ROOT.glob(pattern)):
            out.append((str(p.relative_to(ROOT)), p.read_text(encoding="utf-8")))
    out += [(f"<extra{i}>", s) for i, s in enumerate(EXTRA_SOURCES, 1)]
    return out


@dataclass
class Corpus:
    sources: list[tuple[str, str]]
    modules: list[Module] = field(default_factory=list)
    blobs: list[bytes] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    idents: list[str] = field(default_factory=list)

    @classmethod
    def load(cls) -> "Corpus":
        c = cls(corpus_sources())
        for path, text in c.sources:
            c.texts.append(text)
            try:
                m = assemble(text, path)
            except AsmError:
                continue
            c.modules.append(m)
            c.blobs.append(encode(m))
            c.blobs.append(encode(m, debug=False))
            c.texts.append(disassemble(m))
            for f in m.functions:
                c.idents += [f.name, *f.locals]
            c.idents += list(m.names) + [g for g, _ in m.globals]
        c.idents = sorted(set(c.idents))
        return c


# ---------------------------------------------------------------------------
# Byte mutations (decoder)


def reseal(data: bytes) -> bytes:
    """Fix the header's payload length and CRC so a mutation reaches the section parser."""
    if len(data) < codec.HEADER_SIZE:
        return data
    payload = data[codec.HEADER_SIZE:]
    return data[:8] + struct.pack("<II", len(payload), zlib.crc32(payload)) + payload


def section_fields(data: bytes) -> list[tuple[int, int]]:
    """(offset, size) of each section's length varint in a valid encoding."""
    out, pos = [], codec.HEADER_SIZE
    while pos < len(data):
        pos += 1
        start, n, shift = pos, 0, 0
        while pos < len(data):
            b = data[pos]
            pos += 1
            n |= (b & 0x7F) << shift
            shift += 7
            if b < 0x80:
                break
        out.append((start, pos - start))
        pos += n
    return out


INTERESTING = [0x00, 0x01, 0x7F, 0x80, 0xFF, 0xFE, 0x40, 0x08, 0x09, 0x05]
BIG_VARINTS = [b"\xff" * 9 + b"\x01", b"\x80\x80\x80\x80\x80\x80\x80\x80\x10",  # 2**64-1, 2**60
               b"\xff" * 11, b"\x80\x00", b"\xff\xff\xff\xff\x0f", b"\x81\x80\x80\x80\x80\x80\x80\x80\x80\x02"]


def mutate_bytes(rng: random.Random, data: bytes, others: list[bytes]) -> bytes:
    b = bytearray(data)
    for _ in range(rng.choice((1, 1, 1, 2, 3, 5))):
        kind = rng.randrange(10)
        if kind == 0 and b:  # bit flip
            i = rng.randrange(len(b))
            b[i] ^= 1 << rng.randrange(8)
        elif kind == 1 and b:  # interesting byte
            b[rng.randrange(len(b))] = rng.choice(INTERESTING)
        elif kind == 2 and b:  # truncate
            del b[rng.randrange(len(b)):]
        elif kind == 3:  # splice with another encoding
            o = rng.choice(others)
            i, j = rng.randrange(len(b) + 1), rng.randrange(len(o) + 1)
            b = b[:i] + o[j:]
        elif kind == 4 and b:  # delete a run
            i = rng.randrange(len(b))
            del b[i:i + rng.randint(1, 8)]
        elif kind == 5:  # insert random bytes
            i = rng.randrange(len(b) + 1)
            b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif kind == 6:  # corrupt a section length
            fields = section_fields(bytes(b))
            if fields:
                off, size = rng.choice(fields)
                b[off:off + size] = rng.choice(BIG_VARINTS + [bytes([rng.randrange(128)])])
        elif kind == 7 and len(b) > 16:  # drop in a huge/overlong varint somewhere in the payload
            i = rng.randrange(16, len(b))
            b[i:i + rng.randint(0, 2)] = rng.choice(BIG_VARINTS)
        elif kind == 8 and len(b) >= 8:  # header fields
            field_ = rng.choice(((4, "<H"), (6, "<H"), (8, "<I")))
            v = rng.choice((0, 1, 2, 3, 0xFFFF, 0xFFFFFFFF, len(b), len(b) - 17))
            try:
                struct.pack_into(field_[1], b, field_[0], v)
            except struct.error:
                pass
        elif kind == 9 and len(b) > 17:  # duplicate a run (duplicate sections, repeated items)
            i = rng.randrange(16, len(b))
            j = min(len(b), i + rng.randint(1, 24))
            b[j:j] = b[i:j]
    out = bytes(b)
    return reseal(out) if rng.random() < 0.75 else out


def gen_decoder_input(rng: random.Random, corpus: Corpus) -> bytes:
    r = rng.random()
    if r < 0.08:
        return bytes(rng.randrange(256) for _ in range(rng.randint(0, 64)))
    if r < 0.18:
        body = bytes(rng.randrange(256) for _ in range(rng.randint(0, 80)))
        hdr = codec.MAGIC + struct.pack("<HH", 1, rng.choice((0, 1)))
        return reseal(hdr + b"\0" * 8 + body)
    if r < 0.30:  # a freshly generated module, mutated
        blob = encode(gen_module(rng, structured=rng.random() < 0.5), debug=rng.random() < 0.7)
        return mutate_bytes(rng, blob, corpus.blobs)
    return mutate_bytes(rng, rng.choice(corpus.blobs), corpus.blobs)


# ---------------------------------------------------------------------------
# Text mutations (assembler)


DIRECTIVES = [".module", ".import", ".global", ".func", ".local", ".end", ".source", ".line", ".bogus"]
INT_TOKS = ["0", "1", "-1", "2", "255", "65535", "65536", "9223372036854775807", "-9223372036854775808",
            "9223372036854775808", "0x7fffffffffffffff", "0b101", "1_000", "-0", "0x", "2147483647",
            "2147483648", "99999999999999999999999"]
FLOAT_TOKS = ["1.5", "-0.0", "1e308", "1e999", "2.5e-324", "nan", "inf", "-inf", "+inf", "0.1"]
STR_TOKS = ['"a"', '""', '"\\n\\t\\\\"', '"\\x41"', '"\\u00e9"', '"\\uD800"', '"unterminated', '"é☃"',
            '"\\q"', '"\\x4"', '"a\\"b"', '"\\0"']
MISC_TOKS = ["*", "@", "#", "12abc", "..", "a..b", ".", ":", "L0:", "loop:", "true", "false", "nil",
             "main", "x", "math.sqrt", "str.upper", "nosuch.f", "UserError", "ZeroDivisionError",
             "arithmetic", "message", "type", "$", "a$b", "\t", ";c", "\x00", "\u2028", "\r"]
NATIVE_ARITY: dict[str, int] = {}


def _native_arities() -> dict[str, int]:
    class _Dummy:
        seed, argv, meter = 0, (), None

    out = {}
    for mod, (make, _) in natives.REGISTRY.items():
        for fname, (arity, _) in make(_Dummy()).items():
            out[f"{mod}.{fname}"] = arity
    return out


def token_pool(corpus: Corpus) -> list[str]:
    return (list(BY_NAME) + DIRECTIVES + INT_TOKS + FLOAT_TOKS + STR_TOKS + MISC_TOKS
            + corpus.idents[:400] + list(NATIVE_ARITY))


def grammar_line(rng: random.Random, pool: list[str]) -> str:
    r = rng.random()
    if r < 0.25:
        d = rng.choice(DIRECTIVES)
        return " ".join([d] + [rng.choice(pool) for _ in range(rng.randint(0, 3))])
    if r < 0.35:
        return rng.choice(pool).rstrip(":") + ":"
    op = rng.choice(OPS)
    args = []
    for k in op.operands:
        if rng.random() < 0.1:
            args.append(rng.choice(pool))
        elif k is OperandKind.INT:
            args.append(rng.choice(INT_TOKS))
        elif k is OperandKind.CONST:
            args.append(rng.choice(INT_TOKS + FLOAT_TOKS + STR_TOKS + ["true", "false", "nil"]))
        elif k is OperandKind.NAME:
            args.append(rng.choice(["*", "UserError", "arithmetic", "message", "type", "KeyError"]))
        else:
            args.append(rng.choice(pool))
    if rng.random() < 0.05:
        args.append(rng.choice(pool))
    return "    " + " ".join([op.name] + args) + (" ; note" if rng.random() < 0.1 else "")


def mutate_text(rng: random.Random, text: str, pool: list[str]) -> str:
    lines = text.split("\n")
    for _ in range(rng.choice((1, 1, 2, 3, 6))):
        kind = rng.randrange(9)
        i = rng.randrange(len(lines)) if lines else 0
        if kind <= 2 and lines:  # token replace / delete / insert
            toks = lines[i].split()
            if kind == 0 and toks:
                toks[rng.randrange(len(toks))] = rng.choice(pool)
            elif kind == 1 and toks:
                del toks[rng.randrange(len(toks))]
            else:
                toks.insert(rng.randint(0, len(toks)), rng.choice(pool))
            lines[i] = "    " + " ".join(toks)
        elif kind == 3 and lines:
            lines.insert(i, lines[rng.randrange(len(lines))])
        elif kind == 4 and lines:
            del lines[i]
        elif kind == 5 and len(lines) > 1:
            j = rng.randrange(len(lines))
            lines[i], lines[j] = lines[j], lines[i]
        elif kind == 6:
            lines.insert(i, grammar_line(rng, pool))
        elif kind == 7 and lines:  # a character
            s = lines[i]
            k = rng.randint(0, len(s))
            lines[i] = s[:k] + rng.choice('"\\:.;*-+_0x9é☃\t\r\x00\x7f') + s[k:]
        elif kind == 8 and lines:  # cut a line short
            lines[i] = lines[i][:rng.randint(0, len(lines[i]))]
    return "\n".join(lines)


def gen_assembler_input(rng: random.Random, corpus: Corpus, pool: list[str]) -> str:
    if rng.random() < 0.15:
        head = [".module fz"] if rng.random() < 0.5 else []
        body = [grammar_line(rng, pool) for _ in range(rng.randint(1, 25))]
        return "\n".join(head + [".func main"] + body + [".end"])
    return mutate_text(rng, rng.choice(corpus.texts), pool)


# ---------------------------------------------------------------------------
# Module generation (verifier, interpreter)


CONST_POOL: list[Any] = [0, 1, -1, 2, 3, 7, 10, 255, 2**31, 2**62, 2**63 - 1, -(2**63), 0.0, -0.0, 0.5, 1.5,
                         -2.25, 1e308, float("inf"), float("-inf"), float("nan"), "", "a", "hello",
                         "héllo ☃", "k", "3", "1.5", "x" * 40, True, False, None]
THROWABLE = [t for t in ERROR_TYPES if t not in ("LimitExceeded", "InternalError", "VerificationError")]
SELECTORS = ["*"] + list(ERROR_TYPES) + list(CATEGORIES)
FIELDS = ["type", "category", "code", "message", "traceback", "recoverable"]
NATIVE_MODS = sorted(natives.REGISTRY)


class _ModGen:
    """Builds a random Module, mostly stack-correct so that many of them verify."""

    def __init__(self, rng: random.Random, structured: bool):
        self.rng = rng
        self.structured = structured
        self.consts: list[Any] = []
        self.names: list[str] = []
        self.imports = [m for m in NATIVE_MODS if rng.random() < 0.3]
        if rng.random() < 0.05:
            self.imports.append("nosuchmod")
        self.nglobals = rng.randint(0, 3)
        self.funcs: list[tuple[str, int, int]] = [("main", 0, rng.randint(0, 3))]
        for i in range(rng.randint(0, 3)):
            np_ = rng.randint(0, 3)
            self.funcs.append((f"f{i}", np_, np_ + rng.randint(0, 2)))

    def const(self) -> int:
        rng = self.rng
        if self.consts and rng.random() < 0.4:
            return rng.randrange(len(self.consts))
        v = rng.choice(CONST_POOL) if rng.random() < 0.9 else rng.randint(-(2**63), 2**63 - 1)
        self.consts.append(v)
        return len(self.consts) - 1

    def name(self, text: str) -> int:
        if text not in self.names:
            self.names.append(text)
        return self.names.index(text)

    def operand(self, kind: OperandKind, opname: str, nlocals: int, depth: int) -> int:
        rng = self.rng
        if not self.structured and rng.random() < 0.15:
            return rng.choice((-1, 0, 1, 2**31, 2**63 - 1, -(2**63), rng.randint(-5, 70)))
        if kind is OperandKind.CONST:
            return self.const()
        if kind is OperandKind.LOCAL:
            return rng.randrange(nlocals) if nlocals else 0
        if kind is OperandKind.GLOBAL:
            return rng.randrange(self.nglobals) if self.nglobals else 0
        if kind is OperandKind.INT:
            if opname == "inc":
                return rng.choice((1, -1, 5, 2**62, -(2**63), 2**63 - 1))
            depth = max(depth, 0)
            return rng.randint(0, min(depth, 3)) if opname != "newmap" else rng.randint(0, depth // 2)
        if kind is OperandKind.NAME:
            pool = {"try": SELECTORS, "throw": THROWABLE, "errfield": FIELDS}.get(opname, FIELDS)
            return self.name(rng.choice(pool))
        if kind is OperandKind.LABEL:
            return -1  # patched later
        if kind is OperandKind.FUNC:
            return self.name(rng.choice([f[0] for f in self.funcs]))
        raise AssertionError(kind)

    def block(self, code: list, depths: list, depth: int, n: int, nlocals: int, nest: int) -> int:
        """Append about n stack-correct instructions starting at ``depth``; return the depth after."""
        rng = self.rng
        for _ in range(n):
            r = rng.random()
            if r < 0.06 and nest < 2 and self.structured:
                depth = self.try_block(code, depths, depth, nlocals, nest)
                continue
            if r < 0.12:  # a call (or a thread spawn, where the ISA has it)
                spawn = "spawn" in BY_NAME and rng.random() < 0.15
                callee = self.callee(depth, local_only=spawn)
                if callee is not None:
                    name, nargs = callee
                    depths.append(depth)
                    code.append((BY_NAME["spawn" if spawn else "call"].code, (self.name(name), nargs)))
                    depth = max(0, depth - nargs) + 1
                    continue
            op = rng.choice(OPS)
            if self.structured and ((OperandKind.LOCAL in op.operands and not nlocals)
                                    or (OperandKind.GLOBAL in op.operands and not self.nglobals)):
                continue
            if op.name in ("call", "spawn") or (op.name in ("try", "endtry") and self.structured) \
                    or (op.flow is Flow.END and rng.random() < 0.7):
                continue
            args = [self.operand(k, op.name, nlocals, depth) for k in op.operands]
            pops = op.pop_count(tuple(args))
            if pops < 0 or pops > 1 << 20:
                pops = 0
            if pops > depth and self.structured:
                for _ in range(pops - depth):  # feed it
                    depths.append(depth)
                    code.append((BY_NAME["push"].code, (self.const(),)))
                    depth += 1
            depths.append(depth)
            code.append((op.code, tuple(args)))
            if op.flow is not Flow.END:
                depth = max(0, depth - pops) + op.pushes
        return depth

    def callee(self, depth: int, local_only: bool = False) -> tuple[str, int] | None:
        rng = self.rng
        options = [(f, np_) for f, np_, _ in self.funcs if np_ <= depth]
        if not local_only:
            options += [(q, a) for q, a in NATIVE_ARITY.items()
                        if q.split(".")[0] in self.imports and 0 <= a <= depth]
        if not options:
            return None
        name, n = rng.choice(options)
        if not self.structured and rng.random() < 0.2:
            n = rng.randint(0, 4)
        return name, n

    def try_block(self, code: list, depths: list, depth: int, nlocals: int, nest: int) -> int:
        rng = self.rng
        t = len(code)
        depths.append(depth)
        code.append((BY_NAME["try"].code, (-1, self.name(rng.choice(SELECTORS)))))
        d = self.block(code, depths, depth, rng.randint(1, 8), nlocals, nest + 1)
        while d > depth:
            depths.append(d)
            code.append((BY_NAME["pop"].code, ()))
            d -= 1
        while d < depth:
            depths.append(d)
            code.append((BY_NAME["push"].code, (self.const(),)))
            d += 1
        depths.append(depth)
        code.append((BY_NAME["endtry"].code, ()))
        j = len(code)
        depths.append(depth)
        code.append((BY_NAME["jmp"].code, (-1,)))
        handler = len(code)
        depths.append(depth + 1)
        if rng.random() < 0.5:
            code.append((BY_NAME["errfield"].code, (self.name(rng.choice(FIELDS)),)))
            depths.append(depth + 1)
            code.append((BY_NAME["print"].code, ()))
        else:
            code.append((BY_NAME["pop"].code, ()))
        after = len(code)
        code[t] = (code[t][0], (handler, code[t][1][1]))
        code[j] = (code[j][0], (after,))
        return depth

    def function(self, name: str, nparams: int, nlocals: int) -> CodeObject:
        rng = self.rng
        code: list = []
        depths: list = []
        depth = self.block(code, depths, 0, rng.randint(0, 30), nlocals, 0)
        if depth == 0 or rng.random() < 0.3:
            depths.append(depth)
            code.append((BY_NAME["push"].code, (self.const(),)))
            depth += 1
        depths.append(depth)
        code.append((BY_NAME["ret" if rng.random() < 0.9 else "halt"].code, ()))
        # Patch labels: pick a target whose straight-line depth matches the depth after the jump.
        label_ops = {o.code for o in OPS if OperandKind.LABEL in o.operands}
        for pc, (opc, args) in enumerate(code):
            if opc in label_ops and args[0] == -1:
                op = BY_CODE[opc]
                after = depths[pc] - op.pop_count(args)
                same = [i for i, d in enumerate(depths) if d == after]
                target = rng.choice(same) if same and rng.random() < 0.9 else rng.randrange(len(code) + 1)
                code[pc] = (opc, (target,) + args[1:])
        if not self.structured:
            self.scramble(code)
        lines = tuple(rng.choice((0, pc + 1, 2**31 - 1)) if rng.random() < 0.05 else pc + 1
                      for pc in range(len(code)))
        locs = tuple(f"v{i}" for i in range(nlocals))
        return CodeObject(name, nparams, locs, tuple(code), lines)

    def scramble(self, code: list) -> None:
        rng = self.rng
        for _ in range(rng.randint(0, 3)):
            if not code:
                return
            i = rng.randrange(len(code))
            r = rng.random()
            if r < 0.3:
                del code[i]
            elif r < 0.6:
                j = rng.randrange(len(code))
                code[i], code[j] = code[j], code[i]
            else:
                opc, args = code[i]
                if args:
                    k = rng.randrange(len(args))
                    args = args[:k] + (rng.choice((-1, 0, 1, 3, 100, 2**63 - 1, -(2**63))),) + args[k + 1:]
                    code[i] = (opc, args)

    def module(self) -> Module:
        rng = self.rng
        funcs = [self.function(*f) for f in self.funcs]
        if not self.structured and rng.random() < 0.3:
            rng.shuffle(funcs)
        globs = []
        for i in range(self.nglobals):
            init = self.const() if rng.random() < 0.6 else -1
            globs.append((f"g{i}", init))
        return Module(name="fz", consts=tuple(self.consts), names=tuple(self.names), globals=tuple(globs),
                      imports=tuple(self.imports), functions=tuple(funcs), source="<fuzz>")


def gen_module(rng: random.Random, structured: bool = True) -> Module:
    return _ModGen(rng, structured).module()


# ---------------------------------------------------------------------------
# Executors: each returns an outcome class or raises Failure


class Failure(Exception):
    def __init__(self, what: str, detail: str = ""):
        super().__init__(what)
        self.what, self.detail = what, detail


def check_decoded(m: Module, data: bytes) -> None:
    flags = struct.unpack_from("<H", data, 6)[0]
    again = encode(m, debug=bool(flags & codec.FLAG_DEBUG))
    if again != data:
        raise Failure("decode/encode not canonical: decoded bytes re-encode differently",
                      f"re-encoded: {again.hex()}")


def text_round_trip(m: Module, exact: bool) -> None:
    """Verified module -> disassembly -> assemble: the same binary (``exact``, for modules
    the assembler made) or at least the same disassembly (any module: its pools need not
    be in the assembler's order)."""
    text = disassemble(m)
    try:
        m2 = assemble(text, m.source)
    except AsmError as e:
        raise Failure("disassembly of a verified module does not re-assemble", f"{e}\n{text}") from None
    if exact and encode(m2) != encode(m):
        raise Failure("text -> binary -> text -> binary is not byte-identical", text)
    if not exact and disassemble(m2) != text:
        raise Failure("disassembly is not a fixpoint: disasm(assemble(disasm(m))) differs", text)


def run_module(m: Module, args: list | None = None, jit: str = "off") -> tuple[str, str, Any]:
    """Instantiate (verifies again) and run main under tight limits.

    ``jit="eager"`` runs it translated to Python (the JIT's Python tier; numba is
    left out: compiling every random program would take seconds each)."""
    out = io.StringIO()
    before = set(threading.enumerate())
    rt = Runtime(limits(), stdout=out, jit=jit)
    if rt.jit is not None:
        rt.jit.numba_enabled = False
    inst = rt.instantiate(m)
    t0 = time.perf_counter()
    outcome = rt.run_main(inst, args or [])
    took = time.perf_counter() - t0
    if took > RUN_TIMEOUT + SLACK:
        raise Failure(f"slow: run_main took {took:.2f} s with a {RUN_TIMEOUT:g} s timeout")
    left = vm_threads_left(rt, before)
    if left:  # run_main waits for its threads, then cancels them: none may outlive it
        raise Failure(f"{left} VM thread(s) still running after run_main returned")
    err = outcome.error
    if err is None:
        cls = "ok"
    elif isinstance(err, LimitExceeded):
        cls = f"LimitExceeded:{err.limit}"
    else:
        cls = f"VMError:{err.type_name}"
    if err is not None and err.type_name == "InternalError":
        raise Failure(f"NBC InternalError: {err.message}", _tb(err))
    sig = (outcome.exit_code, out.getvalue(), err.type_name if err else None, err.message if err else None,
           outcome.stats.steps)
    return cls, out.getvalue(), sig


def vm_threads_left(rt: Runtime, before: set) -> int:
    """VM threads of this runtime still running (any new host threads if it keeps no count)."""
    live = getattr(getattr(rt, "threads", None), "live", None)
    if isinstance(live, int):
        return live
    return sum(1 for t in threading.enumerate() if t not in before and t.is_alive())


def _tb(err: VMError) -> str:
    return " <- ".join(f"{e.function}@{e.pc}:{e.op}" for e in err.traceback)


def exec_decoder(data: bytes) -> str:
    try:
        m = decode(data, "<fuzz>")
    except FormatError as e:
        msg = str(e)
        if "\n" in msg or "offset" not in msg:
            raise Failure("FormatError message is not one line naming the offset", msg) from None
        return "FormatError"
    check_decoded(m, data)
    try:
        verify(m)
    except VerifyError:
        return "decoded:VerifyError"
    text_round_trip(m, exact=False)
    return "decoded:ok"


def exec_assembler(text: str, rng: random.Random) -> str:
    try:
        m = assemble(text, "<fuzz>")
    except AsmError:
        return "AsmError"
    data = encode(m)
    if decode(data, "<fuzz>") != m:
        raise Failure("assembled module does not decode back equal", data.hex())
    check_decoded(decode(data), data)
    try:
        verify(m)
    except VerifyError:
        return "asm:VerifyError"
    text_round_trip(m, exact=True)
    main = m.function("main")
    if main is None:
        return "asm:ok"
    args = [rng.choice((0, 1, 5, -3, 2.5, "x")) for _ in range(main.nparams)]
    cls, _, _ = run_module(m, args)
    return f"run:{cls}"


def exec_verifier(m: Module) -> str:
    data = encode(m)
    d = decode(data, "<fuzz>")
    if d != m:
        raise Failure("generated module does not decode back equal", data.hex())
    try:
        verify(d)
    except VerifyError:
        return "VerifyError"
    text_round_trip(d, exact=False)
    return "ok"


def exec_interpreter(m: Module) -> str:
    d = decode(encode(m), "<fuzz>")
    try:
        verify(d)
    except VerifyError:
        return "VerifyError"
    cls, _, sig = run_module(d)
    threaded = any(BY_CODE[opc].family == "concurrency" for f in d.functions for opc, _ in f.code)
    threaded = threaded or sig is None
    if "time" not in d.imports and not threaded and cls != "LimitExceeded:time":
        _, _, sig2 = run_module(d)  # same program, same seed: same everything
        if sig is not None and sig2 is not None and sig2 != sig:
            raise Failure("nondeterministic: two runs of one program differ", f"{sig!r}\n{sig2!r}")
    return cls


def exec_jit(m: Module) -> str:
    """Differential: the interpreter and the JIT's Python tier must agree exactly."""
    d = decode(encode(m), "<fuzz>")
    try:
        verify(d)
    except VerifyError:
        return "VerifyError"
    if "time" in d.imports or any(BY_CODE[opc].family == "concurrency" for f in d.functions for opc, _ in f.code):
        return "skipped:nondeterministic"
    cls, _, sig = run_module(d)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cls2, _, sig2 = run_module(d, jit="eager")
    if caught:  # e.g. a SyntaxWarning from compiling generated code: a user would see it
        raise Failure("the JIT emitted a Python warning", "\n".join(str(w.message) for w in caught))
    if cls in ("LimitExceeded:time", "LimitExceeded:memory") or cls2 == "LimitExceeded:time":
        # wall time differs by nature; where a memory limit trips may differ by a few allocations
        # (docs/jit.md, "Limits: where semantics differ")
        if (cls == "LimitExceeded:time") == (cls2 == "LimitExceeded:time") and sig[:1] != sig2[:1]:
            raise Failure("interpreter and JIT end differently", f"{sig!r}\n{sig2!r}")
        return f"{cls} (not compared)"
    if sig != sig2:
        raise Failure("interpreter and JIT (Python tier) differ", f"interpreter: {sig!r}\njit:         {sig2!r}")
    return cls


# ---------------------------------------------------------------------------
# Driver


@dataclass
class Stats:
    inputs: int = 0
    seconds: float = 0.0
    outcomes: Counter = field(default_factory=Counter)
    failures: int = 0
    slowest: float = 0.0
    rss_growth: float = 0.0  # MiB of RSS growth seen while this target's inputs ran


class Watchdog(threading.Thread):
    """Ends the process if one input never returns (prints its reproducer first)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.current: tuple[float, float, Callable[[], str]] | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.5):
            cur = self.current
            if cur is not None and time.perf_counter() - cur[0] > cur[1] + HARD_HANG:
                sys.stdout.write(f"\nFAILURE: hang: no result after {cur[1] + HARD_HANG:.0f} s\n{cur[2]()}\n")
                sys.stdout.flush()
                os._exit(1)


_PAGE_MIB = os.sysconf("SC_PAGE_SIZE") / 2**20 if hasattr(os, "sysconf") else 0.0


def rss_mib() -> float:
    """Resident set size in MiB (cheap on Linux: one read of /proc/self/statm)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * _PAGE_MIB
    except OSError:
        import psutil

        return psutil.Process().memory_info().rss / 2**20


def stuck_threads(born: dict[threading.Thread, tuple[str, int, float]], seed: int) -> str | None:
    """A FAILURE report if VM threads have outlived their run by more than STUCK_AFTER seconds."""
    now = time.perf_counter()
    for th in [t for t in born if not t.is_alive()]:
        del born[th]
    old = [(th, info) for th, info in born.items() if th.name.startswith("nbc") and now - info[2] > STUCK_AFTER]
    if not old:
        return None
    frames = sys._current_frames()
    th, (target, index, t0) = min(old, key=lambda x: x[1][2])
    # Show the thread whose stack explains the others if there is one (a lock held by itself).
    stacks = {t: "".join(traceback.format_stack(frames[t.ident])[-8:]) for t, _ in old if t.ident in frames}
    culprit = next((t for t, st in stacks.items() if "_collected" in st), th)
    return (f"FAILURE [{target} #{index}] {len(old)} VM thread(s) stuck for more than {STUCK_AFTER:.0f} s "
            f"after their run ended\n{culprit.name}:\n{stacks.get(culprit, '?')}"
            f"replay: python scripts/fuzz.py --seed {seed} --target {target} --replay {index} "
            "(timing-dependent: may not recur on replay)")


def reproducer(target: str, inp: Any, seed: int, index: int) -> str:
    lines = [f"replay: python scripts/fuzz.py --seed {seed} --target {target} --replay {index}"]
    if isinstance(inp, bytes):
        lines.append(f"bytes ({len(inp)}): {inp.hex()}")
    elif isinstance(inp, str):
        lines.append(f"text ({len(inp)} chars), repr: {inp!r}")
    elif isinstance(inp, Module):
        lines.append(f"module as .nbcb hex: {encode(inp).hex()}")
        try:
            lines.append("module as text:\n" + disassemble(inp))
        except Exception as e:  # a module that does not verify may not print
            lines.append(f"(disassembly failed: {type(e).__name__}: {e})")
    return "\n".join(lines)


def make_input(target: str, seed: int, index: int, corpus: Corpus, pool: list[str]) -> tuple[Any, random.Random]:
    rng = random.Random(f"{seed}/{target}/{index}")
    if target == "decoder":
        return gen_decoder_input(rng, corpus), rng
    if target == "assembler":
        return gen_assembler_input(rng, corpus, pool), rng
    if target == "verifier":
        return gen_module(rng, structured=rng.random() < 0.6), rng
    return gen_module(rng, structured=True), rng


def execute(target: str, inp: Any, rng: random.Random) -> str:
    if target == "decoder":
        return exec_decoder(inp)
    if target == "assembler":
        return exec_assembler(inp, rng)
    if target == "verifier":
        return exec_verifier(inp)
    if target == "jit":
        return exec_jit(inp)
    return exec_interpreter(inp)


def budget(target: str) -> float:
    # Interpreter runs (also of assembled programs) may take up to the run timeout, twice
    # for the determinism check; everything else should be quick.
    return 2 * (RUN_TIMEOUT + CANCEL_WAIT) if target in ("interpreter", "assembler", "jit") else 0.0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=None, help="stop after this long (default 30 s)")
    ap.add_argument("--count", type=int, default=None, help="stop after this many inputs")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--target", choices=TARGETS + ("all",), default="all")
    ap.add_argument("--start", type=int, default=0, help="first input index")
    ap.add_argument("--replay", type=int, default=None, help="run only the input with this index, verbosely")
    ap.add_argument("--keep-going", action="store_true", help="collect distinct failures instead of stopping")
    ap.add_argument("--max-rss-growth", type=float, default=1024,
                    help="MiB of RSS growth that is a failure (default 1024: programs that spawn VM threads "
                         "fragment glibc's per-thread arenas by a few hundred MiB; MALLOC_ARENA_MAX=2 "
                         "keeps that down)")
    a = ap.parse_args(argv)
    if a.seconds is None and a.count is None:
        a.seconds = 30.0

    NATIVE_ARITY.update(_native_arities())
    corpus = Corpus.load()
    pool = token_pool(corpus)
    targets = TARGETS if a.target == "all" else (a.target,)

    if a.replay is not None:
        target = targets[a.replay % len(targets)] if a.target == "all" else a.target
        inp, rng = make_input(target, a.seed, a.replay, corpus, pool)
        print(reproducer(target, inp, a.seed, a.replay))
        try:
            print("outcome:", execute(target, inp, rng))
        except Failure as f:
            print(f"FAILURE: {f.what}\n{f.detail}")
            return 1
        return 0

    stats = {t: Stats() for t in targets}
    failures: dict[str, str] = {}
    dog = Watchdog()
    dog.start()
    started = time.perf_counter()
    rss0: float | None = None
    born: dict[threading.Thread, tuple[str, int, float]] = {}
    print(f"fuzzing {', '.join(targets)} with seed {a.seed}; corpus: {len(corpus.sources)} sources, "
          f"{len(corpus.blobs)} binaries", flush=True)
    i = a.start
    last_report = started
    while True:
        done = i - a.start
        if a.count is not None and done >= a.count:
            break
        if a.seconds is not None and time.perf_counter() - started >= a.seconds:
            break
        target = targets[i % len(targets)]
        inp, rng = make_input(target, a.seed, i, corpus, pool)
        st = stats[target]
        rss_before = rss_mib()
        t0 = time.perf_counter()
        dog.current = (t0, budget(target), lambda: reproducer(target, inp, a.seed, i))
        problem = None
        try:
            cls = execute(target, inp, rng)
        except Failure as f:
            problem, cls = f"{f.what}\n{f.detail}", "FAILURE"
        except (Exception, RecursionError) as e:
            tb = traceback.extract_tb(e.__traceback__)
            where = next((f"{Path(fr.filename).name}:{fr.lineno} in {fr.name}" for fr in reversed(tb)
                          if "nbcvm" in fr.filename), "?")
            problem = f"{type(e).__name__}: {e} [{where}]\n{''.join(traceback.format_exception(e))}"
            cls = "FAILURE"
        dt = time.perf_counter() - t0
        dog.current = None
        if problem is None and dt > budget(target) + SLACK:
            problem, cls = f"slow: {dt:.2f} s, budget {budget(target):.1f} s + {SLACK:.0f} s", "FAILURE"
        st.inputs += 1
        st.seconds += dt
        st.rss_growth += max(0.0, rss_mib() - rss_before)
        st.slowest = max(st.slowest, dt)
        st.outcomes[cls] += 1
        if problem is not None:
            st.failures += 1
            key = f"{target}: {problem.splitlines()[0][:160]}"
            if key not in failures:
                failures[key] = f"FAILURE [{target} #{i}] {problem}\n{reproducer(target, inp, a.seed, i)}"
                print("\n" + failures[key] + "\n", flush=True)
            if not a.keep_going:
                break
        for th in threading.enumerate():  # remember which input started each host thread
            if th not in born:
                born[th] = (target, i, time.perf_counter())
        if done % 200 == 199:
            stuck = stuck_threads(born, a.seed)
            if stuck is not None:
                # Stop even with --keep-going: stuck threads keep their runtime's state (and, when
                # stuck inside a GC pass, the whole process's cyclic GC) -- later results would lie.
                failures["stuck"] = stuck
                print("\n" + stuck + "\n", flush=True)
                break
            rss = rss_mib()
            if rss0 is None:
                rss0 = rss
            elif rss - rss0 > a.max_rss_growth and "rss" not in failures:
                failures["rss"] = f"FAILURE: RSS grew {rss - rss0:.0f} MiB (from {rss0:.0f} to {rss:.0f} MiB)"
                print(failures["rss"], flush=True)
                if not a.keep_going:
                    break
        now = time.perf_counter()
        if now - last_report > 60:
            last_report = now
            print(f"  ... {done + 1} inputs, {now - started:.0f} s, {len(failures)} distinct failure(s)",
                  flush=True)
        i += 1
    dog.stop.set()
    wall = time.perf_counter() - started
    print(summary(stats, wall, rss0))
    code = 0
    if failures:
        print(f"\n{len(failures)} distinct failure(s):")
        for k in failures:
            print(f"  {k}")
        code = 1
    if any(t.name.startswith("nbc") for t in threading.enumerate()):
        # VM threads still running (or stuck holding a lock that weakref's atexit hook needs)
        # can hang interpreter shutdown: leave now, with the results printed.
        sys.stdout.flush()
        os._exit(code)
    return code


def summary(stats: dict[str, Stats], wall: float, rss0: float | None) -> str:
    rows = [("target", "inputs", "inputs/s", "slowest", "RSS+MiB", "failures", "outcomes")]
    for t, s in stats.items():
        rate = s.inputs / s.seconds if s.seconds else 0.0
        outs = ", ".join(f"{k} {v}" for k, v in sorted(s.outcomes.items(), key=lambda kv: (-kv[1], kv[0])))
        rows.append((t, str(s.inputs), f"{rate:.0f}", f"{s.slowest:.3f}s", f"{s.rss_growth:.0f}",
                     str(s.failures), outs))
    nc = len(rows[0]) - 1
    widths = [max(len(r[c]) for r in rows) for c in range(nc)]
    out = []
    for n, r in enumerate(rows):
        out.append("  ".join(r[c].ljust(widths[c]) if c == 0 else r[c].rjust(widths[c]) for c in range(nc))
                   + "  " + r[nc])
        if n == 0:
            out.append("-" * (sum(widths) + 2 * nc + 8))
    total = sum(s.inputs for s in stats.values())
    rss = f"; RSS {rss_mib():.0f} MiB" + (f" (+{rss_mib() - rss0:.0f})" if rss0 else "")
    out.append(f"total {total} inputs in {wall:.1f} s ({total / wall if wall else 0:.0f}/s){rss}")
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
