"""The environment a user runs satasim in: an ASCII-only locale, a full disk under a new output directory, and
reports staged before they move into place. Each case was found by running the CLI as an outside user would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_a_utf8_architecture_reads_under_an_ascii_locale(tmp_path):
    """Under ``LC_ALL=C`` with Python's UTF-8 mode off the locale's encoding is ASCII: an architecture file with
    a non-ASCII name or comment (the YAML is UTF-8) was refused with "give a UTF-8 YAML file"."""
    arch = tmp_path / "arch.yaml"
    text = (ROOT / "archs" / "atsn16x16.yaml").read_text(encoding="utf-8")
    arch.write_text("# µ-architecture, 16×16 PEs ≤ 1 W\n" + text.replace("name: atsn16x16", "name: atsn×µ", 1),
                    encoding="utf-8")
    env = {**os.environ, "LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0", "PYTHONIOENCODING": "utf-8"}
    code = "import sys; from satasim_atsn.hw.arch import load_arch; print(load_arch(sys.argv[1]).name)"
    done = subprocess.run([sys.executable, "-c", code, str(arch)], env=env, capture_output=True, text=True,
                          encoding="utf-8", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "atsn×µ"


COMPARE = ["compare", ROOT / "archs" / "conventional16x16.yaml", ROOT / "archs" / "atsn16x16.yaml",
           ROOT / "workloads" / "vgg_small_fmnist_atsn.npz", "--images", "2", "--jobs", "1", "--quiet"]


def _compare_failing_in_a_plot(out: Path, capsys, monkeypatch, failure: BaseException) -> tuple[int, str]:
    """Run compare into ``out`` with the timeline plot failing as ``failure`` (raised while its file is written)."""
    import pytest

    from satasim_atsn.cli import main
    from satasim_atsn.fileio import atomic_write_with
    from satasim_atsn.report import plots

    def failing(path, *args, **kwargs):
        def write(temp: str) -> None:
            raise failure
        atomic_write_with(path, write)

    monkeypatch.setattr(plots, "timeline", failing)
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in [*COMPARE, "-o", out]])
    return exc.value.code, capsys.readouterr().err


def test_a_compare_that_fails_while_writing_leaves_no_empty_output_directory(tmp_path, capsys, monkeypatch):
    """A full disk (or Ctrl-C) while compare wrote its report left the -o it had created, and its missing parents,
    behind empty; a run that wrote nothing now leaves nothing, as reproduce's does."""
    out = tmp_path / "new" / "cmp"
    code, err = _compare_failing_in_a_plot(out, capsys, monkeypatch, KeyboardInterrupt())
    assert (code, err) == (130, "satasim: interrupted\n")
    assert not (tmp_path / "new").exists()


def test_a_full_disk_names_the_report_file_not_its_staging_copy(tmp_path, capsys, monkeypatch):
    """The report is staged in a hidden directory inside -o; a write that failed there named the staged copy
    (``-o/.report-<pid>-<random>.staging/x.png``), a path that is gone once the command ends."""
    import errno

    out = tmp_path / "cmp"
    code, err = _compare_failing_in_a_plot(out, capsys, monkeypatch, OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))
    assert code == 2 and err.count("\n") == 1, err
    assert ".staging" not in err and ".report-" not in err, err
    assert err.startswith(f"satasim: error: {out / 'timeline_0_conventional16x16.png'}: cannot be written"), err
    assert not out.exists()


def test_a_study_names_its_files_from_the_home_directory(tmp_path, monkeypatch):
    """``arch: ~/a.yaml`` in a study file (where no shell expands ``~``) was looked for in a folder named ``~``
    beside the study; an architecture's ``technology: ~/t.yaml`` and ``satasim run ~/a.yaml`` expand it."""
    import shutil

    from satasim_atsn.study.spec import load_study

    home = tmp_path / "home"
    (home / "designs").mkdir(parents=True)
    shutil.copy(ROOT / "archs" / "atsn16x16.yaml", home / "designs" / "a.yaml")
    shutil.copy(ROOT / "archs" / "dtsnn16x16.yaml", home / "designs" / "b.yaml")
    (home / "w.npz").symlink_to(ROOT / "workloads" / "vgg_small_fmnist_atsn.npz")
    monkeypatch.setenv("HOME", str(home))
    study = tmp_path / "studies" / "s.yaml"
    study.parent.mkdir()
    study.write_text("name: t\nmode: engine\narch: ~/designs/a.yaml\nworkload: ~/w.npz\nimages: 2\n"
                     "vary:\n  clock_hz: [1.0e8, 2.0e8]\nmetrics: [fps]\n", encoding="utf-8")
    loaded = load_study(study)
    assert loaded.arch == home / "designs" / "a.yaml" and loaded.workload == home / "w.npz"
    study.write_text("name: t\nmode: engine\nworkload: ~/w.npz\nimages: 2\n"
                     "vary:\n  arch: [~/designs/a.yaml, ~/designs/b.yaml]\nmetrics: [fps]\n", encoding="utf-8")
    assert list(load_study(study).arch_files.values()) == [home / "designs" / "a.yaml", home / "designs" / "b.yaml"]


def _tiny_sweep(tmp_path: Path) -> Path:
    study = tmp_path / "s.yaml"
    study.write_text(f"name: t\nmode: engine\narch: {ROOT / 'archs' / 'atsn16x16.yaml'}\n"
                     f"workload: {ROOT / 'workloads' / 'vgg_small_fmnist_atsn.npz'}\nimages: 2\n"
                     "vary:\n  clock_hz: [1.0e8, 2.0e8]\nmetrics: [fps]\n", encoding="utf-8")
    return study


def test_a_second_sweep_into_the_same_directory_is_refused_while_the_first_runs(tmp_path, capsys):
    """Two sweeps started at once into one -o: the second deleted the first's temp files of its atomic writes
    (as a killed run's leftovers), and the first ended in "study.json: cannot be written (No such file or
    directory)". The sweep now holds a lock on -o (flock: a killed sweep holds none), so the second is refused."""
    import fcntl

    import pytest

    from satasim_atsn.cli import main

    out = tmp_path / "out"
    out.mkdir()
    running = os.open(out, os.O_RDONLY)  # a sweep running in out holds this lock
    try:
        fcntl.flock(running, fcntl.LOCK_EX | fcntl.LOCK_NB)
        (out / ".study.json.abc.tmp").write_text("the running sweep's write")
        with pytest.raises(SystemExit) as exc:
            main(["sweep", str(_tiny_sweep(tmp_path)), "-o", str(out), "--jobs", "1", "--quiet"])
        err = capsys.readouterr().err
        assert exc.value.code == 2, err
        assert err == (f"satasim: error: {out}: -o: another sweep is writing into it now; wait for it to end, "
                       "or give another -o\n")
        assert sorted(p.name for p in out.iterdir()) == [".study.json.abc.tmp"]
    finally:
        os.close(running)
    with pytest.raises(SystemExit) as exc:  # the lock gone, the sweep runs and clears a dead run's temp file
        main(["sweep", str(_tiny_sweep(tmp_path)), "-o", str(out), "--jobs", "1", "--quiet"])
    assert exc.value.code == 0, capsys.readouterr().err
    assert (out / "points.csv").is_file() and not (out / ".study.json.abc.tmp").exists()


def test_two_reports_into_one_directory_move_in_one_after_the_other(tmp_path):
    """Two compares into one -o at once moved their staged files in file by file, interleaved: report.md of one
    beside metrics.png of the other. A report now moves in under the directory's lock, waiting while another
    process holds it."""
    import fcntl
    import threading

    from satasim_atsn.fileio import staged_directory

    out = tmp_path / "out"
    out.mkdir()
    moved = threading.Event()

    def report() -> None:
        with staged_directory(out) as stage:
            (stage / "report.md").write_text("mine")
        moved.set()

    other = os.open(out, os.O_RDONLY)  # another process moving its report in holds this lock
    try:
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        writer = threading.Thread(target=report)
        writer.start()
        assert not moved.wait(1.0)
        assert not (out / "report.md").exists()
    finally:
        os.close(other)
    writer.join(10)
    assert moved.is_set() and (out / "report.md").read_text() == "mine"


def test_a_nir_export_past_the_file_size_limit_is_one_line(tmp_path):
    """HDF5 writing the NIR graph onto a full disk (here: past ``ulimit -f``) printed hundreds of tracebacks from
    h5py's deallocators, then crashed (segmentation fault) and left its temp file; the graph is now made in memory
    and written as bytes, so the write fails like every other output."""
    import resource

    pytest.importorskip("nir")  # the nir extra: without it the export is refused before anything is written

    limit = 20 * 1024  # the graph takes about 250 kB

    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    done = subprocess.run([sys.executable, "-m", "satasim_atsn", "workload", "export",
                           str(ROOT / "workloads" / "vgg_small_fmnist_atsn.npz"), "--nir", "g.nir"],
                          cwd=tmp_path, capture_output=True, text=True, preexec_fn=small_files, timeout=300)
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr == "satasim: error: g.nir: cannot be written (File too large); choose a writable location\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == []
