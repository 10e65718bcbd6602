"""nbcvm: a compact bytecode VM for NBC (Noodle ByteCode) programs.

Public API (imported lazily, so ``import nbcvm`` stays cheap)::

    from nbcvm import assemble, verify, load, run, Runtime, Limits
    module = assemble(text, "prog.nbc")        # -> Module (raises AsmError)
    verify(module)                             # raises VerifyError
    outcome = run("prog.nbc", args=["10"])     # -> RunOutcome
"""

from __future__ import annotations

__version__ = "0.1.0"

_EXPORTS = {
    "assemble": ("nbcvm.asm.assembler", "assemble"),
    "disassemble": ("nbcvm.asm.disasm", "disassemble"),
    "verify": ("nbcvm.bytecode.verifier", "verify"),
    "load": ("nbcvm.runtime.loader", "load_file"),
    "Module": ("nbcvm.bytecode.model", "Module"),
    "Runtime": ("nbcvm.runtime.runtime", "Runtime"),
    "RunOutcome": ("nbcvm.runtime.runtime", "RunOutcome"),
    "Limits": ("nbcvm.runtime.limits", "Limits"),
    "RunConfig": ("nbcvm.tools.run", "RunConfig"),
}


def run(program: str, args: list[str] | tuple[str, ...] = (), **config):
    """Run a program file like ``nbcvm run`` does and return its RunOutcome."""
    from nbcvm.tools.run import RunConfig, run_program

    return run_program(RunConfig(program, tuple(args), **config))


def __getattr__(name: str):
    if name in _EXPORTS:
        import importlib

        mod, attr = _EXPORTS[name]
        return getattr(importlib.import_module(mod), attr)
    raise AttributeError(f"module 'nbcvm' has no attribute {name!r}")


__all__ = ["run", "__version__", *_EXPORTS]
