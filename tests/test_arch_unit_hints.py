"""A field's unit in the messages about it: a key or value in another unit was told the field's name alone and moved
over unchanged, off by 10^6 or by 8 (clock_mhz: 500 -> clock_hz: 500; bandwidth 8e9 bytes/s for 8 GB/s), and a
second YAML document was told to look for a truncated file (audit, session 48)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from satasim_atsn.errors import ArchError
from satasim_atsn.hw.arch import load_arch
from satasim_atsn.hw.arch_files import ARCH_DIR

BASE = (ARCH_DIR / "atsn16x16.yaml").read_text(encoding="utf-8")


def _design(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mine.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(("old", "new", "needle"), [
    ("clock_hz: 500e6", "clock_mhz: 500",
     "clock_mhz: unknown key; did you mean 'clock_hz'? (its value in Hz: 500 MHz is 500e6)"),
    ("clock_hz: 500e6", "clock_hz: 500MHz",
     "clock_hz: must be a number, got '500MHz'; write a plain number in Hz: 500 MHz is 500e6"),
])
def test_a_key_or_value_in_another_unit_is_told_the_fields_unit(tmp_path, old, new, needle):
    assert old in BASE
    with pytest.raises(ArchError) as refused:
        load_arch(_design(tmp_path, BASE.replace(old, new)))
    assert str(refused.value).endswith(needle)


def test_set_paths_and_bounds_name_the_unit_and_a_mistyped_unit_is_not_told_its_own():
    with pytest.raises(ArchError, match=r"did you mean 'dram\.bandwidth_GB_per_s'\? \(its value in GB/s, bytes per "
                                        r"second / 1e9: 8 Gbit/s is 1\)$"):
        load_arch("atsn16x16", ["dram.bandwidth_gbps=8"])
    with pytest.raises(ArchError, match=r"must be <= 1e\+06, got '8e9'; check the exponent and the unit \(a typo\?\): "
                                        r"the value is in GB/s"):
        load_arch("atsn16x16", ["dram.bandwidth_GB_per_s=8e9"])
    with pytest.raises(ArchError) as refused:
        load_arch("atsn16x16", ["pe.vmem_bit=16"])
    assert str(refused.value).endswith("did you mean 'pe.vmem_bits'?")  # the same unit, a letter short
    assert load_arch("atsn16x16", ["clock_hz=500e6"]).clock_hz == 500e6  # the fix, followed


def test_a_file_of_two_yaml_documents_is_told_to_keep_one(tmp_path):
    with pytest.raises(ArchError) as refused:
        load_arch(_design(tmp_path, BASE + "---\n" + BASE))
    assert "keep one document per file: split it at line" in str(refused.value)
    assert "truncated" not in str(refused.value)
    assert yaml.safe_load(BASE)["name"] == "atsn16x16"
