"""validate_python: graph algorithms, target resolution and the fixture packages.

The fixture packages are copied into a temporary directory before checking,
so nothing (not even __pycache__) is written into the source tree, and the
expensive subprocess run is shared by all tests of this module.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from nbcvm.tools import pyimports
from nbcvm.tools.pyimports import (
    choose_cycle_cut,
    cyclic_components,
    shortest_cycle_through,
    strongly_connected_components,
    validate_python,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "pypkgs"
PACKAGES = ("cyclepkg", "raisepkg", "relpkg", "subpkg", "cleanpkg")


def copy_fixtures(dest: Path, names=PACKAGES) -> Path:
    for name in names:
        shutil.copytree(FIXTURES / name, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


@pytest.fixture(scope="module")
def pkgroot(tmp_path_factory) -> Path:
    return copy_fixtures(tmp_path_factory.mktemp("pypkgs"))


@pytest.fixture(scope="module")
def progress_calls():
    return []


@pytest.fixture(scope="module")
def report(pkgroot, progress_calls):
    return validate_python(
        [str(pkgroot / name) for name in PACKAGES],
        timeout=20,
        progress=lambda done, total, module: progress_calls.append((done, total, module)),
    )


def findings_for(report, module):
    return [f for f in report.findings if f.module == module]


def status(report, module):
    (s,) = [m for m in report.modules if m.name == module]
    return s


# --------------------------------------------------------------------------- Tarjan


def as_sets(components):
    return {frozenset(c) for c in components}


def test_scc_self_loop_is_cyclic():
    graph = {"a": ["a"], "b": []}
    assert as_sets(strongly_connected_components(graph)) == {frozenset("a"), frozenset("b")}
    assert cyclic_components(graph) == [("a",)]


def test_scc_two_cycle():
    graph = {"a": ["b"], "b": ["a"], "c": ["a"]}
    assert cyclic_components(graph) == [("a", "b")]
    assert as_sets(strongly_connected_components(graph)) == {frozenset("ab"), frozenset("c")}


def test_scc_nested_components():
    # {a,b,c} and {d,e} are separate SCCs joined by a one-way edge c → d; f
    # hangs off e; g → g is a self-loop inside nothing else.
    graph = {
        "a": ["b"], "b": ["c"], "c": ["a", "d"],
        "d": ["e"], "e": ["d", "f"], "f": [], "g": ["g", "a"],
    }
    assert as_sets(cyclic_components(graph)) == {frozenset("abc"), frozenset("de"), frozenset("g")}
    comps = strongly_connected_components(graph)
    # Reverse topological order: a component comes before those that reach it.
    order = {node: i for i, comp in enumerate(comps) for node in comp}
    assert order["f"] < order["d"] < order["a"] < order["g"]


def test_scc_diamond_has_no_cycle():
    graph = {"top": ["left", "right"], "left": ["base"], "right": ["base"], "base": []}
    assert cyclic_components(graph) == []
    assert len(strongly_connected_components(graph)) == 4


def test_scc_needs_no_recursion():
    n = sys.getrecursionlimit() * 5
    chain = {str(i): [str(i + 1)] for i in range(n)}
    chain[str(n)] = ["0"]
    (comp,) = cyclic_components(chain)
    assert len(comp) == n + 1


def test_shortest_cycle_through():
    graph = {"a": ["b", "c"], "b": ["c"], "c": ["a"]}
    assert shortest_cycle_through(graph, "a") == ("a", "c", "a")
    assert shortest_cycle_through({"a": ["b"], "b": []}, "a") is None


def test_cut_prefers_edge_on_most_cycles():
    # a ⇄ b and a → b → c → a share the edge a → b.
    graph = {"a": ["b"], "b": ["a", "c"], "c": ["a"]}
    cut = choose_cycle_cut(graph, ("a", "b", "c"))
    assert (cut.importer, cut.imported) == ("a", "b")
    assert cut.shortest_cycles_cut == 3 and cut.shortest_cycles_total == 3
    assert cut.path[-2:] == ("a", "b") and cut.path[0] == "b"


def test_cut_tie_broken_by_layering():
    # A triangle: every edge is on every shortest cycle.  "c" is imported by
    # two outside modules, so c → a is the foundation importing upwards.
    graph = {"a": ["b"], "b": ["c"], "c": ["a"]}
    cut = choose_cycle_cut(graph, ("a", "b", "c"), fan_in={"a": 1, "b": 1, "c": 3})
    assert (cut.importer, cut.imported) == ("c", "a")
    assert cut.path == ("a", "b", "c", "a")


def test_cut_tie_broken_by_fewest_statements_then_name():
    graph = {"a": ["b"], "b": ["a"]}
    weights = {("a", "b"): 3, ("b", "a"): 1}
    cut = choose_cycle_cut(graph, ("a", "b"), weight=lambda u, v: weights[(u, v)])
    assert (cut.importer, cut.imported) == ("b", "a")
    assert (choose_cycle_cut(graph, ("a", "b")).importer) == "a"


def test_cut_self_loop():
    cut = choose_cycle_cut({"a": ["a"]}, ("a",))
    assert cut.path == ("a", "a") and cut.importer == cut.imported == "a"


# --------------------------------------------------------------------------- targets


@pytest.mark.parametrize(
    "target",
    ["definitely_not_a_package_xyz", "not a name", "os.path", "sys", str(Path("/nonexistent/dir/pkg"))],
)
def test_bad_targets_raise_one_line_value_error(target):
    with pytest.raises(ValueError) as info:
        validate_python([target])
    assert "\n" not in str(info.value)


def test_directory_without_init_is_rejected(tmp_path):
    (tmp_path / "notpkg").mkdir()
    with pytest.raises(ValueError, match="__init__"):
        validate_python([str(tmp_path / "notpkg")])


def test_same_package_twice_is_rejected(pkgroot):
    with pytest.raises(ValueError, match="both"):
        validate_python([str(pkgroot / "cleanpkg"), str(pkgroot / "cleanpkg") + os.sep])


@pytest.mark.parametrize("kwargs", [{"timeout": 0}, {"jobs": 0}])
def test_bad_options(pkgroot, kwargs):
    with pytest.raises(ValueError):
        validate_python([str(pkgroot / "cleanpkg")], **kwargs)


def test_importable_name_target_uses_the_copy_on_sys_path(tmp_path, monkeypatch):
    copy_fixtures(tmp_path, ["cleanpkg"])
    monkeypatch.syspath_prepend(str(tmp_path))
    r = validate_python(["cleanpkg"], jobs=2)
    assert r.targets == ("cleanpkg",)
    assert r.ok and r.findings == ()
    assert {m.file for m in r.modules} == {str(p) for p in (tmp_path / "cleanpkg").glob("*.py")}
    assert "cleanpkg" not in sys.modules


# --------------------------------------------------------------------------- fixture packages


def test_every_module_is_checked(report, pkgroot, progress_calls):
    expected = set()
    for name in PACKAGES:
        for path in (pkgroot / name).rglob("*.py"):
            rel = path.relative_to(pkgroot).with_suffix("")
            parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
            expected.add(".".join(parts))
    assert {m.name for m in report.modules} == expected
    assert report.tool == "python"
    assert [c[0] for c in progress_calls] == list(range(1, len(expected) + 1))
    assert {c[1] for c in progress_calls} == {len(expected)}
    assert {c[2] for c in progress_calls} == expected


def test_parent_process_stays_clean(report, pkgroot):
    assert not any(name in sys.modules for name in PACKAGES)
    assert not list(pkgroot.rglob("__pycache__")), "children must not write bytecode"
    assert not any(str(pkgroot) in p for p in sys.path)


def test_cycle_reported_with_path_location_and_cut(report, pkgroot):
    (cycle,) = [f for f in report.findings if f.kind == "cycle"]
    assert cycle.severity == "error"
    assert "cyclepkg.a, cyclepkg.b, cyclepkg.c" in cycle.message
    # clean imports c, so c is the most depended-on member: cut c → a.
    assert cycle.detail == ("cyclepkg.a", "cyclepkg.b", "cyclepkg.c", "cyclepkg.a")
    assert report.cycles == (cycle.detail,)
    assert cycle.file == str(pkgroot / "cyclepkg" / "c.py")
    assert cycle.line == 1 and cycle.col == 1
    assert "cyclepkg.a in cyclepkg.c" in cycle.suggestion
    # The cycle is structural only: every module still imports.
    assert all(m.ok for m in report.modules if m.name.startswith("cyclepkg"))
    assert not [f for f in report.findings if f.module == "cyclepkg.clean"]


def test_module_raising_runtime_error(report, pkgroot):
    boom = status(report, "raisepkg.boom")
    assert not boom.ok and boom.error == "RuntimeError: boom on import"
    (f,) = findings_for(report, "raisepkg.boom")
    assert (f.kind, f.severity) == ("import-error", "error")
    assert f.message == "RuntimeError: boom on import"
    assert (f.file, f.line) == (str(pkgroot / "raisepkg" / "boom.py"), 3)


def test_consequential_failure_points_at_own_import_and_root_cause(report, pkgroot):
    (f,) = findings_for(report, "raisepkg.uses_boom")
    assert f.kind == "import-error"
    assert "raised while importing raisepkg.boom" in f.message
    assert (f.file, f.line) == (str(pkgroot / "raisepkg" / "uses_boom.py"), 3)
    assert f.detail[-1] == f"{pkgroot / 'raisepkg' / 'boom.py'}:3"
    assert "fix raisepkg.boom first" in f.suggestion
    assert status(report, "raisepkg.fine").ok and status(report, "raisepkg").ok


def test_broken_relative_imports(report, pkgroot):
    (name,) = findings_for(report, "relpkg.bad_name")
    assert name.kind == "import-error"
    assert name.message.startswith("ImportError: cannot import name 'nothere' from 'relpkg'")
    assert (name.file, name.line) == (str(pkgroot / "relpkg" / "bad_name.py"), 1)

    (module,) = findings_for(report, "relpkg.bad_module")
    assert module.kind == "missing-module"
    assert module.message == "ModuleNotFoundError: No module named 'relpkg.missing'"
    assert (module.file, module.line) == (str(pkgroot / "relpkg" / "bad_module.py"), 1)
    assert "create relpkg.missing" in module.suggestion


def test_missing_import_inside_function_found_statically(report, pkgroot):
    assert status(report, "relpkg.good").ok
    (f,) = findings_for(report, "relpkg.good")
    assert f.kind == "missing-module"
    assert "relpkg.also_missing" in f.message and "function" in f.message
    assert (f.file, f.line, f.col) == (str(pkgroot / "relpkg" / "good.py"), 3, 5)


def test_missing_submodule(report, pkgroot):
    assert status(report, "subpkg.inner.present").ok
    (f,) = findings_for(report, "subpkg.user")
    assert f.kind == "missing-module"
    assert f.message == "ModuleNotFoundError: No module named 'subpkg.inner.gone'"
    assert (f.file, f.line) == (str(pkgroot / "subpkg" / "user.py"), 2)


def test_clean_diamond(report):
    assert all(m.ok for m in report.modules if m.name.startswith("cleanpkg"))
    assert not [f for f in report.findings if f.module.startswith("cleanpkg")]
    assert all(m.seconds >= 0 for m in report.modules)
    assert not report.ok


def test_spawn_fallback_gives_the_same_answers(pkgroot, report, monkeypatch):
    monkeypatch.setattr(pyimports, "_fork_server_available", lambda: False)
    spawned = validate_python([str(pkgroot / "raisepkg"), str(pkgroot / "relpkg")], jobs=2)
    same = [f for f in report.findings if f.module.split(".")[0] in ("raisepkg", "relpkg")]
    assert [f.fingerprint for f in spawned.findings] == [f.fingerprint for f in same]
    assert [(f.file, f.line) for f in spawned.findings] == [(f.file, f.line) for f in same]


def test_timeout_hangs_and_noise(tmp_path):
    pkg = tmp_path / "slowpkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "hang.py").write_text("import time\ntime.sleep(60)\n")
    (pkg / "noisy.py").write_text("print('to stdout')\nimport os\nos.write(1, b'raw fd write')\n")
    (pkg / "lingers.py").write_text(
        "import threading, time\nthreading.Thread(target=time.sleep, args=(60,)).start()\n"
    )
    (pkg / "exits.py").write_text("import sys\nsys.exit(3)\n")
    r = validate_python([str(pkg)], timeout=1.0)
    by_name = {m.name: m for m in r.modules}
    assert not by_name["slowpkg.hang"].ok
    (t,) = findings_for(r, "slowpkg.hang")
    assert t.kind == "timeout" and t.severity == "error"
    assert by_name["slowpkg.noisy"].ok, "output of the module must not corrupt the result"
    assert by_name["slowpkg.lingers"].ok, "a finished import is not a timeout"
    (e,) = findings_for(r, "slowpkg.exits")
    assert e.message == "SystemExit: 3" and e.line == 2
    assert r.seconds < 10


def test_syntax_error_reported_and_static_analysis_skipped(tmp_path):
    pkg = tmp_path / "synpkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "bad.py").write_text("x = 1\ndef (:\n")
    r = validate_python([str(pkg)])
    (err,) = [f for f in r.findings if f.severity == "error"]
    assert err.module == "synpkg.bad" and err.message.startswith("SyntaxError")
    assert (err.file, err.line) == (str(pkg / "bad.py"), 2)
    (warn,) = r.warnings
    assert warn.kind == "static-analysis" and "synpkg.bad" in warn.message


def test_function_level_and_main_guard_imports_do_not_make_cycles(tmp_path):
    pkg = tmp_path / "lazypkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from lazypkg import b\n")
    (pkg / "b.py").write_text("def f():\n    from lazypkg import a\n    return a\n")
    (pkg / "c.py").write_text("X = 1\nif __name__ == '__main__':\n    import lazypkg.c\n")
    (pkg / "d.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from lazypkg import e\n"
    )
    (pkg / "e.py").write_text("from lazypkg import d\n")
    r = validate_python([str(pkg)])
    assert r.cycles == () and r.findings == ()


def test_package_level_cycle_is_a_warning(tmp_path):
    root = tmp_path / "layered"
    for sub in ("core", "ui"):
        (root / sub).mkdir(parents=True)
        (root / sub / "__init__.py").write_text("")
    (root / "__init__.py").write_text("")
    (root / "core" / "model.py").write_text("from layered.ui import widgets\n")
    (root / "ui" / "widgets.py").write_text("X = 1\n")
    (root / "ui" / "view.py").write_text("from layered.core import model\n")
    r = validate_python([str(root)])
    assert r.ok and r.cycles == ()
    (w,) = r.warnings
    assert w.kind == "package-cycle"
    assert "layered.core, layered.ui" in w.message
    assert w.detail[0] == w.detail[-1] and set(w.detail) == {"layered.core", "layered.ui"}


def test_single_file_target_and_main_modules(tmp_path):
    script = tmp_path / "lonely.py"
    script.write_text("import json\nraise KeyError('nope')\n")
    r = validate_python([str(script)])
    assert [m.name for m in r.modules] == ["lonely"]
    (f,) = r.findings
    assert f.message == "KeyError: 'nope'" and (f.file, f.line) == (str(script), 2)

    pkg = tmp_path / "mainpkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "__main__.py").write_text("import sys\nsys.exit('running the program')\n")
    r = validate_python([str(pkg)])
    assert [m.name for m in r.modules] == ["mainpkg"] and r.ok
