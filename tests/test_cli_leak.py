"""`nbcvm leak-check` through nbcvm.cli.main: exit codes, table, JSON, the RSS budget."""

import json
from pathlib import Path

from nbcvm.cli import main

EX = Path(__file__).parent.parent / "examples"
FAST = ["--runs", "5", "--warmup", "1"]


def test_leaky_exits_1_and_names_the_line(capfd):
    assert main(["leak-check", str(EX / "leaky.nbc"), *FAST]) == 1
    out, err = capfd.readouterr()
    line = next(i for i, t in enumerate((EX / "leaky.nbc").read_text().splitlines(), 1)
                if "; LEAK" in t and not t.startswith(";"))
    assert f"leaky.nbc:{line}" in out and "LEAK" in out and "leaky.main" in out
    assert "leaky.log" in out and "buffer(s)" not in out  # program output goes to a null sink
    assert "Traceback" not in err


def test_clean_exits_0(capfd):
    assert main(["leak-check", str(EX / "regions.nbc"), *FAST, "--no-tracemalloc"]) == 0
    out = capfd.readouterr().out
    assert "clean" in out and "LEAK" not in out


def test_args_and_entry_and_show_output(capfd):
    assert main(["leak-check", str(EX / "fib.nbc"), "10", *FAST, "--show-output", "--no-tracemalloc"]) == 0
    assert capfd.readouterr().out.count("55\n") == 6  # one warm-up + five runs
    assert main(["leak-check", "--entry", "fib", str(EX / "fib.nbc"), "12", *FAST, "--json"]) == 0
    d = json.loads(capfd.readouterr().out)
    assert d["entry"] == "fib" and d["args"] == ["12"] and d["runs"] == 5


def test_json_output(capfd):
    assert main(["leak-check", str(EX / "leaky.nbc"), *FAST, "--json"]) == 1
    d = json.loads(capfd.readouterr().out)
    assert d["verdict"] == "leak" and "handles.tensor" in d["leaking"] and d["runs"] == 5
    assert d["sites"][0]["source"].startswith("alloc") and d["sites"][0]["count_growth"] == 4
    assert {m["name"] for m in d["metrics"]} >= {"rss", "uss", "fds", "threads", "traced_bytes", "vm_bytes"}


def test_max_rss_budget_fails(capfd):
    assert main(["leak-check", str(EX / "hello.nbc"), *FAST, "--max-rss", "1MB"]) == 1
    assert "RSS budget exceeded" in capfd.readouterr().out
    assert main(["leak-check", str(EX / "hello.nbc"), *FAST, "--max-rss", "1MiB", "--json"]) == 1
    d = json.loads(capfd.readouterr().out)
    assert d["budget"]["max_rss"] == 1 << 20 and d["budget"]["exceeded_at_run"] == 1 and d["ok"] is False
    assert main(["leak-check", str(EX / "hello.nbc"), *FAST, "--max-rss", "1TiB", "--no-tracemalloc"]) == 0


def test_bad_input_exits_2(capfd, tmp_path):
    assert main(["leak-check", str(tmp_path / "missing.nbc")]) == 2
    assert "no such file" in capfd.readouterr().err
    assert main(["leak-check", str(EX / "hello.nbc"), "--max-rss", "lots"]) == 2
    assert "not a size" in capfd.readouterr().err
    assert main(["leak-check", str(EX / "hello.nbc"), "--runs", "2"]) == 2
    assert main(["leak-check", str(EX / "fib.nbc")]) == 2  # main needs n
    assert "argument" in capfd.readouterr().err
    assert main(["leak-check", str(EX / "hello.nbc"), "--entry", "nope"]) == 2
    bad = tmp_path / "bad.nbc"
    bad.write_text(".func main\n    frobnicate\n.end\n")
    assert main(["leak-check", str(bad)]) == 2
    assert "Traceback (most recent call last)" not in capfd.readouterr().err


def test_program_error_exits_1_with_nbc_traceback(capfd, tmp_path):
    p = tmp_path / "boom.nbc"
    p.write_text('.func main\n    push "boom"\n    throw UserError\n.end\n')
    assert main(["leak-check", str(p), "--no-tracemalloc"]) == 1
    err = capfd.readouterr().err
    assert "UserError (code" in err and 'File "' not in err


def test_limit_flags_apply_per_run(capfd):
    argv = ["leak-check", str(EX / "loops.nbc"), "200", *FAST, "--no-tracemalloc", "--max-steps"]
    assert main([*argv, "4000"]) == 0
    assert main([*argv, "100"]) == 1
    assert "LimitExceeded" in capfd.readouterr().err
