"""No ambient authority: every way out of the sandbox is refused with a clear error."""

import os

import pytest

from helpers import run_src
from nbcvm.errors import UsageError
from nbcvm.runtime.capabilities import parse_grants


def run_with(src: str, allow=(), tmp=None):
    import io

    from nbcvm.asm.assembler import assemble
    from nbcvm.runtime.runtime import Runtime

    out = io.StringIO()
    rt = Runtime(stdout=out, grants=parse_grants(allow))
    outcome = rt.run_main(rt.instantiate(assemble(src, "escape.nbc")))
    return outcome, out.getvalue()


def prog(module: str, fn: str, *args: str) -> str:
    pushes = "\n".join(f"    push {a}" for a in args)
    return (f".import {module}\n.func main\n{pushes}\n    call {module}.{fn} {len(args)}\n"
            "    print\n    push 0\n    ret\n.end\n")


@pytest.mark.parametrize("module,fn,args", [
    ("fs", "read", ['"/etc/passwd"']),
    ("env", "get", ['"HOME"']),
])
def test_capability_modules_need_a_grant(module, fn, args):
    outcome, _ = run_with(prog(module, fn, *args))
    e = outcome.error
    assert e.type_name == "PermissionError" and "was not granted" in e.message and "--allow" in e.message


@pytest.mark.parametrize("module", ["net", "socket", "os", "subprocess", "process", "py", "builtins"])
def test_no_network_process_or_python_modules(module):
    outcome, _ = run_with(prog(module, "open", '"x"'))
    assert outcome.error.type_name == "ImportError" and f"no module named '{module}'" in outcome.error.message


def test_fs_grant_confines_paths(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    (root / "in.txt").write_text("inside")
    (tmp_path / "secret.txt").write_text("secret")
    os.symlink(tmp_path / "secret.txt", root / "link.txt")
    allow = (f"fs:{root}",)
    ok, out = run_with(prog("fs", "read", '"in.txt"'), allow)
    assert ok.error is None and out == "inside\n"
    for path in ['"../secret.txt"', f'"{tmp_path}/secret.txt"', '"link.txt"', '"a/../../secret.txt"']:
        outcome, out = run_with(prog("fs", "read", path), allow)
        assert outcome.error.type_name == "PermissionError", path
        assert "secret" not in out
    w, _ = run_with(prog("fs", "write", '"new.txt"', '"hello"'), allow)
    assert w.error is None and (root / "new.txt").read_text() == "hello"
    ro, _ = run_with(prog("fs", "write", '"x.txt"', '"y"'), (f"fs-ro:{root}",))
    assert ro.error.type_name == "PermissionError" and "read-only" in ro.error.message


def test_env_grant_by_name(monkeypatch):
    monkeypatch.setenv("NBC_OK", "yes")
    monkeypatch.setenv("NBC_SECRET", "no")
    outcome, out = run_with(prog("env", "get", '"NBC_OK"'), ("env:NBC_OK",))
    assert out == "yes\n"
    outcome, out = run_with(prog("env", "get", '"NBC_SECRET"'), ("env:NBC_OK",))
    assert outcome.error.type_name == "PermissionError"


def test_no_python_object_is_reachable():
    # every value a program can make prints as an NBC value; typeof never names a host type
    src = """
    .import math
    .import sys
    .func main
        call sys.args 0
        typeof
        print
        push 1.0
        call math.sqrt 1
        typeof
        print
        push 0
        ret
    .end"""
    outcome, out, _ = run_src(src)
    assert out == "list\nfloat\n"


@pytest.mark.parametrize("spec", ["fs", "net:1", "fs:/no/such/dir"])
def test_bad_grants_are_usage_errors(spec):
    with pytest.raises(UsageError):
        parse_grants([spec])


def test_cli_allow_flag(tmp_path, capfd):
    from nbcvm.cli import main

    (tmp_path / "f.txt").write_text("data")
    p = tmp_path / "p.nbc"
    p.write_text(prog("fs", "read", '"f.txt"'))
    assert main(["run", str(p)]) == 1
    assert "PermissionError" in capfd.readouterr().err
    assert main(["run", str(p), "--allow", f"fs:{tmp_path}"]) == 0
    assert capfd.readouterr().out == "data\n"
    assert main(["run", str(p), "--allow", "net"]) == 2
    assert "unknown grant 'net'" in capfd.readouterr().err
