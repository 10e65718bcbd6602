"""native.py: numba's IR -> a plain shared library, loaded with ctypes."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from nbcvm.asm.assembler import assemble
from nbcvm.jit import native
from nbcvm.runtime.runtime import Runtime

# numba's calling convention: i32 status, return slot, exception slot, then the arguments
TWICE = """
declare double @llvm.sqrt.f64(double)
define i32 @"f"(ptr %ret, ptr %exc, i64 %a, double %x) #0 {
  %r = fptosi double %x to i64
  %s = call double @llvm.sqrt.f64(double %x)
  %t = fptosi double %s to i64
  %u = mul i64 %a, 2
  %v = add i64 %u, %t
  store i64 %v, ptr %ret
  ret i32 0
}
attributes #0 = { "target-cpu"="skylake" "target-features"="+avx2" }
"""

NEEDS_NUMBA = """
declare void @numba_gil_ensure(ptr)
declare void @NRT_unused(ptr)
define i32 @"f"(ptr %ret, ptr %exc, i64 %a) {
  call void @numba_gil_ensure(ptr %exc)
  store i64 %a, ptr %ret
  ret i32 0
}
"""


NEEDS_CC = pytest.mark.skipif(native.compiler() is None, reason="no C compiler to link libraries here")


@NEEDS_CC
def test_build_and_load_a_library(tmp_path: Path) -> None:
    lib = tmp_path / "twice.so"
    native.build(TWICE, "f", ["i", "f"], "i", lib)
    fn = native.load(lib, ["i", "f"], "i")
    assert fn(20, 16.0) == 44  # 2 * 20 + sqrt(16)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporaries left


def test_wrapper_is_c_abi_around_numbas_convention() -> None:
    ir = native.wrapper_ir("_ZN5mangled", ["i", "f"], "f")
    assert "define double @nbcvm_entry(i64 %a0, double %a1)" in ir
    assert 'call i32 @"_ZN5mangled"(ptr %ret, ptr %exc, i64 %a0, double %a1)' in ir


@NEEDS_CC
def test_symbols_of_numbas_runtime_are_refused(tmp_path: Path) -> None:
    with pytest.raises(native.NativeUnavailable, match="numba_gil_ensure") as ei:
        native.build(NEEDS_NUMBA, "f", ["i"], "i", tmp_path / "x.so")
    assert "NRT_unused" not in str(ei.value)  # declared but never called: not a symbol
    assert not list(tmp_path.iterdir())


def test_no_compiler_means_no_library(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(native, "compiler", lambda: None)
    with pytest.raises(native.NativeUnavailable, match="no C compiler"):
        native.build(TWICE, "f", ["i", "f"], "i", tmp_path / "x.so")


SQUARES = """
.func squares n
    .local i s
    push 0
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
    load i
    mul
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
    call squares 1
    print
    push 0
    ret
.end
"""


def _run(src: str, cache: Path) -> tuple[str, list[str]]:
    out = io.StringIO()
    rt = Runtime(stdout=out, jit="eager")
    rt.jit.cache_dir = str(cache)
    o = rt.run_main(rt.instantiate(assemble(src, "sq.nbc")), [1000])
    assert o.exit_code == 0 and o.error is None
    return out.getvalue(), [e["event"] for e in rt.jit.events]


def test_without_a_compiler_the_closure_runs_in_process(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(native, "compiler", lambda: None)
    out, events = _run(SQUARES.replace("push 0\n    store s", "push 7\n    store s"), tmp_path)
    assert out == f"{7 + sum(i * i for i in range(1000))}\n"
    assert "native-unavailable" in events and "numba-compiled" in events
    assert not list(tmp_path.glob("*.so"))


@NEEDS_CC
def test_a_broken_library_in_the_cache_is_rebuilt(tmp_path: Path) -> None:
    src = SQUARES.replace("push 0\n    store s", "push 11\n    store s")
    want = f"{11 + sum(i * i for i in range(1000))}\n"
    first, second = tmp_path / "a", tmp_path / "b"
    assert _run(src, first)[0] == want
    (lib,) = first.glob("*.so")
    second.mkdir()  # another path: this process keeps the first library loaded under its name
    (second / lib.name).write_bytes(b"not a shared library")
    out, events = _run(src, second)
    assert out == want and "cache-invalid" in events and "numba-compiled" in events
    assert native.load(second / lib.name, ["i"] * 7, "i")  # rebuilt: loads


def test_a_cache_directory_others_can_write_is_not_used(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)  # anyone could drop a library here
    src = SQUARES.replace("push 0\n    store s", "push 13\n    store s")
    out, events = _run(src, shared)
    assert out == f"{13 + sum(i * i for i in range(1000))}\n"
    assert "cache-untrusted" in events and not list(shared.iterdir())


@NEEDS_CC
def test_a_library_others_can_write_is_not_loaded(tmp_path: Path) -> None:
    src = SQUARES.replace("push 0\n    store s", "push 17\n    store s")
    first, second = tmp_path / "a", tmp_path / "b"
    _run(src, first)
    (lib,) = first.glob("*.so")
    second.mkdir()
    copy = second / lib.name
    copy.write_bytes(lib.read_bytes())
    copy.chmod(0o666)
    out, events = _run(src, second)
    assert out == f"{17 + sum(i * i for i in range(1000))}\n"
    assert "cache-invalid" in events and "numba-compiled" in events
    assert copy.stat().st_mode & 0o022 == 0  # replaced by a library of our own


def test_prune_removes_the_least_recently_used_closures(tmp_path: Path) -> None:
    import os
    import time

    from nbcvm.jit.nbtier import prune

    now = time.time()
    for k in range(5):  # five closures of 1,000 + 100 bytes, k = 0 the oldest
        for suffix, size in ((".so", 1000), (".py", 100)):
            p = tmp_path / f"nbj_m_f_{k}{suffix}"
            p.write_bytes(b"x" * size)
            os.utime(p, (now - 100 + k, now - 100 + k))
    (tmp_path / "other.txt").write_text("not ours")
    keep = tmp_path / "nbj_m_f_0.so"
    assert prune(tmp_path, keep={keep}, limit=3000) == 3  # down to 80 % of 3,000: two closures
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == ["nbj_m_f_0.py", "nbj_m_f_0.so", "nbj_m_f_4.py", "nbj_m_f_4.so", "other.txt"]
    assert prune(tmp_path, limit=3000) == 0


UNRESOLVED = """
@".numba.unresolved$g" = external global ptr
define i32 @"f"(ptr %ret, ptr %exc, i64 %a) {
  %p = load ptr, ptr @".numba.unresolved$g"
  %v = call i64 %p(i64 %a)
  store i64 %v, ptr %ret
  ret i32 0
}
"""


@NEEDS_CC
def test_a_global_numba_fills_at_load_time_is_refused(tmp_path: Path) -> None:
    with pytest.raises(native.NativeUnavailable, match="numba.unresolved") as ei:
        native.build(UNRESOLVED, "f", ["i"], "i", tmp_path / "x.so")
    assert not ei.value.permanent  # only this closure: others may still be built


MUTUAL = """
.func even n
    load n
    push 0
    eq
    jf more
    push 1
    ret
more:
    load n
    push 1
    sub
    call odd 1
    ret
.end
.func odd n
    load n
    push 0
    eq
    jf more
    push 0
    ret
more:
    load n
    push 1
    sub
    call even 1
    ret
.end
.func main n
    load n
    call even 1
    print
    push 0
    ret
.end
"""


@pytest.mark.parametrize("n,depth", [(301, None), (5000, None), (5000, 3000)])
def test_mutual_recursion_is_compiled_as_one_library(n: int, depth) -> None:
    # numba calls within a mutually recursive group through globals it fills in at load
    # time; the library links every member in, so they point at the functions themselves.
    # 5,000 nests past the compiled-frame bound (the rest runs in the interpreter), and a
    # depth limit must trip at the same frame with the same traceback.
    from jitutil import run_src, tiers

    from nbcvm.runtime.limits import Limits

    lim = Limits(max_depth=depth) if depth else None
    off = run_src(MUTUAL, "off", args=[n], limits=lim)
    jit = run_src(MUTUAL, "eager", args=[n], limits=lim)
    assert jit.key() == off.key()
    assert tiers(jit.runtime)["t.main"] == "numba"
    if depth:
        assert off.error == "LimitExceeded" and len(off.traceback) == depth
    else:
        assert off.stdout == f"{int(n % 2 == 0)}\n"
