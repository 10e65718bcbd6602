"""leak-check: config checks, progress phases, the RSS budget during the soak, halting programs,
and the verdict's quieter branches."""

import pytest

from nbcvm.errors import UsageError
from nbcvm.tools.leakcheck import LeakConfig, Metric, judge, parse_size, run_leak_check

HALT = ".func main\n    push 3\n    halt\n.end\n"


def program(tmp_path, src=HALT):
    p = tmp_path / "prog.nbc"
    p.write_text(src)
    return str(p)


@pytest.mark.parametrize("kw,message", [
    ({"warmup": -1}, "--warmup must not be negative"),
    ({"threshold": 0.0}, "--threshold must be positive"),
    ({"threshold": float("nan")}, "--threshold must be positive"),
])
def test_bad_settings(tmp_path, kw, message):
    with pytest.raises(UsageError) as ei:
        run_leak_check(LeakConfig(program(tmp_path), runs=3, trace_python=False, **kw))
    assert str(ei.value) == f"<input>: {message}"


def test_halting_program_is_clean_and_progress_names_each_phase(tmp_path):
    seen = []
    r = run_leak_check(LeakConfig(program(tmp_path), runs=3, warmup=2, trace_python=False),
                       lambda phase, done, total: seen.append((phase, done, total)))
    assert seen == [("warm-up", 1, 5), ("warm-up", 2, 5), ("soak", 3, 5), ("soak", 4, 5), ("soak", 5, 5)]
    assert r.runs == 3 and r.warmup == 2 and r.ok and r.verdict == "clean"
    assert r.metric("handles").values == (0, 0, 0)
    with pytest.raises(KeyError):
        r.metric("nope")


def test_rss_budget_checked_on_the_first_soak_sample(tmp_path):
    seen = []
    r = run_leak_check(LeakConfig(program(tmp_path), runs=3, warmup=0, max_rss=1, trace_python=False),
                       lambda phase, done, total: seen.append((phase, done, total)))
    assert seen == [("soak", 1, 3)]
    assert r.budget_exceeded_at == 1 and r.budget_exceeded and not r.ok
    assert r.to_dict()["budget"] == {"max_rss": 1, "peak_rss": r.peak_rss, "exceeded_at_run": 1}
    assert r.peak_rss > 1


def test_unmeasured_metric_to_dict_gives_the_reason():
    m = Metric("uss", "bytes", (), None, "psutil cannot read USS here")
    assert m.to_dict() == {"name": "uss", "unit": "bytes", "values": [], "deltas": [], "verdict": "n/a",
                           "reason": "psutil cannot read USS here"}
    assert not m.leak


@pytest.mark.parametrize("values,min_growth,reason", [
    ([10, 11, 10, 11], 5, "growth under the minimum (5)"),
    ([100, 101, 100, 102], 1, "no significant trend (t = 1.3 < 4)"),
    ([5, 3, 2, 1], 1, "no growth"),
    ([7], 1, "too few samples"),
])
def test_clean_verdict_reasons(values, min_growth, reason):
    v = judge(values, min_growth=min_growth)
    assert (v.verdict, v.reason) == ("clean", reason)


@pytest.mark.parametrize("text", ["1.2.3MB", "..k", "-5", "infMB"])
def test_parse_size_rejects(text):
    with pytest.raises(ValueError, match="not a size"):
        parse_size(text)


def test_parse_size_units():
    assert [parse_size(t) for t in ("4096", "1.5k", "2MB", "1 GiB", "1_000b")] == [
        4096, 1536, 2_000_000, 1 << 30, 1000]
