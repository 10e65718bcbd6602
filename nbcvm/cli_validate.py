"""``nbcvm validate-imports``: the CI step for NBC module trees and Python packages.

Thin, like every command: options -> ValidateConfig -> driver
(``nbcvm.tools.nbcimports.validate_imports``) -> renderer (a rich table, or
one of the CI formats) -> exit code.  Heavy modules (the drivers, grimp,
rich) are imported inside the command, so loading the CLI for ``nbcvm run``
costs nothing extra.

Exit codes: 0 no error-severity finding (after the baseline), 1 findings,
2 bad usage or bad input (nothing to check, a missing path, an unknown
Python package, an unreadable baseline) -- one line, never a traceback.
"""

from __future__ import annotations

import sys

import click

from nbcvm.report import CI_FORMATS as FORMATS  # the renderers load only when the command runs


class BadInput(click.ClickException):
    """Input the command cannot work with: one line on stderr, exit 2."""

    exit_code = 2


@click.command("validate-imports")
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--python", "python", multiple=True, metavar="PKG",
              help="Python package to check: an importable name or a package folder (repeatable).")
@click.option("--path", "search_path", multiple=True, metavar="DIR",
              help="Extra NBC module search folder, like `nbcvm run --path` (repeatable).")
@click.option("--format", "fmt", type=click.Choice(["table", *FORMATS]), default="table", show_default=True,
              help="table for people; json, junit, github or sarif for CI.")
@click.option("--json", "as_json", is_flag=True, help="Shorthand for --format json.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write the report to FILE, not stdout.")
@click.option("--baseline", type=click.Path(dir_okay=False),
              help="Ignore the findings listed in this baseline file; stale entries are shown.")
@click.option("--write-baseline", type=click.Path(dir_okay=False),
              help="Write today's findings to this baseline file (the run then passes).")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=30.0, show_default=True,
              help="Seconds each Python module may take to import.")
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=None,
              help="Python modules imported at once [default: CPU count].")
@click.pass_context
def validate_imports(ctx: click.Context, paths, python, search_path, fmt, as_json, output, baseline,
                     write_baseline, timeout, jobs):
    """Check the imports of NBC modules under PATHS and of --python packages.

    NBC: every .nbc/.nbcb file is assembled and verified, its imports resolved
    (missing modules, missing functions, wrong arity, unused imports), import
    cycles found, and each module really loaded (its init runs).  Python:
    each module is imported on its own in a clean interpreter, and import
    cycles are found statically.  Exit 0 clean, 1 findings, 2 bad input.
    """
    if not paths and not python:
        raise click.UsageError("nothing to check: give NBC PATHS and/or --python PKG", ctx)
    if as_json:
        fmt = "json"
    from nbcvm.tools.nbcimports import ValidateConfig
    from nbcvm.tools.nbcimports import validate_imports as run_checks

    cfg = ValidateConfig(tuple(paths), tuple(python), tuple(search_path), timeout, jobs, baseline,
                         write_baseline)
    try:
        if fmt == "table":
            from nbcvm.report.import_tables import progress_bar

            with progress_bar(ctx.obj.err_console) as progress:
                report = run_checks(cfg, progress)
        else:
            report = run_checks(cfg)
        _render(ctx.obj, report, fmt, output)
    except (ValueError, OSError) as e:
        raise BadInput(str(e)) from None
    if write_baseline:
        click.echo(f"wrote the baseline {write_baseline}", err=True)
    sys.exit(0 if report.ok else 1)


def _render(obj, report, fmt: str, output: str | None) -> None:
    if fmt == "table":
        from nbcvm.report.import_tables import import_report, import_report_to_file

        if output is None:
            import_report(obj.console, report)
            return
        with open(output, "w", encoding="utf-8") as fh:
            import_report_to_file(fh, report)
    else:
        from nbcvm.report.ci_formats import render_ci

        text = render_ci(report, fmt)
        if output is None:
            if text:
                click.echo(text, nl=not text.endswith("\n"))
            return
        with open(output, "w", encoding="utf-8") as fh:
            fh.write(text if text.endswith("\n") or not text else text + "\n")
    click.echo(f"wrote the {fmt} report to {output}", err=True)
