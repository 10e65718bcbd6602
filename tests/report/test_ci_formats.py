"""CI renderings (json, junit, github, sarif) of real and hand-made reports."""

from __future__ import annotations

import json
import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from nbcvm.report.ci_formats import (
    FORMATS,
    escape_github_data,
    escape_github_property,
    render_ci,
)
from nbcvm.tools.findings import Finding, ImportReport, ModuleStatus, apply_baseline, write_baseline
from nbcvm.tools.pyimports import validate_python

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "pypkgs"
PACKAGES = ("cyclepkg", "raisepkg", "relpkg", "subpkg", "cleanpkg")

# What each fixture package must show in every format: (kind, module) pairs.
EXPECTED = {
    "cyclepkg": {("cycle", "cyclepkg.a")},
    "raisepkg": {("import-error", "raisepkg.boom"), ("import-error", "raisepkg.uses_boom")},
    "relpkg": {
        ("import-error", "relpkg.bad_name"),
        ("missing-module", "relpkg.bad_module"),
        ("missing-module", "relpkg.good"),
    },
    "subpkg": {("missing-module", "subpkg.user")},
    "cleanpkg": set(),
}


@pytest.fixture(scope="module")
def real_report(tmp_path_factory) -> ImportReport:
    root = tmp_path_factory.mktemp("pypkgs")
    for name in PACKAGES:
        shutil.copytree(FIXTURES / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    return validate_python([str(root / name) for name in PACKAGES], timeout=20)


def tricky_report() -> ImportReport:
    """Characters that each format has to escape, and findings without locations."""
    findings = (
        Finding(
            "import-error", "error", "pkg.odd",
            "ValueError: 100% broken,\r\nsecond line: with colon\x00and NUL",
            "/tmp/odd dir/a,b:c.py", 7, 2, "fix it, please: now", ("/tmp/x.py:1",),
        ),
        Finding("cycle", "error", "pkg.a", "import cycle between 2 modules: pkg.a, pkg.b",
                "/tmp/pkg/b.py", 3, None, "cut it", ("pkg.a", "pkg.b", "pkg.a")),
        Finding("unused-import", "warning", "pkg.b", "os imported but unused", None, None, None),
        Finding("forbidden-import", "error", "pkg.unchecked", "imports forbidden thing", None, None, None),
    )
    modules = (
        ModuleStatus("pkg.odd", "/tmp/odd dir/a,b:c.py", False, 0.5, "ValueError"),
        ModuleStatus("pkg.a", "/tmp/pkg/a.py", True, 0.01),
        ModuleStatus("pkg.b", "/tmp/pkg/b.py", True, 0.02),
    )
    return ImportReport("nbc", ("pkg",), modules, findings, (("pkg.a", "pkg.b", "pkg.a"),), 1.5,
                        baseline_suppressed=2, stale_baseline=("timeout::pkg.c::gone",))


def kinds_modules(report, package):
    return {(f.kind, f.module) for f in report.findings if f.module.split(".")[0] == package}


def test_unknown_format():
    with pytest.raises(ValueError, match="junit"):
        render_ci(tricky_report(), "yaml")


def test_real_report_has_expected_findings(real_report):
    for package, expected in EXPECTED.items():
        assert kinds_modules(real_report, package) == expected, package


# --------------------------------------------------------------------------- json


@pytest.mark.parametrize("package", PACKAGES)
def test_json(real_report, package):
    text = render_ci(real_report, "json")
    data = json.loads(text)
    assert text == json.dumps(data, indent=2, sort_keys=True)
    assert data["tool"] == "python" and data["ok"] is False
    got = {(f["kind"], f["module"]) for f in data["findings"] if f["module"].split(".")[0] == package}
    assert got == EXPECTED[package]
    assert any(m["name"] == package for m in data["modules"])


def test_json_tricky():
    data = json.loads(render_ci(tricky_report(), "json"))
    assert data["findings"][0]["message"].startswith("ValueError: 100% broken,\r\n")
    assert data["stale_baseline"] == ["timeout::pkg.c::gone"]
    assert data["summary"]["baseline_suppressed"] == 2


# --------------------------------------------------------------------------- junit


def junit_cases(text):
    root = ET.fromstring(text)
    assert root.tag == "testsuites"
    (suite,) = root.findall("testsuite")
    return suite, suite.findall("testcase")


@pytest.mark.parametrize("package", PACKAGES)
def test_junit(real_report, package):
    suite, cases = junit_cases(render_ci(real_report, "junit"))
    by_name = {c.get("name"): c for c in cases}
    # One testcase per checked module, plus one per cycle.
    assert len(cases) == len(real_report.modules) + len(real_report.cycles)
    assert int(suite.get("tests")) == len(cases)
    assert int(suite.get("failures")) == sum(1 for c in cases if c.find("failure") is not None)
    for kind, module in EXPECTED[package]:
        if kind == "cycle":
            (case,) = [c for c in cases if c.get("name").startswith("cycle: ")]
            assert " -> ".join(real_report.cycles[0]) in case.get("name")
        else:
            case = by_name[module]
        failure = case.find("failure")
        assert failure is not None and failure.get("type") == kind
    failing = {c.get("name") for c in cases if c.find("failure") is not None}
    for m in real_report.modules:
        if m.name.split(".")[0] == package:
            assert (m.name in failing) == any(f.module == m.name for f in real_report.findings if f.kind != "cycle")


def test_junit_tricky():
    text = render_ci(tricky_report(), "junit")
    suite, cases = junit_cases(text)
    names = [c.get("name") for c in cases]
    # modules, then the finding about a module that was not checked, then the cycle
    assert names == ["pkg.odd", "pkg.a", "pkg.b", "pkg.unchecked", "cycle: pkg.a -> pkg.b -> pkg.a"]
    odd = cases[0].find("failure")
    assert "100% broken" in odd.get("message") and "\x00" not in odd.get("message")
    # warnings do not fail a testcase but are kept as output
    assert cases[2].find("failure") is None
    assert "os imported but unused" in cases[2].find("system-out").text
    props = {p.get("name"): p.get("value") for p in suite.find("properties")}
    assert props["baseline_suppressed"] == "2" and props["stale_baseline"] == "1"
    assert suite.get("failures") == "3"


# --------------------------------------------------------------------------- github

COMMAND = re.compile(r"^::(error|warning|notice)(?: ([a-z]+=[^,:]*(?:,[a-z]+=[^,:]*)*))?::(.*)$")


def parse_github(text):
    out = []
    for line in text.splitlines():
        m = COMMAND.match(line)
        assert m, f"not a workflow command: {line!r}"
        props = dict(p.split("=", 1) for p in m.group(2).split(",")) if m.group(2) else {}
        out.append((m.group(1), props, m.group(3)))
    return out


def unescape(text):
    return (text.replace("%0D", "\r").replace("%0A", "\n").replace("%3A", ":")
            .replace("%2C", ",").replace("%25", "%"))


@pytest.mark.parametrize("package", PACKAGES)
def test_github(real_report, package):
    commands = parse_github(render_ci(real_report, "github"))
    assert len(commands) == len(real_report.findings)
    mine = [(c, p, m) for (c, p, m), f in zip(commands, real_report.findings) if f.module.split(".")[0] == package]
    assert len(mine) == len(EXPECTED[package])
    for (command, props, message), f in zip(mine, [f for f in real_report.findings if f.module.split(".")[0] == package]):
        assert command == f.severity
        assert unescape(props["file"]) == f.file
        assert int(props["line"]) == f.line
        assert unescape(props["title"]) == f"{f.kind} in {f.module}"
        assert "\n" not in message and unescape(message).startswith(f.message)


def test_github_escaping():
    assert escape_github_data("a%b\r\nc:d,e") == "a%25b%0D%0Ac:d,e"
    assert escape_github_property("a%b\r\nc:d,e") == "a%25b%0D%0Ac%3Ad%2Ce"
    commands = parse_github(render_ci(tricky_report(), "github"))
    command, props, message = commands[0]
    assert command == "error"
    assert props == {"file": "/tmp/odd dir/a%2Cb%3Ac.py", "line": "7", "col": "2", "title": "import-error in pkg.odd"}
    assert unescape(message).startswith("ValueError: 100% broken,\r\nsecond line: with colon")
    # no location → no file/line properties at all
    assert commands[2][0] == "warning" and set(commands[2][1]) == {"title"}
    # stale baseline entries are surfaced as notices
    assert commands[-1][0] == "notice" and "timeout::pkg.c::gone" in unescape(commands[-1][2])


def test_github_empty_report_is_empty():
    clean = ImportReport("python", ("x",), (), (), (), 0.1)
    assert render_ci(clean, "github") == ""


# --------------------------------------------------------------------------- sarif


def check_sarif_shape(doc):
    assert doc["version"] == "2.1.0"
    assert doc["$schema"].endswith("sarif-2.1.0.json")
    (run,) = doc["runs"]
    driver = run["tool"]["driver"]
    assert driver["name"] == "nbcvm validate-imports"
    rule_ids = [r["id"] for r in driver["rules"]]
    assert len(rule_ids) == len(set(rule_ids))
    for result in run["results"]:
        assert result["ruleId"] in rule_ids
        assert driver["rules"][result["ruleIndex"]]["id"] == result["ruleId"]
        assert result["level"] in ("error", "warning")
        assert result["message"]["text"]
        for loc in result.get("locations", []):
            phys = loc["physicalLocation"]
            assert phys["artifactLocation"]["uri"]
            if "region" in phys:
                assert phys["region"]["startLine"] >= 1
    return run


@pytest.mark.parametrize("package", PACKAGES)
def test_sarif(real_report, package):
    run = check_sarif_shape(json.loads(render_ci(real_report, "sarif")))
    assert {r["id"] for r in run["tool"]["driver"]["rules"]} == {f.kind for f in real_report.findings}
    results = [r for r in run["results"] if r["properties"]["module"].split(".")[0] == package]
    assert {(r["ruleId"], r["properties"]["module"]) for r in results} == EXPECTED[package]
    for r in results:
        f = next(f for f in real_report.findings if f.kind == r["ruleId"] and f.module == r["properties"]["module"])
        region = r["locations"][0]["physicalLocation"]["region"]
        assert region["startLine"] == f.line
        assert r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].endswith(Path(f.file).name)


def test_sarif_tricky():
    run = check_sarif_shape(json.loads(render_ci(tricky_report(), "sarif")))
    results = run["results"]
    assert results[0]["locations"][0]["physicalLocation"]["region"] == {"startLine": 7, "startColumn": 2}
    assert "locations" not in results[2]
    assert results[1]["properties"]["detail"] == ["pkg.a", "pkg.b", "pkg.a"]
    assert {r["id"] for r in run["tool"]["driver"]["rules"]} == {"import-error", "cycle", "unused-import", "forbidden-import"}
    fingerprints = {r["partialFingerprints"]["nbcvmFingerprint/v1"] for r in results}
    assert len(fingerprints) == len(results)


def test_relative_paths_under_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    f = Finding("timeout", "error", "pkg.slow", "slow", str(tmp_path / "pkg" / "slow.py"), None, None)
    r = ImportReport("python", ("pkg",), (), (f,), (), 1.0)
    assert "file=pkg/slow.py" in render_ci(r, "github")
    sarif = json.loads(render_ci(r, "sarif"))
    assert sarif["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "pkg/slow.py"


# --------------------------------------------------------------------------- baseline + formats


@pytest.mark.parametrize("fmt", FORMATS)
def test_baselined_report_renders_clean(real_report, tmp_path, fmt):
    path = tmp_path / "baseline.json"
    write_baseline(real_report, path)
    filtered = apply_baseline(real_report, path)
    assert filtered.ok and filtered.findings == ()
    assert filtered.baseline_suppressed == len(real_report.findings)
    text = render_ci(filtered, fmt)
    if fmt == "json":
        assert json.loads(text)["baseline_suppressed"] == len(real_report.findings)
    elif fmt == "junit":
        suite, _ = junit_cases(text)
        assert suite.get("failures") == "0"
    elif fmt == "github":
        assert text == ""
    else:
        assert check_sarif_shape(json.loads(text))["results"] == []
