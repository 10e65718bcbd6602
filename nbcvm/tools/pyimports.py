"""Python-package half of ``nbcvm validate-imports``.

Two independent views of a package are combined into one :class:`ImportReport`:

* **Static graph.**  grimp parses the sources (nothing is imported in this
  process) and gives the module-to-module import edges with line numbers.
  Import cycles are the strongly connected components of that graph (our own
  iterative Tarjan).  Only imports that run at import time count:
  ``if TYPE_CHECKING:`` imports are excluded by grimp, and imports inside
  function bodies or under ``if __name__ == "__main__":`` are excluded by our
  own AST pass, because deferring an import into a function is precisely the
  usual way to break a cycle.  Modules are also collapsed to their
  subpackage (first two name parts) to report package-level cycles as
  warnings.  The AST pass further finds imports of package-internal modules
  that do not exist, which matters for imports the real import check never
  executes (inside functions).

* **Real import check.**  Every module (except ``__main__`` entry points) is
  imported on its own in an interpreter that has imported nothing else of the
  package, in parallel, with a timeout, so a module that only works because
  something else happened to import its dependencies first is still caught.
  The child measures its own import time and reports the exception and the
  traceback frames back as JSON.  On POSIX the children are forked from
  pristine per-worker "zygote" interpreters to skip interpreter start-up;
  elsewhere each is a plain ``python -c``.

Target resolution keeps the two views consistent: the directory grimp scanned
is put at the front of the child's ``sys.path`` (if missing), so the child
imports the very copy that was analysed.
"""

from __future__ import annotations

import ast
import importlib.machinery
import importlib.util
import json
import os
import queue
import select
import signal
import subprocess
import sys
import threading
import time
import tokenize
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import grimp
import grimp.exceptions

from nbcvm.tools.findings import Finding, ImportReport, ModuleStatus

# --------------------------------------------------------------------------- graph algorithms


def strongly_connected_components(graph: Mapping[str, Iterable[str]]) -> list[tuple[str, ...]]:
    """Tarjan's algorithm without recursion (packages can be deeper than the recursion limit).

    Every node (keys and successors) ends up in exactly one component.  Nodes
    are visited in sorted order and each component is returned sorted, so the
    result is deterministic; components come out in reverse topological order
    (a component is emitted before any component that can reach it).
    """
    succ: dict[str, list[str]] = {}
    for node, targets in graph.items():
        succ.setdefault(node, [])
        for t in targets:
            succ[node].append(t)
            succ.setdefault(t, [])
    for node in succ:
        succ[node] = sorted(set(succ[node]))

    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    result: list[tuple[str, ...]] = []
    counter = 0

    for root in sorted(succ):
        if root in index:
            continue
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        work: list[tuple[str, Iterator[str]]] = [(root, iter(succ[root]))]
        while work:
            node, successors = work[-1]
            descended = False
            for w in successors:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(succ[w])))
                    descended = True
                    break
                if w in on_stack:
                    low[node] = min(low[node], index[w])
            if descended:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    component.append(w)
                    if w == node:
                        break
                result.append(tuple(sorted(component)))
    return result


def cyclic_components(graph: Mapping[str, Iterable[str]]) -> list[tuple[str, ...]]:
    """The components that contain a cycle: more than one node, or a node importing itself."""
    return [
        comp
        for comp in strongly_connected_components(graph)
        if len(comp) > 1 or comp[0] in set(graph.get(comp[0], ()))
    ]


def shortest_cycle_through(
    graph: Mapping[str, Iterable[str]], start: str, within: set[str] | None = None
) -> tuple[str, ...] | None:
    """Shortest cycle ``start → … → start`` (BFS), optionally restricted to ``within``.

    Returned as a closed path, e.g. ``("a", "b", "a")``; None if there is none.
    """
    allowed = within if within is not None else None
    parent: dict[str, str | None] = {start: None}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for nxt in sorted(set(graph.get(node, ()))):
            if allowed is not None and nxt not in allowed:
                continue
            if nxt == start:
                path = [node]
                while parent[path[-1]] is not None:
                    path.append(parent[path[-1]])  # type: ignore[arg-type]
                path.reverse()
                return (*path, start)
            if nxt not in parent:
                parent[nxt] = node
                queue.append(nxt)
    return None


@dataclass(frozen=True)
class CycleCut:
    """The import suggested for removal in one cyclic component, and the path it closes."""

    importer: str
    imported: str
    path: tuple[str, ...]  # closed path whose last hop is importer → imported
    shortest_cycles_cut: int
    shortest_cycles_total: int


def choose_cycle_cut(
    graph: Mapping[str, Iterable[str]],
    component: Sequence[str],
    *,
    fan_in: Mapping[str, int] | None = None,
    weight: Callable[[str, str], int] | None = None,
) -> CycleCut:
    """Pick the import to cut in a cyclic component.

    Counting every elementary cycle is exponential, so "the edge whose removal
    breaks the most cycles" is approximated by: for each module of the
    component take its shortest cycle, and prefer the edge lying on the most of
    those cycles.  Ties are broken by layering (cut the import going from the
    more widely imported module to the less imported one: a foundation module
    importing upwards is the likely mistake), then by the number of import
    statements behind the edge (fewest is the cheapest edit, via ``weight``),
    then by name for determinism.
    """
    members = set(component)
    fan_in = fan_in or {}
    cycles: list[tuple[str, ...]] = []
    for node in sorted(members):
        cyc = shortest_cycle_through(graph, node, members)
        if cyc is not None:
            cycles.append(cyc)
    if not cycles:
        raise ValueError(f"component {sorted(members)} contains no cycle")
    on_cycles: Counter[tuple[str, str]] = Counter()
    for cyc in cycles:
        for edge in set(zip(cyc, cyc[1:])):
            on_cycles[edge] += 1
    edges = sorted(
        (u, v) for u in members for v in set(graph.get(u, ())) if v in members
    )

    def rank(edge: tuple[str, str]) -> tuple[int, int, int, str, str]:
        u, v = edge
        return (
            -on_cycles[edge],
            -(fan_in.get(u, 0) - fan_in.get(v, 0)),
            weight(u, v) if weight else 1,
            u,
            v,
        )

    u, v = min(edges, key=rank)
    # Present the cycle so that the chosen edge is the one that closes it.
    back = shortest_path(graph, v, u, members)
    assert back is not None  # u and v are in one strongly connected component
    path = (*back, v) if u != v else (u, u)
    return CycleCut(u, v, path, on_cycles[(u, v)], len(cycles))


def shortest_path(
    graph: Mapping[str, Iterable[str]], src: str, dst: str, within: set[str] | None = None
) -> tuple[str, ...] | None:
    """Shortest path src → … → dst (BFS); ``(src,)`` when they are equal."""
    if src == dst:
        return (src,)
    parent: dict[str, str | None] = {src: None}
    queue = deque([src])
    while queue:
        node = queue.popleft()
        for nxt in sorted(set(graph.get(node, ()))):
            if within is not None and nxt not in within or nxt in parent:
                continue
            parent[nxt] = node
            if nxt == dst:
                path = [nxt]
                while parent[path[-1]] is not None:
                    path.append(parent[path[-1]])  # type: ignore[arg-type]
                return tuple(reversed(path))
            queue.append(nxt)
    return None


# --------------------------------------------------------------------------- targets


@dataclass(frozen=True)
class _Target:
    label: str  # as the user wrote it
    name: str  # top-level import name
    dirs: tuple[str, ...]  # package directories (several for a namespace package)
    path_entries: tuple[str, ...]  # sys.path entries under which `name` was found
    single_file: str | None = None  # a plain module rather than a package
    is_path: bool = False


def _norm(path: str) -> str:
    return os.path.normcase(os.path.realpath(path))


def _is_identifier_path(name: str) -> bool:
    return bool(name) and all(part.isidentifier() for part in name.split("."))


def _resolve_target(target: str) -> _Target:
    looks_like_path = (
        os.sep in target
        or (os.altsep is not None and os.altsep in target)
        or target in (".", "..")
        or target.endswith(".py")
        or os.path.isdir(target)
    )
    if looks_like_path:
        return _resolve_path_target(target)
    if not _is_identifier_path(target):
        raise ValueError(f"unknown target {target!r}: not a package name or a directory")
    if "." in target:
        top = target.split(".")[0]
        raise ValueError(f"target {target!r} is not a top-level package; check {top!r} instead")
    try:
        # For a top-level name this only searches sys.path; nothing is imported.
        spec = importlib.util.find_spec(target)
    except (ImportError, ValueError) as exc:
        raise ValueError(f"unknown target {target!r}: {exc}") from None
    if spec is None:
        raise ValueError(f"unknown target {target!r}: no importable package by that name")
    return _target_from_spec(target, target, spec)


def _target_from_spec(label: str, name: str, spec: importlib.machinery.ModuleSpec) -> _Target:
    if spec.submodule_search_locations:
        dirs = tuple(os.path.abspath(d) for d in spec.submodule_search_locations)
        entries = tuple(dict.fromkeys(os.path.dirname(d) for d in dirs))
        return _Target(label, name, dirs, entries)
    origin = spec.origin or ""
    if origin.endswith(".py") and os.path.isfile(origin):
        origin = os.path.abspath(origin)
        return _Target(label, name, (), (os.path.dirname(origin),), single_file=origin)
    what = "a built-in module" if origin in ("built-in", "frozen") else "not Python source"
    raise ValueError(f"target {label!r} is {what}; there is nothing to check")


def _resolve_path_target(target: str) -> _Target:
    path = os.path.abspath(target)
    if os.path.isfile(path) and path.endswith(".py"):
        name = os.path.basename(path)[:-3]
        if not name.isidentifier():
            raise ValueError(f"target {target!r}: {name!r} is not an importable module name")
        return _Target(target, name, (), (os.path.dirname(path),), single_file=path, is_path=True)
    if not os.path.isdir(path):
        raise ValueError(f"unknown target {target!r}: no such package directory")
    name = os.path.basename(path.rstrip(os.sep))
    if not name.isidentifier():
        raise ValueError(f"target {target!r}: directory name {name!r} is not an importable name")
    if not os.path.isfile(os.path.join(path, "__init__.py")):
        raise ValueError(f"target {target!r} is not a package directory (no __init__.py)")
    return _Target(target, name, (path,), (os.path.dirname(path),), is_path=True)


@contextmanager
def _on_sys_path(entries: Iterable[str]) -> Iterator[None]:
    """Temporarily put directories at the front of sys.path (grimp locates packages with it)."""
    added = [e for e in dict.fromkeys(entries) if e not in sys.path]
    sys.path[:0] = added
    importlib.invalidate_caches()
    try:
        yield
    finally:
        for e in added:
            try:
                sys.path.remove(e)
            except ValueError:
                pass


def _check_not_shadowed(target: _Target) -> None:
    """A path target must be the package grimp will find under its name.

    If the same name is already imported in this process (or found earlier on
    sys.path), grimp would silently scan that other copy instead.
    """
    if not target.is_path or target.single_file:
        return
    spec = importlib.util.find_spec(target.name)
    locations = [_norm(d) for d in (spec.submodule_search_locations or [])] if spec else []
    if _norm(target.dirs[0]) not in locations:
        other = locations[0] if locations else "elsewhere"
        raise ValueError(
            f"cannot check {target.label!r}: the name {target.name!r} resolves to {other} "
            "in this process"
        )


# --------------------------------------------------------------------------- sources


@dataclass(frozen=True)
class _StaticImport:
    module: str  # absolute name of the module the statement needs to exist
    line: int
    col: int
    lazy: bool  # in a function body or a __main__ guard: does not run on import
    guarded: bool  # inside ``try:`` with an ImportError handler: deliberately optional


@dataclass
class _Source:
    name: str
    file: str
    is_package: bool
    lazy_lines: set[int] = field(default_factory=set)
    import_cols: dict[int, int] = field(default_factory=dict)
    imports: list[_StaticImport] = field(default_factory=list)


def _discover_modules(target: _Target) -> dict[str, str]:
    """Module name → source file, walking the package the way grimp does.

    Only directories with an ``__init__.py`` are descended into.
    """
    if target.single_file:
        return {target.name: target.single_file}
    modules: dict[str, str] = {}
    for root in target.dirs:
        for dirpath, dirnames, filenames in os.walk(root):
            rel = os.path.relpath(dirpath, root)
            parts = [] if rel == "." else rel.split(os.sep)
            if parts and "__init__.py" not in filenames:
                dirnames[:] = []
                continue
            # Names need not be identifiers: importlib imports "data-v1.py" by
            # name just fine (grimp lists such modules too); a dot cannot work.
            dirnames[:] = sorted(d for d in dirnames if "." not in d)
            for fn in sorted(filenames):
                if not fn.endswith(".py"):
                    continue
                stem = fn[:-3]
                if stem == "__init__":
                    modules[".".join([target.name, *parts])] = os.path.join(dirpath, fn)
                elif stem and "." not in stem:
                    modules[".".join([target.name, *parts, stem])] = os.path.join(dirpath, fn)
    return modules


_IMPORT_ERROR_NAMES = {"ImportError", "ModuleNotFoundError", "Exception", "BaseException"}


def _handler_catches_import_error(handler: ast.ExceptHandler) -> bool:
    if handler.type is None:
        return True
    types = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    for t in types:
        name = t.attr if isinstance(t, ast.Attribute) else getattr(t, "id", None)
        if name in _IMPORT_ERROR_NAMES:
            return True
    return False


def _is_main_guard(test: ast.expr) -> bool:
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq)):
        return False
    sides = [test.left, test.comparators[0]]
    return any(isinstance(s, ast.Name) and s.id == "__name__" for s in sides) and any(
        isinstance(s, ast.Constant) and s.value == "__main__" for s in sides
    )


def _scan_source(name: str, file: str) -> _Source | None:
    """Collect import statements with their context; None if the file does not parse.

    A file that does not parse is reported by the real import check, which
    sees the same SyntaxError with better context.
    """
    is_package = os.path.basename(file) == "__init__.py"
    try:
        with tokenize.open(file) as fh:
            tree = ast.parse(fh.read(), filename=file)
    except (SyntaxError, ValueError, UnicodeDecodeError, OSError):
        return None
    src = _Source(name, file, is_package)
    package = name if is_package else name.rpartition(".")[0]
    # Iterative walk carrying (lazy, guarded) so deeply nested code cannot hit
    # the recursion limit.
    stack: list[tuple[ast.AST, bool, bool]] = [(tree, False, False)]
    while stack:
        node, lazy, guarded = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            src.import_cols.setdefault(node.lineno, node.col_offset + 1)
            if lazy:
                src.lazy_lines.add(node.lineno)
            for mod in _imported_modules(node, package):
                src.imports.append(
                    _StaticImport(mod, node.lineno, node.col_offset + 1, lazy, guarded)
                )
            continue
        child_lazy = lazy or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        if isinstance(node, ast.If) and _is_main_guard(node.test):
            # The body of ``if __name__ == "__main__":`` never runs on import.
            for child in node.body:
                stack.append((child, True, guarded))
            for child in node.orelse:
                stack.append((child, child_lazy, guarded))
            continue
        if isinstance(node, (ast.Try, getattr(ast, "TryStar", ast.Try))):
            catches = any(_handler_catches_import_error(h) for h in node.handlers)
            for child in node.body:
                stack.append((child, child_lazy, guarded or catches))
            for part in (node.handlers, node.orelse, node.finalbody):
                for child in part:
                    stack.append((child, child_lazy, guarded))
            continue
        for child in ast.iter_child_nodes(node):
            stack.append((child, child_lazy, guarded))
    return src


def _imported_modules(node: ast.Import | ast.ImportFrom, package: str) -> list[str]:
    """Absolute names of the modules an import statement requires to exist.

    For ``from X import y`` only X is certain to be a module (y may be any
    name defined in X), so y is not returned.
    """
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level == 0:
        return [node.module] if node.module else []
    base = package.split(".") if package else []
    if node.level - 1 > len(base) or (node.level - 1 == len(base) and not node.module):
        return []  # beyond the top-level package: Python reports that at run time
    base = base[: len(base) - (node.level - 1)]
    return [".".join([*base, node.module]) if node.module else ".".join(base)]


def _module_exists(module: str, target: _Target, known: Mapping[str, str]) -> bool:
    if module in known:
        return True
    parts = module.split(".")[1:]
    if not parts:
        return True
    suffixes = [".py", ".pyc", *importlib.machinery.EXTENSION_SUFFIXES]
    for root in target.dirs:
        base = os.path.join(root, *parts)
        # A directory without __init__.py still imports, as a namespace package.
        if os.path.isdir(base) or any(os.path.isfile(base + s) for s in suffixes):
            return True
    return False


# --------------------------------------------------------------------------- the children

# Each module is imported in an interpreter that has imported nothing of the
# target.  Two ways to get one:
#
# * spawn: ``python -c`` per module.  Portable, but interpreter start-up
#   (with site-packages .pth hooks) costs 50-150 ms, which dominates.
# * fork server ("zygote", POSIX only): one pristine interpreter per worker
#   that forks a child per module.  The fork is a copy of a process that has
#   run nothing but start-up and this loop (os, sys, select), i.e. the same
#   state a fresh ``python -c`` would have, minus the start-up cost.  Each
#   forked child is its own session so a timeout can kill everything it
#   started.
#
# Both run the same ``_nbcvm_check`` below.  Its result goes to a private fd,
# never to stdout/stderr, so whatever the imported module prints cannot
# corrupt it; parameters are passed as data rather than via sys.argv so the
# module sees an untouched argv.

_CHECK_FUNC = r'''
def _nbcvm_check(name, dirs, fd):
    for d in reversed(dirs):
        if d not in sys.path:
            sys.path.insert(0, d)
    from time import perf_counter
    t0 = perf_counter()
    err = None
    try:
        __import__(name)
    except BaseException as e:
        err = e
    res = {"ok": err is None, "seconds": perf_counter() - t0}
    if err is not None:
        import traceback
        res["type"] = type(err).__name__
        res["last"] = traceback.format_exception_only(type(err), err)[-1].strip()
        res["frames"] = [
            [f.filename, f.lineno, getattr(f, "colno", None)]
            for f in traceback.extract_tb(err.__traceback__)[-60:]
        ]
        res["missing"] = getattr(err, "name", None) if isinstance(err, ImportError) else None
        res["mnf"] = isinstance(err, ModuleNotFoundError)
        res["import_error"] = isinstance(err, ImportError)
        if isinstance(err, SyntaxError):
            res["syntax"] = [err.filename, err.lineno, err.offset]
    import json
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:
        pass
    data = memoryview(json.dumps(res, default=str).encode("utf-8", "replace"))
    while data:
        data = data[os.write(fd, data):]
    # Skip interpreter shutdown: non-daemon threads or atexit hooks started by
    # the module must not turn a finished import into a timeout.
    os._exit(0)
'''

_SPAWN_CODE = (
    "import os, sys\n"
    + _CHECK_FUNC
    + "_fd = os.dup(1)\n"
    "os.dup2(2, 1)\n"
    "_nbcvm_check(%(name)r, %(dirs)r, _fd)\n"
)

# Protocol (one request at a time): parent sends ``<hex name> <hex dirs>\n``
# (dirs NUL-separated); the zygote answers ``P <pid>\n`` once the child is
# forked, then ``R <wait status> <hex result> <hex output tail>\n``.  Hex keeps
# the zygote free of json/ast imports that would leak into the children.
_ZYGOTE_CODE = (
    "import os, sys, select\n"
    + _CHECK_FUNC
    + r'''
_in, _out = os.dup(0), os.dup(1)
_null = os.open(os.devnull, os.O_RDWR)
os.dup2(_null, 0)
os.dup2(_null, 1)
os.close(_null)
_buf = b""
while True:
    while b"\n" not in _buf:
        _chunk = os.read(_in, 65536)
        if not _chunk:
            os._exit(0)
        _buf += _chunk
    _line, _, _buf = _buf.partition(b"\n")
    _fields = _line.split(b" ")
    _name = bytes.fromhex(_fields[0].decode()).decode()
    _dirs = [d for d in bytes.fromhex(_fields[1].decode()).decode().split("\0") if d]
    _r, _w = os.pipe()
    _er, _ew = os.pipe()
    _pid = os.fork()
    if _pid == 0:
        try:
            os.setsid()
            for _fd in (_r, _er, _in, _out):
                os.close(_fd)
            os.dup2(_ew, 1)
            os.dup2(_ew, 2)
            os.close(_ew)
            _nbcvm_check(_name, _dirs, _w)
        finally:
            os._exit(70)
    os.close(_w)
    os.close(_ew)
    os.write(_out, b"P %d\n" % _pid)
    _res, _tail, _watch = b"", b"", [_r, _er]
    while _r in _watch:
        for _fd in select.select(_watch, [], [])[0]:
            _chunk = os.read(_fd, 65536)
            if not _chunk:
                _watch.remove(_fd)
            elif _fd == _r:
                _res += _chunk
            else:
                _tail = (_tail + _chunk)[-4096:]
    _, _status = os.waitpid(_pid, 0)
    # Output still buffered is collected, but a background process left
    # holding the pipe must not stall the next module.
    while _er in _watch and select.select([_er], [], [], 0)[0]:
        _chunk = os.read(_er, 65536)
        if not _chunk:
            break
        _tail = (_tail + _chunk)[-4096:]
    os.close(_r)
    os.close(_er)
    os.write(_out, b"R %d %s %s\n" % (_status, _res.hex().encode() or b"-", _tail.hex().encode() or b"-"))
'''
)


def _python_argv(code: str) -> list[str]:
    # -B: checking must not write __pycache__ into the checked tree.
    # -P: no cwd/script dir on sys.path, so the directory we run from cannot
    #     shadow the package that was analysed.
    return [sys.executable, "-B", *(["-P"] if sys.version_info >= (3, 11) else []), "-c", code]


@dataclass(frozen=True)
class _ChildResult:
    module: str
    ok: bool
    seconds: float
    timed_out: bool = False
    data: dict[str, Any] = field(default_factory=dict)
    crash: str | None = None  # the child died without reporting


def _interpret(module: str, returncode: int, out: bytes, err: bytes, wall: float) -> _ChildResult:
    try:
        data = json.loads(out.decode("utf-8", "replace"))
        if not isinstance(data, dict) or "ok" not in data:
            raise ValueError
    except ValueError:
        tail = [ln for ln in err.decode("utf-8", "replace").splitlines() if ln.strip()]
        if returncode < 0:
            try:
                how = f"killed by {signal.Signals(-returncode).name}"
            except ValueError:
                how = f"killed by signal {-returncode}"
        else:
            how = f"exited with status {returncode}"
        crash = f"interpreter {how} while importing {module}"
        if tail:
            crash += f": {tail[-1].strip()}"
        return _ChildResult(module, False, wall, crash=crash)
    return _ChildResult(module, bool(data["ok"]), float(data.get("seconds", wall)), data=data)


def _kill_session(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        try:  # the child may not have become a session leader yet
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def _run_child(module: str, path_entries: Sequence[str], timeout: float) -> _ChildResult:
    """Spawn mode: one ``python -c`` per module."""
    code = _SPAWN_CODE % {"dirs": list(path_entries), "name": module}
    posix = os.name == "posix"
    started = time.perf_counter()
    # Popen rather than subprocess.run: on timeout the whole process group has
    # to die, or a grandchild holding the pipes open would hang communicate().
    proc = subprocess.Popen(
        _python_argv(code),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=posix,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        if posix:
            _kill_session(proc.pid)
        else:
            proc.kill()
        proc.communicate()
        return _ChildResult(module, False, timeout, timed_out=True)
    return _interpret(module, proc.returncode, out, err, time.perf_counter() - started)


class _ZygoteBroken(Exception):
    """The fork server died or stopped answering; the caller falls back to spawning."""


class _Zygote:
    """Parent-side handle on one fork server (used by one worker thread at a time)."""

    #: Generous: includes interpreter start-up for the first request.
    FORK_DEADLINE = 30.0
    #: After killing a timed-out child, how long the zygote may take to report it.
    REAP_DEADLINE = 5.0

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            _python_argv(_ZYGOTE_CODE),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self._buf = b""

    def _readline(self, deadline: float) -> bytes | None:
        """One protocol line; None on deadline; raises if the zygote is gone."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        # poll, not select: the parent may hold more than FD_SETSIZE descriptors.
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        while b"\n" not in self._buf:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            if not poller.poll(remaining * 1000):
                return None
            chunk = os.read(fd, 65536)
            if not chunk:
                raise _ZygoteBroken("fork server exited")
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        return line

    def run(self, module: str, path_entries: Sequence[str], timeout: float) -> _ChildResult:
        assert self.proc.stdin is not None
        request = module.encode().hex() + " " + "\0".join(path_entries).encode().hex() + "\n"
        try:
            self.proc.stdin.write(request.encode())
            self.proc.stdin.flush()
        except OSError as exc:
            raise _ZygoteBroken(str(exc)) from None
        line = self._readline(time.monotonic() + self.FORK_DEADLINE)
        if line is None or not line.startswith(b"P "):
            raise _ZygoteBroken("no fork acknowledgement")
        pid = int(line[2:])
        started = time.perf_counter()
        line = self._readline(time.monotonic() + timeout)
        if line is None:
            _kill_session(pid)
            if self._readline(time.monotonic() + self.REAP_DEADLINE) is None:
                self.close()
                raise _ZygoteBroken("fork server did not reap a timed-out child")
            return _ChildResult(module, False, timeout, timed_out=True)
        wall = time.perf_counter() - started
        parts = line.split(b" ")
        if len(parts) != 4 or parts[0] != b"R":
            raise _ZygoteBroken("garbled reply")
        out = b"" if parts[2] == b"-" else bytes.fromhex(parts[2].decode())
        err = b"" if parts[3] == b"-" else bytes.fromhex(parts[3].decode())
        returncode = os.waitstatus_to_exitcode(int(parts[1]))
        return _interpret(module, returncode, out, err, wall)

    def close(self) -> None:
        try:
            if self.proc.stdin is not None:
                self.proc.stdin.close()  # EOF makes the zygote exit
            self.proc.wait(timeout=self.REAP_DEADLINE)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


class _ChildRunner:
    """Runs module checks for a thread pool: fork servers where possible, spawning otherwise."""

    def __init__(self, use_fork: bool) -> None:
        self._use_fork = use_fork
        self._idle: queue.SimpleQueue[_Zygote] = queue.SimpleQueue()
        self._all: list[_Zygote] = []
        self._lock = threading.Lock()

    def run(self, module: str, path_entries: Sequence[str], timeout: float) -> _ChildResult:
        if not self._use_fork:
            return _run_child(module, path_entries, timeout)
        try:
            zygote = self._idle.get_nowait()
        except queue.Empty:
            try:
                zygote = _Zygote()
            except OSError:
                return _run_child(module, path_entries, timeout)
            with self._lock:
                self._all.append(zygote)
        try:
            result = zygote.run(module, path_entries, timeout)
        except _ZygoteBroken:
            # Whatever went wrong with the server, this module still gets a
            # clean check of its own.
            zygote.close()
            return _run_child(module, path_entries, timeout)
        self._idle.put(zygote)
        return result

    def close(self) -> None:
        with self._lock:
            zygotes, self._all = self._all, []
        for zygote in zygotes:
            zygote.close()


def _fork_server_available() -> bool:
    # No fork on Windows; on macOS fork of a process that has loaded nothing
    # but os/sys/select is safe (the known problems need system frameworks
    # loaded before the fork).
    return (
        os.name == "posix"
        and hasattr(os, "fork")
        and hasattr(os, "waitstatus_to_exitcode")
        and hasattr(select, "poll")
    )


# --------------------------------------------------------------------------- findings


class _Package:
    """Everything known about one target: its modules, sources and static edges."""

    def __init__(self, target: _Target) -> None:
        self.target = target
        self.modules = _discover_modules(target)
        # ``__main__`` modules are entry points for ``python -m``: importing one
        # runs the program, so they are analysed statically but not imported.
        self.checked = sorted(m for m in self.modules if m.rpartition(".")[2] != "__main__")
        self.norm_dirs = tuple(_norm(d) for d in target.dirs)
        self.file_to_module = {_norm(f): m for m, f in self.modules.items()}
        self.sources: dict[str, _Source] = {}
        for mod, file in self.modules.items():
            src = _scan_source(mod, file)
            if src is not None:
                self.sources[mod] = src

    def in_package(self, file: str) -> bool:
        nf = _norm(file)
        if self.target.single_file:
            return nf == _norm(self.target.single_file)
        return any(nf == d or nf.startswith(d + os.sep) for d in self.norm_dirs)


def _runtime_finding(pkg: _Package, res: _ChildResult) -> tuple[Finding, ModuleStatus]:
    module = res.module
    own_file = pkg.modules.get(module)
    if res.timed_out:
        msg = f"import of {module} did not finish within {res.seconds:g}s"
        status = ModuleStatus(module, own_file, False, res.seconds, f"timed out after {res.seconds:g}s")
        return (
            Finding(
                "timeout", "error", module, msg, own_file, None, None,
                "look for blocking work at import time (network, input(), waiting on "
                "locks or subprocesses) and move it behind a function call",
            ),
            status,
        )
    if res.crash is not None:
        status = ModuleStatus(module, own_file, False, res.seconds, res.crash)
        return (
            Finding(
                "import-error", "error", module, res.crash, own_file, None, None,
                "the module ends or crashes the interpreter at import time "
                "(sys.exit/os._exit, a crashing extension); keep module level side-effect free",
            ),
            status,
        )

    data = res.data
    last = str(data.get("last") or data.get("type") or "import failed")
    frames = [
        (str(f[0]), int(f[1]) if f[1] is not None else None, f[2])
        for f in data.get("frames", [])
        if isinstance(f, list) and len(f) == 3
    ]
    syntax = data.get("syntax")
    pkg_frames = [f for f in frames if f[0] and pkg.in_package(f[0])]
    own = [f for f in pkg_frames if own_file and _norm(f[0]) == _norm(own_file)]
    file, line, col = own_file, None, None
    where: tuple[str, int | None, Any] | None = None
    if own:
        where = own[-1]
    elif syntax and syntax[0] and own_file and _norm(str(syntax[0])) == _norm(own_file):
        where = (str(syntax[0]), syntax[1], (syntax[2] - 1) if syntax[2] else None)
    elif pkg_frames:
        where = pkg_frames[-1]
    elif syntax and syntax[0] and pkg.in_package(str(syntax[0])):
        where = (str(syntax[0]), syntax[1], (syntax[2] - 1) if syntax[2] else None)
    if where is not None:
        file, line = where[0], where[1]
        col = where[2] + 1 if isinstance(where[2], int) else None

    # The module whose code actually raised: the deepest frame inside the
    # package (or the file with the syntax error).
    cause_file = None
    if syntax and syntax[0] and pkg.in_package(str(syntax[0])):
        cause_file = str(syntax[0])
    elif pkg_frames:
        cause_file = pkg_frames[-1][0]
    cause = pkg.file_to_module.get(_norm(cause_file)) if cause_file else None

    message = last
    if cause and cause != module:
        message = f"{last} (raised while importing {cause})"
    missing = data.get("missing")
    kind = "missing-module" if data.get("mnf") else "import-error"
    top = pkg.target.name
    if cause and cause != module:
        suggestion = f"fix {cause} first: {module} fails only because it imports it"
    elif data.get("mnf") and isinstance(missing, str) and (missing == top or missing.startswith(top + ".")):
        suggestion = f"create {missing}, or correct the import (is the module name misspelt?)"
    elif data.get("mnf") and isinstance(missing, str):
        dist = missing.split(".")[0]
        suggestion = (
            f"install the distribution providing {dist!r} and declare it as a dependency, "
            "or make the import optional (try/except ImportError)"
        )
    elif data.get("import_error"):
        suggestion = (
            "check that the imported name exists (a submodule needs its own file); "
            "a partially initialised module usually means an import cycle"
        )
    elif syntax:
        suggestion = "fix the syntax error"
    elif data.get("type") == "SystemExit":
        suggestion = (
            "the module calls sys.exit() at import time; guard entry-point code with "
            "if __name__ == '__main__':"
        )
    else:
        suggestion = (
            "the module raises while executing its top level; move that code into a "
            "function or make it robust at import time"
        )
    detail = tuple(f"{f[0]}:{f[1]}" for f in pkg_frames)
    if syntax and syntax[0] and not detail:
        detail = (f"{syntax[0]}:{syntax[1]}",)
    status = ModuleStatus(module, own_file, False, res.seconds, last)
    return Finding(kind, "error", module, message, file, line, col, suggestion, detail), status


def _static_missing_findings(
    pkg: _Package, failed: Mapping[str, dict[str, Any]]
) -> list[Finding]:
    """Imports of package-internal modules that do not exist.

    Module-level ones are normally already reported by the real import check
    (then skipped here); the ones inside functions are only visible
    statically.  Imports guarded by ``except ImportError`` are deliberate.
    """
    out: list[Finding] = []
    top = pkg.target.name
    for mod, src in sorted(pkg.sources.items()):
        reported = failed.get(mod, {})
        reported_missing = reported.get("missing") if reported.get("mnf") else None
        seen: set[str] = set()
        for imp in src.imports:
            if imp.guarded or imp.module in seen:
                continue
            if not (imp.module == top or imp.module.startswith(top + ".")):
                continue
            if _module_exists(imp.module, pkg.target, pkg.modules):
                continue
            seen.add(imp.module)
            if isinstance(reported_missing, str) and (
                imp.module == reported_missing or imp.module.startswith(reported_missing + ".")
            ):
                continue
            where = " (in a function body or a __main__ block, so it fails only when that code runs)" if imp.lazy else ""
            out.append(
                Finding(
                    "missing-module", "error", mod,
                    f"{mod} imports {imp.module}, which does not exist{where}",
                    src.file, imp.line, imp.col,
                    f"create {imp.module} or correct the import",
                )
            )
    return out


def _cycle_findings(
    packages: Sequence[_Package], graph: Mapping[str, set[str]], details: Mapping[tuple[str, str], list[int]]
) -> tuple[list[Finding], list[tuple[str, ...]]]:
    modules = {m: (p, f) for p in packages for m, f in p.modules.items()}
    fan_in: Counter[str] = Counter(v for u in graph for v in graph[u] if v != u)

    def statements(u: str, v: str) -> int:
        return len(details.get((u, v), ())) or 1

    findings: list[Finding] = []
    paths: list[tuple[str, ...]] = []
    for comp in cyclic_components(graph):
        cut = choose_cycle_cut(graph, comp, fan_in=fan_in, weight=statements)
        u, v = cut.importer, cut.imported
        pkg, file = modules.get(u, (None, None))
        lines = details.get((u, v), [])
        line = min(lines) if lines else None
        col = None
        if pkg is not None and line is not None and u in pkg.sources:
            col = pkg.sources[u].import_cols.get(line)
        if len(comp) == 1:
            message = f"{u} imports itself"
            suggestion = f"remove the import of {v} from {u}"
        else:
            message = f"import cycle between {len(comp)} modules: {', '.join(comp)}"
            loc = f" ({os.path.basename(file)}:{line})" if file and line else ""
            suggestion = (
                f"cut the import of {v} in {u}{loc}: it lies on {cut.shortest_cycles_cut} of "
                f"the {cut.shortest_cycles_total} shortest cycles through these modules; move "
                "it into the function that needs it, or move the shared code into a module "
                "both can import"
            )
        findings.append(
            Finding("cycle", "error", comp[0], message, file, line, col, suggestion, cut.path)
        )
        paths.append(cut.path)
    return findings, paths


def _package_of(module: str, depth: int = 2) -> str | None:
    parts = module.split(".")
    return ".".join(parts[:depth]) if len(parts) >= depth else None


def _package_cycle_findings(
    packages: Sequence[_Package], graph: Mapping[str, set[str]], details: Mapping[tuple[str, str], list[int]]
) -> list[Finding]:
    """Cycles between subpackages (modules collapsed to their first two name parts).

    Warnings only: a cycle between packages can hide behind module-level edges
    that are each harmless, but it still tangles the layering.  Top-level
    modules are left out (a package's ``__init__`` re-exporting its children
    is not a layering problem), and a component made only of plain modules is
    skipped because the module-level analysis already reports it.
    """
    files = {m: f for p in packages for m, f in p.modules.items()}
    collapsed: dict[str, set[str]] = {}
    witness: dict[tuple[str, str], tuple[str, str]] = {}
    for u in sorted(graph):
        pu = _package_of(u)
        if pu is None:
            continue
        collapsed.setdefault(pu, set())
        for v in sorted(graph[u]):
            pv = _package_of(v)
            if pv is None or pv == pu:
                continue
            collapsed[pu].add(pv)
            witness.setdefault((pu, pv), (u, v))
    has_children = {_package_of(m) for m in graph if len(m.split(".")) > 2}
    fan_in: Counter[str] = Counter(v for u in collapsed for v in collapsed[u])
    findings: list[Finding] = []
    for comp in cyclic_components(collapsed):
        if not any(node in has_children for node in comp):
            continue
        cut = choose_cycle_cut(collapsed, comp, fan_in=fan_in)
        mu, mv = witness[(cut.importer, cut.imported)]
        lines = details.get((mu, mv), [])
        line = min(lines) if lines else None
        findings.append(
            Finding(
                "package-cycle", "warning", comp[0],
                f"import cycle between {len(comp)} packages: {', '.join(comp)}",
                files.get(mu), line, None,
                f"make {cut.importer} stop depending on {cut.imported} (for example "
                f"{mu} imports {mv}), so the packages layer cleanly",
                cut.path,
            )
        )
    return findings


def _static_graph(
    packages: Sequence[_Package],
) -> tuple[dict[str, set[str]], dict[tuple[str, str], list[int]], list[Finding]]:
    """Eager module-level import edges (u → {v}) and the import lines behind each edge."""
    names = [p.target.name for p in packages if not p.target.single_file]
    graph: dict[str, set[str]] = {m: set() for p in packages for m in p.modules}
    details: dict[tuple[str, str], list[int]] = {}
    if not names:
        return graph, details, []
    entries = [e for p in packages for e in p.target.path_entries]
    notes: list[Finding] = []
    with _on_sys_path(entries):
        try:
            g = grimp.build_graph(
                *names,
                include_external_packages=False,
                exclude_type_checking_imports=True,
                cache_dir=None,  # the default cache would write .grimp_cache into the cwd
            )
        except grimp.exceptions.SourceSyntaxError as exc:
            # One unparsable file stops grimp altogether; the real import check
            # still reports the SyntaxError itself as an error.
            culprit = next(
                (p.file_to_module[_norm(exc.filename)] for p in packages
                 if exc.filename and _norm(exc.filename) in p.file_to_module),
                exc.filename,
            )
            notes.append(
                Finding(
                    "static-analysis", "warning", names[0],
                    f"import graph not built, cycle detection skipped: syntax error in {culprit}",
                    exc.filename, exc.lineno, None,
                    "fix the syntax error to get import-cycle checking back",
                )
            )
            return graph, details, notes
        except grimp.exceptions.GrimpException as exc:
            raise ValueError(f"cannot analyse {', '.join(names)}: {exc}") from None
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # noqa: BLE001 - grimp's Rust scanner can panic (a pyo3
            # PanicException is a BaseException), e.g. on a relative import above the top package
            notes.append(
                Finding(
                    "static-analysis", "warning", names[0],
                    f"import graph not built, cycle detection skipped: grimp failed "
                    f"({type(exc).__name__}: {str(exc).strip()[:200]})",
                    None, None, None,
                    "the real import of every module is still checked; report the grimp failure upstream",
                )
            )
            return graph, details, notes
    lazy = {p_mod: src.lazy_lines for p in packages for p_mod, src in p.sources.items()}
    for u in sorted(g.modules):
        for v in sorted(g.find_modules_directly_imported_by(u)):
            eager_lines = sorted(
                d["line_number"]
                for d in g.get_import_details(importer=u, imported=v)
                if d["line_number"] not in lazy.get(u, ())
            )
            if not eager_lines:
                continue  # only imported inside functions: cannot close a cycle at import time
            graph.setdefault(u, set()).add(v)
            graph.setdefault(v, set())
            details[(u, v)] = eager_lines
    return graph, details, notes


# --------------------------------------------------------------------------- entry point


_SEVERITY_ORDER = {"error": 0, "warning": 1}


def validate_python(
    targets: Sequence[str],
    *,
    timeout: float = 30.0,
    jobs: int | None = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> ImportReport:
    """Check that every module of the target packages imports on its own, and find cycles.

    ``targets`` are top-level package names (found on ``sys.path``) or
    package directories (their parent directory is used as the import root);
    a path to a single ``.py`` file is accepted too.  Unknown or unusable
    targets raise ValueError with a one-line message.

    ``timeout`` bounds each module's import (with the fork server it does not
    include interpreter start-up; in spawn mode it does).  ``jobs`` is the
    number of imports run at once (default: CPU count).  ``progress(done,
    total, module)`` is called from the calling thread after each module.
    """
    if isinstance(targets, str):
        targets = [targets]
    if not targets:
        raise ValueError("no targets given")
    if timeout <= 0:
        raise ValueError(f"timeout must be positive, got {timeout}")
    workers = jobs if jobs is not None else (os.cpu_count() or 1)
    if workers < 1:
        raise ValueError(f"jobs must be at least 1, got {jobs}")

    started = time.perf_counter()
    resolved = [_resolve_target(t) for t in targets]
    seen: dict[str, str] = {}
    for t in resolved:
        if t.name in seen:
            raise ValueError(f"targets {seen[t.name]!r} and {t.label!r} are both package {t.name!r}")
        seen[t.name] = t.label
    # Checked before any child starts, so a bad target fails fast.
    with _on_sys_path(e for t in resolved for e in t.path_entries):
        for t in resolved:
            _check_not_shadowed(t)
    packages = [_Package(t) for t in resolved]

    # The static analysis runs here while the children are importing: it is
    # pure parsing, and the children are separate processes.
    jobs_list = [(p, m) for p in packages for m in p.checked]
    results: dict[str, _ChildResult] = {}
    runner = _ChildRunner(use_fork=_fork_server_available())
    try:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = {
                pool.submit(runner.run, m, p.target.path_entries, timeout): (p, m)
                for p, m in jobs_list
            }
            try:
                graph, details, findings = _static_graph(packages)
            except BaseException:
                for fut in futures:
                    fut.cancel()
                raise
            for done, fut in enumerate(as_completed(futures), 1):
                _, mod = futures[fut]
                results[mod] = fut.result()
                if progress is not None:
                    progress(done, len(futures), mod)
    finally:
        runner.close()

    statuses: list[ModuleStatus] = []
    for p in packages:
        failed: dict[str, dict[str, Any]] = {}
        for mod in p.checked:
            res = results[mod]
            if res.ok:
                statuses.append(ModuleStatus(mod, p.modules[mod], True, res.seconds, None))
                continue
            finding, status = _runtime_finding(p, res)
            findings.append(finding)
            statuses.append(status)
            failed[mod] = res.data
        findings.extend(_static_missing_findings(p, failed))

    cycle_findings, cycles = _cycle_findings(packages, graph, details)
    findings.extend(cycle_findings)
    findings.extend(_package_cycle_findings(packages, graph, details))
    findings.sort(
        key=lambda f: (_SEVERITY_ORDER.get(f.severity, 9), f.module, f.kind, f.line or 0, f.message)
    )

    return ImportReport(
        tool="python",
        targets=tuple(t.label for t in resolved),
        modules=tuple(sorted(statuses, key=lambda s: s.name)),
        findings=tuple(findings),
        cycles=tuple(cycles),
        seconds=time.perf_counter() - started,
    )


__all__ = [
    "CycleCut",
    "choose_cycle_cut",
    "cyclic_components",
    "shortest_cycle_through",
    "shortest_path",
    "strongly_connected_components",
    "validate_python",
]
