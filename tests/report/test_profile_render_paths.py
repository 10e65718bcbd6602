"""profile tables: name order, the threads table, comparisons with gaps and notes, the live view's edges."""

import io
import json
import textwrap

from rich.console import Console

from nbcvm.cli import main
from nbcvm.report.profile_render import LiveView

THREADS = textwrap.dedent("""
    .func worker n
        load n
        push 2
        mul
        ret
    .end
    .func main
        .local a b
        push 1
        spawn worker 1
        store a
        push 2
        spawn worker 1
        store b
        load a
        join
        load b
        join
        add
        print
        push 0
        ret
    .end
    """)


def rows(text: str, title: str) -> list[list[str]]:
    """The cells of the table under ``title`` in rendered output."""
    lines = text.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.strip().startswith(title))
    out = []
    for ln in lines[start + 1:]:
        if ln.startswith("│"):
            out.append([c.strip() for c in ln.split("│")[1:-1]])
        elif out and not ln.startswith(("┃", "┏", "┡", "├")):
            break
    return out


def test_sort_by_name_and_the_threads_table(tmp_path, capfd):
    p = tmp_path / "thr.nbc"
    p.write_text(THREADS)
    capfd.readouterr()
    assert main(["profile", str(p), "--sort", "name", "--top", "3", "--no-tree"]) == 0
    out, err = capfd.readouterr()
    assert out == "6\n"
    assert [r[0] for r in rows(err, "opcodes (top 3)")] == ["add", "join", "load"]
    assert [r[:3] for r in rows(err, "hot lines (top 3)")] == [
        ["thr.nbc:3", "thr.worker", "load n"], ["thr.nbc:4", "thr.worker", "push 2"],
        ["thr.nbc:5", "thr.worker", "mul"]]
    threads = rows(err, "threads")
    assert [(r[0], r[2], r[3], r[4]) for r in threads] == [
        ("MainThread", "1", "14", "0"), ("nbc-1", "1", "4", "0"), ("nbc-2", "1", "4", "0")]


def test_no_suggestions_table_for_a_trivial_program(tmp_path, capfd):
    p = tmp_path / "tiny.nbc"
    # strings make main non-numeric, so not even the JIT suggestion applies
    p.write_text('.func main\n    push "hi"\n    print\n    push 0\n    ret\n.end\n')
    capfd.readouterr()
    assert main(["profile", str(p)]) == 0
    out, err = capfd.readouterr()
    assert out == "hi\n"
    assert "hot functions" in err and "call tree" in err and "suggestions" not in err


def report(path, **kw):
    d = {"schema": "nbcvm-profile/1", "level": "opcode", "sha256": "aaa", "args": [],
         "summary": {"seconds": 1.0, "instructions": 1000, "instructions_per_second": 1000.0, "calls": 3},
         "functions": [{"qualname": "m.main", "exclusive_s": 0.5, "calls": 1}]}
    d.update(kw)
    path.write_text(json.dumps(d))
    return str(path)


def test_comparison_shows_gaps_as_dashes_and_notes_what_differs(tmp_path, capfd):
    old = report(tmp_path / "old.json")
    new = report(tmp_path / "new.json", level="function", sha256="bbb", args=["1"],
                 functions=[{"qualname": "m.main", "exclusive_s": 0.5, "calls": 1},
                            {"qualname": "m.helper", "exclusive_s": 0.25, "calls": 4}])
    capfd.readouterr()
    assert main(["profile", "diff", old, new]) == 0
    out = capfd.readouterr().out
    assert ["(overall) peak depth", "-", "-", "-"] in rows(out, "comparison:")
    assert rows(out, "functions, exclusive time") == [
        ["m.main", "500ms", "500ms", "+0.0%", "1", "1"], ["m.helper", "-", "250ms", "-", "-", "4"]]
    assert out.splitlines()[-4:] == [
        "note: profiling levels differ (opcode vs function): times include different overheads",
        "note: the program changed between the two reports (sha256 differs)",
        "note: the programs ran with different arguments",
        "no regression (limits: time +20%, throughput -15%)"]


class FlakyMonitor:
    """snapshot() as the monitor gives it; once asked, the next call meets a dict that grew while copied."""

    def __init__(self):
        self.ok = self.failed = 0
        self.fail_next = False

    def snapshot(self):
        if self.fail_next:
            self.fail_next = False
            self.failed += 1
            raise RuntimeError("dictionary changed size during iteration")
        self.ok += 1
        return {"seconds": 0.5, "steps": 10, "ips": 20.0, "calls": 1, "errors": 0, "threads": 1,
                "functions": [], "opcodes": {}}


def test_live_view_edges():
    buf = io.StringIO()
    view = LiveView(Console(file=buf, width=80, force_terminal=False), refresh_per_second=2)
    view.refresh()  # not started: nothing to draw
    view.print("before start")
    assert view.updates == 0 and buf.getvalue() == "before start\n"
    mon = FlakyMonitor()
    view.start(mon)
    mon.fail_next = True
    view.refresh()  # the snapshot raises: the frame is skipped, not an error
    view.refresh()
    view.print("alert!")
    view.stop()
    assert mon.failed == 1
    assert view.updates == mon.ok - 1 >= 1  # every good snapshot but the first (start's) is an update
    assert "alert!" in buf.getvalue()
