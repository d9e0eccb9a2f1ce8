"""Output options checked before any work (satasim_atsn/fileio.py `check_outputs`): an empty path, a place where no
file can be made, and a --json that names a directory output or a file the command writes into it are one-line
errors (exit 2) with nothing written. Found by fuzzing the CLI: each of these wrote a whole report and then
failed, replaced a report file with the JSON, or ended minutes of work in a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from satasim_atsn.cli import main

ROOT = Path(__file__).resolve().parents[1]
WORKLOAD = ROOT / "workloads" / "vgg_small_fmnist_atsn.npz"
ARCHS = [ROOT / "archs" / "conventional16x16.yaml", ROOT / "archs" / "atsn16x16.yaml"]
COMPARE = ["compare", *ARCHS, WORKLOAD, "--images", "2", "--jobs", "1", "--quiet"]
RUN = ["run", ARCHS[1], WORKLOAD, "--images", "2", "--quiet"]


def user_error(argv: list, capsys) -> str:
    """Run a command that must fail with the one-line user error; return that line."""
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in argv])
    _, err = capsys.readouterr()
    assert exc.value.code == 2, err
    assert err.startswith("satasim: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    return err


def _listing(directory: Path) -> list[str]:
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*"))


@pytest.mark.parametrize(("extra", "needle"), [
    (lambda d: ["-o", d / "cmp", "--json", d / "cmp" / "report.md"], "--json: is a file that -o writes"),
    (lambda d: ["-o", d / "cmp", "--json", d / "cmp" / "metrics.png"], "--json: is a file that -o writes"),
    (lambda d: ["-o", d / "cmp", "--json", d / "cmp"], "--json: is the -o directory"),
    (lambda d: ["-o", "", "--json", d / "r.json"], "-o: is an empty path"),
    (lambda d: ["-o", d / "cmp", "--json", ""], "--json: is an empty path"),
])
def test_compare_outputs_are_checked_before_simulating(tmp_path, capsys, extra, needle):
    err = user_error(COMPARE + extra(tmp_path), capsys)
    assert needle in err
    assert _listing(tmp_path) == []  # no report was written and then refused


def test_compare_json_beside_its_report_is_fine(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in COMPARE + ["--no-plots", "-o", tmp_path / "cmp", "--json",
                                         tmp_path / "cmp" / "summary.json"]])
    assert exc.value.code == 0, capsys.readouterr().err
    assert (tmp_path / "cmp" / "summary.json").is_file() and (tmp_path / "cmp" / "report.md").is_file()


@pytest.mark.parametrize(("extra", "needle"), [
    (lambda d: ["--csv", d / "csv", "--json", d / "csv" / "layers.csv"], "--json: is a file that --csv writes"),
    (lambda d: ["--csv", ""], "--csv: is an empty path"),
    (lambda d: ["--json", ""], "--json: is an empty path"),
])
def test_run_outputs_are_checked_before_simulating(tmp_path, capsys, extra, needle):
    assert needle in user_error(RUN + extra(tmp_path), capsys)
    assert _listing(tmp_path) == []


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
def test_a_place_where_no_file_can_be_made_is_refused_even_for_root(capsys):
    """os.access says /proc is writable for root; a probe file says it is not (for any other user the permission
    bits already say so, with the same message)."""
    err = user_error(RUN + ["--json", "/proc/satasim.json"], capsys)
    assert "--json: cannot be written (no file can be made in /proc)" in err
    err = user_error(["evaluate", WORKLOAD, "--json", "/proc/satasim.json"], capsys)
    assert "--json: cannot be written" in err


def test_evaluate_json_checked_before_the_forward(tmp_path, capsys):
    assert "--json: is a directory" in user_error(["evaluate", WORKLOAD, "--json", tmp_path], capsys)
    assert "--json: is an empty path" in user_error(["evaluate", WORKLOAD, "--json", ""], capsys)


@pytest.mark.parametrize("layout", ["a file", "a file inside", "a part that is a file"])
def test_reproduce_output_that_cannot_be_a_directory(tmp_path, capsys, layout):
    """`reproduce -o` was only created after the part's work: a file there ended it in a traceback (exit 1)."""
    (tmp_path / "afile").write_text("keep")
    (tmp_path / "all").mkdir()
    (tmp_path / "all" / "table1").write_text("keep")
    part, out = {"a file": ("table3", "afile"), "a file inside": ("table1", "afile/sub"),
                 "a part that is a file": ("all", "all")}[layout]
    err = user_error(["reproduce", part, "-o", tmp_path / out, "--images", "2", "-q",
                      "--workloads", ROOT / "workloads"], capsys)
    assert "-o: " in err
    assert (tmp_path / "afile").read_text() == "keep" and (tmp_path / "all" / "table1").read_text() == "keep"
    assert _listing(tmp_path) == ["afile", "all", "all/table1"]


@pytest.mark.skipif(os.name != "posix" or sys.getfilesystemencoding() != "utf-8", reason="raw bytes in file names")
def test_a_path_that_is_not_utf8_is_written_back_as_its_bytes(tmp_path, capsys):
    """A directory named with a 0xff byte reaches Python as a lone surrogate; writing the report's "Regenerate with"
    command raised UnicodeEncodeError after every simulation (exit 1, an empty -o)."""
    odd = Path(os.fsdecode(os.fsencode(str(tmp_path)) + b"/bad\xffname"))
    odd.mkdir()
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in [*COMPARE, "-o", odd / "cmp", "--json", odd / "r.json"]])
    assert exc.value.code == 0, capsys.readouterr().err
    report = (odd / "cmp" / "report.md").read_bytes()
    assert b"/bad\xffname/cmp" in report  # the command names the same directory, byte for byte
    assert (odd / "r.json").read_bytes() == (odd / "cmp" / "results.json").read_bytes()


def _satasim(argv: list, cwd: Path, stdout=subprocess.PIPE) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "satasim_atsn", *map(str, argv)], cwd=cwd, stdout=stdout,
                          stderr=subprocess.PIPE, text=True, timeout=300)


@pytest.mark.skipif(os.name != "posix", reason="needs file descriptors as names")
def test_json_dash_is_standard_output(tmp_path):
    """`--json -` silently wrote a file named '-' in the current directory and printed nothing."""
    done = _satasim(RUN + ["--json", "-"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["per_image"]["images"] == 2
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(not os.path.exists("/dev/stdout"), reason="needs /dev/stdout")
@pytest.mark.parametrize("name", ["-", "/dev/stdout"])
def test_standard_output_redirected_to_a_file_is_appended_to(tmp_path, name):
    """`--json /dev/stdout >> log` resolved /dev/stdout to the log file and replaced it, header and all; the JSON now
    goes through the descriptor, after what is already there."""
    log = tmp_path / "log"
    log.write_text("HEADER\n")
    with open(log, "a") as append:
        done = _satasim(RUN + ["--json", name], tmp_path / "..", stdout=append)
    assert done.returncode == 0, done.stderr
    head, _, body = log.read_text().partition("\n")
    assert head == "HEADER" and json.loads(body)["per_image"]["images"] == 2


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_full_standard_output_is_one_line(tmp_path):
    """The summary to a full device (`> /dev/full`) ended in an OSError traceback."""
    with open("/dev/full", "w") as full:
        done = _satasim(["run", ARCHS[1], WORKLOAD, "--images", "4"], tmp_path, stdout=full)  # 4: no note
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.startswith("satasim: error: No space left on device; free some space")
    assert done.stderr.count("\n") == 1


def test_too_few_open_files_is_one_line_that_says_what_to_change(tmp_path, capsys, monkeypatch):
    """`ulimit -n 20` with `compare --jobs 3` ended in 'OSError: [Errno 24] Too many open files' (a traceback);
    whether a given limit fails depends on how the interpreter was started, so the error is raised here."""
    import errno

    from satasim_atsn.study import compare

    def too_many(*args, **kwargs):
        raise OSError(errno.EMFILE, "Too many open files")

    monkeypatch.setattr(compare, "run_compare", too_many)
    err = user_error([*COMPARE, "-o", tmp_path / "cmp"], capsys)
    assert "satasim: error: Too many open files; raise the limit of open files (ulimit -n)" in err


def test_a_deleted_working_directory_is_one_line(tmp_path):
    """Run from a directory that was deleted, a relative --json ended in a FileNotFoundError traceback."""
    gone = tmp_path / "gone"
    gone.mkdir()
    done = subprocess.run([sys.executable, "-c", "import os, sys; os.chdir(sys.argv[1]); os.rmdir(sys.argv[1]); "
                           "from satasim_atsn.cli import main; main(sys.argv[2:])", str(gone),
                           *map(str, RUN), "--json", "r.json"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    assert done.stderr == "satasim: error: the current directory no longer exists; cd into an existing one\n"


@pytest.mark.skipif(os.name != "posix", reason="needs os.mkfifo")
def test_a_workload_through_a_pipe_says_so(tmp_path, capsys):
    """`satasim run ARCH <(cat w.npz)` said 'no such file' about a path that exists."""
    fifo = tmp_path / "w.npz"
    os.mkfifo(fifo)
    err = user_error(["run", ARCHS[1], fifo, "--images", "2", "--quiet"], capsys)
    assert "is a pipe or a device, not a file" in err and "save it to a file first" in err


@pytest.mark.parametrize("threads", ["0", "-1", "two"])
def test_a_thread_count_numba_refuses_is_one_line(threads):
    """NUMBA_NUM_THREADS=0 stopped the first numba import in a ValueError traceback; text gave numba's warning."""
    env = dict(os.environ, NUMBA_NUM_THREADS=threads)
    done = subprocess.run([sys.executable, "-c", "from satasim_atsn.cli import main; main(['--version'])"],
                          capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 2, done.stderr
    assert done.stderr == (f"satasim: error: NUMBA_NUM_THREADS: is {threads!r}, not a positive number of threads; "
                           "unset it or give one (e.g. 2)\n")


@pytest.mark.parametrize(("argv", "option", "example"), [
    (["workload", "build", "--network", "vgg16", "--rate", "0.1", "--timesteps", "2"], "-o", "workload.npz"),
    (["workload", "stats", WORKLOAD, "--images", "2"], "-o", "twin.npz"),
    (["workload", "rates", WORKLOAD, "--network", "vgg16", "--dataset", "cifar10"], "-o", "rates.yaml"),
    (["workload", "export", WORKLOAD], "--nir", "graph.nir"),
    (["train", "--dataset", "synthetic", "--epochs", "1"], "-o", "workload.npz"),
    (["run", ARCHS[1], WORKLOAD, "--images", "1"], "--json", "results.json"),
], ids=["build", "stats", "rates", "export", "train", "run"])
def test_a_folder_name_is_answered_with_a_file_of_the_kind_the_option_writes(tmp_path, capsys, argv, option,
                                                                              example):
    """`workload build -o out/` suggested `out/results.json`: a workload written under a JSON's name."""
    folder = f"{tmp_path / 'out'}/"
    err = user_error([*argv, option, folder], capsys)
    assert f"{folder}: {option}: ends with a slash" in err and err.rstrip().endswith(f"e.g. {folder}{example}"), err
    assert _listing(tmp_path) == []


@pytest.mark.parametrize("argv", [["sweep", ROOT / "studies" / "atsn_buffers.yaml"], ["validate", "--images", "1"]])
def test_an_empty_out_directory_is_refused_for_sweep_and_validate(tmp_path, capsys, monkeypatch, argv):
    """`validate -o ''` wrote validation.md into the working directory (exit 0); `sweep -o ''` said '.: is not empty
    and holds no study'."""
    monkeypatch.chdir(tmp_path)
    assert "satasim: error: -o: is an empty path (a shell variable left unset?); give a " in user_error(
        argv + ["-o", ""], capsys)
    assert _listing(tmp_path) == []


@pytest.mark.parametrize("argv", [
    ["reproduce", "twin", "--arch", ""], ["reproduce", "twin", "--trained", " "],
    ["reproduce", "table1", "--workloads", ""], ["reproduce", "table1", "--trained-set", ""],
    ["reproduce", "table1", "--dataset", ""], ["validate", "--workloads", ""],
])
def test_an_empty_input_option_is_refused_not_taken_as_left_out(tmp_path, capsys, argv):
    """`reproduce twin --arch ''` (an unset shell variable) ran the default design with exit 0."""
    err = user_error(argv + ["-o", tmp_path / "out", "--images", "1"], capsys)
    assert (f"satasim: error: {argv[-2]}: is empty; give a value, or leave the option out" in err  # a name, a text
            or f"satasim: error: {argv[-2]}: is an empty path (a shell variable left unset?); give " in err
            and err.rstrip().endswith(", or leave the option out"))  # a path option (options.UserPath)
    assert _listing(tmp_path) == []
