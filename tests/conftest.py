"""Session-wide hooks: report how many engine-versus-reference cases really ran (README quotes the counts); a check
that no test leaves the numba or matplotlib cache settings changed; and the small workload the study-file tests
share (a module that defines its own workload_path uses that one)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest


def pytest_terminal_summary(terminalreporter) -> None:
    """One line with the engine-versus-reference cases compared in this session, default and slow."""
    module = next((m for name, m in list(sys.modules.items()) if name.endswith("test_engine_vs_reference")), None)
    run = getattr(module, "RUN", None)
    if run and (run["default"] or run["slow"]):
        terminalreporter.write_line(
            f"engine-vs-reference cases compared: {run['default']} default + {run['slow']} slow "
            f"= {run['default'] + run['slow']} (README: {module.DEFAULT_CASES} + {module.SLOW_CASES}); default cases "
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
