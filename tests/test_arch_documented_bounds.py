"""hw/arch.py against docs/architecture.md's bounds, written out here (not read from SCHEMA): a value at a
documented bound loads, one step beyond is refused in one line naming the file, the field and the bound."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from cli_helpers import one_line_error

from satasim_atsn.errors import ArchError
from satasim_atsn.hw.arch import load_arch

ARCHS = Path(__file__).resolve().parent.parent / "archs"

# (design, field, largest value docs/architecture.md admits): "Types and ranges" and the field table
DOCUMENTED_MAXIMA = [
    ("atsn16x16", "accelerators", 1024),
    ("atsn16x16", "array.rows", 1024),
    ("atsn16x16", "array.cols", 1024),
    ("atsn16x16", "global_buffers.weight.banks", 1024),
    ("atsn16x16", "images_per_batch", 4096),
    ("atsn16x16", "spike_address_bytes", 8),
    ("atsn16x16", "pe.data_memory_bytes", 2**40),
    ("atsn16x16", "global_buffers.input.bytes", 2**40),
    ("atsn16x16", "noc.link_bytes_per_cycle", 2**20),
    ("atsn16x16", "global_buffers.output.bytes_per_cycle", 2**20),
    ("atsn16x16", "dram.bytes_per_cycle", 2**20),
    ("atsn16x16", "pe.adders", 2**16),
    ("atsn16x16", "exit_unit.multipliers", 2**16),
    ("atsn16x16", "pe.vmem_bits", 64),
    ("atsn16x16", "exit_unit.vmem_bits", 64),
    ("dtsnn16x16", "pe.adc_bits", 16),
    ("dtsnn16x16", "pe.adc_cycles_per_conversion", 10**6),
    ("dtsnn16x16", "exit_unit.divider_cycles", 10**6),
    ("atsn16x16", "noc.hop_cycles", 10**6),
    ("atsn16x16", "dram.latency_cycles", 10**9),
]


def _design_with(tmp_path: Path, design: str, field: str, value: int) -> Path:
    """The shipped design with one field changed, as a user's own file (its technology given by name)."""
    raw = yaml.safe_load((ARCHS / f"{design}.yaml").read_text(encoding="utf-8"))
    node = raw
    *sections, key = field.split(".")
    for part in sections:
        node = node[part]
    node[key] = value
    path = tmp_path / f"{design}_{field.replace('.', '_')}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


@pytest.mark.parametrize("design,field,most", DOCUMENTED_MAXIMA, ids=[f"{f}={m}" for _, f, m in DOCUMENTED_MAXIMA])
def test_a_documented_upper_bound_loads_and_one_past_it_is_refused(tmp_path, design, field, most):
    arch = load_arch(_design_with(tmp_path, design, field, most))
    node = arch
    for part in field.split("."):
        node = getattr(node, part)
    assert node == most
    path = _design_with(tmp_path, design, field, most + 1)
    with pytest.raises(ArchError) as info:
        load_arch(path)
    text = str(info.value)
    assert text.startswith(f"{path}: {field}: must be <= {most}, got {most + 1};"), text
    assert "\n" not in text


def test_a_batch_past_its_documented_bound_is_one_line_with_exit_code_2(tmp_path, workload_path, capsys):
    path = _design_with(tmp_path, "atsn16x16", "images_per_batch", 4097)
    line = one_line_error(["run", str(path), str(workload_path), "--images", "2"], capsys)
    assert f"{path}: images_per_batch: must be <= 4096, got 4097" in line, line


# fields the table bounds by spike_address_bytes ("int >= `spike_address_bytes`")
AT_LEAST_ONE_SPIKE = ["noc.link_bytes_per_cycle", "pe.input_spike_buffer_bytes", "pe.output_spike_buffer_bytes",
                      "exit_unit.input_spike_buffer_bytes", "exit_unit.output_spike_buffer_bytes"]


@pytest.mark.parametrize("field", AT_LEAST_ONE_SPIKE)
def test_a_width_of_exactly_one_spike_address_loads_and_one_byte_less_is_refused(tmp_path, field):
    spike = load_arch(ARCHS / "atsn16x16.yaml").spike_address_bytes
    arch = load_arch(_design_with(tmp_path, "atsn16x16", field, spike))
    if field == "noc.link_bytes_per_cycle":
        assert arch.spikes_per_cycle == 1
    path = _design_with(tmp_path, "atsn16x16", field, spike - 1)
    with pytest.raises(ArchError) as info:
        load_arch(path)
    assert str(info.value).startswith(f"{path}: {field}: {spike - 1} B "), str(info.value)
    assert f">= spike_address_bytes ({spike})" in str(info.value)


def test_a_pe_memory_of_one_membrane_loads_and_a_smaller_one_is_refused(tmp_path):
    """pe.data_memory_bytes x 8 must hold one pe.vmem_bits membrane (docs/architecture.md, 'Consistency rules')."""
    one = _design_with(tmp_path, "atsn16x16", "pe.data_memory_bytes", 2)  # 16 bits: one 16-bit membrane
    assert load_arch(one, ["pe.vmem_bits=16"]).pe_capacity_neurons == 1
    with pytest.raises(ArchError) as info:
        load_arch(one, ["pe.vmem_bits=17"])
    assert str(info.value).startswith(f"{one}: pe.data_memory_bytes: 2 B cannot hold one 17-bit membrane;"), \
        str(info.value)


def test_exit_unit_tiles_is_0_or_1_as_documented(tmp_path):
    for tiles in (0, 1):
        arch = load_arch(ARCHS / "conventional16x16.yaml", [f"array.exit_unit_tiles={tiles}"])
        assert arch.array.exit_unit_tiles == tiles and arch.num_pes == 256 - tiles
    path = _design_with(tmp_path, "atsn16x16", "array.exit_unit_tiles", 2)
    with pytest.raises(ArchError) as info:
        load_arch(path)
    assert str(info.value).startswith(f"{path}: array.exit_unit_tiles: 2 exit units per accelerator are not "
                                      "modelled;"), str(info.value)


def test_a_dram_bandwidth_in_gb_per_s_is_bounded_by_the_documented_bytes_per_cycle(tmp_path):
    """dram.bandwidth_GB_per_s becomes floor(GB/s x 10^9 / clock_hz) bytes per cycle, <= 2^20 as bytes_per_cycle."""
    clock = load_arch(ARCHS / "atsn16x16.yaml").clock_hz
    most = 2**20 * clock / 1e9  # GB/s of exactly 2^20 bytes per cycle
    near = _design_with(tmp_path, "atsn16x16", "dram.bandwidth_GB_per_s", most + 0.4 * clock / 1e9)
    assert load_arch(near, ["dram.bytes_per_cycle=null"]).dram.bytes_per_cycle == 2**20
    past = _design_with(tmp_path, "atsn16x16", "dram.bandwidth_GB_per_s", most + clock / 1e9)
    with pytest.raises(ArchError) as info:
        load_arch(past, ["dram.bytes_per_cycle=null"])
    assert str(info.value).startswith(f"{past}: dram.bandwidth_GB_per_s: "), str(info.value)
    assert f"more than {2**20} bytes per cycle" in str(info.value)
