"""ResourceManager: scoped release, callbacks, double free, use after free, pressure."""

import io

import pytest

from helpers import body, run_src
from nbcvm.asm.assembler import assemble
from nbcvm.bytecode.verifier import verify
from nbcvm.errors import VerifyError, VMError
from nbcvm.runtime.limits import Limits
from nbcvm.runtime.runtime import Runtime


def test_region_releases_on_normal_exit():
    src = body("""
    region
    push 100
    alloc
    store a
    push 10
    alloc
    pop
    endregion
    load a
    tsum
    print
    push 0
    ret""", "a")
    outcome, out, rt = run_src(src)
    e = outcome.error
    assert e.type_name == "ResourceError" and "use after free of tensor handle #1" in e.message
    assert "end of region" in e.message and rt.resources.snapshot()["live"] == 0


def test_region_releases_on_error_unwind_and_catch():
    src = """
    .func inner
        region
        push 1000
        alloc
        pop
        push 1
        push 0
        idiv
        endregion
        ret
    .end
    .func main
        try caught *
        call inner 0
        pop
        endtry
        push 1
        ret
    caught:
        pop
        push 0
        ret
    .end
    """
    io_ = io.StringIO()
    rt = Runtime(stdout=io_)
    inst = rt.instantiate(assemble(src))
    assert rt.call(inst, "main", []) == 0
    assert rt.resources.snapshot()["live"] == 0 and not any(rt.resources.regions.values())
    assert rt.resources.released["tensor"] == 1


def test_region_in_same_frame_try():
    src = body("""
    try h *
    region
    push 8
    alloc
    pop
    push "x"
    throw UserError
    endregion
    endtry
    push 1
    ret
h:
    pop
    push 0
    ret""")
    outcome, _, rt = run_src(src)
    assert outcome.exit_code == 0 and rt.resources.released["tensor"] == 1


def test_double_free_and_use_after_free():
    outcome, _, _ = run_src(body("push 4\nalloc\ndup\nfree\nfree\npush 0\nret"))
    assert outcome.error.type_name == "ResourceError" and "double free of tensor handle #1" in outcome.error.message
    outcome, _, _ = run_src(body("push 4\nalloc\ndup\nfree\ntsum\nprint\npush 0\nret"))
    assert "use after free" in outcome.error.message
    outcome, _, _ = run_src(body("push 4\nalloc\ndup\nfree\npush 0\ngetitem\nprint\npush 0\nret"))
    assert "use after free" in outcome.error.message


def test_handles_are_tensors_for_tensor_ops():
    outcome, out, _ = run_src(body("push 2\npush 2\nnewlist 2\nalloc\npush 1.5\ntadd\ntsum\nprint\npush 0\nret"))
    assert out == "6.0\n"


def test_unfreed_allocation_is_live_until_runtime_scope_ends():
    src = ".global keep nil\n" + body("push 10\nalloc\ngstore keep\npush 0\nret")
    io_ = io.StringIO()
    rt = Runtime(stdout=io_)
    inst = rt.instantiate(assemble(src, "leak.nbc"))
    rt.call(inst, "main", [])
    snap = rt.resources.snapshot()
    assert snap["live"] == 1 and snap["kinds"]["tensor"] == {"count": 1, "bytes": 80}
    (site, info), = snap["sites"].items()
    assert "leak.nbc:4" in site and info["count"] == 1
    rt.resources.end_runtime()
    assert rt.resources.snapshot()["live"] == 0


def test_callbacks_run_once_in_reverse_and_survive_failures():
    rt = Runtime(stdout=io.StringIO())
    rm = rt.resources
    calls = []

    def cb(i, fail=False):
        def f():
            calls.append(i)
            if fail:
                raise RuntimeError(f"cleanup {i} broke")
        return f

    rm.open_region(1, 0)
    for i in range(4):
        rm.register("native", object(), 1, ("m", "f", "x.nbc", i), cleanup=cb(i, fail=i == 2))
    with pytest.raises(VMError) as ei:
        rm.close_region()
    assert calls == [3, 2, 1, 0] and "cleanup 2 broke" in ei.value.message
    rm.end_runtime()
    assert calls == [3, 2, 1, 0]  # exactly once
    assert [e.kind for e in rm.events] == ["cleanup-error"]


@pytest.mark.parametrize("code,msg", [
    ("endregion\npush 0\nret", "endregion without an open region"),
    ("region\npush 0\nret", "returns with 1 open region"),
    ("push 1\njt a\nregion\na:\npush 0\nret", "open region"),
])
def test_verifier_balances_regions(code, msg):
    with pytest.raises(VerifyError) as ei:
        verify(assemble(body(code)))
    assert any(msg in d.message for d in ei.value.diagnostics), [d.message for d in ei.value.diagnostics]


def test_hard_memory_pressure_is_catchable():
    src = body("""
    try h ResourceError
    push 1000000
    alloc
    pop
    endtry
    push 1
    ret
h:
    errfield message
    print
    push 0
    ret""")
    outcome, out, rt = run_src(src, limits=Limits(memory_hard=1))
    assert outcome.exit_code == 0 and "memory pressure" in out
    assert [e.kind for e in rt.resources.events] == ["hard-limit"]


def test_soft_memory_pressure_cleans_up():
    src = body("push 200000\nalloc\npop\npush 0\nret")
    outcome, _, rt = run_src(src, limits=Limits(memory_soft=1))
    assert outcome.error is None and [e.kind for e in rt.resources.events] == ["soft-limit"]


def test_handle_limit():
    src = body("top:\npush 1\nalloc\npop\njmp top")
    outcome, _, _ = run_src(src, limits=Limits(max_handles=50))
    assert outcome.error.details["limit"] == "handles"


def test_threads_scope_released_when_thread_ends():
    src = """
    .func work
        push 16
        alloc
        pop
        push 0
        ret
    .end
    .func main
        spawn work 0
        join
        ret
    .end
    """
    rt = Runtime(stdout=io.StringIO())
    inst = rt.instantiate(assemble(src))
    rt.call(inst, "main", [])
    assert rt.resources.created["tensor"] == 1 and rt.resources.released["tensor"] == 1


def test_finished_threads_release_their_handles():
    import gc

    src = ".func work\n    push 1\n    ret\n.end\n.func main\n    spawn work 0\n    join\n    ret\n.end\n"
    rt = Runtime(Limits(max_handles=50), stdout=io.StringIO())
    inst = rt.instantiate(assemble(src))
    for _ in range(120):
        rt.call(inst, "main", [])
    gc.collect()
    assert rt.resources.snapshot()["kinds"].get("thread") is None


def test_alloc_counts_against_max_memory():
    src = ".global keep nil\n" + body("""
    newlist 0
    gstore keep
top:
    gload keep
    push 131072
    alloc
    append
    jmp top""")
    outcome, _, _ = run_src(src, limits=Limits(max_memory=10_000_000))
    assert outcome.error.details["limit"] == "memory"


def test_weak_handle_collected_while_lock_is_held_does_not_deadlock():
    # The finalizer of a weak handle can run inside any allocation, including one made
    # while this thread holds the manager's lock (a cyclic gc inside register()).
    import gc
    import threading

    rt = Runtime(stdout=io.StringIO())
    rm = rt.resources

    class Box:
        pass

    box = Box()
    h = rm.register("channel", box, 1, ("m", "f", "x.nbc", 1), weak=True)
    done = threading.Event()

    def collect_under_lock():
        nonlocal box
        with rm._lock:
            box = None
            gc.collect()
        done.set()

    t = threading.Thread(target=collect_under_lock, daemon=True)
    t.start()
    assert done.wait(10), "finalizer deadlocked on the resource lock"
    snap = rm.snapshot()
    assert snap["live"] == 0 and h.released_at == "garbage collection"
    assert rm.released["channel"] == 1
