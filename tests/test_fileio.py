"""Where `--json` / `-o` writes land: links are followed, special files written in place, nothing half-written."""

from __future__ import annotations

import contextlib
import os
import stat
import threading

import pytest

from satasim_atsn.errors import SatasimError
from satasim_atsn.fileio import atomic_write_text, staged_directory, write_target


def test_a_plain_path_is_written_atomically(tmp_path):
    out = tmp_path / "sub" / "r.json"
    atomic_write_text(out, "{}\n")
    assert out.read_text() == "{}\n"
    assert [p.name for p in out.parent.iterdir()] == ["r.json"]  # no temp file left


def test_a_symlink_stays_a_link_and_its_target_is_replaced(tmp_path):
    real = tmp_path / "real.json"
    real.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(real.name)
    atomic_write_text(link, "new")
    assert link.is_symlink() and os.readlink(link) == "real.json"
    assert real.read_text() == "new"


def test_a_dangling_symlink_creates_the_file_it_names(tmp_path):
    link = tmp_path / "link.json"
    link.symlink_to(tmp_path / "later.json")
    atomic_write_text(link, "x")
    assert link.is_symlink() and (tmp_path / "later.json").read_text() == "x"


def test_a_named_pipe_is_written_in_place_not_replaced(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_text()))
    reader.start()
    atomic_write_text(fifo, "through the pipe")
    reader.join(timeout=10)
    assert received == ["through the pipe"]
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    assert write_target(fifo) == (fifo.resolve(), False)


def test_a_directory_is_refused_in_one_line(tmp_path):
    with pytest.raises(SatasimError, match="is a directory"):
        atomic_write_text(tmp_path, "x")


def test_parsed_yaml_texts_are_shared_but_every_caller_gets_its_own_copy():
    """load_yaml_text parses a text once per process (a study loads one architecture per point), hands out
    copies (a caller that edits its dict changes no one else's), parses an edited text again and keeps
    the duplicate-key refusal."""
    from satasim_atsn.errors import ArchError
    from satasim_atsn.fileio import load_yaml_text

    first = load_yaml_text("pe: {adders: 1}\n", "a.yaml", ArchError)
    first["pe"]["adders"] = 99
    assert load_yaml_text("pe: {adders: 1}\n", "a.yaml", ArchError) == {"pe": {"adders": 1}}
    assert load_yaml_text("pe: {adders: 2}\n", "a.yaml", ArchError) == {"pe": {"adders": 2}}
    for _ in range(2):  # an error is raised every time, never remembered as a result
        with pytest.raises(ArchError, match=r"a\.yaml: line 2: key 'x' is given twice"):
            load_yaml_text("x: 1\nx: 2\n", "a.yaml", ArchError)


@contextlib.contextmanager
def _pipe_behind_a_link(tmp_path):
    """A link to a pipe's write end, as /dev/stdout is when stdout is a pipe; yields (link, read_back): read_back
    closes the write end and returns what the pipe holds."""
    read_end, write_end = os.pipe()
    link = tmp_path / "stdout"
    link.symlink_to(f"/proc/self/fd/{write_end}")

    def read_back() -> str:
        os.close(write_end)
        with os.fdopen(read_end, closefd=False) as handle:
            return handle.read()

    try:
        yield link, read_back
    finally:
        for fd in (read_end, write_end):
            with contextlib.suppress(OSError):
                os.close(fd)


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs Linux's /proc/self/fd")
def test_dev_stdout_on_a_pipe_is_written_in_place(tmp_path):
    """`--json /dev/stdout | tool`: /dev/stdout -> /proc/self/fd/1 -> 'pipe:[N]', a path that does not exist,
    so the write went to a temp file beside it and failed; the name as given is now written in place."""
    from satasim_atsn.fileio import check_output_path

    with _pipe_behind_a_link(tmp_path) as (link, read_back):
        check_output_path(link, "--json")
        assert write_target(link) == (link, False)
        atomic_write_text(link, "through the pipe")
        assert read_back() == "through the pipe"


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs Linux's /proc/self/fd")
def test_a_special_file_needs_no_temporary_directory(tmp_path, monkeypatch):
    """In a read-only container (no writable /tmp, a read-only checkout) `--json /dev/stdout` failed after the whole
    run: the bytes went through a temp file first. A special file now takes them directly."""
    import tempfile

    def no_temp(*args, **kwargs):
        raise FileNotFoundError("No usable temporary directory found")

    monkeypatch.setattr(tempfile, "mkstemp", no_temp)
    with _pipe_behind_a_link(tmp_path) as (link, read_back):
        atomic_write_text(link, '{"fps": 1}\n')
        assert read_back() == '{"fps": 1}\n'


def test_a_replaced_file_keeps_its_permissions(tmp_path):
    """The atomic rename put a new 0644 file where a 0444 (or 0600) result had been."""
    for mode in (0o444, 0o600):
        out = tmp_path / f"r{mode:o}.json"
        out.write_text("old")
        out.chmod(mode)
        atomic_write_text(out, "new")
        assert out.read_text() == "new" and stat.S_IMODE(out.stat().st_mode) == mode


def test_a_staged_report_merges_subdirectories_only_when_complete(tmp_path):
    """reproduce claims writes sub-reports (table3/, figs/): staged, its files replace their old versions at any
    depth and a user's files beside them stay (a rerun deleted notes kept in table3/); an interrupted run leaves
    the old report untouched; a file where the report writes a directory is refused, not deleted."""
    out = tmp_path / "claims"
    (out / "table3").mkdir(parents=True)
    (out / "table3" / "report.md").write_text("old")
    (out / "table3" / "notes.md").write_text("mine")
    (out / "report.md").write_text("old report")

    with pytest.raises(KeyboardInterrupt), staged_directory(out) as stage:
        (stage / "table3").mkdir()
        (stage / "table3" / "report.md").write_text("new")
        raise KeyboardInterrupt
    assert (out / "table3" / "report.md").read_text() == "old"
    assert sorted(p.name for p in out.iterdir()) == ["report.md", "table3"]

    with staged_directory(out) as stage:
        for sub in ("table3", "figs"):
            (stage / sub).mkdir()
            (stage / sub / "report.md").write_text(f"new {sub}")
        (stage / "report.md").write_text("new report")
    assert sorted(p.name for p in out.iterdir()) == ["figs", "report.md", "table3"]  # no staging names left
    assert sorted(p.name for p in (out / "table3").iterdir()) == ["notes.md", "report.md"]
    assert (out / "table3" / "report.md").read_text() == "new table3"
    assert (out / "table3" / "notes.md").read_text() == "mine"
    assert (out / "figs" / "report.md").read_text() == "new figs" and (out / "report.md").read_text() == "new report"

    (out / "results.json").mkdir()  # a user's directory where the report writes a file
    (out / "results.json" / "keep").write_text("x")
    with pytest.raises(SatasimError, match=r"results.json: is a directory where the report writes a file"), \
            staged_directory(out) as stage:
        (stage / "results.json").write_text("{}")
        (stage / "report.md").write_text("newer report")
    assert (out / "results.json" / "keep").read_text() == "x" and (out / "report.md").read_text() == "new report"
    assert not list(out.glob(".report-*"))
