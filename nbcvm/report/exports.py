"""Export formats of a ``ProfileReport``: speedscope, collapsed stacks, Chrome trace, JSON.

* ``speedscope`` -- https://www.speedscope.app/file-format-schema.json: one
  "evented" profile per thread (open/close events on shared frames, in
  nanoseconds).
* ``collapsed`` -- Brendan Gregg's folded stacks for flamegraph.pl / inferno:
  one ``main;fib;fib 123`` line per call path, weighted by its *exclusive*
  time in microseconds (rounded up, so every path that ran appears).
* ``chrome`` -- Trace Event Format (chrome://tracing, Perfetto): complete
  ("ph": "X") events with ``ts``/``dur`` in microseconds, ``pid`` and ``tid``,
  plus thread/process name metadata.
* ``json`` -- the complete report (``ProfileReport.to_dict()``).

Timelines: when the run recorded its calls (``--export`` with speedscope or
chrome turns that on) the events are the real calls in time order.  Without
a recording -- or for a thread whose recording was capped -- the timeline is
laid out from the merged call tree (each path once, children side by side,
hottest first), which is exact in durations but not chronological; the file
says which (``otherData.timeline`` / the profile name).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

FORMATS = ("speedscope", "collapsed", "chrome", "json")
SPEEDSCOPE_SCHEMA = "https://www.speedscope.app/file-format-schema.json"


# ---------------------------------------------------------------------------
# Shared: intervals per thread


def _names(report: Any) -> dict[str, str]:
    """qualname -> display name: the short name where it is unambiguous."""
    quals = {f.qualname for f in report.functions}
    for t in report.threads:
        quals.update(n.function for n in t.tree)
    short: dict[str, list[str]] = {}
    for q in quals:
        short.setdefault(q.rpartition(".")[2], []).append(q)
    return {q: (q.rpartition(".")[2] if len(short[q.rpartition(".")[2]]) == 1 else q) for q in quals}


def _tree_intervals(tree: tuple) -> list[tuple[str, str, int, int, int, int]]:
    """(qualname, file, line, start ns, end ns, depth) laid out from a flat call tree (preorder)."""
    cursor: dict[int, int] = {-1: 0}
    bounds: dict[int, tuple[int, int]] = {-1: (0, 1 << 62)}
    out = []
    for n in tree:
        start = cursor[n.parent]
        end = min(start + max(0, round(n.inclusive_s * 1e9)), bounds[n.parent][1])
        cursor[n.parent] = end
        cursor[n.id] = start
        bounds[n.id] = (start, end)
        out.append((n.function, n.file, n.line, start, end, n.depth))
    return out


def thread_intervals(report: Any) -> list[tuple[int, str, bool, list[tuple]]]:
    """Per thread: (ident, name, chronological?, intervals sorted by start then longest first)."""
    recorded = {ident: (name, events) for ident, name, events in report.timeline}
    out = []
    for t in report.threads:
        rec = recorded.get(t.ident)
        if rec is not None and rec[1] and not t.events_truncated:
            iv = [(e.function, e.file, e.line, e.start_ns, e.end_ns, e.depth) for e in rec[1]]
            chrono = True
        else:
            iv = _tree_intervals(t.tree)
            chrono = False
        iv.sort(key=lambda x: (x[3], -x[4], x[5]))
        out.append((t.ident, t.name, chrono, iv))
    return out


# ---------------------------------------------------------------------------
# speedscope


def to_speedscope(report: Any) -> dict:
    names = _names(report)
    frames: list[dict] = []
    index: dict[tuple, int] = {}

    def frame(q: str, file: str, line: int) -> int:
        key = (q, file, line)
        i = index.get(key)
        if i is None:
            i = index[key] = len(frames)
            f: dict = {"name": names.get(q, q), "file": file}
            if line:
                f["line"] = line
            frames.append(f)
        return i

    profiles = []
    for ident, tname, chrono, iv in thread_intervals(report):
        events: list[dict] = []
        open_: list[tuple[int, int]] = []  # (end, frame)
        for q, file, line, start, end, _depth in iv:
            while open_ and open_[-1][0] <= start:
                e, fr = open_.pop()
                events.append({"type": "C", "frame": fr, "at": e})
            fr = frame(q, file, line)
            events.append({"type": "O", "frame": fr, "at": start})
            open_.append((end, fr))
        while open_:
            e, fr = open_.pop()
            events.append({"type": "C", "frame": fr, "at": e})
        start_v = events[0]["at"] if events else 0
        end_v = max((e["at"] for e in events), default=0)
        kind = "" if chrono else " (merged call tree)"
        profiles.append({"type": "evented", "name": f"{Path(report.program).name} [{tname}]{kind}",
                         "unit": "nanoseconds", "startValue": start_v, "endValue": end_v, "events": events})
    return {"$schema": SPEEDSCOPE_SCHEMA, "shared": {"frames": frames}, "profiles": profiles,
            "name": f"nbcvm profile {Path(report.program).name}", "activeProfileIndex": 0,
            "exporter": "nbcvm profile"}


def validate_speedscope(doc: Any) -> list[str]:
    """Problems with a speedscope document (the schema's required keys and event nesting)."""
    errs: list[str] = []
    if not isinstance(doc, dict):
        return ["document is not an object"]
    if doc.get("$schema") != SPEEDSCOPE_SCHEMA:
        errs.append("$schema missing or wrong")
    frames = doc.get("shared", {}).get("frames") if isinstance(doc.get("shared"), dict) else None
    if not isinstance(frames, list):
        return errs + ["shared.frames missing"]
    for i, f in enumerate(frames):
        if not isinstance(f, dict) or not isinstance(f.get("name"), str):
            errs.append(f"frame {i} has no name")
    profiles = doc.get("profiles")
    if not isinstance(profiles, list):
        return errs + ["profiles missing"]
    for i, p in enumerate(profiles):
        for key in ("type", "name", "unit", "startValue", "endValue"):
            if key not in p:
                errs.append(f"profile {i}: missing {key}")
        if p.get("unit") not in ("none", "nanoseconds", "microseconds", "milliseconds", "seconds", "bytes"):
            errs.append(f"profile {i}: bad unit {p.get('unit')!r}")
        if p.get("type") == "evented":
            stack: list[int] = []
            last = -math.inf
            bad = None
            for j, e in enumerate(p.get("events", [])):
                if e.get("type") not in ("O", "C") or not isinstance(e.get("frame"), int):
                    bad = f"profile {i} event {j}: bad event {e}"
                elif not 0 <= e["frame"] < len(frames):
                    bad = f"profile {i} event {j}: frame {e['frame']} out of range"
                elif e["at"] < last:
                    bad = f"profile {i} event {j}: time goes backwards"
                elif e["type"] == "C" and (not stack or stack[-1] != e["frame"]):
                    bad = f"profile {i} event {j}: close does not match the innermost open frame"
                if bad is not None:
                    break  # the first bad event only: what follows it says nothing more
                last = e["at"]
                if e["type"] == "O":
                    stack.append(e["frame"])
                else:
                    stack.pop()
            if bad is not None:
                errs.append(bad)
            elif stack:
                errs.append(f"profile {i}: {len(stack)} frame(s) never closed")
        elif p.get("type") == "sampled":
            if len(p.get("samples", [])) != len(p.get("weights", [])):
                errs.append(f"profile {i}: samples and weights differ in length")
        else:
            errs.append(f"profile {i}: unknown type {p.get('type')!r}")
    return errs


# ---------------------------------------------------------------------------
# collapsed stacks


def to_collapsed(report: Any) -> str:
    names = _names(report)
    weights: dict[str, int] = {}
    for t in report.threads:
        path: dict[int, str] = {-1: ""}
        for n in t.tree:
            name = names.get(n.function, n.function)
            stack = f"{path[n.parent]};{name}" if path[n.parent] else name
            path[n.id] = stack
            w = math.ceil(n.exclusive_s * 1e6 - 1e-9) if n.exclusive_s > 0 else 0
            if n.calls:
                w = max(1, w)
            if w:
                weights[stack] = weights.get(stack, 0) + w
    return "".join(f"{stack} {w}\n" for stack, w in sorted(weights.items()))


# ---------------------------------------------------------------------------
# Chrome trace events


def to_chrome(report: Any) -> dict:
    pid = os.getpid()
    names = _names(report)
    events: list[dict] = [{"name": "process_name", "ph": "M", "pid": pid, "tid": 0,
                           "args": {"name": f"nbcvm {Path(report.program).name}"}}]
    timelines = []
    for tid, (ident, tname, chrono, iv) in enumerate(thread_intervals(report), start=1):
        events.append({"name": "thread_name", "ph": "M", "pid": pid, "tid": tid,
                       "args": {"name": f"{tname} ({ident})"}})
        timelines.append({"tid": tid, "thread": tname, "chronological": chrono})
        for q, file, line, start, end, depth in iv:
            events.append({"name": names.get(q, q), "cat": "nbc", "ph": "X", "ts": start / 1000.0,
                           "dur": (end - start) / 1000.0, "pid": pid, "tid": tid,
                           "args": {"function": q, "file": file, "line": line, "depth": depth}})
    return {"traceEvents": events, "displayTimeUnit": "ms",
            "otherData": {"program": report.program, "level": report.level, "exporter": "nbcvm profile",
                          "timeline": timelines}}


def validate_chrome(doc: Any) -> list[str]:
    errs: list[str] = []
    evs = doc.get("traceEvents") if isinstance(doc, dict) else None
    if not isinstance(evs, list):
        return ["traceEvents missing"]
    for i, e in enumerate(evs):
        ph = e.get("ph")
        if ph not in ("X", "B", "E", "M", "i", "C"):
            errs.append(f"event {i}: bad ph {ph!r}")
        for key in ("name", "pid", "tid"):
            if key not in e:
                errs.append(f"event {i}: missing {key}")
        if ph in ("X", "B", "E") and not isinstance(e.get("ts"), (int, float)):
            errs.append(f"event {i}: ts missing")
        if ph == "X" and not (isinstance(e.get("dur"), (int, float)) and e["dur"] >= 0):
            errs.append(f"event {i}: dur missing or negative")
    return errs


# ---------------------------------------------------------------------------


def render(report: Any, fmt: str) -> str:
    if fmt == "collapsed":
        return to_collapsed(report)
    if fmt == "speedscope":
        doc = to_speedscope(report)
    elif fmt == "chrome":
        doc = to_chrome(report)
    elif fmt == "json":
        doc = report.to_dict()
    else:
        raise ValueError(f"unknown export format '{fmt}' (one of {', '.join(FORMATS)})")
    return json.dumps(doc, indent=None if fmt != "json" else 2, sort_keys=fmt == "json", default=str) + "\n"


def write_export(report: Any, path: str | Path, fmt: str) -> Path:
    p = Path(path)
    p.write_text(render(report, fmt), encoding="utf-8")
    return p
