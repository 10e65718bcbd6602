"""Export formats: speedscope, collapsed stacks, Chrome trace events, JSON -- each validated."""

from __future__ import annotations

import io
import json
import textwrap
from pathlib import Path

import pytest

from nbcvm.report import exports
from nbcvm.tools import profile as drv
from nbcvm.tools.run import RunConfig

ROOT = Path(__file__).resolve().parent.parent.parent
FIB = str(ROOT / "examples" / "fib.nbc")

TWO = """
.func leaf x
    load x
    push 1
    add
    ret
.end
.func mid x
    load x
    call leaf 1
    load x
    call leaf 1
    add
    ret
.end
.func main
    push 1
    call mid 1
    push 2
    call leaf 1
    add
    ret
.end
"""


def report(path: str, *args: str, events: bool = True, max_events: int = 500_000) -> drv.ProfileReport:
    cfg = drv.ProfileConfig(RunConfig(path, args), record_events=events, max_events=max_events)
    return drv.profile_program(cfg, io.StringIO())


@pytest.fixture(scope="module")
def fib_report():
    return report(FIB, "10")


@pytest.fixture
def two(tmp_path):
    p = tmp_path / "two.nbc"
    p.write_text(textwrap.dedent(TWO))
    return report(str(p))


def check_speedscope_schema(doc: dict) -> None:
    """The keys https://www.speedscope.app/file-format-schema.json requires, checked by hand."""
    assert set(doc) >= {"$schema", "shared", "profiles"}
    assert doc["$schema"] == "https://www.speedscope.app/file-format-schema.json"
    assert isinstance(doc["shared"]["frames"], list)
    for f in doc["shared"]["frames"]:
        assert isinstance(f["name"], str)
        assert set(f) <= {"name", "file", "line", "col"}
    for p in doc["profiles"]:
        assert p["type"] in ("evented", "sampled")
        assert {"name", "unit", "startValue", "endValue"} <= set(p)
        if p["type"] == "evented":
            assert isinstance(p["events"], list)
            for e in p["events"]:
                assert set(e) == {"type", "frame", "at"} and e["type"] in ("O", "C")
    assert exports.validate_speedscope(doc) == []


def test_speedscope_from_recorded_timeline(fib_report, tmp_path):
    out = exports.write_export(fib_report, tmp_path / "p.speedscope.json", "speedscope")
    doc = json.loads(out.read_text())
    check_speedscope_schema(doc)
    prof = doc["profiles"][0]
    opens = [e for e in prof["events"] if e["type"] == "O"]
    assert len(opens) == 178  # fib(10): 177 calls of fib + main
    names = {f["name"] for f in doc["shared"]["frames"]}
    assert names == {"fib", "main"}
    assert prof["unit"] == "nanoseconds" and prof["endValue"] >= prof["startValue"]
    assert "merged" not in prof["name"]


def test_speedscope_from_call_tree_without_recording(tmp_path):
    r = report(FIB, "10", events=False)
    doc = exports.to_speedscope(r)
    check_speedscope_schema(doc)
    assert "merged call tree" in doc["profiles"][0]["name"]
    # one open per call path: main, then fib(10) .. fib(1) nested ten deep
    assert sum(e["type"] == "O" for e in doc["profiles"][0]["events"]) == 11


def test_validator_catches_broken_nesting():
    doc = {"$schema": exports.SPEEDSCOPE_SCHEMA, "shared": {"frames": [{"name": "a"}, {"name": "b"}]},
           "profiles": [{"type": "evented", "name": "x", "unit": "nanoseconds", "startValue": 0, "endValue": 3,
                         "events": [{"type": "O", "frame": 0, "at": 0}, {"type": "O", "frame": 1, "at": 1},
                                    {"type": "C", "frame": 0, "at": 2}, {"type": "C", "frame": 1, "at": 3}]}]}
    assert any("innermost" in e for e in exports.validate_speedscope(doc))
    assert exports.validate_speedscope({"shared": {}}) != []


def test_collapsed_stacks(two):
    text = exports.to_collapsed(two)
    lines = text.splitlines()
    stacks = {ln.rsplit(" ", 1)[0]: int(ln.rsplit(" ", 1)[1]) for ln in lines}
    assert set(stacks) == {"main", "main;mid", "main;mid;leaf", "main;leaf"}
    assert all(w >= 1 for w in stacks.values())
    # weights are exclusive microseconds: they sum to about the total
    total_us = sum(n.exclusive_s for t in two.threads for n in t.tree) * 1e6
    assert sum(stacks.values()) == pytest.approx(total_us, abs=len(stacks) + 1)


def test_collapsed_fib_format(fib_report):
    lines = exports.to_collapsed(fib_report).splitlines()
    assert lines[0].startswith("main ") and any(ln.startswith("main;fib;fib ") for ln in lines)
    for ln in lines:
        stack, w = ln.rsplit(" ", 1)
        assert w.isdigit() and " " not in stack


def test_chrome_trace(fib_report, tmp_path):
    out = exports.write_export(fib_report, tmp_path / "trace.json", "chrome")
    doc = json.loads(out.read_text())
    assert exports.validate_chrome(doc) == []
    xs = [e for e in doc["traceEvents"] if e["ph"] == "X"]
    assert len(xs) == 178
    for e in xs:
        assert {"name", "ph", "ts", "dur", "pid", "tid"} <= set(e) and e["dur"] >= 0
    main = next(e for e in xs if e["name"] == "main")
    assert all(main["ts"] <= e["ts"] and e["ts"] + e["dur"] <= main["ts"] + main["dur"] + 1e-3 for e in xs)
    meta = [e for e in doc["traceEvents"] if e["ph"] == "M"]
    assert {e["name"] for e in meta} == {"process_name", "thread_name"}
    assert doc["otherData"]["timeline"][0]["chronological"] is True


def test_chrome_from_tree_when_the_recording_was_capped():
    r = report(FIB, "10", max_events=5)
    assert r.threads[0].events_truncated
    doc = exports.to_chrome(r)
    assert exports.validate_chrome(doc) == []
    assert doc["otherData"]["timeline"][0]["chronological"] is False
    assert exports.validate_speedscope(exports.to_speedscope(r)) == []


def test_json_export_is_the_complete_report(fib_report, tmp_path):
    out = exports.write_export(fib_report, tmp_path / "r.json", "json")
    d = json.loads(out.read_text())
    assert d == json.loads(json.dumps(fib_report.to_dict(), default=str))
    assert {"functions", "opcodes", "lines", "pairs", "threads", "metrics", "alerts", "suggestions",
            "summary", "outcome", "machine"} <= set(d)
    assert drv.load_report(out)["schema"] == drv.SCHEMA


def test_unknown_format():
    with pytest.raises(ValueError, match="unknown export format"):
        exports.render(None, "svg")
