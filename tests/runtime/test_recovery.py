"""Error classification, recovery strategies, finally, and seeded fault injection."""

import io
import time

import pytest

from helpers import body, run_src
from nbcvm.asm.assembler import assemble
from nbcvm.errors import ERROR_TYPES, HOST_MAP, UsageError, VMError, from_host
from nbcvm.runtime.recovery import RecoveryPolicy, RuntimeErrorHandler, classify, parse_fault_spec
from nbcvm.runtime.runtime import Runtime

FAULTY = """
.import math
.import str
.func main
    .local i s
    push 0
    store i
    push 0.0
    store s
top:
    load s
    load i
    call math.sqrt 1
    add
    store s
    push 8
    alloc
    free
    inc i 1
    load i
    push 2000
    lt
    jt top
    load s
    push 3
    call str.fixed 2
    print
    push 0
    ret
.end
"""


@pytest.mark.parametrize("py_type,name", HOST_MAP)
def test_every_host_exception_maps_by_type(py_type, name):
    exc = py_type("some message that must not matter") if py_type is not KeyError else KeyError("k")
    err = from_host(exc)
    assert err.type_name == name
    c = classify(err)
    assert c.code == ERROR_TYPES[name].code and c.category == ERROR_TYPES[name].category


def test_unknown_host_exception_is_internal_error():
    class Weird(Exception):
        pass

    err = from_host(Weird("x"))
    assert err.type_name == "InternalError" and not classify(err).recoverable


def test_codes_are_stable_and_unique():
    codes = [t.code for t in ERROR_TYPES.values()]
    assert len(set(codes)) == len(codes)
    assert ERROR_TYPES["ZeroDivisionError"].code == 101 and ERROR_TYPES["LimitExceeded"].code == 600


def test_fault_injection_is_seeded_and_fully_recovered():
    def once(seed):
        out = io.StringIO()
        rt = Runtime(stdout=out, faults=parse_fault_spec("native:0.05,alloc:0.02"), seed=seed)
        outcome = rt.run_main(rt.instantiate(assemble(FAULTY)))
        return outcome, out.getvalue()

    clean_out = run_src(FAULTY)[1]
    a, out_a = once(7)
    b, out_b = once(7)
    assert out_a == out_b == clean_out and a.exit_code == 0  # invariants hold: same answer
    rows = {r["point"]: r for r in a.recovery["faults"]}
    assert rows == {r["point"]: r for r in b.recovery["faults"]}  # same seed, same counts
    assert rows["native"]["injected"] == 113 and rows["alloc"]["injected"] == 48
    assert all(r["recovered"] == r["injected"] and r["propagated"] == 0 for r in rows.values())


def test_retry_gives_up_and_propagates():
    rt = Runtime(stdout=io.StringIO(), recovery=RecoveryPolicy(retry_attempts=2, backoff_base=0.0))
    calls = []

    def flaky():
        calls.append(1)
        raise TimeoutError("host timed out")

    with pytest.raises(TimeoutError):
        rt.errors.retry("native", "host.flaky", flaky, rt.errors.transient)
    assert len(calls) == 3
    ev = rt.errors.events[-1]
    assert (ev.strategy, ev.attempts, ev.outcome) == ("retry", 3, "propagated")


def test_retry_recovers_a_transient_fault():
    h = RuntimeErrorHandler(None, RecoveryPolicy(backoff_base=0.0))
    n = []

    def once_flaky():
        n.append(1)
        if len(n) == 1:
            raise ConnectionError("reset")
        return 5

    assert h.retry("native", "x", once_flaky, h.transient) == 5
    assert h.events[-1].outcome == "recovered" and h.events[-1].attempts == 2


def test_deterministic_errors_are_not_retried():
    h = RuntimeErrorHandler(None, RecoveryPolicy(backoff_base=0.0))
    n = []

    def bad():
        n.append(1)
        raise ValueError("math domain error")

    with pytest.raises(ValueError):
        h.retry("native", "math.log", bad, h.transient)
    assert len(n) == 1 and not h.events  # abort: not recoverable by retrying, nothing swallowed


def test_circuit_breaker_opens_fails_fast_and_half_opens():
    h = RuntimeErrorHandler(None, RecoveryPolicy(retry_attempts=0, breaker_threshold=3, breaker_cooldown=0.1))
    calls = []

    def always_down():
        calls.append(1)
        raise TimeoutError("down")

    g = h.guard_native("net.fetch", always_down)
    for _ in range(3):
        with pytest.raises(TimeoutError):
            g()
    with pytest.raises(VMError) as ei:
        g()
    assert "circuit open" in ei.value.message and len(calls) == 3
    time.sleep(0.12)
    with pytest.raises(TimeoutError):
        g()  # half-open: one real trial
    assert len(calls) == 4
    assert [e.strategy for e in h.events].count("circuit-break") == 1


SUPERVISED = """
.global tries 0
.func flaky
    push 1
    atomic_add tries
    push 3
    lt
    jf ok
    push "not yet"
    throw UserError
ok:
    gload tries
    ret
.end
.func main
    supervise flaky 0
    join
    print
    push 0
    ret
.end
"""


def test_supervised_thread_restarts_within_budget():
    outcome, out, rt = run_src(SUPERVISED)
    assert out == "3\n" and outcome.exit_code == 0
    ev = [e for e in rt.errors.events if e.point == "thread"][-1]
    assert (ev.strategy, ev.attempts, ev.outcome) == ("isolate+restart", 3, "recovered")


def test_supervised_thread_gives_up_after_budget():
    out = io.StringIO()
    rt = Runtime(stdout=out, recovery=RecoveryPolicy(restart_budget=1))
    outcome = rt.run_main(rt.instantiate(assemble(SUPERVISED)))
    assert outcome.error.type_name == "UserError" and "not yet" in outcome.error.message


def test_thread_fault_injection_with_supervise():
    src = """
    .func w
        push 1
        ret
    .end
    .func main
        .local i s
        push 0
        store i
        push 0
        store s
    top:
        supervise w 0
        join
        load s
        add
        store s
        inc i 1
        load i
        push 50
        lt
        jt top
        load s
        print
        push 0
        ret
    .end
    """
    out = io.StringIO()
    rt = Runtime(stdout=out, faults=parse_fault_spec("thread:0.3"), seed=3)
    outcome = rt.run_main(rt.instantiate(assemble(src)))
    assert out.getvalue() == "50\n"
    (row,) = outcome.recovery["faults"]
    assert row["injected"] > 0 and row["recovered"] + row["propagated"] == row["injected"]
    assert row["recovery_rate"] >= 0.9


def test_finally_runs_on_normal_path_and_on_error():
    src = body("""
    finally cleanup e
    push "work"
    print
    endtry
cleanup:
    push "cleanup"
    print
    endfinally e
    finally cleanup2 e
    push 1
    push 0
    idiv
    pop
    endtry
cleanup2:
    push "cleanup2"
    print
    endfinally e
    push 0
    ret""", "e")
    outcome, out, _ = run_src(src)
    assert out == "work\ncleanup\ncleanup2\n"
    assert outcome.error.type_name == "ZeroDivisionError"  # re-raised after the cleanup


def test_finally_inside_callee_then_caught_by_caller():
    src = """
    .func f
        .local e
        finally done e
        push "x"
        throw UserError
        endtry
    done:
        push "f cleaned up"
        print
        endfinally e
        push 0
        ret
    .end
    .func main
        try h UserError
        call f 0
        pop
        endtry
        push 1
        ret
    h:
        errfield traceback
        len
        print
        push 0
        ret
    .end
    """
    outcome, out, _ = run_src(src)
    assert out == "f cleaned up\n2\n" and outcome.exit_code == 0


@pytest.mark.parametrize("spec", ["disk:0.1", "native", "native:x", "native:1.5"])
def test_bad_fault_specs(spec):
    with pytest.raises(UsageError):
        parse_fault_spec(spec)


def test_cli_inject_faults_table(tmp_path, capfd):
    from nbcvm.cli import main

    p = tmp_path / "faulty.nbc"
    p.write_text(FAULTY)
    assert main(["run", str(p), "--inject-faults", "native:0.05,alloc:0.02", "--seed", "7"]) == 0
    out, err = capfd.readouterr()
    assert out.strip() == run_src(FAULTY)[1].strip()
    assert "fault injection and recovery" in err and "100.0%" in err
    assert main(["run", str(p), "--inject-faults", "nope:1"]) == 2


def test_stress_with_faults(capfd):
    from nbcvm.cli import main

    code = main(["stress", "--threads", "4", "--iterations", "2", "--workload", "channel-fan-in",
                 "--inject-faults", "channel:0.02", "--json"])  # all 4 tries of one op fail with p = 0.02**4 (1 in 6 million)
    import json

    rep = json.loads(capfd.readouterr().out)
    w = rep["workloads"][0]
    assert code == 0 and w["violations"] == 0
    (row,) = w["faults"]
    assert row["point"] == "channel" and row["propagated"] == 0
