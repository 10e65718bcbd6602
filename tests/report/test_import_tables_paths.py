"""validate-imports' table: locations of findings, and the progress bar on a terminal only."""

import io

from rich.console import Console

from nbcvm.report.import_tables import import_report_to_file, progress_bar
from nbcvm.tools.findings import Finding, ImportReport


def test_finding_locations_with_and_without_a_file(tmp_path):
    findings = (
        Finding("import-error", "error", "a", "no file at all"),
        Finding("unused", "warning", "b", "line only", file=str(tmp_path / "b.py"), line=3),
        Finding("unused", "warning", "c", "line and col", file=str(tmp_path / "c.py"), line=4, col=7),
    )
    buf = io.StringIO()
    import_report_to_file(buf, ImportReport("python", ("x",), (), findings, (), 0.0123), width=200)
    rows = {line.split("│")[3].strip(): line.split("│")[4].strip()
            for line in buf.getvalue().splitlines() if line.startswith("│")}
    assert rows == {"a": "-", "b": f"{tmp_path / 'b.py'}:3", "c": f"{tmp_path / 'c.py'}:4:7"}
    assert buf.getvalue().splitlines()[0] == (
        "validate-imports (python): FAILED -- 0 module(s) checked, 0 failed to import, 1 error(s), "
        "2 warning(s), 0 cycle(s) in 12.3 ms")


def test_progress_bar_only_on_a_terminal():
    with progress_bar(Console(file=io.StringIO(), force_terminal=False)) as update:
        assert update is None
    buf = io.StringIO()
    with progress_bar(Console(file=buf, force_terminal=True, width=90, color_system=None)) as update:
        update("nbc", 1, 3, "a.nbc")
        update("python", 2, 2, "pkg.mod")
        update("nbc", 3, 3, "c.nbc")
    # the final frame (drawn when the bar stops) holds one line per phase, with the last label
    final = buf.getvalue().rpartition("\x1b[?25h")[0].rsplit("\x1b[2K", 1)[1].splitlines()
    assert [line.split()[0] for line in final] == ["NBC", "Python"]
    assert final[0].split()[-3] == "3/3" and final[0].split()[-1] == "c.nbc"
    assert final[1].split()[-3] == "2/2" and final[1].split()[-1] == "pkg.mod"
