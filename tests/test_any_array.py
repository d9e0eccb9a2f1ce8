"""Any array (issue 11 point 3): arrays without an exit tile run the output layer on the PEs, and
networks that end in a spiking layer output their spike counts (docs/microarchitecture.md section 11)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import yaml
from cli_helpers import cli_runner

from satasim_atsn.cli import cli
from satasim_atsn.errors import ArchError, MappingError, WorkloadError
from satasim_atsn.hw import engine
from satasim_atsn.hw.arch import build_arch, load_arch
from satasim_atsn.hw.energy import compute_area, leakage_power_mW, memory_bytes, tile_pitch_mm
from satasim_atsn.hw.mapping import build_mapping
from satasim_atsn.hw.reference import simulate_reference
from satasim_atsn.snn.exit_policies import AtsnPolicy
from satasim_atsn.snn.forward import run_forward
from satasim_atsn.workload.format import Workload, validate, write_workload
from satasim_atsn.workload.synthetic import random_workload

CONVENTIONAL = load_arch("conventional16x16").path
RAW = yaml.safe_load(CONVENTIONAL.read_text())
EXIT_EVENTS = ("exit_accumulations", "exit_updates", "exit_lut_reads", "exit_multiplies", "exit_compares",
               "exit_divides")


def _arch(rows: int, cols: int, tiles: int, omit_exit_unit: bool = False, **changes):
    raw = copy.deepcopy(RAW)
    raw["array"] = {"rows": rows, "cols": cols, "exit_unit_tiles": tiles}
    raw["accelerators"] = 1
    if omit_exit_unit:
        del raw["exit_unit"]
    raw.update(changes)
    return build_arch(raw, where="<test>", base_dir=CONVENTIONAL.parent)


def _counters(arch, workload, images):
    result = engine.simulate(arch, workload, images)
    ref = simulate_reference(arch, workload, images)
    assert result.counters() == {k: v for k, v in ref.items() if k != "pe_output_spikes"}
    return result


# ------------------------------------------------------------------------------------------
# architecture
# ------------------------------------------------------------------------------------------
def test_no_exit_tile_makes_every_tile_a_pe():
    arch = _arch(12, 12, 0)
    assert arch.num_pes == 144 and arch.num_tiles == 144 and not arch.has_exit_unit
    assert _arch(1, 1, 0, omit_exit_unit=True).num_pes == 1
    assert _arch(12, 12, 1).num_pes == 143


def test_the_exit_unit_section_may_be_left_out_only_without_an_exit_tile():
    arch = _arch(4, 4, 0, omit_exit_unit=True)
    assert arch.exit_unit.kind == "none" and arch.exit_unit.data_memory_bytes == 0
    assert arch.to_dict()["exit_unit"]["kind"] == "none"
    with pytest.raises(ArchError, match=r"exit_unit: missing section"):
        _arch(4, 4, 1, omit_exit_unit=True)


@pytest.mark.parametrize(("name", "sets", "needle"), [
    ("atsn16x16", ["array.exit_unit_tiles=0"],
     "array.exit_unit_tiles: 0 leaves no tile for the at unit (exit_unit.kind: at); set array.exit_unit_tiles: 1, "
     "or make it fixed-T: kind: conventional with no exit_unit section, or with exit_unit.kind: none and "
     "exit_unit.exp_lut_entries: null"),
    ("dtsnn16x16", ["array.exit_unit_tiles=0"], "array.exit_unit_tiles: 0 leaves no tile for the dt unit"),
    ("conventional16x16", ["array.exit_unit_tiles=2"],
     "array.exit_unit_tiles: 2 exit units per accelerator are not modelled; use 1"),
    ("conventional16x16", ["array.exit_unit_tiles=-1"], "array.exit_unit_tiles: must be >= 0, got -1"),
])
def test_bad_exit_tiles_are_one_line(name, sets, needle):
    with pytest.raises(ArchError) as info:
        load_arch(name, sets)
    assert needle in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("name", ["atsn16x16", "dtsnn16x16"])
def test_the_fix_for_an_exit_rule_without_a_tile_works_as_given(name):
    """Following the refusal's second fix word for word gives a design that loads (it used to ask again, per field)."""
    with pytest.raises(ArchError) as info:
        load_arch(name, ["array.exit_unit_tiles=0"])
    fix = str(info.value).split("exit_unit.kind: none", 1)[1]
    nulls = [part.split(":")[0].strip() for part in fix.split(" and ", 1)[1].split(",")] if " and " in fix else []
    sets = ["array.exit_unit_tiles=0", "kind=conventional", "exit_unit.kind=none"] + [f"{f}=null" for f in nulls]
    arch = load_arch(name, sets)
    assert arch.exit_unit.kind == "none" and int(arch.array.exit_unit_tiles) == 0


def test_leaving_out_the_exit_unit_of_an_atsn_design_names_the_tiles():
    raw = copy.deepcopy(yaml.safe_load(load_arch("atsn16x16").path.read_text()))
    raw["array"]["exit_unit_tiles"] = 0
    del raw["exit_unit"]
    with pytest.raises(ArchError, match=r"array.exit_unit_tiles: 0 leaves no tile for the at unit"):
        build_arch(raw, base_dir=CONVENTIONAL.parent)


# ------------------------------------------------------------------------------------------
# mapping
# ------------------------------------------------------------------------------------------
def test_the_output_layer_is_a_pe_group_without_an_exit_tile():
    workload = random_workload(5, images=2, size=6, residual=False)
    with_tile = build_mapping(_arch(3, 3, 1), workload)
    without = build_mapping(_arch(3, 3, 0), workload)
    out = workload.layers[-1]
    assert with_tile.groups[-1].kind == "exit" and with_tile.exit_group is with_tile.groups[-1]
    group = without.groups[-1]
    assert without.exit_group is None and not without.has_exit_unit and without.num_pes == 9
    assert group.kind == "pe" and not group.spiking and group.name == out["name"] and group.neurons == \
        workload.num_classes
    fan_in = int(out["in_shape"][0])
    # a bias per class beside its weights (section 3): 2 B on the PEs (pe.vmem_bits 16) and no threshold (it never
    # fires); 4 B on the exit unit (exit_unit.vmem_bits 32)
    assert sum(f.weight_bytes for f in group.folds) == group.weight_bytes == workload.num_classes * (fan_in + 2)
    assert all(f.threshold_bytes == 0 for f in group.folds)
    assert with_tile.groups[-1].weight_bytes == workload.num_classes * (fan_in + 4)
    assert [g.name for g in without.groups] == [g.name for g in with_tile.groups]
    assert without.exit_memory_bytes == 0 and with_tile.exit_memory_bytes > 0


def test_the_output_layer_folds_like_a_linear_layer():
    workload = random_workload(5, images=1, size=6, residual=False, num_classes=5)
    # one PE of 2 membranes: 5 classes need 3 folds of at most 2 neurons
    mapping = build_mapping(_arch(1, 1, 0, omit_exit_unit=True, pe={**RAW["pe"], "data_memory_bytes": 4}), workload)
    group = mapping.groups[-1]
    assert [(f.start, f.stop) for f in group.folds] == [(0, 2), (2, 4), (4, 5)]
    fan_in = int(workload.layers[-1]["in_shape"][0])  # in_features (through a global pool: its channels)
    per_class = fan_in + 2  # its weights and a 2 B bias (pe.vmem_bits 16), no threshold (section 3)
    assert [f.weight_bytes for f in group.folds] == [2 * per_class, 2 * per_class, per_class]
    assert not mapping.membranes_resident


def test_a_spiking_output_network_on_a_deciding_exit_unit_is_one_line():
    workload = random_workload(3, images=2, output_layer=False)
    with pytest.raises(MappingError) as info:
        build_mapping(load_arch("atsn16x16"), workload)
    text = str(info.value)
    assert "exit_unit.kind: the at exit rule needs an output layer" in text and "\n" not in text


# ------------------------------------------------------------------------------------------
# counters: engine and reference agree, and the output layer's work moved from the exit unit to the PEs
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [1, 4, 9])
def test_pe_counters_take_over_the_exit_units(seed):
    workload = random_workload(seed, images=3, size=6)
    ra, rb = _counters(_arch(2, 3, 1), workload, 3), _counters(_arch(2, 3, 0), workload, 3)
    a, b = ra.totals, rb.totals
    from satasim_atsn.hw.per_image import neurobench

    na, nb = neurobench(ra), neurobench(rb)  # the same network: the same NeuroBench workload metrics
    for key in ("SynapticOperations", "ActivationSparsity", "MembraneUpdates", "Footprint"):
        assert na[key] == nb[key], key
    assert a["exit_accumulations"] > 0 and all(b[k] == 0 for k in EXIT_EVENTS)
    assert b["pe_accumulations"] == a["pe_accumulations"] + a["exit_accumulations"]
    assert b["pe_fire_updates"] == a["pe_fire_updates"] + a["exit_updates"]
    assert b["pe_spikes_out"] == a["pe_spikes_out"]  # the output layer never spikes
    out_weights = build_mapping(_arch(2, 3, 0), workload).groups[-1].weight_bytes
    # the same weights, streamed to the PEs at every one of the 3 images' T steps; only each class's bias is
    # narrower there: 2 B (pe.vmem_bits 16) against the exit unit's 4 B (exit_unit.vmem_bits 32)
    steps = 3 * workload.timesteps
    assert a["weight_glb_read_bytes"] - b["weight_glb_read_bytes"] == steps * workload.num_classes * (4 - 2)
    assert out_weights > 0


def test_no_exit_tile_keeps_the_exit_unit_idle_and_the_output_layer_on_the_pes():
    workload = random_workload(4, images=2, size=4)
    result = _counters(_arch(1, 1, 0, omit_exit_unit=True), workload, 2)
    counters = result.counters()["accelerators"][0]
    assert counters["exit_unit"] == {"busy": 0, "stall_input": 0, "idle": result.total_cycles}
    out = next(g for g in result.layers if g["name"] == workload.layers[-1]["name"])
    assert out["kind"] == "pe" and out["counts"]["pe_accumulations"] > 0 and out["counts"]["pe_spikes_out"] == 0
    assert out["counts"]["pe_fire_updates"] == 2 * workload.timesteps * workload.num_classes
    assert (result.end_cycle > result.start_cycle).all() and (result.exit_t == workload.timesteps).all()


@pytest.mark.parametrize("tiles", [0, 1])
def test_a_spiking_output_network_runs_fixed_t_with_its_spike_counts_as_predictions(tiles):
    workload = random_workload(6, images=3, size=6, output_layer=False)
    result = _counters(_arch(2, 2, tiles), workload, 3)
    forward = run_forward(workload, record_spikes=True)
    last = workload.layers[-1]["name"]
    counts = forward.spikes[last].reshape(3, workload.timesteps, -1).sum(axis=1)
    assert (result.pred == counts.argmax(axis=1)).all() and (result.pred_hw == result.pred).all()
    assert (result.exit_t == workload.timesteps).all()
    assert all(result.totals[k] == 0 for k in EXIT_EVENTS)
    assert result.counters()["accelerators"][0]["exit_unit"]["busy"] == 0


# ------------------------------------------------------------------------------------------
# energy and area
# ------------------------------------------------------------------------------------------
def test_no_exit_tile_has_no_exit_unit_area_or_leakage():
    with_tile, without = _arch(12, 12, 1), _arch(12, 12, 0)
    assert compute_area(without)["exit_unit"] == 0.0 and leakage_power_mW(without)["exit_unit"] == 0.0
    assert compute_area(with_tile)["exit_unit"] > 0.0
    assert memory_bytes(without)["exit_unit_memory"] == 0
    eu = with_tile.exit_unit
    spike_bytes = memory_bytes(with_tile)["spike_buffers"] - eu.input_spike_buffer_bytes - eu.output_spike_buffer_bytes
    pe = with_tile.pe
    assert spike_bytes == 143 * (pe.input_spike_buffer_bytes + pe.output_spike_buffer_bytes)
    assert memory_bytes(without)["spike_buffers"] == 144 * (pe.input_spike_buffer_bytes + pe.output_spike_buffer_bytes)
    # the NoC hop is one tile pitch: the array's area over its rows*cols tiles, all PEs here
    area = compute_area(without)
    pitch = np.sqrt((area["per_accelerator_total"] - area["global_buffer"]) / 144) * 1e-3
    assert tile_pitch_mm(without) == pytest.approx(pitch, rel=1e-12)


# ------------------------------------------------------------------------------------------
# networks without an output layer: format, forward
# ------------------------------------------------------------------------------------------
def test_forward_outputs_the_last_layers_spike_counts():
    workload = random_workload(2, images=4, output_layer=False)
    result = run_forward(workload, record_spikes=True)
    last = workload.layers[-1]
    counts = result.spikes[last["name"]].reshape(4, workload.timesteps, -1).cumsum(axis=1)
    assert workload.num_classes == int(np.prod(last["out_shape"]))
    assert np.array_equal(result.out_membrane, counts)
    assert np.array_equal(result.pred, counts[:, -1].argmax(axis=1))
    with pytest.raises(WorkloadError, match=r"the atsn exit rule needs an output layer"):
        run_forward(workload, policy=AtsnPolicy())


def _spiking_end(workload: Workload, **meta) -> Workload:
    out = Workload(meta=copy.deepcopy(workload.meta), arrays=dict(workload.arrays), source="<t>")
    out.meta.update(meta)
    return out


def test_the_format_checks_a_spiking_end():
    workload = random_workload(2, images=2, output_layer=False)  # ... gap (avgpool), out (spiking linear)
    assert [ly["type"] for ly in workload.layers[-2:]] == ["avgpool", "linear"]
    wrong = workload.num_classes + 1
    with pytest.raises(WorkloadError, match=rf"meta.num_classes: is {wrong} but the network ends in the spiking layer"):
        validate(_spiking_end(workload, num_classes=wrong))
    pooled = _spiking_end(workload)
    pooled.meta["layers"] = [ly for ly in pooled.meta["layers"] if ly["name"] != "out"]
    with pytest.raises(WorkloadError, match=r"must end in an output layer or a spiking layer, not a avgpool"):
        validate(pooled)


def test_workload_build_of_a_spiking_output_network_and_its_run(tmp_path):
    net = tmp_path / "spk.yaml"
    net.write_text("name: spk\ninput_shape: [2, 8, 8]\nlayers:\n"
                   "  - {name: c1, type: conv, out_channels: 4, kernel: 3, padding: 1}\n"
                   "  - {name: p1, type: maxpool, kernel: 2}\n  - {name: flat, type: flatten}\n"
                   "  - {name: fc, type: linear, out_features: 6}\n")
    runner = cli_runner()
    out = tmp_path / "spk.npz"
    done = runner.invoke(cli, ["workload", "build", "--network", str(net), "--rate", "0.2", "--timesteps", "3",
                               "--num-images", "4", "-o", str(out)])
    assert done.exit_code == 0, done.output
    bad = runner.invoke(cli, ["workload", "build", "--network", str(net), "--rate", "0.2", "--timesteps", "3",
                              "--exit-mean", "atsn=2", "-o", str(tmp_path / "b.npz")])
    assert bad.exit_code == 2 and "--exit-mean: the network ends in the spiking layer 'fc'" in bad.stderr
    assert not (tmp_path / "b.npz").exists()
    arch = tmp_path / "a.yaml"
    raw = copy.deepcopy(RAW)
    raw.update(technology="28nm", array={"rows": 2, "cols": 2, "exit_unit_tiles": 0})
    del raw["exit_unit"]
    arch.write_text(yaml.safe_dump(raw))
    ok = runner.invoke(cli, ["run", str(arch), str(out), "--images", "4", "--json", str(tmp_path / "r.json")])
    assert ok.exit_code == 0, ok.output
    refused = runner.invoke(cli, ["run", "atsn16x16", str(out), "--images", "2", "--json", str(tmp_path / "x.json")])
    assert refused.exit_code == 2 and refused.stderr.count("\n") == 1 and "exit_unit.kind" in refused.stderr
    assert not (tmp_path / "x.json").exists()


def test_a_trained_spiking_output_workload_round_trips(tmp_path):
    workload = random_workload(7, images=2, output_layer=False)
    write_workload(tmp_path / "w.npz", workload)
    from satasim_atsn.workload.format import read_workload

    again = read_workload(tmp_path / "w.npz")
    assert not again.has_output and again.num_classes == workload.num_classes


def test_commands_that_need_an_output_layer_say_so(tmp_path):
    """Functional studies (exit-policy sweeps) read an output layer: one error naming it. NIR export and
    `satasim evaluate` take a spiking end (tests/test_nir.py, tests/test_evaluation.py)."""
    from satasim_atsn.errors import StudyError
    from satasim_atsn.study.functional import full_run

    write_workload(tmp_path / "w.npz", random_workload(7, images=2, output_layer=False))
    with pytest.raises(StudyError, match=r"no output layer"):
        full_run(tmp_path / "w.npz")


def test_without_an_exit_tile_the_prediction_is_the_membranes_at_t():
    """Nobody keeps a running sum of the output membranes on the PEs: pred_hw is the argmax at T."""
    workload = random_workload(4, images=4, size=4, output_mode="membrane")
    arch = _arch(2, 2, 0)
    with_tile = _arch(2, 2, 1)
    assert with_tile.prediction_rule == with_tile.exit_unit.prediction == "membrane_sum"
    # the given exit_unit section describes no hardware: the resolved design records the rule that runs
    assert arch.prediction_rule == arch.exit_unit.prediction == "membrane"
    result = _counters(arch, workload, 4)
    assert (result.pred_hw == run_forward(workload).out_membrane[:, -1].argmax(axis=1)).all()
    assert result.totals["exit_prediction_adds"] == 0


def test_a_given_exit_unit_section_without_a_tile_is_recorded_as_left_out():
    """The resolved design listed a 3 KB exit unit with a membrane_sum rule that was not modelled (audit)."""
    from satasim_atsn.hw.arch_fields import ABSENT_EXIT_UNIT

    arch = load_arch("conventional16x16", ["array.exit_unit_tiles=0"])
    assert arch.to_dict()["exit_unit"] == ABSENT_EXIT_UNIT
    assert not arch.has_exit_unit and arch.prediction_rule == "membrane"


def test_without_an_exit_tile_a_section_of_kind_none_needs_no_data_memory():
    """The section is checked and then dropped (no exit unit is modelled), so asking for its data memory made a
    user add a size that nothing reads; with a tile the memory stays required (audit, session 34)."""
    bare = _arch(3, 5, 0, exit_unit={"kind": "none"})
    assert bare.to_dict() == _arch(3, 5, 0, omit_exit_unit=True).to_dict()
    with pytest.raises(ArchError, match=r"exit_unit.data_memory_bytes: missing"):
        _arch(3, 5, 1, exit_unit={"kind": "none"})
    with pytest.raises(ArchError, match=r"exit_unit.data_memory_bytes: must be positive, got 0"):
        _arch(3, 5, 0, exit_unit={"kind": "none", "data_memory_bytes": 0})
