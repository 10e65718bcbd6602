"""CLI: `nbcvm validate-imports` exit codes, formats, output files, baselines, and the project's own CI runs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from nbcvm.cli import main

ROOT = Path(__file__).resolve().parent.parent
NBC = ROOT / "tests" / "fixtures" / "nbc"
PYPKGS = ROOT / "tests" / "fixtures" / "pypkgs"


def run(capfd, *args: str) -> tuple[int, str, str]:
    code = main(["validate-imports", *args])
    out, err = capfd.readouterr()
    assert "Traceback" not in err, err  # never a Python traceback
    return code, out, err


# --------------------------------------------------------------------------- exit codes


def test_clean_tree_exits_0_with_a_table(capfd):
    code, out, err = run(capfd, str(NBC / "diamond"))
    assert code == 0, out
    assert out.startswith("validate-imports (nbc): OK -- 4 module(s) checked, 0 failed to import, 0 error(s)")
    assert "modules" in out and "base" in out and "load time" in out
    assert err == ""  # no progress bar when stderr is not a terminal


def test_findings_exit_1_and_warnings_alone_exit_0(capfd):
    code, out, _ = run(capfd, str(NBC / "cycles"))
    assert code == 1
    assert out.startswith("validate-imports (nbc): FAILED -- 7 module(s) checked, 0 failed to import, 2 error(s)")
    assert "cycle b -> c -> a -> b" in out
    code, out, _ = run(capfd, str(NBC / "unused"))
    assert code == 0 and "unused-import" in out


@pytest.mark.parametrize("args, message", [
    ([], "nothing to check"),
    (["does/not/exist"], "Error: no such file or directory: does/not/exist"),
    (["--python", "no_such_package_xyz"], "Error: unknown target 'no_such_package_xyz'"),
    ([str(NBC / "diamond"), "--baseline", "missing-baseline.json"], "Error: baseline file not found"),
    ([str(NBC / "diamond"), "--format", "xml"], "Invalid value for '--format'"),
])
def test_bad_usage_and_bad_input_exit_2(capfd, args, message):
    code, out, err = run(capfd, *args)
    assert code == 2 and out == ""
    assert message in err


def test_bad_input_is_one_line(capfd):
    code, _, err = run(capfd, "--python", "no_such_package_xyz")
    assert code == 2 and err.count("\n") == 1


# --------------------------------------------------------------------------- formats and output


def test_github_format_lines(capfd):
    code, out, err = run(capfd, str(NBC / "missing"), "--format", "github")
    assert code == 1 and err == ""
    path = os.path.relpath(NBC / "missing" / "app.nbc")
    assert out.splitlines() == [
        f"::error file={path},line=3,col=9,title=missing-module in app::app imports mathz, which was not found "
        "(did you mean 'math'?)%0Asuggestion: change `.import mathz` to `.import math` (and its calls)",
        f"::error file={path},line=4,col=9,title=missing-module in app::app imports utils, which was not found "
        "(did you mean 'util'?)%0Asuggestion: change `.import utils` to `.import util` (and its calls)",
    ]


def test_clean_github_output_is_empty(capfd):
    assert run(capfd, str(NBC / "diamond"), "--format", "github") == (0, "", "")


@pytest.mark.parametrize("fmt", ["json", "junit", "sarif"])
def test_machine_formats_to_stdout_or_file(capfd, tmp_path, fmt):
    code, out, err = run(capfd, str(NBC / "badcall"), "--format", fmt)
    assert code == 1 and err == "" and "lib.nope" in out
    target = tmp_path / f"report.{fmt}"
    code, out2, err = run(capfd, str(NBC / "badcall"), "--format", fmt, "--output", str(target))
    assert code == 1 and out2 == "" and err == f"wrote the {fmt} report to {target}\n"
    written = target.read_text()
    if fmt != "junit":
        assert json.loads(written)  # the same document, just elsewhere
    assert "lib.nope" in written


def test_json_shorthand(capfd):
    code, out, err = run(capfd, str(NBC / "unused"), "--json")
    d = json.loads(out)
    assert code == 0 and err == "" and d["summary"]["warnings"] == 1 and d["ok"] is True


def test_table_to_file_has_no_control_sequences(capfd, tmp_path):
    target = tmp_path / "report.txt"
    code, out, _ = run(capfd, str(NBC / "initraise"), "-o", str(target))
    text = target.read_text()
    assert code == 1 and out == "" and "\x1b[" not in text
    assert "validate-imports (nbc): FAILED" in text and "UserError: boom at init" in text


# --------------------------------------------------------------------------- baselines


def test_write_baseline_then_baseline_ratchet(capfd, tmp_path):
    tree = tmp_path / "tree"
    shutil.copytree(NBC / "badcall", tree)
    baseline = tmp_path / "imports-baseline.json"
    code, out, err = run(capfd, str(tree), "--write-baseline", str(baseline))
    assert code == 0 and f"wrote the baseline {baseline}" in err and "3 suppressed by the baseline" in out
    assert len(json.loads(baseline.read_text())["fingerprints"]) == 3
    assert run(capfd, str(tree), "--baseline", str(baseline), "--format", "github") == (0, "", "")
    # a new problem fails the run; only it is reported
    (tree / "more.nbc").write_text(".module more\n.import lib\n.func f\n    call lib.gone 0\n    ret\n.end\n")
    code, out, _ = run(capfd, str(tree), "--baseline", str(baseline), "--format", "github")
    assert code == 1 and len(out.splitlines()) == 1 and "lib.gone" in out
    # fixing a baselined problem passes and shows the stale entry
    (tree / "more.nbc").unlink()
    app = tree / "app.nbc"
    app.write_text(app.read_text().replace("call math.sqrt 2", "call math.atan2 2"))
    code, out, _ = run(capfd, str(tree), "--baseline", str(baseline))
    assert code == 0 and "stale baseline entries" in out and "math.sqrt" in out
    code, out, _ = run(capfd, str(tree), "--baseline", str(baseline), "--format", "github")
    assert code == 0 and out.startswith("::notice title=stale baseline entry::")


# --------------------------------------------------------------------------- Python half through the CLI


def test_python_package_by_path_together_with_nbc(capfd):
    code, out, _ = run(capfd, str(NBC / "diamond"), "--python", str(PYPKGS / "cleanpkg"), "--format", "json")
    d = json.loads(out)
    assert code == 0 and d["tool"] == "nbc+python" and d["ok"]
    assert {"base", "cleanpkg.top"} <= {m["name"] for m in d["modules"]}
    code, out, _ = run(capfd, "--python", str(PYPKGS / "cyclepkg"), "--jobs", "2", "--timeout", "20",
                       "--format", "github")
    assert code == 1 and "title=cycle in cyclepkg" in out


# --------------------------------------------------------------------------- the project's own CI steps


def test_project_examples_pass(capfd):
    code, out, _ = run(capfd, str(ROOT / "examples"))
    assert code == 0, out


def test_project_python_package_passes(capfd):
    code, out, _ = run(capfd, "--python", "nbcvm", "--format", "github")
    assert code == 0, out


def test_nbcvm_run_does_not_load_the_validator():
    code = ("import sys\nfrom nbcvm.cli import main\nrc = main(['run', sys.argv[1]])\n"
            "print(rc, sorted(m for m in ('grimp', 'rich', 'nbcvm.tools.pyimports', 'nbcvm.tools.nbcimports')"
            " if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code, str(ROOT / "examples" / "hello.nbc")],
                         capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert out.stdout.splitlines()[-1] == "0 []", out.stderr
