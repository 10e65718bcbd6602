"""Driver for ``nbcvm run``: config in, RunOutcome out (no printing)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from nbcvm.asm.lexer import LexError, tokenize_line
from nbcvm.asm.operands import OperandError, literal
from nbcvm.runtime.imports import search_path_from
from nbcvm.runtime.limits import Limits
from nbcvm.runtime.runtime import RunOutcome, Runtime


@dataclass(frozen=True)
class RunConfig:
    program: str
    args: tuple[str, ...] = ()
    limits: Limits = field(default_factory=Limits)
    seed: int = 0
    search_path: tuple[str, ...] = ()
    entry: str = "main"
    allow: tuple[str, ...] = ()  # capability grants, e.g. ("fs:data", "env")
    inject_faults: str = ""  # e.g. "native:0.05,alloc:0.01" (seeded by seed)
    jit: str = "off"  # the JIT tier: off | auto | eager (nbcvm/jit)


def parse_arg(text: str) -> Any:
    """A command-line argument as an NBC value: int, float, true/false/nil, else the string."""
    try:
        toks = tokenize_line(text)
        if len(toks) == 1 and toks[0].kind in ("int", "float", "ident"):
            return literal(toks[0])
    except (LexError, OperandError):
        pass
    return text


def make_runtime(cfg: RunConfig, stdout: IO[str] | None = None) -> Runtime:
    from nbcvm.runtime.capabilities import parse_grants
    from nbcvm.runtime.recovery import parse_fault_spec

    return Runtime(cfg.limits, stdout=stdout, seed=cfg.seed,
                   search_path=search_path_from(cfg.program, cfg.search_path), argv=cfg.args,
                   grants=parse_grants(cfg.allow), faults=parse_fault_spec(cfg.inject_faults),
                   jit=cfg.jit)


def run_program(cfg: RunConfig, stdout: IO[str] | None = None) -> RunOutcome:
    """Load, verify and run a program; InputError/UsageError propagate (exit 2)."""
    rt = make_runtime(cfg, stdout)
    inst = rt.load_program(Path(cfg.program))
    return rt.run_main(inst, [parse_arg(a) for a in cfg.args], entry=cfg.entry)
