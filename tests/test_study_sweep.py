"""Sweeps: study-file validation, journal/resume, error rows, refusal, sorting, Pareto, determinism, Dask."""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from interrupted_plots import interrupt_second_plot

from satasim_atsn.errors import StudyError
from satasim_atsn.study import runner
from satasim_atsn.study.pareto import pareto_front
from satasim_atsn.study.runner import CSV_NAME, load_rows, run_study
from satasim_atsn.study.spec import load_study
from satasim_atsn.study.sweep_report import sweep_report
from satasim_atsn.workload.format import write_workload
from satasim_atsn.workload.synthetic import random_workload

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def workload_path(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("wl") / "w.npz"
    write_workload(path, random_workload(3, images=30, timesteps=4, num_classes=4))
    return path


def _study(tmp_path: Path, workload_path: Path, body: str, name: str = "s.yaml") -> Path:
    path = tmp_path / name
    path.write_text(f"name: t\nmode: functional\nworkload: {workload_path}\nimages: 30\n" + body)
    return path


BODY = (
    "vary:\n  exit_unit.cl_init: [0.3, 0.6, 0.9]\n  exit_unit.tau_cl: [0.9, 1.0]\nmetrics: [accuracy, avg_timestep]\n"
)


@pytest.mark.parametrize(
    ("body", "pattern"),
    [
        ("vary: {exit_unit.cl_init: [0.5]}\nmetrics: [accuracy]\nmetircs: [x]\n", r"metircs: unknown field.*'metrics'"),
        ("vary: {exit_unit.cl_init: {start: 0.9, stop: 0.5, step: 0.1}}\nmetrics: [accuracy]\n", r"empty range"),
        ("vary: {exit_unit.cl_init: {start: 0.5, stop: 0.9, step: 0}}\nmetrics: [accuracy]\n", r"empty range"),
        ("vary: {exit_unit.cl_init: []}\nmetrics: [accuracy]\n", r"empty list"),
        ("vary: {exit_unit.cl_int: [0.5]}\nmetrics: [accuracy]\n", r"exit_unit.cl_int: no such field.*cl_init"),
        ("vary: {exit_unit.cl_init: [0.5]}\nmetrics: [acuracy]\n", r"metrics: acuracy: unknown metric.*'accuracy'"),
        ("vary: {zip: [{exit_unit.cl_init: [0.5, 0.6], exit_unit.tau_cl: [1.0]}]}\nmetrics: [accuracy]\n",
         r"different lengths"),
        ("vary: {exit_unit.cl_init: {start: 0.5, stop: 0.9, stp: 0.1}}\nmetrics: [accuracy]\n", r"stp: unknown range"),
        ("vary: {exit_unit.cl_init: [0.5]}\nmetrics: [accuracy]\nplots: [{x: accuracy, y: fps}]\n",
         r"plots\[0\].y: 'fps' is not a collected metric"),
        # `colour:` got "plots[0]: must be {x: metric, y: metric[, color: field]}", naming neither key nor fix
        ("vary: {exit_unit.cl_init: [0.5]}\nmetrics: [accuracy, avg_timestep]\n"
         "plots: [{x: accuracy, y: avg_timestep, colour: exit_unit.cl_init}]\n",
         r"plots\[0\]\.colour: unknown key; did you mean 'color'\?"),
        ("vary: {exit_unit.cl_init: [0.5]}\nmetrics: [accuracy, avg_timestep]\nplots: [{x: accuracy, y: accuracy}]\n",
         r"plots\[0\]: x and y are both 'accuracy': a metric against itself is a diagonal line; give y another "
         r"metric \(e.g. avg_timestep\)$"),
        ("vary: {exit_unit.cl_init: [0.5]}\nmetrics: [accuracy, avg_timestep]\nplots: [{x: accuracy, y: avg_timestep}, "
         "{x: avg_timestep, y: accuracy}, {y: avg_timestep, x: accuracy}]\n",
         r"plots\[2\]: repeats plots\[0\] \(the report would show it twice\); delete one of them"),
    ],
)
def test_validation_errors_name_the_field(tmp_path, workload_path, body, pattern):
    with pytest.raises(StudyError, match=pattern) as info:
        load_study(_study(tmp_path, workload_path, body))
    assert str(tmp_path / "s.yaml") in str(info.value)


@pytest.mark.parametrize(("given", "needle"), [
    ("archs/atsn16x16.yaml", "is an architecture (archs/*.yaml; satasim run takes it), not a study"),
    ("examples/my_net.yaml", "is a network file (docs/networks.md), not a study"),
    ("workloads/rates/vgg16.yaml", "is a rate table (workload build takes it as --rates), not a study"),
    ("workloads/vgg_small_fmnist_atsn.npz", "is a workload (.npz), not a study"),  # it said UnicodeDecodeError
])
def test_another_of_the_tools_files_given_as_a_study_is_named(given, needle):
    """`satasim sweep my_design.yaml` said "kind: unknown field; valid: arch, ...", naming the design's first key
    rather than what the file is (session 34)."""
    with pytest.raises(StudyError) as info:
        load_study(ROOT / given)
    assert needle in str(info.value) and "give satasim sweep a study file" in str(info.value)
    assert "\n" not in str(info.value)


def test_engine_field_path_not_in_arch(tmp_path, workload_path):
    arch = ROOT / "archs" / "atsn16x16.yaml"
    if not arch.is_file():
        pytest.skip("archs/atsn16x16.yaml not present")
    path = tmp_path / "e.yaml"
    path.write_text(f"name: e\narch: {arch}\nworkload: {workload_path}\nvary:\n  pe.input_spike_bufer_bytes: [64]\n"
                    "metrics: [fps]\n")
    with pytest.raises(StudyError, match=r"pe.input_spike_bufer_bytes: no such architecture field.*"
                       r"pe.input_spike_buffer_bytes"):
        load_study(path)


def test_ranges_zip_and_point_order(tmp_path, workload_path):
    study = load_study(_study(tmp_path, workload_path, "vary:\n  exit_unit.cl_init: {start: 0.9950, stop: 0.9998, "
                              "step: 0.0002}\n  zip:\n    - {exit_unit.tau_cl: [0.9, 1.0], "
                              "exit_unit.exp_lut_entries: [64, 128]}"
                              "\nmetrics: [accuracy]\n"))
    cl = [v[0] for v in study.axes[0].values]
    assert len(cl) == 25 and cl[0] == 0.995 and cl[-1] == 0.9998
    points = study.points()
    assert len(points) == 50
    assert points[1] == {"exit_unit.cl_init": 0.995, "exit_unit.tau_cl": 1.0, "exit_unit.exp_lut_entries": 128}


def test_sweep_sorted_resume_extend_and_refuse(tmp_path, workload_path):
    out = tmp_path / "out"
    small = load_study(_study(tmp_path, workload_path, "vary:\n  exit_unit.cl_init: [0.3, 0.9]\n  exit_unit.tau_cl: "
                              "[0.9, 1.0]\nmetrics: [accuracy, avg_timestep]\n", "small.yaml"))
    rows, stats = run_study(small, out, jobs=2, quiet=True)
    assert stats["computed"] == 4 and stats["errors"] == 0
    lines = (out / CSV_NAME).read_text().splitlines()
    assert [int(line.split(",")[0]) for line in lines[1:]] == [0, 1, 2, 3]
    # the same study again: nothing recomputed
    _, stats = run_study(small, out, jobs=2, quiet=True)
    assert stats["computed"] == 0 and stats["reused"] == 4
    # a different (extended) study is refused ...
    big = load_study(_study(tmp_path, workload_path, BODY, "big.yaml"))
    with pytest.raises(StudyError, match=r"holds a different study.*--resume.*--force"):
        run_study(big, out, jobs=2, quiet=True)
    # ... unless --resume, which keeps the shared points (cl_init 0.3 and 0.9)
    rows, stats = run_study(big, out, jobs=2, resume=True, quiet=True)
    assert stats["reused"] == 4 and stats["computed"] == 2 and len(rows) == 6
    # --force starts over
    _, stats = run_study(big, out, jobs=1, force=True, quiet=True)
    assert stats["computed"] == 6
    # the same study over another workload file: said to be the same study from other inputs
    other = tmp_path / "other.npz"
    write_workload(other, random_workload(99, images=40, timesteps=4, num_classes=4))
    moved = load_study(_study(tmp_path, other, BODY, "big.yaml"))
    with pytest.raises(StudyError, match=r"holds 't' \(6 points, the same fields and metrics\) with other points: "
                                         r"its varied values, or the contents of its architecture, technology or "
                                         r"workload file"):
        run_study(moved, out, jobs=1, quiet=True)


def test_reordered_metrics_reuse_every_row(tmp_path, workload_path):
    """A row holds its metrics by name: listing them in another order is the same study, computed once, and the
    table's columns follow the new order."""
    import csv

    out = tmp_path / "out"
    vary = "vary:\n  exit_unit.cl_init: [0.3, 0.9]\n"
    first = load_study(_study(tmp_path, workload_path, vary + "metrics: [accuracy, avg_timestep]\n", "a.yaml"))
    _, stats = run_study(first, out, jobs=1, quiet=True)
    assert stats["computed"] == 2
    with open(out / CSV_NAME, newline="") as f:
        before = list(csv.DictReader(f))
    swapped = load_study(_study(tmp_path, workload_path, vary + "metrics: [avg_timestep, accuracy]\n", "b.yaml"))
    _, stats = run_study(swapped, out, jobs=1, quiet=True)
    assert stats["computed"] == 0 and stats["reused"] == 2
    with open(out / CSV_NAME, newline="") as f:
        reader = csv.DictReader(f)
        after = list(reader)
    assert reader.fieldnames.index("avg_timestep") < reader.fieldnames.index("accuracy")
    assert after == before  # the same values under the same keys (dicts compare by name, not column order)


def test_interrupted_journal_resumes_without_recomputing(tmp_path, workload_path, monkeypatch):
    study = load_study(_study(tmp_path, workload_path, BODY))
    out = tmp_path / "out"
    run_study(study, out, jobs=1, quiet=True)
    lines = (out / CSV_NAME).read_text().splitlines(keepends=True)
    # an interruption: three rows finished, the fourth was being written
    (out / CSV_NAME).write_text("".join(lines[:4]) + lines[4][:10])
    calls = []
    real = runner.run_point

    def counting(task):
        calls.append(task["params"])
        return real(task)

    monkeypatch.setattr(runner, "run_point", counting)
    monkeypatch.setattr(runner, "run_local", lambda tasks, jobs, on_done, point_function: [
        on_done(i, runner.run_point(t), None) for i, t in sorted(tasks.items())])
    rows, stats = run_study(study, out, quiet=True)
    assert stats["reused"] == 3 and stats["computed"] == 3 and len(calls) == 3
    assert (out / CSV_NAME).read_text() == "".join(lines)


def _crashing(task):
    cl = float(task["params"]["exit_unit.cl_init"])
    tau = float(task["params"]["exit_unit.tau_cl"])
    if cl == 0.6 and tau == 1.0:
        raise RuntimeError("boom on this point")
    if cl == 0.9 and tau == 0.9:
        os._exit(3)  # a worker that dies outright
    return {"accuracy": cl, "avg_timestep": tau}


def _constant_point(task):
    return {"accuracy": 1.0, "avg_timestep": 1.0}


def test_worker_errors_become_error_rows(tmp_path, workload_path):
    study = load_study(_study(tmp_path, workload_path, BODY))
    rows, stats = run_study(study, tmp_path / "out", jobs=2, quiet=True, point_function=_crashing)
    assert stats["errors"] == 2
    by_point = {r["point"]: r for r in rows}
    assert by_point[3]["status"] == "error" and "boom on this point" in by_point[3]["error"]
    assert by_point[4]["status"] == "error" and "worker process died" in by_point[4]["error"]
    assert all(by_point[i]["status"] == "ok" for i in (0, 1, 2, 5))
    # a later run retries the error rows only
    _, stats = run_study(study, tmp_path / "out", jobs=1, quiet=True, point_function=_constant_point)
    assert stats["computed"] == 2 and stats["reused"] == 4


def test_refuses_foreign_directory(tmp_path, workload_path):
    study = load_study(_study(tmp_path, workload_path, BODY))
    out = tmp_path / "foreign"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(StudyError, match="holds no study"):
        run_study(study, out, quiet=True)


def test_pareto_front_hand_made():
    pts = np.array([[1, 5], [2, 3], [3, 4], [4, 1], [2, 3], [5, 5], [np.nan, 0]], dtype=float)
    assert pareto_front(pts).tolist() == [True, True, False, True, True, False, False]
    # maximise the second objective: (1, 5) dominates everything with x >= 1 and y <= 5
    assert pareto_front(pts, [False, True]).tolist() == [True, False, False, False, False, False, False]


def test_determinism_and_self_contained_html(tmp_path, workload_path):
    study = load_study(_study(tmp_path, workload_path, BODY))
    outputs = []
    for name, jobs in (("a", 2), ("b", 1)):
        rows, stats = run_study(study, tmp_path / name, jobs=jobs, quiet=True)
        sweep_report(study, rows, tmp_path / name, "satasim sweep s.yaml -o out")
        outputs.append(tmp_path / name)
    a, b = outputs
    assert (a / CSV_NAME).read_bytes() == (b / CSV_NAME).read_bytes()
    assert (a / "report.md").read_bytes() == (b / "report.md").read_bytes()
    for png in a.glob("*.png"):
        assert png.read_bytes() == (b / png.name).read_bytes(), png.name
    html = (a / "report.html").read_text()
    sources = re.findall(r'src="([^"]*)"', html)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    assert "http://" not in html and "https://" not in html


def test_sweep_on_dask_local_cluster(tmp_path, workload_path):
    distributed = pytest.importorskip("distributed")
    study = load_study(_study(tmp_path, workload_path, BODY))
    local, _ = run_study(study, tmp_path / "local", jobs=1, quiet=True)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, host="127.0.0.1", scheduler_port=0,
                                  processes=True, dashboard_address=None) as cluster:
        rows, stats = run_study(study, tmp_path / "dask", scheduler=cluster.scheduler_address, quiet=True)
    assert stats["errors"] == 0
    assert (tmp_path / "dask" / CSV_NAME).read_bytes() == (tmp_path / "local" / CSV_NAME).read_bytes()


def _wait_policy_point(task):
    """The OpenMP wait policy the worker runs its point under, as a metric (1 = passive, 0 = anything else)."""
    return {"accuracy": float(os.environ.get("OMP_WAIT_POLICY") == "passive"), "avg_timestep": 1.0}


def test_dask_workers_run_points_under_the_thread_policy(tmp_path, workload_path, monkeypatch):
    """`dask worker` does not set OMP_WAIT_POLICY=passive (the satasim command does): its numba threads spun
    against each other and a 60-point sweep took 36 s on 2 CPUs where local workers took 5 s."""
    distributed = pytest.importorskip("distributed")
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)  # as in a shell that starts `dask worker`
    study = load_study(_study(tmp_path, workload_path, BODY))
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, host="127.0.0.1", scheduler_port=0,
                                  processes=True, dashboard_address=None) as cluster:
        rows, _ = run_study(study, tmp_path / "dask", scheduler=cluster.scheduler_address, quiet=True,
                            point_function=_wait_policy_point)
    assert [r["accuracy"] for r in rows] == [1.0] * 6


def _run_on_a_local_worker(tasks: dict[int, dict], point_function, threads_per_worker: int = 1) -> dict[int, tuple]:
    """run_dask on a LocalCluster of one worker process: each task's (metrics, error)."""
    distributed = pytest.importorskip("distributed")
    done: dict[int, tuple] = {}
    with distributed.LocalCluster(n_workers=1, threads_per_worker=threads_per_worker, host="127.0.0.1",
                                  scheduler_port=0, processes=True, dashboard_address=None) as cluster, \
            distributed.Client(cluster.scheduler_address) as client:
        runner.run_dask(tasks, client, lambda index, metrics, error: done.setdefault(index, (metrics, error)),
                        point_function)
    return done


def test_a_dask_worker_with_other_code_under_the_same_model_gives_error_rows(monkeypatch):
    """Two installations with one MODEL_VERSION but other code (an edited checkout) were not told apart."""
    pytest.importorskip("distributed")
    real = runner.package_digest()
    assert re.fullmatch(r"[0-9a-f]{16}", real)
    assert runner.on_dask_worker(_constant_point, {"mode": "functional"}, None, real) == _constant_point({})
    monkeypatch.setattr(runner, "package_digest", lambda: "0" * 16)  # the sweep's side: the workers are the package
    done = _run_on_a_local_worker({0: {"mode": "engine"}, 1: {"mode": "functional"}}, _constant_point)
    for index in (0, 1):
        assert done[index][0] is None and re.search(
            rf"StudyError: --scheduler: this Dask worker's satasim \(.*\) is other code than the sweep's \(package "
            rf"digest {real}, the sweep's 0{{16}}; hardware model \d+ in both\); install the sweep's satasim",
            done[index][1]), done[index]


def test_the_package_digest_covers_code_and_data_but_not_caches(tmp_path, monkeypatch):
    """The digest reads the package's .py and .yaml files: an edited module or design changes it, a cache does not."""
    import shutil

    root = Path(runner.__file__).resolve().parent.parent
    copy = tmp_path / "satasim_atsn"
    shutil.copytree(root, copy, ignore=shutil.ignore_patterns("__pycache__"))
    fake = copy / "study" / "runner.py"
    monkeypatch.setattr(runner, "__file__", str(fake))

    def digest() -> str:
        runner.package_digest.cache_clear()
        return runner.package_digest()

    try:
        base = digest()
        (copy / "hw" / "__pycache__").mkdir(exist_ok=True)
        (copy / "hw" / "__pycache__" / "x.pyc").write_bytes(b"cache")
        (copy / "notes.txt").write_text("scratch")
        assert digest() == base
        (copy / "data" / "archs" / "atsn16x16.yaml").write_text("edited")
        assert digest() != base
    finally:
        runner.package_digest.cache_clear()  # the next call digests the real package again


def _numba_threads_point(task):
    """The numba threads a point's kernels would run on in this worker thread, and the process's maximum."""
    import numba

    return {"threads": numba.get_num_threads(), "total": numba.config.NUMBA_NUM_THREADS}


@pytest.mark.parametrize("threads_per_worker, expected", [(1, 8), (4, 4)])
def test_a_dask_task_runs_its_kernels_on_its_share_of_the_workers_threads(monkeypatch, threads_per_worker, expected):
    """A worker running 4 tasks at once ran each one's kernels on all NUMBA_NUM_THREADS (4 x the CPUs); each task
    now takes share_threads_with's share: twice the even split, 2 x 8 // 4 = 4 of the worker's 8."""
    pytest.importorskip("distributed")
    monkeypatch.setenv("NUMBA_NUM_THREADS", "8")  # the worker processes' maximum (they start with this env)
    done = _run_on_a_local_worker({i: {"mode": "functional"} for i in range(6)}, _numba_threads_point,
                                  threads_per_worker)
    assert {index: result for index, (result, _) in done.items()} == {i: {"threads": expected, "total": 8}
                                                                      for i in range(6)}


def test_a_dask_worker_of_another_hardware_model_gives_error_rows(monkeypatch):
    """A worker with another satasim installed journaled its numbers under the sweep's model without a word."""
    pytest.importorskip("distributed")
    from satasim_atsn import hw

    real = hw.MODEL_VERSION
    assert runner.on_dask_worker(_constant_point, {"mode": "engine"}, real) == _constant_point({})
    monkeypatch.setattr(hw, "MODEL_VERSION", real + 1)  # the sweep's side only: the workers are other processes
    done = _run_on_a_local_worker({0: {"mode": "engine"}, 1: {"mode": "functional"}}, _constant_point)
    assert done[1] == (_constant_point({}), None)  # a functional point has no hardware model
    assert done[0][0] is None and re.search(
        rf"StudyError: --scheduler: this Dask worker runs hardware model {real} .*the sweep model {real + 1}.*"
        r"install the sweep's satasim on every worker", done[0][1])


@pytest.mark.parametrize(("policy", "seen"), [(None, 1.0), ("active", 0.0)])
def test_local_workers_run_points_under_the_thread_policy(tmp_path, workload_path, monkeypatch, policy, seen):
    """run_study called from Python (not the satasim command): its workers take the policy too; a user's own
    setting wins."""
    if policy is None:
        monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    else:
        monkeypatch.setenv("OMP_WAIT_POLICY", policy)
    study = load_study(_study(tmp_path, workload_path, BODY))
    rows, _ = run_study(study, tmp_path / "out", jobs=1, quiet=True, point_function=_wait_policy_point)
    assert [r["accuracy"] for r in rows] == [seen] * 6


def test_a_scheduler_without_workers_is_said(capsys):
    """A bare `dask scheduler` with no worker: the sweep waited forever without a word."""
    distributed = pytest.importorskip("distributed")
    from satasim_atsn.study.runner import connect_scheduler

    with distributed.LocalCluster(n_workers=0, host="127.0.0.1", scheduler_port=0, processes=True,
                                  dashboard_address=None) as cluster:
        client = connect_scheduler(cluster.scheduler_address)
        client.close()
    assert "note: no worker is connected to the scheduler at tcp://127.0.0.1:" in capsys.readouterr().err


def test_an_unreachable_scheduler_leaves_the_output_untouched(tmp_path, workload_path, monkeypatch):
    """--scheduler is connected before --force empties the directory: a refused connection changes nothing."""
    distributed = pytest.importorskip("distributed")
    study = load_study(_study(tmp_path, workload_path, BODY))
    out = tmp_path / "out"
    run_study(study, out, jobs=1, quiet=True)
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def refuse(address, **kwargs):
        raise OSError(f"Timed out trying to connect to {address}")

    monkeypatch.setattr(distributed, "Client", refuse)
    for target, force in ((out, True), (tmp_path / "new", False)):
        with pytest.raises(StudyError, match="--scheduler: cannot connect to tcp://127.0.0.1:9"):
            run_study(study, target, force=force, scheduler="tcp://127.0.0.1:9", quiet=True)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert not (tmp_path / "new").exists()


def test_a_retried_point_is_journaled_once(tmp_path, workload_path, monkeypatch):
    """A scheduler that reports a point twice (Dask re-running a lost worker's task) adds one row."""
    study = load_study(_study(tmp_path, workload_path, BODY))
    out = tmp_path / "out"
    journal_sizes = []

    def twice(tasks, jobs, on_done, point_function):
        for index in sorted(tasks):
            on_done(index, {"accuracy": 0.5, "avg_timestep": 2.0}, None)
            on_done(index, {"accuracy": 0.9, "avg_timestep": 9.0}, None)
            journal_sizes.append(len((out / CSV_NAME).read_text().splitlines()) - 1)

    monkeypatch.setattr(runner, "run_local", twice)
    rows, stats = run_study(study, out, quiet=True)
    assert journal_sizes == list(range(1, 7))
    assert [r["accuracy"] for r in rows] == [0.5] * 6


def test_temporaries_of_a_killed_run_are_not_a_foreign_directory(tmp_path, workload_path):
    """A run killed while writing study.json leaves only '.study.json.*.tmp': the rerun must start."""
    study = load_study(_study(tmp_path, workload_path, BODY))
    out = tmp_path / "out"
    out.mkdir()
    (out / ".study.json.abc123.tmp").write_text("{")
    _, stats = run_study(study, out, jobs=1, quiet=True, point_function=_constant_point)
    assert stats["computed"] == 6 and not list(out.glob(".*.tmp"))


def _arch_point(task):
    """A stand-in point: which architecture file and overrides the task carries."""
    return {"fps": float(len(task["arch"])), "avg_timestep": float(len(task["overrides"]))}


def test_varied_architectures_and_skipped_combinations(tmp_path, workload_path):
    """vary.arch runs each architecture file; combinations an architecture refuses become skipped rows with the
    reason (layer_major with a deciding exit unit), reported once per reason and never run."""
    archs = [str(ROOT / "archs" / f"{n}16x16.yaml") for n in ("conventional", "atsn")]
    path = tmp_path / "s.yaml"
    path.write_text(f"name: t\nmode: engine\nworkload: {workload_path}\nimages: 2\nvary:\n"
                    f"  arch: [{', '.join(archs)}]\n"
                    "  dataflow: [timestep_major, layer_major]\nmetrics: [fps, avg_timestep]\n")
    study = load_study(path)
    assert study.arch_files and [p["arch"] for p in study.points()] == [archs[0], archs[0], archs[1], archs[1]]
    rows, stats = run_study(study, tmp_path / "out", jobs=1, quiet=True, point_function=_arch_point)
    status = [r["status"] for r in rows]
    assert status == ["ok", "ok", "ok", "skipped"] and stats["skipped"] == 1 and stats["errors"] == 0
    assert "dataflow: layer_major" in rows[3]["error"] and "use dataflow: timestep_major" in rows[3]["error"]
    assert rows[0]["fps"] != rows[2]["fps"]  # each point ran its own architecture file
    sweep_report(study, load_rows(study, tmp_path / "out"), tmp_path / "out", "satasim sweep s.yaml")
    report = (tmp_path / "out" / "report.md").read_text()
    assert "1 skipped" in report and "## Skipped points" in report
    # a value no architecture accepts is still refused before anything runs
    path.write_text(path.read_text().replace("layer_major", "weight_stationary"))
    with pytest.raises(StudyError, match=r"vary.dataflow: value 'weight_stationary' is refused"):
        load_study(path)


def test_a_functional_sweeps_report_names_no_architecture(tmp_path, workload_path):
    """A functional study has no architecture: its report said "base architecture: n/a" and called the points of
    an exit-unit kind without the varied field "combinations the architecture refuses" (audit, session 47)."""
    path = _study(tmp_path, workload_path, "vary:\n  exit_unit.kind: [at, dt]\n  exit_unit.cl_init: [0.9]\n"
                  "metrics: [accuracy]\n")
    study = load_study(path)
    rows, stats = run_study(study, tmp_path / "out", jobs=1, quiet=True)
    assert [r["status"] for r in rows] == ["ok", "skipped"] and stats["skipped"] == 1
    sweep_report(study, load_rows(study, tmp_path / "out"), tmp_path / "out", "satasim sweep s.yaml")
    report = (tmp_path / "out" / "report.md").read_text()
    assert "mode: `functional` (the network's exit rules alone, no architecture); workload:" in report
    assert "1 skipped (exit-unit fields their exit_unit.kind does not have)" in report
    assert "base architecture" not in report and "architecture refuses" not in report
    path.write_text(path.read_text().replace("[at, dt]", "[at, dtsnn]"))
    with pytest.raises(StudyError, match=r"value 'dtsnn' is refused \(.*\); vary over values the field accepts$"):
        load_study(path)


def test_no_plots_keeps_the_tables_and_pareto_fronts_and_draws_nothing(tmp_path, workload_path):
    """`sweep --no-plots`: the same points and tables (the Pareto fronts too) without a figure; the plots an earlier
    report of the study left in -o go with it, since the report no longer names them."""
    from satasim_atsn.cli import main

    path = _study(tmp_path, workload_path, BODY + "plots:\n  - {x: avg_timestep, y: accuracy}\n")
    out = tmp_path / "out"
    for extra in ([], ["--no-plots"]):
        with pytest.raises(SystemExit) as stop:
            main(["sweep", str(path), "-o", str(out), "-j", "1", "-q", *extra])
        assert stop.value.code in (0, None)
        if not extra:
            plotted, csv_bytes = (out / "report.md").read_text(), (out / "points.csv").read_bytes()
            assert len(list(out.glob("*.png"))) == 3  # the trade-off plot, a heat map per metric
    report = (out / "report.md").read_text()
    assert list(out.glob("*.png")) == [] and ".png" not in report and (out / "points.csv").read_bytes() == csv_bytes
    assert "; figures not drawn (`--no-plots`)" in report and f"-o {out} --no-plots\n" in report
    assert "**Pareto-optimal points" in report
    tables = [line for line in plotted.splitlines() if line.startswith("|")]
    assert tables == [line for line in report.splitlines() if line.startswith("|")]


def test_rows_of_an_older_hardware_model_are_computed_again(tmp_path, workload_path, monkeypatch):
    """An engine study's point keys name satasim_atsn.hw.MODEL_VERSION: after a model change the same study in
    the same directory is refused with the reason, --resume reuses nothing, and a functional study (no hardware
    model) keeps its rows."""
    import satasim_atsn.study.spec_types as spec

    path = tmp_path / "e.yaml"
    path.write_text(f"name: e\nmode: engine\narch: {ROOT / 'archs' / 'atsn16x16.yaml'}\nworkload: {workload_path}\n"
                    "images: 2\nvary: {clock_hz: [250e6, 500e6]}\nmetrics: [fps]\n")
    out = tmp_path / "out"
    _, stats = run_study(load_study(path), out, jobs=1, quiet=True, point_function=_constant_point)
    assert stats["computed"] == 2
    monkeypatch.setattr(spec, "MODEL_VERSION", spec.MODEL_VERSION + 1)
    newer = load_study(path)
    with pytest.raises(StudyError, match=rf"holds 'e' computed by hardware model {spec.MODEL_VERSION - 1}, and this "
                                         rf"satasim is model {spec.MODEL_VERSION} .*pass --force"):
        run_study(newer, out, jobs=1, quiet=True, point_function=_constant_point)
    _, stats = run_study(newer, out, jobs=1, resume=True, quiet=True, point_function=_constant_point)
    assert (stats["reused"], stats["computed"]) == (0, 2)
    functional = load_study(_study(tmp_path, workload_path, BODY, "f.yaml"))
    monkeypatch.setattr(spec, "MODEL_VERSION", spec.MODEL_VERSION + 1)
    assert load_study(_study(tmp_path, workload_path, BODY, "f.yaml")).identity() == functional.identity()


def test_force_into_another_study_leaves_only_its_plots(tmp_path, workload_path):
    """--force over a two-axis study kept its heat maps and plots beside the new ones (CLI fuzzing); a user's own
    PNG in the directory stays."""
    out = tmp_path / "out"
    two_axis = load_study(_study(tmp_path, workload_path, BODY + "plots: [{x: avg_timestep, y: accuracy}]\n", "a.yaml"))
    rows, _ = run_study(two_axis, out, jobs=1, quiet=True)
    sweep_report(two_axis, rows, out, "satasim sweep a.yaml")
    before = {p.name for p in out.glob("*.png")}
    assert {"heatmap_accuracy.png", "heatmap_avg_timestep.png"} <= before
    (out / "heatmap_mine.txt").write_text("not a plot")
    (out / "photo.png").write_bytes(b"a user's file")
    (out / "heatmap_budget.png").write_bytes(b"a user's file named like a plot")  # a glob deleted it
    one_axis = load_study(_study(tmp_path, workload_path, "vary:\n  exit_unit.cl_init: [0.3, 0.9]\n"
                                 "metrics: [accuracy, avg_timestep]\nplots: [{x: accuracy, y: avg_timestep}]\n",
                                 "b.yaml"))
    rows, _ = run_study(one_axis, out, jobs=1, force=True, quiet=True)
    # stopped here (SIGTERM before the report), the directory held the new rows beside study a's report
    assert not (out / "report.md").exists() and not (out / "heatmap_accuracy.png").exists()
    sweep_report(one_axis, rows, out, "satasim sweep b.yaml --force")
    shown = set(re.findall(r"\]\(([^)]+\.png)\)", (out / "report.md").read_text()))
    assert shown and {p.name for p in out.glob("*.png")} == shown | {"photo.png", "heatmap_budget.png"}
    assert (out / "heatmap_mine.txt").is_file()


@pytest.mark.parametrize("damage", ['{"a": 1', "[1]"])
def test_a_damaged_study_record_says_so(tmp_path, workload_path, damage):
    """An unreadable study.json was reported as 'a different study (None points, fields None)'."""
    study = load_study(_study(tmp_path, workload_path, BODY))
    out = tmp_path / "out"
    run_study(study, out, jobs=1, quiet=True)
    (out / "study.json").write_text(damage)
    with pytest.raises(StudyError, match=r"study\.json: is not a readable study record .*--force"):
        run_study(study, out, jobs=1, quiet=True)
    _, stats = run_study(study, out, jobs=1, quiet=True, force=True)
    assert stats["computed"] == 6


def test_a_directory_is_not_a_study_file(tmp_path):
    with pytest.raises(StudyError, match="is a directory, not a study file"):
        load_study(tmp_path)


def test_a_journal_row_edited_to_nan_is_computed_again(tmp_path, workload_path):
    """An 'ok' row holding nan (or text) in a metric was reused as it stood; now its point runs again."""
    study = load_study(_study(tmp_path, workload_path, BODY))
    out = tmp_path / "out"
    run_study(study, out, jobs=1, quiet=True)
    good = (out / CSV_NAME).read_text()
    lines = good.splitlines(keepends=True)
    header = lines[0].rstrip("\n").split(",")
    row = lines[2].rstrip("\n").split(",")
    row[header.index("accuracy")] = "nan"
    lines[2] = ",".join(row) + "\n"
    row = lines[3].rstrip("\n").split(",")
    row[header.index("avg_timestep")] = "fast"
    lines[3] = ",".join(row) + "\n"
    (out / CSV_NAME).write_text("".join(lines))
    _, stats = run_study(study, out, jobs=1, quiet=True)
    assert stats["reused"] == 4 and stats["computed"] == 2
    assert (out / CSV_NAME).read_text() == good


def test_a_journal_whose_header_lost_a_metric_is_computed_again(tmp_path, workload_path):
    """A header edited from 'accuracy' to 'acuracy' made every 'ok' row reused with that metric blanked."""
    study = load_study(_study(tmp_path, workload_path, BODY))
    out = tmp_path / "out"
    run_study(study, out, jobs=1, quiet=True)
    good = (out / CSV_NAME).read_text()
    header, rest = good.split("\n", 1)
    assert ",accuracy," in f",{header},"
    (out / CSV_NAME).write_text(f",{header},".replace(",accuracy,", ",acuracy,")[1:-1] + "\n" + rest)
    _, stats = run_study(study, out, jobs=1, quiet=True)
    assert stats["reused"] == 0
    assert (out / CSV_NAME).read_text() == good


def test_an_interrupted_sweep_report_leaves_the_last_report_whole(tmp_path, workload_path, monkeypatch):
    """Ctrl-C while plotting left the new heat maps beside the old report.md; the report is now staged in a hidden
    directory inside -o and moved in only once every file is written, and a staging directory a killed run left
    behind is removed by the next report."""
    study = load_study(_study(tmp_path, workload_path, BODY))
    out = tmp_path / "out"
    rows, _ = run_study(study, out, jobs=1, quiet=True, point_function=_constant_point)
    sweep_report(study, rows, out, "satasim sweep s.yaml -o out")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert "heatmap_accuracy.png" in before and "heatmap_avg_timestep.png" in before
    drawn = interrupt_second_plot(monkeypatch, "heatmap")
    with pytest.raises(KeyboardInterrupt):
        sweep_report(study, rows, out, "satasim sweep s.yaml -o out --resume")
    assert drawn and {p.name: p.read_bytes() for p in out.iterdir()} == before
    monkeypatch.undo()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (out / f".report-{int(dead.stdout)}-abc.staging").mkdir()  # as a SIGKILL would leave it
    live = out / f".report-{os.getppid()}-def.staging"  # a concurrent run's, still being written
    live.mkdir()
    sweep_report(study, rows, out, "satasim sweep s.yaml -o out --resume")
    assert [p for p in out.iterdir() if p.name.startswith(".report-")] == [live]
    assert "--resume" in (out / "report.md").read_text()


def test_plot_labels_tell_fields_with_the_same_last_part_apart():
    """Two buffers' sizes were both labelled 'bytes=...' on the trade-off plots."""
    from satasim_atsn.study.sweep_report import _label

    fields = ["global_buffers.weight.bytes", "global_buffers.input.bytes", "clock_hz"]
    row = {"global_buffers.weight.bytes": 32768, "global_buffers.input.bytes": 1024, "clock_hz": 5e8}
    assert _label(row, fields) == "weight.bytes=32768, input.bytes=1024, clock_hz=5e+08"


def test_a_sweep_reports_the_notes_run_would_print(tmp_path, workload_path, capsys):
    """Idle accelerators at some points, a DRAM rate a clock rounds, a technology entry no design reads:
    `run` and `compare` said so, a sweep said nothing. The report and the terminal name the points."""
    from satasim_atsn.cli import main

    path = tmp_path / "s.yaml"
    path.write_text(f"name: t\nmode: engine\narch: {ROOT / 'archs' / 'atsn16x16.yaml'}\nworkload: {workload_path}\n"
                    "images: 8\nvary:\n  accelerators: [1, 4, 16]\n  clock_hz: [5.0e8, 3.0e8]\n"
                    "set: [dram.bandwidth_GB_per_s=8, tech.dram_ddr4_energy_pJ_per_bit=9,\n"
                    "      tech.add_16b_energy_pJ=0.03]\n"
                    "metrics: [fps]\n")
    with pytest.raises(SystemExit) as stop:
        main(["sweep", str(path), "-o", str(tmp_path / "out"), "-j", "1"])
    assert stop.value.code in (0, None)
    err = capsys.readouterr().err
    report = (tmp_path / "out" / "report.md").read_text()
    idle = "8 images in batches of 1 keep 8 of the 16 accelerators busy"
    rounded = "dram: 8 GB/s is 26.67 B per cycle at 300 MHz"
    unused = "the study's tech.dram_ddr4_energy_pJ_per_bit changes nothing in this design"  # a study has no --set
    assert f"note (points 4-5): {idle}" in err and f"**Note** (points 4-5): {idle}" in report
    assert f"note (points 1, 3, 5): {rounded}" in err and f"**Note** (points 1, 3, 5): {rounded}" in report
    assert f"note (every point): {unused}" in err and "add_16b" not in err  # the adder is read: no note
    with pytest.raises(SystemExit):
        main(["sweep", str(path), "-o", str(tmp_path / "out"), "--resume", "-q"])
    assert capsys.readouterr().err == ""  # quiet: the notes are in the report only


def test_a_sweep_notes_memories_far_outside_the_technology_table(tmp_path, workload_path, capsys):
    """The note of run's SRAM extrapolation reached no sweep: the memory sizes were not among the fields notes
    read."""
    from satasim_atsn.cli import main

    path = tmp_path / "s.yaml"
    path.write_text(f"name: t\nmode: engine\narch: {ROOT / 'archs' / 'atsn16x16.yaml'}\nworkload: {workload_path}\n"
                    "images: 4\nvary:\n  global_buffers.weight.bytes: [147456, 1474560]\nmetrics: [fps]\n")
    with pytest.raises(SystemExit) as stop:
        main(["sweep", str(path), "-o", str(tmp_path / "out"), "-j", "1"])
    assert stop.value.code in (0, None)
    report = (tmp_path / "out" / "report.md").read_text()
    assert ("**Note** (point 1): the SRAM figures of global_buffers.weight.bytes (1,474,560 B; the largest glb point "
            "is 147,456 B) are extrapolated") in report
    assert "extrapolated" in capsys.readouterr().err


def test_a_sweeps_skip_reasons_and_notes_speak_of_the_studys_values_not_of_set(tmp_path, capsys):
    """A study has no --set: a skipped point's fix and a note name the study's values, so they can be followed."""
    from satasim_atsn.cli import main

    path = tmp_path / "s.yaml"
    path.write_text(f"name: t\nmode: engine\nworkload: {ROOT / 'workloads' / 'vgg_small_fmnist_atsn.npz'}\n"
                    f"images: 4\nvary:\n  arch: [{ROOT / 'archs' / 'atsn16x16.yaml'}, "
                    f"{ROOT / 'examples' / 'my_array12x12.yaml'}]\n  exit_unit.cl_init: [0.9]\nmetrics: [fps]\n")
    with pytest.raises(SystemExit):
        main(["sweep", str(path), "-o", str(tmp_path / "out"), "-j", "1", "-q"])
    rows = list(csv.DictReader((tmp_path / "out" / CSV_NAME).open()))
    assert [r["status"] for r in rows] == ["ok", "skipped"]
    assert rows[1]["error"].startswith("exit_unit.cl_init: this design has no exit unit")
    assert ("drop the study's value, or give the design an exit unit with array.exit_unit_tiles=1, exit_unit.kind=at "
            "in the study's set") in rows[1]["error"] and "--set" not in rows[1]["error"]
    report = (tmp_path / "out" / "report.md").read_text()
    # exit_unit.cl_init is varied (a set of it would be refused): the note names its vary list
    assert "apply with 0.999 among vary.exit_unit.cl_init's values" in report and "--set" not in report


def test_in_study_terms_rewrites_every_spelling_of_set():
    from satasim_atsn.study.spec import in_study_terms

    assert in_study_terms("--set: pe.adc_bits: only meaningful with analog; remove it (or --set pe.adc_bits=null)") \
        == "pe.adc_bits: only meaningful with analog; remove it (or pe.adc_bits=null in the study's set)"
    assert in_study_terms("x (the value comes from --set accelerators=3)") == "x (the value comes from the study's " \
        "accelerators=3)"
    assert in_study_terms("no --set here") == "no --set here"


def test_point_lists_are_runs_of_consecutive_points():
    from satasim_atsn.study.point_notes import point_list

    assert point_list([0, 1, 2, 3], 4) == "every point"
    assert point_list([0, 1, 2, 3, 7, 9, 10], 12) == "points 0-3, 7, 9-10"
    assert point_list([5], 12) == "point 5"


def test_an_engine_sweep_notes_points_whose_exit_unit_decides_at_other_thresholds(tmp_path, capsys):
    from satasim_atsn.cli import main

    path = tmp_path / "s.yaml"
    path.write_text(f"name: t\nmode: engine\narch: {ROOT / 'archs' / 'atsn16x16.yaml'}\n"
                    f"workload: {ROOT / 'workloads' / 'vgg_small_fmnist_atsn.npz'}\nimages: 4\n"
                    "vary:\n  exit_unit.cl_init: [0.999, 0.9]\nmetrics: [avg_timestep]\n")
    with pytest.raises(SystemExit):
        main(["sweep", str(path), "-o", str(tmp_path / "out"), "-j", "1"])
    assert "note (point 1): the exit unit decides with the architecture's cl_init 0.9" in capsys.readouterr().err


def test_a_study_without_images_runs_what_a_small_workload_holds(tmp_path, workload_path):
    """The default of 100 images refused a 30-image workload, where `run` and `compare` run all of it."""
    path = tmp_path / "s.yaml"
    path.write_text(f"name: t\nmode: functional\nworkload: {workload_path}\nvary:\n  exit_unit.cl_init: [0.5]\n"
                    "metrics: [accuracy]\n")
    assert load_study(path).images == 30
    path.write_text(path.read_text() + "start: 10\n")
    assert load_study(path).images == 20
    path.write_text(path.read_text().replace("start: 10", "start: 30"))
    with pytest.raises(StudyError, match=r"start: 30 is past the workload's last image \(30 images\)"):
        load_study(path)


def test_membranes_narrower_than_the_workloads_are_a_skipped_point_not_a_failed_one(tmp_path, workload_path, capsys):
    """A point whose PE membranes are narrower than the workload's was a failed row (MappingError, exit 1), where
    compare and run refuse it before any image: it is a combination the design refuses, skipped with its fix."""
    from study_helpers import engine_study

    from satasim_atsn.cli import main

    path = engine_study(tmp_path, workload_path, "vary:\n  pe.vmem_bits: [4, 16]\n")
    with pytest.raises(SystemExit) as stop:
        main(["sweep", str(path), "-o", str(tmp_path / "out"), "-j", "1", "-q"])
    assert stop.value.code in (0, None)
    rows = list(csv.DictReader((tmp_path / "out" / "points.csv").open()))
    assert [r["status"] for r in rows] == ["skipped", "ok"]
    assert "pe.vmem_bits" in rows[0]["error"] and "MappingError" not in rows[0]["error"]


def test_sweep_json_holds_every_point_and_is_the_same_after_a_resume(tmp_path, workload_path, capsys):
    """`sweep` was the one command that reports numbers without `--json FILE`: a script had to parse points.csv,
    whose fields and metrics are all text. The JSON holds each point's typed values, status and metrics, the
    notes and the study's identity; it is read back from the journal, so a resumed sweep writes the same bytes."""
    from satasim_atsn.cli import main

    path = tmp_path / "s.yaml"
    path.write_text(f"name: t\nmode: engine\narch: {ROOT / 'archs' / 'atsn16x16.yaml'}\nworkload: {workload_path}\n"
                    "images: 4\nvary:\n  accelerators: [1, 8]\n  pe.adders: [1, 2]\nmetrics: [fps, area_mm2]\n")
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as stop:
        main(["sweep", str(path), "-o", str(out), "-j", "1", "-q", "--json", str(tmp_path / "a.json")])
    assert stop.value.code in (0, None)
    import json

    data = json.loads((tmp_path / "a.json").read_text())
    rows = {int(r["point"]): r for r in csv.DictReader((out / CSV_NAME).open())}
    assert data["study"] == json.loads((out / "study.json").read_text())
    assert data["counts"] == {"ok": 4, "error": 0, "skipped": 0} and len(data["points"]) == 4
    for point in data["points"]:
        row = rows[point["point"]]
        assert point["key"] == row["key"] and point["status"] == "ok" and point["error"] is None
        assert point["values"] == {"accelerators": int(row["accelerators"]), "pe.adders": int(row["pe.adders"])}
        assert point["metrics"] == {"fps": float(row["fps"]), "area_mm2": float(row["area_mm2"])}
    idle = [n for n in data["notes"] if "keep 4 of the 8 accelerators busy" in n["note"]]
    assert [n["points"] for n in idle] == [[2, 3]]
    with pytest.raises(SystemExit):
        main(["sweep", str(path), "-o", str(out), "--resume", "-q", "--json", str(tmp_path / "b.json")])
    assert (tmp_path / "b.json").read_bytes() == (tmp_path / "a.json").read_bytes()
    for clash, said in ((out / "points.csv", "is a file that -o writes into"), (path, "is also the input")):
        with pytest.raises(SystemExit) as stop:
            main(["sweep", str(path), "-o", str(out), "--resume", "-q", "--json", str(clash)])
        assert stop.value.code == 2 and said in capsys.readouterr().err
    assert (out / "points.csv").read_text().startswith("point,key,")


def test_a_skip_reason_keeps_a_workload_named_by_its_absolute_path():
    """A workload the study names by its absolute path inside the package's folder was shown as
    `workloads/<file>` (the shipped-file shortening applied to the path already substituted; audit, session 47)."""
    from satasim_atsn.study.spec import point_refusal

    arch = str(ROOT / "archs" / "atsn16x16.yaml")
    workload = str(ROOT / "workloads" / "vgg_small_fmnist_atsn.npz")
    for shown in (workload, "../workloads/vgg_small_fmnist_atsn.npz"):
        reason = point_refusal(arch, ["pe.vmem_bits=4"], workload, "atsn16x16.yaml", ["pe.vmem_bits"], shown)
        assert reason is not None and reason.startswith("atsn16x16.yaml: pe.vmem_bits: 4-bit membranes")
        assert f"the 16-bit membranes of {shown} (its quant.vmem_bits)" in reason
