"""hw/arch.py: loading the shipped architectures, every kind of bad input, --set overrides."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from satasim_atsn.errors import ArchError
from satasim_atsn.hw.arch import load_arch
from satasim_atsn.hw.arch_overrides import parse_override
from satasim_atsn.snn.exit_policies import AtsnPolicy, DtsnnPolicy, FixedPolicy

ARCHS = Path(__file__).resolve().parent.parent / "archs"
NAMES = ("conventional16x16", "dtsnn16x16", "atsn16x16")


def _write(tmp_path: Path, text: str, name: str = "a.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def _atsn_text() -> str:
    return (ARCHS / "atsn16x16.yaml").read_text()


@pytest.mark.parametrize("name", NAMES)
def test_shipped_archs_load(name):
    arch = load_arch(ARCHS / f"{name}.yaml")
    assert arch.name == name
    assert arch.num_pes == 255 and arch.num_tiles == 256
    assert arch.spikes_per_cycle == 4
    assert arch.pe_capacity_neurons == 512
    assert arch.clock_hz == 500e6 and arch.accelerators == 4
    assert arch.tech is not None and arch.tech.node_nm == 28
    d = arch.to_dict()
    assert d["pe"]["data_memory_bytes"] == 1024 and d["global_buffers"]["weight"]["bytes"] == 147456


def test_policies_and_kinds():
    conv, dt, at = (load_arch(ARCHS / f"{n}.yaml") for n in NAMES)
    assert isinstance(conv.exit_policy(), FixedPolicy) and conv.policy_name == "fixed"
    assert conv.pe.decay == "multiplier" and conv.exit_unit.kind == "none"
    pol = dt.exit_policy()
    assert isinstance(pol, DtsnnPolicy) and pol.theta == 0.1 and dt.policy_name == "dtsnn"
    assert dt.pe.accumulation == "analog" and dt.pe.adc_bits == 8 and dt.exit_unit.lut_bytes == 6144
    pol = at.exit_policy()
    assert isinstance(pol, AtsnPolicy) and pol.hardware and pol.lut_entries == 256 and pol.cl_init == 0.999
    assert at.pe.decay == "shift_add" and at.exit_unit.multipliers == 1


def test_shared_fields_identical():
    """Everything the paper leaves open is the same in the three files."""
    dicts = [load_arch(ARCHS / f"{n}.yaml").to_dict() for n in NAMES]
    for key in ("technology", "clock_hz", "accelerators", "images_per_batch", "spike_address_bytes", "array",
                "noc", "global_buffers", "dram"):
        assert dicts[0][key] == dicts[1][key] == dicts[2][key], key
    for key in ("input_spike_buffer_bytes", "output_spike_buffer_bytes", "data_memory_bytes", "adders", "vmem_bits"):
        assert dicts[0]["pe"][key] == dicts[1]["pe"][key] == dicts[2]["pe"][key], key


def test_to_dict_deterministic():
    a = load_arch(ARCHS / "atsn16x16.yaml").to_dict()
    b = load_arch(ARCHS / "atsn16x16.yaml").to_dict()
    assert a == b and list(a) == list(b)


def test_unknown_key_suggests(tmp_path):
    p = _write(tmp_path, _atsn_text().replace("  adders: 1                        # shared (not",
                                              "  adderz: 1                        # shared (not"))
    with pytest.raises(ArchError, match=r"a.yaml: pe.adderz: unknown key; did you mean 'adders'\?"):
        load_arch(p)


def test_unknown_top_key_suggests(tmp_path):
    p = _write(tmp_path, _atsn_text() + "acelerators: 2\n")
    with pytest.raises(ArchError, match="did you mean 'accelerators'"):
        load_arch(p)


@pytest.mark.parametrize("override,pattern", [
    ("pe.adders=two", r"pe.adders: must be an integer, got 'two'"),
    ("pe.adders=1.5", r"pe.adders: must be an integer"),
    ("pe.decay=divide", r"pe.decay: must be one of shift_add, multiplier, got 'divide'; write one of shift_add, "
                        r"multiplier"),
    ("dataflow=layer_majr", r"dataflow: must be one of timestep_major, layer_major, got 'layer_majr'; did you mean "
                            r"'layer_major'\?"),
    # a YAML boolean or null is shown as written, not as Python's True or None
    ("clock_hz=true", r"clock_hz: must be a number, got true; write a plain number"),
    ("clock_hz=fast", r"clock_hz: must be a number"),
    ("name=[1, 2]", r"must be a scalar"),
    ("pe.data_memory_bytes=0", r"pe.data_memory_bytes: must be positive, got 0"),
    ("global_buffers.weight.bytes=-5", r"global_buffers.weight.bytes: must be positive"),
    ("accelerators=0", r"accelerators: must be positive"),
    ("noc.link_bytes_per_cycle=1", r"narrower than one spike address"),
    ("pe.input_spike_buffer_bytes=1", r"cannot hold one 2-byte spike"),
    ("exit_unit.kind=dt", r"exit_unit.kind: an atsn accelerator has exit unit kind 'at'"),
    ("pe.adc_bits=8", r"pe.adc_bits: only meaningful with pe.accumulation: analog"),
    ("pe.accumulation=analog", r"pe.adc_bits: analog accumulation needs an ADC description"),
    ("exit_unit.theta=0.2", r"exit_unit.theta: only meaningful for exit unit kind 'dt'"),
    ("exit_unit.cl_init=1.5", r"exit_unit.cl_init: must be in \(0, 1\]"),
    ("exit_unit.exp_lut_entries=4096", r"do not fit the 3072 B data memory"),
    ("exit_unit.multipliers=0", r"needs at least one multiplier"),
    ("dram.energy_table_entry=dram_lpdr4", r"dram.energy_table_entry: 'dram_lpdr4' is not a DRAM part of 28nm.yaml; "
                                           r"did you mean 'dram_lpddr4'"),
    ("dram.energy_table_entry=dram_sata_sim", r"dram.energy_table_entry: .*renamed.*; use dram_array_only_cacti"),
    ("dram.energy_table_entry=regfile", r"not a DRAM part .*valid: dram_array_only_cacti, dram_ddr4, dram_hbm2"),
    ("technology=28mn", r"technology: .*no shipped technology table named '28mn'; did you mean '28nm'"),
    ("array.exit_unit_tiles=0", r"array.exit_unit_tiles: 0 leaves no tile for the at unit \(exit_unit.kind: at\); "
                                r"set array.exit_unit_tiles: 1, or make it fixed-T: kind: conventional with no "
                                r"exit_unit section, or with exit_unit.kind: none and exit_unit.exp_lut_entries"),
    ("array.exit_unit_tiles=3", r"array.exit_unit_tiles: 3 exit units per accelerator are not modelled"),
    # more exit tiles than the array has: the field is named, not "the array has no tile left"
    ("array.exit_unit_tiles=300", r"array.exit_unit_tiles: 300 exit units per accelerator are not modelled"),
    ("exit_unit.exp_lut_entries=100000000", r"exit_unit.exp_lut_entries: must be <= 1048576, got 100000000"),
    ("array.exit_unit_tiles=-1", r"array.exit_unit_tiles: must be >= 0, got -1"),
    ("dataflow=weight_stationary", r"dataflow: must be one of timestep_major, layer_major"),
    ("dataflow=layer_major", r"dataflow: layer_major .* exit unit kind 'at' decides after every timestep; use "
                             r"dataflow: timestep_major, or make it fixed-T: kind: conventional, exit_unit.kind: none, "
                             r"exit_unit.exp_lut_entries: null, exit_unit.exp_frac_bits: null, exit_unit.cl_init: "
                             r"null, exit_unit.tau_cl: null"),
    ("batch_refill=2", r"batch_refill: must be true or false, got 2"),
])
def test_bad_values(override, pattern):
    with pytest.raises(ArchError, match=pattern):
        load_arch(ARCHS / "atsn16x16.yaml", [override])


def test_the_layer_major_fix_works_as_given():
    """It named exit_unit.kind: none alone; following it took six rounds, one refused field each."""
    with pytest.raises(ArchError) as info:
        load_arch(ARCHS / "atsn16x16.yaml", ["dataflow=layer_major"])
    fix = str(info.value).split("make it fixed-T: ", 1)[1].split(" (the value comes", 1)[0]
    overrides = ["dataflow=layer_major"] + [item.replace(": ", "=", 1) for item in fix.split(", ")]
    arch = load_arch(ARCHS / "atsn16x16.yaml", overrides)
    assert arch.dataflow == "layer_major" and arch.kind == "conventional"


def test_bad_value_message_names_file():
    with pytest.raises(ArchError) as info:
        load_arch(ARCHS / "atsn16x16.yaml", ["pe.vmem_bits=0"])
    assert str(info.value).startswith(str(ARCHS / "atsn16x16.yaml") + ": pe.vmem_bits:")


def test_overrides_apply():
    arch = load_arch(ARCHS / "atsn16x16.yaml", ["pe.adders=2", "clock_hz=1e9", "global_buffers.weight.bytes=262144",
                                                 "dram.energy_table_entry=dram_lpddr4", "technology=45nm"])
    assert arch.pe.adders == 2 and arch.clock_hz == 1e9 and arch.global_buffers.weight.bytes == 262144
    assert arch.dram.energy_table_entry == "dram_lpddr4" and arch.tech.node_nm == 45


def test_override_null_removes_and_switch_to_digital():
    arch = load_arch(ARCHS / "dtsnn16x16.yaml", ["pe.accumulation=digital", "pe.adc_bits=null",
                                                 "pe.adc_cycles_per_conversion=null"])
    assert arch.pe.accumulation == "digital" and arch.pe.adc_bits is None


@pytest.mark.parametrize("text,pattern", [
    ("pe.adderz=2", r"--set: pe.adderz: no such field; did you mean 'pe.adders'\?"),
    ("pee.adders=2", r"--set: pee: no such field; did you mean 'pe'\?"),
    ("pe.adders.x=2", r"--set: pe.adders.x: pe.adders is a value, not a section; set it directly, e.g. "
                      r"--set pe.adders=VALUE"),
    ("pe=2", r"is a section, not a field"),
    ("pe.adders", r"expected path.to.field=value"),
    ("pe..adders=1", r"empty path component"),
    ("=5", r"--set: '=5' has no field name before '='; write FIELD=VALUE"),
])
def test_bad_override_paths(text, pattern):
    with pytest.raises(ArchError, match=pattern):
        parse_override(text)


def test_override_value_parsing():
    assert parse_override("clock_hz=5e8") == (["clock_hz"], "5e8")  # YAML 1.1 text; validated as a number later
    assert parse_override("pe.adders=3") == (["pe", "adders"], 3)
    assert parse_override("exit_unit.theta=0.25") == (["exit_unit", "theta"], 0.25)
    assert parse_override("pe.adc_bits=null") == (["pe", "adc_bits"], None)


def test_truncated_yaml(tmp_path):
    text = _atsn_text()
    cut = text[: text.index("weight: {bytes") + 12]  # stops inside a flow mapping
    p = _write(tmp_path, cut)
    with pytest.raises(ArchError, match=r"a.yaml: line \d+: not valid YAML .*truncated"):
        load_arch(p)


def test_truncated_missing_sections(tmp_path):
    text = _atsn_text()
    p = _write(tmp_path, text[: text.index("noc:")])
    with pytest.raises(ArchError, match=r"noc: missing section"):
        load_arch(p)


def test_section_not_mapping(tmp_path):
    noc = "noc: {topology: mesh, link_bytes_per_cycle: 8, hop_cycles: 1}"
    p = _write(tmp_path, _atsn_text().replace(noc, "noc: 3"))
    with pytest.raises(ArchError, match=r"a.yaml: noc: must be a mapping, got int"):
        load_arch(p)


def test_missing_file_and_empty_file(tmp_path):
    with pytest.raises(ArchError, match="architecture file not found"):
        load_arch(tmp_path / "nope.yaml")
    with pytest.raises(ArchError, match="the file is empty"):
        load_arch(_write(tmp_path, ""))
    with pytest.raises(ArchError, match="must be a mapping"):
        load_arch(_write(tmp_path, "- 1\n- 2\n"))


def test_missing_field(tmp_path):
    p = _write(tmp_path, _atsn_text().replace("accelerators: 4 ", "# accelerators: 4 "))
    with pytest.raises(ArchError, match=r"accelerators: missing"):
        load_arch(p)


def test_missing_tech_table_path(tmp_path):
    p = _write(tmp_path, _atsn_text().replace("technology: 28nm", "technology: tables/7nm.yaml"))
    with pytest.raises(ArchError, match=r"a.yaml: technology: .*tables/7nm.yaml: technology table not found"):
        load_arch(p)


def test_missing_tech_table_says_where_a_relative_path_is_read(tmp_path, monkeypatch):
    """A relative table path that is not found names the folder it was read from (the architecture file's, not the
    current one), and a --set technology=... that gave it says so: a shipped design's folder is inside the package."""
    from satasim_atsn.hw.arch import load_arch_with_set

    (tmp_path / "mine.yaml").write_text((ARCHS.parent / "tech" / "28nm.yaml").read_text())
    monkeypatch.chdir(tmp_path)  # the table is in the current folder, not beside the design
    with pytest.raises(ArchError) as caught:
        load_arch_with_set("atsn16x16", ["technology=mine.yaml"])
    text = str(caught.value)
    assert "technology table not found" in text and "\n" not in text
    assert f"read from the architecture file's folder, {(ARCHS / 'atsn16x16.yaml').resolve().parent}" in text
    assert text.endswith("(the value comes from --set technology=mine.yaml)")
    p = _write(tmp_path, _atsn_text().replace("technology: 28nm", "technology: /nonexistent/7nm.yaml"))
    with pytest.raises(ArchError) as caught:  # an absolute path: nothing to say about folders
        load_arch(p)
    assert "technology table not found" in str(caught.value) and "folder" not in str(caught.value)

def test_tech_path_relative_to_arch_file(tmp_path):
    tables = tmp_path / "tables"
    tables.mkdir()
    src = Path(load_arch(ARCHS / "atsn16x16.yaml").tech.path).read_text()
    (tables / "mine.yaml").write_text(src.replace("name: 28nm", "name: mine"))
    p = _write(tmp_path, _atsn_text().replace("technology: 28nm", "technology: tables/mine.yaml"))
    assert load_arch(p).tech.name == "mine"


@pytest.mark.parametrize("simulate", ["engine", "reference"])
def test_batch_and_dataflow_capacity_errors(simulate):
    """docs/microarchitecture.md 12.4: one line naming the field and the fix, from the engine and the reference."""
    from satasim_atsn.errors import MappingError
    from satasim_atsn.hw.engine import simulate as engine_simulate
    from satasim_atsn.hw.reference import simulate_reference
    from satasim_atsn.workload.synthetic import random_workload

    run = engine_simulate if simulate == "engine" else simulate_reference
    workload = random_workload(1, images=2, max_channels=4, size=4)
    too_many = load_arch(ARCHS / "atsn16x16.yaml", ["images_per_batch=100", "batch_refill=true"])
    with pytest.raises(MappingError, match=r"images_per_batch: 100 images need .* B of output membranes in the "
                                           r"exit unit, its 3072 B hold a 768 B table and those of \d+; "
                                           r"use images_per_batch <= \d+"):
        run(too_many, workload, 2)
    # section 3: a PE keeps one membrane per image of a batch for each of its neurons (512 in 1 KB of 16-bit words)
    no_room = load_arch(ARCHS / "conventional16x16.yaml", ["images_per_batch=513", "dataflow=layer_major",
                                                           "exit_unit.data_memory_bytes=16416"])
    with pytest.raises(MappingError, match=r"conventional16x16.yaml: images_per_batch: 513 images "
                                           r"need 513 membranes per PE, and 1024 B of PE data memory hold 512 16-bit "
                                           r"membranes; use images_per_batch <= 512 or raise pe.data_memory_bytes "
                                           r"to 1026$"):
        run(no_room, workload, 2)
    # the exit unit's output membranes do not fit either: one fix for both memories
    no_room = load_arch(ARCHS / "conventional16x16.yaml", ["images_per_batch=513", "dataflow=layer_major"])
    with pytest.raises(MappingError, match=r"use images_per_batch <= 96 or raise pe.data_memory_bytes to 1026 and "
                                           r"exit_unit.data_memory_bytes to 16416$"):
        run(no_room, workload, 2)
    # one membrane is one, not "1 16-bit membranes" (counted in the singular by both models)
    one_held = load_arch(ARCHS / "conventional16x16.yaml", ["images_per_batch=2", "pe.data_memory_bytes=2",
                                                            "dataflow=layer_major"])
    with pytest.raises(MappingError, match=r"2 images need 2 membranes per PE, and 2 B of PE data memory hold 1 "
                                           r"16-bit membrane; use images_per_batch <= 1 or raise "
                                           r"pe.data_memory_bytes to 4$"):
        run(one_held, workload, 2)
    # layer_major asks no more of the weight buffer than timestep_major: each fold's weights stay in the PE weight
    # memories for all T (section 12.4), so a 16 B staging buffer is slow but valid
    small = load_arch(ARCHS / "conventional16x16.yaml", ["dataflow=layer_major", "global_buffers.weight.bytes=16"])
    run(small, workload, 2)


def test_an_exit_unit_field_set_on_a_design_without_an_exit_unit_says_so():
    """It said 'exit_unit.kind: missing', a field the user never touched (fuzzing of own designs)."""
    design = ARCHS.parent / "examples" / "my_array12x12.yaml"
    with pytest.raises(ArchError, match=r"overrides: exit_unit.theta: this design has no exit unit \(array."
                                        r"exit_unit_tiles: 0 and no exit_unit section\), so the field acts on nothing"):
        load_arch(design, ["exit_unit.theta=0.2"])
    with pytest.raises(ArchError, match=r"exit_unit.kind: missing"):  # given a tile, the section needs its kind
        load_arch(design, ["exit_unit.theta=0.2", "array.exit_unit_tiles=1"])


# DESIGN.md section 5's sketch, verbatim: a design written from it must run
DESIGN_SKETCH = """\
name: atsn16x16
kind: atsn                 # conventional | dtsnn | atsn
technology: 28nm          # a bare name: the table shipped with the package; or a path relative to this file
clock_hz: 500e6
accelerators: 4            # independent instances; images are spread over them
array: {rows: 16, cols: 16, exit_unit_tiles: 1}      # 255 PEs + 1 AT unit
pe:
  input_spike_buffer_bytes: 128
  output_spike_buffer_bytes: 128
  data_memory_bytes: 1024
  adders: 1                # synaptic accumulations per cycle
  decay: shift_add         # shift_add | multiplier
  vmem_bits: 16
exit_unit:
  kind: at                 # at | dt | none
  data_memory_bytes: 3072
  exp_lut_entries: 256
  multipliers: 1
noc: {topology: mesh, link_bytes_per_cycle: 8, hop_cycles: 1}
global_buffers:            # SATA-Sim's defaults where the paper is silent
  weight: {bytes: 147456, banks: 2, bytes_per_cycle: 32}
  input:  {bytes: 32768, banks: 2, bytes_per_cycle: 32}
  output: {bytes: 32768, banks: 2, bytes_per_cycle: 32}
dram: {bytes_per_cycle: 16, latency_cycles: 100, energy_table_entry: dram_commodity}
dataflow: timestep_major   # needed for early exit: all layers at t, then decide, then t+1
"""


def test_the_design_sketch_loads_with_documented_defaults(tmp_path):
    """Exit-unit fields left out take the PE's (buffers, adders), 32-bit membranes and the kind's defaults
    (Table 4's CL_init = tau_CL = 0.999); dram_commodity is commodity DDR4. They used to be refused as missing."""
    arch = load_arch(_write(tmp_path, DESIGN_SKETCH))
    eu = arch.exit_unit
    assert (eu.input_spike_buffer_bytes, eu.output_spike_buffer_bytes, eu.adders, eu.vmem_bits) == (128, 128, 1, 32)
    assert (eu.exp_lut_entries, eu.cl_init, eu.tau_cl) == (256, 0.999, 0.999)
    assert arch.dram.energy_table_entry == "dram_ddr4"
    pe_wide = DESIGN_SKETCH.replace("  adders: 1                # synaptic", "  adders: 4                # synaptic")
    assert load_arch(_write(tmp_path, pe_wide, "b.yaml")).exit_unit.adders == 4
    dt = (DESIGN_SKETCH.replace("kind: atsn ", "kind: dtsnn ").replace("kind: at ", "kind: dt ")
          .replace("  exp_lut_entries: 256\n", "  data_memory_bytes: 7168\n", 1)
          .replace("  data_memory_bytes: 3072\n", ""))
    eu = load_arch(_write(tmp_path, dt, "c.yaml")).exit_unit
    assert (eu.lut_bytes, eu.divider_cycles, eu.theta) == (6144, 16, 0.1)
    given = DESIGN_SKETCH.replace("  multipliers: 1\n", "  multipliers: 1\n  adders: 2\n  cl_init: 0.9\n")
    eu = load_arch(_write(tmp_path, given, "d.yaml")).exit_unit
    assert (eu.adders, eu.cl_init) == (2, 0.9)


@pytest.mark.parametrize(("override", "pattern"), [
    ("pe.vmem_bits=3", r"pe.vmem_bits: must be >= 4, got 3; use a value of at least 4 \(the value comes from the "
                       r"overrides item pe.vmem_bits=3\)$"),
    ("array.rows=2000", r"array.rows: must be <= 1024, got 2000; use a value of at most 1024"),
    ("exit_unit.cl_init=0", r"exit_unit.cl_init: must be in \(0, 1\], got 0; give a value above 0 and at most 1"),
    ("dram.latency_cycles=-1", r"dram.latency_cycles: must be >= 0, got -1; use a value of at least 0"),
    ("pe.adders=0", r"pe.adders: must be positive, got 0; sizes, counts and rates cannot be zero or negative"),
    ("name=123", r'name: must be a non-empty text, got 123; write it in quotes, e.g. name: "my design"'),
    ("batch_refill=2", r"batch_refill: must be true or false, got 2; write true or false"),
])
def test_a_bound_or_type_error_says_how_to_fix_it(override, pattern):
    """A fuzzing helper found bound errors without a fix, and pe.vmem_bits=3 told to avoid zero or negatives."""
    with pytest.raises(ArchError, match=pattern):
        load_arch(ARCHS / "atsn16x16.yaml", [override])


def test_a_name_with_a_line_break_is_refused(tmp_path):
    """It split the compare report's heading; a tab stays allowed (its plots are named without it)."""
    path = _write(tmp_path, _atsn_text().replace("name: atsn16x16", 'name: "x\\ny"', 1))
    with pytest.raises(ArchError, match=r"name: must be one line of text, got 'x\\ny'; remove the line breaks"):
        load_arch(path)
    assert load_arch(_write(tmp_path, _atsn_text().replace("name: atsn16x16", 'name: "a\\tb"', 1), "t.yaml")).name


@pytest.mark.parametrize(("given", "needle"), [
    # compare and verify load their architectures here too: the fix names them, not run alone (session 34)
    ("workload", "is a workload (.npz), not an architecture YAML; give the architecture first, then the workload "
                 "(satasim run ARCH WORKLOAD, compare ARCH... WORKLOAD, verify ARCH [WORKLOAD])"),
    ("tech", "is a technology table (an architecture names it with technology: FILE), not an architecture"),
    ("network", "is a network file (satasim workload build --network FILE makes a workload of it)"),
    ("study", "is a study (satasim sweep runs it), not an architecture"),
    ("functional study", "is a study (satasim sweep runs it), not an architecture"),
    ("rate table", "is a rate table (satasim workload build --rates FILE uses it), not an architecture"),
])
def test_another_of_the_tools_files_given_as_an_architecture_is_named(given, needle):
    """`satasim run WORKLOAD ARCH` (swapped) said "cannot read ('utf-8' codec ...)"; a technology table or a network
    file said "format: unknown key"."""
    root = ARCHS.parent
    path = {"workload": root / "workloads" / "vgg_small_fmnist_atsn.npz",
            "tech": root / "satasim_atsn" / "data" / "tech" / "28nm.yaml",
            "network": root / "examples" / "my_net.yaml", "study": root / "studies" / "atsn_buffers.yaml",
            "functional study": root / "studies" / "atsn_exit_params.yaml",
            "rate table": root / "workloads" / "rates" / "vgg16.yaml"}[given]
    with pytest.raises(ArchError) as info:
        load_arch(path)
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_a_dram_part_with_a_bandwidth_but_no_background_power_is_refused(tmp_path):
    """A custom table that lost dram_lpddr4_background_power_mW ran with the DRAM's standby power at 0."""
    import yaml

    table = yaml.safe_load((ARCHS.parent / "satasim_atsn" / "data" / "tech" / "28nm.yaml").read_text())
    del table["entries"]["dram_lpddr4_background_power_mW"]
    (tmp_path / "t.yaml").write_text(yaml.safe_dump(table))
    arch = _write(tmp_path, _atsn_text().replace("technology: 28nm", "technology: t.yaml", 1))
    assert "technology: t.yaml" in arch.read_text()
    with pytest.raises(ArchError, match=r"entries.dram_lpddr4_background_power_mW: a DRAM part with a channel "
                                        r"bandwidth needs its background power"):
        load_arch(arch)


# ------------------------------------------------------------------------------------------
# the DRAM in time units (GB/s, ns), held whatever the clock
# ------------------------------------------------------------------------------------------
HELD_DRAM = ["dram.bandwidth_GB_per_s=8", "dram.latency_ns=200"]


@pytest.mark.parametrize(("clock", "per_cycle", "latency"), [
    (500e6, 16, 100),  # the shipped DRAM, spelt in time units: the same cycles
    (1e9, 8, 200), (250e6, 32, 50),
    (300e6, 26, 60),  # 8e9 / 3e8 = 26.67 B: rounded down; 200 ns x 0.3 GHz = 60 cycles exactly
    (333e6, 24, 67),  # 24.02 B down; 66.6 cycles up
])
def test_dram_in_time_units_is_held_whatever_the_clock(clock, per_cycle, latency):
    arch = load_arch(ARCHS / "atsn16x16.yaml", [*HELD_DRAM, f"clock_hz={clock}"])
    assert (arch.dram.bytes_per_cycle, arch.dram.latency_cycles) == (per_cycle, latency)
    assert (arch.dram.bandwidth_GB_per_s, arch.dram.latency_ns) == (8.0, 200.0)
    cycles = load_arch(ARCHS / "atsn16x16.yaml", [f"clock_hz={clock}"]).dram  # the file's cycles stay cycles
    assert (cycles.bytes_per_cycle, cycles.latency_cycles, cycles.bandwidth_GB_per_s) == (16, 100, None)


def test_dram_conversions_are_exact_in_the_decimals_written():
    """0.1 ns at 10 GHz is 1 cycle (a binary float product would be 1.0000000000000002 and round up to 2)."""
    arch = load_arch(ARCHS / "atsn16x16.yaml", ["dram.latency_ns=0.1", "clock_hz=1e10",
                                                "dram.bandwidth_GB_per_s=30"])
    assert (arch.dram.latency_cycles, arch.dram.bytes_per_cycle) == (1, 3)


def test_dram_in_time_units_from_a_file(tmp_path):
    text = _atsn_text()
    start = text.index("dram:")
    line = text[start:text.index("\n", start)]
    held = line.replace("bytes_per_cycle: 16", "bandwidth_GB_per_s: 8").replace("latency_cycles: 100",
                                                                                 "latency_ns: 200")
    assert held != line
    arch = load_arch(_write(tmp_path, text.replace(line, held)), ["clock_hz=1e9"])
    assert (arch.dram.bytes_per_cycle, arch.dram.latency_cycles) == (8, 200)
    both = held.replace("latency_ns: 200", "latency_ns: 200, latency_cycles: 100")
    with pytest.raises(ArchError, match=r"a.yaml: dram.latency_ns: and dram.latency_cycles are both given"):
        load_arch(_write(tmp_path, text.replace(line, both)))
    neither = held.replace("latency_ns: 200, ", "").replace(", latency_ns: 200", "").replace("latency_ns: 200", "")
    with pytest.raises(ArchError, match=r"a.yaml: dram.latency_cycles: missing; give dram.latency_cycles \(in "
                                        r"accelerator cycles\) or dram.latency_ns"):
        load_arch(_write(tmp_path, text.replace(line, neither)))


def test_dram_bandwidth_below_a_byte_per_cycle_is_refused():
    with pytest.raises(ArchError, match=r"dram.bandwidth_GB_per_s: 0.4 GB/s is less than one byte per cycle at "
                                        r"500 MHz; give at least 0.5 GB/s"):
        load_arch(ARCHS / "atsn16x16.yaml", ["dram.bandwidth_GB_per_s=0.4"])
    with pytest.raises(ArchError, match=r"both given"):  # two --set of one rate: nothing to choose between
        load_arch(ARCHS / "atsn16x16.yaml", ["dram.bandwidth_GB_per_s=8", "dram.bytes_per_cycle=16"])


def test_a_dram_rate_rounded_by_more_than_one_percent_is_noted():
    from satasim_atsn.hw.arch import dram_rounding_note

    held = load_arch(ARCHS / "atsn16x16.yaml", [*HELD_DRAM, "clock_hz=3e8"])  # 26.67 B -> 26; 60 cycles exactly
    assert dram_rounding_note(held) == ("note: dram: 8 GB/s is 26.67 B per cycle at 300 MHz and the model moves "
                                        "whole bytes: 26 B per cycle, 7.8 GB/s (docs/architecture.md, dram)")
    assert dram_rounding_note(load_arch(ARCHS / "atsn16x16.yaml", [*HELD_DRAM, "clock_hz=333e6"])) is None  # 0.1%
    assert dram_rounding_note(load_arch(ARCHS / "atsn16x16.yaml", ["clock_hz=3e8"])) is None  # given in cycles
    short = load_arch(ARCHS / "atsn16x16.yaml", ["dram.latency_ns=3", "clock_hz=5e8"])  # 1.5 cycles -> 2
    assert "3 ns is 1.5 cycles and the model waits whole cycles: 2, 4 ns" in dram_rounding_note(short)


def test_dram_hints_and_bounds_hold_after_conversion():
    """The smallest bandwidth named is rounded up (a value that would still be refused is no fix); a latency in ns
    that converts past latency_cycles' own bound is refused like the cycles would be."""
    with pytest.raises(ArchError, match=r"give at least 0\.333334 GB/s"):
        load_arch(ARCHS / "atsn16x16.yaml", ["clock_hz=333333333.3333333", "dram.bandwidth_GB_per_s=0.333333"])
    assert load_arch(ARCHS / "atsn16x16.yaml", ["clock_hz=333333333.3333333",
                                                "dram.bandwidth_GB_per_s=0.333334"]).dram.bytes_per_cycle == 1
    with pytest.raises(ArchError, match=r"dram\.latency_ns: 1e\+09 ns is more than 1000000000 cycles at 10000 MHz"):
        load_arch(ARCHS / "atsn16x16.yaml", ["clock_hz=1e10", "dram.latency_ns=1e9", "dram.bandwidth_GB_per_s=100"])


@pytest.mark.parametrize(("given", "fix"), [
    ("elsewhere/atsn16x16.yaml", "check the path; a shipped design is given by its bare name: atsn16x16$"),
    ("mine.yaml", r"check the path; a shipped design is given by its bare name \(atsn16x16, conventional16x16, "
                  r"dtsnn16x16\)$"),
])
def test_a_missing_architecture_file_names_the_shipped_designs_as_they_are_given(tmp_path, monkeypatch, given, fix):
    """The fix said 'shipped: archs/*.yaml', a folder of the checkout that a pip-installed satasim has not."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ArchError, match=rf"^{given}: architecture file not found; {fix}"):
        load_arch(given)
    assert load_arch("atsn16x16").name == "atsn16x16"  # the bare name the fix gives works from any folder


@pytest.mark.parametrize(("move", "message"), [
    (lambda d: d["pe"].update(clock_hz=5e8), r"pe.clock_hz: unknown key; it is clock_hz \(a top-level field\)"),
    (lambda d: d.update(vmem_bits=16), r": vmem_bits: unknown key; it is pe.vmem_bits or exit_unit.vmem_bits; move it"),
    (lambda d: d.update(rows=d["array"].pop("rows")), r": rows: unknown key; it is array.rows; move it there$"),
    (lambda d: d["exit_unit"].update(adc_bits=8), r"exit_unit.adc_bits: unknown key; it is pe.adc_bits; move it"),
    (lambda d: d["pe"].update(adderz=1), r"pe.adderz: unknown key; did you mean 'adders'\?$"),
], ids=["clock-under-pe", "vmem-at-top", "rows-at-top", "adc-under-exit-unit", "typo"])
def test_a_field_in_the_wrong_section_says_where_it_belongs(tmp_path, move, message):
    """It listed the section's valid keys, which do not include the field the user wrote correctly, one level off."""
    data = yaml.safe_load((ARCHS / "atsn16x16.yaml").read_text())
    move(data)
    path = tmp_path / "a.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ArchError, match=message):
        load_arch(path)


def test_a_set_of_a_field_in_the_wrong_section_says_which_path_it_has():
    with pytest.raises(ArchError, match=r"^overrides: pe.clock_hz: no such field; it is clock_hz \(a top-level "
                                        r"field\); "
                                        r"give that path"):
        load_arch(ARCHS / "atsn16x16.yaml", ["pe.clock_hz=1e9"])


@pytest.mark.parametrize("value, advice", [("-5e8", "use a value of at least 1000"),
                                           ("5", "check the exponent (a typo?)"),
                                           ("5e15", "check the exponent (a typo?)")])
def test_a_clock_out_of_range_is_called_a_typo_of_its_exponent_only_when_positive(value, advice):
    """`--set clock_hz=-5e8` was told to check the exponent, which is not what is wrong with it."""
    with pytest.raises(ArchError) as err:
        load_arch(ARCHS / "atsn16x16.yaml", [f"clock_hz={value}"])
    assert advice in str(err.value), str(err.value)


def test_a_section_check_names_the_set_values_inside_it():
    """`--set array.rows=1 --set array.cols=1` is refused by the array's own check (rows x cols leaves no PE tile),
    whose field is the section, not either value: the message named the file alone, which holds 16 x 16."""
    from satasim_atsn.hw.arch import load_arch, load_arch_with_set

    with pytest.raises(ArchError) as caught:
        load_arch_with_set("atsn16x16", ["array.rows=1", "array.cols=1", "pe.adders=2"])
    assert str(caught.value).endswith("leaves no tile for a PE beside 1 exit-unit tile; use at least 2 tiles "
                                      "(e.g. 16x16) (--set gave array.rows=1, array.cols=1)")
    with pytest.raises(ArchError) as caught:
        load_arch("atsn16x16", ["array.rows=1", "array.cols=1"])
    assert str(caught.value).endswith("(the overrides gave array.rows=1, array.cols=1)")


def test_a_directory_given_as_the_architecture_is_named_as_one(tmp_path):
    """'cannot read ([Errno 21] Is a directory: ...); give a UTF-8 YAML file' for `satasim run archs W`."""
    (tmp_path / "mine.yaml").write_text((ARCHS / "atsn16x16.yaml").read_text())
    with pytest.raises(ArchError, match=rf"^{tmp_path}: is a directory, not an architecture file; give one of its "
                       rf"files \(e\.g\. {tmp_path}/mine\.yaml\) or a shipped design's name \(atsn16x16, "):
        load_arch(tmp_path)
