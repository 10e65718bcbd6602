"""Findings model: fingerprints, report aggregation, merging and baselines."""

from __future__ import annotations

import json

import pytest

from nbcvm.tools.findings import (
    BASELINE_VERSION,
    Finding,
    ImportReport,
    ModuleStatus,
    apply_baseline,
    load_baseline,
    merge,
    normalise_message,
    write_baseline,
)


def finding(kind="import-error", severity="error", module="pkg.a", message="RuntimeError: boom", **kw):
    return Finding(kind=kind, severity=severity, module=module, message=message, **kw)


def report(*findings, tool="python", modules=(), cycles=()):
    return ImportReport(
        tool=tool,
        targets=("pkg",),
        modules=tuple(modules),
        findings=tuple(findings),
        cycles=tuple(cycles),
        seconds=0.25,
    )


# --------------------------------------------------------------------------- fingerprints


def test_fingerprint_ignores_location_suggestion_and_detail():
    a = finding(file="/a/pkg/a.py", line=3, col=1, suggestion="x", detail=("a",))
    b = finding(file="/elsewhere/pkg/a.py", line=30, col=9, suggestion="y", detail=("b", "c"))
    assert a.fingerprint == b.fingerprint


def test_fingerprint_distinguishes_kind_module_and_message():
    base = finding()
    assert finding(kind="timeout").fingerprint != base.fingerprint
    assert finding(module="pkg.b").fingerprint != base.fingerprint
    assert finding(message="RuntimeError: other").fingerprint != base.fingerprint


@pytest.mark.parametrize(
    ("one", "other"),
    [
        (
            "cannot import name 'x' from 'pkg' (/home/ci/checkout/pkg/__init__.py)",
            "cannot import name 'x' from 'pkg' (/tmp/work/pkg/__init__.py)",
        ),
        ("import of pkg.a did not finish within 30s", "import of pkg.a did not finish within 5.5s"),
        ("took 0.53 seconds", "took 12 ms"),
        ("invalid syntax (bad.py, line 3)", "invalid syntax (bad.py, line 14)"),
        ("<object at 0x7f3a12>", "<object at 0xdeadbeef>"),
        ("failed at /a/b/c.py:12", "failed at /x/c.py:99"),
        (r"C:\build\pkg\a.py broke", "/srv/pkg/a.py broke"),
    ],
)
def test_normalisation_removes_run_specific_parts(one, other):
    assert normalise_message(one) == normalise_message(other)


def test_normalisation_keeps_meaningful_text():
    assert normalise_message("ratio 1/2 and a / b") == "ratio 1/2 and a / b"
    assert normalise_message("No module named 'pkg.missing'") == "No module named 'pkg.missing'"
    # The file name survives: a different file is a different problem.
    assert normalise_message("/x/a.py") != normalise_message("/x/b.py")


def test_invalid_severity_rejected():
    with pytest.raises(ValueError):
        finding(severity="fatal")


def test_finding_to_dict_round_trips_through_json():
    f = finding(file="f.py", line=2, col=3, suggestion="fix", detail=("a", "b"))
    d = json.loads(json.dumps(f.to_dict()))
    assert d["detail"] == ["a", "b"]
    assert d["fingerprint"] == f.fingerprint
    assert {k: d[k] for k in ("kind", "severity", "module", "message", "file", "line", "col")} == {
        "kind": "import-error", "severity": "error", "module": "pkg.a",
        "message": "RuntimeError: boom", "file": "f.py", "line": 2, "col": 3,
    }


# --------------------------------------------------------------------------- reports


def test_ok_only_fails_on_errors():
    assert report().ok
    assert report(finding(severity="warning")).ok
    assert not report(finding(severity="warning"), finding()).ok


def test_report_to_dict_summary():
    mods = (ModuleStatus("pkg", "p/__init__.py", True, 0.1), ModuleStatus("pkg.a", "p/a.py", False, 0.2, "boom"))
    r = report(finding(), finding(kind="cycle", severity="warning"), modules=mods, cycles=[("a", "b", "a")])
    d = json.loads(json.dumps(r.to_dict()))
    assert d["ok"] is False
    assert d["summary"] == {
        "modules": 2, "modules_failed": 1, "errors": 1, "warnings": 1, "cycles": 1,
        "baseline_suppressed": 0, "stale_baseline": 0,
    }
    assert d["cycles"] == [["a", "b", "a"]]
    assert d["modules"][1] == {"name": "pkg.a", "file": "p/a.py", "ok": False, "seconds": 0.2, "error": "boom"}


def test_merge_combines_reports():
    a = report(finding(), tool="nbc", modules=[ModuleStatus("m", None, True, 0.1)], cycles=[("x", "x")])
    b = report(finding(module="pkg.b"), tool="python")
    merged = ImportReport.merge([a, b])
    assert merged.tool == "nbc+python"
    assert merged.targets == ("pkg", "pkg")
    assert len(merged.findings) == 2 and len(merged.modules) == 1
    assert merged.cycles == (("x", "x"),)
    assert merged.seconds == pytest.approx(0.5)
    assert merge([a]).tool == "nbc"
    with pytest.raises(ValueError):
        merge([])


# --------------------------------------------------------------------------- baselines


def test_baseline_suppresses_known_findings(tmp_path):
    old = report(finding(), finding(kind="cycle", module="pkg.b", message="import cycle between 2 modules: pkg.b, pkg.c"))
    path = tmp_path / "baseline.json"
    write_baseline(old, path)
    data = json.loads(path.read_text())
    assert data["version"] == BASELINE_VERSION
    assert data["fingerprints"] == sorted(f.fingerprint for f in old.findings)

    # Same problems at other lines/paths plus one new problem.
    new_problem = finding(module="pkg.new")
    current = report(
        finding(file="/elsewhere/a.py", line=99),
        finding(kind="cycle", module="pkg.b", message="import cycle between 2 modules: pkg.b, pkg.c", line=7),
        new_problem,
    )
    filtered = apply_baseline(current, path)
    assert filtered.findings == (new_problem,)
    assert filtered.baseline_suppressed == 2
    assert filtered.stale_baseline == ()
    assert not filtered.ok


def test_baseline_reports_stale_entries(tmp_path):
    path = tmp_path / "baseline.json"
    gone = finding(module="pkg.fixed")
    write_baseline(report(finding(), gone), path)
    filtered = apply_baseline(report(finding()), path)
    assert filtered.findings == ()
    assert filtered.ok
    assert filtered.baseline_suppressed == 1
    assert filtered.stale_baseline == (gone.fingerprint,)
    assert filtered.to_dict()["stale_baseline"] == [gone.fingerprint]


def test_baseline_suppresses_duplicates_of_one_fingerprint(tmp_path):
    path = tmp_path / "baseline.json"
    write_baseline(report(finding()), path)
    filtered = apply_baseline(report(finding(line=1), finding(line=2)), path)
    assert filtered.findings == () and filtered.baseline_suppressed == 2


def test_baseline_file_is_sorted_and_deduplicated(tmp_path):
    path = tmp_path / "b.json"
    write_baseline(report(finding(module="z"), finding(module="a"), finding(module="a")), path)
    entries = json.loads(path.read_text())["fingerprints"]
    assert entries == sorted(set(entries)) and len(entries) == 2


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        "[]",
        json.dumps({"fingerprints": []}),
        json.dumps({"version": 99, "fingerprints": []}),
        json.dumps({"version": BASELINE_VERSION, "fingerprints": "abc"}),
        json.dumps({"version": BASELINE_VERSION, "fingerprints": [1, 2]}),
        json.dumps({"version": BASELINE_VERSION}),
    ],
)
def test_malformed_baseline_raises_one_line_value_error(tmp_path, content):
    path = tmp_path / "baseline.json"
    path.write_text(content)
    with pytest.raises(ValueError) as info:
        apply_baseline(report(finding()), path)
    message = str(info.value)
    assert "\n" not in message
    assert "baseline" in message and str(path) in message


def test_missing_baseline_raises_value_error(tmp_path):
    with pytest.raises(ValueError, match="not found"):
        load_baseline(tmp_path / "nope.json")


def test_binary_baseline_raises_value_error(tmp_path):
    path = tmp_path / "baseline.json"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ValueError):
        load_baseline(path)
