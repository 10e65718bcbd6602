"""The ``nbcvm`` command line: thin click commands over the drivers in tools/.

Each command: options -> config -> driver -> renderer -> exit code.  One
place, ``main``, maps errors to exit codes: 0 ok, 1 program error or
findings, 2 bad usage or bad input, 70 an internal error (a bug in nbcvm,
reported in one line, never as a Python traceback).  rich is imported only by
commands that draw tables.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from nbcvm import __version__
from nbcvm.errors import InputError, NBCError, VMError

EXIT_OK, EXIT_FINDINGS, EXIT_INPUT, EXIT_INTERNAL = 0, 1, 2, 70


class _Ctx:
    """Shared per-invocation state (hatch keeps its Application in ctx.obj)."""

    def __init__(self) -> None:
        self._console = None
        self._err_console = None

    @property
    def console(self):
        if self._console is None:
            self._console = _make_console(sys.stdout, stderr=False)
        return self._console

    @property
    def err_console(self):
        if self._err_console is None:
            self._err_console = _make_console(sys.stderr, stderr=True)
        return self._err_console


def _make_console(stream, stderr: bool):
    """A rich Console; off a terminal (CI logs, pipes) tables get 160 columns, not 80."""
    import os

    from rich.console import Console

    wide = not stream.isatty() and "COLUMNS" not in os.environ
    return Console(stderr=stderr, width=160 if wide else None)


def _emit_json(obj: Any) -> None:
    click.echo(json.dumps(obj, indent=2, sort_keys=True, default=str))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="nbcvm")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """nbcvm: assemble, verify, run and inspect NBC (Noodle ByteCode) programs."""
    ctx.obj = _Ctx()


def _limits(max_steps, max_depth, timeout, max_memory, max_output):
    from nbcvm.runtime.limits import Limits

    d = Limits()
    return Limits(max_steps=max_steps, max_depth=max_depth if max_depth is not None else d.max_depth,
                  timeout=timeout, max_memory=max_memory if max_memory is not None else d.max_memory,
                  max_output=max_output if max_output is not None else d.max_output)


inject_option = click.option(
    "--inject-faults", "inject_faults", default="", metavar="SPEC",
    help="Inject seeded transient faults, e.g. native:0.05,alloc:0.01,channel:0.02,thread:0.1,jit:1.0; "
         "prints a recovery table.")


def limit_options(f):
    opts = [
        click.option("--max-steps", type=click.IntRange(min=0), default=None,
                     help="Instruction budget (fuel); unlimited by default."),
        click.option("--max-depth", type=click.IntRange(min=1), default=None,
                     help="Maximum call depth [default: 100000]."),
        click.option("--timeout", type=click.FloatRange(min=0), default=None,
                     help="Wall-clock limit in seconds; none by default."),
        click.option("--max-memory", type=click.IntRange(min=0), default=None,
                     help="Bytes of VM-held data for large allocations [default: 1 GiB]."),
        click.option("--max-output", type=click.IntRange(min=0), default=None,
                     help="Bytes the program may print [default: 64 MiB]."),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


@cli.command(context_settings={"ignore_unknown_options": True})
@click.argument("program", type=click.Path(dir_okay=False))
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@limit_options
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random module.")
@click.option("--path", "paths", multiple=True, help="Extra module search folder (repeatable).")
@click.option("--entry", default="main", show_default=True, help="Function to run.")
@click.option("--allow", "allow", multiple=True, metavar="GRANT",
              help="Grant host access: fs:DIR, fs-ro:DIR, env, env:NAME,... (repeatable). None by default.")
@inject_option
@click.option("--jit", type=click.Choice(["auto", "off", "eager"]), default="auto", show_default=True,
              help="JIT tier: translate hot functions to Python and numeric ones to numba (auto), "
                   "every function at its first call (eager), or never (off).")
@click.option("--stats", is_flag=True, help="Print a table of run statistics to stderr.")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome and statistics as JSON to stderr.")
@click.pass_obj
def run(obj: _Ctx, program, args, max_steps, max_depth, timeout, max_memory, max_output, seed, paths,
        entry, allow, inject_faults, jit, stats, as_json):
    """Run PROGRAM (.nbc text or .nbcb binary) with ARGS as main's parameters.

    main's int result is the exit code; an uncaught NBC error prints an NBC
    traceback to stderr and exits 1.
    """
    from nbcvm.report.text import traceback
    from nbcvm.tools.run import RunConfig, run_program

    cfg = RunConfig(program, tuple(args), _limits(max_steps, max_depth, timeout, max_memory, max_output),
                    seed, tuple(paths), entry, tuple(allow), inject_faults, jit)
    outcome = run_program(cfg)
    if outcome.error is not None:
        sys.stdout.flush()
        click.echo(traceback(outcome.error), err=True)
    if outcome.cancelled_threads:
        sys.stdout.flush()
        click.echo(f"warning: {outcome.cancelled_threads} VM thread(s) still running when the run ended "
                   "were cancelled (join threads before main returns)", err=True)
    if stats:
        from nbcvm.report.tables import run_stats

        run_stats(obj.err_console, outcome)
        if outcome.jit is not None and outcome.jit["decisions"]:
            from nbcvm.report.tables import jit_table

            jit_table(obj.err_console, outcome.jit)
    if inject_faults and outcome.recovery is not None:
        from nbcvm.report.tables import fault_table

        fault_table(obj.err_console, outcome.recovery["faults"])
    if as_json:
        click.echo(json.dumps(outcome.to_dict(), indent=2, sort_keys=True), err=True)
    sys.exit(outcome.exit_code)


@cli.command()
@click.argument("source", type=click.Path(dir_okay=False))
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write the .nbcb binary here.")
def asm(source, output):
    """Assemble and verify SOURCE; with -o, write its binary encoding."""
    from nbcvm.tools.asmtools import assemble_file

    module, data = assemble_file(source, output)
    n = sum(len(f.code) for f in module.functions)
    where = f" -> {output} ({len(data)} bytes)" if data is not None else ""
    click.echo(f"{source}: module {module.name}, {len(module.functions)} function(s), {n} instruction(s){where}")


@cli.command()
@click.argument("program", type=click.Path(dir_okay=False))
@click.option("--no-debug", is_flag=True, help="Leave out .source/.line debug directives.")
def disasm(program, no_debug):
    """Print PROGRAM (text or binary) as NBC assembly that re-assembles to the same module."""
    from nbcvm.tools.asmtools import disasm_file

    click.echo(disasm_file(program, debug=not no_debug), nl=False)


@cli.command()
@click.argument("programs", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print results as JSON.")
@click.pass_obj
def verify(obj: _Ctx, programs, as_json):
    """Assemble/decode and verify PROGRAMS; exit 2 if any is invalid."""
    from nbcvm.tools.asmtools import verify_file

    results = [verify_file(p) for p in programs]
    if as_json:
        _emit_json([r.to_dict() for r in results])
    else:
        from nbcvm.report.text import input_error

        for r in results:
            if r.error is not None:
                click.echo(input_error(r.error), err=True)
        from nbcvm.report.tables import verify_results

        verify_results(obj.console, results)
    sys.exit(EXIT_OK if all(r.ok for r in results) else EXIT_INPUT)


@click.command("stress-threads")
@click.argument("program", required=False, type=click.Path(dir_okay=False))
@click.option("--threads", type=click.IntRange(min=1, max=1000), default=20, show_default=True)
@click.option("--iterations", type=click.IntRange(min=1), default=None,
              help="Calls of the entry per thread [default: per workload, 10 for programs].")
@click.option("--duration", type=click.FloatRange(min=0), default=None,
              help="Run each workload for this many seconds instead of a number of iterations.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--switch-interval", type=click.FloatRange(min=1e-7), default=1e-5, show_default=True,
              help="Host thread switch interval in seconds; small values provoke interleavings.")
@click.option("--watchdog", type=click.FloatRange(min=0.1), default=60.0, show_default=True,
              help="Seconds without a finished call before a workload counts as hung: every "
                   "thread's NBC stack is dumped.")
@click.option("--workload", "workloads", multiple=True, help="Built-in workload(s) to run (default all).")
@click.option("--path", "paths", multiple=True, help="Extra module search folder (repeatable).")
@inject_option
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_obj
def stress_threads(obj: _Ctx, program, threads, iterations, duration, seed, switch_interval, watchdog,
                   workloads, paths, inject_faults, as_json):
    """Run PROGRAM's `stress i` (or `main`) in many threads on ONE runtime, then its `check`.

    Without PROGRAM, run the built-in suite over the runtime's shared state.
    Exit 1 on any invariant violation, deadlock, error or hang.
    """
    from nbcvm.tools.stress import StressConfig, run_stress

    from nbcvm.runtime.recovery import parse_fault_spec

    cfg = StressConfig(program, threads, iterations, duration, seed, switch_interval, watchdog,
                       search_path=tuple(paths), workloads=tuple(workloads),
                       faults=tuple(parse_fault_spec(inject_faults).items()))
    report = run_stress(cfg, None if as_json else _progress(obj))
    if as_json:
        _emit_json(report.to_dict())
    else:
        from nbcvm.report.tables import stress_report

        stress_report(obj.console, report)
    sys.exit(EXIT_OK if report.ok else EXIT_FINDINGS)


def _progress(obj: _Ctx):
    """A progress callback drawing on stderr when it is a terminal (else nothing)."""
    if not sys.stderr.isatty():
        return None
    from nbcvm.report.live import ProgressLine

    return ProgressLine(obj.err_console)


cli.add_command(stress_threads)
cli.add_command(stress_threads, name="stress")


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI and map every error to its exit code."""
    from nbcvm.report.text import input_error, traceback

    try:
        cli.main(args=argv, prog_name="nbcvm", standalone_mode=False)
        return EXIT_OK
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else EXIT_FINDINGS)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except click.ClickException as e:
        e.show()
        return EXIT_INPUT
    except InputError as e:
        click.echo(input_error(e), err=True)
        return EXIT_INPUT
    except VMError as e:
        click.echo(traceback(e), err=True)
        return EXIT_FINDINGS
    except NBCError as e:
        click.echo(f"nbcvm: {e}", err=True)
        return EXIT_INPUT
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except Exception as e:  # a bug in nbcvm: one line, never a Python traceback
        click.echo(f"nbcvm: internal error: {type(e).__name__}: {e} (please report this)", err=True)
        return EXIT_INTERNAL


def run_main() -> None:
    sys.exit(main())
from nbcvm.cli_validate import validate_imports  # noqa: E402
cli.add_command(validate_imports)
from nbcvm.cli_profile import profile  # noqa: E402
cli.add_command(profile)
from nbcvm.cli_leak import leak_check  # noqa: E402
cli.add_command(leak_check)
