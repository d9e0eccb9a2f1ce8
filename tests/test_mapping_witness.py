"""The reference is an independent mapping witness (issue 10, point 3).

hw/reference.py derives groups, folds, PE blocks, weight bytes, per-PE weight shares and residency
itself (docs/microarchitecture.md section 3), so a bug seeded into hw/mapping.py, which only the fast
engine uses, must make the engine-versus-reference comparison fail on at least one of a few fixed
cases, the way an audit would seed it. And reference.py must not import hw/mapping.py at all.
"""

from __future__ import annotations

import ast
import dataclasses
import sys
from pathlib import Path

import numpy as np
import pytest

from satasim_atsn.hw import engine, mapping, run_checks
from satasim_atsn.hw.arch import build_arch
from satasim_atsn.hw.reference import simulate_reference
from satasim_atsn.workload.synthetic import random_workload

sys.path.insert(0, str(Path(__file__).parent))
from test_engine_vs_reference import (  # noqa: E402
    diff_counters,
    neuron_weight_bytes,
    random_arch_dict,
    random_case,
)

REFERENCE = Path(__file__).resolve().parent.parent / "satasim_atsn" / "hw" / "reference.py"
SEEDS = (0, 1, 2, 3, 5)  # seeded random cases: streamed and resident weights, T >= 2, several PEs


def _split_case():
    """A residual network on a 2x2 array whose weight memory holds one neuron's fan-in: weight shares split folds."""
    workload = random_workload(9, images=2, residual=True, max_channels=4, size=6, timesteps=3)
    raw = random_arch_dict(9, workload)
    raw["array"] = {"rows": 2, "cols": 2, "exit_unit_tiles": 1}
    raw["pe"]["data_memory_bytes"] = 2048
    raw["pe"]["weight_memory_bytes"] = neuron_weight_bytes(workload, raw["pe"]["vmem_bits"])
    return build_arch(raw, where="<split case>"), workload, 2


def _cases():
    cases = [random_case(seed) for seed in SEEDS]
    cases.append(_split_case())
    return cases


CASES = None


def cases():
    """The fixed cases (built once per session)."""
    global CASES
    if CASES is None:
        CASES = _cases()
    return CASES


def _differences(arch, workload, images) -> list[str]:
    ref = simulate_reference(arch, workload, images)
    result = engine.simulate(arch, workload, images)
    return diff_counters(result.counters(), {k: v for k, v in ref.items() if k != "pe_output_spikes"})


# --- the seeded bugs: each patches hw/mapping.py (or what its build_mapping returns to the engine) ------------
def _wrap_folds(monkeypatch, change) -> None:
    """Patch mapping._make_folds so that every fold it returns passes through ``change``."""
    original = mapping._make_folds

    def patched(*args, **kwargs):
        return [change(f) for f in original(*args, **kwargs)]

    monkeypatch.setattr(mapping, "_make_folds", patched)


def _wrap_mapping(monkeypatch, change) -> None:
    """Patch the build_mapping the engine calls so that its result passes through ``change``."""
    original = mapping.build_mapping

    def patched(arch, workload):
        m = original(arch, workload)
        change(m)
        return m

    monkeypatch.setattr(mapping, "build_mapping", patched)
    monkeypatch.setattr(run_checks, "build_mapping", patched)


def doubled_fold_weight_bytes(monkeypatch) -> None:
    _wrap_folds(monkeypatch, lambda f: dataclasses.replace(f, weight_bytes=2 * f.weight_bytes))


def changed_block_size(monkeypatch) -> None:
    """PE blocks of q_f + 1 neurons instead of q_f (trailing PEs hold fewer)."""
    def change(f):
        n = f.stop - f.start
        offsets = f.start + np.minimum(np.arange(f.pe_offsets.size, dtype=np.int64) * (f.q + 1), n)
        return dataclasses.replace(f, q=f.q + 1, pe_offsets=offsets)

    _wrap_folds(monkeypatch, change)


def wrong_membrane_residency(monkeypatch) -> None:
    _wrap_mapping(monkeypatch, lambda m: setattr(m, "membranes_resident", not m.membranes_resident))


def wrong_weight_residency(monkeypatch) -> None:
    _wrap_mapping(monkeypatch, lambda m: setattr(m, "weights_resident", not m.weights_resident))


def wrong_weight_share(monkeypatch) -> None:
    """Each PE's share taken as the fold's weight bytes spread evenly over the PEs holding neurons."""
    def change(f):
        holders = np.flatnonzero(np.diff(f.pe_offsets))
        shares = np.zeros_like(f.pe_weight_bytes)
        shares[holders] = -(-f.weight_bytes // max(1, holders.size))
        return dataclasses.replace(f, pe_weight_bytes=shares)

    _wrap_folds(monkeypatch, change)


def share_counts_neurons(monkeypatch) -> None:
    """The weight-share rule counts neurons instead of channels (more folds split than the rule says)."""
    monkeypatch.setattr(mapping, "_block_channels", lambda offsets, per_channel: np.diff(offsets))


BUGS = (doubled_fold_weight_bytes, changed_block_size, wrong_membrane_residency, wrong_weight_residency,
        wrong_weight_share, share_counts_neurons)


def test_fixed_cases_agree_without_a_seeded_bug() -> None:
    """The baseline: engine and reference agree exactly on every fixed case."""
    for arch, workload, images in cases():
        assert _differences(arch, workload, images) == []


def test_split_case_splits_folds_by_weight_share() -> None:
    """The residual case's weight memory forces more folds than the membrane capacity alone."""
    arch, workload, _ = cases()[-1]
    m = mapping.build_mapping(arch, workload)
    by_capacity = sum(-(-g.neurons // (m.num_pes * m.capacity_neurons)) for g in m.pe_groups)
    assert sum(len(g.folds) for g in m.pe_groups) > by_capacity


@pytest.mark.parametrize("bug", BUGS, ids=[b.__name__ for b in BUGS])
def test_seeded_mapping_bug_is_caught(bug, monkeypatch) -> None:
    """A bug seeded into hw/mapping.py makes at least one fixed case differ between engine and reference."""
    fixed = cases()
    bug(monkeypatch)
    caught = [i for i, (arch, workload, images) in enumerate(fixed) if _differences(arch, workload, images)]
    assert caught, f"{bug.__name__}: no fixed case differs"


def test_reference_does_not_import_mapping() -> None:
    """Static check: reference.py imports nothing from hw/mapping.py (and neither engine nor kernels)."""
    tree = ast.parse(REFERENCE.read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module or "")
            imported.update(f"{node.module}.{a.name}" for a in node.names)
    banned = ("satasim_atsn.hw.mapping", "satasim_atsn.hw.engine", "satasim_atsn.hw.kernels")
    assert not [m for m in imported if m.startswith(banned) or m in ("satasim_atsn.hw.mapping",)], imported
    assert "mapping" not in {m.rsplit(".", 1)[-1] for m in imported if m.startswith("satasim_atsn.hw")}
