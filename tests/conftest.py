"""Session-wide hooks: how many pytest-xdist workers `-n auto` starts; report how many engine-versus-reference cases
really ran, added up over the workers (README quotes the counts); a check
that no test leaves the numba or matplotlib cache settings changed; and the small workload the study-file tests
share (a module that defines its own workload_path uses that one)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

#: the most worker processes `-n auto` (setup.cfg's addopts) starts: each loads numpy, numba and the kernels' caches,
#: and many tests start subprocesses or pools of their own, so more workers than this gain little and cost memory
MAX_AUTO_WORKERS = 4

#: where a worker hands its engine-versus-reference counts to the controller (pytest-xdist's workeroutput)
ENGINE_VS_REFERENCE_KEY = "engine_vs_reference_run"
#: the counts the controller added up from its workers
_WORKERS_RUN = pytest.StashKey[dict]()


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config) -> int:
    """`-n auto`: one worker per CPU this process may run on (its affinity mask, not the host's count, nor
    psutil's physical cores, which a 2-vCPU machine may report as 1), at most MAX_AUTO_WORKERS;
    PYTEST_XDIST_AUTO_NUM_WORKERS=N still chooses N, and `-n 0` runs the suite in this process."""
    chosen = os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS", "").strip()
    if chosen.isdigit():
        return int(chosen)
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(usable, MAX_AUTO_WORKERS))


def pytest_collection_finish(session) -> None:
    """Before any hypothesis test runs, import every module of the package. Hypothesis (6.131 and later) also draws
    constants it finds in the source of the project's modules loaded at the time of a draw, so without this its
    derandomized cases depended on which tests had run before in the process (another -k, another xdist worker's
    share of the suite): the same test drew 14 networks without an exit tile alone and 17 after
    tests/test_rate_table.py."""
    import importlib

    from package_modules import has_hypothesis_test, package_module_names

    if has_hypothesis_test(session.items):
        for name in package_module_names():
            importlib.import_module(name)


def _engine_vs_reference_run() -> dict | None:
    """The cases tests/test_engine_vs_reference.py compared in this process (None if it was not imported)."""
    module = next((m for name, m in list(sys.modules.items()) if name.endswith("test_engine_vs_reference")), None)
    return getattr(module, "RUN", None)


def pytest_sessionfinish(session) -> None:
    """In a pytest-xdist worker, hand this worker's engine-versus-reference counts to the controller."""
    workeroutput = getattr(session.config, "workeroutput", None)
    run = _engine_vs_reference_run()
    if workeroutput is not None and run:
        workeroutput[ENGINE_VS_REFERENCE_KEY] = dict(run)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error) -> None:
    """In the pytest-xdist controller, add up the counts each worker handed over when it ended."""
    run = getattr(node, "workeroutput", {}).get(ENGINE_VS_REFERENCE_KEY)
    if run:
        total = node.config.stash.setdefault(_WORKERS_RUN, {})
        for key, count in run.items():
            total[key] = total.get(key, 0) + count


def pytest_terminal_summary(terminalreporter) -> None:
    """One line with the engine-versus-reference cases compared in this session, default and slow (added up
    over the workers when pytest-xdist ran the suite)."""
    run = terminalreporter.config.stash.get(_WORKERS_RUN, None) or _engine_vs_reference_run()
    if run and (run["default"] or run["slow"]):
        from test_engine_vs_reference import DEFAULT_CASES, SLOW_CASES

        terminalreporter.write_line(
            f"engine-vs-reference cases compared: {run['default']} default + {run['slow']} slow "
            f"= {run['default'] + run['slow']} (README: {DEFAULT_CASES} + {SLOW_CASES}); default cases "
            f"without an exit tile {run.get('no_exit_tile', 0)}, "
            f"without an output layer {run.get('no_output_layer', 0)}"
        )


#: where numba and matplotlib keep their caches: a test that leaves one changed sends every later worker process and
#: subprocess of the suite to cold caches (seconds of compiling each; a 4 s sweep test took 30 s)
CACHE_SETTINGS = ("NUMBA_CACHE_DIR", "MPLCONFIGDIR")


@pytest.fixture(autouse=True)
def _cache_settings_restored():
    """Fail a test that leaves a cache setting of the process changed (after its own fixtures were undone)."""
    from numba.core import config

    before = ({name: os.environ.get(name) for name in CACHE_SETTINGS}, config.CACHE_DIR)
    yield
    after = ({name: os.environ.get(name) for name in CACHE_SETTINGS}, config.CACHE_DIR)
    assert after == before, f"the test left the process's cache settings changed: {before} -> {after}"


@pytest.fixture(scope="module")
def workload_path(tmp_path_factory) -> Path:
    """A 4-image random workload of 4 classes (3 layers), written once per test module."""
    from satasim_atsn.workload.format import write_workload
    from satasim_atsn.workload.synthetic import random_workload

    path = tmp_path_factory.mktemp("wl") / "w.npz"
    write_workload(path, random_workload(3, images=4, timesteps=4, num_classes=4))
    return path


def _reference(arch, workload, images):
    from satasim_atsn.hw.reference import simulate_reference

    return simulate_reference(arch, workload, images)


def _engine(arch, workload, images):
    from satasim_atsn.hw import engine

    return engine.simulate(arch, workload, images).counters()


TIMING_MODELS = {"reference": _reference, "engine": _engine}


@pytest.fixture(params=sorted(TIMING_MODELS))
def timing_model(request):
    """Both timing models (the per-cycle reference and the engine), each called as (arch, workload, images) and
    giving the counters of tests/test_reference.py: hand-derived values are checked on both."""
    return TIMING_MODELS[request.param]
