"""An integer too large for a float (a run-away string of zeros in a YAML file or a --set) is a user's mistake:
every number field of an architecture, a tech override and a technology table entry refuses it as one ArchError
line naming the field, never an OverflowError traceback. Bad technology tables also say how to fix them."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from satasim_atsn.cli import main
from satasim_atsn.errors import ArchError
from satasim_atsn.hw.arch import load_arch
from satasim_atsn.hw.energy import energy_per_action_pJ
from satasim_atsn.hw.tech import TECH_DIR, load_tech

ARCH = Path(__file__).resolve().parent.parent / "archs" / "atsn16x16.yaml"
HUGE = "1" + "0" * 400  # YAML reads it as an int; float() of it overflows


@pytest.mark.parametrize(("override", "pattern"), [
    (f"clock_hz={HUGE}", r"clock_hz: must be <= 1e\+10, got 1000"),
    (f"clock_hz=-{HUGE}", r"clock_hz: must be >= 1000, got -1000"),
    (f"exit_unit.cl_init={HUGE}", r"exit_unit.cl_init: must be in \(0, 1\], got 1000"),
    (f"dram.latency_ns={HUGE}", r"dram.latency_ns: must be <= 1e\+09, got 1000"),
    (f"dram.bandwidth_GB_per_s={HUGE}", r"dram.bandwidth_GB_per_s: must be <= 1e\+06, got 1000"),
    (f"tech.add_16b_energy_pJ={HUGE}", r"tech.add_16b_energy_pJ: 1000.* energy_pJ is outside 0..1e\+09"),
], ids=["clock", "negative-clock", "cl_init", "latency_ns", "bandwidth", "tech-entry"])
def test_a_huge_integer_override_is_one_line_naming_the_field(override, pattern):
    with pytest.raises(ArchError, match=pattern) as info:
        load_arch(ARCH, [override])
    assert "\n" not in str(info.value) and len(str(info.value)) < 400


def test_a_huge_integer_in_the_file_is_refused(tmp_path):
    path = tmp_path / "a.yaml"
    path.write_text(ARCH.read_text().replace("clock_hz: 500e6", f"clock_hz: {HUGE}"))
    with pytest.raises(ArchError, match=r"a.yaml: clock_hz: must be <= 1e\+10"):
        load_arch(path)


def test_a_huge_integer_in_the_tech_section_is_refused(tmp_path):
    path = tmp_path / "a.yaml"
    path.write_text(ARCH.read_text() + f"\ntech: {{add_16b_energy_pJ: {HUGE}}}\n")
    with pytest.raises(ArchError, match=r"a.yaml: tech.add_16b_energy_pJ: 1000.* is outside"):
        load_arch(path)


def _table(tmp_path: Path, change) -> Path:
    data = yaml.safe_load((TECH_DIR / "28nm.yaml").read_text())
    change(data)
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_a_huge_integer_in_a_table_is_refused(tmp_path):
    path = _table(tmp_path, lambda d: d["entries"]["add_16b_energy_pJ"].update(value=int(HUGE)))
    with pytest.raises(ArchError, match=r"entries.add_16b_energy_pJ.value: 1000.* energy_pJ is outside 0..1e\+09"):
        load_tech(str(path))


def test_cli_huge_integer_one_line_exit_2(tmp_path, capsys):
    out = tmp_path / "r.json"
    with pytest.raises(SystemExit) as info:
        main(["run", str(ARCH), "workload-not-read.npz", "--set", f"clock_hz={HUGE}", "--json", str(out)])
    code, err = info.value.code, capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and "clock_hz: must be <=" in lines[0], err
    assert not out.exists()


@pytest.mark.parametrize(("change", "field"), [
    (lambda d: d.update(node_nm="28nm"), "node_nm"),
    (lambda d: d["entries"]["add_16b_energy_pJ"].update(value=-1.0), "entries.add_16b_energy_pJ.value"),
    (lambda d: d["entries"]["add_16b_energy_pJ"].update(node_nm=0), "entries.add_16b_energy_pJ.node_nm"),
    (lambda d: d["entries"]["add_16b_energy_pJ"].update(source=""), "entries.add_16b_energy_pJ.source"),
    (lambda d: d["entries"]["add_16b_energy_pJ"].update(scaling=3), "entries.add_16b_energy_pJ.scaling"),
    (lambda d: d["entries"].update(add_16b_energy_pJ=0.05), "entries.add_16b_energy_pJ"),
    (lambda d: d["entries"]["sram64_8KB_read_energy_pJ"].update(access_bits=0),
     "entries.sram64_8KB_read_energy_pJ.access_bits"),
])
def test_a_bad_table_says_how_to_fix_it(tmp_path, change, field):
    path = _table(tmp_path, change)
    with pytest.raises(ArchError) as info:
        load_tech(str(path))
    message = str(info.value)
    assert message.startswith(f"{path}: {field}: ") and "; " in message.split(f"{field}: ", 1)[1], message


def test_a_table_that_is_not_a_mapping_says_how_to_fix_it(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text("- 1\n")
    with pytest.raises(ArchError, match=r"must be a mapping with 'entries'; start from a copy of .*28nm.yaml"):
        load_tech(str(path))


@pytest.mark.parametrize(("entry", "field", "value", "pattern"), [
    ("sram64_8KB_read_energy_pJ", "access_bits", int(HUGE), r"access_bits: must be <= 65536, got 1000"),
    ("glb_32KB_read_energy_pJ", "access_bits", 2**17, r"access_bits: must be <= 65536, got 131072"),
    ("sram64_8KB_read_energy_pJ", "capacity_bytes", 2**41, r"capacity_bytes: must be <= 1099511627776"),
], ids=["huge-access", "wide-access", "huge-capacity"])
def test_an_sram_point_beyond_any_memory_is_refused_when_the_table_loads(tmp_path, entry, field, value, pattern):
    def change(data):
        for key, other in data["entries"].items():  # the whole family alike, so that only the bound refuses it
            if key.startswith(entry.split("_", 1)[0] + "_") and field in other:
                other[field] = value
    path = _table(tmp_path, change)
    with pytest.raises(ArchError, match=pattern):
        load_tech(str(path))


def test_sram_points_of_different_widths_name_the_entry_and_the_fix(tmp_path):
    path = _table(tmp_path, lambda d: d["entries"]["glb_32KB_read_energy_pJ"].update(access_bits=128))
    arch = load_arch(ARCH, [f"technology={path}", "global_buffers.input.bytes=65536"])
    with pytest.raises(ArchError, match=r"entries.glb_32KB_read_energy_pJ.access_bits: 128 bits, but glb_144KB .*"
                                        r"gives 256, and a 65,536 B memory is interpolated between the two; "
                                        r"give every glb point one access_bits"):
        energy_per_action_pJ(arch)




HUGE_FLOAT = HUGE + ".0"  # YAML reads it as a float: inf


@pytest.mark.parametrize(("line", "written", "pattern"), [
    ("clock_hz: 500e6", f"clock_hz: {HUGE_FLOAT}", r"clock_hz: must be <= 1e\+10, got 10{19}\.\.\. \(401 digits\)\.0"),
    ("clock_hz: 500e6", f"clock_hz: -{HUGE_FLOAT}", r"clock_hz: must be >= 1000, got -10{19}\.\.\. \(401 digits\)"),
    ("clock_hz: 500e6", "clock_hz: 1e400", r"clock_hz: must be <= 1e\+10, got 1e400"),
    ("accelerators: 4 ", f"accelerators: {HUGE_FLOAT} ", r"accelerators: must be <= 1024, got 10{19}\.\.\."),
    ("cl_init: 0.999 ", f"cl_init: {HUGE_FLOAT} ", r"exit_unit.cl_init: must be in \(0, 1\], got 10{19}\.\.\."),
], ids=["clock", "negative-clock", "exponent-text", "int-field", "fraction"])
def test_a_float_beyond_a_floats_range_in_the_file_is_shown_as_written(tmp_path, line, written, pattern):
    path = tmp_path / "a.yaml"
    path.write_text(ARCH.read_text().replace(line, written, 1))
    for _ in range(2):  # the second load comes from the parsed-text cache (a deep copy keeps the written text)
        with pytest.raises(ArchError, match=pattern) as info:
            load_arch(path)
        assert "inf" not in str(info.value) and "\n" not in str(info.value)


def test_a_float_beyond_a_floats_range_in_the_tech_section_and_table_is_shown_as_written(tmp_path):
    path = tmp_path / "a.yaml"
    path.write_text(ARCH.read_text() + f"\ntech: {{add_16b_energy_pJ: {HUGE_FLOAT}}}\n")
    with pytest.raises(ArchError, match=r"tech.add_16b_energy_pJ: 10{19}\.\.\. \(401 digits\)\.0 energy_pJ is outside"):
        load_arch(path)
    table = tmp_path / "t.yaml"
    table.write_text((TECH_DIR / "28nm.yaml").read_text().replace("value: 0.0255", f"value: {HUGE_FLOAT}", 1))
    with pytest.raises(ArchError, match=r"16b_energy_pJ.value: 10{19}\.\.\. \(401 digits\)\.0 energy_pJ is outside"):
        load_tech(str(table))


def test_a_spelt_infinity_is_still_not_a_number(tmp_path):
    path = tmp_path / "a.yaml"
    path.write_text(ARCH.read_text().replace("clock_hz: 500e6", "clock_hz: .inf"))
    with pytest.raises(ArchError, match=r"clock_hz: must be a number, got inf; write a plain number"):
        load_arch(path)
