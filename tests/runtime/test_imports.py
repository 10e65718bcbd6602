"""ImportManager: lazy and exactly-once loading, state records, init cycles, search path."""

from __future__ import annotations

import io
import textwrap
import threading
import time
from pathlib import Path

import pytest

from nbcvm.errors import VMError
from nbcvm.runtime.imports import State, search_path_from
from nbcvm.runtime.limits import Limits
from nbcvm.runtime.runtime import Runtime


def write(folder: Path, **modules: str) -> Path:
    for name, src in modules.items():
        (folder / f"{name}.nbc").write_text(f".module {name}\n" + textwrap.dedent(src))
    return folder


def runtime(folder: Path, **kw) -> tuple[Runtime, io.StringIO]:
    out = io.StringIO()
    return Runtime(kw.pop("limits", Limits(timeout=20.0)), stdout=out, search_path=[folder], **kw), out


def ret(value: str = "0") -> str:
    return f"    push {value}\n    ret\n"


# --------------------------------------------------------------------------- lazy loading


def test_import_is_lazy_until_the_first_call(tmp_path):
    write(tmp_path,
          app=".import lib\n.func use\n    call lib.f 0\n    ret\n.end\n",
          lib='.func init\n    push "lib init"\n    print\n' + ret() + ".end\n.func f\n" + ret("7") + ".end\n")
    rt, out = runtime(tmp_path)
    app = rt.imports.get("app")
    assert "lib" not in rt.imports.records  # declared, not loaded
    assert out.getvalue() == ""
    assert rt.call(app, "use", []) == 7
    rec = rt.imports.records["lib"]
    assert rec.state is State.LOADED and rec.where == "app"
    assert out.getvalue() == "lib init\n"
    assert rt.call(app, "use", []) == 7 and out.getvalue() == "lib init\n"  # init ran once


def test_native_modules_load_through_the_same_records(tmp_path):
    write(tmp_path, app=".import math\n.func use\n    push 16.0\n    call math.sqrt 1\n    ret\n.end\n")
    rt, _ = runtime(tmp_path)
    assert rt.call(rt.imports.get("app"), "use", []) == 4.0
    rec = rt.imports.records["math"]
    assert (rec.kind, rec.state, rec.path) == ("native", State.LOADED, None)


# --------------------------------------------------------------------------- exactly once under a race


SLOW_INIT = """\
.global n 0
.func init
    .local i
    push 0
    store i
loop:
    load i
    push 20000
    lt
    jf done
    inc i 1
    jmp loop
done:
    push "init ran"
    print
    push 1
    gstore n
    push 0
    ret
.end
.func f
    gload n
    ret
.end
"""


def test_twenty_threads_racing_load_the_module_exactly_once(tmp_path):
    write(tmp_path, slow=SLOW_INIT)
    rt, out = runtime(tmp_path)
    loads = []
    real = rt.instantiate_file

    def counting(path, name):  # count module loads (read + assemble + verify)
        loads.append(name)
        time.sleep(0.02)  # widen the window in which the others arrive
        return real(path, name)

    rt.instantiate_file = counting  # type: ignore[method-assign]
    barrier = threading.Barrier(20)
    got, errors = [], []

    def worker():
        try:
            barrier.wait()
            got.append(rt.imports.get("slow"))
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    assert len(got) == 20 and len({id(m) for m in got}) == 1
    assert loads == ["slow"]
    assert out.getvalue() == "init ran\n"
    assert rt.call(got[0], "f", []) == 1


def test_racing_first_calls_through_a_call_site_load_once(tmp_path):
    write(tmp_path, slow=SLOW_INIT, app=".import slow\n.func use\n    call slow.f 0\n    ret\n.end\n")
    rt, out = runtime(tmp_path)
    app = rt.imports.get("app")
    barrier = threading.Barrier(20)
    results, errors = [], []

    def worker():
        try:
            # all threads run the same function, racing through its not-yet-linked call site
            barrier.wait()
            results.append(rt.call(app, "use", []))
        except BaseException as e:  # pragma: no cover
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors and results == [1] * 20
    assert out.getvalue().count("init ran") == 1


# --------------------------------------------------------------------------- records


def test_state_records_loaded_and_failed_with_reason(tmp_path):
    write(tmp_path,
          good=".func f\n" + ret() + ".end\n",
          bad='.func init\n    push "cannot start"\n    throw UserError\n.end\n')
    rt, _ = runtime(tmp_path)
    rt.imports.get("good")
    with pytest.raises(VMError) as e:
        rt.imports.get("bad")
    assert e.value.type_name == "UserError" and e.value.message == "cannot start"
    status = {r["name"]: r for r in rt.imports.status()}
    assert status["good"]["state"] == "loaded" and status["good"]["path"].endswith("good.nbc")
    assert status["good"]["seconds"] >= 0 and status["good"]["error"] is None
    assert status["bad"]["state"] == "failed" and status["bad"]["error"] == "cannot start"
    # A failed module stays failed, with its reason, instead of running init again.
    with pytest.raises(VMError, match="failed to load earlier: cannot start"):
        rt.imports.get("bad")


def test_invalid_module_file_is_an_import_error(tmp_path):
    (tmp_path / "broken.nbc").write_text(".module broken\n.func f\n    addd\n.end\n")
    rt, _ = runtime(tmp_path)
    with pytest.raises(VMError, match="module 'broken' is invalid") as e:
        rt.imports.get("broken")
    assert e.value.type_name == "ImportError"
    assert rt.imports.records["broken"].state is State.FAILED


# --------------------------------------------------------------------------- cycles


def test_init_cycle_raises_import_error_naming_the_path(tmp_path):
    write(tmp_path,
          a=".import b\n.func init\n    call b.f 0\n    pop\n" + ret() + ".end\n.func g\n" + ret("1") + ".end\n",
          b=".import c\n.func init\n    call c.f 0\n    pop\n" + ret() + ".end\n.func f\n" + ret("2") + ".end\n",
          c=".import a\n.func init\n    call a.g 0\n    pop\n" + ret() + ".end\n.func f\n" + ret("3") + ".end\n")
    rt, _ = runtime(tmp_path)
    with pytest.raises(VMError) as e:
        rt.imports.get("a")
    assert e.value.type_name == "ImportError"
    assert "a -> b -> c -> a" in e.value.message
    assert e.value.details["cycle"] == ["a", "b", "c", "a"]
    # innermost frame: the call in c.init that reached back into a
    inner = e.value.traceback[-1]
    assert (inner.module, inner.function, inner.op) == ("c", "init", "call")
    assert {r["name"]: r["state"] for r in rt.imports.status()} == {"a": "failed", "b": "failed", "c": "failed"}


def test_lazy_reference_cycle_works(tmp_path):
    # a calls b, b calls a: fine once both are loaded, because nothing runs at load time
    write(tmp_path,
          a=".import b\n.func f n\n    load n\n    push 0\n    le\n    jf more\n" + ret("100")
          + "more:\n    load n\n    push 1\n    sub\n    call b.g 1\n    ret\n.end\n",
          b=".import a\n.func g n\n    load n\n    call a.f 1\n    push 1\n    add\n    ret\n.end\n")
    rt, _ = runtime(tmp_path)
    assert rt.call(rt.imports.get("a"), "f", [5]) == 105
    assert rt.imports.records["b"].state is State.LOADED


def test_init_cycle_between_two_loading_threads_is_an_error_not_a_hang(tmp_path):
    write(tmp_path,
          a=".import time\n.import b\n.func init\n    push 0.2\n    call time.sleep 1\n    pop\n"
          "    call b.f 0\n    pop\n" + ret() + ".end\n.func f\n" + ret("1") + ".end\n",
          b=".import time\n.import a\n.func init\n    push 0.2\n    call time.sleep 1\n    pop\n"
          "    call a.f 0\n    pop\n" + ret() + ".end\n.func f\n" + ret("2") + ".end\n")
    rt, _ = runtime(tmp_path)
    barrier = threading.Barrier(2)
    errors: dict[str, BaseException | None] = {}

    def load(name):
        barrier.wait()
        try:
            rt.imports.get(name)
            errors[name] = None
        except VMError as e:
            errors[name] = e

    t0 = time.perf_counter()
    threads = [threading.Thread(target=load, args=(n,)) for n in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert time.perf_counter() - t0 < 3  # well under the 5 s wait timeout: detected, not timed out
    assert all(isinstance(e, VMError) and e.type_name == "ImportError" for e in errors.values()), errors
    assert any("cycle" in e.message for e in errors.values())  # type: ignore[union-attr]


# --------------------------------------------------------------------------- resolution


def test_missing_module_says_did_you_mean(tmp_path):
    write(tmp_path,
          app=".import mathz\n.import utils\n.func a\n    push 4.0\n    call mathz.sqrt 1\n    ret\n.end\n"
          ".func b\n    push 1\n    call utils.f 1\n    ret\n.end\n",
          util=".func f x\n    load x\n    ret\n.end\n")
    rt, _ = runtime(tmp_path)
    app = rt.imports.get("app")
    with pytest.raises(VMError, match=r"no module named 'mathz' \(did you mean 'math'\?\)") as e:
        rt.call(app, "a", [])
    assert e.value.type_name == "ImportError" and e.value.traceback[-1].op == "call"
    with pytest.raises(VMError, match=r"no module named 'utils' \(did you mean 'util'\?\)"):
        rt.call(app, "b", [])


def test_missing_function_and_wrong_arity_at_link_time(tmp_path):
    write(tmp_path,
          app=".import lib\n.func a\n    call lib.nope 0\n    ret\n.end\n.func b\n    push 1\n    call lib.two 1\n"
          "    ret\n.end\n",
          lib=".func note\n" + ret() + ".end\n.func two x y\n" + ret() + ".end\n")
    rt, _ = runtime(tmp_path)
    app = rt.imports.get("app")
    with pytest.raises(VMError, match=r"module 'lib' has no function 'nope' \(did you mean 'note'\?\)"):
        rt.call(app, "a", [])
    with pytest.raises(VMError, match=r"lib.two takes 2 argument\(s\), called with 1"):
        rt.call(app, "b", [])


def test_nbcpath_and_extra_paths_are_searched_in_order(tmp_path, monkeypatch):
    prog_dir, extra, env = tmp_path / "prog", tmp_path / "extra", tmp_path / "env"
    for d in (prog_dir, extra, env):
        d.mkdir()
    write(prog_dir, app=".import one\n.import two\n.func main\n    call one.v 0\n    call two.v 0\n    add\n"
          "    ret\n.end\n")
    write(extra, one=".func v\n" + ret("10") + ".end\n")
    write(env, one=".func v\n" + ret("999") + ".end\n", two=".func v\n" + ret("5") + ".end\n")
    monkeypatch.setenv("NBCPATH", str(env))
    path = search_path_from(prog_dir / "app.nbc", (str(extra),))
    assert path == [prog_dir.resolve(), extra, env]
    rt = Runtime(Limits(timeout=20.0), stdout=io.StringIO(), search_path=path)
    assert rt.call(rt.imports.get("app"), "main", []) == 15  # `one` from --path shadows NBCPATH's
    assert rt.imports.records["one"].path == str(extra / "one.nbc")
    assert rt.imports.records["two"].path == str(env / "two.nbc")


def test_dotted_module_names_are_folders(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "util.nbc").write_text(".func v\n" + ret("3") + ".end\n")  # no .module: named by import
    write(tmp_path, app=".import pkg.util\n.func main\n    call pkg.util.v 0\n    ret\n.end\n")
    rt, _ = runtime(tmp_path)
    assert rt.call(rt.imports.get("app"), "main", []) == 3
    assert rt.imports.records["pkg.util"].state is State.LOADED


def test_nbc_run_finds_modules_via_path_option_and_nbcpath(tmp_path, monkeypatch, capfd):
    from nbcvm.cli import main

    prog_dir, lib_dir = tmp_path / "prog", tmp_path / "lib"
    prog_dir.mkdir(), lib_dir.mkdir()
    write(prog_dir, app='.import lib\n.func main\n    call lib.v 0\n    print\n' + ret() + ".end\n")
    write(lib_dir, lib=".func v\n" + ret('"from lib"') + ".end\n")
    assert main(["run", str(prog_dir / "app.nbc"), "--path", str(lib_dir)]) == 0
    assert capfd.readouterr().out == "from lib\n"
    monkeypatch.setenv("NBCPATH", str(lib_dir))
    assert main(["run", str(prog_dir / "app.nbc")]) == 0
    assert capfd.readouterr().out == "from lib\n"
    monkeypatch.delenv("NBCPATH")
    assert main(["run", str(prog_dir / "app.nbc")]) == 1
    assert "no module named 'lib'" in capfd.readouterr().err


def test_init_cycle_through_the_program_itself_is_detected(tmp_path):
    """The program's own init counts as loading: b's init calling back into it is a cycle."""
    (tmp_path / "a.nbc").write_text(
        ".module a\n.import b\n.global ready false\n.func init\n    call b.f 0\n    pop\n    push true\n"
        "    gstore ready\n    push 0\n    ret\n.end\n.func g\n    gload ready\n    ret\n.end\n"
        ".func main\n    push 0\n    ret\n.end\n")
    (tmp_path / "b.nbc").write_text(
        ".module b\n.import a\n.func init\n    call a.g 0\n    print\n    push 0\n    ret\n.end\n"
        ".func f\n    push 1\n    ret\n.end\n")
    from nbcvm.tools.run import RunConfig, run_program
    import io

    outcome = run_program(RunConfig(str(tmp_path / "a.nbc")), stdout=io.StringIO())
    assert outcome.error.type_name == "ImportError" and "a -> b -> a" in outcome.error.message
