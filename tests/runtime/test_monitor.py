"""PerformanceMonitor: metric semantics, percentiles against numpy, exact counts from the profiled loop."""

from __future__ import annotations

import io
import math
import textwrap
import threading

import numpy as np
import pytest

from helpers import FIB_SOURCE
from nbcvm.asm.assembler import assemble
from nbcvm.runtime.monitor import Counter, Gauge, Histogram, PerformanceMonitor
from nbcvm.runtime.runtime import Runtime
from nbcvm.vm import fuse, interp, profiled

LOOP = """
.func main
    .local i
    push 0
    store i
top:
    load i
    push 1000
    lt
    jf done
    inc i 1
    jmp top
done:
    push 0
    ret
.end
"""
# instructions of LOOP: 1000 iterations, 1001 tests
LOOP_COUNTS = {"push": 1003, "store": 1, "load": 1001, "lt": 1001, "jf": 1001, "inc": 1000, "jmp": 1000,
               "ret": 1}

FIB = FIB_SOURCE


def profiled_run(src: str, args=None, level: str = "opcode", **kw):
    out = io.StringIO()
    rt = Runtime(stdout=out)
    inst = rt.instantiate(assemble(textwrap.dedent(src), "t.nbc"))
    mon = PerformanceMonitor(level, **kw)
    profiled.install(rt, mon)
    outcome = rt.run_main(inst, list(args or []))
    profiled.uninstall(rt, mon)
    return outcome, out.getvalue(), rt, mon


# -- metrics ------------------------------------------------------------------------------


def test_counter_and_gauge_semantics():
    c = Counter("c")
    threads = [threading.Thread(target=lambda: [c.inc() for _ in range(2000)]) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert c.value == 8000
    with pytest.raises(ValueError):
        c.inc(-1)
    g = Gauge("g")
    assert g.value is None
    for v in (5, 2, 9, 4):
        g.set(v)
    assert (g.value, g.min, g.max, g.samples) == (4, 2, 9, 4)


def test_histogram_exact_percentiles_match_numpy():
    rng = np.random.default_rng(7)
    data = np.concatenate([rng.lognormal(0, 1.5, 5000), rng.normal(-3, 1, 500), np.zeros(20)])
    h = Histogram()
    for x in data:
        h.add(float(x))
    assert h.exact and h.count == len(data)
    for q in (0, 1, 5, 25, 50, 75, 90, 95, 99, 99.9, 100):
        assert h.percentile(q) == pytest.approx(float(np.percentile(data, q)), rel=1e-12, abs=1e-12)
    assert h.mean == pytest.approx(float(np.mean(data)))
    assert (h.min, h.max) == (float(data.min()), float(data.max()))
    p = h.percentiles()
    assert set(p) == {"p50", "p95", "p99"}


@pytest.mark.parametrize("alpha", [0.01, 0.02])
def test_histogram_sketch_error_is_bounded(alpha):
    rng = np.random.default_rng(11)
    data = np.concatenate([rng.lognormal(3, 2, 40_000), -rng.lognormal(0, 1, 2_000), np.zeros(100)])
    rng.shuffle(data)
    h = Histogram(exact_cap=1000, alpha=alpha)
    h.extend(data[:500].tolist())
    for x in data[500:]:
        h.add(float(x))
    assert not h.exact and h.count == len(data)
    s = np.sort(data)
    for q in (1, 10, 50, 90, 95, 99, 99.9):
        est = h.percentile(q)
        rank = q / 100 * (len(s) - 1)
        lo, hi = s[math.floor(rank)], s[math.ceil(rank)]
        # the documented bound: within alpha of the rank-floor sample; numpy's value lies in [lo, hi]
        assert abs(est - lo) <= alpha * abs(lo) + 1e-9, (q, est, lo)
        ref = float(np.percentile(data, q))
        assert abs(est - ref) <= alpha * abs(ref) + (hi - lo) + 1e-9
    assert h.percentile(0) == pytest.approx(float(s[0]), rel=alpha)
    assert h.percentile(100) == float(s[-1])


def test_histogram_merge_exact_and_sketch():
    rng = np.random.default_rng(3)
    a, b = rng.exponential(2, 3000), rng.exponential(5, 2000)
    ha, hb = Histogram(), Histogram()
    ha.extend(a.tolist())
    hb.extend(b.tolist())
    ha.merge(hb)
    both = np.concatenate([a, b])
    assert ha.exact and ha.count == 5000
    assert ha.percentile(95) == pytest.approx(float(np.percentile(both, 95)))
    hs = Histogram(exact_cap=100)
    hs.extend(a.tolist())
    hs.merge(hb)
    assert not hs.exact and hs.count == 5000
    assert hs.percentile(50) == pytest.approx(float(np.percentile(both, 50)), rel=0.03)
    assert Histogram().to_dict() == {"type": "histogram", "count": 0}
    with pytest.raises(ValueError):
        ha.percentile(101)


def test_registry_returns_the_same_metric():
    mon = PerformanceMonitor()
    assert mon.counter("x") is mon.counter("x")
    assert mon.gauge("g") is mon.gauge("g")
    assert mon.histogram("h") is mon.histogram("h")
    with pytest.raises(ValueError):
        PerformanceMonitor("everything")


# -- exact counts from the profiled loop ----------------------------------------------------


def test_loop_of_known_length_gives_exact_opcode_counts():
    outcome, _, rt, mon = profiled_run(LOOP)
    assert outcome.exit_code == 0
    counts = {k: v[0] for k, v in mon.opcode_counts().items()}
    assert counts == LOOP_COUNTS
    assert sum(counts.values()) == rt.meter.steps == outcome.stats.steps == 6008
    assert all(v[1] >= 0 for v in mon.opcode_counts().values())


def test_fib_calls_and_times_add_up():
    outcome, _, rt, mon = profiled_run(FIB, [15])
    assert outcome.result == 610
    f = {s.qualname: s for s in mon.functions()}
    fib, main = f["t.fib"], f["t.main"]
    assert fib.calls == 1973 and main.calls == 1  # fib(15) makes 2*fib(16)-1 calls
    assert mon.total_calls() == 1974 == rt.meter.calls
    # recursion is not double counted; exclusive times partition the run
    assert fib.inclusive_ns <= main.inclusive_ns
    assert fib.exclusive_ns + main.exclusive_ns == main.inclusive_ns
    assert fib.hist.count == 1973 and fib.hist.exact
    counts = mon.opcode_counts()
    assert counts["call"][0] == 1973 and counts["ret"][0] == 1974
    assert sum(v[0] for v in counts.values()) == rt.meter.steps


def test_function_level_keeps_fusion_and_counts_calls():
    outcome, _, rt, mon = profiled_run(FIB, [12], level="function")
    assert outcome.result == 144
    assert mon.opcode_counts() == {}
    fn = rt.imports.get("t", where="t").fns["fib"]
    assert fn.errpc, "function level runs the fused closures"
    assert {s.qualname: s.calls for s in mon.functions()} == {"t.main": 1, "t.fib": 465}


def test_opcode_level_compiles_without_fusion_and_restores_the_switch():
    assert fuse.ENABLED
    _, _, rt, mon = profiled_run(LOOP)
    fn = rt.imports.get("t", where="t").fns["main"]
    assert not fn.errpc and id(fn) in mon.plain
    assert fuse.ENABLED


def test_plain_execute_is_the_default_and_comes_back():
    rt = Runtime(stdout=io.StringIO())
    assert rt.executor is interp.execute
    mon = PerformanceMonitor()
    profiled.install(rt, mon)
    assert isinstance(rt.executor, profiled.ProfiledExecutor) and mon.on_tick in rt.meter.hooks
    profiled.uninstall(rt, mon)
    assert rt.executor is interp.execute and mon.on_tick not in rt.meter.hooks


def test_errors_are_counted_and_frames_closed():
    src = """
    .func boom x
        load x
        push 0
        idiv
        ret
    .end
    .func main
        .local k
        push 0
        store k
    again:
        try caught ZeroDivisionError
        push 1
        call boom 1
        pop
        endtry
        jmp next
    caught:
        pop
    next:
        inc k 1
        load k
        push 3
        lt
        jt again
        push 5
        call boom 1
        ret
    .end
    """
    outcome, _, rt, mon = profiled_run(src)
    assert outcome.exit_code == 1 and outcome.error.type_name == "ZeroDivisionError"
    assert mon.errors() == 4
    f = {s.qualname: s for s in mon.functions()}
    assert f["t.boom"].calls == 4 and f["t.boom"].hist.count == 4
    ts = mon.thread_list()[0]
    assert len(ts.stack) == 1  # only the sentinel: every frame was closed
    assert f["t.main"].inclusive_ns == f["t.main"].exclusive_ns + f["t.boom"].inclusive_ns


def test_halt_closes_frames():
    src = """
    .func f
        push 7
        halt
    .end
    .func main
        call f 0
        ret
    .end
    """
    outcome, _, _, mon = profiled_run(src)
    assert outcome.exit_code == 7
    assert {s.qualname: s.calls for s in mon.functions()} == {"t.main": 1, "t.f": 1}
    assert len(mon.thread_list()[0].stack) == 1


def test_per_thread_state_keyed_by_host_thread():
    rt = Runtime(stdout=io.StringIO())
    inst = rt.instantiate(assemble(textwrap.dedent(FIB), "t.nbc"))
    mon = PerformanceMonitor("opcode")
    profiled.install(rt, mon)
    results = {}
    both = threading.Barrier(2)

    def work(n):
        results[n] = rt.call(inst, "fib", [n])
        both.wait()  # both alive at once: two distinct host idents

    threads = [threading.Thread(target=work, args=(n,)) for n in (10, 12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {10: 55, 12: 144}
    per = sorted(sum(n.calls for n in ts.nodes()) for ts in mon.thread_list())
    assert per == [177, 465]
    assert {ts.ident for ts in mon.thread_list()} == {t.ident for t in threads}
    assert mon.function("fib").calls == 177 + 465
    assert mon.op_count("call") == 176 + 464


def test_sequential_threads_get_their_own_rows_even_if_the_ident_is_reused():
    rt = Runtime(stdout=io.StringIO())
    inst = rt.instantiate(assemble(textwrap.dedent(FIB), "t.nbc"))
    mon = PerformanceMonitor("function")
    profiled.install(rt, mon)
    for n in (5, 6, 7):
        t = threading.Thread(target=rt.call, args=(inst, "fib", [n]))
        t.start()
        t.join()
    assert [sum(n.calls for n in ts.nodes()) for ts in mon.thread_list()] == [15, 25, 41]


def test_vm_threads_run_under_the_monitor():
    src = """
    .func work n
        load n
        push 1
        add
        ret
    .end
    .func main
        .local t
        push 41
        spawn work 1
        store t
        load t
        join
        ret
    .end
    """
    outcome, _, _, mon = profiled_run(src)
    assert outcome.result == 42
    assert len(mon.threads) == 2
    assert mon.function("work").calls == 1
    assert mon.op_count("add") == 1


def test_recorded_events_and_depth():
    outcome, _, _, mon = profiled_run(FIB, [8], record_events=True)
    ts = mon.thread_list()[0]
    assert len(ts.events) == 68  # one completed call each: 67 fib + main
    for node, start, end in ts.events:
        assert end >= start
    assert ts.peak_depth == 9 and ts.peak_fn.name == "fib"


def test_live_snapshot_and_gauges():
    _, _, rt, mon = profiled_run(LOOP)
    mon.sample_gauges()
    snap = mon.snapshot()
    assert snap["steps"] == 6008 and snap["calls"] == 1
    assert snap["opcodes"]["inc"][0] == 1000
    assert mon.gauges["rss"].value > 0
    assert mon.gauges["handles"].value >= 0


def test_running_calls_count_in_live_figures():
    rt = Runtime(stdout=io.StringIO())
    inst = rt.instantiate(assemble(textwrap.dedent(LOOP.replace("push 1000", "push 30000")), "t.nbc"))
    mon = PerformanceMonitor("function")
    seen = []
    mon.tick_listeners.append(lambda m, meter: seen.append((m.function("main", running=True),
                                                            m.function("main"))))
    profiled.install(rt, mon)
    rt.run_main(inst, [])
    assert seen, "the tick listener ran while main was running"
    live, done = seen[0]
    assert done.calls == 0 and done.inclusive_ns == 0  # entered, not returned yet
    assert live.calls == 1 and live.inclusive_ns > 0 and live.exclusive_ns == live.inclusive_ns
