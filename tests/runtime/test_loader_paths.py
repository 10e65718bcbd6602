"""Reading program files: every unreadable input is an InputError naming the file (exit 2)."""

from pathlib import Path

import pytest

from nbcvm.cli import main
from nbcvm.errors import FormatError, InputError
from nbcvm.runtime import loader


def run(capfd, *args):
    code = main(list(args))
    out, err = capfd.readouterr()
    assert 'File "' not in err, err
    return code, out, err


def test_binary_data_without_magic_is_a_format_error(tmp_path, capfd):
    p = tmp_path / "blob.nbc"
    p.write_bytes(b"NBCX\0\0junk")
    assert run(capfd, "run", str(p)) == (
        2, "", f"{p}: format error: binary data that is not an NBC binary (no NBCB magic)\n")


def test_non_utf8_text_points_at_the_bad_byte(tmp_path, capfd):
    p = tmp_path / "latin.nbc"
    p.write_bytes(b'.func main\n  push "\xff"\n  ret\n.end\n')
    code, out, err = run(capfd, "run", str(p))
    assert (code, out) == (2, "")
    assert err == (f"{p}:2:9: error: not UTF-8 text (byte 0xff); "
                   "is this a .nbcb file with a damaged header?\n")


def test_unreadable_file_reports_the_os_reason(capfd):
    # /proc/self/mem exists and stats fine, but reading it from offset 0 fails with EIO
    assert run(capfd, "run", "/proc/self/mem") == (2, "", "/proc/self/mem: error: cannot read: Input/output error\n")


def test_directory_is_not_a_program(tmp_path):
    with pytest.raises(InputError) as ei:
        loader.load_file(tmp_path)
    assert str(ei.value) == f"{tmp_path}: is a directory, not a program file"


def test_missing_file(tmp_path):
    with pytest.raises(InputError) as ei:
        loader.read_bytes(tmp_path / "nope.nbc")
    assert str(ei.value) == f"{tmp_path / 'nope.nbc'}: no such file"


def test_oversized_file_is_refused_before_reading(tmp_path, monkeypatch):
    p = tmp_path / "big.nbc"
    p.write_text(".func main\n    push 0\n    ret\n.end\n")
    monkeypatch.setattr(loader, "MAX_SOURCE_BYTES", 10)
    with pytest.raises(InputError) as ei:
        loader.read_bytes(p)
    assert str(ei.value) == f"{p}: file is {p.stat().st_size} bytes; the limit is 10"


def test_permission_denied(tmp_path, monkeypatch):
    # the tests may run as root, where chmod does not deny reading, so make the read itself fail
    p = tmp_path / "locked.nbc"
    p.write_text("x")

    def denied(self):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "read_bytes", denied)
    with pytest.raises(InputError) as ei:
        loader.read_bytes(p)
    assert str(ei.value) == f"{p}: permission denied"


def test_format_error_is_an_input_error_and_text_loads(tmp_path):
    assert issubclass(FormatError, InputError)
    p = tmp_path / "ok.nbc"
    p.write_text(".func main\n    push 0\n    ret\n.end\n")
    m = loader.load_file(p, module_name="renamed")
    assert m.name == "renamed" and [f.name for f in m.functions] == ["main"]
