"""The profile driver: reports, alert rules, suggestions, baselines and the run log."""

from __future__ import annotations

import io
import json
import textwrap
from pathlib import Path

import pytest

from nbcvm.errors import UsageError
from nbcvm.runtime.limits import Limits
from nbcvm.tools import profile as drv
from nbcvm.tools.run import RunConfig, run_program

ROOT = Path(__file__).resolve().parent.parent.parent
PROGRAMS = sorted((ROOT / "tests" / "programs").glob("*.nbc")) + sorted((ROOT / "examples").glob("*.nbc"))
SLOW = {"nbody.nbc", "mandelbrot.nbc", "loops.nbc", "fib.nbc", "racy_counter.nbc", "atomic_counter.nbc",
        "leaky.nbc"}

LOOP = """
.func main n
    .local i
    push 0
    store i
top:
    load i
    load n
    lt
    jf done
    inc i 1
    jmp top
done:
    push 0
    ret
.end
"""


def write(tmp_path: Path, src: str, name: str = "p.nbc") -> str:
    p = tmp_path / name
    p.write_text(textwrap.dedent(src))
    return str(p)


def prof(path: str, *args: str, level: str = "opcode", alerts=(), out=None, **kw) -> drv.ProfileReport:
    cfg = drv.ProfileConfig(RunConfig(path, tuple(args), kw.pop("limits", Limits())), level=level,
                            alerts=tuple(drv.parse_rule(a) for a in alerts), **kw)
    return drv.profile_program(cfg, out if out is not None else io.StringIO())


# -- reports ------------------------------------------------------------------------------


def test_report_exact_counts_lines_and_pairs(tmp_path):
    r = prof(write(tmp_path, LOOP), "1000")
    assert r.exit_code == 0 and r.level == "opcode"
    ops = {o.name: o.count for o in r.opcodes}
    assert ops == {"push": 2, "store": 1, "load": 2002, "lt": 1001, "jf": 1001, "inc": 1000, "jmp": 1000,
                   "ret": 1}
    assert r.summary["instructions"] == sum(ops.values()) == 6008
    assert sum(o.pct_count for o in r.opcodes) == pytest.approx(100.0)
    lines = {ln.line: (ln.count, ln.source) for ln in r.lines}
    assert lines[11] == (1000, "inc i 1") and lines[7] == (1001, "load i")
    pairs = {(p.first, p.second): (p.count, p.fused) for p in r.pairs}
    assert pairs[("inc", "jmp")] == (1000, False)
    assert pairs[("lt", "jf")] == (1001, True) and pairs[("load", "load")] == (1001, True)
    assert r.functions[0].qualname == "p.main" and r.functions[0].calls == 1
    d = r.to_dict()
    assert d["schema"] == drv.SCHEMA and json.loads(json.dumps(d)) == d
    assert d["threads"][0]["call_tree"][0]["function"] == "p.main"
    assert d["machine"]["cpu_count"] and len(d["sha256"]) == 64


def test_program_output_and_errors_pass_through(tmp_path):
    src = """
    .func main
        push "hi"
        print
        push 1
        push 0
        idiv
        ret
    .end
    """
    out = io.StringIO()
    r = prof(write(tmp_path, src), out=out)
    assert out.getvalue() == "hi\n"
    assert r.exit_code == 1 and r.error["type"] == "ZeroDivisionError"
    assert r.summary["errors"] == 1 and r.error_obj is not None


def test_missing_program_is_usage_error(tmp_path):
    from nbcvm.errors import InputError

    with pytest.raises(InputError):
        prof(str(tmp_path / "nope.nbc"))


@pytest.mark.parametrize("path", [p for p in PROGRAMS if p.name not in SLOW], ids=lambda p: p.name)
def test_profiled_runs_behave_like_plain_runs(path):
    """Differential: every golden program gives the same output, exit code and error under the profiler."""
    from test_programs import parse_expectations  # tests/ is on sys.path (conftest)

    from nbcvm.cli import _limits

    exp = parse_expectations(path.read_text(encoding="utf-8"))
    flags = dict(zip(exp.flags[::2], exp.flags[1::2]))
    lim = _limits(int(flags["--max-steps"]) if "--max-steps" in flags else None,
                  int(flags["--max-depth"]) if "--max-depth" in flags else None,
                  float(flags["--timeout"]) if "--timeout" in flags else None, None,
                  int(flags["--max-output"]) if "--max-output" in flags else None)
    rc = RunConfig(str(path), tuple(exp.args), lim, int(flags.get("--seed", 0)))
    plain_out, prof_out = io.StringIO(), io.StringIO()
    plain = run_program(rc, plain_out)
    report = drv.profile_program(drv.ProfileConfig(rc), prof_out)
    assert prof_out.getvalue() == plain_out.getvalue()
    assert report.exit_code == plain.exit_code
    assert (report.error or {}).get("type") == (plain.error.type_name if plain.error else None)
    if plain.error is not None and plain.error.type_name != "LimitExceeded":
        assert [e["line"] for e in report.error["traceback"]] == [e.line for e in plain.error.traceback]


# -- alert rules --------------------------------------------------------------------------


@pytest.mark.parametrize("text,scope,target,stat,cmp,threshold", [
    ("fn:fib:p95>5ms", "fn", "fib", "p95", ">", 0.005),
    ("fn:fib.fib:calls>1000", "fn", "fib.fib", "calls", ">", 1000),
    ("rss>200MB", "global", "", "rss", ">", 200e6),
    ("rss >= 1.5GiB", "global", "", "rss", ">=", 1.5 * (1 << 30)),
    ("ips<1e6", "global", "", "ips", "<", 1e6),
    ("errors>0", "global", "", "errors", ">", 0),
    ("steps>1e7", "global", "", "steps", ">", 1e7),
    ("op:add:count>100", "op", "add", "count", ">", 100),
    ("op:call:pct>=12.5%", "op", "call", "pct", ">=", 12.5),
    ("time>2s", "global", "", "time", ">", 2.0),
    ("fn:main:self>250us", "fn", "main", "self", ">", 250e-6),
    ("calls>2k", "global", "", "calls", ">", 2000),
])
def test_parse_rules(text, scope, target, stat, cmp, threshold):
    r = drv.parse_rule(text)
    assert (r.scope, r.target, r.stat, r.cmp) == (scope, target, stat, cmp)
    assert r.threshold == pytest.approx(threshold)


@pytest.mark.parametrize("text,why", [
    ("fib>3", "unknown metric"), ("fn:fib:p97>1ms", "unknown function statistic"),
    ("op:addd:count>1", "unknown opcode"), ("rss>200parsecs", "unit"), ("ips<<1", "cannot parse"),
    ("", "cannot parse"), ("fn:fib:p95>5MB", "unit"), ("errors>", "cannot parse"),
])
def test_bad_rules_say_why(text, why):
    with pytest.raises(ValueError, match=why) as e:
        drv.parse_rule(text)
    assert repr(text)[1:-1] in str(e.value) or text == ""


def test_alerts_fire_at_the_end(tmp_path):
    fib = str(ROOT / "examples" / "fib.nbc")
    r = prof(fib, "12", alerts=("fn:fib:calls>400", "fn:fib:calls>1000", "op:add:count>100", "errors>0",
                                "fn:fib:p99>=0ms", "steps>1e9", "op:call:pct>5%"))
    fired = {a.rule for a in r.alerts}
    assert fired == {"fn:fib:calls>400", "op:add:count>100", "fn:fib:p99>=0ms", "op:call:pct>5%"}
    a = next(a for a in r.alerts if a.rule == "fn:fib:calls>400")
    assert a.value == 465 and "fn fib calls = 465" in a.message
    assert next(a for a in r.alerts if a.rule == "op:add:count>100").value == 232


def test_alerts_fire_live_at_meter_ticks(tmp_path):
    seen = []
    cfg = drv.ProfileConfig(RunConfig(write(tmp_path, LOOP), ("60000",)),
                            alerts=(drv.parse_rule("steps>50000"), drv.parse_rule("fn:main:p50>0s")))
    r = drv.profile_program(cfg, io.StringIO(), on_alert=seen.append)
    live = {a.rule: a for a in r.alerts}
    assert live["steps>50000"].live and live["steps>50000"].value < r.summary["instructions"]
    assert not live["fn:main:p50>0s"].live  # percentiles are judged at the end
    assert [a.rule for a in seen] == ["steps>50000", "fn:main:p50>0s"]


def test_op_rules_need_opcode_level(tmp_path):
    with pytest.raises(UsageError):
        prof(write(tmp_path, LOOP), "10", level="function", alerts=("op:add:count>1",))


# -- suggestions ---------------------------------------------------------------------------


def kinds(r):
    return {s.kind for s in r.suggestions}


def test_suggest_jit_for_hot_numeric_function():
    r = prof(str(ROOT / "examples" / "fib.nbc"), "12")
    s = next(s for s in r.suggestions if s.kind == "jit")
    assert s.evidence["function"] == "fib.fib" and s.evidence["share_of_time_pct"] > 50
    assert "--jit" in s.advice


def test_suggest_hoisting_tensor_and_caching_global(tmp_path):
    src = """
    .import tensor
    .global scale 3
    .global total 0
    .func main n
        .local i acc t
        push 0
        store i
        push 0
        store acc
    loop:
        load i
        load n
        lt
        jf done
        push 4
        call tensor.zeros 1
        store t
        load acc
        gload scale
        add
        store acc
        gload total
        push 1
        add
        gstore total
        inc i 1
        jmp loop
    done:
        push 0
        ret
    .end
    """
    r = prof(write(tmp_path, src), "150")
    assert r.exit_code == 0
    tens = [s for s in r.suggestions if s.kind == "tensor-in-loop"]
    assert len(tens) == 1 and tens[0].evidence["executions"] == 150
    assert tens[0].evidence["instruction"] == "call tensor.zeros"
    glob = [s for s in r.suggestions if s.kind == "cache-global"]
    assert [s.evidence["global"] for s in glob] == ["scale"]  # total is stored in the loop
    assert glob[0].evidence["executions"] == 150
    assert "jit" not in kinds(r)  # tensors are not numeric


def test_no_global_suggestion_when_a_callee_stores_it(tmp_path):
    src = """
    .global g 1
    .func bump
        gload g
        push 1
        add
        gstore g
        push 0
        ret
    .end
    .func main n
        .local i
        push 0
        store i
    loop:
        gload g
        pop
        call bump 0
        pop
        inc i 1
        load i
        load n
        lt
        jt loop
        push 0
        ret
    .end
    """
    r = prof(write(tmp_path, src), "300")
    assert "cache-global" not in kinds(r)


def test_suggest_when_recursion_nears_the_depth_limit():
    r = prof(str(ROOT / "examples" / "fib.nbc"), "12", limits=Limits(max_depth=20))
    s = next(s for s in r.suggestions if s.kind == "deep-recursion")
    assert s.evidence["peak_depth"] == 13 and s.evidence["max_depth"] == 20
    assert s.evidence["function_at_peak"] == "fib.fib"
    r = prof(str(ROOT / "examples" / "fib.nbc"), "12", limits=Limits(max_depth=40))
    assert "deep-recursion" not in kinds(r)


def test_suggest_superinstruction_for_unfused_hot_pair(tmp_path):
    r = prof(write(tmp_path, LOOP), "2000")
    s = [s for s in r.suggestions if s.kind == "superinstruction"]
    assert [(x.evidence["first"], x.evidence["second"], x.evidence["count"]) for x in s] == [("inc", "jmp", 2000)]


# -- baselines and log ----------------------------------------------------------------------


def _rep(seconds, ips, fns):
    return {"schema": drv.SCHEMA, "level": "opcode", "sha256": "a", "args": ["1"],
            "summary": {"seconds": seconds, "instructions": int(seconds * ips), "instructions_per_second": ips,
                        "calls": 10, "peak_depth": 3},
            "functions": [{"qualname": q, "exclusive_s": t, "calls": c} for q, t, c in fns]}


def test_compare_fixed_inputs():
    old = _rep(1.0, 1e6, [("m.f", 0.6, 100), ("m.g", 0.4, 10)])
    same = drv.compare(old, _rep(1.1, 0.9e6, [("m.f", 0.66, 100), ("m.g", 0.4, 10)]))
    assert not same.regression and same.time_change_pct == pytest.approx(10.0)
    assert same.throughput_change_pct == pytest.approx(-10.0)
    f = {r.name: r for r in same.functions}
    assert f["m.f"].change_pct == pytest.approx(10.0) and f["m.g"].change_pct == pytest.approx(0.0)
    slow = drv.compare(old, _rep(1.25, 0.95e6, [("m.f", 0.9, 100), ("m.h", 0.1, 1)]))
    assert slow.regression and len(slow.reasons) == 1 and "wall time +25.0%" in slow.reasons[0]
    f = {r.name: r for r in slow.functions}
    assert f["m.h"].old is None and f["m.h"].change_pct is None and f["m.g"].new is None
    tput = drv.compare(old, _rep(1.0, 0.8e6, []))
    assert tput.regression and "throughput -20.0%" in tput.reasons[0]
    loose = drv.compare(old, _rep(1.25, 0.8e6, []), max_time_regression=0.3, max_throughput_regression=0.25)
    assert not loose.regression
    other = _rep(1.0, 1e6, [])
    other.update(level="function", sha256="b", args=["2"])
    assert len(drv.compare(old, other).notes) == 3


def test_saved_report_round_trip_and_log(tmp_path):
    r = prof(write(tmp_path, LOOP), "500")
    saved = tmp_path / "r.json"
    saved.write_text(drv.dumps(r))
    d = drv.load_report(saved)
    c = drv.compare(d, r.to_dict())
    assert c.time_change_pct == pytest.approx(0.0) and not c.regression
    log = drv.append_log(tmp_path / "hist", r)
    drv.append_log(tmp_path / "hist", r)
    recs = drv.read_log(log)
    assert len(recs) == 2 and log.name == "profile-log.jsonl"
    rec = recs[0]
    assert rec["sha256"] == r.sha256 and rec["instructions"] == 3008
    assert {"platform", "python", "cpu_count"} <= set(rec["machine"]) and rec["time"]
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    with pytest.raises(UsageError, match="not an nbcvm profile report"):
        drv.load_report(bad)
    with pytest.raises(UsageError, match="cannot read"):
        drv.load_report(tmp_path / "missing.json")
