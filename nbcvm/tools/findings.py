"""Findings model shared by both halves of ``nbcvm validate-imports``.

A check (the NBC module checker or the Python package checker) produces an
:class:`ImportReport`: the modules it looked at (:class:`ModuleStatus`), the
problems it found (:class:`Finding`) and the import cycles it detected.
Reports are immutable so that renderers and baseline filtering can never
disturb each other; "changing" a report means building a new one.

Baselines let CI adopt the checker on a codebase with known problems: the
fingerprints of today's findings are written to a JSON file, and later runs
drop findings whose fingerprint is listed there.  A fingerprint deliberately
leaves out line numbers, timings and absolute paths, so that moving code,
a slow CI machine or a different checkout directory does not resurrect a
baselined finding.

Conventions: ``line`` and ``col`` are 1-based (as editors, GitHub and SARIF
count them); ``severity`` is ``"error"`` or ``"warning"``; only errors make a
report fail.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

SEVERITIES = ("error", "warning")

#: Bumped if the fingerprint recipe changes, so old baselines are rejected
#: loudly instead of silently suppressing nothing.
BASELINE_VERSION = 1


# Absolute POSIX paths (/x/y) and Windows paths (C:\x\y): they differ between
# checkouts and machines, so only the last path component survives.  A slash
# after a word character ("1/2") or before a space ("a / b") is not a path.
_ABS_PATH = re.compile(
    r"(?<![\w.~])(?:[A-Za-z]:[\\/]|/)(?=[^\s\\/'\"])"
    r"(?:[^\s'\"()\[\]{}<>,:;|\\/]+[\\/])*([^\s'\"()\[\]{}<>,:;|\\/]*)"
)
# "0.53s", "12 ms", "30.0 seconds": timings vary from run to run.
_TIMING = re.compile(r"\b\d+(?:\.\d+)?\s*(?:s|ms|us|µs|ns|sec|secs|seconds?)\b")
# Object addresses in reprs ("<object at 0x7f3a...>").
_ADDRESS = re.compile(r"\b0x[0-9a-fA-F]+\b")
# "line 12": code moving up or down must not invalidate a baseline.
_LINE_REF = re.compile(r"\bline \d+\b")
# "mod.py:12" / "mod.nbc:12:5" locations embedded in a message, for the same reason.
_FILE_LINE = re.compile(r"(\.[A-Za-z0-9]+):\d+(?::\d+)?\b")
_SPACES = re.compile(r"\s+")


def normalise_message(message: str) -> str:
    """Strip the run-specific parts of a message (paths, timings, addresses, line numbers)."""
    text = _ABS_PATH.sub(lambda m: "<path>/" + m.group(1), message)
    text = _TIMING.sub("<time>", text)
    text = _ADDRESS.sub("0x?", text)
    text = _LINE_REF.sub("line ?", text)
    text = _FILE_LINE.sub(r"\1:?", text)
    return _SPACES.sub(" ", text).strip()


@dataclass(frozen=True)
class Finding:
    """One problem found by a check, optionally anchored to a source location."""

    kind: str
    severity: str
    module: str
    message: str
    file: str | None = None
    line: int | None = None
    col: int | None = None
    suggestion: str | None = None
    detail: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, got {self.severity!r}")

    @property
    def fingerprint(self) -> str:
        """Stable identity for baselines: kind, module and the normalised message.

        File, line, column, suggestion and detail are left out on purpose:
        they move with unrelated edits while the problem stays the same.
        """
        return f"{self.kind}::{self.module}::{normalise_message(self.message)}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "severity": self.severity,
            "module": self.module,
            "message": self.message,
            "file": self.file,
            "line": self.line,
            "col": self.col,
            "suggestion": self.suggestion,
            "detail": list(self.detail),
            "fingerprint": self.fingerprint,
        }


@dataclass(frozen=True)
class ModuleStatus:
    """Outcome of checking one module: did it import, and how long did it take."""

    name: str
    file: str | None
    ok: bool
    seconds: float
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "file": self.file,
            "ok": self.ok,
            "seconds": round(self.seconds, 6),
            "error": self.error,
        }


@dataclass(frozen=True)
class ImportReport:
    """Everything one run of a checker (or several, merged) found."""

    tool: str
    targets: tuple[str, ...]
    modules: tuple[ModuleStatus, ...]
    findings: tuple[Finding, ...]
    cycles: tuple[tuple[str, ...], ...]
    seconds: float
    baseline_suppressed: int = 0
    stale_baseline: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """True when no error-severity finding remains (warnings do not fail a run)."""
        return not any(f.severity == "error" for f in self.findings)

    @property
    def errors(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == "error")

    @property
    def warnings(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == "warning")

    def to_dict(self) -> dict[str, Any]:
        return {
            "tool": self.tool,
            "targets": list(self.targets),
            "ok": self.ok,
            "seconds": round(self.seconds, 6),
            "summary": {
                "modules": len(self.modules),
                "modules_failed": sum(1 for m in self.modules if not m.ok),
                "errors": len(self.errors),
                "warnings": len(self.warnings),
                "cycles": len(self.cycles),
                "baseline_suppressed": self.baseline_suppressed,
                "stale_baseline": len(self.stale_baseline),
            },
            "modules": [m.to_dict() for m in self.modules],
            "findings": [f.to_dict() for f in self.findings],
            "cycles": [list(c) for c in self.cycles],
            "baseline_suppressed": self.baseline_suppressed,
            "stale_baseline": list(self.stale_baseline),
        }

    @classmethod
    def merge(cls, reports: Iterable[ImportReport]) -> ImportReport:
        """Combine several reports (e.g. the NBC and the Python half) into one.

        Seconds add up because the halves run one after the other.  Baselines
        should be applied to the merged report: a baseline entry that is stale
        for one half may well match a finding of the other, so merging the
        per-report stale lists can only over-approximate (it takes the union).
        """
        reports = list(reports)
        if not reports:
            raise ValueError("merge() needs at least one report")
        tools: list[str] = []
        for r in reports:
            for t in r.tool.split("+"):
                if t not in tools:
                    tools.append(t)
        return cls(
            tool="+".join(tools),
            targets=tuple(t for r in reports for t in r.targets),
            modules=tuple(m for r in reports for m in r.modules),
            findings=tuple(f for r in reports for f in r.findings),
            cycles=tuple(c for r in reports for c in r.cycles),
            seconds=sum(r.seconds for r in reports),
            baseline_suppressed=sum(r.baseline_suppressed for r in reports),
            stale_baseline=tuple(sorted({s for r in reports for s in r.stale_baseline})),
        )


def merge(reports: Iterable[ImportReport]) -> ImportReport:
    """Module-level alias of :meth:`ImportReport.merge`."""
    return ImportReport.merge(reports)


# --------------------------------------------------------------------------- baselines


def write_baseline(report: ImportReport, path: str | os.PathLike[str]) -> None:
    """Write the fingerprints of the report's findings as a baseline file.

    Entries are sorted and de-duplicated so the file diffs cleanly in review.
    """
    data = {
        "version": BASELINE_VERSION,
        "tool": "nbcvm validate-imports",
        "fingerprints": sorted({f.fingerprint for f in report.findings}),
    }
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, sort_keys=True)
        fh.write("\n")


def load_baseline(path: str | os.PathLike[str]) -> frozenset[str]:
    """Read a baseline file; any problem is a one-line :class:`ValueError`."""
    where = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        raise ValueError(f"baseline file not found: {where}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read baseline {where}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"malformed baseline {where}: invalid JSON at line {exc.lineno} column {exc.colno}"
        ) from None
    if not isinstance(data, dict):
        raise ValueError(f"malformed baseline {where}: expected a JSON object")
    version = data.get("version")
    if version != BASELINE_VERSION:
        raise ValueError(
            f"malformed baseline {where}: unsupported version {version!r} "
            f"(expected {BASELINE_VERSION})"
        )
    entries = data.get("fingerprints")
    if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
        raise ValueError(f"malformed baseline {where}: 'fingerprints' must be a list of strings")
    return frozenset(entries)


def apply_baseline(report: ImportReport, path: str | os.PathLike[str]) -> ImportReport:
    """Drop findings listed in the baseline; report baseline entries that no longer occur."""
    known = load_baseline(path)
    kept = tuple(f for f in report.findings if f.fingerprint not in known)
    seen = {f.fingerprint for f in report.findings}
    stale = tuple(sorted(known - seen))
    return replace(
        report,
        findings=kept,
        baseline_suppressed=report.baseline_suppressed + len(report.findings) - len(kept),
        stale_baseline=tuple(sorted(set(report.stale_baseline) | set(stale))),
    )


__all__ = [
    "BASELINE_VERSION",
    "Finding",
    "ImportReport",
    "ModuleStatus",
    "apply_baseline",
    "load_baseline",
    "merge",
    "normalise_message",
    "write_baseline",
]
