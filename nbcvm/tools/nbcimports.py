"""NBC half of ``nbcvm validate-imports``, and the driver of the whole command.

Three views of every ``.nbc``/``.nbcb`` file under the target paths:

* **Static.**  Each file is read, assembled (or decoded) and verified.  Its
  ``.import`` lines are the module graph; its instructions with a ``func``
  operand (``call mod.f n``, ``spawn mod.f n`` -- taken from the ISA table,
  not a list kept here) say which imports are used and which functions, with
  which arity, must exist in the imported module.  Names resolve exactly as
  the runtime's ImportManager resolves them: a native module of the registry
  first, else ``NAME.nbc``/``NAME.nbcb`` (dots are folders) in the first
  folder of the search path that has it.  The search path is the *root* of
  every target file (the folder from which ``.import NAME`` finds it), then
  ``search_path``, then ``NBCPATH``.

* **Cycles.**  Each strongly connected component of the module graph is one
  ``cycle`` finding with a concrete closed path and the import suggested for
  cutting (the algorithms are shared with the Python half).  Cycles of plain
  references work at run time because imports are lazy; a cycle walked by an
  ``init`` function does not -- loading ``a`` runs ``a.init``, which calls
  into ``b``, whose code calls back into ``a`` while ``a`` is still
  initialising.  The function-level call graph is searched for such a path
  and the finding says so.

* **Real import.**  Each target module is loaded through a fresh ``Runtime``
  with ``rt.imports.get(name)``, so its ``init`` runs, under limits; a
  ``VMError`` there is an ``import-error`` at the innermost NBC frame.

Modules found only on the search path (dependencies) are parsed for the graph
and for checking calls into them, but neither linted nor import-checked.
"""

from __future__ import annotations

import io
import os
import re
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from nbcvm.asm.operands import suggest
from nbcvm.bytecode.model import Module
from nbcvm.bytecode.verifier import verify
from nbcvm.errors import Diagnostic, ExitProgram, InputError, VMError
from nbcvm.isa import OPS, OperandKind
from nbcvm.runtime.limits import Limits
from nbcvm.runtime.loader import is_binary, module_from_bytes, read_bytes
from nbcvm.tools.findings import Finding, ImportReport, ModuleStatus, apply_baseline, write_baseline
from nbcvm.tools.pyimports import choose_cycle_cut, cyclic_components

NBC_SUFFIXES = (".nbc", ".nbcb")  # the order ImportManager.find tries them in
IMPORT_LIMITS = Limits(max_steps=5_000_000, timeout=5.0)
INIT = "init"

# Instructions naming a function (call, spawn): opcode -> (func operand index, count operand index).
_FUNC_OPS: dict[int, tuple[int, int | None]] = {
    op.code: (op.operands.index(OperandKind.FUNC),
              op.operands.index(OperandKind.INT) if OperandKind.INT in op.operands else None)
    for op in OPS if OperandKind.FUNC in op.operands
}
_MODULE_DIRECTIVE = re.compile(r"^\s*\.module\s+([A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*)", re.M)
_SEVERITY_ORDER = {"error": 0, "warning": 1}

Progress = Callable[[int, int, str], None]


# --------------------------------------------------------------------------- one file


@dataclass(eq=False)
class _Unit:
    """One module file: where it is, what it declares, and what is wrong with it."""

    file: str  # absolute
    name: str  # declared (.module) or derived from the file name
    target: bool  # under the paths being validated (else a dependency from the search path)
    module: Module | None = None  # None when the file is unusable
    problem: Finding | None = None  # the invalid-module finding when it is
    seconds: float = 0.0  # read + assemble/decode + verify
    lines: list[str] | None = None  # the source text, for columns (text files only)
    importable: bool = False  # `.import name` finds this very file
    key: str = ""  # node name in the module graph
    calls: dict[str, list[tuple[str | None, str, int, int | None]]] = field(default_factory=dict)
    # function -> [(module or None for a local call, function, argument count, line)]

    @property
    def ok(self) -> bool:
        return self.module is not None


def _parse(file: str, target: bool) -> _Unit:
    t0 = time.perf_counter()
    unit = _Unit(file, _stem_name(file), target)
    try:
        data = read_bytes(file)
        if not is_binary(data):
            unit.lines = data.decode("utf-8", errors="replace").split("\n")
        module = module_from_bytes(data, file)
        verify(module)
    except InputError as e:
        if unit.lines is not None:
            m = _MODULE_DIRECTIVE.search("\n".join(unit.lines))
            if m:
                unit.name = m.group(1)
        unit.problem = _invalid_finding(unit, e)
    else:
        unit.module, unit.name = module, module.name
        unit.calls = _calls_of(module)
    unit.seconds = time.perf_counter() - t0
    return unit


def _stem_name(file: str) -> str:
    stem = os.path.basename(file).rsplit(".", 1)[0]
    return stem or "main"


def _invalid_finding(unit: _Unit, e: InputError) -> Finding:
    d = e.diagnostics[0]
    where = f"in function '{d.function}'" + (f" at pc {d.pc} ({d.op})" if d.pc is not None else "") + ": " \
        if d.function is not None else ""
    more = f" (and {len(e.diagnostics) - 1} more)" if len(e.diagnostics) > 1 else ""
    return Finding(
        "invalid-module", "error", unit.name, f"{e.kind}: {where}{d.message}{more}",
        unit.file, d.line or None, d.col or None,
        f"run `nbcvm verify {os.path.basename(unit.file)}` to see every problem with its source line",
        tuple(_diag_text(x) for x in e.diagnostics),
    )


def _diag_text(d: Diagnostic) -> str:
    return f"{d.location()}: {d.message}"


def _calls_of(module: Module) -> dict[str, list[tuple[str | None, str, int, int | None]]]:
    out: dict[str, list[tuple[str | None, str, int, int | None]]] = {}
    for f in module.functions:
        calls = []
        for pc, (code, args) in enumerate(f.code):
            spec = _FUNC_OPS.get(code)
            if spec is None:
                continue
            name = module.names[args[spec[0]]]
            nargs = args[spec[1]] if spec[1] is not None else -1
            mod, _, fname = name.rpartition(".")
            calls.append((mod or None, fname, nargs, f.lines[pc] or None))
        out[f.name] = calls
    return out


def _root_of(file: str, name: str) -> str | None:
    """The folder from which ``.import name`` finds ``file``, or None if none can."""
    parts = name.split(".")
    p = Path(file)
    if p.suffix not in NBC_SUFFIXES or p.stem != parts[-1]:
        return None
    folders = p.parent.parts
    if len(parts) > 1 and tuple(folders[len(folders) - len(parts) + 1:]) != tuple(parts[:-1]):
        return None
    return str(p.parents[len(parts) - 1])


_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_$.")


def _col_of(lines: list[str] | None, line: int | None, word: str, after: str = "") -> int | None:
    """1-based column of ``word`` (a whole name) on a source line, searching after ``after``."""
    if lines is None or not line or line > len(lines):
        return None
    text = lines[line - 1].split(";", 1)[0]
    i = text.find(after) + len(after) if after else 0
    if after and i < len(after):
        return None
    while (i := text.find(word, i)) >= 0:
        end = i + len(word)
        if (i == 0 or text[i - 1] not in _NAME_CHARS) and (end == len(text) or text[end] not in _NAME_CHARS):
            return i + 1
        i = end
    return None


def _import_col(unit: _Unit, line: int | None, name: str) -> int | None:
    return _col_of(unit.lines, line, name, ".import")


def _call_col(unit: _Unit, line: int | None, qualified: str) -> int | None:
    return _col_of(unit.lines, line, qualified)


# --------------------------------------------------------------------------- resolution


class _Finder:
    """``ImportManager.find`` over a fixed search path, with answers cached."""

    def __init__(self, dirs: Sequence[str]):
        self.dirs = list(dirs)
        self._cache: dict[str, str | None] = {}

    def find(self, name: str) -> str | None:
        if name not in self._cache:
            rel = os.path.join(*name.split("."))
            self._cache[name] = next(
                (os.path.abspath(p) for d in self.dirs for ext in NBC_SUFFIXES
                 if os.path.isfile(p := os.path.join(d, rel + ext))), None)
        return self._cache[name]

    def stems(self) -> set[str]:
        out: set[str] = set()
        for d in self.dirs:
            try:
                out.update(n.rsplit(".", 1)[0] for n in os.listdir(d) if n.endswith(NBC_SUFFIXES))
            except OSError:
                continue
        return out


def collect_files(paths: Sequence[str]) -> list[str]:
    """Every .nbc/.nbcb file under the paths (files are taken as given), absolute and unique."""
    out: dict[str, None] = {}
    for p in paths:
        if not os.path.exists(p):
            raise ValueError(f"no such file or directory: {p}")
        if not os.path.isdir(p):
            out[os.path.abspath(p)] = None
            continue
        found = 0
        for dirpath, dirnames, filenames in os.walk(p):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d != "__pycache__")
            for fn in sorted(filenames):
                if fn.endswith(NBC_SUFFIXES):
                    out[os.path.abspath(os.path.join(dirpath, fn))] = None
                    found += 1
        if not found:
            raise ValueError(f"no .nbc or .nbcb files under {p}")
    return list(out)


def nbc_search_path(roots: Sequence[str], extra: Sequence[str] = ()) -> list[str]:
    """Roots of the target files, then the extra folders, then NBCPATH (deduplicated)."""
    env = [p for p in os.environ.get("NBCPATH", "").split(os.pathsep) if p]
    return list(dict.fromkeys(os.path.abspath(d) for d in [*roots, *extra, *env]))


class _Checker:
    def __init__(self, files: list[str], search_path: Sequence[str], progress: Progress | None):
        from nbcvm.vm.natives import REGISTRY

        self.natives = set(REGISTRY)
        self.progress = progress
        self.total = 2 * len(files)
        self.done = 0
        self.units: dict[str, _Unit] = {}
        for f in files:
            self.units[f] = _parse(f, True)
            self._tick(self.units[f].name)
        roots = [r for u in self.units.values() if (r := _root_of(u.file, u.name))]
        self.dirs = nbc_search_path(roots, search_path)
        self.finder = _Finder(self.dirs)
        self.findings: list[Finding] = []
        self._native_fns: dict[str, dict[str, int]] = {}
        self._scratch: Any = None
        # import name -> what it resolves to: a native name, a _Unit, or None (missing)
        self.resolved: dict[str, str | _Unit | None] = {}

    def _tick(self, label: str) -> None:
        self.done += 1
        if self.progress is not None:
            self.progress(self.done, self.total, label)

    # -- resolution ------------------------------------------------------------
    def resolve(self, name: str) -> str | _Unit | None:
        if name not in self.resolved:
            if name in self.natives:
                self.resolved[name] = name
            else:
                file = self.finder.find(name)
                if file is None:
                    self.resolved[name] = None
                else:
                    if file not in self.units:  # a dependency found on the search path
                        self.units[file] = _parse(file, False)
                    self.resolved[name] = self.units[file]
        return self.resolved[name]

    def native_functions(self, name: str) -> dict[str, int]:
        if name not in self._native_fns:
            from nbcvm.runtime.runtime import Runtime
            from nbcvm.vm.natives import instantiate

            if self._scratch is None:
                self._scratch = Runtime(IMPORT_LIMITS, stdout=io.StringIO())
            mod = instantiate(name, self._scratch)
            self._native_fns[name] = {f: fn.arity for f, fn in mod.functions.items()}
        return self._native_fns[name]

    def link(self) -> None:
        """Resolve every import of every module (dependencies are pulled in as found)."""
        queue = deque(self.units.values())
        while queue:
            unit = queue.popleft()
            if unit.module is None:
                continue
            for imp in unit.module.imports:
                before = len(self.units)
                self.resolve(imp)
                if len(self.units) > before:
                    queue.append(self.resolved[imp])  # type: ignore[arg-type]
        for unit in self.units.values():
            unit.importable = unit.name not in self.natives and self.finder.find(unit.name) == unit.file
            unit.key = unit.name if unit.importable else f"{unit.name} ({os.path.basename(unit.file)})"

    # -- static findings -------------------------------------------------------
    def lint(self, unit: _Unit) -> None:
        module = unit.module
        assert module is not None
        lines = list(module.import_lines) + [0] * (len(module.imports) - len(module.import_lines))
        used = {mod for calls in unit.calls.values() for mod, *_ in calls if mod}
        for imp, line in zip(module.imports, lines):
            target = self.resolve(imp)
            at = (line or None, _import_col(unit, line or None, imp))
            if target is None:
                self.findings.append(self._missing(unit, imp, *at))
            elif imp not in used:
                self.findings.append(Finding(
                    "unused-import", "warning", unit.name,
                    f"{unit.name} imports {imp} but never calls into it", unit.file, *at,
                    f"remove `.import {imp}`"))
        for fname, calls in unit.calls.items():
            for mod, callee, nargs, line in calls:
                if mod is not None:
                    self._check_call(unit, fname, mod, callee, nargs, line)

    def _missing(self, unit: _Unit, imp: str, line: int | None, col: int | None) -> Finding:
        names = self.natives | {u.name for u in self.units.values() if u.importable} | self.finder.stems()
        hint = suggest(imp, names - {unit.name})
        misnamed = [u for u in self.units.values() if u.name == imp and not u.importable]
        if misnamed:
            f = misnamed[0].file
            suggestion = (f"{os.path.basename(f)} declares .module {imp}, but imports look for "
                          f"{imp.replace('.', '/')}.nbc: rename the file or its .module")
        elif hint:
            close = hint.split("'")[1]
            suggestion = f"change `.import {imp}` to `.import {close}` (and its calls)"
        else:
            suggestion = (f"add the folder holding {imp.replace('.', '/')}.nbc with --path DIR or "
                          "NBCPATH, or correct the name")
        return Finding("missing-module", "error", unit.name,
                       f"{unit.name} imports {imp}, which was not found{hint}", unit.file, line, col,
                       suggestion)

    def _check_call(self, unit: _Unit, fname: str, mod: str, callee: str, nargs: int,
                    line: int | None) -> None:
        target = self.resolve(mod)
        if target is None or (isinstance(target, _Unit) and target.module is None):
            return  # reported as missing-module / invalid-module already
        if isinstance(target, str):
            fns = self.native_functions(target)
            arity = fns.get(callee)
        else:
            f = target.module.function(callee)  # type: ignore[union-attr]
            fns = {x.name: x.nparams for x in target.module.functions}  # type: ignore[union-attr]
            arity = f.nparams if f is not None else None
        qual = f"{mod}.{callee}"
        at = (unit.file, line, _call_col(unit, line, qual))
        if arity is None:
            hint = suggest(callee, fns)
            self.findings.append(Finding(
                "missing-function", "error", unit.name,
                f"{unit.name}.{fname} calls {qual}, but module {mod} has no function '{callee}'{hint}",
                *at, f"define {callee} in {mod}, or call one of: {', '.join(sorted(fns)[:8]) or 'none'}"))
        elif arity >= 0 and nargs >= 0 and arity != nargs:
            self.findings.append(Finding(
                "missing-function", "error", unit.name,
                f"{unit.name}.{fname} calls {qual} with {nargs} argument(s), but it takes {arity}",
                *at, f"pass {arity} argument(s) to {qual}"))

    def name_clashes(self) -> None:
        """Target files that `.import` can never reach under their own name."""
        for u in self.units.values():
            if not u.target or not u.ok or u.importable:
                continue
            if u.name in self.natives:
                self.findings.append(Finding(
                    "duplicate-module", "warning", u.name,
                    f"{os.path.basename(u.file)} defines module {u.name}, but {u.name} is a native "
                    f"module: `.import {u.name}` always loads the native one", u.file, None, None,
                    "rename the module"))
                continue
            winner = self.finder.find(u.name)
            if winner is None or os.path.dirname(winner) == os.path.dirname(u.file):
                continue  # a program file, or a compiled .nbcb beside its source
            self.findings.append(Finding(
                "duplicate-module", "warning", u.name,
                f"module {u.name} is defined by more than one file; `.import {u.name}` finds "
                f"{os.path.basename(winner)} in {os.path.basename(os.path.dirname(winner)) or '/'} first",
                u.file, None, None, "rename one of the modules, or remove the stale copy"))

    # -- cycles ----------------------------------------------------------------
    def graph(self) -> dict[str, set[str]]:
        g: dict[str, set[str]] = {}
        for u in self.units.values():
            if u.module is None:
                continue
            edges = g.setdefault(u.key, set())
            for imp in u.module.imports:
                t = self.resolve(imp)
                if isinstance(t, _Unit):
                    edges.add(t.key)
        return g

    def cycles(self) -> list[tuple[str, ...]]:
        graph = self.graph()
        by_key = {u.key: u for u in self.units.values()}
        import_of: dict[tuple[str, str], str] = {}  # (importer key, imported key) -> import name
        for u in self.units.values():
            for imp in (u.module.imports if u.module else ()):
                t = self.resolve(imp)
                if isinstance(t, _Unit):
                    import_of.setdefault((u.key, t.key), imp)
        fan_in: Counter[str] = Counter(v for u in graph for v in graph[u] if v != u)
        paths: list[tuple[str, ...]] = []
        for comp in cyclic_components(graph):
            cut = choose_cycle_cut(graph, comp, fan_in=fan_in)
            u, v = by_key[cut.importer], cut.imported
            imp = import_of[(cut.importer, v)]
            mod = u.module
            assert mod is not None
            line = dict(zip(mod.imports, mod.import_lines)).get(imp) or None
            loc = f" ({os.path.basename(u.file)}:{line})" if line else ""
            if len(comp) == 1:
                message = f"{cut.importer} imports itself"
                suggestion = f"remove `.import {imp}` from {cut.importer}{loc}"
            else:
                message = f"import cycle between {len(comp)} modules: {', '.join(comp)}"
                suggestion = (f"cut the import of {v} in {cut.importer}{loc}: it lies on "
                              f"{cut.shortest_cycles_cut} of the {cut.shortest_cycles_total} shortest "
                              "cycles; move the shared code into a module both can import")
            failing = [(k, p) for k in comp if (p := self._init_path(by_key[k], set(comp)))]
            if failing:
                first, path = failing[0]
                names = ", ".join(k for k, _ in failing)
                message += (f"; it runs through init functions, so loading {names} fails with "
                            f"ImportError ({' -> '.join(path)})")
                suggestion = (f"{path[-2]} calls {path[-1]} while {first} is still initialising: "
                              f"move that call out of init, or {suggestion[0].lower()}{suggestion[1:]}")
            self.findings.append(Finding("cycle", "error", comp[0], message, u.file, line,
                                         _import_col(u, line, imp), suggestion, cut.path))
            paths.append(cut.path)
        return paths

    def _init_path(self, start: _Unit, members: set[str]) -> list[str] | None:
        """A call path from start.init back into start's module (through other modules), if any.

        Static and conservative: every call in a reachable function is taken.
        Calling into a module first loads it, which runs its init.
        """
        if start.module is None or start.module.function(INIT) is None:
            return None
        first = (start, INIT)
        parent: dict[tuple[_Unit, str], tuple[_Unit, str] | None] = {first: None}
        queue = deque([first])
        while queue:
            node = queue.popleft()
            unit, fn = node
            for mod, callee, _, _ in unit.calls.get(fn, ()):
                if mod is None:
                    nxt = [(unit, callee)]
                else:
                    t = self.resolve(mod)
                    if not isinstance(t, _Unit) or t.module is None or t.key not in members:
                        continue
                    if t is start:
                        chain = [f"{start.name}.{callee}"]
                        cur: tuple[_Unit, str] | None = node
                        while cur is not None:
                            chain.append(f"{cur[0].name}.{cur[1]}")
                            cur = parent[cur]
                        return chain[::-1]
                    nxt = [(t, x) for x in (INIT, callee) if t.module.function(x) is not None]
                for n in nxt:
                    if n not in parent and n[0].module is not None and n[0].module.function(n[1]):
                        parent[n] = node
                        queue.append(n)
        return None

    # -- real import ---------------------------------------------------------------
    def import_check(self, unit: _Unit) -> ModuleStatus:
        rt = _check_runtime(self.parsed)(IMPORT_LIMITS, stdout=io.StringIO(),
                                         search_path=[Path(d) for d in self.dirs])
        rt.meter.start_clock()
        t0 = time.perf_counter()
        error: str | None = None
        try:
            if unit.importable:
                rt.imports.get(unit.name)
            else:  # reachable only as a program: load it the way `nbcvm run` does
                rt.run_init(rt.load_program(unit.file))
        except VMError as e:
            error = f"{e.type_name}: {e.message}"
            self.findings.append(self._import_error(unit, e))
        except ExitProgram as e:
            error = f"init halts the program (exit code {e.code}) while the module loads"
            self.findings.append(Finding(
                "import-error", "error", unit.name, error, unit.file, None, None,
                "init must not halt: it runs whenever the module is imported"))
        rec = rt.imports.records.get(unit.name)
        # The static pass did the reading and assembling this runtime skipped (see _check_runtime).
        seconds = unit.seconds + (rec.seconds if unit.importable and rec is not None
                                  else time.perf_counter() - t0)
        return ModuleStatus(unit.name, unit.file, error is None, seconds, error)

    def _import_error(self, unit: _Unit, e: VMError) -> Finding:
        inner = e.traceback[-1] if e.traceback else None
        message = f"{e.type_name}: {e.message}"
        if inner is not None and inner.module != unit.name:
            message += f" (raised in {inner.module}.{inner.function})"
        if "cycle" in e.details:
            suggestion = ("an init function calls, through other modules, back into a module that is "
                          "still initialising: move that call out of init")
        elif e.type_name == "ImportError":
            suggestion = "check the .import names and the search path (--path, NBCPATH)"
        elif e.type_name == "LimitExceeded":
            suggestion = "init runs at import time: keep it short and make sure it ends"
        else:
            suggestion = "init raises while the module loads: fix it, or catch the error inside init"
        file, line = (inner.file, inner.line or None) if inner is not None else (unit.file, None)
        detail = tuple(f"{t.module}.{t.function} ({t.file}:{t.line})" for t in e.traceback)
        return Finding("import-error", "error", unit.name, message, file, line, None, suggestion, detail)

    # -- all of it -------------------------------------------------------------------
    def run(self) -> tuple[list[ModuleStatus], list[tuple[str, ...]]]:
        self.link()
        self.parsed = {u.file: u.module for u in self.units.values() if u.module is not None}
        targets = [u for u in self.units.values() if u.target]
        for u in self.units.values():
            if u.problem is not None:
                self.findings.append(u.problem)
        for u in targets:
            if u.ok:
                self.lint(u)
        self.name_clashes()
        cycles = self.cycles()
        statuses = []
        for u in targets:
            if u.ok:
                statuses.append(self.import_check(u))
            else:
                assert u.problem is not None
                statuses.append(ModuleStatus(u.name, u.file, False, u.seconds, u.problem.message))
            self._tick(u.name)
        return statuses, cycles


def _check_runtime(parsed: dict[str, Module]) -> type:
    """A Runtime class that takes module files from the static pass instead of re-reading them.

    Every import check uses a fresh runtime, and loading a module whose init
    calls into others loads those again in each runtime that needs them; the
    Module objects are immutable and were read, assembled and verified once
    already, so only instantiation (which verifies again, cheaply) and init
    remain per runtime.  Anything unexpected (a file not parsed, a name that
    does not match) goes the normal way.
    """
    from nbcvm.runtime.runtime import ModuleInstance, Runtime

    class CheckRuntime(Runtime):
        def instantiate_file(self, path: Path, name: str) -> ModuleInstance:
            module = parsed.get(os.path.abspath(path))
            if module is None or module.name != name:
                return super().instantiate_file(path, name)
            return ModuleInstance(self, module)

    return CheckRuntime


def validate_nbc(paths: Sequence[str], *, search_path: Sequence[str] = (),
                 progress: Progress | None = None) -> ImportReport:
    """Check the NBC modules under ``paths`` (files or folders, recursively).

    ``search_path`` adds module folders (like ``nbcvm run --path``); NBCPATH
    is honoured too.  ``progress(done, total, module)`` is called after each
    module is parsed and after each is import-checked.  A path that does not
    exist, or a folder without NBC files, raises ValueError (one line).
    """
    if isinstance(paths, str):
        paths = [paths]
    if not paths:
        raise ValueError("no paths given")
    started = time.perf_counter()
    checker = _Checker(collect_files(paths), search_path, progress)
    statuses, cycles = checker.run()
    findings = sorted(checker.findings, key=lambda f: (_SEVERITY_ORDER.get(f.severity, 9), f.module,
                                                       f.kind, f.line or 0, f.message))
    return ImportReport(
        tool="nbc",
        targets=tuple(paths),
        modules=tuple(sorted(statuses, key=lambda s: (s.name, s.file or ""))),
        findings=tuple(findings),
        cycles=tuple(cycles),
        seconds=time.perf_counter() - started,
    )


# --------------------------------------------------------------------------- the command's driver


@dataclass(frozen=True)
class ValidateConfig:
    """What ``nbcvm validate-imports`` was asked to do."""

    paths: tuple[str, ...] = ()
    python: tuple[str, ...] = ()  # package names or package folders
    search_path: tuple[str, ...] = ()
    timeout: float = 30.0  # per Python module import
    jobs: int | None = None  # Python imports at once (default: CPU count)
    baseline: str | None = None
    write_baseline: str | None = None


def validate_imports(cfg: ValidateConfig,
                     progress: Callable[[str, int, int, str], None] | None = None) -> ImportReport:
    """Run the NBC and/or Python checks, merge them, then apply / write the baseline.

    ``progress(phase, done, total, label)`` with phase ``"nbc"`` or ``"python"``.
    A baseline being written is taken from the full report (before any
    baseline is applied); if no other baseline is given, the one just written
    is applied, so the run that writes it passes.  Bad input raises ValueError.
    """
    if not cfg.paths and not cfg.python:
        raise ValueError("nothing to check: give NBC paths and/or --python packages")
    if cfg.baseline is not None:
        from nbcvm.tools.findings import load_baseline

        load_baseline(cfg.baseline)  # a broken baseline is bad input: fail before the slow part
    reports = []
    if cfg.paths:
        reports.append(validate_nbc(cfg.paths, search_path=cfg.search_path,
                                    progress=partial(progress, "nbc") if progress else None))
    if cfg.python:
        from nbcvm.tools.pyimports import validate_python  # grimp loads only when asked for

        reports.append(validate_python(list(cfg.python), timeout=cfg.timeout, jobs=cfg.jobs,
                                       progress=partial(progress, "python") if progress else None))
    full = reports[0] if len(reports) == 1 else ImportReport.merge(reports)
    report = full
    if cfg.baseline is not None:
        report = apply_baseline(full, cfg.baseline)
    if cfg.write_baseline is not None:
        write_baseline(full, cfg.write_baseline)
        if cfg.baseline is None:
            report = apply_baseline(full, cfg.write_baseline)
    return report


__all__ = ["IMPORT_LIMITS", "ValidateConfig", "collect_files", "nbc_search_path", "validate_imports",
           "validate_nbc"]
