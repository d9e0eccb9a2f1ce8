"""The fast engine and the literal reference agree exactly on every counter of docs/microarchitecture.md section 9.

Each case draws a small random network and inputs (``random_workload``) and a small random
architecture: 1-4 x 1-4 arrays, every exit-unit kind, PE input buffers of 1-4 spikes in most cases
(head-of-line blocking on the multicast stream) and 2-16 B otherwise, links of 1-16 spikes, PE
memories small enough to fold and spill membranes, weight buffers small enough to stream
weights, tiny output buffers (spike spills), 1-3 adders, multi-cycle analog ADC fires, 1-3
accelerators sharing DRAM, batches of 1-3, link widths, hop cycles and DRAM latencies.
The default run checks 200 cases; ``-m slow`` adds a larger sweep.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

from satasim_atsn.hw.arch import build_arch
from satasim_atsn.hw.reference import simulate_reference
from satasim_atsn.workload.synthetic import random_workload

BASE = {
    "name": "random-small",
    "kind": "atsn",
    "technology": "28nm",
    "clock_hz": 500e6,
    "accelerators": 1,
    "images_per_batch": 1,
    "spike_address_bytes": 2,
    "array": {"rows": 2, "cols": 2, "exit_unit_tiles": 1},
    "pe": {
        "input_spike_buffer_bytes": 128,
        "output_spike_buffer_bytes": 128,
        "data_memory_bytes": 1024,
        "adders": 1,
        "decay": "shift_add",
        "vmem_bits": 16,
        "accumulation": "digital",
    },
    "exit_unit": {
        "kind": "at",
        "data_memory_bytes": 3072,
        "input_spike_buffer_bytes": 128,
        "output_spike_buffer_bytes": 128,
        "adders": 1,
        "multipliers": 1,
        "vmem_bits": 32,
        "exp_lut_entries": 256,
        "cl_init": 0.999,
        "tau_cl": 0.999,
    },
    "noc": {"topology": "mesh", "link_bytes_per_cycle": 8, "hop_cycles": 1},
    "global_buffers": {
        "weight": {"bytes": 147456, "banks": 2, "bytes_per_cycle": 32},
        "input": {"bytes": 32768, "banks": 2, "bytes_per_cycle": 32},
        "output": {"bytes": 32768, "banks": 2, "bytes_per_cycle": 32},
    },
    "dram": {"bytes_per_cycle": 16, "latency_cycles": 100, "energy_table_entry": "dram_sata_sim"},
}


def random_arch_dict(seed: int) -> dict:
    """A small random architecture (a raw YAML mapping), every field drawn from ``seed``."""
    rng = np.random.default_rng(10_000 + seed)
    raw = copy.deepcopy(BASE)
    kind = ["conventional", "dtsnn", "atsn"][int(rng.integers(3))]
    raw["kind"] = kind
    sb = int(rng.choice([1, 2, 2, 2]))
    raw["spike_address_bytes"] = sb
    rows, cols = int(rng.integers(1, 5)), int(rng.integers(1, 5))
    if rows * cols < 2:
        cols = 2
    raw["array"] = {"rows": rows, "cols": cols, "exit_unit_tiles": 1}
    raw["accelerators"] = int(rng.integers(1, 4))
    raw["images_per_batch"] = int(rng.integers(1, 4))
    pe = raw["pe"]
    # the input buffer decides head-of-line blocking on the multicast stream (section 4.1): 1-4 spikes
    # in most cases, so that one busy PE often holds up the others; otherwise up to 16 B
    if rng.random() < 0.7:
        pe["input_spike_buffer_bytes"] = sb * int(rng.integers(1, 5))
    else:
        pe["input_spike_buffer_bytes"] = int(rng.integers(max(2, sb), 17))
    pe["output_spike_buffer_bytes"] = int(rng.integers(max(2, sb), 17))
    pe["vmem_bits"] = int(rng.choice([8, 16, 16, 32]))
    pe["data_memory_bytes"] = int(rng.choice([4, 8, 16, 32, 64, 256, 2048]))
    pe["data_memory_bytes"] = max(pe["data_memory_bytes"], pe["vmem_bits"] // 8)
    pe["adders"] = int(rng.integers(1, 4))
    pe["decay"] = "multiplier" if kind == "conventional" else "shift_add"
    eu = {
        "data_memory_bytes": 3072,
        "input_spike_buffer_bytes": int(rng.integers(max(2, sb), 17)),
        "output_spike_buffer_bytes": int(rng.integers(max(2, sb), 17)),
        "adders": int(rng.integers(1, 4)),
        "multipliers": 1,
        "vmem_bits": int(rng.choice([16, 32])),
    }
    if kind == "dtsnn":
        pe["accumulation"] = "analog"
        pe["adc_bits"] = 8
        pe["adc_cycles_per_conversion"] = int(rng.integers(1, 4))
        eu.update(kind="dt", lut_bytes=int(rng.choice([256, 2048])), divider_cycles=int(rng.integers(1, 20)),
                  theta=float(rng.choice([0.3, 0.5, 0.8])))
    elif kind == "atsn":
        eu.update(kind="at", exp_lut_entries=int(rng.choice([16, 64, 256])),
                  cl_init=float(rng.choice([0.5, 0.8, 0.95])), tau_cl=float(rng.choice([0.8, 0.95, 1.0])))
    else:
        eu.update(kind="none", multipliers=0)
    raw["exit_unit"] = eu
    raw["noc"] = {"topology": "mesh", "link_bytes_per_cycle": int(rng.choice([sb, 2, 4, 8, 16])),
                  "hop_cycles": int(rng.integers(0, 4))}
    raw["noc"]["link_bytes_per_cycle"] = max(raw["noc"]["link_bytes_per_cycle"], sb)
    gb = raw["global_buffers"]
    gb["weight"]["bytes"] = int(rng.choice([64, 512, 4096, 147456]))
    gb["weight"]["bytes_per_cycle"] = int(rng.choice([1, 4, 32]))
    gb["input"]["bytes_per_cycle"] = int(rng.choice([1, 2, 32]))
    gb["output"]["bytes"] = int(rng.choice([8, 32, 256, 32768]))
    gb["output"]["bytes_per_cycle"] = int(rng.choice([1, 2, 32]))
    raw["dram"]["bytes_per_cycle"] = int(rng.choice([1, 8, 16]))
    raw["dram"]["latency_cycles"] = int(rng.choice([0, 1, 7, 40]))
    return raw


def random_case(seed: int):
    """(arch, workload, images) of one random case."""
    rng = np.random.default_rng(20_000 + seed)
    arch = build_arch(random_arch_dict(seed), where=f"<random arch {seed}>")
    images = int(rng.integers(1, 5))
    workload = random_workload(seed, images=images, max_channels=4, size=int(rng.choice([4, 6])))
    return arch, workload, images


def diff_counters(a, b, path: str = "") -> list[str]:
    """Paths where two counter trees differ (a: engine, b: reference)."""
    out: list[str] = []
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b), key=str):
            if key not in a or key not in b:
                out.append(f"{path}.{key}: only in {'reference' if key not in a else 'engine'}")
            else:
                out.extend(diff_counters(a[key], b[key], f"{path}.{key}"))
    elif isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) and len(a) == len(b):
        if any(isinstance(v, (dict, list, tuple)) for v in a):
            for i, (x, y) in enumerate(zip(a, b, strict=True)):
                out.extend(diff_counters(x, y, f"{path}[{i}]"))
        elif list(a) != list(b):
            out.append(f"{path}: engine {list(a)} != reference {list(b)}")
    elif type(a) is not type(b) and not (isinstance(a, int) and isinstance(b, int)):
        out.append(f"{path}: engine type {type(a).__name__} != reference type {type(b).__name__}")
    elif a != b:
        out.append(f"{path}: engine {a!r} != reference {b!r}")
    return out


def check_case(seed: int) -> None:
    """Assert that engine and reference agree exactly on case ``seed``."""
    engine = pytest.importorskip("satasim_atsn.hw.engine", reason="hw/engine.py is not there yet")
    arch, workload, images = random_case(seed)
    ref = simulate_reference(arch, workload, images)
    result = engine.simulate(arch, workload, images)
    got = result.counters()
    ref_core = {k: v for k, v in ref.items() if k != "pe_output_spikes"}
    problems = diff_counters(got, ref_core)
    assert not problems, f"seed {seed} ({arch.kind}): " + "; ".join(problems[:12])
    # the spikes the PEs emitted, group by group, are the same in both
    engine_spikes = {g["name"]: g["counts"]["pe_spikes_out"] for g in result.layers if g["kind"] == "pe"}
    assert engine_spikes == {name: sum(v) for name, v in ref["pe_output_spikes"].items()}, f"seed {seed}"


@pytest.mark.parametrize("block", range(2))
def test_engine_matches_reference_statistical(block: int) -> None:
    """40 statistical twins of the random networks: drawn spikes and exit steps instead of a forward."""
    from satasim_atsn.traces.statistical import fit_statistical_twin

    engine = pytest.importorskip("satasim_atsn.hw.engine", reason="hw/engine.py is not there yet")
    for seed in range(block * 20, block * 20 + 20):
        arch, workload, images = random_case(seed)
        twin = fit_statistical_twin(workload, seed=seed)
        ref = simulate_reference(arch, twin, images)
        got = engine.simulate(arch, twin, images).counters()
        problems = diff_counters(got, {k: v for k, v in ref.items() if k != "pe_output_spikes"})
        assert not problems, f"statistical seed {seed}: " + "; ".join(problems[:12])


@pytest.mark.slow
@pytest.mark.parametrize("block", range(4))
def test_engine_matches_reference_larger_networks(block: int) -> None:
    """8x8 inputs and up to 6 channels: more folds, more spikes (about 0.3 s per case in the reference)."""
    engine = pytest.importorskip("satasim_atsn.hw.engine", reason="hw/engine.py is not there yet")
    for seed in range(5000 + block * 50, 5000 + block * 50 + 50):
        arch = build_arch(random_arch_dict(seed), where=f"<random arch {seed}>")
        workload = random_workload(seed, images=3, size=8)
        ref = simulate_reference(arch, workload, 3)
        got = engine.simulate(arch, workload, 3).counters()
        problems = diff_counters(got, {k: v for k, v in ref.items() if k != "pe_output_spikes"})
        assert not problems, f"seed {seed} (8x8): " + "; ".join(problems[:12])


def test_comparison_detects_a_one_cycle_change() -> None:
    """The comparison is not vacuous: one more cycle of DRAM latency on one side is caught."""
    engine = pytest.importorskip("satasim_atsn.hw.engine", reason="hw/engine.py is not there yet")
    arch, workload, images = random_case(3)
    raw = random_arch_dict(3)
    raw["dram"]["latency_cycles"] += 1
    slower = build_arch(raw, where="<slower>")
    problems = diff_counters(engine.simulate(arch, workload, images).counters(),
                             {k: v for k, v in simulate_reference(slower, workload, images).items()
                              if k != "pe_output_spikes"})
    assert any(p.startswith(".total_cycles") for p in problems)


@pytest.mark.parametrize("block", range(10))
def test_engine_matches_reference(block: int) -> None:
    """200 random cases, in 10 blocks of 20."""
    for seed in range(block * 20, block * 20 + 20):
        check_case(seed)


@pytest.mark.slow
@pytest.mark.parametrize("block", range(20))
def test_engine_matches_reference_sweep(block: int) -> None:
    """A larger sweep: 2000 more cases."""
    for seed in range(1000 + block * 100, 1000 + block * 100 + 100):
        check_case(seed)
