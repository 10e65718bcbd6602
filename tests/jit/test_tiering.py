"""Tiering, caching, fallbacks and the promises around them.

* ``nbcvm run hello.nbc`` never imports numba (or numpy), whatever ``--jit``;
* a second process with the same disk cache compiles nothing;
* ``--jit auto`` promotes hot functions (Python, then numba) and leaves
  short programs alone;
* a compile failure falls back and is recorded once, never retried;
* fuel, meter hooks, deep recursion, tracebacks across tiers: exact.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from jitutil import run_cli, run_src, tiers

from nbcvm.jit import native
from nbcvm.runtime.limits import Limits
from nbcvm.runtime.runtime import Runtime
from nbcvm.vm.interp import execute

ROOT = Path(__file__).resolve().parents[2]


def _py(code: str, env: dict | None = None) -> subprocess.CompletedProcess:
    e = dict(os.environ, PYTHONPATH=str(ROOT))
    e.update(env or {})
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=e, timeout=300)


@pytest.mark.parametrize("mode", ["auto", "eager", "off", None])
def test_hello_imports_neither_numba_nor_numpy(mode) -> None:
    flag = f"'--jit', {mode!r}, " if mode else ""
    p = _py("import sys\nfrom nbcvm.cli import main\n"
            f"rc = main(['run', {flag}{str(ROOT / 'examples' / 'hello.nbc')!r}])\n"
            "print('numba' in sys.modules, 'numpy' in sys.modules, rc)")
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines() == ["Hello, world!", "False False 0"]


RUN_AND_REPORT = """
import io, json, sys
from nbcvm.jit.tier import JitManager
from nbcvm.runtime.runtime import Runtime
mode = sys.argv[3] if len(sys.argv) > 3 else "eager"
if len(sys.argv) > 4:  # compile as soon as a function is translated (auto mode)
    JitManager.startup_estimate = JitManager.warm_startup_estimate = JitManager.compile_estimate = 0.0
rt = Runtime(stdout=io.StringIO(), jit=mode)
inst = rt.load_program(sys.argv[1])
o = rt.run_main(inst, [int(sys.argv[2])])
print(json.dumps({"out": rt.output.stream.getvalue(), "events": [e["event"] for e in rt.jit.events],
                  "numba_imported": "numba" in sys.modules}))
"""


def run_and_report(prog: Path, cache: Path, *args: str) -> dict:
    p = subprocess.run([sys.executable, "-c", RUN_AND_REPORT, str(prog), *args], capture_output=True,
                       text=True, env=dict(os.environ, PYTHONPATH=str(ROOT), NBCVM_JIT_CACHE=str(cache)),
                       timeout=300)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(native.compiler() is None, reason="no C compiler: every process compiles in-process")
def test_second_run_compiles_nothing(tmp_path: Path, jit_cache_dir: Path) -> None:
    prog = tmp_path / "tri.nbc"
    tag = uuid.uuid4().int % 100_000  # a program no earlier run has compiled
    prog.write_text(textwrap.dedent(f"""\
        .func tri n
            .local i s
            push {tag}
            store s
            push 0
            store i
        top:
            load i
            load n
            lt
            jf done
            load s
            load i
            add
            store s
            inc i 1
            jmp top
        done:
            load s
            ret
        .end
        .func main n
            load n
            call tri 1
            print
            push 0
            ret
        .end
        """))
    runs = [run_and_report(prog, jit_cache_dir, "1000") for _ in range(2)]
    assert runs[0]["out"] == runs[1]["out"] == f"{tag + 499500}\n"
    assert "numba-compiled" in runs[0]["events"] and runs[0]["numba_imported"]
    assert "numba-compiled" not in runs[1]["events"], runs[1]["events"]
    assert "numba-cache-hit" in runs[1]["events"]
    assert not runs[1]["numba_imported"]  # the cached shared library loads without numba
    assert any(p.name.startswith("nbj_") and p.suffix == ".so" for p in jit_cache_dir.iterdir())
    # auto mode: a hot function found in the cache runs compiled at once, long before a
    # compile would pay off, and still without numba
    auto = [run_and_report(prog, jit_cache_dir, "300000", "auto", *extra) for extra in (["now"], [])]
    assert auto[0]["out"] == auto[1]["out"] == f"{tag + 300000 * 299999 // 2}\n"
    assert {"numba-compiled", "numba-cache-hit"} & set(auto[0]["events"]), auto[0]["events"]
    assert auto[1]["events"].count("numba-cache-hit") >= 1 and "numba-compiled" not in auto[1]["events"]
    assert not auto[1]["numba_imported"]


HOT = """
.func work n
    .local i acc
    push 0
    store acc
    push 0
    store i
top:
    load i
    load n
    lt
    jf done
    load acc
    load i
    load i
    mul
    add
    push 1000003
    mod
    store acc
    inc i 1
    jmp top
done:
    load acc
    ret
.end
.func main
    .local k s
    push 0
    store s
    push 0
    store k
again:
    load k
    push 60
    lt
    jf end
    load s
    push 700
    call work 1
    add
    store s
    inc k 1
    jmp again
end:
    load s
    print
    push 0
    ret
.end
"""


def test_auto_promotes_hot_functions(monkeypatch) -> None:
    from nbcvm.jit.tier import JitManager

    monkeypatch.setattr(JitManager, "py_samples", 1)
    monkeypatch.setattr(JitManager, "startup_estimate", 0.0)
    monkeypatch.setattr(JitManager, "compile_estimate", 0.0)
    off = run_src(HOT, "off")
    auto = run_src(HOT, "auto")
    assert auto.key() == off.key()
    t = tiers(auto.runtime)
    assert t.get("t.work") == "numba", auto.runtime.jit.report()
    assert "t.main" not in t or t["t.main"] in ("python", "numba")  # main was running: no on-stack replacement


def test_auto_leaves_short_programs_alone() -> None:
    r = run_src(".func main\n    push 1\n    print\n    push 0\n    ret\n.end\n", "auto")
    assert r.stdout == "1\n"
    assert r.runtime.jit.report()["decisions"] == []
    assert r.runtime.jit.nb is None  # numba never loaded


def test_compile_failure_falls_back_once(monkeypatch) -> None:
    from nbcvm.jit import nbtier

    calls = []

    def broken(self, *a, **k):
        calls.append(1)
        raise RuntimeError("simulated numba failure")

    monkeypatch.setattr(nbtier.NumbaTier, "compile_closure", broken)
    off = run_src(HOT, "off")
    jit = run_src(HOT, "eager")
    assert jit.key() == off.key()
    events = [e for e in jit.runtime.jit.events if e["event"] == "numba-failed"]
    assert len(calls) == 2 and len(events) == 2  # main and work, once each although work runs 60 times
    d = {x["function"]: x for x in jit.runtime.jit.report()["decisions"]}
    assert d["t.work"]["tier"] == "python" and "simulated numba failure" in d["t.work"]["reason"]
    assert any(e.strategy.startswith("fallback") for e in jit.runtime.errors.events)


def test_translation_failure_stays_in_the_interpreter(monkeypatch) -> None:
    from nbcvm.jit import translate

    def broken(*a, **k):
        raise ValueError("simulated translator bug")

    monkeypatch.setattr(translate, "translate_py", broken)
    off = run_src(HOT, "off")
    jit = run_src(HOT, "eager")
    assert jit.key() == off.key()
    d = {x["function"]: x for x in jit.runtime.jit.report()["decisions"]}
    assert d["t.work"]["tier"] == "interpreter" and "simulated translator bug" in d["t.work"]["reason"]


@pytest.mark.parametrize("steps", [1, 3, 50, 997, 20_000, 20_011, 41_999, None])
def test_fuel_limit_trips_at_the_same_instruction(steps) -> None:
    lim = Limits(max_steps=steps)
    off = run_src(HOT, "off", limits=lim)
    jit = run_src(HOT, "eager", limits=lim)
    assert jit.key() == off.key()


def test_meter_hooks_run_at_the_same_steps() -> None:
    seen: dict[str, list] = {}
    for mode in ("off", "eager"):
        rt = Runtime(stdout=__import__("io").StringIO(), jit=mode)
        log = seen[mode] = []
        rt.meter.hooks.append(lambda m, fn, depth, log=log: log.append((m.steps, fn.name, depth)))
        from nbcvm.asm.assembler import assemble

        inst = rt.instantiate(assemble(HOT, "t.nbc"))
        rt.run_main(inst, [])
    assert len(seen["off"]) > 5
    assert seen["eager"] == seen["off"]


DEEP_STRINGS = """
.func build n
    load n
    push 0
    eq
    jf more
    push ""
    ret
more:
    load n
    push 1
    sub
    call build 1
    push "x"
    concat
    ret
.end
.func main n
    load n
    call build 1
    len
    print
    push 0
    ret
.end
"""


@pytest.mark.parametrize("n", [10, 3000])
def test_deep_recursion_in_the_python_tier(n: int) -> None:
    off = run_src(DEEP_STRINGS, "off", args=[n])
    jit = run_src(DEEP_STRINGS, "eager", args=[n])
    assert jit.key() == off.key() and jit.stdout == f"{n}\n"
    assert tiers(jit.runtime)["t.build"] == "python"


def test_deep_recursion_limit_in_the_python_tier() -> None:
    lim = Limits(max_depth=500)
    off = run_src(DEEP_STRINGS, "off", args=[2000], limits=lim)
    jit = run_src(DEEP_STRINGS, "eager", args=[2000], limits=lim)
    assert off.error == "LimitExceeded"
    assert jit.key() == off.key()


ACROSS = """
.func inner x
    load x
    push 9223372036854775700
    add
    ret
.end
.func middle x
    load x
    push 2
    mul
    call inner 1
    ret
.end
.func main
    push "start"
    print
    push 100
    call middle 1
    print
    push 0
    ret
.end
"""


def test_traceback_across_python_and_numba_frames() -> None:
    off = run_src(ACROSS, "off")
    jit = run_src(ACROSS, "eager")
    assert off.error == "OverflowError"
    assert jit.key() == off.key()
    t = tiers(jit.runtime)
    assert t["t.main"] == "python" and t["t.middle"] == "numba"


def test_jit_off_leaves_the_interpreter_alone() -> None:
    r = run_src(HOT, "off")
    rt = r.runtime
    assert rt.jit is None and rt.executor is execute
    inst = rt.imports.records["t"].instance
    assert all(fn.jit_state is None for fn in inst.fns.values())


def test_cli_jit_option() -> None:
    r = run_cli(["run", "--help"])
    assert "--jit [auto|off|eager]" in r.stdout
    bad = run_cli(["run", "--jit", "fast", str(ROOT / "examples" / "hello.nbc")])
    assert bad.code == 2
    ok = run_cli(["run", "--jit", "eager", str(ROOT / "examples" / "fib.nbc"), "15"])
    assert ok.code == 0 and ok.stdout == "610\n"


@pytest.mark.parametrize("prog,args", [("loops.nbc", [200_000]), ("nbody.nbc", [400])])
def test_running_loops_move_to_numba(monkeypatch, prog: str, args: list) -> None:
    """auto: a loop already running in the interpreter continues in Python, then in numba."""
    from nbcvm.jit.tier import JitManager

    monkeypatch.setattr(JitManager, "py_samples", 1)
    monkeypatch.setattr(JitManager, "startup_estimate", 0.0)
    monkeypatch.setattr(JitManager, "compile_estimate", 0.0)
    src = (ROOT / "examples" / prog).read_text()
    off = run_src(src, "off", args=args)
    auto = run_src(src, "auto", args=args)
    assert auto.key() == off.key()
    ev = auto.runtime.jit.events
    assert any(e["event"] == "osr-ready" for e in ev)
    assert any(e["event"].startswith("numba-") and "@pc" in e["detail"] for e in ev), ev


OSR_ERROR = """
.func main
    .local i acc
    push 1
    store acc
    push 0
    store i
top:
    load acc
    push 3
    mul
    store acc
    inc i 1
    load i
    push 100000
    lt
    jt top
    load acc
    print
    push 0
    ret
.end
"""


@pytest.mark.parametrize("numba", [False, True])
def test_error_inside_a_taken_over_loop(monkeypatch, numba: bool) -> None:
    from nbcvm.jit.tier import JitManager

    monkeypatch.setattr(JitManager, "py_samples", 1)
    monkeypatch.setattr(JitManager, "startup_estimate", 0.0)
    monkeypatch.setattr(JitManager, "compile_estimate", 0.0)
    monkeypatch.setattr("nbcvm.runtime.limits.CHECK_INTERVAL", 50)
    off = run_src(OSR_ERROR, "off")
    auto = run_src(OSR_ERROR, "auto", numba=numba)
    assert off.error == "OverflowError" and len(off.traceback) == 1
    assert auto.key() == off.key()


def test_without_numba_the_python_tier_runs(monkeypatch) -> None:
    class Missing:
        available = installed = False
        reason = "ImportError: No module named 'numba' (simulated)"

    monkeypatch.setattr("nbcvm.lazy.NUMBA", Missing())
    off = run_src(HOT, "off")
    jit = run_src(HOT, "eager")
    assert jit.key() == off.key()
    d = {x["function"]: x for x in jit.runtime.jit.report()["decisions"]}
    assert d["t.work"]["tier"] == "python" and "numba unavailable" in d["t.work"]["reason"]
    assert jit.runtime.jit.nb is None


GROW = """
.func grow n
    .local acc i
    push ""
    store acc
    push 0
    store i
top:
    load i
    load n
    lt
    jf done
    load acc
    push "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
    concat
    store acc
    inc i 1
    jmp top
done:
    load acc
    len
    ret
.end
.func main n
    load n
    call grow 1
    print
    push 0
    ret
.end
"""


def test_memory_limit_sees_translated_frames() -> None:
    """Translated frames are memory roots: the limit trips (the exact byte count may differ, docs/jit.md)."""
    lim = Limits(max_memory=300_000)
    off = run_src(GROW, "off", args=[20_000], limits=lim)
    jit = run_src(GROW, "eager", args=[20_000], limits=lim)
    assert off.error == jit.error == "LimitExceeded"
    assert off.traceback == jit.traceback
    assert abs(off.steps - jit.steps) <= 20  # the same allocation, or the one before or after it


def test_injected_jit_faults_are_recovered() -> None:
    r = run_cli(["run", "--jit", "eager", "--inject-faults", "jit:1.0", "--json",
                 str(ROOT / "examples" / "fib.nbc"), "15"])
    assert r.code == 0 and r.stdout == "610\n"
    data = json.loads(r.stderr[r.stderr.index("{"):])
    (row,) = [f for f in data["recovery"]["faults"] if f["point"] == "jit"]
    assert row["injected"] >= 2 and row["recovered"] == row["injected"] and row["propagated"] == 0


DEEP_NUMERIC = """
.global calls 0
.global scale 0.5
.func down n x flag
    gload calls
    push 1
    add
    gstore calls
    load n
    push 0
    le
    jf more
    load flag
    jf done
    push 1
    push 0
    idiv
    pop
done:
    load x
    ret
more:
    load n
    push 1
    sub
    load x
    gload scale
    add
    load flag
    call down 3
    ret
.end
.func main n flag
    load n
    push 0.25
    load flag
    push 0
    ne
    call down 3
    print
    gload calls
    print
    push 0
    ret
.end
"""


@pytest.mark.parametrize("flag", [0, 1])
def test_compiled_recursion_past_the_native_bound_goes_through_the_interpreter(flag: int) -> None:
    # 1,000 nested compiled calls: past 400 a call runs in the interpreter (the deep callback),
    # with float and bool arguments, a float result, globals synchronised both ways, and
    # (flag) an error raised at the bottom and unwound through both
    off = run_src(DEEP_NUMERIC, "off", args=[1000, flag])
    jit = run_src(DEEP_NUMERIC, "eager", args=[1000, flag])
    assert jit.key() == off.key()
    assert tiers(jit.runtime)["t.main"] == "numba"  # its closure holds down
    if flag:
        assert off.error == "ZeroDivisionError" and len(off.traceback) == 1002
    else:
        assert off.stdout == "500.25\n1001\n"


def test_run_stats_show_the_jit_tiers() -> None:
    r = run_cli(["run", str(ROOT / "examples" / "fib.nbc"), "20", "--jit", "eager", "--stats"])
    assert r.code == 0 and r.stdout == "6765\n"
    assert "JIT (eager)" in r.stderr
    rows = {line.split("│")[1].strip(): line for line in r.stderr.splitlines() if line.count("│") >= 3}
    assert "numba" in rows["fib.main"]  # main's closure holds fib: compiled together
    assert "compiled" in r.stderr or "loaded from the disk cache" in r.stderr
    j = run_cli(["run", str(ROOT / "examples" / "fib.nbc"), "20", "--jit", "eager", "--json"])
    data = json.loads(j.stderr)
    assert data["jit"]["mode"] == "eager" and data["jit"]["decisions"][0]["function"] == "fib.main"


@pytest.mark.skipif(native.compiler() is None, reason="no C compiler: every process compiles in-process")
def test_a_mutually_recursive_group_reloads_from_the_cache(tmp_path: Path, jit_cache_dir: Path) -> None:
    from test_native import MUTUAL

    tag = uuid.uuid4().int % 100_000  # a group no earlier run has compiled
    prog = tmp_path / "mutual.nbc"
    prog.write_text(MUTUAL.replace(".func main n\n", f".func main n\n    push {tag}\n    print\n"))
    runs = [run_and_report(prog, jit_cache_dir, "777") for _ in range(2)]
    assert runs[0]["out"] == runs[1]["out"] == f"{tag}\n0\n"
    assert "numba-compiled" in runs[0]["events"]
    assert "numba-cache-hit" in runs[1]["events"] and not runs[1]["numba_imported"]
