"""Assembler: ``.nbc`` text -> ``Module``.

Two passes.  The first reads every line into directives, labels and raw
instructions (so calls and jumps may refer forward); the second encodes
operands through the per-kind parsers of ``operands.py``.  Problems are
collected, not raised one by one: a file with five typos gets five
diagnostics (up to ``MAX_ERRORS``), each with file:line:col and the line.

Directives::

    .module NAME            module name (default: the file's stem)
    .import NAME            another module (NBC or native), loaded lazily
    .global NAME [CONST]    a module global with its initial value (nil)
    .func NAME [PARAM ...]  start a function; parameters are its first locals
    .local NAME ...         more locals of the current function (start as nil)
    .end                    end the function
    .source "FILE"          file name recorded for tracebacks (disassembler output)
    .line N                 the next instruction is on source line N, the ones after
                            it on N+1, N+2 ... (disassembler output keeps lines this way)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from nbcvm.asm.lexer import LexError, Token, diag, tokenize_line
from nbcvm.asm.operands import PARSERS, OperandError, literal, suggest
from nbcvm.bytecode.codec import MAX_LINE  # line numbers are int64 in the binary format too
from nbcvm.bytecode.model import CodeObject, Const, Module, const_key
from nbcvm.errors import AsmError, Diagnostic
from nbcvm.isa import BY_NAME

MAX_ERRORS = 50
_NAME = re.compile(r"^[A-Za-z_$][\w$]*$")
_MODNAME = re.compile(r"^[A-Za-z_$][\w$]*(\.[A-Za-z_$][\w$]*)*$")


@dataclass
class _RawInstr:
    op: str
    args: list[Token]
    lineno: int  # physical line (for diagnostics)
    line: int  # recorded line (may come from .line)
    text: str


@dataclass
class _Func:
    name: str
    params: list[str]
    lineno: int
    text: str
    locals: dict[str, int] = field(default_factory=dict)
    labels: dict[str, int] = field(default_factory=dict)
    instrs: list[_RawInstr] = field(default_factory=list)


class _Assembler:
    def __init__(self, text: str, path: str, module_name: str | None):
        self.text, self.path = text, path
        self.lines = text.split("\n")
        self.diags: list[Diagnostic] = []
        self.module_name = module_name or _stem(path)
        self.module_line: tuple[int, str] | None = None
        self.source = path
        self.imports: dict[str, int] = {}  # name -> line
        self.globals: dict[str, int] = {}
        self.global_init: list[int] = []
        self.consts: list[Const] = []
        self.const_ix: dict[tuple, int] = {}
        self.names: list[str] = []
        self.name_ix: dict[str, int] = {}
        self.funcs: list[_Func] = []
        self.pending_globals: list[tuple[str, Token | None, int, str]] = []

    # -- scope protocol for operand parsers ------------------------------------
    def const(self, value: Const) -> int:
        k = const_key(value)
        if k not in self.const_ix:
            self.const_ix[k] = len(self.consts)
            self.consts.append(value)
        return self.const_ix[k]

    def name(self, text: str) -> int:
        if text not in self.name_ix:
            self.name_ix[text] = len(self.names)
            self.names.append(text)
        return self.name_ix[text]

    # -- diagnostics -----------------------------------------------------------
    def error(self, lineno: int, message: str, col: int = 1, width: int = 1) -> None:
        line = self.lines[lineno - 1] if 0 < lineno <= len(self.lines) else ""
        if col <= 1 and width == 1 and line.strip():
            col = len(line) - len(line.lstrip()) + 1
            width = len(line.strip().split(";")[0].rstrip()) or 1
        self.diags.append(diag(self.path, lineno, line, message, col, width))
        if len(self.diags) >= MAX_ERRORS:
            raise _TooMany()

    def tok_error(self, lineno: int, tok: Token, message: str) -> None:
        self.error(lineno, message, tok.col, len(tok.text))

    # -- pass 1 ------------------------------------------------------------------
    def pass1(self) -> None:
        func: _Func | None = None
        explicit_line: int | None = None
        for lineno, line in enumerate(self.lines, 1):
            try:
                toks = tokenize_line(line)
            except LexError as e:
                self.error(lineno, e.message, e.col, e.width)
                continue
            while toks and toks[0].kind == "label":
                lab = toks.pop(0)
                if func is None:
                    self.tok_error(lineno, lab, "label outside a function")
                elif lab.value in func.labels:
                    self.tok_error(lineno, lab, f"duplicate label '{lab.value}'")
                else:
                    func.labels[str(lab.value)] = len(func.instrs)
            if not toks:
                continue
            head, args = toks[0], toks[1:]
            if head.kind == "directive":
                func, explicit_line = self.directive(head, args, lineno, line, func, explicit_line)
            elif head.kind == "ident":
                if func is None:
                    self.tok_error(lineno, head, f"instruction '{head.text}' outside a function "
                                   "(start one with .func)")
                elif head.text not in BY_NAME:
                    self.tok_error(lineno, head, f"unknown instruction '{head.text}'"
                                   f"{suggest(head.text, BY_NAME)}")
                else:
                    rec = lineno
                    if explicit_line is not None:  # .line N: N, N+1, N+2 ... per instruction
                        rec, explicit_line = explicit_line, min(explicit_line + 1, MAX_LINE)
                    func.instrs.append(_RawInstr(head.text, args, lineno, rec, line))
            else:
                self.tok_error(lineno, head, f"expected an instruction or directive, got {head.text!r}")
        if func is not None:
            self.error(func.lineno, f"function '{func.name}' is missing its .end")
            self.funcs.append(func)

    def directive(self, head: Token, args: list[Token], lineno: int, line: str,
                  func: _Func | None, explicit_line: int | None) -> tuple[_Func | None, int | None]:
        d = head.text
        top_level = {".module", ".import", ".global", ".func", ".source"}
        if d in top_level and func is not None:
            self.tok_error(lineno, head, f"{d} inside function '{func.name}' (missing .end?)")
            return func, explicit_line
        if d == ".module":
            if self._arity(head, args, lineno, 1, 1) and self._modname(args[0], lineno):
                if self.module_line:
                    self.tok_error(lineno, head, f"second .module (first on line {self.module_line[0]})")
                else:
                    self.module_name = args[0].text
                    self.module_line = (lineno, line)
        elif d == ".import":
            if self._arity(head, args, lineno, 1, 1) and self._modname(args[0], lineno):
                name = args[0].text
                if name in self.imports:
                    self.tok_error(lineno, args[0], f"module '{name}' imported twice")
                else:
                    self.imports[name] = lineno
        elif d == ".global":
            if self._arity(head, args, lineno, 1, 2) and self._ident(args[0], lineno):
                name = args[0].text
                if name in self.globals:
                    self.tok_error(lineno, args[0], f"duplicate global '{name}'")
                else:
                    self.globals[name] = len(self.globals)
                    self.pending_globals.append((name, args[1] if len(args) > 1 else None, lineno, line))
        elif d == ".source":
            if self._arity(head, args, lineno, 1, 1):
                if args[0].kind != "string":
                    self.tok_error(lineno, args[0], ".source takes a quoted file name")
                else:
                    self.source = str(args[0].value)
        elif d == ".func":
            if self._arity(head, args, lineno, 1, 256) and all(self._ident(a, lineno) for a in args):
                name = args[0].text
                f = _Func(name, [a.text for a in args[1:]], lineno, line)
                if any(x.name == name for x in self.funcs):
                    self.tok_error(lineno, args[0], f"duplicate function '{name}'")
                for i, p in enumerate(f.params):
                    if p in f.locals:
                        self.tok_error(lineno, args[1 + i], f"duplicate parameter '{p}'")
                    f.locals[p] = len(f.locals)
                return f, None
        elif d == ".local":
            if func is None:
                self.tok_error(lineno, head, ".local outside a function")
            elif self._arity(head, args, lineno, 1, 65536):
                for a in args:
                    if self._ident(a, lineno):
                        if a.text in func.locals:
                            self.tok_error(lineno, a, f"duplicate local '{a.text}'")
                        else:
                            func.locals[a.text] = len(func.locals)
        elif d == ".line":
            if func is None:
                self.tok_error(lineno, head, ".line outside a function")
            elif self._arity(head, args, lineno, 1, 1):
                if args[0].kind != "int" or not 0 <= int(args[0].value) <= MAX_LINE:  # type: ignore[arg-type]
                    self.tok_error(lineno, args[0], f".line takes a line number (0..{MAX_LINE})")
                else:
                    return func, int(args[0].value)  # type: ignore[arg-type]
        elif d == ".end":
            if func is None:
                self.tok_error(lineno, head, ".end without .func")
            else:
                self._arity(head, args, lineno, 0, 0)
                self.funcs.append(func)
                return None, None
        else:
            self.tok_error(lineno, head, f"unknown directive '{d}'"
                           f"{suggest(d, ['.module', '.import', '.global', '.func', '.local', '.end', '.source', '.line'])}")
        return func, explicit_line

    def _arity(self, head: Token, args: list[Token], lineno: int, lo: int, hi: int) -> bool:
        if lo <= len(args) <= hi:
            return True
        want = f"{lo}" if lo == hi else (f"at least {lo}" if hi > 255 else f"{lo} to {hi}")
        if len(args) > hi:
            self.tok_error(lineno, args[hi], f"{head.text} takes {want} operand(s), got {len(args)}")
        else:
            self.tok_error(lineno, head, f"{head.text} takes {want} operand(s), got {len(args)}")
        return False

    def _ident(self, tok: Token, lineno: int) -> bool:
        if tok.kind == "ident" and _NAME.match(tok.text):
            return True
        self.tok_error(lineno, tok, f"expected a name, got {tok.text!r}")
        return False

    def _modname(self, tok: Token, lineno: int) -> bool:
        if tok.kind == "ident" and _MODNAME.match(tok.text):
            return True
        self.tok_error(lineno, tok, f"expected a module name, got {tok.text!r}")
        return False

    # -- pass 2 ------------------------------------------------------------------
    def pass2(self) -> Module:
        fnames = {f.name for f in self.funcs}
        for name, tok, lineno, line in self.pending_globals:
            if tok is None:
                self.global_init.append(-1)
                continue
            try:
                self.global_init.append(self.const(literal(tok)))
            except OperandError as e:
                self.tok_error(lineno, tok, str(e))
                self.global_init.append(-1)
        codes: list[CodeObject] = []
        for f in self.funcs:
            scope = _Scope(self, f, fnames)
            code, lines = [], []
            for ins in f.instrs:
                op = BY_NAME[ins.op]
                if len(ins.args) != len(op.operands):
                    kinds = " ".join(k.value for k in op.operands) or "no operands"
                    tok = ins.args[len(op.operands)] if len(ins.args) > len(op.operands) else None
                    msg = f"'{ins.op}' takes {len(op.operands)} operand(s) ({kinds}), got {len(ins.args)}"
                    if tok is not None:
                        self.tok_error(ins.lineno, tok, msg)
                    else:
                        self.error(ins.lineno, msg)
                    continue
                enc = []
                for tok, kind in zip(ins.args, op.operands):
                    try:
                        enc.append(PARSERS[kind](tok, scope, ins.op))
                    except OperandError as e:
                        self.tok_error(ins.lineno, tok, str(e))
                        enc.append(0)
                code.append((op.code, tuple(enc)))
                lines.append(ins.line)
            codes.append(CodeObject(f.name, len(f.params), tuple(f.locals), tuple(code), tuple(lines)))
        return Module(
            name=self.module_name,
            consts=tuple(self.consts),
            names=tuple(self.names),
            globals=tuple(zip(self.globals, self.global_init)),
            imports=tuple(self.imports),
            functions=tuple(codes),
            source=self.source,
            import_lines=tuple(self.imports.values()),
        )


class _Scope:
    def __init__(self, asm: _Assembler, f: _Func, fnames: set[str]):
        self.const, self.name = asm.const, asm.name
        self.locals, self.labels = f.locals, f.labels
        self.globals = asm.globals
        self.functions = fnames
        self.imports = set(asm.imports)
        self.module_name = asm.module_name


class _TooMany(Exception):
    pass


def _stem(path: str) -> str:
    stem = Path(path).stem if path and not path.startswith("<") else "main"
    return stem if _NAME.match(stem) else "main"


def assemble(text: str, path: str = "<input>", *, module_name: str | None = None) -> Module:
    """Assemble NBC text into a Module, or raise AsmError listing every problem."""
    a = _Assembler(text, path, module_name)
    try:
        a.pass1()
        module = a.pass2()
    except _TooMany:
        pass
    if a.diags:
        raise AsmError(a.diags[:MAX_ERRORS], path)
    return module


__all__ = ["assemble", "MAX_ERRORS"]
