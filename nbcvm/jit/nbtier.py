"""The numba tier: compile numeric functions, cache them on disk, call them.

A function gets a *wrapper* (installed as its ``F<i>`` and as its
``Fn.jit_state``) once it is translated and could be numeric.  At a call the
wrapper looks at the argument types and the types of the module globals the
function may reach; for each new combination it infers types for the whole
call closure (``analysis.infer``), generates one module of ``@njit``
functions (``nbgen``), and compiles it -- or, if any part is not numeric,
remembers that and runs the Python tier for those types from then on.  A
compile failure is recorded once (event + decision) and never retried.

Disk cache.  The generated source is written to
``$NBCVM_JIT_CACHE`` or ``$XDG_CACHE_HOME/nbcvm/jit`` (default
``~/.cache/nbcvm/jit``) as ``<module>_<function>_<key>.py``, where the key
hashes the source text together with the numba, nbcvm and Python versions,
the machine architecture and the helper module's source.  The source embeds
everything the code depends on -- each function's bytecode as translated,
the constants' values, the callees (by the same rule), the argument and
global types -- so equal keys mean equal programs.  Beside it goes the
machine code as a plain shared library (``<same name>.so``, ``native.py``):
a later process finds it by the key and loads it with ctypes, without
importing numba at all (``numba-cache-hit``).  Where no library can be made
(no C compiler), the closure runs from numba's in-process dispatcher and is
compiled again by the next process.

Calling compiled code.  The wrapper copies the meter's fuel countdown,
max_depth and peak depth into the state array (``abi.py``), the numeric
globals into two arrays, calls the entry function, and copies everything
back -- also when it fails.  A failure comes back as a status: an
instruction error is re-run in Python by the interpreter's own code for the
exact error; a pending Python exception (from a tick, a print, a deep call)
is raised; the compiled frames recorded while unwinding become NBC
traceback entries, exactly as the interpreter would have listed them.
"""

from __future__ import annotations

import ctypes
import hashlib
import importlib.util
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from nbcvm import __version__
from nbcvm.errors import ExitProgram, LimitExceeded, TraceEntry, VMError, from_host
from nbcvm.isa import BY_CODE
from nbcvm.jit import DECLINE, analysis, native, nbhost
from nbcvm.jit.abi import CB_TICK, ENTRY, SF_SIZE, ST_SIZE
from nbcvm.jit.nbgen import NbGen, Spec, module_source
from nbcvm.jit.pyrt import NEST
from nbcvm.lazy import NUMBA
from nbcvm.runtime.limits import CHECK_INTERVAL
from nbcvm.vm.ops_arith import BINOPS, bad_operands, binop_factory

ABI = 4  # bump when the calling convention between wrapper and compiled code changes
_MISSING = object()
LATER = object()  # sentinel: not in the disk cache and not yet worth compiling (auto mode)


class _NotYet(Exception):
    """The closure is not in the disk cache and may not be compiled yet."""
_TYPES = {int: "i", float: "f", bool: "b", type(None): "u"}


def default_cache_dir() -> Path:
    env = os.environ.get("NBCVM_JIT_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "nbcvm" / "jit"


def cache_limit() -> int:
    """Bytes the JIT cache may hold ($NBCVM_JIT_CACHE_MAX_MB, default 512 MiB)."""
    try:
        return max(1, int(os.environ.get("NBCVM_JIT_CACHE_MAX_MB", "512"))) << 20
    except ValueError:
        return 512 << 20


def _touch(path: Path) -> None:
    try:
        os.utime(path)
    except OSError:
        pass


def prune(d: Path, keep: set[Path] = frozenset(), limit: int | None = None) -> int:
    """Remove the least recently used closures (library + source) until the cache is under
    80 % of its limit; returns how many were removed.  Called after a compile only."""
    limit = cache_limit() if limit is None else limit
    groups: dict[str, list] = {}
    try:
        for p in d.iterdir():
            if p.name.startswith("nbj_") and p.suffix in (".py", native.SUFFIX):
                st = p.stat()
                g = groups.setdefault(p.stem, [0, 0.0, []])
                g[0] += st.st_size
                g[1] = max(g[1], st.st_mtime)
                g[2].append(p)
    except OSError:
        return 0
    total = sum(g[0] for g in groups.values())
    if total <= limit:
        return 0
    removed = 0
    for _stem, (size, _mtime, paths) in sorted(groups.items(), key=lambda kv: kv[1][1]):
        if total <= limit * 0.8:
            break
        if any(p in keep for p in paths):
            continue
        for p in paths:
            try:
                p.unlink()
            except OSError:
                pass
        total -= size
        removed += 1
    return removed


def untrusted(path: Path) -> str | None:
    """Why code found at ``path`` (a file or directory) must not be run, or None."""
    if not hasattr(os, "getuid"):
        return None  # no POSIX ownership to check
    st = path.stat()
    if st.st_uid != os.getuid():
        return f"owned by uid {st.st_uid}, not by this user"
    if st.st_mode & 0o022:
        return "writable by other users"
    return None


def closure_reason(fn: Any) -> str | None:
    """``static_reason`` over ``fn`` and every same-module function it may call (transitively)."""
    seen, work = set(), [fn]
    names = fn.inst.module.names
    while work:
        f = work.pop()
        if f in seen:
            continue
        seen.add(f)
        reason = static_reason(f)
        if reason is not None:
            return reason if f is fn else f"calls {f.name}, which is not numeric ({reason})"
        for opc, args in f.code.code:
            if BY_CODE[opc].name == "call" and "." not in names[args[0]]:
                work.append(f.inst.fns[names[args[0]]])
    return None


def _calls_natives(fn: Any) -> bool:
    names = fn.inst.module.names
    return any(BY_CODE[opc].name == "call" and "." in names[args[0]] for opc, args in fn.code.code)


def static_reason(fn: Any) -> str | None:
    """Why ``fn`` can never be numeric (None if it might be, depending on types)."""
    if fn.info.regions:
        return "has try regions"
    consts, names = fn.inst.module.consts, fn.inst.module.names
    for pc, (opc, args) in enumerate(fn.code.code):
        if fn.info.depths[pc] is None:
            continue
        nm = BY_CODE[opc].name
        if nm not in analysis.NB_OPS:
            return f"pc {pc}: '{nm}' is not numeric"
        if nm == "push" and analysis.tname(consts[args[0]]) not in analysis.PLAIN:
            return f"pc {pc}: a {type(consts[args[0]]).__name__} constant"
        if nm == "call" and "." in names[args[0]]:
            mod, _, f = names[args[0]].rpartition(".")
            if mod != "math" or f not in analysis.NATIVES:
                return f"pc {pc}: calls {names[args[0]]}"
    return None


class Compiled:
    """One compiled call closure, entered through one function for one type key."""

    def __init__(self, tier: "NumbaTier", ms: Any, specs: list[Spec], gmap: dict, entry: Any, sites: dict):
        self.tier, self.ms, self.specs, self.entry, self.sites = tier, ms, specs, entry, sites
        self.meter = ms.rt.meter
        self.G = ms.inst.globals
        self.gi = [(g, t) for g, (arr, k, t) in sorted(gmap.items(), key=lambda x: x[1][1]) if arr == "i"]
        self.gf = [g for g, (arr, k, t) in sorted(gmap.items(), key=lambda x: x[1][1]) if arr == "f"]
        self.gmap_items = tuple(gmap.items())
        self.pool: list = []  # (st, sf, gi, gf, their addresses): the arrays one entry points into
        self.ret = specs[0].ret
        self.has_nil = "u" in specs[0].argtypes

    def _arrays(self) -> tuple:
        st, sf = (ctypes.c_int64 * ST_SIZE)(), (ctypes.c_double * SF_SIZE)()
        gi, gf = (ctypes.c_int64 * max(1, len(self.gi)))(), (ctypes.c_double * max(1, len(self.gf)))()
        for k, addr in enumerate(nbhost.callbacks()):
            st[CB_TICK + k] = addr
        return st, sf, gi, gf, tuple(ctypes.addressof(a) for a in (st, sf, gi, gf))

    def run(self, args: tuple, D: int, outer_key: int | None = None) -> Any:
        m, G = self.meter, self.G
        arrays = self.pool.pop() if self.pool else self._arrays()
        st, sf, gi, gf, addrs = arrays
        off = self.tier.fuel_offset(m)
        st[0] = m.budget + off
        st[10] = off
        st[1] = st[3] = st[7] = 0
        st[4] = m.peak_depth
        st[8] = m.max_depth
        for k, (g, _) in enumerate(self.gi):
            gi[k] = G[g]
        for k, g in enumerate(self.gf):
            gf[k] = G[g]
        ctx = nbhost.Context(self.tier, self.ms, self.specs, self.gmap_items, st, sf, gi, gf)
        stack = nbhost.TLS.stack
        stack.append(ctx)
        running = nbhost._running
        running[0] += 1
        try:  # the arrays stay referenced (ctx, arrays) for as long as compiled code points into them
            v = self.entry(*[0 if x is None else x for x in args] if self.has_nil else args, D, 0, *addrs)
        finally:
            running[0] -= 1
            stack.pop()
            m.budget = int(st[0] - st[10])
            m.calls += int(st[3])
            if st[4] > m.peak_depth:
                m.peak_depth = int(st[4])
            for k, (g, t) in enumerate(self.gi):
                G[g] = bool(gi[k]) if t == "b" else int(gi[k])
            for k, g in enumerate(self.gf):
                G[g] = float(gf[k])
        if st[1]:
            err = self.error(st, sf, ctx, outer_key)
            self.pool.append(arrays)
            raise err
        self.pool.append(arrays)
        if nbhost.take_interrupt():  # Ctrl-C arrived after the last tick: deliver it now
            raise KeyboardInterrupt
        ret = self.ret
        return None if ret == "u" else (v != 0) if ret == "b" else v

    # -- errors -----------------------------------------------------------------------
    def error(self, st, sf, ctx, outer_key: int | None = None) -> BaseException:
        status = int(st[1])
        m = self.meter
        fns = self.ms.fns
        nfr = int(st[7])
        cap = (len(st) - 32) // 2
        frames = [(int(st[32 + 2 * k]), int(st[33 + 2 * k])) for k in range(min(nfr, cap))]
        if status == 3:
            return ExitProgram(int(st[2]))
        if status == 2:
            exc = ctx.pending
            if isinstance(exc, ExitProgram) or not isinstance(exc, Exception):
                return exc
            err = exc if isinstance(exc, VMError) else from_host(exc)
        elif status == 4:
            err = LimitExceeded("depth", int(st[2]), m.max_depth, "frames")
        else:
            fid, pc = frames[0]
            err = self.replay(fns[fid], fid, pc, st, sf)
        entries = []
        for k, (fid, pc) in enumerate(frames):
            fn = fns[fid]
            epc = fn.errpc.get(pc, pc) if k == 0 else pc
            # the outermost compiled frame of an on-stack replacement is the interpreter's (or a
            # translated) frame taken over: listed under that frame's key, so it is listed once
            key = outer_key if outer_key is not None and k == len(frames) - 1 else self.tier.frame_key()
            if key not in err.seen_frames:
                err.seen_frames.add(key)
                entries.append(TraceEntry(fn.inst.name, fn.name, fn.inst.module.source, fn.line_of(epc), epc,
                                          fn.op_at(epc)))
        err.traceback[0:0] = entries[::-1]
        return err

    def replay(self, fn: Any, fid: int, pc: int, st, sf) -> VMError:
        """Re-run the failed instruction with the interpreter's code: the exact same error."""
        from nbcvm.jit.tier import _generic_handler

        kind, what, types = self.sites[(fid, pc)]
        vals: list = []
        ki = kf = 0
        for t in types:
            if t == "f":
                vals.append(float(sf[kf]))
                kf += 1
            else:
                v = int(st[5 + ki])
                vals.append(bool(v) if t == "b" else v)
                ki += 1
        try:
            if kind == "native":
                callee = fn.inst.resolve(f"math.{what}", len(vals))
                callee.fn(*vals)
            elif what in BINOPS:
                binop_factory(what, "r", "r", "r")(0, 1, 0, 1, 0, 0, 0, None, None)(list(vals))
            else:
                opc, args = fn.code.code[pc]
                h = _generic_handler(fn, pc, self.meter)
                if what == "inc":
                    r = [None] * (args[0] + 1)
                    r[args[0]] = vals[0]
                else:
                    r = list(vals)
                h(r)
        except VMError as e:
            return e
        except Exception as e:  # noqa: BLE001 - mapped like the interpreter maps it
            if isinstance(e, TypeError) and what in BINOPS:
                return bad_operands(what, vals[0], vals[1])
            return from_host(e)
        return VMError("InternalError", f"jit: {what} at pc {pc} of {fn.qualname} failed in compiled "
                       f"code but not when re-run")


class NumbaTier:
    """Per-runtime numba state: cache dir, helper module, compiled closures."""

    def __init__(self, jit: Any, cache_dir: str | os.PathLike | None = None):
        self.jit = jit
        self.rt = jit.rt
        self.cache_dir = self._prepare_dir(Path(cache_dir) if cache_dir else default_cache_dir())
        self._versions: str | None = None
        self.numba = None  # imported on the first compile only (a cached library needs no numba)
        self.native_off: str | None = None  # why shared libraries cannot be made here, once known
        nbhost.install_sigint()
        self.wrappers: dict[Any, Any] = {}
        self.memo: dict[Any, list[dict]] = {}  # fn -> its wrappers' compiled-per-key tables
        self.may_compile: set = set()  # functions worth compiling (auto: numba_due; eager: all)
        self._frame_keys = 0
        self.compile_seconds = 0.0
        self.compiles = 0
        self.cache_hits = 0

    def allow_compile(self, fn: Any) -> None:
        """``fn`` is hot enough to pay for compiling: forget its cache misses so they compile."""
        with self.jit.lock:
            self.may_compile.add(fn)
            for table in self.memo.get(fn, ()):
                for k in [k for k, v in table.items() if v is LATER]:
                    del table[k]

    def _numba(self) -> Any:
        if self.numba is None:
            t0 = time.perf_counter()
            self.numba = NUMBA.get()
            import nbcvm.jit.nbrt  # noqa: F401 - compiles the helpers (explicit signatures)

            self.jit.event("numba-loaded", "", f"numba {self.numba.__version__}, cache {self.cache_dir}",
                           time.perf_counter() - t0)
        return self.numba

    def fuel_offset(self, m: Any) -> int:
        """Extra countdown for compiled code when its ticks would do nothing observable.

        A tick checks the fuel limit, the deadline and runs hooks.  With no
        fuel limit and no hooks (the JIT's own sampler aside), compiled code
        may run far past ``CHECK_INTERVAL`` before calling into Python: the
        fuel is still counted exactly (``steps`` stays exact), only the tick is
        later.  With a deadline it still ticks every ~2M instructions (a few
        ms of compiled code), so a timeout is noticed about as promptly as in
        the interpreter; without one it ticks every ~20M instructions, which also lets
        Python deliver a pending KeyboardInterrupt.
        """
        if m.limits.max_steps is not None or any(h != self.jit.sample for h in m.hooks):
            return 0
        # still a tick every ~20M instructions without a deadline (tens of ms of compiled code): it
        # returns to Python, so Ctrl-C interrupts an endless compiled loop as it does the interpreter
        return 1000 * CHECK_INTERVAL if m.deadline is None else 100 * CHECK_INTERVAL

    def frame_key(self) -> int:
        self._frame_keys += 1
        return -self._frame_keys

    # -- the cache directory -------------------------------------------------------------
    def _prepare_dir(self, d: Path) -> Path:
        """The cache directory, if this user alone can write it; else a private temporary one.

        Libraries in it are loaded and run, so a directory others can write to
        (or owned by someone else) would let them run code in this process.
        """
        try:
            d.mkdir(parents=True, exist_ok=True, mode=0o700)
            why = untrusted(d)
            if why is None:
                probe = d / f".probe-{os.getpid()}"
                probe.write_text("")
                probe.unlink()
                return d
            kind, detail = "cache-untrusted", why
        except OSError as e:
            kind, detail = "cache-unwritable", str(e)
        tmp = Path(tempfile.mkdtemp(prefix="nbcvm-jit-"))
        self.jit.event(kind, "", f"{d}: {detail}; using {tmp}")
        return tmp

    def _write(self, path: Path, text: str) -> None:
        if path.exists() and path.read_text(encoding="utf-8") == text:
            return
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)

    def _import(self, name: str, path: Path):
        mod = sys.modules.get(name)
        if mod is not None:
            return mod
        spec = importlib.util.spec_from_file_location(name, path)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        try:
            spec.loader.exec_module(mod)
        except BaseException:
            sys.modules.pop(name, None)
            raise
        return mod

    def versions(self) -> str:
        """What the machine code depends on besides the generated source (part of every key)."""
        if self._versions is None:
            from importlib.metadata import version

            here = Path(__file__).parent
            helpers = hashlib.sha256(b"".join((here / f).read_bytes() for f in ("nbrt.py", "abi.py", "native.py")))
            self._versions = (f"abi {ABI}; nbcvm {__version__}; numba {version('numba')}; "
                              f"llvmlite {version('llvmlite')}; python {sys.version.split()[0]}; "
                              f"{platform.machine()}; helpers {helpers.hexdigest()[:12]}")
        return self._versions

    # -- wrappers ---------------------------------------------------------------------------
    def install(self, fn: Any) -> bool:
        """Give ``fn`` a numba wrapper (it compiles per type key at calls); False if never numeric."""
        if fn in self.wrappers:
            return True
        reason = closure_reason(fn)
        faults = getattr(getattr(self.rt, "errors", None), "faults", None)
        if reason is None and faults and faults.spec.get("native", 0) > 0 and _calls_natives(fn):
            reason = "native fault injection is on (inlined math natives would bypass it)"
        if reason is not None:
            self.jit.decide(fn, "python", f"numba: {reason}")
            return False
        ms = self.jit.module_ns(fn.inst)
        idx = ms.index[fn.name]
        py = ms.py.get(idx)
        if py is None:
            return False
        w = self._wrapper(fn, ms, idx, py)
        self.wrappers[fn] = w
        ms.ns[f"F{idx}"] = w
        from nbcvm.jit.pyrt import make_entry

        fn.jit_state = make_entry(w)
        return True

    def _wrapper(self, fn: Any, ms: Any, idx: int, py: Any):
        m = ms.rt.meter
        G = ms.inst.globals
        gused = tuple(sorted(self._globals_reached(ms, fn)))
        compiled: dict[tuple, Any] = {}
        self.memo.setdefault(fn, []).append(compiled)
        slow = ms.slow
        threads = getattr(ms.rt, "threads", None)
        build = self.build
        lock = self.jit.lock

        def w(*a):
            args = a[:-2]
            D = a[-2]
            if D > m.max_depth or a[-1] > NEST:
                return slow(fn, args, D, a[-1])
            key = tuple([x.__class__ for x in args] + [G[g].__class__ for g in gused])
            c = compiled.get(key, _MISSING)
            if c is _MISSING:
                with lock:
                    c = compiled.get(key, _MISSING)
                    if c is _MISSING:
                        c = compiled[key] = build(fn, ms, idx, args, key)
            if c is None or c is LATER or (threads is not None and threads.live):
                return py(*a)
            return c.run(args, D)

        return w

    def install_osr(self, fn: Any) -> None:
        """A compiled entry at ``fn``'s loop headers, for frames already running (``NBO<i>``)."""
        ms = self.jit.module_ns(fn.inst)
        idx = ms.index[fn.name]
        if idx in ms.osr_numba or not ms.osr_headers.get(idx) or closure_reason(fn) is not None:
            return
        G = ms.inst.globals
        gused = tuple(sorted(self._globals_reached(ms, fn)))
        compiled: dict[tuple, Any] = {}
        self.memo.setdefault(fn, []).append(compiled)
        threads = getattr(ms.rt, "threads", None)
        lock = self.jit.lock

        def nbo(vals: list, header: int, D: int, N: int, key: int) -> Any:
            if threads is not None and threads.live:
                return DECLINE
            k = (header, tuple([_TYPES.get(v.__class__, "o") for v in vals]),
                 tuple([G[g].__class__ for g in gused]))
            c = compiled.get(k, _MISSING)
            if c is _MISSING:
                with lock:
                    c = compiled.get(k, _MISSING)
                    if c is _MISSING:
                        c = compiled[k] = self.build(fn, ms, idx, tuple(vals), k, osr=header)
            if c is None or c is LATER:
                return DECLINE
            return c.run([vals[i] for i in c.specs[0].params], D, outer_key=key)

        ms.osr_numba[idx] = nbo
        ms.ns[f"NBO{idx}"] = nbo

    def _globals_reached(self, ms: Any, fn: Any) -> set[int]:
        seen, work, out = set(), [fn], set()
        names = fn.inst.module.names
        while work:
            f = work.pop()
            if f in seen:
                continue
            seen.add(f)
            for opc, args in f.code.code:
                nm = BY_CODE[opc].name
                if nm in ("gload", "gstore"):
                    out.add(args[0])
                elif nm == "call" and "." not in names[args[0]]:
                    work.append(f.inst.fns[names[args[0]]])
        return out

    # -- compiling one closure ------------------------------------------------------------------
    def build(self, fn: Any, ms: Any, idx: int, args: tuple, key: tuple, osr: int | None = None) -> Compiled | None:
        argtypes = tuple(_TYPES.get(x.__class__, "o" if osr is not None else None) for x in args)
        label = f"{fn.qualname}({','.join(t or '?' for t in argtypes)})"
        if osr is not None:
            label = f"{fn.qualname}@pc{osr}({''.join(argtypes)})"
        elif None in argtypes:
            return None  # a string, list ... argument: the Python tier runs it
        t0 = time.perf_counter()  # inference and code generation count as compile time too
        G = ms.inst.globals
        gtypes = {g: analysis.tname(v) for g, v in enumerate(G)}
        try:
            specs = self.infer_closure(ms, idx, argtypes, gtypes, osr)
        except analysis.Ineligible as e:
            self.jit.decide(fn, "python", f"numba {label}: {e}")
            self.jit.event("numba-ineligible", fn.qualname, f"{label}: {e}", time.perf_counter() - t0)
            return None
        try:
            self.jit.inject_fault(fn)
            c = self.compile_closure(ms, specs, gtypes, label, t0,
                                     may_compile=self.jit.mode != "auto" or fn in self.may_compile)
        except _NotYet:
            return LATER
        except Exception as e:  # noqa: BLE001 - any compile failure: Python tier, recorded once
            self.jit.decide(fn, "python", f"numba {label} failed: {type(e).__name__}: {str(e)[:300]}")
            self.jit.event("numba-failed", fn.qualname, f"{label}: {type(e).__name__}: {str(e)[:2000]}",
                           time.perf_counter() - t0)
            self.jit._fallback(fn, e)
            return None
        d = self.jit.decide(fn, "numba")
        d.specs.append(label)
        return c

    def infer_closure(self, ms: Any, idx: int, argtypes: tuple, gtypes: dict, osr: int | None = None) -> list[Spec]:
        """Specs of the entry and of every callee it may reach, with their types, to a fixed point."""
        fns = ms.fns
        specs: dict[tuple, Spec] = {}
        order: list[Spec] = []
        native_ok = self._native_ok

        def get(i: int, at: tuple, entry_pc: int | None = None) -> Spec:
            k = (i, at, entry_pc)
            s = specs.get(k)
            if s is None:
                s = specs[k] = Spec(len(order), fns[i], i, at, osr=entry_pc)
                order.append(s)
            return s

        get(idx, argtypes, osr)
        for _final in (False, True):
            changed = True
            while changed:
                changed = False
                for s in list(order):
                    f = s.fn
                    reason = static_reason(f)
                    if reason is not None:
                        raise analysis.Ineligible(f"{f.qualname}: {reason}")

                    def ret_of(name: str, at: tuple) -> str:
                        return get(ms.index[name], at).ret

                    try:
                        facts = analysis.infer(f.code, f.info.depths, f.inst.module.consts, f.inst.module.names,
                                               s.argtypes, gtypes, ret_of, native_ok, s.osr or 0)
                    except analysis.Ineligible as e:
                        raise analysis.Ineligible(f"{f.qualname}: {e}") from None
                    s.facts = facts
                    if facts.ret != s.ret:
                        s.ret = facts.ret
                        changed = True
                    if len(order) != len(specs):
                        changed = True
            # functions that never return: any type will do for their (unused) results
            undecided = [s for s in order if s.ret == "N"]
            if not undecided:
                break
            for s in undecided:
                s.ret = "i"
        # recursive: on a cycle of calls (itself, or a mutually recursive group): its calls may nest
        # deep (NBNEST); a group is linked into one library (native.build, ``others``)
        edges = {s.sid: {specs[(ms.index[n], at, None)].sid for n, at in s.facts.calls.values()} for s in order}
        for s in order:
            s.recursive = s.sid in _reach(edges, s.sid)
        return order

    def _native_ok(self, qualified: str) -> bool:
        mod = qualified.rpartition(".")[0]
        return mod == "math" and "math" in getattr(self.rt.imports, "natives", {})

    def compile_closure(self, ms: Any, specs: list[Spec], gtypes: dict, label: str,
                        t_start: float | None = None, may_compile: bool = True) -> Compiled:
        used: set[int] = set()
        for s in specs:
            for opc, args in s.fn.code.code:
                if BY_CODE[opc].name in ("gload", "gstore"):
                    used.add(args[0])
        gmap: dict[int, tuple[str, int, str]] = {}
        ki = kf = 0
        for g in sorted(used):
            t = gtypes[g]
            if t == "f":
                gmap[g] = ("f", kf, t)
                kf += 1
            elif t in ("i", "b"):
                gmap[g] = ("i", ki, t)
                ki += 1
        for s in specs:
            s.fn.compile(self.rt.meter)  # run costs and the errpc table come from the interpreter's compile
        by_key = {(s.idx, s.argtypes): s for s in specs if s.osr is None}
        funcs, sites = [], {}
        for s in specs:
            nf = NbGen(s, by_key, gmap, ms.index).generate()
            funcs.append(nf)
            for pc, site in nf.sites.items():
                sites[(s.idx, pc)] = site
        entry = specs[0]
        digests = " ".join(sorted({f"{s.fn.name}={s.fn.code.digest()}" for s in specs}))
        header = (f"{entry.fn.qualname} {' '.join(s.name + ':' + s.signature() for s in specs)}; "
                  f"bytecode {digests}; {self.versions()}")
        src = module_source(funcs, header, entry)
        digest = hashlib.sha256(src.encode()).hexdigest()[:16]
        safe = "".join(ch if ch.isalnum() else "_" for ch in f"{ms.inst.name}_{entry.fn.name}")
        name = f"nbj_{safe}_{digest}"
        path = self.cache_dir / f"{name}.py"
        lib = path.with_suffix(native.SUFFIX)
        argkinds = ["f" if entry.argtypes[k] == "f" else "i" for k in entry.params] + ["i"] * 6
        retkind = "f" if entry.ret == "f" else "i"
        t0 = time.perf_counter() if t_start is None else t_start
        fn = None
        if lib.exists():
            try:
                why = untrusted(lib)
                if why is not None:
                    raise OSError(why)
                fn = native.load(lib, argkinds, retkind)
                kind = "numba-cache-hit"
                _touch(lib)  # recently used: pruning keeps it
            except OSError as e:  # unreadable, not ours, or from another machine: make it again
                self.jit.event("cache-invalid", entry.fn.qualname, f"{lib.name}: {e}")
        if fn is None:
            if not may_compile:
                raise _NotYet
            fn, kind = self._compile(ms, specs, entry, name, path, src, lib, argkinds, retkind)
        dt = time.perf_counter() - t0
        self.compile_seconds += dt
        if kind == "numba-compiled":
            self.compiles += 1
        else:
            self.cache_hits += 1
        self.jit.event(kind, entry.fn.qualname, f"{label}: {len(specs)} function(s), {lib.name}", dt)
        return Compiled(self, ms, specs, gmap, fn, sites)

    def _compile(self, ms: Any, specs: list[Spec], entry: Spec, name: str, path: Path, src: str, lib: Path,
                 argkinds: list[str], retkind: str) -> tuple[Any, str]:
        """numba compiles the closure; its machine code becomes ``lib`` (or stays in-process)."""
        nb = self._numba()
        self._write(path, src)
        fresh = name not in sys.modules
        mod = self._import(name, path)
        for s in reversed(specs):  # callees first: a caller then links their explicit signatures
            getattr(mod, s.name).compile(nb.core.typing.templates.signature(*_sig_types(nb, s)))
        t = nb.types
        rt = t.float64 if retkind == "f" else t.int64
        esig = nb.core.typing.templates.signature(rt, *[t.float64 if k == "f" else t.int64 for k in argkinds])
        disp = getattr(mod, ENTRY)
        disp.compile(esig)
        if self.native_off is None:
            cres = disp.overloads[esig.args]
            try:
                ir = cres.library.get_llvm_str()
                others: tuple[str, ...] = ()
                if ".numba.unresolved$" in ir:  # a mutually recursive group: link every member in
                    others = tuple(getattr(mod, s.name).overloads[tuple(_sig_types(nb, s)[1:])].library
                                   .get_llvm_str() for s in specs)
                native.build(ir, cres.fndesc.mangled_name, argkinds, retkind, lib, others)
                loaded = native.load(lib, argkinds, retkind)
                removed = prune(self.cache_dir, keep={lib})
                if removed:
                    self.jit.event("cache-pruned", entry.fn.qualname,
                                   f"{removed} least recently used closure(s) removed (cache over "
                                   f"{cache_limit() >> 20} MiB)")
                return loaded, "numba-compiled"
            except (native.NativeUnavailable, OSError) as e:  # run in-process from numba; say why
                if isinstance(e, OSError):  # built but does not load: never leave it for the next run
                    try:
                        lib.unlink()
                    except OSError:
                        pass
                if getattr(e, "permanent", False):
                    self.native_off = str(e)  # nothing can be built here: say it once
                self.jit.event("native-unavailable", entry.fn.qualname, str(e))
        return disp, ("numba-compiled" if fresh else "numba-reused")


def _reach(edges: dict[int, set[int]], start: int) -> set[int]:
    seen, work = set(), [start]
    while work:
        x = work.pop()
        for y in edges[x]:
            if y not in seen:
                seen.add(y)
                work.append(y)
    return seen


def _sig_types(nb: Any, s: Spec) -> list:
    t = nb.types
    m = {"i": t.int64, "f": t.float64, "b": t.boolean, "N": t.int64, "u": t.int64}
    args = [m[s.argtypes[k]] for k in s.params] + [t.int64] * 6  # D, N and the arrays' addresses (nbrt.py)
    return [m[s.ret]] + args
