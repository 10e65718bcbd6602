"""``nbcvm profile``: run a program under the performance monitor; ``nbcvm profile diff`` compares reports.

``profile`` is a click group whose default command is ``run``, so both
``nbcvm profile PROGRAM [ARGS]...`` and ``nbcvm profile run PROGRAM`` work,
next to ``nbcvm profile diff OLD NEW`` (a program literally named ``diff``
is reached as ``./diff`` or ``profile run diff``).

Exit codes: the program's own non-zero exit code (1 for an uncaught NBC
error); else 1 if an alert fired or the baseline comparison found a
regression; else 0.  2 for bad usage (an unparsable ``--alert`` rule, an
unreadable baseline).

``nbcvm.cli`` imports this module at its end to register the group, so
nothing from ``nbcvm.cli`` is imported here at module level (that would be an
import cycle): the shared limit flags (``limit_options``) are attached to
``run`` the first time the group looks the command up, and ``_limits`` /
``_Ctx`` are imported inside the functions that use them.
"""

from __future__ import annotations

import sys
from typing import Any

import click


class _DefaultGroup(click.Group):
    """A group that runs ``run`` when the first argument is not one of its commands."""

    default = "run"

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in ("-h", "--help")):
            args = [self.default, *args]
        return super().parse_args(ctx, args)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        cmd = super().get_command(ctx, name)
        if cmd is not None and getattr(cmd, "wants_limit_options", False):
            _add_limit_options(cmd)
        return cmd


def _add_limit_options(cmd: click.Command) -> None:
    """Give ``cmd`` the same --max-steps/--max-depth/--timeout/... flags as ``nbcvm run``."""
    from nbcvm.cli import limit_options

    holder = limit_options(lambda: None)
    cmd.params[2:2] = list(reversed(holder.__click_params__))  # after PROGRAM and ARGS
    cmd.wants_limit_options = False  # type: ignore[attr-defined]


def _obj(ctx: click.Context) -> Any:
    if ctx.obj is not None:
        return ctx.obj
    from nbcvm.cli import _Ctx

    ctx.obj = _Ctx()
    return ctx.obj


def _rules(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]):
    from nbcvm.tools.profile import parse_rule

    try:
        return tuple(parse_rule(v) for v in values)
    except ValueError as e:
        raise click.BadParameter(str(e), ctx=ctx, param=param) from None


@click.group(cls=_DefaultGroup, context_settings={"help_option_names": ["-h", "--help"]})
def profile() -> None:
    """Profile PROGRAM: hot functions, opcodes and lines, alerts, suggestions, exports, baselines.

    \b
    nbcvm profile PROGRAM [ARGS]...     run and profile (same as `profile run`)
    nbcvm profile diff OLD.json NEW.json  compare two saved --json reports
    """


@profile.command("run", context_settings={"ignore_unknown_options": True})
@click.argument("program", type=click.Path(dir_okay=False))
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random module.")
@click.option("--path", "paths", multiple=True, help="Extra module search folder (repeatable).")
@click.option("--entry", default="main", show_default=True, help="Function to run.")
@click.option("--allow", "allow", multiple=True, metavar="GRANT", help="Grant host access (as for run).")
@click.option("--level", type=click.Choice(["function", "opcode"]), default="opcode", show_default=True,
              help="function: calls and times only (fast); opcode: also exact per-opcode and per-line counts.")
@click.option("--top", type=click.IntRange(min=1), default=15, show_default=True, help="Rows per table.")
@click.option("--sort", type=click.Choice(["time", "calls", "inclusive", "percall", "name"]), default="time",
              show_default=True, help="Order of the tables (time = exclusive time).")
@click.option("--tree/--no-tree", default=True, show_default=True, help="Show the call tree.")
@click.option("--tree-depth", type=click.IntRange(min=1), default=8, show_default=True)
@click.option("--live", is_flag=True, help="Show a live top-style view on stderr while the program runs.")
@click.option("--alert", "alerts", multiple=True, metavar="RULE", callback=_rules,
              help="Alert rule, e.g. 'fn:fib:p95>5ms', 'rss>200MB', 'ips<1e6', 'op:add:count>100' (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print the complete report as JSON to stderr (no tables).")
@click.option("--export", "export_path", type=click.Path(dir_okay=False), help="Write the profile to FILE.")
@click.option("--format", "export_format", type=click.Choice(["speedscope", "collapsed", "chrome", "json"]),
              default="speedscope", show_default=True, help="Format of --export.")
@click.option("--max-events", type=click.IntRange(min=0), default=500_000, show_default=True,
              help="Calls kept for timeline exports (speedscope, chrome).")
@click.option("--log", "log_dir", type=click.Path(file_okay=False), help="Append a summary to DIR/profile-log.jsonl.")
@click.option("--baseline", type=click.Path(dir_okay=False), help="Compare with a saved --json report.")
@click.option("--max-time-regression", type=click.FloatRange(min=0), default=20.0, show_default=True,
              help="Allowed wall-time increase over the baseline, in percent.")
@click.option("--max-throughput-regression", type=click.FloatRange(min=0), default=15.0, show_default=True,
              help="Allowed instructions/s decrease from the baseline, in percent.")
@click.pass_context
def run(ctx: click.Context, program, args, seed, paths, entry, allow, level, top, sort, tree, tree_depth, live,
        alerts, as_json, export_path, export_format, max_events, log_dir, baseline, max_time_regression,
        max_throughput_regression, **limit_flags):
    """Run PROGRAM with ARGS under the profiler; the program's output still goes to stdout."""
    from nbcvm.cli import _limits
    from nbcvm.report.text import traceback
    from nbcvm.tools import profile as drv
    from nbcvm.tools.run import RunConfig

    obj = _obj(ctx)
    base = drv.load_report(baseline) if baseline else None  # a bad baseline is exit 2 before running
    cfg = drv.ProfileConfig(
        RunConfig(program, tuple(args), _limits(**limit_flags), seed, tuple(paths), entry, tuple(allow)),
        level=level, alerts=alerts, max_events=max_events,
        record_events=export_path is not None and export_format in ("speedscope", "chrome"))
    view = None
    if live:
        from nbcvm.report.profile_render import LiveView

        view = LiveView(obj.err_console, top=top)

    def on_alert(a) -> None:
        if as_json:
            return
        sys.stdout.flush()
        if view is not None:
            view.print(f"[bold red]{a.message}[/]")
        else:
            click.echo(a.message, err=True)

    report = drv.profile_program(cfg, on_alert=on_alert, live=view)
    sys.stdout.flush()
    if report.error_obj is not None and not as_json:
        click.echo(traceback(report.error_obj), err=True)
    code = report.exit_code or (1 if report.alerts else 0)
    cmp = drv.compare(base, report.to_dict(), max_time_regression=max_time_regression / 100,
                      max_throughput_regression=max_throughput_regression / 100,
                      old_name=str(baseline)) if base is not None else None
    if cmp is not None and cmp.regression and not code:
        code = 1
    if export_path:
        from nbcvm.report.exports import write_export

        write_export(report, export_path, export_format)
    if log_dir:
        drv.append_log(log_dir, report)
    if as_json:
        d = report.to_dict()
        if cmp is not None:
            d["baseline"] = cmp.to_dict()
        click.echo(drv.dumps_dict(d), err=True)
    else:
        from nbcvm.report.profile_render import render_comparison, render_report

        render_report(obj.err_console, report, top=top, sort=sort, tree=tree, tree_depth=tree_depth)
        if cmp is not None:
            render_comparison(obj.err_console, cmp, top)
        if export_path:
            click.echo(f"wrote {export_format} profile to {export_path}", err=True)
    sys.exit(code)


run.wants_limit_options = True  # type: ignore[attr-defined]


@profile.command("diff")
@click.argument("old", type=click.Path(dir_okay=False))
@click.argument("new", type=click.Path(dir_okay=False))
@click.option("--top", type=click.IntRange(min=1), default=15, show_default=True)
@click.option("--max-time-regression", type=click.FloatRange(min=0), default=20.0, show_default=True,
              help="Allowed wall-time increase, in percent.")
@click.option("--max-throughput-regression", type=click.FloatRange(min=0), default=15.0, show_default=True,
              help="Allowed instructions/s decrease, in percent.")
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
@click.pass_context
def diff(ctx: click.Context, old, new, top, max_time_regression, max_throughput_regression, as_json):
    """Compare two saved reports (--json output); exit 1 on a regression."""
    from nbcvm.tools import profile as drv

    cmp = drv.compare(drv.load_report(old), drv.load_report(new), max_time_regression=max_time_regression / 100,
                      max_throughput_regression=max_throughput_regression / 100, old_name=old, new_name=new)
    if as_json:
        click.echo(drv.dumps_dict(cmp.to_dict()))
    else:
        from nbcvm.report.profile_render import render_comparison

        render_comparison(_obj(ctx).console, cmp, top)
    sys.exit(1 if cmp.regression else 0)
