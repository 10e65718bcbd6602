"""Run NBC programs in-process under a given JIT mode and describe the outcome."""

from __future__ import annotations

import contextlib
import io
import re
import textwrap
from dataclasses import dataclass

from nbcvm.asm.assembler import assemble
from nbcvm.cli import main
from nbcvm.runtime.limits import Limits
from nbcvm.runtime.runtime import Runtime

ERROR_LINE = re.compile(r"^(\w+) \(code (\d+)\): (.*)$")
ENTRY = re.compile(r"^  (\S+)  \S+  pc (\d+): (\S+)$")


@dataclass(frozen=True)
class CliResult:
    code: int
    stdout: str
    stderr: str

    @property
    def error(self) -> str | None:
        last = self.stderr.rstrip("\n").rsplit("\n", 1)[-1] if self.stderr else ""
        m = ERROR_LINE.match(last)
        return m.group(1) if m else None

    @property
    def message(self) -> str | None:
        last = self.stderr.rstrip("\n").rsplit("\n", 1)[-1] if self.stderr else ""
        m = ERROR_LINE.match(last)
        return m.group(3) if m else None

    @property
    def frames(self) -> list[tuple[str, int, str]]:
        return [(m.group(1), int(m.group(2)), m.group(3)) for m in map(ENTRY.match, self.stderr.splitlines()) if m]

    @property
    def innermost(self) -> str | None:
        f = self.frames
        return f[-1][0] if f else None


def run_cli(argv: list[str]) -> CliResult:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return CliResult(code, out.getvalue(), err.getvalue())


@dataclass
class Outcome:
    exit_code: int
    stdout: str
    error: str | None
    message: str | None
    traceback: list[tuple[str, int]]
    steps: int
    calls: int
    depth: int
    runtime: Runtime

    def key(self, stats: bool = True) -> tuple:
        base = (self.exit_code, self.stdout, self.error, self.message, tuple(self.traceback))
        return base + ((self.steps, self.calls, self.depth) if stats else ())


def run_src(src: str, mode: str, args: list | None = None, limits: Limits | None = None,
            numba: bool = True) -> Outcome:
    out = io.StringIO()
    rt = Runtime(limits, stdout=out, jit=mode)
    if rt.jit is not None:
        rt.jit.numba_enabled = numba
    inst = rt.instantiate(assemble(textwrap.dedent(src), "t.nbc"))
    o = rt.run_main(inst, list(args or []))
    e = o.error
    return Outcome(o.exit_code, out.getvalue(), e.type_name if e else None, e.message if e else None,
                   [(t.function, t.pc) for t in e.traceback] if e else [], o.stats.steps, o.stats.calls,
                   o.stats.max_depth, rt)


def tiers(rt: Runtime) -> dict[str, str]:
    return {d["function"]: d["tier"] for d in rt.jit.report()["decisions"]} if rt.jit else {}
