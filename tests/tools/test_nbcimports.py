"""NBC half of validate-imports: each fixture tree's findings, every CI format, baselines."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from nbcvm.asm.assembler import assemble
from nbcvm.bytecode.codec import encode
from nbcvm.report.ci_formats import FORMATS, render_ci
from nbcvm.tools.findings import ImportReport, apply_baseline, write_baseline
from nbcvm.tools.nbcimports import ValidateConfig, validate_imports, validate_nbc

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "nbc"
TREES = ("cycles", "initcycle", "missing", "badcall", "unused", "initraise", "diamond", "invalid")

# (kind, module, file name, line) of every finding each fixture tree must give.
EXPECTED = {
    "cycles": {("cycle", "a", "a.nbc", 3), ("cycle", "p", "p.nbc", 3)},
    "initcycle": {("cycle", "x", "x.nbc", 3), ("import-error", "x", "z.nbc", 4),
                  ("import-error", "y", "x.nbc", 6), ("import-error", "z", "y.nbc", 4)},
    "missing": {("missing-module", "app", "app.nbc", 3), ("missing-module", "app", "app.nbc", 4)},
    "badcall": {("missing-function", "app", "app.nbc", 7), ("missing-function", "app", "app.nbc", 9),
                ("missing-function", "app", "app.nbc", 12)},
    "unused": {("unused-import", "app", "app.nbc", 4)},
    "initraise": {("import-error", "boom", "boom.nbc", 5), ("import-error", "uses_boom", "boom.nbc", 5)},
    "diamond": set(),
    "invalid": {("invalid-module", "syntax", "syntax.nbc", 4), ("invalid-module", "underflow", "underflow.nbc", 3)},
}


def keyset(report: ImportReport) -> set[tuple]:
    return {(f.kind, f.module, Path(f.file).name if f.file else None, f.line) for f in report.findings}


@pytest.fixture(scope="module")
def reports() -> dict[str, ImportReport]:
    return {tree: validate_nbc([str(FIXTURES / tree)]) for tree in TREES}


def by_kind(report: ImportReport, kind: str):
    return [f for f in report.findings if f.kind == kind]


@pytest.mark.parametrize("tree", TREES)
def test_each_tree_reports_exactly_its_findings(reports, tree):
    report = reports[tree]
    assert keyset(report) == EXPECTED[tree]
    assert report.tool == "nbc" and report.targets == (str(FIXTURES / tree),)
    assert report.ok == (not any(k[0] != "unused-import" for k in EXPECTED[tree]))


def test_cycles_one_finding_per_component_with_a_closed_path(reports):
    report = reports["cycles"]
    abc, pqr = sorted(by_kind(report, "cycle"), key=lambda f: f.module)
    assert abc.message == "import cycle between 3 modules: a, b, c"
    # a concrete path that is a real cycle of the graph, closed by the import it points at
    assert abc.detail[0] == abc.detail[-1] and set(abc.detail) == {"a", "b", "c"} and len(abc.detail) == 4
    assert abc.detail[-2:] == ("a", "b") and (abc.line, abc.col) == (3, 9)  # a.nbc:3 is `.import b`
    assert "cut the import of b in a (a.nbc:3)" in abc.suggestion
    # p <-> q and p -> q -> r -> p: nested cycles, one component, one finding
    assert pqr.message == "import cycle between 3 modules: p, q, r"
    assert pqr.detail in (("q", "p", "q"), ("p", "q", "p"))
    assert "init" not in abc.message and "init" not in pqr.message
    assert sorted(map(tuple, report.cycles)) == sorted([abc.detail, pqr.detail])
    # plain reference cycles load fine: imports are lazy
    assert all(m.ok for m in report.modules) and len(report.modules) == 7


def test_cycle_through_init_functions_is_marked(reports):
    report = reports["initcycle"]
    (cycle,) = by_kind(report, "cycle")
    assert "runs through init functions" in cycle.message
    assert "x.init -> y.init -> z.init -> x.g" in cycle.message
    assert cycle.suggestion.startswith("z.init calls x.g while x is still initialising")
    errors = {f.module: f for f in by_kind(report, "import-error")}
    assert errors["x"].message == ("ImportError: import cycle during initialisation: x -> y -> z -> x "
                                   "(raised in z.init)")
    assert errors["x"].detail[0].startswith("x.init (") and errors["x"].detail[-1].startswith("z.init (")
    assert not any(m.ok for m in report.modules)


def test_missing_module_did_you_mean_and_location(reports):
    mathz, utils = sorted(by_kind(reports["missing"], "missing-module"), key=lambda f: f.line)
    assert mathz.message == "app imports mathz, which was not found (did you mean 'math'?)"
    assert (mathz.line, mathz.col) == (3, 9)
    assert mathz.suggestion.startswith("change `.import mathz` to `.import math`")
    assert utils.message.endswith("(did you mean 'util'?)")


def test_missing_function_and_arity(reports):
    nope, add, sqrt = sorted(by_kind(reports["badcall"], "missing-function"), key=lambda f: f.line)
    assert nope.message == "app.main calls lib.nope, but module lib has no function 'nope' (did you mean 'note'?)"
    assert (nope.line, nope.col) == (7, 10)
    assert add.message == "app.main calls lib.add with 1 argument(s), but it takes 2"
    assert sqrt.message == "app.main calls math.sqrt with 2 argument(s), but it takes 1"  # natives too


def test_unused_import_is_a_warning(reports):
    report = reports["unused"]
    (f,) = report.findings
    assert (f.severity, f.message, f.line) == ("warning", "app imports math but never calls into it", 4)
    assert report.ok


def test_init_that_raises(reports):
    report = reports["initraise"]
    errors = {f.module: f for f in by_kind(report, "import-error")}
    assert errors["boom"].message == "UserError: boom at init"
    assert errors["uses_boom"].message == "UserError: boom at init (raised in boom.init)"
    assert {m.name: m.ok for m in report.modules} == {"boom": False, "uses_boom": False, "fine": True}
    assert {m.name: m.error for m in report.modules}["boom"] == "UserError: boom at init"


def test_diamond_is_clean_and_timed(reports):
    report = reports["diamond"]
    assert report.ok and not report.findings and not report.cycles
    assert sorted(m.name for m in report.modules) == ["base", "left", "right", "top"]
    assert all(m.ok and m.seconds > 0 and m.file.endswith(".nbc") for m in report.modules)


def test_invalid_modules_have_positions(reports):
    syntax, underflow = sorted(by_kind(reports["invalid"], "invalid-module"), key=lambda f: f.module)
    assert syntax.message == "syntax error: unknown instruction 'addd' (did you mean 'add'?)"
    assert (syntax.line, syntax.col) == (4, 5)
    assert underflow.message.startswith("verify error: in function 'main' at pc 0 (pop): stack underflow")
    assert {m.name: m.ok for m in reports["invalid"].modules} == {"ok": True, "syntax": False, "underflow": False}


# --------------------------------------------------------------------------- every format


@pytest.fixture(scope="module")
def combined(reports) -> ImportReport:
    return ImportReport.merge(reports[t] for t in TREES)


def test_json_format(combined):
    d = json.loads(render_ci(combined, "json"))
    got = {(f["kind"], f["module"], Path(f["file"]).name, f["line"]) for f in d["findings"]}
    assert got == set().union(*EXPECTED.values())
    assert d["summary"]["cycles"] == 3 and d["ok"] is False


def test_junit_format(combined):
    root = ET.fromstring(render_ci(combined, "junit"))
    failures = {(tc.get("name"), fl.get("type")) for tc in root.iter("testcase") for fl in tc.iter("failure")}
    assert ("boom", "import-error") in failures and ("syntax", "invalid-module") in failures
    assert any(name.startswith("cycle: ") and kind == "cycle" for name, kind in failures)
    # warnings do not fail a test case
    assert ("app", "unused-import") not in failures
    assert "warning [unused-import]" in "".join(e.text or "" for e in root.iter("system-out"))


def test_github_format(combined):
    lines = render_ci(combined, "github").splitlines()
    assert len(lines) == len(combined.findings)
    mathz = next(x for x in lines if "mathz" in x)
    assert mathz.startswith("::error file=") and "missing/app.nbc,line=3,col=9,title=missing-module in app::" in mathz
    assert any(x.startswith("::warning ") and "unused-import" in x for x in lines)


def test_sarif_format(combined):
    doc = json.loads(render_ci(combined, "sarif"))
    results = doc["runs"][0]["results"]
    rules = {r["id"] for r in doc["runs"][0]["tool"]["driver"]["rules"]}
    assert {"cycle", "missing-module", "missing-function", "unused-import", "import-error",
            "invalid-module"} <= rules
    nope = next(r for r in results if "lib.nope" in r["message"]["text"])
    region = nope["locations"][0]["physicalLocation"]["region"]
    assert (nope["level"], region["startLine"], region["startColumn"]) == ("error", 7, 10)


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_renders_after_a_baseline(combined, tmp_path, fmt):
    write_baseline(combined, tmp_path / "b.json")
    quiet = apply_baseline(combined, tmp_path / "b.json")
    assert quiet.ok and not quiet.findings and quiet.baseline_suppressed == len(combined.findings)
    text = render_ci(quiet, fmt)
    if fmt == "github":
        assert text == ""  # no annotations at all
    else:  # still well-formed, with nothing failing
        assert "unused-import" not in text and "invalid-module" not in text


# --------------------------------------------------------------------------- baselines


def test_baseline_ratchet_on_a_changing_tree(tmp_path):
    tree = tmp_path / "tree"
    shutil.copytree(FIXTURES / "badcall", tree)
    first = validate_nbc([str(tree)])
    write_baseline(first, tmp_path / "baseline.json")
    assert apply_baseline(first, tmp_path / "baseline.json").ok
    # moving code and a new checkout path do not resurrect baselined findings
    moved = tmp_path / "elsewhere"
    shutil.copytree(tree, moved)
    app = moved / "app.nbc"
    app.write_text("; a new first line\n" + app.read_text())
    assert apply_baseline(validate_nbc([str(moved)]), tmp_path / "baseline.json").ok
    # a new problem fails; a fixed one leaves a stale entry
    (tree / "lib.nbc").write_text((tree / "lib.nbc").read_text().replace(".func note x", ".func nope x"))
    (tree / "extra.nbc").write_text(".module extra\n.import nowhere\n.func f\n    push 0\n    ret\n.end\n")
    after = apply_baseline(validate_nbc([str(tree)]), tmp_path / "baseline.json")
    assert [(f.kind, f.module) for f in after.findings] == [("missing-module", "extra")]  # not also "unused"
    assert not after.ok
    assert len(after.stale_baseline) == 1 and "lib.nope" in after.stale_baseline[0]


def test_driver_write_baseline_passes_then_baseline_applies(tmp_path):
    base = tmp_path / "b.json"
    cfg = ValidateConfig(paths=(str(FIXTURES / "initraise"),), write_baseline=str(base))
    wrote = validate_imports(cfg)
    assert wrote.ok and wrote.baseline_suppressed == 2 and base.exists()
    again = validate_imports(ValidateConfig(paths=(str(FIXTURES / "initraise"),), baseline=str(base)))
    assert again.ok and not again.findings and not again.stale_baseline
    with pytest.raises(ValueError, match="baseline file not found"):
        validate_imports(ValidateConfig(paths=(str(FIXTURES / "diamond"),), baseline=str(tmp_path / "no.json")))


# --------------------------------------------------------------------------- resolution details


def test_search_path_and_nbcpath_resolve_dependencies(tmp_path, monkeypatch):
    app_dir, lib_dir = tmp_path / "app", tmp_path / "lib"
    app_dir.mkdir(), lib_dir.mkdir()
    (app_dir / "app.nbc").write_text(".module app\n.import lib\n.func main\n    call lib.f 0\n    call lib.g 0\n"
                                     "    add\n    ret\n.end\n")
    (lib_dir / "lib.nbc").write_text(".module lib\n.import math\n.func f\n    push 1\n    ret\n.end\n")
    monkeypatch.delenv("NBCPATH", raising=False)
    alone = validate_nbc([str(app_dir)])
    assert [f.kind for f in alone.findings] == ["missing-module"]
    assert "--path" in alone.findings[0].suggestion
    for report in (validate_nbc([str(app_dir)], search_path=[str(lib_dir)]),
                   (monkeypatch.setenv("NBCPATH", str(lib_dir)), validate_nbc([str(app_dir)]))[1]):
        # lib is a dependency: calls into it are checked, but it is not linted or listed itself
        assert [(f.kind, f.message) for f in report.findings] == [
            ("missing-function", "app.main calls lib.g, but module lib has no function 'g'")]
        assert [m.name for m in report.modules] == ["app"] and report.modules[0].ok


def test_binary_modules_and_dotted_names(tmp_path):
    (tmp_path / "pkg").mkdir()
    util = assemble(".module pkg.util\n.func twice x\n    load x\n    push 2\n    mul\n    ret\n.end\n", "util.nbc")
    (tmp_path / "pkg" / "util.nbcb").write_bytes(encode(util))
    (tmp_path / "main.nbc").write_text(".module main\n.import pkg.util\n.func main\n    push 1\n"
                                       "    call pkg.util.twice 1\n    ret\n.end\n")
    report = validate_nbc([str(tmp_path)])
    assert report.ok and not report.findings
    assert sorted(m.name for m in report.modules) == ["main", "pkg.util"]
    (tmp_path / "main.nbc").write_text(".module main\n.import pkg.util\n.func main\n"
                                       "    call pkg.util.twice 0\n    ret\n.end\n")
    (f,) = validate_nbc([str(tmp_path)]).findings
    assert f.kind == "missing-function" and f.message.endswith("with 0 argument(s), but it takes 1")


def test_misnamed_file_is_explained(tmp_path):
    (tmp_path / "app.nbc").write_text(".module app\n.import helpers\n.func main\n    call helpers.f 0\n"
                                      "    ret\n.end\n")
    (tmp_path / "helper_fns.nbc").write_text(".module helpers\n.func f\n    push 0\n    ret\n.end\n")
    (f,) = validate_nbc([str(tmp_path)]).findings
    assert f.kind == "missing-module" and "helper_fns.nbc declares .module helpers" in f.suggestion


def test_limits_and_halt_in_init(tmp_path):
    (tmp_path / "spin.nbc").write_text(".module spin\n.func init\nloop:\n    jmp loop\n.end\n")
    (tmp_path / "stop.nbc").write_text(".module stop\n.func init\n    push 3\n    halt\n.end\n")
    errors = {f.module: f for f in validate_nbc([str(tmp_path)]).findings}
    # fuel (5M steps) or, on a loaded machine, the 5 s deadline: either way a limit, not a hang
    assert errors["spin"].message.startswith("LimitExceeded: ")
    assert errors["spin"].line == 4
    assert errors["stop"].message == "init halts the program (exit code 3) while the module loads"


def test_progress_and_bad_paths(tmp_path):
    calls = []
    validate_nbc([str(FIXTURES / "diamond")], progress=lambda d, t, m: calls.append((d, t)))
    assert calls[-1] == (8, 8) and [d for d, _ in calls] == list(range(1, 9))
    with pytest.raises(ValueError, match="no such file or directory"):
        validate_nbc([str(tmp_path / "nope")])
    with pytest.raises(ValueError, match="no .nbc or .nbcb files"):
        validate_nbc([str(tmp_path)])
