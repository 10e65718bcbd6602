"""run_stress on small programs: entry points it refuses, every kind of check result, progress."""

import pytest

from nbcvm.errors import UsageError
from nbcvm.tools.stress import StressConfig, run_stress

MAIN = ".global n 0\n.func main\n    push 1\n    atomic_add n\n    pop\n    push 0\n    ret\n.end\n"


def stress(tmp_path, src: str, **kw):
    p = tmp_path / "prog.nbc"
    p.write_text(src)
    kw.setdefault("threads", 2)
    kw.setdefault("iterations", 3)
    return run_stress(StressConfig(str(p), **kw))


@pytest.mark.parametrize("src,message", [
    (".func stress a b\n    push 0\n    ret\n.end\n", "stress must take one parameter: the thread index"),
    (".func main x\n    push 0\n    ret\n.end\n", "a stress program needs `stress i` or a `main` without parameters"),
    (".func helper\n    push 0\n    ret\n.end\n", "a stress program needs `stress i` or a `main` without parameters"),
])
def test_entry_points_refused(tmp_path, src, message):
    with pytest.raises(UsageError) as ei:
        stress(tmp_path, src)
    assert str(ei.value) == f"<input>: {message}"


def test_at_least_one_thread(tmp_path):
    with pytest.raises(UsageError, match="--threads must be at least 1"):
        stress(tmp_path, MAIN, threads=0)


@pytest.mark.parametrize("check,ok,violations,messages", [
    ("    gload n\n    push 6\n    eq\n    ret", True, 0, ()),
    ("    push false\n    ret", False, 1, ("check returned false",)),
    ('    push "nope"\n    ret', False, 1, ("check returned nope, expected a bool or an int",)),
    ('    push "bad"\n    throw UserError', False, 1, ("check failed: UserError: bad",)),
])
def test_check_results(tmp_path, check, ok, violations, messages):
    report = stress(tmp_path, MAIN + f".func check\n{check}\n.end\n")
    w = report.workloads[0]
    assert (report.ok, w.violations, w.messages) == (ok, violations, messages)
    assert w.calls == 6 and w.errors == 0


def test_check_gets_the_total_and_progress_is_reported(tmp_path):
    # each call sleeps a little, so the runner polls (and reports progress) while threads still run
    p = tmp_path / "prog.nbc"
    p.write_text(".import time\n" + MAIN.replace("    push 0\n    ret", "    push 0.02\n    call time.sleep 1\n"
                                                  "    pop\n    push 0\n    ret")
                 + ".func check total\n    gload n\n    load total\n    sub\n    ret\n.end\n")
    seen = []
    report = run_stress(StressConfig(str(p), threads=2, iterations=4),
                        lambda name, done, total: seen.append((name, done, total)))
    assert report.ok and report.workloads[0].violations == 0 and report.workloads[0].calls == 8
    assert seen, "progress was reported while the threads ran"
    assert {(name, total) for name, _, total in seen} == {("prog", 8)}
    dones = [done for _, done, _ in seen]
    assert dones == sorted(dones) and 0 <= dones[0] and dones[-1] <= 8


def test_progress_ends_with_the_final_count_even_when_all_was_done_at_once(tmp_path):
    p = tmp_path / "quick.nbc"
    p.write_text(MAIN)
    seen = []
    report = run_stress(StressConfig(str(p), threads=2, iterations=3),
                        lambda name, done, total: seen.append((done, total)))
    assert report.ok and seen and seen[-1] == (6, 6)
