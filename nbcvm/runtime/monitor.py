"""The performance monitor: metrics, and what the profiled interpreter loop records.

Two layers:

* Metrics -- ``Counter`` (monotonic, thread-safe), ``Gauge`` (last/min/max of a
  sampled level such as RSS) and ``Histogram`` (count/sum/min/max/mean and
  percentiles).  A histogram keeps every sample exactly up to ``exact_cap``
  and answers percentiles exactly, with numpy's default ("linear")
  interpolation.  Past the cap it folds into a logarithmic-bucket sketch
  (DDSketch): bucket ``k`` holds values in ``(g**(k-1), g**k]`` with
  ``g = (1+a)/(1-a)`` and reports ``2 g**k / (g+1)``, so every percentile is
  within relative error ``a`` (default 1 %) of the sample at rank
  ``floor(q (n-1))``; numpy's interpolated value lies between that sample
  and the next one.  Memory is bounded by the value range, not by n.

* Profile state -- recorded by ``nbcvm.vm.profiled`` only when a program runs
  under the monitor (the plain interpreter loop never sees any of this).  Per
  host thread (a thread-local, reported with its ``threading.get_ident``; an
  ident the OS reuses later gets a row of its own) a ``ThreadState`` holds a call tree
  of ``Node``\\ s (one per distinct call path: calls, inclusive and exclusive
  nanoseconds, per-call durations), the timing stack, and -- at opcode level
  -- exact per-pc execution counts and times of every function it ran.
  Per-function, per-opcode and per-line figures are derived from these after
  (or, for the live view, during) the run; no per-instruction dictionary work
  happens in the loop.

Inclusive time of a function counts only its outermost activation on a
stack, so recursion is never double counted; exclusive ("self") time is the
inclusive time of each activation minus that of its callees.
"""

from __future__ import annotations

import math
import os
import threading
import time
from array import array
from dataclasses import dataclass
from typing import Any, Callable, Iterable

LEVELS = ("function", "opcode")
EXACT_CAP = 200_000  # samples a histogram keeps exactly before folding into the sketch
NODE_SAMPLE_FLUSH = 65_536  # per-node call durations buffered before going into the node's histogram
FLUSH_STEPS = 4_000_000  # instructions between walks of a thread's call tree to flush sample buffers
DEFAULT_MAX_EVENTS = 500_000  # completed calls kept for timeline exports (chrome, speedscope)


# ---------------------------------------------------------------------------
# Metrics


class Counter:
    """A monotonically increasing count (thread-safe)."""

    __slots__ = ("name", "value", "_lock")

    def __init__(self, name: str = ""):
        self.name, self.value, self._lock = name, 0, threading.Lock()

    def inc(self, n: int | float = 1) -> None:
        if n < 0:
            raise ValueError("a counter only goes up")
        with self._lock:
            self.value += n

    def to_dict(self) -> dict:
        return {"type": "counter", "value": self.value}


class Gauge:
    """A level sampled over time: its last, lowest and highest value."""

    __slots__ = ("name", "value", "min", "max", "samples", "_lock")

    def __init__(self, name: str = ""):
        self.name = name
        self.value: float | None = None
        self.min: float | None = None
        self.max: float | None = None
        self.samples = 0
        self._lock = threading.Lock()

    def set(self, v: float) -> None:
        with self._lock:
            self.value = v
            self.samples += 1
            if self.min is None or v < self.min:
                self.min = v
            if self.max is None or v > self.max:
                self.max = v

    def to_dict(self) -> dict:
        return {"type": "gauge", "value": self.value, "min": self.min, "max": self.max,
                "samples": self.samples}


class Histogram:
    """Distribution of samples: exact percentiles up to ``exact_cap``, then a bounded-error sketch."""

    def __init__(self, name: str = "", *, exact_cap: int = EXACT_CAP, alpha: float = 0.01):
        if not 0 < alpha < 1:
            raise ValueError("alpha must be in (0, 1)")
        self.name, self.exact_cap, self.alpha = name, exact_cap, alpha
        self._gamma = (1 + alpha) / (1 - alpha)
        self._lg = math.log(self._gamma)
        self._samples: list[float] | None = []
        self._pos: dict[int, int] = {}
        self._neg: dict[int, int] = {}
        self._zero = 0
        self.count = 0
        self.sum = 0.0
        self.min = math.inf
        self.max = -math.inf
        self._lock = threading.Lock()

    @property
    def exact(self) -> bool:
        return self._samples is not None

    def add(self, x: float) -> None:
        with self._lock:
            self._add(x)
            if self._samples is not None and len(self._samples) > self.exact_cap:
                self._to_sketch()

    def extend(self, xs: Iterable[float]) -> None:
        xs = list(xs)
        if not xs:
            return
        with self._lock:
            self.count += len(xs)
            self.sum += math.fsum(xs)
            lo, hi = min(xs), max(xs)
            self.min, self.max = min(self.min, lo), max(self.max, hi)
            if self._samples is not None:
                self._samples.extend(xs)
                if len(self._samples) > self.exact_cap:
                    self._to_sketch()
            else:
                for x in xs:
                    self._bucket(x)

    def _add(self, x: float) -> None:
        self.count += 1
        self.sum += x
        if x < self.min:
            self.min = x
        if x > self.max:
            self.max = x
        if self._samples is not None:
            self._samples.append(x)
        else:
            self._bucket(x)

    _TINY = 1e-300  # magnitudes below this count as zero in the sketch

    def _bucket(self, x: float) -> None:
        if -self._TINY < x < self._TINY:
            self._zero += 1
            return
        store = self._pos if x > 0 else self._neg
        k = math.ceil(math.log(abs(x)) / self._lg)
        store[k] = store.get(k, 0) + 1

    def _to_sketch(self) -> None:
        samples, self._samples = self._samples or [], None
        for x in samples:
            self._bucket(x)

    def merge(self, other: "Histogram") -> None:
        """Add another histogram's samples (exact stays exact while both are and it fits)."""
        with other._lock:
            o_samples = list(other._samples) if other._samples is not None else None
            o_pos, o_neg, o_zero = dict(other._pos), dict(other._neg), other._zero
            o_count, o_sum, o_min, o_max = other.count, other.sum, other.min, other.max
        if o_count == 0:
            return
        if o_samples is not None:
            self.extend(o_samples)
            return
        with self._lock:
            if self._samples is not None:
                self._to_sketch()
            if other.alpha != self.alpha:
                raise ValueError("cannot merge sketches of different accuracy")
            for k, c in o_pos.items():
                self._pos[k] = self._pos.get(k, 0) + c
            for k, c in o_neg.items():
                self._neg[k] = self._neg.get(k, 0) + c
            self._zero += o_zero
            self.count += o_count
            self.sum += o_sum
            self.min, self.max = min(self.min, o_min), max(self.max, o_max)

    @property
    def mean(self) -> float:
        return self.sum / self.count if self.count else 0.0

    def percentile(self, q: float) -> float:
        """The q-th percentile, 0 <= q <= 100 (numpy.percentile's default method when exact)."""
        if not 0 <= q <= 100:
            raise ValueError("percentile must be between 0 and 100")
        with self._lock:
            if self.count == 0:
                return math.nan
            if self._samples is not None:
                s = sorted(self._samples)
                h = (len(s) - 1) * (q / 100.0)
                lo = math.floor(h)
                hi = min(lo + 1, len(s) - 1)
                a, b = s[lo], s[hi]
                return a + (h - lo) * (b - a) if hi != lo else a
            return self._sketch_quantile(q / 100.0)

    def _sketch_quantile(self, q: float) -> float:
        if q <= 0:
            return self.min  # the extremes are tracked exactly
        if q >= 1:
            return self.max
        rank = q * (self.count - 1)
        seen = 0
        g = self._gamma
        for k in sorted(self._neg, reverse=True):  # most negative first
            seen += self._neg[k]
            if seen > rank:
                return max(self.min, -2 * g ** k / (g + 1))
        seen += self._zero
        if seen > rank:
            return 0.0
        for k in sorted(self._pos):
            seen += self._pos[k]
            if seen > rank:
                return min(self.max, max(self.min, 2 * g ** k / (g + 1)))
        return self.max

    def percentiles(self, qs: Iterable[float] = (50, 95, 99)) -> dict[str, float]:
        return {f"p{q:g}": self.percentile(q) for q in qs}

    def to_dict(self, scale: float = 1.0) -> dict:
        if self.count == 0:
            return {"type": "histogram", "count": 0}
        d = {"type": "histogram", "count": self.count, "sum": self.sum * scale, "min": self.min * scale,
             "max": self.max * scale, "mean": self.mean * scale, "exact": self.exact}
        d.update({k: v * scale for k, v in self.percentiles().items()})
        if not self.exact:
            d["relative_error"] = self.alpha
        return d


# ---------------------------------------------------------------------------
# Profile state written by the profiled loop


class Node:
    """One call path in a thread's call tree (the root has ``fn is None``).

    The loop only appends each completed call's inclusive duration to
    ``samples`` (ns); everything else is derived: calls = samples taken,
    inclusive = their sum, exclusive = inclusive minus the children's
    inclusive (a child's calls lie inside its parent's, so on one path this
    is exact).  Big sample buffers are folded into ``hist`` at meter ticks.
    """

    __slots__ = ("fn", "parent", "kids", "samples", "hist", "flushed_n", "flushed_ns", "depth")

    def __init__(self, fn: Any, parent: "Node | None"):
        self.fn, self.parent = fn, parent
        self.kids: dict[Any, Node] = {}
        self.samples = array("q")  # per-call inclusive ns of completed calls
        self.hist: Histogram | None = None
        self.flushed_n = 0
        self.flushed_ns = 0
        self.depth = 0 if parent is None else parent.depth + 1

    @property
    def calls(self) -> int:
        """Completed calls on this path."""
        return len(self.samples) + self.flushed_n

    @property
    def incl(self) -> int:
        return sum(self.samples) + self.flushed_ns

    @property
    def excl(self) -> int:
        return self.incl - sum(k.incl for k in list(self.kids.values()))

    def child(self, fn: Any) -> "Node":
        n = self.kids.get(fn)
        if n is None:
            n = self.kids[fn] = Node(fn, self)
        return n

    def flush(self) -> None:
        s, self.samples = self.samples, array("q")
        if self.hist is None:
            self.hist = Histogram()
        self.flushed_n += len(s)
        self.flushed_ns += sum(s)
        self.hist.extend(s)

    def histogram(self) -> Histogram:
        h = Histogram()
        if self.hist is not None:
            h.merge(self.hist)
        h.extend(list(self.samples))
        return h

    def walk(self) -> Iterable["Node"]:
        stack = [self]
        while stack:
            n = stack.pop()
            yield n
            stack.extend(list(n.kids.values()))


class ThreadState:
    """What one host thread recorded: call tree, timing stack, per-pc counts, events."""

    def __init__(self, ident: int, name: str, record_events: bool, max_events: int):
        self.ident, self.name = ident, name
        self.root = Node(None, None)
        self.stack: list[tuple] = [(self.root, time.perf_counter_ns())]  # (node, start ns) of open calls
        self.pcs: dict[Any, tuple[list[int], list[int]]] = {}  # Fn -> (counts per pc, ns per pc)
        self.errors = 0
        self.peak_depth = 0
        self.peak_fn: Any = None
        self.events: list | None = [] if record_events else None  # (node, start ns, end ns)
        self.max_events = max_events
        self.events_truncated = False
        self.kept: list = []
        self.started = time.perf_counter_ns()
        self.last_flush = 0  # meter.steps at the last flush walk

    def nodes(self) -> Iterable[Node]:
        return self.root.walk()


@dataclass(frozen=True)
class FunctionStats:
    qualname: str
    name: str
    module: str
    file: str
    line: int
    calls: int
    inclusive_ns: int
    exclusive_ns: int
    hist: Histogram  # per-call inclusive ns

    @property
    def per_call_ns(self) -> float:
        return self.inclusive_ns / self.calls if self.calls else 0.0


class PerformanceMonitor:
    """Metrics registry plus the profile of runs made under ``nbcvm.vm.profiled``.

    ``level`` is "function" (calls, inclusive/exclusive time, call tree) or
    "opcode" (also exact per-instruction counts and times, which means
    compiling functions without superinstructions).  ``record_events`` keeps
    the completed-call timeline for chrome/speedscope exports.
    """

    def __init__(self, level: str = "opcode", *, record_events: bool = False,
                 max_events: int = DEFAULT_MAX_EVENTS, sample_interval: float = 0.05):
        if level not in LEVELS:
            raise ValueError(f"level must be one of {', '.join(LEVELS)}")
        self.level = level
        self.per_opcode = level == "opcode"
        self.record_events = record_events
        self.max_events = max_events
        self.sample_interval = sample_interval
        self.counters: dict[str, Counter] = {}
        self.gauges: dict[str, Gauge] = {}
        self.histograms: dict[str, Histogram] = {}
        self.threads: dict[int, ThreadState] = {}  # in order of first use; each has its host ident
        self._local = threading.local()
        self.plain: dict[int, Any] = {}  # id(Fn) -> Fn compiled without fusion by this monitor
        self.tick_listeners: list[Callable[["PerformanceMonitor", Any], None]] = []
        self._lock = threading.Lock()
        self._last_sample = 0.0
        self.runtime: Any = None
        self.started = time.perf_counter()
        self.started_ns = time.perf_counter_ns()
        self._proc: Any = None

    # -- metric registry ----------------------------------------------------------
    def counter(self, name: str) -> Counter:
        with self._lock:
            return self.counters.setdefault(name, Counter(name))

    def gauge(self, name: str) -> Gauge:
        with self._lock:
            return self.gauges.setdefault(name, Gauge(name))

    def histogram(self, name: str, **kw: Any) -> Histogram:
        with self._lock:
            return self.histograms.setdefault(name, Histogram(name, **kw))

    # -- per-thread state ---------------------------------------------------------
    def thread_state(self) -> ThreadState:
        """This host thread's state (a thread-local, so a reused ``get_ident`` never merges threads)."""
        ts = getattr(self._local, "ts", None)
        if ts is None:
            ts = ThreadState(threading.get_ident(), threading.current_thread().name, self.record_events,
                             self.max_events)
            with self._lock:
                self.threads[len(self.threads)] = ts
            self._local.ts = ts
        return ts

    # -- meter hook (runs in VM threads every ~CHECK_INTERVAL instructions) --------
    def on_tick(self, meter: Any, fn: Any = None, depth: int = 0) -> None:
        now = time.perf_counter()
        ts = getattr(self._local, "ts", None)
        if ts is not None:
            steps = meter.steps
            if steps - ts.last_flush >= FLUSH_STEPS:  # bounded buffers, rare walks
                ts.last_flush = steps
                for node in ts.root.walk():
                    if len(node.samples) > NODE_SAMPLE_FLUSH:
                        node.flush()  # the loop appends to the new buffer from its next return
            ev = ts.events
            if ev is not None and len(ev) > ts.max_events:
                del ev[ts.max_events:]
                ts.kept, ts.events = ev, None  # the loop stops recording
                ts.events_truncated = True
        if now - self._last_sample >= self.sample_interval:
            self._last_sample = now
            self.sample_gauges()
            for listener in list(self.tick_listeners):
                listener(self, meter)

    def sample_gauges(self) -> None:
        rt = self.runtime
        if rt is not None:
            self.gauge("memory").set(rt.meter.memory)
            self.gauge("depth").set(rt.meter.peak_depth)
            self.gauge("handles").set(handle_count(rt))
        rss = self.rss()
        if rss is not None:
            self.gauge("rss").set(rss)

    def rss(self) -> int | None:
        if self._proc is None:
            ps = _PSUTIL.get() if _PSUTIL.available else None
            if ps is None:
                return None
            self._proc = ps.Process(os.getpid())
        return self._proc.memory_info().rss

    # -- derived views ----------------------------------------------------------------
    def thread_list(self) -> list[ThreadState]:
        return list(self.threads.values())

    def errors(self) -> int:
        return sum(ts.errors for ts in self.thread_list()) + (
            self.counters["errors"].value if "errors" in self.counters else 0)

    def functions(self, *, with_hist: bool = True, running: bool = False) -> list[FunctionStats]:
        """Per-function figures over every thread (inclusive counts outermost activations).

        ``running``: also count the time so far of calls that have not returned yet (the live view).
        """
        acc: dict[Any, list] = {}
        for ts in self.thread_list():
            _accumulate(ts.root, acc, with_hist, _open_frames(ts) if running else None)
        out = []
        for fn, (calls, incl, excl, samples, hists) in acc.items():
            h = Histogram()
            for part in hists:
                h.merge(part)
            h.extend(samples)
            out.append(FunctionStats(fn.qualname, fn.name, fn.inst.name, fn.inst.module.source,
                                     _first_line(fn), calls, incl, excl, h))
        return out

    def function(self, name: str, *, with_hist: bool = True, running: bool = False) -> FunctionStats | None:
        """A function by name or qualified name (``fib`` or ``fib.fib``); several matches are summed."""
        funcs = self.functions(with_hist=with_hist, running=running)
        found = [f for f in funcs if f.qualname == name] or [f for f in funcs if f.name == name]
        if not found:
            return None
        if len(found) == 1:
            return found[0]
        h = Histogram()
        for f in found:
            h.merge(f.hist)
        return FunctionStats(name, name, "*", "*", 0, sum(f.calls for f in found),
                             sum(f.inclusive_ns for f in found), sum(f.exclusive_ns for f in found), h)

    def total_calls(self, running: bool = False) -> int:
        done = sum(n.calls for ts in self.thread_list() for n in ts.nodes())
        return done + (sum(len(ts.stack) - 1 for ts in self.thread_list()) if running else 0)

    def pc_counts(self) -> dict[Any, tuple[list[int], list[int]]]:
        """Fn -> (counts per pc, ns per pc), summed over threads."""
        out: dict[Any, tuple[list[int], list[int]]] = {}
        for ts in self.thread_list():
            for fn, (cnt, tm) in list(ts.pcs.items()):
                if fn not in out:
                    out[fn] = ([0] * len(cnt), [0] * len(tm))
                c, t = out[fn]
                for i, v in enumerate(list(cnt)):
                    c[i] += v
                for i, v in enumerate(list(tm)):
                    t[i] += v
        return out

    def opcode_counts(self) -> dict[str, list[int]]:
        """opcode name -> [count, ns]."""
        from nbcvm.isa import BY_CODE

        out: dict[str, list[int]] = {}
        for fn, (cnt, tm) in self.pc_counts().items():
            code = fn.code.code
            for pc, c in enumerate(cnt):
                if c:
                    row = out.setdefault(BY_CODE[code[pc][0]].name, [0, 0])
                    row[0] += c
                    row[1] += tm[pc]
        return out

    def op_count(self, name: str) -> int:
        return self.opcode_counts().get(name, [0, 0])[0]

    def peak(self) -> tuple[int, Any]:
        best = max(self.thread_list(), key=lambda t: t.peak_depth, default=None)
        return (0, None) if best is None else (best.peak_depth, best.peak_fn)

    def snapshot(self) -> dict:
        """A cheap, consistent-enough view for the live display (read from another thread)."""
        rt = self.runtime
        seconds = time.perf_counter() - self.started
        steps = rt.meter.steps if rt is not None else 0
        funcs = self.functions(with_hist=False, running=True)
        ops = self.opcode_counts() if self.per_opcode else {}
        return {"seconds": seconds, "steps": steps, "ips": steps / seconds if seconds > 0 else 0.0,
                "calls": sum(f.calls for f in funcs), "errors": self.errors(),
                "threads": len(self.threads), "rss": self.gauges["rss"].value if "rss" in self.gauges else None,
                "memory": rt.meter.memory if rt is not None else 0, "functions": funcs, "opcodes": ops}


def _open_frames(ts: ThreadState) -> dict[int, list[int]]:
    """id(node) -> [open activations, ns they have run so far] for calls not yet returned."""
    now = time.perf_counter_ns()
    out: dict[int, list[int]] = {}
    for node, t0 in list(ts.stack)[1:]:  # [0] is the sentinel
        row = out.setdefault(id(node), [0, 0])
        row[0] += 1
        row[1] += now - t0
    return out


def _accumulate(root: Node, acc: dict, with_hist: bool, open_: dict[int, list[int]] | None = None) -> None:
    """Add a thread's tree into ``acc``: fn -> [calls, inclusive ns, exclusive ns, samples, histograms]."""
    incl: dict[int, int] = {}
    none = (0, 0)

    def inclusive(n: Node) -> int:
        v = incl.get(id(n))
        if v is None:
            v = incl[id(n)] = n.incl + (open_.get(id(n), none)[1] if open_ else 0)
        return v

    # depth first, carrying the set of functions active above each node (for inclusive time)
    stack: list[tuple[Node, frozenset]] = [(k, frozenset()) for k in list(root.kids.values())]
    while stack:
        node, above = stack.pop()
        fn = node.fn
        row = acc.get(fn)
        if row is None:
            row = acc[fn] = [0, 0, 0, array("q"), []]
        kids = list(node.kids.values())
        mine = inclusive(node)
        row[0] += node.calls + (open_.get(id(node), none)[0] if open_ else 0)
        row[2] += mine - sum(inclusive(k) for k in kids)
        if fn not in above:
            row[1] += mine
            below = above | {fn}
        else:
            below = above
        if with_hist:
            row[3].extend(node.samples)
            if node.hist is not None:
                row[4].append(node.hist)
        if kids:
            stack.extend((k, below) for k in kids)


def _first_line(fn: Any) -> int:
    lines = [ln for ln in fn.code.lines if ln]
    return min(lines) if lines else 0


def handle_count(rt: Any) -> int:
    """Live handles of a runtime: its resource table, else its live VM threads."""
    res = getattr(rt, "resources", None)
    live = getattr(res, "live", None)
    if live is not None:
        return len(live)
    return getattr(getattr(rt, "threads", None), "live", 0)


def _psutil_module():
    from nbcvm.lazy import LazyModule

    return LazyModule("psutil", "RSS gauges of the profiler")


_PSUTIL = _psutil_module()
