"""The fast engine and the literal reference agree exactly on every counter of docs/microarchitecture.md section 9.

Each case draws a small random network and inputs (``random_workload``) and a small random
architecture: 1-4 x 1-4 arrays, every exit-unit kind, fixed-T arrays without an exit tile (the
output layer on the PEs; the exit_unit section sometimes omitted) and, on fixed-T arrays,
networks without an output layer (a spiking last layer), PE input buffers of 1-4 spikes in most cases
(head-of-line blocking on the multicast stream) and 2-16 B otherwise, links of 1-16 spikes, PE
memories small enough to fold and spill membranes, weight buffers small enough to stream
weights (1-3 banks read ahead), tiny input or output spike buffers (spike spills), 1-3 adders,
multi-cycle analog ADC fires, 1-3 accelerators sharing DRAM (either arbitration), batches of 1-3,
link widths, hop cycles and DRAM latencies, PE weight memories of 1-3 times the network's largest
per-neuron fan-in in most cases (weight shares then split folds, docs/microarchitecture.md section 3),
both dataflows (``layer_major`` for the fixed-T design) and batch refill with early exit (section 12).
The default cases are drawn by hypothesis (derandomized, no example database: the same cases in
every run of one hypothesis version on one commit, whatever ran before them, since tests/conftest.py loads
every module of the package whose constants hypothesis also draws from; a failure shrinks to a small
architecture); the statistical twins and the slow
sweep use numpy seeds through the same generator (``arch_from_picks``). The counts are the
constants below; README quotes them and tests/conftest.py prints how many cases a session ran.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hst

from satasim_atsn.errors import MappingError
from satasim_atsn.hw import engine, engine_programs, engine_scheduler
from satasim_atsn.hw.arch import build_arch
from satasim_atsn.hw.reference import simulate_reference
from satasim_atsn.hw.verify import diff_counters
from satasim_atsn.workload.synthetic import random_workload

# Case counts (README quotes them; tests/conftest.py prints the counts actually run at the end of a session)
HYPOTHESIS_CASES = 100  # default run: hypothesis-drawn architectures and networks
SLOW_HYPOTHESIS_CASES = 400  # slow: more of them (another test function, so other draws)
STATISTICAL_CASES = 40  # default run: statistical twins of seeded random cases
REFILL_CASES = 24  # default run: more images than slots, batch refill with early exit or layer_major (section 12)
LARGER_CASES = 200  # slow: 8x8 inputs, up to 6 channels
SWEEP_CASES = 2000  # slow: seeded random cases
SLOW_REFILL_CASES = 200  # slow: the same, seeded further
DEFAULT_CASES = HYPOTHESIS_CASES + STATISTICAL_CASES + REFILL_CASES
SLOW_CASES = SLOW_HYPOTHESIS_CASES + LARGER_CASES + SWEEP_CASES + SLOW_REFILL_CASES
RUN = {"default": 0, "slow": 0, "no_exit_tile": 0, "no_output_layer": 0}  # cases compared in this session

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
    "dram": {"bytes_per_cycle": 16, "latency_cycles": 100, "energy_table_entry": "dram_lpddr4"},
}


class _NumpyPicks:
    """Choices drawn from a numpy generator (the seeded cases)."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def integer(self, lo: int, hi: int) -> int:  # lo <= value < hi
        return int(self.rng.integers(lo, hi))

    def choice(self, options: list):
        return options[int(self.rng.integers(len(options)))] if isinstance(options[0], str) else \
            type(options[0])(self.rng.choice(options))

    def uniform(self) -> float:
        return float(self.rng.random())


class _HypothesisPicks:
    """The same choices drawn by hypothesis (the default cases: failures shrink to a minimal architecture)."""

    def __init__(self, draw) -> None:
        self.draw = draw

    def integer(self, lo: int, hi: int) -> int:
        return self.draw(hst.integers(lo, hi - 1))

    def choice(self, options: list):
        return self.draw(hst.sampled_from(options))

    def uniform(self) -> float:
        return self.draw(hst.floats(0.0, 1.0, exclude_max=True))


def neuron_weight_bytes(workload, vmem_bits: int) -> int:
    """The most bytes one neuron of a PE group keeps in a PE weight memory: its channel's int8 weights (conv:
    C_in*k*k; add: summed over its convs) and a bias and a threshold word of ceil(vmem_bits / 8) bytes each (an
    output layer on the PEs keeps no threshold, so this bounds it too)."""
    by_name = {ly["name"]: ly for ly in workload.layers}
    words = 2 * -(-int(vmem_bits) // 8)

    def fan(ly: dict) -> int:
        return int(np.prod(ly["in_shape"][:1])) * int(ly.get("kernel", 1)) ** 2 if ly["type"] == "conv" \
            else int(np.prod(ly["in_shape"]))

    most = 1
    for ly in workload.layers:
        if ly["type"] in ("conv", "linear", "output") and ly.get("spiking", True):  # output: on the PEs without a tile
            most = max(most, fan(ly) + words)
        elif ly["type"] == "add":
            most = max(most, words + sum(fan(by_name[s]) for s in ly["inputs"]
                                         if by_name[s]["type"] in ("conv", "linear")
                                         and not by_name[s].get("spiking", True)))
    return most


def arch_from_picks(pick, workload) -> dict:
    """A small random architecture (a raw YAML mapping) for ``workload``; every field comes from ``pick``."""
    raw = copy.deepcopy(BASE)
    kind = pick.choice(["conventional", "dtsnn", "atsn"])
    if not workload.has_output:  # a spiking last layer: its spike counts are the output, fixed T (section 11)
        kind = "conventional"
    raw["kind"] = kind
    # a fixed-T array may have no exit tile (the output layer runs on the PEs): half of them
    tiles = pick.choice([1, 0]) if kind == "conventional" else 1
    sb = pick.choice([1, 2, 2, 2])
    raw["spike_address_bytes"] = sb
    rows, cols = pick.integer(1, 5), pick.integer(1, 5)
    if rows * cols < 1 + tiles:
        cols = 2
    raw["array"] = {"rows": rows, "cols": cols, "exit_unit_tiles": tiles}
    raw["accelerators"] = pick.integer(1, 4)
    raw["images_per_batch"] = pick.integer(1, 4)
    pe = raw["pe"]
    # the input buffer decides head-of-line blocking on the multicast stream (section 4.1): 1-4 spikes
    # in most cases, so that one busy PE often holds up the others; otherwise up to 16 B
    if pick.uniform() < 0.7:
        pe["input_spike_buffer_bytes"] = sb * pick.integer(1, 5)
    else:
        pe["input_spike_buffer_bytes"] = pick.integer(max(2, sb), 17)
    pe["output_spike_buffer_bytes"] = pick.integer(max(2, sb), 17)
    # never narrower than the workload's membranes (simulate refuses that); residency is varied by the memory size
    pe["vmem_bits"] = max(pick.choice([8, 16, 16, 32]), workload.vmem_bits)
    pe["data_memory_bytes"] = pick.choice([4, 8, 16, 32, 64, 256, 2048])
    # at least one membrane per image of a batch, two words for a first layer reading the image (sections 3 and 5
    # refuse fewer; tests of their own check that)
    words = 2 if workload.input_encoding == "direct" else 1
    pe["data_memory_bytes"] = max(pe["data_memory_bytes"], words * raw["images_per_batch"] * pe["vmem_bits"] // 8)
    pe["adders"] = pick.integer(1, 4)
    pe["decay"] = "multiplier" if kind == "conventional" else "shift_add"
    eu = {
        "data_memory_bytes": 3072,
        "input_spike_buffer_bytes": pick.integer(max(2, sb), 17),
        "output_spike_buffer_bytes": pick.integer(max(2, sb), 17),
        "adders": pick.integer(1, 4),
        "multipliers": 1,
        "vmem_bits": max(pick.choice([16, 32]), int(workload.meta["quant"].get("output_vmem_bits", 32))),
    }
    if kind == "dtsnn":
        pe["accumulation"] = "analog"
        pe["adc_bits"] = 8
        pe["adc_cycles_per_conversion"] = pick.integer(1, 4)
        eu.update(kind="dt", lut_bytes=pick.choice([256, 2048]), divider_cycles=pick.integer(1, 20),
                  theta=pick.choice([0.3, 0.5, 0.8]))
    elif kind == "atsn":
        eu.update(kind="at", exp_lut_entries=pick.choice([16, 64, 256]),
                  cl_init=pick.choice([0.5, 0.8, 0.95]), tau_cl=pick.choice([0.8, 0.95, 1.0]))
    else:
        eu.update(kind="none", multipliers=0)
    raw["exit_unit"] = eu
    if tiles == 0 and pick.uniform() < 0.5:  # without an exit tile the exit_unit section may be left out
        del raw["exit_unit"]
    raw["noc"] = {"topology": "mesh", "link_bytes_per_cycle": pick.choice([sb, 2, 4, 8, 16]),
                  "hop_cycles": pick.integer(0, 4)}
    raw["noc"]["link_bytes_per_cycle"] = max(raw["noc"]["link_bytes_per_cycle"], sb)
    gb = raw["global_buffers"]
    gb["weight"]["bytes"] = pick.choice([64, 512, 4096, 147456])
    gb["weight"]["bytes_per_cycle"] = pick.choice([1, 4, 32])
    gb["input"]["bytes_per_cycle"] = pick.choice([1, 2, 32])
    gb["output"]["bytes"] = pick.choice([8, 32, 256, 32768])
    gb["output"]["bytes_per_cycle"] = pick.choice([1, 2, 32])
    gb["input"]["bytes"] = pick.choice([8, 256, 32768, 32768])  # spills follow the smaller spike buffer
    raw["dram"]["bytes_per_cycle"] = pick.choice([1, 8, 16])
    raw["dram"]["latency_cycles"] = pick.choice([0, 1, 7, 40])
    # a PE weight memory of 1-3 neurons' fan-in (every PE block must fit its share: folds split), or the default
    times = pick.choice([0, 1, 1, 2, 3])
    if times:
        pe["weight_memory_bytes"] = times * neuron_weight_bytes(workload, pe["vmem_bits"])
    eu["prediction"] = pick.choice(["membrane_sum", "membrane"])
    _pick_dataflow(pick, raw)
    gb["weight"]["banks"] = pick.choice([1, 2, 2, 3])  # buffer-fulls read ahead (section 4, phase 1)
    raw["dram"]["arbitration"] = pick.choice(["demand_first", "fifo"])  # waited-for first, or request order
    return raw


def _pick_dataflow(pick, raw: dict) -> None:
    """Section 12: layer_major for the fixed-T design (any weight buffer: the PE weight memories hold a fold), refill
    otherwise."""
    if raw["kind"] == "conventional":
        raw["dataflow"] = pick.choice(["timestep_major", "layer_major", "layer_major"])
    else:
        raw["batch_refill"] = pick.choice([False, True, True])


def random_arch_dict(seed: int, workload) -> dict:
    """A small random architecture (a raw YAML mapping) for ``workload``, every field drawn from ``seed``."""
    return arch_from_picks(_NumpyPicks(10_000 + seed), workload)


def random_case(seed: int):
    """(arch, workload, images) of one random case."""
    rng = np.random.default_rng(20_000 + seed)
    images = int(rng.integers(1, 5))
    size = int(rng.choice([4, 6]))
    # a network that ends in a spiking layer (no output layer) runs on a fixed-T architecture: 1 case in 6
    output_layer = bool(rng.random() >= 1 / 6)
    workload = random_workload(seed, images=images, max_channels=4, size=size, output_layer=output_layer)
    arch = build_arch(random_arch_dict(seed, workload), where=f"<random arch {seed}>")
    return arch, workload, images


def compare(arch, workload, images: int, label: str, slow: bool = False) -> None:
    """Assert that engine and reference agree exactly on every counter and on the emitted spikes
    (or refuse the case with the same one-line error, section 12.4)."""
    try:
        ref = simulate_reference(arch, workload, images)
    except MappingError as error:
        with pytest.raises(MappingError) as raised:
            engine.simulate(arch, workload, images)
        assert str(raised.value) == str(error), label
        RUN["slow" if slow else "default"] += 1
        return
    result = engine.simulate(arch, workload, images)
    problems = diff_counters(result.counters(), {k: v for k, v in ref.items() if k != "pe_output_spikes"})
    assert not problems, f"{label} ({arch.kind}): " + "; ".join(problems[:12])
    # the spikes the PEs emitted, group by group, are the same in both
    engine_spikes = {g["name"]: g["counts"]["pe_spikes_out"] for g in result.layers if g["kind"] == "pe"}
    assert engine_spikes == {name: sum(v) for name, v in ref["pe_output_spikes"].items()}, label
    RUN["slow" if slow else "default"] += 1
    if not slow:
        RUN["no_exit_tile"] += int(arch.array.exit_unit_tiles == 0)
        RUN["no_output_layer"] += int(not workload.has_output)


def check_case(seed: int, slow: bool = False) -> None:
    """Assert that engine and reference agree exactly on seeded case ``seed``."""
    arch, workload, images = random_case(seed)
    compare(arch, workload, images, f"seed {seed}", slow)


@hst.composite
def hypothesis_cases(draw):
    """(arch, workload, images, label): an architecture from arch_from_picks and a random network, both drawn."""
    seed = draw(hst.integers(0, 2**31 - 1))
    images = draw(hst.integers(1, 4))
    size = draw(hst.sampled_from([4, 6]))
    # a network that ends in a spiking layer (no output layer) runs on a fixed-T architecture: 1 case in 6
    output_layer = draw(hst.sampled_from([True, True, True, True, True, False]))
    workload = random_workload(seed, images=images, max_channels=4, size=size, output_layer=output_layer)
    raw = arch_from_picks(_HypothesisPicks(draw), workload)
    arch = build_arch(raw, where="<hypothesis arch>")
    return (arch, workload, images,
            f"network seed {seed}, {images} images, size {size}, output layer {output_layer}, arch {raw}")


@settings(max_examples=HYPOTHESIS_CASES, derandomize=True, database=None, deadline=None,
          suppress_health_check=list(HealthCheck))
@given(case=hypothesis_cases())
def test_engine_matches_reference(case) -> None:
    """Hypothesis-drawn architectures and networks (derandomized: the same cases in every run and on CI)."""
    arch, workload, images, label = case
    compare(arch, workload, images, label)


@pytest.mark.slow
@settings(max_examples=SLOW_HYPOTHESIS_CASES, derandomize=True, database=None, deadline=None,
          suppress_health_check=list(HealthCheck))
@given(case=hypothesis_cases())
def test_engine_matches_reference_more_hypothesis_cases(case) -> None:
    """More hypothesis-drawn cases (another function name derandomizes to other draws than the default run's)."""
    arch, workload, images, label = case
    compare(arch, workload, images, label, slow=True)


@pytest.mark.parametrize("block", range(2))
def test_engine_matches_reference_statistical(block: int) -> None:
    """Statistical twins of the seeded random networks: drawn spikes and exit steps instead of a forward."""
    from satasim_atsn.traces.twin_fit import fit_statistical_twin

    per_block = STATISTICAL_CASES // 2
    for seed in range(block * per_block, (block + 1) * per_block):
        arch, workload, images = random_case(seed)
        compare(arch, fit_statistical_twin(workload, seed=seed), images, f"statistical seed {seed}")


@pytest.mark.slow
@pytest.mark.parametrize("block", range(4))
def test_engine_matches_reference_larger_networks(block: int) -> None:
    """8x8 inputs and up to 6 channels: more folds, more spikes (about 0.3 s per case in the reference)."""
    per_block = LARGER_CASES // 4
    for seed in range(5000 + block * per_block, 5000 + (block + 1) * per_block):
        output_layer = seed % 6 != 0
        workload = random_workload(seed, images=3, size=8, output_layer=output_layer)
        arch = build_arch(random_arch_dict(seed, workload), where=f"<random arch {seed}>")
        compare(arch, workload, 3, f"seed {seed} (8x8, output layer {output_layer})", slow=True)


def test_comparison_detects_a_one_cycle_change() -> None:
    """The comparison is not vacuous: one more cycle of DRAM latency on one side is caught."""
    arch, workload, images = random_case(3)
    raw = random_arch_dict(3, workload)
    raw["dram"]["latency_cycles"] += 1
    slower = build_arch(raw, where="<slower>")
    problems = diff_counters(engine.simulate(arch, workload, images).counters(),
                             {k: v for k, v in simulate_reference(slower, workload, images).items()
                              if k != "pe_output_spikes"})
    assert any(p.startswith(".total_cycles") for p in problems)
    assert any(p.startswith(".dram_busy_cycles") for p in problems)  # the channel's occupancy is compared too


def refill_case(seed: int):
    """(arch, workload, images) with more images than slots: batch refill (early exit) or layer_major (fixed T)."""
    rng = np.random.default_rng(30_000 + seed)
    slots = int(rng.integers(2, 5))
    images = int(rng.integers(slots + 1, 9))
    workload = random_workload(seed, images=images, max_channels=4, size=int(rng.choice([4, 6])))
    raw = random_arch_dict(seed, workload)
    raw["images_per_batch"] = slots
    words = 2 if workload.input_encoding == "direct" else 1  # a first layer's current beside its membrane
    raw["pe"]["data_memory_bytes"] = max(raw["pe"]["data_memory_bytes"], words * slots * raw["pe"]["vmem_bits"] // 8)
    if raw["kind"] != "conventional":
        raw["batch_refill"] = True
    arch = build_arch(raw, where=f"<refill arch {seed}>")
    return arch, workload, images


def _compare_refill_cases(seeds: range, slow: bool) -> None:
    """Compare the refill cases of ``seeds``; odd seeds as statistical twins (varied exit steps)."""
    from satasim_atsn.traces.twin_fit import fit_statistical_twin

    for seed in seeds:
        arch, workload, images = refill_case(seed)
        if seed % 2:
            workload = fit_statistical_twin(workload, seed=seed)
        compare(arch, workload, images, f"refill seed {seed}", slow=slow)


@pytest.mark.parametrize("block", range(2))
def test_engine_matches_reference_refill(block: int) -> None:
    """Batch refill with early exit (statistical twins: varied exit steps) and layer_major, more images than slots."""
    per_block = REFILL_CASES // 2
    _compare_refill_cases(range(7000 + block * per_block, 7000 + (block + 1) * per_block), slow=False)


@pytest.mark.slow
@pytest.mark.parametrize("block", range(4))
def test_engine_matches_reference_refill_sweep(block: int) -> None:
    """More batch-refill and layer_major cases (seeded)."""
    per_block = SLOW_REFILL_CASES // 4
    _compare_refill_cases(range(8000 + block * per_block, 8000 + (block + 1) * per_block), slow=True)


def _mutated_engine_detected(monkeypatch, module, name: str, wrap, pick) -> None:
    """Replace ``module.<name>`` (an engine module) by ``wrap(original)`` and assert that some case of ``pick``
    then disagrees."""
    cases = [c for c in (refill_case(seed) for seed in range(7000, 7040)) if pick(c[0])][:6]
    assert cases, "no case exercises the path"
    refs = [simulate_reference(a, w, n) for a, w, n in cases]
    monkeypatch.setattr(module, name, wrap(getattr(module, name)))
    problems = []
    for (arch, workload, images), ref in zip(cases, refs, strict=True):
        problems += diff_counters(engine.simulate(arch, workload, images).counters(),
                                  {k: v for k, v in ref.items() if k != "pe_output_spikes"})
    assert any(p.startswith(".total_cycles") for p in problems)


def test_comparison_detects_a_one_cycle_change_in_refill(monkeypatch) -> None:
    """One more cycle in a refill step's program (engine side only) is caught."""
    def wrap(original):
        def step(model, items):
            work = original(model, items)
            work.tail += 1
            return work
        return step
    _mutated_engine_detected(monkeypatch, engine_scheduler, "refill_step", wrap, lambda a: a.batch_refill)


def test_comparison_detects_a_one_cycle_change_in_layer_major(monkeypatch) -> None:
    """One more cycle in a layer_major batch program (engine side only) is caught."""
    def wrap(original):
        def program(w, n):
            original(w, n)
            w.pending += 1
        return program
    _mutated_engine_detected(monkeypatch, engine_programs, "_layer_major_program", wrap,
                             lambda a: a.dataflow == "layer_major")


@pytest.mark.slow
@pytest.mark.parametrize("block", range(20))
def test_engine_matches_reference_sweep(block: int) -> None:
    """A larger sweep of seeded cases."""
    per_block = SWEEP_CASES // 20
    for seed in range(1000 + block * per_block, 1000 + (block + 1) * per_block):
        check_case(seed, slow=True)


def test_readme_quotes_the_case_counts() -> None:
    """README's numbers of engine-versus-reference cases are the constants this module runs."""
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    readme = " ".join(readme.split())  # line breaks are not meaningful
    for phrase in (f"{DEFAULT_CASES:,} random small networks", f"{HYPOTHESIS_CASES:,} of them drawn by hypothesis",
                   f"{SLOW_CASES:,} more in the slow part", f"{DEFAULT_CASES + SLOW_CASES:,} random networks"):
        assert phrase in readme, phrase


def test_every_package_module_is_loaded_before_hypothesis_draws(request) -> None:
    """Hypothesis draws constants from the package's loaded modules: conftest.py loads them all when the session
    holds a hypothesis test, so the drawn cases are the same whatever ran before (see the module's docstring)."""
    import sys

    from package_modules import has_hypothesis_test, package_module_names

    if not has_hypothesis_test(request.session.items):
        pytest.skip("no hypothesis test in this session (-k or a node id chose this one alone)")
    missing = [name for name in package_module_names() if name not in sys.modules]
    assert not missing, f"not loaded before the hypothesis cases: {missing[:5]}"
