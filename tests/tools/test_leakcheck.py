"""nbcvm leak-check driver: leaky vs clean programs, the verdict rule, the report's shape."""

import json
import random
from pathlib import Path

import pytest

from nbcvm.errors import UsageError, VMError
from nbcvm.runtime.limits import Limits
from nbcvm.tools.leakcheck import LeakConfig, _fit, judge, parse_size, run_leak_check

EX = Path(__file__).parent.parent.parent / "examples"

# allocates and frees random amounts every run (seeded) and replaces a global
# by a list of random length: noise without a trend
NOISY = """
.module noisy
.import random
.global keep nil
.func main
    .local n i h acc
    push 1
    push 40
    call random.int 2
    store n
    newlist 0
    store acc
    push 0
    store i
    jmp test
body:
    push 1
    push 64
    call random.int 2
    alloc
    store h
    region
    push 1
    push 32
    call random.int 2
    push 8
    newlist 2
    alloc
    pop
    endregion
    load acc
    push "item "
    load i
    tostr
    concat
    append
    load h
    free
    inc i 1
test:
    load i
    load n
    lt
    jt body
    load acc
    gstore keep
    push 0
    ret
.end
"""


def _check(program, *args, **kw):
    kw.setdefault("runs", 10)
    kw.setdefault("warmup", 2)
    return run_leak_check(LeakConfig(str(program), tuple(args), **kw))


def _line_of(path: Path, marker: str) -> int:
    return next(i for i, t in enumerate(path.read_text().splitlines(), 1) if marker in t and not t.startswith(";"))


# -- the leaky / clean pair ------------------------------------------------------------


def test_leaky_example_leaks_and_names_its_line():
    r = _check(EX / "leaky.nbc")
    assert r.verdict == "leak" and not r.ok and r.runs == 10
    leaking = {m.name for m in r.leaks}
    assert {"handles", "handles.tensor", "handles.tensor.bytes", "vm_bytes"} <= leaking
    assert r.metric("handles.tensor").verdict.consistent
    assert r.metric("handles.tensor").deltas == (1,) * 9
    top = r.sites[0]
    assert top.file.endswith("leaky.nbc") and top.line == _line_of(EX / "leaky.nbc", "; LEAK")
    assert top.source.startswith("alloc") and top.function == "leaky.main" and top.kind == "tensor"
    assert top.count_growth == 9 and top.bytes_growth == 9 * 16 * 16 * 8
    assert {f"{g.module}.{g.name}" for g in r.globals} == {"leaky.log", "leaky.buffers"}
    # tracemalloc sees the numpy buffers made by alloc
    assert any("ops_resource.py" in p.filename for p in r.python_sites)


def test_regions_example_is_clean():
    r = _check(EX / "regions.nbc", runs=12)
    assert r.verdict == "clean" and r.ok and not r.sites and not r.globals
    assert r.metric("handles").values == (0,) * 12
    assert set(r.metric("vm_bytes").values) == {r.metric("vm_bytes").values[0]}


@pytest.mark.parametrize("program,args", [
    ("hello.nbc", ()), ("fib.nbc", ("10",)), ("loops.nbc", ("500",)), ("collections.nbc", ()),
    ("strings.nbc", ()), ("racy_counter.nbc", ()), ("atomic_counter.nbc", ()),
], ids=lambda p: p if isinstance(p, str) else " ".join(p))
def test_other_examples_are_clean(program, args):
    r = _check(EX / program, *args, runs=6, trace_python=program == "hello.nbc")
    assert r.verdict == "clean", [m.to_dict() for m in r.leaks]


def test_allocation_noise_without_a_trend_is_clean(tmp_path):
    """The false-positive guard: random alloc/free and a random-size global, seeded."""
    p = tmp_path / "noisy.nbc"
    p.write_text(NOISY)
    for seed in (0, 3):
        r = _check(p, runs=25, seed=seed)
        assert r.verdict == "clean", [m.to_dict() for m in r.leaks]
        vm = r.metric("vm_bytes").values
        assert len(set(vm)) > 5  # it really is noisy
        assert r.metric("handles").values == (0,) * 25


def test_leak_outside_globals_in_the_runtime_scope(tmp_path):
    """alloc without free, dropped at once: outside a region the runtime scope keeps it."""
    p = tmp_path / "drop.nbc"
    p.write_text(".func main\n    push 4\n    alloc\n    pop\n    push 0\n    ret\n.end\n")
    r = _check(p, runs=5, trace_python=False)
    assert r.metric("handles.tensor").leak and r.sites[0].line == 3 and r.sites[0].source == "alloc"


# -- the verdict rule on synthetic series -------------------------------------------------


def test_monotonic_growth_is_a_leak():
    v = judge([100 + i for i in range(10)], threshold=0.5)  # tiny slope, but every delta > 0
    assert v.verdict == "leak" and v.consistent and v.growth == 9 and "every one of 9" in v.reason


def test_monotonic_growth_below_the_minimum_is_clean():
    v = judge([1000 + 8 * i for i in range(10)], min_growth=64 << 10)
    assert v.verdict == "clean" and v.consistent and "minimum" in v.reason


def test_noise_is_clean():
    rng = random.Random(7)
    for _ in range(300):
        v = judge([50_000 + rng.randint(0, 20_000) for _ in range(20)])
        assert v.verdict == "clean", v


def test_slope_over_threshold_is_a_leak_even_with_noise():
    rng = random.Random(1)
    values = [100_000 + 500 * i + rng.randint(-800, 800) for i in range(30)]
    assert any(b <= a for a, b in zip(values, values[1:]))  # not consistent growth
    v = judge(values, threshold=0.01)
    assert v.verdict == "leak" and not v.consistent and "trend" in v.reason
    assert v.slope == pytest.approx(500, rel=0.1)
    assert v.relative_growth == pytest.approx(v.slope * 29 / values[0])
    # the same series judged against a looser threshold is clean
    assert judge(values, threshold=0.5).verdict == "clean"


def test_a_single_step_is_not_a_trend():
    v = judge([10_000] * 10 + [12_000] * 10)
    assert v.verdict == "clean" and "step" in v.reason


def test_flat_and_shrinking_are_clean():
    assert judge([5] * 8).verdict == "clean"
    assert judge([100 - i for i in range(8)]).verdict == "clean"
    assert judge([3]).reason == "too few samples"


def test_fit():
    slope, t = _fit([1, 3, 5, 7])
    assert slope == 2 and t == float("inf")
    slope, t = _fit([0, 1, 0, 1, 0, 1])
    assert 0 < slope < 0.2 and t < 2


def test_parse_size():
    assert parse_size("200MB") == 200 * 10 ** 6
    assert parse_size("1GiB") == 1 << 30
    assert parse_size("512k") == 512 << 10 and parse_size("1.5M") == 3 << 19
    assert parse_size("4096") == 4096 and parse_size("64 KiB") == 64 << 10
    for bad in ("", "lots", "12XB", "-1MB", "MB"):
        with pytest.raises(ValueError):
            parse_size(bad)


# -- report shape, budget, limits, errors ------------------------------------------------


def test_report_json_shape():
    d = json.loads(json.dumps(_check(EX / "leaky.nbc", runs=4, warmup=1).to_dict()))
    assert {"program", "entry", "args", "runs", "warmup", "threshold", "seconds", "verdict", "ok", "leaking",
            "metrics", "sites", "globals", "python_sites", "budget"} <= set(d)
    assert d["verdict"] == "leak" and d["ok"] is False and "handles.tensor" in d["leaking"]
    names = [m["name"] for m in d["metrics"]]
    assert names[:8] == ["handles", "handle_bytes", "vm_bytes", "traced_bytes", "rss", "uss", "fds", "threads"]
    m = d["metrics"][0]
    assert {"name", "unit", "values", "deltas", "verdict", "slope", "fitted_growth", "relative_growth", "growth",
            "consistent", "t", "reason"} <= set(m)
    assert len(m["values"]) == 4 and len(m["deltas"]) == 3 and m["unit"] == "count"
    s = d["sites"][0]
    assert set(s) == {"where", "file", "line", "source", "function", "kind", "count_growth", "bytes_growth",
                      "count"}
    assert s["where"] == f"{s['file']}:{s['line']}"
    assert d["budget"] == {"max_rss": None, "peak_rss": d["budget"]["peak_rss"], "exceeded_at_run": None}
    assert all({"where", "size_diff", "count_diff"} == set(p) for p in d["python_sites"])


def test_max_rss_budget_stops_the_check():
    r = _check(EX / "regions.nbc", max_rss=1 << 20)
    assert r.budget_exceeded and r.budget_exceeded_at == 1 and not r.ok and r.peak_rss > 1 << 20
    r = _check(EX / "regions.nbc", runs=3, max_rss=1 << 40)
    assert r.ok and not r.budget_exceeded


def test_limits_are_per_run():
    """A fuel budget enough for one call (3,213 instructions) must not run out over many calls."""
    one = _check(EX / "loops.nbc", "200", runs=3, trace_python=False)
    assert one.ok
    r = _check(EX / "loops.nbc", "200", runs=30, warmup=0, trace_python=False, limits=Limits(max_steps=4000))
    assert r.runs == 30
    with pytest.raises(VMError) as e:
        _check(EX / "loops.nbc", "200", runs=3, trace_python=False, limits=Limits(max_steps=100))
    assert e.value.type_name == "LimitExceeded"


def test_program_error_propagates(tmp_path):
    p = tmp_path / "boom.nbc"
    p.write_text('.func main\n    push "no"\n    throw UserError\n.end\n')
    with pytest.raises(VMError) as e:
        _check(p, trace_python=False)
    assert e.value.type_name == "UserError"


def test_bad_configs():
    with pytest.raises(UsageError, match="runs"):
        _check(EX / "hello.nbc", runs=2)
    with pytest.raises(UsageError, match="no function 'nope'"):
        _check(EX / "hello.nbc", entry="nope")
    with pytest.raises(UsageError, match="argument"):
        _check(EX / "fib.nbc")


def test_uss_moving_without_rss_is_not_a_leak():
    """Other processes unmapping shared libraries turn our pages private: USS jumps, RSS does not."""
    from nbcvm.tools.leakcheck import Metric, _uss_needs_rss

    uss_vals = tuple(30_000_000 + 400_000 * i for i in range(10))
    flat = (50_000_000,) * 10
    uss = Metric("uss", "bytes", uss_vals, judge(uss_vals, min_growth=64 << 10))
    assert uss.leak
    out = _uss_needs_rss([Metric("rss", "bytes", flat, judge(flat, min_growth=64 << 10)), uss])
    assert not out[1].leak and "RSS did not" in out[1].verdict.reason
    grown = tuple(v + 20_000_000 for v in uss_vals)
    out = _uss_needs_rss([Metric("rss", "bytes", grown, judge(grown, min_growth=64 << 10)), uss])
    assert out[1].leak
