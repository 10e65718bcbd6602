"""``nbcvm leak-check``: a thin click command over nbcvm.tools.leakcheck (see docs/leak-check.md).

``nbcvm.cli`` imports this module at its end to register the command, so
nothing from ``nbcvm.cli`` is imported here at module level (that would be an
import cycle): the shared limit flags (``limit_options``) are attached the
first time click asks for the command's parameters, and the console, JSON
output and exit codes are imported inside the command.
"""

from __future__ import annotations

import sys
from typing import Any

import click


class _WithLimitFlags(click.Command):
    """A command that gets ``nbcvm run``'s limit flags (after PROGRAM and ARGS) when first used."""

    _limits_added = False

    def get_params(self, ctx: click.Context) -> list:
        if not self._limits_added:
            from nbcvm.cli import limit_options

            holder: Any = limit_options(lambda: None)
            self.params[2:2] = list(reversed(holder.__click_params__))
            self._limits_added = True
        return super().get_params(ctx)


class _Size(click.ParamType):
    name = "BYTES"

    def convert(self, value, param, ctx):
        if isinstance(value, int):
            return value
        from nbcvm.tools.leakcheck import parse_size

        try:
            return parse_size(value)
        except ValueError as e:
            self.fail(str(e), param, ctx)


@click.command("leak-check", cls=_WithLimitFlags, context_settings={"ignore_unknown_options": True})
@click.argument("program", type=click.Path(dir_okay=False))
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.option("--runs", type=click.IntRange(min=3), default=20, show_default=True,
              help="Measured calls of the entry (after the warm-up).")
@click.option("--warmup", type=click.IntRange(min=0), default=3, show_default=True,
              help="Calls before measuring (caches and lazy imports settle).")
@click.option("--threshold", type=click.FloatRange(min=0, min_open=True), default=0.01, show_default=True,
              help="Fitted growth over the soak, as a fraction of the first sample, that counts as a leak.")
@click.option("--max-rss", type=_Size(), default=None,
              help="RSS budget (e.g. 200MB, 1GiB): exit 1 once the process goes over it.")
@click.option("--entry", default="main", show_default=True, help="Function to call each run.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random module.")
@click.option("--path", "paths", multiple=True, help="Extra module search folder (repeatable).")
@click.option("--allow", "allow", multiple=True, metavar="GRANT", help="Grant host access (as for run).")
@click.option("--top", type=click.IntRange(min=1), default=10, show_default=True,
              help="Growing sites to list.")
@click.option("--no-tracemalloc", is_flag=True, help="Skip Python heap tracing (faster; no Python sites).")
@click.option("--show-output", is_flag=True, help="Let the program print (it is discarded by default).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def leak_check(ctx: click.Context, program, args, runs, warmup, threshold, max_rss, entry, max_steps, max_depth,
               timeout, max_memory, max_output, seed, paths, allow, top, no_tracemalloc, show_output,
               as_json):
    """Call PROGRAM's entry (main with ARGS) --runs times in one runtime and report what grows.

    Exit 1 when a metric leaks or RSS passes --max-rss, 0 when clean, 2 on bad input.
    Limits apply to each run.
    """
    from nbcvm.cli import EXIT_FINDINGS, EXIT_OK, _Ctx, _emit_json, _limits
    from nbcvm.tools.leakcheck import LeakConfig, run_leak_check

    obj = ctx.obj if ctx.obj is not None else _Ctx()
    cfg = LeakConfig(program, tuple(args), entry, runs, warmup, threshold, max_rss,
                     _limits(max_steps, max_depth, timeout, max_memory, max_output), seed, tuple(paths),
                     tuple(allow), show_output, top, not no_tracemalloc)
    progress = None
    if sys.stderr.isatty():
        from nbcvm.report.leak_render import LeakProgress

        progress = LeakProgress(obj.err_console)
    try:
        report = run_leak_check(cfg, progress)
    finally:
        if progress is not None:
            progress.close()
    if as_json:
        _emit_json(report.to_dict())
    else:
        from nbcvm.report.leak_render import leak_report

        leak_report(obj.console, report)
    sys.exit(EXIT_OK if report.ok else EXIT_FINDINGS)
