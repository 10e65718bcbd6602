"""Compiled closures as plain shared libraries: made with numba once, loaded without it.

numba's own disk cache needs numba in every process that uses it: importing
numba and its registries costs 1-3 s, more than many whole programs.  So the
numba tier keeps its machine code itself.  After numba has compiled a
closure, ``build`` takes the LLVM IR of its entry (``nbcvm_entry`` and
everything it calls, linked by numba into one module), adds a C-ABI wrapper
around numba's internal calling convention, drops numba's own wrappers,
emits a position-independent object for the generic CPU of this
architecture (the IR's host-specific CPU attributes are removed, so a cache
directory shared between machines stays safe) and links it with the system
C compiler.  ``load`` opens such a library with ctypes: no numba, no llvmlite.

Generated code calls Python only through function pointers (``abi.py``), so
the library has no undefined symbols beyond the C library and libm (checked
before linking against those two libraries: any other symbol makes ``build``
fail, and the closure then runs in-process from numba's dispatcher).  Libraries are written to a
temporary name and renamed, so a reader never sees half a file.
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import subprocess
import sysconfig
from pathlib import Path
from typing import Any, Callable

from nbcvm.jit.abi import ENTRY

SUFFIX = ".so"


class NativeUnavailable(Exception):
    """A shared library cannot be built (no C compiler, an unexpected symbol ...).

    ``permanent``: nothing can be built in this process (no compiler); otherwise
    only this closure cannot.
    """

    def __init__(self, message: str, permanent: bool = False):
        super().__init__(message)
        self.permanent = permanent


def compiler() -> str | None:
    cc = (sysconfig.get_config_var("CC") or "").split()
    for cand in ([cc[0]] if cc else []) + ["cc", "gcc", "clang"]:
        path = shutil.which(cand)
        if path:
            return path
    return None


# numba's wrappers for calls from Python and for first-class function use: they handle
# exceptions with numba's runtime, and nothing of ours calls them
_NUMBA_WRAPPERS = re.compile(r'^define [^\n]*@"?(?:_ZN7cpython|cfunc\.)[^\n]*\{\n.*?^\}\n', re.S | re.M)
_CPU_ATTRS = re.compile(r'\s*"target-(?:cpu|features)"="[^"]*"')
_UNRESOLVED = re.compile(r'^(@"\.numba\.unresolved\$([^"]+)") = external [^\n]*global ptr\s*$', re.M)
_EMPTY_GROUP = re.compile(r"^(attributes #\d+ = )\{\s*\}", re.M)
# every definition becomes internal: direct calls (no PLT in position-independent code), and
# only nbcvm_entry (added after this) is exported
_LINKAGE = re.compile(r'^define (?:(?:linkonce_odr|weak_odr|linkonce|weak|external|internal|private|dso_local|hidden|protected) )*',
                      re.M)


def _llvm_type(kind: str) -> str:
    return "double" if kind == "f" else "i64"


def wrapper_ir(mangled: str, argkinds: list[str], retkind: str) -> str:
    """``nbcvm_entry``: C arguments in, numba's convention (return slot, exception slot) inside."""
    rt = _llvm_type(retkind)
    params = ", ".join(f"{_llvm_type(k)} %a{i}" for i, k in enumerate(argkinds))
    args = "".join(f", {_llvm_type(k)} %a{i}" for i, k in enumerate(argkinds))
    return (f'define {rt} @{ENTRY}({params}) {{\n'
            f'entry:\n'
            f'  %ret = alloca {rt}\n'
            f'  %exc = alloca ptr\n'
            f'  %status = call i32 @"{mangled}"(ptr %ret, ptr %exc{args})\n'
            f'  %v = load {rt}, ptr %ret\n'
            f'  ret {rt} %v\n'
            f'}}\n')


def _clean(ir_text: str) -> str:
    text = _NUMBA_WRAPPERS.sub("", ir_text)
    text = _CPU_ATTRS.sub("", text)
    return _EMPTY_GROUP.sub(r"\1{ nounwind }", text)  # a group that held only the CPU attributes


def build(ir_text: str, mangled: str, argkinds: list[str], retkind: str, out: Path,
          others: tuple[str, ...] = ()) -> None:
    """Write the shared library for one closure to ``out`` (NativeUnavailable if it cannot be).

    ``others``: the IR of the closure's other functions, for a mutually recursive group --
    numba calls between its members through globals it fills in at load time
    (``.numba.unresolved$NAME``); linked together, each such global simply points at NAME.
    """
    cc = compiler()
    if cc is None:
        raise NativeUnavailable("no C compiler (cc, gcc or clang) to link the shared library", permanent=True)
    import llvmlite.binding as llvm

    try:
        text = _clean(ir_text)
        if others:
            mod = llvm.parse_assembly(text)
            for other in others:
                mod.link_in(llvm.parse_assembly(_clean(other)))
            text = str(mod)
            text = _UNRESOLVED.sub(r'\1 = internal global ptr @"\2"', text)
        text = _LINKAGE.sub("define internal ", text)
        text += "\n" + wrapper_ir(mangled, argkinds, retkind)
        mod = llvm.parse_assembly(text)
        mod.verify()
    except RuntimeError as e:  # IR we did not expect from numba: stay in-process
        raise NativeUnavailable(f"unexpected LLVM IR: {str(e).strip()[:300]}") from None
    libs = _system_libraries()
    missing = sorted(f.name for f in mod.functions
                     if f.is_declaration and not f.name.startswith("llvm.") and _used(text, f.name)
                     and not any(hasattr(lib, f.name) for lib in libs))
    missing += sorted(g.name for g in mod.global_variables
                      if g.is_declaration and _used(text, g.name) and not any(hasattr(lib, g.name) for lib in libs))
    if missing:
        raise NativeUnavailable(f"compiled code needs symbols a plain library cannot have: {', '.join(missing[:5])}")
    llvm.initialize_native_target()  # idempotent; numba has done it when it compiled
    llvm.initialize_native_asmprinter()
    if not mod.triple:
        mod.triple = llvm.get_process_triple()
    target = llvm.Target.from_triple(mod.triple)
    tm = target.create_target_machine(cpu="", features="", opt=2, reloc="pic", codemodel="default")
    obj = tm.emit_object(mod)
    tmp_o = out.with_name(f".{out.name}.{os.getpid()}.o")
    tmp_so = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        tmp_o.write_bytes(obj)
        r = subprocess.run([cc, "-shared", "-o", str(tmp_so), str(tmp_o), "-Wl,-Bsymbolic", "-lm"],
                           capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise NativeUnavailable(f"linking failed: {(r.stderr or r.stdout).strip()[:500]}")
        os.replace(tmp_so, out)
    finally:
        for p in (tmp_o, tmp_so):
            try:
                p.unlink()
            except FileNotFoundError:
                pass


def _system_libraries() -> list:
    """libc and libm: the only libraries a cached closure may call into.  (Not "anything this
    process has loaded": numba's or Python's symbols would be missing in a process without them.)"""
    import ctypes.util

    libs = []
    for name in ("c", "m"):
        path = ctypes.util.find_library(name)
        if path:
            try:
                libs.append(ctypes.CDLL(path))
            except OSError:
                pass
    return libs or [ctypes.CDLL(None)]


def _used(text: str, name: str) -> bool:
    """A declaration only becomes an undefined symbol if something refers to it."""
    refs = re.findall(r'@"?' + re.escape(name) + r'"?(?![\w.$])', text)
    return len(refs) > 1  # one is the declaration itself


def load(path: Path, argkinds: list[str], retkind: str) -> Callable[..., Any]:
    """The entry of a library made by ``build``, as a ctypes function (OSError if it cannot load)."""
    lib = ctypes.PyDLL(str(path))  # the GIL stays held: callbacks re-enter Python directly
    fn = getattr(lib, ENTRY)
    fn.restype = ctypes.c_double if retkind == "f" else ctypes.c_int64
    fn.argtypes = [ctypes.c_double if k == "f" else ctypes.c_int64 for k in argkinds]
    fn._nbcvm_lib = lib  # keep the library loaded for as long as the function is referenced
    return fn
