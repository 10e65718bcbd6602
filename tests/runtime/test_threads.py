"""Concurrency primitives on one shared runtime."""

import pytest

from helpers import body, run_src
from nbcvm.asm.assembler import assemble

DEADLOCK = """
.import time
.global la nil
.global lb nil
.func grab first second
    load first
    push nil
    acquire
    push 0.2
    call time.sleep 1
    pop
    load second
    push 2.0
    acquire
    load second
    release
    load first
    release
    push 0
    ret
.end
.func main
    .local t1 t2
    newlock
    gstore la
    newlock
    gstore lb
    gload la
    gload lb
    spawn grab 2
    store t1
    gload lb
    gload la
    spawn grab 2
    store t2
    try caught ThreadError
    load t1
    join
    pop
    load t2
    join
    pop
    endtry
    push "no deadlock?"
    print
    push 1
    ret
caught:
    errfield message
    print
    push 0
    ret
.end
"""


def test_lock_order_inversion_is_reported_not_hung():
    outcome, out, _ = run_src(DEADLOCK)
    assert outcome.exit_code == 0, (outcome.error, out)
    assert "deadlock" in out and "lock" in out and "held by thread" in out


def test_join_reraises_thread_error_with_its_traceback():
    src = """
    .func bad x
        load x
        push 0
        idiv
        ret
    .end
    .func main
        push 1
        spawn bad 1
        join
        ret
    .end
    """
    outcome, _, _ = run_src(src)
    e = outcome.error
    assert e.type_name == "ZeroDivisionError" and "in thread 1" in e.message
    assert [t.function for t in e.traceback] == ["main", "bad"]


def test_channel_fan_in_and_close():
    src = """
    .func producer c k
        .local i
        push 0
        store i
    top:
        load c
        load i
        push nil
        send
        inc i 1
        load i
        load k
        lt
        jt top
        push 0
        ret
    .end
    .func main
        .local c ts i sum v ok
        chan 4
        store c
        newlist 0
        store ts
        push 0
        store i
    spawn_loop:
        load ts
        load c
        push 100
        spawn producer 2
        append
        inc i 1
        load i
        push 5
        lt
        jt spawn_loop
        push 0
        store i
        push 0
        store sum
    recv_loop:
        load c
        push nil
        recv
        store ok
        store v
        load sum
        load v
        add
        store sum
        inc i 1
        load i
        push 500
        lt
        jt recv_loop
        load sum
        print
        load c
        close
        load c
        push 0.1
        recv
        print
        print
        push 0
        ret
    .end
    """
    outcome, out, _ = run_src(src)
    assert outcome.error is None, outcome.error
    assert out.splitlines() == [str(5 * sum(range(100))), "false", "nil"]


def test_recv_timeout_and_closed_send():
    src = """
    .func main
        .local c
        chan 1
        store c
        try t TimeoutError
        load c
        push 0.05
        recv
        pop
        pop
        endtry
        push 1
        ret
    t:
        errfield type
        print
        load c
        close
        load c
        push 1
        push nil
        send
        push 0
        ret
    .end
    """
    outcome, out, _ = run_src(src)
    assert out == "TimeoutError\n" and outcome.error.type_name == "ThreadError"


def test_cas_and_atomic_add_exact_under_20_threads():
    src = """
    .global n 0
    .global flag 0
    .func work k
        .local i
        push 0
        store i
    top:
        push 1
        atomic_add n
        pop
        inc i 1
        load i
        load k
        lt
        jt top
        push 0
        push 1
        cas flag
        ret
    .end
    .func main
        .local ts i wins
        newlist 0
        store ts
        push 0
        store i
    s:
        load ts
        push 2000
        spawn work 1
        append
        inc i 1
        load i
        push 20
        lt
        jt s
        push 0
        store i
        push 0
        store wins
    j:
        load ts
        load i
        getitem
        join
        jf lost
        inc wins 1
    lost:
        inc i 1
        load i
        push 20
        lt
        jt j
        gload n
        print
        load wins
        print
        push 0
        ret
    .end
    """
    outcome, out, _ = run_src(src)
    assert out == "40000\n1\n", outcome.error


def test_thread_limit():
    from nbcvm.runtime.limits import Limits

    src = """
    .import time
    .func nap
        push 0.2
        call time.sleep 1
        ret
    .end
    .func main
        spawn nap 0
        spawn nap 0
        spawn nap 0
        push 0
        ret
    .end
    """
    outcome, _, _ = run_src(src, limits=Limits(max_threads=2))
    assert outcome.error.details["limit"] == "threads"


@pytest.mark.parametrize("code,err", [
    ("newlock\ndup\npush nil\nacquire\npush nil\nacquire", "already holds"),
    ("newlock\nrelease", "does not hold"),
    ("push 1\njoin", "join needs a thread"),
    ("threadid\njoin", "join needs a thread"),
])
def test_misuse(code, err):
    outcome, _, _ = run_src(f".func main\n{code}\npush 0\nret\n.end\n")
    assert err in outcome.error.message


def test_spawned_threads_run_on_the_runtimes_executor():
    import io
    import textwrap

    from nbcvm.asm.assembler import assemble
    from nbcvm.runtime.runtime import Runtime
    from nbcvm.vm import interp

    src = textwrap.dedent("""
    .func work n
        load n
        ret
    .end
    .func main
        push 1
        spawn work 1
        join
        ret
    .end
    """)
    rt = Runtime(stdout=io.StringIO())
    seen = []
    rt.executor = lambda r, fn, a: (seen.append(fn.qualname), interp.execute(r, fn, a))[1]
    rt.run_main(rt.instantiate(assemble(src, "t.nbc")), [])
    assert seen == ["t.main", "t.work"]


GRANDCHILD = """
.import time
.func late
    push 0.3
    call time.sleep 1
    pop
    push "grandchild done"
    print
    push 0
    ret
.end
.func child
    spawn late 0
    pop
    push 0
    ret
.end
.func main
    spawn child 0
    pop
    push 0
    ret
.end
"""

SPIN = """
.import time
.func spin
top:
    jmp top
.end
.func sleeper
    push 60
    call time.sleep 1
    ret
.end
.func main
    spawn spin 0
    pop
    spawn sleeper 0
    pop
    push 0
    ret
.end
"""


def test_run_waits_for_threads_started_by_threads():
    # wait_all used to snapshot the thread table once: a grandchild started after
    # the snapshot outlived run_main
    outcome, out, rt = run_src(GRANDCHILD)
    assert out == "grandchild done\n" and outcome.exit_code == 0
    assert rt.threads.live == 0 and outcome.cancelled_threads == 0


def test_threads_still_running_after_the_grace_are_cancelled(monkeypatch):
    from nbcvm.runtime.runtime import Runtime

    monkeypatch.setattr(Runtime, "_grace", lambda self: 0.2)
    outcome, out, rt = run_src(SPIN)
    assert outcome.exit_code == 0 and outcome.cancelled_threads == 2
    assert rt.threads.live == 0  # the spinning and the sleeping thread both stopped
    assert rt.meter.cancelled is None  # and the runtime runs the next program normally
    before = rt.meter.steps
    again = rt.run_main(rt.instantiate(assemble(body("push 7\nret"), "again.nbc")))
    assert again.exit_code == 7 and again.error is None and rt.meter.steps - before == 2
