"""nbcvm stress: it must catch the race, pass the atomic version, and report hangs."""

import json
from pathlib import Path

import pytest

from nbcvm.cli import main
from nbcvm.errors import UsageError
from nbcvm.tools.stress import StressConfig, percentile, run_stress

EX = Path(__file__).parent.parent.parent / "examples"


def test_racy_counter_loses_updates_and_atomic_does_not():
    racy = run_stress(StressConfig(str(EX / "racy_counter.nbc"), threads=20, iterations=5))
    w = racy.workloads[0]
    assert not racy.ok and w.violations > 0 and w.calls == 100
    atomic = run_stress(StressConfig(str(EX / "atomic_counter.nbc"), threads=20, iterations=5))
    assert atomic.ok and atomic.workloads[0].violations == 0 and atomic.workloads[0].operations == 100


def test_builtin_suite_small(capfd):
    code = main(["stress", "--threads", "4", "--iterations", "2", "--json"])
    out = json.loads(capfd.readouterr().out)
    assert code == 0 and out["ok"] is True
    names = {w["name"] for w in out["workloads"]}
    assert names == {"atomic-counter", "channel-ping-pong", "channel-fan-in", "lazy-import", "tensor-ops",
                     "lock-ordering"}
    assert all(w["violations"] == 0 and w["errors"] == 0 for w in out["workloads"])


def test_cli_exit_codes_and_table(capfd):
    assert main(["stress-threads", str(EX / "racy_counter.nbc"), "--threads", "10", "--iterations", "3"]) == 1
    out = capfd.readouterr().out
    assert "racy_counter" in out and "FAIL" in out and "lost updates" in out
    assert main(["stress", "--workload", "nope"]) == 2
    assert "unknown workload" in capfd.readouterr().err


def test_watchdog_dumps_stacks(tmp_path, capfd):
    p = tmp_path / "hang.nbc"
    p.write_text(".import time\n.func stress i\n    push 3.0\n    call time.sleep 1\n    ret\n.end\n")
    report = run_stress(StressConfig(str(p), threads=2, iterations=1, watchdog=0.3))
    w = report.workloads[0]
    assert w.hung and not report.ok
    assert any("hang.stress" in frame for stack in w.stacks.values() for frame in stack)


def test_errors_and_bad_check_are_findings(tmp_path):
    p = tmp_path / "err.nbc"
    p.write_text(".func stress i\n    load i\n    push 0\n    idiv\n    ret\n.end\n"
                 ".func check\n    push \"x\"\n    ret\n.end\n")
    w = run_stress(StressConfig(str(p), threads=3, iterations=2)).workloads[0]
    assert w.errors == 6 and w.violations == 1 and "ZeroDivisionError" in " ".join(w.messages)


def test_program_without_entry_is_usage_error(tmp_path):
    p = tmp_path / "noentry.nbc"
    p.write_text(".func other\n    push 0\n    ret\n.end\n")
    with pytest.raises(UsageError):
        run_stress(StressConfig(str(p), threads=2))


def test_percentile_matches_numpy():
    import numpy as np

    xs = sorted([3.0, 1.0, 4.0, 1.5, 9.0, 2.6, 5.0])
    for q in (0, 50, 95, 99, 100):
        assert percentile(xs, q) == pytest.approx(float(np.percentile(xs, q)))
    assert percentile([], 50) == 0.0


def test_duration_mode():
    report = run_stress(StressConfig(str(EX / "atomic_counter.nbc"), threads=2, duration=0.2))
    w = report.workloads[0]
    assert w.calls >= 2 and w.seconds >= 0.2 and w.violations == 0


def test_fuel_ticks_in_many_threads_resume_each_thread_where_it_ran_out(monkeypatch):
    # The pc a tick resumes at was one attribute of the shared meter: a thread could resume
    # at another thread's pc (lost or repeated atomic adds, locals read before they were
    # set).  Ticks every 7 instructions make the interleaving certain to come up.
    monkeypatch.setattr("nbcvm.runtime.limits.CHECK_INTERVAL", 7)
    rep = run_stress(StressConfig(None, threads=8, iterations=40, workloads=("atomic-counter",),
                                  switch_interval=1e-6))
    w = rep.workloads[0]
    assert (w.violations, w.errors, w.calls) == (0, 0, 320), w.messages


def test_meter_resume_and_depth_are_per_host_thread():
    import threading

    from nbcvm.runtime.limits import Limits, Meter

    m = Meter(Limits())
    m.resume, m.depth = 5, 2
    seen = {}

    def other():
        seen["before"] = (m.resume, m.depth)
        m.resume, m.depth = 9, 7
        seen["after"] = (m.resume, m.depth)

    t = threading.Thread(target=other)
    t.start()
    t.join()
    assert seen == {"before": (0, 0), "after": (9, 7)} and (m.resume, m.depth) == (5, 2)


def test_a_long_run_that_makes_progress_is_not_hung(tmp_path):
    # each call takes 0.15 s: the run takes ~0.9 s, three times the watchdog, but calls keep finishing
    p = tmp_path / "slow.nbc"
    p.write_text(".import time\n.func stress i\n    push 0.15\n    call time.sleep 1\n    ret\n.end\n")
    report = run_stress(StressConfig(str(p), threads=2, iterations=6, watchdog=0.3))
    w = report.workloads[0]
    assert not w.hung and report.ok and w.calls == 12 and w.seconds > 0.6
