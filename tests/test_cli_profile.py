"""``nbcvm profile`` and ``nbcvm profile diff`` through ``nbcvm.cli.main``: output, files, exit codes."""

from __future__ import annotations

import io
import json
import textwrap
from pathlib import Path

import pytest
from rich.console import Console

from nbcvm.cli import main

ROOT = Path(__file__).parent.parent
FIB = str(ROOT / "examples" / "fib.nbc")


def run(capfd, *args):
    capfd.readouterr()
    code = main(list(args))
    out, err = capfd.readouterr()
    assert 'File "' not in err, err  # never a Python traceback
    assert "internal error" not in err, err
    return code, out, err


def test_profile_tables_and_program_output(capfd):
    code, out, err = run(capfd, "profile", FIB, "12", "--top", "3")
    assert code == 0 and out == "144\n"
    for title in ("hot functions", "opcodes (top 3)", "hot lines", "call tree", "suggestions"):
        assert title in err
    assert "fib.fib" in err and "fib.nbc:" in err


def test_profile_run_subcommand_and_options(capfd):
    code, out, err = run(capfd, "profile", "run", "--level", "function", "--sort", "calls", "--no-tree", FIB, "8")
    assert code == 0 and out == "21\n"
    assert "call tree" not in err and "opcodes (top" not in err and "by calls" in err


def test_profile_json_is_the_complete_report(capfd):
    code, out, err = run(capfd, "profile", FIB, "10", "--json")
    assert code == 0 and out == "55\n"
    d = json.loads(err)
    assert d["schema"] == "nbcvm-profile/1" and d["outcome"]["exit_code"] == 0
    assert {f["qualname"]: f["calls"] for f in d["functions"]} == {"fib.fib": 177, "fib.main": 1}
    assert sum(o["count"] for o in d["opcodes"]) == d["summary"]["instructions"]


def test_alerts_print_and_exit_1(capfd):
    code, out, err = run(capfd, "profile", FIB, "10", "--alert", "fn:fib:calls>100", "--alert", "rss>1TB",
                         "--alert", "op:add:count>10", "--no-tree")
    assert code == 1 and out == "55\n"
    assert "ALERT fn:fib:calls>100: fn fib calls = 177" in err
    assert "ALERT op:add:count>10" in err and "rss>1TB" not in err.replace("ALERT rss", "")


def test_no_alert_fired_exits_0(capfd):
    code, _, err = run(capfd, "profile", FIB, "5", "--alert", "errors>0", "--alert", "fn:fib:p95>10s")
    assert code == 0 and "ALERT" not in err


@pytest.mark.parametrize("rule", ["fib>3", "fn:fib:p95>>5ms", "op:nosuch:count>1", "rss>5parsecs"])
def test_bad_alert_rule_exit_2(capfd, rule):
    code, out, err = run(capfd, "profile", FIB, "5", "--alert", rule)
    assert code == 2 and out == ""
    assert rule in err and "--alert" in err


def test_program_error_exit_1_with_nbc_traceback(tmp_path, capfd):
    p = tmp_path / "boom.nbc"
    p.write_text(".func main\n    push 1\n    push 0\n    idiv\n    ret\n.end\n")
    code, out, err = run(capfd, "profile", str(p), "--no-tree")
    assert code == 1 and out == ""
    assert err.startswith("Traceback (most recent call last):")
    assert "ZeroDivisionError (code 101)" in err and "hot functions" in err


def test_limits_apply(capfd):
    code, _, err = run(capfd, "profile", FIB, "15", "--max-steps", "500", "--json")
    d = json.loads(err)
    assert code == 1 and d["outcome"]["error"]["type"] == "LimitExceeded"


def test_missing_program_exit_2(capfd):
    code, out, err = run(capfd, "profile", "nope.nbc")
    assert code == 2 and "nope.nbc" in err


@pytest.mark.parametrize("fmt", ["speedscope", "collapsed", "chrome", "json"])
def test_export_formats(tmp_path, capfd, fmt):
    path = tmp_path / f"out.{fmt}"
    code, out, err = run(capfd, "profile", FIB, "8", "--export", str(path), "--format", fmt, "--no-tree")
    assert code == 0 and out == "21\n" and f"wrote {fmt} profile to" in err
    text = path.read_text()
    if fmt == "collapsed":
        assert text.startswith("main ") and "main;fib;fib " in text
    else:
        doc = json.loads(text)
        key = {"speedscope": "$schema", "chrome": "traceEvents", "json": "schema"}[fmt]
        assert key in doc


def test_log_appends_one_line_per_run(tmp_path, capfd):
    for _ in range(2):
        assert run(capfd, "profile", FIB, "6", "--log", str(tmp_path / "hist"), "--json")[0] == 0
    lines = (tmp_path / "hist" / "profile-log.jsonl").read_text().splitlines()
    assert len(lines) == 2
    rec = json.loads(lines[1])
    assert rec["program"] == FIB and len(rec["sha256"]) == 64 and rec["instructions"] > 0
    assert {"platform", "python", "cpu_count"} <= set(rec["machine"])


def _fake_report(path: Path, seconds: float, ips: float) -> str:
    d = {"schema": "nbcvm-profile/1", "level": "opcode", "sha256": "x", "args": [],
         "summary": {"seconds": seconds, "instructions": int(seconds * ips), "instructions_per_second": ips,
                     "calls": 1, "peak_depth": 1},
         "functions": [{"qualname": "m.main", "exclusive_s": seconds, "calls": 1}]}
    path.write_text(json.dumps(d))
    return str(path)


def test_diff_command_verdicts(tmp_path, capfd):
    old = _fake_report(tmp_path / "old.json", 1.0, 1e6)
    same = _fake_report(tmp_path / "same.json", 1.1, 0.95e6)
    slow = _fake_report(tmp_path / "slow.json", 1.5, 0.6e6)
    code, out, _ = run(capfd, "profile", "diff", old, same)
    assert code == 0 and "no regression" in out and "+10.0%" in out
    code, out, _ = run(capfd, "profile", "diff", old, slow)
    assert code == 1 and "REGRESSION" in out and "wall time +50.0%" in out
    code, out, _ = run(capfd, "profile", "diff", old, slow, "--max-time-regression", "60",
                       "--max-throughput-regression", "50", "--json")
    d = json.loads(out)
    assert code == 0 and d["regression"] is False and d["time_change_pct"] == pytest.approx(50.0)
    code, _, err = run(capfd, "profile", "diff", old, str(tmp_path / "missing.json"))
    assert code == 2 and "missing.json" in err


def test_baseline_flag(tmp_path, capfd):
    base = tmp_path / "base.json"
    code, _, err = run(capfd, "profile", FIB, "10", "--json")
    base.write_text(err)
    code, out, err = run(capfd, "profile", FIB, "10", "--baseline", str(base), "--max-time-regression", "1e6",
                         "--max-throughput-regression", "100", "--no-tree")
    assert code == 0 and "comparison:" in err and "no regression" in err
    fast = json.loads(base.read_text())
    fast["summary"]["seconds"] /= 1000.0
    fast["summary"]["instructions_per_second"] *= 1000.0
    base.write_text(json.dumps(fast))
    code, out, err = run(capfd, "profile", FIB, "10", "--baseline", str(base), "--json")
    d = json.loads(err)
    assert code == 1 and d["baseline"]["regression"] is True and out == "55\n"
    code, _, err = run(capfd, "profile", FIB, "10", "--baseline", str(tmp_path / "nope.json"))
    assert code == 2


def test_live_view_refreshes_at_least_twice_a_second(tmp_path):
    from nbcvm.report.profile_render import LiveView
    from nbcvm.tools import profile as drv
    from nbcvm.tools.run import RunConfig

    p = tmp_path / "sleepy.nbc"
    p.write_text(textwrap.dedent("""
        .import time
        .func main
            push 0.8
            call time.sleep 1
            pop
            push 0
            ret
        .end
        """))
    buf = io.StringIO()
    view = LiveView(Console(file=buf, force_terminal=True, width=100), refresh_per_second=4)
    drv.profile_program(drv.ProfileConfig(RunConfig(str(p))), io.StringIO(), live=view)
    assert view.updates >= 2  # 0.8 s at 4 Hz: ~3 refreshes
    assert "%Own" in buf.getvalue() and "main" in buf.getvalue()


def test_live_flag_through_the_cli(capfd):
    code, out, err = run(capfd, "profile", FIB, "10", "--live", "--no-tree")
    assert code == 0 and out == "55\n" and "hot functions" in err


def test_group_help_lists_diff(capfd):
    code, out, _ = run(capfd, "profile", "--help")
    assert code == 0 and "diff" in out and "run" in out
