"""validate_python edges: how import guards are read, children that crash or are killed, the spawn
fallback's timeout, and targets that cannot be checked."""

from __future__ import annotations

import json
import os
import sys
import textwrap
import types
from pathlib import Path

import pytest

from nbcvm.tools import pyimports
from nbcvm.tools.pyimports import validate_python


def make_pkg(root: Path, name: str, files: dict[str, str]) -> Path:
    pkg = root / name
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    for rel, text in files.items():
        p = pkg / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text))
    return pkg


def by_module(report):
    out: dict[str, list] = {}
    for f in report.findings:
        out.setdefault(f.module, []).append(f)
    return out


@pytest.fixture(scope="module")
def edge(tmp_path_factory):
    root = tmp_path_factory.mktemp("edge")
    pkg = make_pkg(root, "edgepkg", {
        "other.py": "",
        "ns/x.py": "",  # no __init__.py: a namespace package, not walked, still importable
        "data.v1/__init__.py": "",  # a dot in the name: cannot be imported, not walked
        "notes.txt": "not python",
        "guarded.py": """
            import builtins
            try:
                import edgepkg.nothere_a
            except ImportError:
                pass
            try:
                import edgepkg.nothere_b
            except:
                pass
            try:
                import edgepkg.nothere_c
            except (KeyError, builtins.ModuleNotFoundError):
                pass
            else:
                import edgepkg.missing_else
            finally:
                import edgepkg.other
            if __name__ == "__main__":
                import edgepkg.main_only
            else:
                import edgepkg.ns.x
            """,
        "rel.py": """
            def f():
                from .. import up
                from . import other
                import edgepkg
                from ..x import y
            """,
        "crash.py": "import os\nos._exit(7)\n",
        "killed.py": "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n",
        "uses_dist.py": "import surely_not_installed_dist_xyz\n",
        "raises.py": "raise KeyError('k')\n",
    })
    return pkg, validate_python([str(pkg)], timeout=10)


def test_modules_walked(edge):
    pkg, r = edge
    assert {m.name: m.file for m in r.modules} == {
        "edgepkg": str(pkg / "__init__.py"),
        **{f"edgepkg.{n}": str(pkg / f"{n}.py")
           for n in ("other", "guarded", "rel", "crash", "killed", "uses_dist", "raises")}}


def test_import_guards_and_main_guard(edge):
    pkg, r = edge
    found = by_module(r)
    ok = {m.name for m in r.modules if m.ok}
    assert {"edgepkg.guarded", "edgepkg.rel", "edgepkg.other"} <= ok
    # nothere_a/b/c are guarded by handlers that catch ImportError (by name, bare, in a tuple, as
    # an attribute); the else branch is not guarded, and the __main__ block never runs on import.
    # (Line numbers count the blank first line of the dedented source.)
    assert [(f.kind, f.line, f.col) for f in found["edgepkg.guarded"]] == [("missing-module", 16, 5),
                                                                          ("missing-module", 20, 5)]
    first, second = found["edgepkg.guarded"]
    assert first.message == "edgepkg.guarded imports edgepkg.missing_else, which does not exist"
    assert second.message.startswith("edgepkg.guarded imports edgepkg.main_only, which does not exist (")
    # relative imports past the top-level package are left to Python; none of rel's is reported
    assert "edgepkg.rel" not in found


def test_children_that_exit_or_are_killed(edge):
    pkg, r = edge
    found = by_module(r)
    (crash,) = found["edgepkg.crash"]
    assert (crash.kind, crash.message, crash.file, crash.line) == (
        "import-error", "interpreter exited with status 7 while importing edgepkg.crash", str(pkg / "crash.py"), None)
    assert "sys.exit/os._exit" in crash.suggestion
    (killed,) = found["edgepkg.killed"]
    assert killed.message == "interpreter killed by SIGKILL while importing edgepkg.killed"
    status = {m.name: m for m in r.modules}
    assert status["edgepkg.killed"].error == killed.message


def test_missing_third_party_and_plain_exceptions(edge):
    pkg, r = edge
    found = by_module(r)
    (dist,) = found["edgepkg.uses_dist"]
    assert dist.kind == "missing-module" and (dist.line, dist.col) == (1, 1)
    assert dist.suggestion.startswith("install the distribution providing 'surely_not_installed_dist_xyz'")
    (raised,) = found["edgepkg.raises"]
    assert (raised.kind, raised.message, raised.line) == ("import-error", "KeyError: 'k'", 1)
    assert raised.suggestion.startswith("the module raises while executing its top level")


def test_spawn_mode_timeout_kills_the_child(tmp_path, monkeypatch):
    monkeypatch.setattr(pyimports, "_fork_server_available", lambda: False)
    pkg = make_pkg(tmp_path, "spawnpkg", {"hang.py": "import time\ntime.sleep(30)\n", "fine.py": "X = 1\n"})
    r = validate_python([str(pkg)], timeout=0.75, jobs=2)
    status = {m.name: m for m in r.modules}
    assert status["spawnpkg.fine"].ok and status["spawnpkg"].ok
    assert not status["spawnpkg.hang"].ok and status["spawnpkg.hang"].error == "timed out after 0.75s"
    (t,) = r.findings
    assert (t.kind, t.module, t.message) == ("timeout", "spawnpkg.hang",
                                             "import of spawnpkg.hang did not finish within 0.75s")
    assert r.seconds < 5


def test_single_module_by_name(tmp_path, monkeypatch):
    (tmp_path / "lonemod_xyz.py").write_text("import os\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    r = validate_python(["lonemod_xyz"])
    assert r.ok and [(m.name, m.file, m.ok) for m in r.modules] == [
        ("lonemod_xyz", str(tmp_path / "lonemod_xyz.py"), True)]


def test_targets_that_cannot_be_checked(tmp_path, monkeypatch):
    bad_file = tmp_path / "my-mod.py"
    bad_file.write_text("")
    with pytest.raises(ValueError) as ei:
        validate_python([str(bad_file)])
    assert str(ei.value) == f"target {str(bad_file)!r}: 'my-mod' is not an importable module name"

    bad_dir = tmp_path / "my-pkg"
    bad_dir.mkdir()
    (bad_dir / "__init__.py").write_text("")
    with pytest.raises(ValueError) as ei:
        validate_python([str(bad_dir)])
    assert str(ei.value) == f"target {str(bad_dir)!r}: directory name 'my-pkg' is not an importable name"

    shadow = tmp_path / "json"
    shadow.mkdir()
    (shadow / "__init__.py").write_text("")
    with pytest.raises(ValueError) as ei:
        validate_python([str(shadow)])
    stdlib_json = os.path.normcase(os.path.realpath(Path(json.__file__).parent))
    assert str(ei.value) == f"cannot check {str(shadow)!r}: the name 'json' resolves to {stdlib_json} in this process"

    # a module object without a spec makes importlib's lookup itself fail
    monkeypatch.setitem(sys.modules, "specless_xyz", types.ModuleType("specless_xyz"))
    with pytest.raises(ValueError) as ei:
        validate_python(["specless_xyz"])
    assert str(ei.value) == "unknown target 'specless_xyz': specless_xyz.__spec__ is None"


def test_relative_import_far_past_the_top_level_does_not_crash(tmp_path):
    # grimp's Rust scanner panics on it (a pyo3 PanicException is a BaseException)
    pkg = make_pkg(tmp_path, "farpkg", {"rel.py": "def f():\n    from ... import far\n"})
    r = validate_python([str(pkg)])
    assert {m.name: m.ok for m in r.modules} == {"farpkg": True, "farpkg.rel": True}
    (note,) = [f for f in r.findings if f.kind == "static-analysis"]
    assert note.severity == "warning" and "grimp failed" in note.message
