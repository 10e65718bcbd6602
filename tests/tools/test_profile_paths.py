"""nbcvm profile's alert rules on every metric and statistic, and saved-report loading."""

import json
from pathlib import Path

import pytest

from nbcvm.cli import main
from nbcvm.errors import UsageError
from nbcvm.tools.profile import fmt_value, load_report, parse_rule

FIB = str(Path(__file__).parent.parent.parent / "examples" / "fib.nbc")


def alerts_of(capfd, *rules) -> tuple[int, dict]:
    capfd.readouterr()
    argv = ["profile", FIB, "10", "--json"]
    for r in rules:
        argv += ["--alert", r]
    code = main(argv)
    out, err = capfd.readouterr()
    assert out == "55\n"
    d = json.loads(err)
    return code, d


def test_exact_global_metrics_fire_at_the_end_of_the_run(capfd):
    code, d = alerts_of(capfd, "steps>10", "instructions>=1", "calls>=178", "depth>=2", "threads==1",
                        "errors==0", "memory>=0", "handles>=0", "op:add:pct>0", "op:nop:pct<1",
                        "fn:nosuch:calls<1", "fn:nosuch:p95>0", "calls>178")
    assert code == 1
    steps = d["summary"]["instructions"]
    adds = next(o["count"] for o in d["opcodes"] if o["name"] == "add")
    msgs = [a["message"].rsplit(" at ", 1)[0] for a in d["alerts"]]
    assert msgs == [
        f"ALERT steps>10: steps = {steps:,} (> 10)",
        f"ALERT instructions>=1: instructions = {steps:,} (>= 1)",
        "ALERT calls>=178: calls = 178 (>= 178)",
        "ALERT depth>=2: depth = 11 (>= 2)",  # main + fib(10) .. fib(1)
        "ALERT threads==1: threads = 1 (== 1)",
        "ALERT errors==0: errors = 0 (== 0)",
        "ALERT memory>=0: memory = 0 B (>= 0 B)",
        "ALERT handles>=0: handles = 0 (>= 0)",
        f"ALERT op:add:pct>0: op add pct = {100 * adds / steps:.2f} % (> 0.00 %)",
        "ALERT op:nop:pct<1: op nop pct = 0.00 % (< 1.00 %)",
        "ALERT fn:nosuch:calls<1: fn nosuch calls = 0 (< 1)",
    ]  # a function that never ran has no p95, and calls>178 does not hold
    assert all(a["message"].endswith("(end of run)") and a["live"] is False for a in d["alerts"])
    assert [r["rule"] for r in d["alert_rules"]][:2] == ["steps>10", "instructions>=1"]
    assert d["alert_rules"][0] == {"rule": "steps>10", "scope": "global", "target": "", "stat": "steps",
                                   "cmp": ">", "threshold": 10.0, "unit": "count", "live": True}


def test_timed_metrics_and_function_statistics(capfd):
    rules = ["time>=0", "ips>0", "rss>1", "fn:fib:total>0", "fn:fib:inclusive>0", "fn:fib:self>0",
             "fn:fib:exclusive>0", "fn:fib:percall>0", "fn:fib:mean>0", "fn:fib:max>0", "fn:fib:min>0",
             "fn:fib:p50>0", "op:add:time>=0"]
    code, d = alerts_of(capfd, *rules)
    v = {a["rule"]: a["value"] for a in d["alerts"]}
    assert code == 1 and list(v) == rules
    fib = next(f for f in d["functions"] if f["qualname"] == "fib.fib")
    assert v["fn:fib:total>0"] == v["fn:fib:inclusive>0"] == pytest.approx(fib["inclusive_s"])
    assert v["fn:fib:self>0"] == v["fn:fib:exclusive>0"] == pytest.approx(fib["exclusive_s"])
    assert v["fn:fib:percall>0"] == pytest.approx(fib["inclusive_s"] / 177)
    assert v["fn:fib:min>0"] <= v["fn:fib:p50>0"] <= v["fn:fib:max>0"]
    assert v["fn:fib:min>0"] <= v["fn:fib:mean>0"] <= v["fn:fib:max>0"]
    assert v["ips>0"] == pytest.approx(d["summary"]["instructions"] / v["time>=0"], rel=0.01)
    assert v["rss>1"] == d["summary"]["rss_bytes_max_sampled"]


def test_rule_errors():
    with pytest.raises(ValueError) as ei:
        parse_rule("op:add:speed>1")
    assert str(ei.value) == "alert rule 'op:add:speed>1': unknown opcode statistic 'speed' (one of count, time, pct)"
    with pytest.raises(ValueError, match="unit 'ms' does not fit a count metric"):
        parse_rule("calls>5ms")


@pytest.mark.parametrize("value,kind,text", [
    (None, "time", "n/a"), (float("nan"), "count", "n/a"),
    (2.5e9, "bytes", "2.5 GB"), (3e6, "bytes", "3 MB"), (1500, "bytes", "1.5 kB"), (12, "bytes", "12 B"),
    (5e-10, "time", "0 ns"), (2e-5, "time", "20 µs"), (0.5, "pct", "0.50 %"),
    (1234567, "count", "1,234,567"), (1.5, "count", "1.5"), (1e16, "count", "1e+16"),
])
def test_fmt_value(value, kind, text):
    assert fmt_value(value, kind) == text


def test_load_report_refuses_what_is_not_a_report(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    with pytest.raises(UsageError, match=r"bad.json: not a JSON profile report \(Expecting property name"):
        load_report(bad)
    other = tmp_path / "other.json"
    other.write_text('{"schema": "x"}')
    with pytest.raises(UsageError) as ei:
        load_report(other)
    assert str(ei.value) == f"<input>: {other}: not an nbcvm profile report (expected schema nbcvm-profile/1)"
    with pytest.raises(UsageError, match="cannot read: Is a directory"):
        load_report(tmp_path)
