"""Golden programs: every tests/programs/*.nbc and examples/*.nbc, run end to end.

Each program carries its expectations inline, as comments (like clox's
``// expect:`` files)::

    ; expect: TEXT            the next line of stdout, in order; every line must match
    ; expect error: TypeName  the program ends with this uncaught NBC error (exit 1)
    ; expect exit: N          the exit code (default 0, or 1 with ``expect error``)
    ; args: A B C             command-line arguments (main's parameters)
    ; flags: --max-steps 100  extra ``nbcvm run`` options

The program runs through ``nbcvm.cli.main`` exactly as ``nbcvm run`` would,
so exit codes and the rendering of uncaught errors are covered too.  An
uncaught error's NBC traceback goes to stderr and ends in
``TypeName (code N): message``; a Python traceback there is always a bug.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from nbcvm.cli import main
from nbcvm.errors import ERROR_TYPES

ROOT = Path(__file__).resolve().parent.parent
PROGRAMS = sorted((ROOT / "tests" / "programs").glob("*.nbc"))
EXAMPLES = sorted((ROOT / "examples").glob("*.nbc"))

_DIRECTIVE = re.compile(r"^;+\s*(expect error|expect exit|expect|args|flags):(.*)$")
_ERROR_LINE = re.compile(r"^(\w+) \(code (\d+)\): ")
PY_TRACEBACK = 'Traceback (most recent call last):\n  File "'


@dataclass
class Expectations:
    stdout: list[str] = field(default_factory=list)
    error: str | None = None
    exit: int | None = None
    args: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    count: int = 0  # how many expectation comments the file has

    @property
    def exit_code(self) -> int:
        if self.exit is not None:
            return self.exit
        return 1 if self.error else 0


def _comment(line: str) -> str | None:
    """The comment of a source line (from its first ``;`` outside a string literal)."""
    in_str = esc = False
    for i, ch in enumerate(line):
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch == ";":
            return line[i:]
    return None


def parse_expectations(text: str) -> Expectations:
    exp = Expectations()
    for line in text.splitlines():
        comment = _comment(line)
        m = _DIRECTIVE.match(comment) if comment else None
        if not m:
            continue
        kind, value = m.group(1), m.group(2)
        value = value[1:] if value.startswith(" ") else value  # one space after the colon
        if kind == "expect":
            exp.stdout.append(value)
            exp.count += 1
        elif kind == "expect error":
            exp.error = value.strip()
            exp.count += 1
        elif kind == "expect exit":
            exp.exit = int(value.strip())
            exp.count += 1
        elif kind == "args":
            exp.args += shlex.split(value)
        else:
            exp.flags += shlex.split(value)
    return exp


def run_file(path: Path, capfd) -> tuple[int, str, str, Expectations]:
    exp = parse_expectations(path.read_text(encoding="utf-8"))
    capfd.readouterr()  # drop anything printed before this run
    code = main(["run", *exp.flags, str(path), *exp.args])
    out, err = capfd.readouterr()
    return code, out, err, exp


def _check(path: Path, capfd) -> None:
    code, out, err, exp = run_file(path, capfd)
    assert exp.count, f"{path.name} has no '; expect' comments"
    assert PY_TRACEBACK not in err, f"Python traceback on stderr:\n{err}"
    assert "internal error" not in err, err
    lines = out.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    else:
        assert out == "", f"stdout does not end with a newline: {out[-40:]!r}"
    assert lines == exp.stdout, f"stdout differs\nstderr:\n{err}"
    if exp.error:
        last = err.rstrip("\n").rsplit("\n", 1)[-1]
        m = _ERROR_LINE.match(last)
        assert m, f"expected an uncaught {exp.error}; stderr was:\n{err}"
        assert m.group(1) == exp.error, f"uncaught {m.group(1)}, expected {exp.error}:\n{err}"
        assert int(m.group(2)) == ERROR_TYPES[exp.error].code
        assert err.startswith("Traceback (most recent call last):\n"), err
    else:
        assert err == "", f"unexpected stderr:\n{err}"
    assert code == exp.exit_code, f"exit code {code}, expected {exp.exit_code}\nstderr:\n{err}"


@pytest.mark.parametrize("path", PROGRAMS, ids=lambda p: p.name)
def test_program(path: Path, capfd) -> None:
    _check(path, capfd)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: f"examples/{p.name}")
def test_example(path: Path, capfd) -> None:
    _check(path, capfd)


def test_there_are_enough_programs() -> None:
    assert len(PROGRAMS) >= 30
    assert {p.name for p in EXAMPLES} >= {"strings.nbc", "collections.nbc", "tensors.nbc", "errors.nbc",
                                           "recursion.nbc", "nbody.nbc", "mandelbrot.nbc"}


def test_examples_are_documented() -> None:
    """Each example opens with a comment block saying what it shows and how to run it."""
    for p in EXAMPLES:
        lines = p.read_text(encoding="utf-8").splitlines()
        assert lines and lines[0].startswith(f"; {p.name}"), f"{p.name}: first line should name the file"
        head = "\n".join(line for line in lines[:40] if line.startswith(";"))
        assert "nbcvm " in head and f"examples/{p.name}" in head, f"{p.name}: no command to run it"


def test_expectation_parser() -> None:
    exp = parse_expectations(
        '    push "a ; expect: no"  ; expect: a ; expect: no\n'
        "; expect:\n"
        ";   expect error: TypeError\n"
        "; expect exit: 3\n"
        "; args: 1 'two words'\n"
        "; flags: --max-steps 10\n"
    )
    assert exp.stdout == ["a ; expect: no", ""]
    assert exp.error == "TypeError" and exp.exit_code == 3
    assert exp.args == ["1", "two words"] and exp.flags == ["--max-steps", "10"]


def test_bench_references_match_the_examples() -> None:
    """scripts/bench.py's CPython versions print what the examples' expectations say."""
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location("nbc_bench", ROOT / "scripts" / "bench.py")
    bench = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = bench  # dataclasses look their module up there
    try:
        spec.loader.exec_module(bench)  # type: ignore[union-attr]
    finally:
        del sys.modules[spec.name]
    for name, f in (("fib", bench.py_fib), ("loops", bench.py_loops), ("nbody", bench.py_nbody),
                    ("mandelbrot", bench.py_mandelbrot)):
        exp = parse_expectations((ROOT / "examples" / f"{name}.nbc").read_text(encoding="utf-8"))
        assert f(*map(int, exp.args)).splitlines() == exp.stdout, name
