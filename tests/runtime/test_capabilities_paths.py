"""The fs and env capability modules: the rest of their surface and refusals."""

import io

import pytest

from nbcvm.asm.assembler import assemble
from nbcvm.errors import UsageError
from nbcvm.runtime import capabilities
from nbcvm.runtime.capabilities import Grants, parse_grants
from nbcvm.runtime.runtime import Runtime


def run_with(src: str, allow=()):
    out = io.StringIO()
    rt = Runtime(stdout=out, grants=parse_grants(allow))
    outcome = rt.run_main(rt.instantiate(assemble(src, "caps.nbc")))
    return outcome, out.getvalue()


def prog(module: str, fn: str, *args: str) -> str:
    pushes = "\n".join(f"    push {a}" for a in args)
    return (f".import {module}\n.func main\n{pushes}\n    call {module}.{fn} {len(args)}\n"
            "    print\n    push 0\n    ret\n.end\n")


@pytest.fixture
def root(tmp_path):
    d = tmp_path / "data"
    d.mkdir()
    (d / "b.txt").write_text("bee")
    (d / "a.txt").write_text("ay")
    (d / "sub").mkdir()
    return d


def test_grants_to_dict(root):
    g = parse_grants([f"fs-ro:{root}", "env:B,A", "env:C"])
    assert g.to_dict() == {"fs": str(root.resolve()), "fs_write": False, "env": True,
                           "env_names": ["A", "B", "C"]}
    assert Grants().to_dict() == {"fs": None, "fs_write": False, "env": False, "env_names": None}
    # the same folder twice is one grant; fs after fs-ro makes it writable
    g2 = parse_grants([f"fs-ro:{root}", f"fs:{root}/."])
    assert g2.fs_root == root.resolve() and g2.fs_write is True


def test_only_one_fs_folder(root, tmp_path):
    with pytest.raises(UsageError, match="only one fs folder can be granted"):
        parse_grants([f"fs:{root}", f"fs:{tmp_path}"])


def test_list_sorts_names_and_refuses_files(root):
    outcome, out = run_with(prog("fs", "list", '"."'), (f"fs-ro:{root}",))
    assert outcome.error is None and out == '["a.txt", "b.txt", "sub"]\n'
    outcome, out = run_with(prog("fs", "list", '"a.txt"'), (f"fs-ro:{root}",))
    assert (outcome.error.type_name, outcome.error.message) == ("NativeError", "fs.list: not a folder 'a.txt'")


def test_exists_and_append(root):
    outcome, out = run_with(prog("fs", "exists", '"a.txt"'), (f"fs-ro:{root}",))
    assert out == "true\n"
    outcome, out = run_with(prog("fs", "exists", '"zzz"'), (f"fs-ro:{root}",))
    assert out == "false\n"
    outcome, out = run_with(prog("fs", "append", '"a.txt"', '"+more"'), (f"fs:{root}",))
    assert outcome.error is None and (root / "a.txt").read_text() == "ay+more"


def test_remove_files_only_and_only_when_writable(root):
    ro, _ = run_with(prog("fs", "remove", '"a.txt"'), (f"fs-ro:{root}",))
    assert (ro.error.type_name, ro.error.message) == (
        "PermissionError", "fs.remove: the folder was granted read-only (fs-ro)")
    assert (root / "a.txt").exists()
    for target in ['"sub"', '"."']:
        d, _ = run_with(prog("fs", "remove", target), (f"fs:{root}",))
        assert (d.error.type_name, d.error.message) == ("PermissionError", "fs.remove: only files can be removed")
    ok, out = run_with(prog("fs", "remove", '"a.txt"'), (f"fs:{root}",))
    assert ok.error is None and out == "nil\n" and not (root / "a.txt").exists()


def test_read_missing_file_and_non_string_path(root):
    outcome, _ = run_with(prog("fs", "read", '"nope.txt"'), (f"fs-ro:{root}",))
    assert (outcome.error.type_name, outcome.error.message) == ("NativeError", "fs.read: no such file 'nope.txt'")
    outcome, _ = run_with(prog("fs", "read", "42"), (f"fs-ro:{root}",))
    assert (outcome.error.type_name, outcome.error.message) == ("TypeError", "fs.read needs a string, got int")
    outcome, _ = run_with(prog("env", "get", "nil"), ("env",))
    assert (outcome.error.type_name, outcome.error.message) == ("TypeError", "env.get needs a string, got nil")


def test_read_refuses_files_over_the_size_cap(root, monkeypatch):
    monkeypatch.setattr(capabilities, "MAX_FILE_BYTES", 2)
    outcome, out = run_with(prog("fs", "read", '"b.txt"'), (f"fs-ro:{root}",))
    assert (outcome.error.type_name, outcome.error.message) == ("ResourceError", "fs.read: file larger than 2 bytes")
    outcome, out = run_with(prog("fs", "read", '"a.txt"'), (f"fs-ro:{root}",))
    assert outcome.error is None and out == "ay\n"


def test_env_without_names_reads_any_variable(monkeypatch):
    monkeypatch.setenv("NBC_ANY", "v")
    monkeypatch.delenv("NBC_UNSET", raising=False)
    _, out = run_with(prog("env", "get", '"NBC_ANY"'), ("env",))
    assert out == "v\n"
    _, out = run_with(prog("env", "get", '"NBC_UNSET"'), ("env",))
    assert out == "nil\n"
