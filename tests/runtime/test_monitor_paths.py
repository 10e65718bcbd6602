"""PerformanceMonitor edges: histogram merging and empty cases, buffer flushes and event caps at
meter ticks, functions of the same name in two modules, and gauges without psutil."""

from __future__ import annotations

import io
import math
import textwrap
import types

import pytest

from helpers import FIB_SOURCE
from nbcvm.asm.assembler import assemble
from nbcvm.runtime import monitor
from nbcvm.runtime.monitor import Counter, Histogram, PerformanceMonitor, handle_count
from nbcvm.runtime.runtime import Runtime
from nbcvm.vm import profiled

FIB = FIB_SOURCE
FIB16_CALLS = 3193  # fib(16) makes 2 * F(17) - 1 calls; about 40k instructions, so two meter ticks


def profiled_run(src: str, args=(), search_path=None, **kw):
    rt = Runtime(stdout=io.StringIO(), search_path=search_path)
    inst = rt.instantiate(assemble(textwrap.dedent(src), "t.nbc"))
    mon = PerformanceMonitor("function", **kw)
    profiled.install(rt, mon)
    outcome = rt.run_main(inst, list(args))
    profiled.uninstall(rt, mon)
    return outcome, mon


def test_counter_to_dict_and_histogram_argument_checks():
    c = Counter("c")
    c.inc(2.5)
    assert c.to_dict() == {"type": "counter", "value": 2.5}
    for alpha in (0, 1, -0.5):
        with pytest.raises(ValueError, match=r"alpha must be in \(0, 1\)"):
            Histogram(alpha=alpha)
    assert math.isnan(Histogram().percentile(50))


def test_merging_an_empty_histogram_changes_nothing():
    h = Histogram()
    h.extend([1.0, 2.0])
    h.merge(Histogram())
    assert (h.count, h.sum, h.min, h.max, h.exact) == (2, 3.0, 1.0, 2.0, True)


def test_merging_a_sketch_turns_the_target_into_a_sketch():
    sketch = Histogram(exact_cap=3)
    sketch.extend([-4.0, 0.0, 0.0, 10.0, 20.0])
    assert not sketch.exact
    exact = Histogram()
    exact.extend([1.0, 2.0])
    exact.merge(sketch)
    assert not exact.exact
    assert (exact.count, exact.sum, exact.min, exact.max) == (7, 29.0, -4.0, 20.0)
    assert exact.percentile(0) == -4.0 and exact.percentile(100) == 20.0
    # sorted: -4, 0, 0, 1, 2, 10, 20 -- the rank-2 sample is a zero, reported exactly
    assert exact.percentile(100 * 2 / 6) == 0.0
    assert exact.percentile(100 * 4 / 6) == pytest.approx(2.0, rel=0.01)
    d = exact.to_dict()
    assert d["exact"] is False and d["relative_error"] == 0.01 and d["count"] == 7
    other = Histogram(exact_cap=1, alpha=0.05)
    other.extend([1.0, 2.0])
    with pytest.raises(ValueError, match="cannot merge sketches of different accuracy"):
        exact.merge(other)


def test_flushed_call_durations_still_count(monkeypatch):
    _, plain = profiled_run(FIB, [16])
    monkeypatch.setattr(monitor, "FLUSH_STEPS", 1)
    monkeypatch.setattr(monitor, "NODE_SAMPLE_FLUSH", 2)
    outcome, mon = profiled_run(FIB, [16])
    assert outcome.result == 987
    nodes = list(mon.thread_list()[0].nodes())
    flushed = [n for n in nodes if n.hist is not None]
    assert flushed, "a tick folded some sample buffers into histograms"
    for n in flushed:
        h = n.histogram()
        assert h.count == n.calls == n.flushed_n + len(n.samples)
        assert h.sum == n.incl
    f, g = mon.function("fib"), plain.function("fib")
    assert f.calls == g.calls == FIB16_CALLS
    # per-call durations (nested recursive calls each count, unlike inclusive time)
    assert f.hist.count == FIB16_CALLS
    assert f.hist.sum == sum(n.incl for n in nodes if n.fn is not None and n.fn.name == "fib")


def test_recorded_events_stop_at_the_cap():
    outcome, mon = profiled_run(FIB, [16], record_events=True, max_events=10)
    ts = mon.thread_list()[0]
    assert outcome.result == 987
    assert ts.events_truncated and ts.events is None and len(ts.kept) == 10


def test_same_function_name_in_two_modules_is_summed(tmp_path):
    (tmp_path / "lib.nbc").write_text(".func work\n    push 1\n    ret\n.end\n")
    src = """
    .import lib
    .func work
        push 2
        ret
    .end
    .func main
        call work 0
        call lib.work 0
        add
        call lib.work 0
        add
        ret
    .end
    """
    outcome, mon = profiled_run(src, search_path=[tmp_path])
    assert outcome.result == 4
    both = mon.function("work")
    assert (both.qualname, both.module, both.file, both.line, both.calls) == ("work", "*", "*", 0, 3)
    assert both.hist.count == 3
    parts = [mon.function("t.work"), mon.function("lib.work")]
    assert [p.calls for p in parts] == [1, 2]
    assert both.inclusive_ns == sum(p.inclusive_ns for p in parts)


def test_handle_count_falls_back_to_live_threads():
    assert handle_count(types.SimpleNamespace(threads=types.SimpleNamespace(live=3))) == 3
    assert handle_count(object()) == 0


def test_no_rss_gauge_without_psutil(monkeypatch):
    monkeypatch.setattr(monitor, "_PSUTIL", types.SimpleNamespace(available=False))
    mon = PerformanceMonitor()
    assert mon.rss() is None
    mon.sample_gauges()
    assert "rss" not in mon.gauges
