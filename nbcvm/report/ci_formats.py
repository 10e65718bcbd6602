"""Machine-readable renderings of an :class:`ImportReport` for CI systems.

Each format is a pure function of the report, built with the standard library
only (no rich: these outputs are parsed by machines, not looked at):

* ``json``   - ``report.to_dict()`` with sorted keys, for scripts.
* ``junit``  - one ``<testsuite>``; a ``<testcase>`` per module checked with a
  ``<failure>`` per error, plus a ``<testcase>`` per cycle.  JUnit has no
  notion of warnings, so they go to ``<system-out>`` and do not fail the case.
* ``github`` - GitHub Actions workflow commands (``::error file=…::msg``), which
  the runner turns into annotations on the pull request.
* ``sarif``  - SARIF 2.1.0 for code-scanning dashboards.

Paths under the current directory are written relative to it, because both
GitHub annotations and SARIF consumers resolve them against the checkout root.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path, PurePath
from typing import Any

from nbcvm.report import CI_FORMATS
from nbcvm.tools.findings import Finding, ImportReport

FORMATS = CI_FORMATS

TOOL_NAME = "nbcvm validate-imports"
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_VERSION = "2.1.0"

# One line per known kind, used for SARIF rule descriptions; unknown kinds
# (new checks) still get a rule, with a generic description.
RULE_DESCRIPTIONS = {
    "cycle": "Modules import each other in a cycle at import time.",
    "package-cycle": "Packages depend on each other in a cycle.",
    "import-error": "Importing the module raises an exception.",
    "missing-module": "An import refers to a module that does not exist.",
    "unused-import": "A module is imported but never used.",
    "timeout": "Importing the module did not finish within the time limit.",
    "forbidden-import": "A module imports something it is not allowed to depend on.",
    "static-analysis": "Static analysis of the imports could not run completely.",
}


def render_ci(report: ImportReport, fmt: str) -> str:
    """Render the report in one of :data:`FORMATS`; unknown formats raise ValueError."""
    try:
        renderer = _RENDERERS[fmt]
    except KeyError:
        raise ValueError(f"unknown CI format {fmt!r}; choose one of {', '.join(FORMATS)}") from None
    return renderer(report)


# --------------------------------------------------------------------------- helpers


def display_path(file: str) -> str:
    """Relative POSIX path when the file is under the current directory, else unchanged."""
    try:
        rel = os.path.relpath(file)
    except ValueError:  # another drive on Windows
        return file
    if rel == os.pardir or rel.startswith(os.pardir + os.sep) or os.path.isabs(rel):
        return file
    return PurePath(rel).as_posix()


def _full_message(f: Finding) -> str:
    parts = [f.message]
    if f.kind in ("cycle", "package-cycle") and f.detail:
        parts.append("cycle: " + " -> ".join(f.detail))
    elif f.detail:
        parts.append("traceback: " + " <- ".join(reversed(f.detail)))
    if f.suggestion:
        parts.append("suggestion: " + f.suggestion)
    return "\n".join(parts)


# --------------------------------------------------------------------------- json


def render_json(report: ImportReport) -> str:
    return json.dumps(report.to_dict(), indent=2, sort_keys=True)


# --------------------------------------------------------------------------- junit

# XML 1.0 cannot carry most control characters at all, not even escaped; an
# exception message containing one must not make the whole file unreadable.
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _x(text: object) -> str:
    return _XML_INVALID.sub("\ufffd", str(text))


def render_junit(report: ImportReport) -> str:
    by_module: dict[str, list[Finding]] = {}
    cycle_findings: list[Finding] = []
    for f in report.findings:
        if f.kind in ("cycle", "package-cycle"):
            cycle_findings.append(f)
        else:
            by_module.setdefault(f.module, []).append(f)

    suite_name = f"{TOOL_NAME} ({report.tool})"
    cases: list[ET.Element] = []

    def case(name: str, classname: str, seconds: float, findings: list[Finding], file: str | None) -> None:
        tc = ET.Element("testcase", name=_x(name), classname=_x(classname), time=f"{seconds:.6f}")
        if file:
            tc.set("file", _x(display_path(file)))
        notes = []
        for f in findings:
            if f.severity == "error":
                failure = ET.SubElement(
                    tc, "failure", message=_x(f.message), type=_x(f.kind)
                )
                where = f"{display_path(f.file)}:{f.line}" if f.file and f.line else None
                failure.text = _x("\n".join(filter(None, [where, _full_message(f)])))
            else:
                notes.append(f"warning [{f.kind}] {_full_message(f)}")
        if notes:
            ET.SubElement(tc, "system-out").text = _x("\n".join(notes))
        cases.append(tc)

    checked = set()
    for m in report.modules:
        checked.add(m.name)
        case(m.name, f"{report.tool}.{m.name.rpartition('.')[0] or m.name}", m.seconds,
             by_module.get(m.name, []), m.file)
    # Findings about modules that were not import-checked still need a home.
    for module in sorted(set(by_module) - checked):
        case(module, f"{report.tool}.unchecked", 0.0, by_module[module], by_module[module][0].file)
    for f in cycle_findings:
        case(f"{f.kind}: {' -> '.join(f.detail) or f.module}", f"{report.tool}.cycles", 0.0, [f], f.file)

    failures = sum(1 for tc in cases if tc.find("failure") is not None)
    suite = ET.Element(
        "testsuite",
        name=_x(suite_name),
        tests=str(len(cases)),
        failures=str(failures),
        errors="0",
        skipped="0",
        time=f"{report.seconds:.6f}",
    )
    props = ET.SubElement(suite, "properties")
    for key, value in (
        ("targets", " ".join(report.targets)),
        ("baseline_suppressed", report.baseline_suppressed),
        ("stale_baseline", len(report.stale_baseline)),
    ):
        ET.SubElement(props, "property", name=key, value=_x(value))
    suite.extend(cases)
    if report.stale_baseline:
        ET.SubElement(suite, "system-out").text = _x(
            "stale baseline entries (no longer found):\n" + "\n".join(report.stale_baseline)
        )
    root = ET.Element(
        "testsuites", name=_x(TOOL_NAME), tests=suite.get("tests", "0"),
        failures=str(failures), errors="0", time=f"{report.seconds:.6f}",
    )
    root.append(suite)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True)


# --------------------------------------------------------------------------- github


def escape_github_data(text: str) -> str:
    """Escape a workflow-command message (as @actions/core's escapeData does)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_github_property(text: str) -> str:
    """Escape a workflow-command property value (escapeProperty: also ':' and ',')."""
    return escape_github_data(text).replace(":", "%3A").replace(",", "%2C")


def _github_command(command: str, props: dict[str, Any], message: str) -> str:
    rendered = ",".join(
        f"{key}={escape_github_property(str(value))}" for key, value in props.items() if value is not None
    )
    return f"::{command}{' ' + rendered if rendered else ''}::{escape_github_data(message)}"


def render_github(report: ImportReport) -> str:
    lines = []
    for f in report.findings:
        props: dict[str, Any] = {}
        if f.file:
            props["file"] = display_path(f.file)
            if f.line:
                props["line"] = f.line
                if f.col:
                    props["col"] = f.col
        props["title"] = f"{f.kind} in {f.module}"
        lines.append(_github_command(f.severity, props, _full_message(f)))
    for entry in report.stale_baseline:
        lines.append(_github_command(
            "notice", {"title": "stale baseline entry"},
            f"baseline entry no longer matches any finding and can be removed: {entry}",
        ))
    return "\n".join(lines) + ("\n" if lines else "")


# --------------------------------------------------------------------------- sarif


def _rule_name(kind: str) -> str:
    return "".join(part.capitalize() for part in re.split(r"[^A-Za-z0-9]+", kind) if part)


def _artifact_uri(file: str) -> str:
    shown = display_path(file)
    if os.path.isabs(shown):
        return Path(shown).as_uri()
    return shown


def render_sarif(report: ImportReport) -> str:
    kinds = sorted({f.kind for f in report.findings})
    rule_index = {kind: i for i, kind in enumerate(kinds)}
    rules = []
    for kind in kinds:
        severities = {f.severity for f in report.findings if f.kind == kind}
        rules.append({
            "id": kind,
            "name": _rule_name(kind),
            "shortDescription": {"text": RULE_DESCRIPTIONS.get(kind, f"validate-imports finding: {kind}")},
            "defaultConfiguration": {"level": "error" if "error" in severities else "warning"},
        })
    results = []
    for f in report.findings:
        result: dict[str, Any] = {
            "ruleId": f.kind,
            "ruleIndex": rule_index[f.kind],
            "level": f.severity,
            "message": {"text": _full_message(f)},
            # Lets code-scanning services track a finding across commits,
            # consistent with the baseline identity.
            "partialFingerprints": {
                "nbcvmFingerprint/v1": hashlib.sha256(f.fingerprint.encode()).hexdigest()
            },
            "properties": {"module": f.module},
        }
        if f.detail:
            result["properties"]["detail"] = list(f.detail)
        if f.suggestion:
            result["properties"]["suggestion"] = f.suggestion
        if f.file:
            location: dict[str, Any] = {"artifactLocation": {"uri": _artifact_uri(f.file)}}
            if f.line:
                region: dict[str, int] = {"startLine": f.line}
                if f.col:
                    region["startColumn"] = f.col
                location["region"] = region
            result["locations"] = [{"physicalLocation": location}]
        results.append(result)
    doc = {
        "$schema": SARIF_SCHEMA,
        "version": SARIF_VERSION,
        "runs": [{
            "tool": {"driver": {"name": TOOL_NAME, "rules": rules}},
            "results": results,
            "invocations": [{
                "executionSuccessful": True,
                "properties": {
                    "targets": list(report.targets),
                    "modulesChecked": len(report.modules),
                    "baselineSuppressed": report.baseline_suppressed,
                    "staleBaseline": list(report.stale_baseline),
                },
            }],
        }],
    }
    return json.dumps(doc, indent=2, sort_keys=True)


_RENDERERS: dict[str, Callable[[ImportReport], str]] = {
    "json": render_json,
    "junit": render_junit,
    "github": render_github,
    "sarif": render_sarif,
}

__all__ = [
    "FORMATS",
    "RULE_DESCRIPTIONS",
    "display_path",
    "escape_github_data",
    "escape_github_property",
    "render_ci",
    "render_github",
    "render_json",
    "render_junit",
    "render_sarif",
]
