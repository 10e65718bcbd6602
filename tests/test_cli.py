"""CLI: exact output and exit codes of run, asm, disasm, verify."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from nbcvm.cli import main

ROOT = Path(__file__).parent.parent
EX = ROOT / "examples"


def run(capfd, *args):
    code = main(list(args))
    out, err = capfd.readouterr()
    assert 'File "' not in err, err  # never a Python traceback
    return code, out, err


def test_run_hello(capfd):
    assert run(capfd, "run", str(EX / "hello.nbc")) == (0, "Hello, world!\n", "")


def test_run_args_and_stats(capfd):
    code, out, err = run(capfd, "run", str(EX / "fib.nbc"), "15", "--stats")
    assert code == 0 and out == "610\n"
    assert "instructions executed" in err and "calls" in err


def test_run_json_outcome(capfd):
    code, out, err = run(capfd, "run", str(EX / "fib.nbc"), "10", "--json")
    d = json.loads(err)
    assert d["exit_code"] == 0 and d["stats"]["calls"] == 178 and d["error"] is None


def test_uncaught_error_traceback(tmp_path, capfd):
    p = tmp_path / "boom.nbc"
    p.write_text(".func f x\n    load x\n    push 0\n    idiv\n    ret\n.end\n"
                 ".func main\n    push 1\n    call f 1\n    ret\n.end\n")
    code, out, err = run(capfd, "run", str(p))
    assert code == 1 and out == ""
    lines = err.splitlines()
    assert lines[0] == "Traceback (most recent call last):"
    assert f"boom.main  {p}:9  pc 1: call" in err and f"boom.f  {p}:4  pc 2: idiv" in err
    assert lines[-1] == "ZeroDivisionError (code 101): integer division or modulo by zero"


def test_syntax_error_exit_2(tmp_path, capfd):
    p = tmp_path / "bad.nbc"
    p.write_text(".func main\n    push 1\n    addd\n    ret\n.end\n")
    code, out, err = run(capfd, "run", str(p))
    assert code == 2
    assert err.splitlines()[0] == f"{p}:3:5: syntax error: unknown instruction 'addd' (did you mean 'add'?)"
    assert err.splitlines()[2].endswith("     ^^^^")


@pytest.mark.parametrize("args,msg", [
    (["run", "nope.nbc"], "nope.nbc: error: no such file"),
    (["run", "."], "is a directory"),
    (["run", "--max-steps", "x", "a.nbc"], "Invalid value for '--max-steps'"),
    (["frobnicate"], "No such command"),
])
def test_bad_usage_exit_2(capfd, args, msg):
    code, out, err = run(capfd, *args)
    assert code == 2 and msg in err


def test_wrong_arg_count(capfd):
    code, out, err = run(capfd, "run", str(EX / "fib.nbc"))
    assert code == 2 and "main takes 1 argument(s) (n), got 0" in err


def test_limits_flags(capfd):
    code, out, err = run(capfd, "run", str(EX / "fib.nbc"), "25", "--max-steps", "1000")
    assert code == 1 and "LimitExceeded (code 600): steps limit exceeded" in err
    code, out, err = run(capfd, "run", str(EX / "fib.nbc"), "25", "--max-depth", "5")
    assert code == 1 and "depth limit exceeded: used 6 frames of 5 frames" in err


def test_disasm_round_trip(tmp_path, capfd):
    code, out, err = run(capfd, "disasm", str(EX / "fib.nbc"))
    assert code == 0 and out.startswith(".module fib\n")
    p = tmp_path / "fib2.nbc"
    p.write_text(out)
    code, out2, _ = run(capfd, "disasm", str(p))
    assert out2 == out


def test_verify_ok_and_bad(tmp_path, capfd):
    bad = tmp_path / "under.nbc"
    bad.write_text(".func main\n    add\n    ret\n.end\n")
    code, out, err = run(capfd, "verify", str(EX / "hello.nbc"), str(bad))
    assert code == 2 and "stack underflow" in err and "under.nbc" in out
    code, out, err = run(capfd, "verify", "--json", str(EX / "hello.nbc"))
    assert code == 0 and json.loads(out)[0]["ok"] is True


def test_asm_summary(capfd):
    code, out, err = run(capfd, "asm", str(EX / "fib.nbc"))
    assert code == 0 and out.startswith(f"{EX / 'fib.nbc'}: module fib, 2 function(s)")


def test_python_dash_m_and_no_numpy_for_hello():
    code = ("import sys, runpy; sys.argv=['nbcvm','run','%s'];\n"
            "from nbcvm.cli import main\nrc=main(sys.argv[1:])\n"
            "heavy = ('numpy', 'rich', 'numba', 'nbcvm.report.ci_formats', 'nbcvm.jit.nbtier')\n"
            "assert not [m for m in heavy if m in sys.modules], [m for m in heavy if m in sys.modules]\n"
            "sys.exit(rc)") % (EX / "hello.nbc")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout == "Hello, world!\n", r.stderr
    r = subprocess.run([sys.executable, "-m", "nbcvm", "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and "nbcvm" in r.stdout


def test_internal_error_is_one_line(monkeypatch, capfd):
    import nbcvm.tools.run as runmod

    def boom(cfg):
        raise RuntimeError("kaboom")

    monkeypatch.setattr(runmod, "run_program", boom)
    code, out, err = run(capfd, "run", str(EX / "hello.nbc"))
    assert code == 70 and err.strip() == "nbcvm: internal error: RuntimeError: kaboom (please report this)"


def test_run_warns_about_cancelled_threads(tmp_path, capfd, monkeypatch):
    from nbcvm.runtime.runtime import Runtime

    monkeypatch.setattr(Runtime, "_grace", lambda self: 0.1)
    p = tmp_path / "spin.nbc"
    p.write_text(".func spin\ntop:\n    jmp top\n.end\n.func main\n    spawn spin 0\n    pop\n    push 0\n    ret\n.end\n")
    code, out, err = run(capfd, "run", str(p))
    assert code == 0 and out == ""
    assert err == ("warning: 1 VM thread(s) still running when the run ended were cancelled "
                   "(join threads before main returns)\n")


def test_disasm_of_decodable_but_invalid_binary_is_a_clean_error(tmp_path, capfd):
    from nbcvm.bytecode.codec import encode
    from nbcvm.bytecode.model import CodeObject, Module
    from nbcvm.isa import BY_NAME

    f = CodeObject("main", 0, (), ((BY_NAME["push"].code, (7,)), (BY_NAME["ret"].code, ())), (1, 2))
    p = tmp_path / "bad.nbcb"
    p.write_bytes(encode(Module("bad", (0,), (), (), (), (f,), "bad.nbc")))
    code, out, err = run(capfd, "disasm", str(p))
    assert code == 2 and out == ""
    assert "constant index 7 out of range" in err and "internal error" not in err


def test_verify_prints_the_kind_and_a_caret(tmp_path, capfd):
    bad = tmp_path / "typo.nbc"
    bad.write_text(".func main\n    pushh 1\n    ret\n.end\n")
    trunc = tmp_path / "short.nbcb"
    trunc.write_bytes(b"NBCB\x01\x00garbage")
    code, out, err = run(capfd, "verify", str(bad), str(trunc))
    assert code == 2
    assert f"{bad}:2:5: syntax error: unknown instruction 'pushh' (did you mean 'push'?)\n" \
           "    2 |     pushh 1\n      |     ^^^^^\n" in err
    assert f"{trunc}: format error: truncated" in err
    code, out, _ = run(capfd, "verify", "--json", str(bad))
    assert json.loads(out)[0]["errors"] == [
        f"{bad}:2:5: syntax error: unknown instruction 'pushh' (did you mean 'push'?)"]
