"""The exit units' documented figures by hand: decision cycles and actions (docs/microarchitecture.md section 7
and section 9 note 7), the defaults a design may leave out (docs/architecture.md), and where a table fits.

Written from the documents, not from the code: the reference's literal copy guards the registry against one
edit, not against both drifting from the document together; and the defaults and fit limits had no test at
all (mutation testing, session 37).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from satasim_atsn.errors import ArchError
from satasim_atsn.hw.arch import load_arch
from satasim_atsn.hw.exit_units import EXIT_UNITS

ARCHS = Path(__file__).resolve().parent.parent / "archs"


@pytest.mark.parametrize("classes", [1, 10, 100])
def test_at_and_dt_decisions_take_the_documented_cycles_and_actions(classes):
    """at: 3C + 1 cycles; C + 1 compares, 2C + 1 multiplies, 2C LUT reads, 2C adds. dt: 5C + divider + 1 cycles;
    C + 1 compares, 4C LUT reads, 4C multiplies, 1 divide, 2C adds."""
    c = classes
    at = load_arch(ARCHS / "atsn16x16.yaml").exit_unit
    assert EXIT_UNITS["at"].decide_cycles(at, c) == 3 * c + 1
    assert EXIT_UNITS["at"].decide_actions(at, c) == {"exit_compares": c + 1, "exit_multiplies": 2 * c + 1,
                                                      "exit_lut_reads": 2 * c, "exit_decision_adds": 2 * c}
    dt = load_arch(ARCHS / "dtsnn16x16.yaml", ["exit_unit.divider_cycles=7"]).exit_unit
    assert EXIT_UNITS["dt"].decide_cycles(dt, c) == 5 * c + 7 + 1
    assert EXIT_UNITS["dt"].decide_actions(dt, c) == {"exit_compares": c + 1, "exit_multiplies": 4 * c,
                                                      "exit_lut_reads": 4 * c, "exit_divides": 1,
                                                      "exit_decision_adds": 2 * c}


def test_a_design_that_leaves_the_kind_fields_out_gets_the_documented_defaults():
    """dt: the paper's 6 KB table and a 16-cycle radix-4 divider; at: 256 three-byte LUT words, CL_init = tau_CL =
    0.999 (Table 4); the unit's policy carries them."""
    dt = load_arch(ARCHS / "dtsnn16x16.yaml", ["exit_unit.lut_bytes=null", "exit_unit.divider_cycles=null"])
    assert (dt.exit_unit.lut_bytes, dt.exit_unit.divider_cycles) == (6144, 16)
    assert EXIT_UNITS["dt"].decide_cycles(dt.exit_unit, 10) == 5 * 10 + 16 + 1
    at = load_arch(ARCHS / "atsn16x16.yaml", ["exit_unit.exp_lut_entries=null", "exit_unit.cl_init=null",
                                             "exit_unit.tau_cl=null", "exit_unit.exp_frac_bits=null"])
    eu = at.exit_unit
    assert (eu.exp_lut_entries, eu.exp_frac_bits, eu.cl_init, eu.tau_cl) == (256, 23, 0.999, 0.999)
    assert EXIT_UNITS["at"].table_bytes(eu) == 256 * 3  # 24-bit words
    policy = EXIT_UNITS["at"].hardware_policy({})  # a study point that names none of them
    assert (policy.lut_entries, policy.frac_bits, policy.cl_init, policy.tau_cl, policy.hardware) == (
        256, 23, 0.999, 0.999, True)
    given = EXIT_UNITS["at"].hardware_policy({"cl_init": 0.9, "tau_cl": 0.8})
    assert (given.cl_init, given.tau_cl) == (0.9, 0.8)


def test_a_table_that_exactly_fills_the_data_memory_fits_and_one_byte_more_does_not():
    """The AT unit's 256 x 3 B = 768 B table fits a 768 B memory (with 24 fraction bits, 4 B words: 1024 B); the DT
    unit's table may take its whole memory."""
    for bits, table in ((23, 768), (24, 1024)):
        sets = [f"exit_unit.exp_frac_bits={bits}", f"exit_unit.data_memory_bytes={table}"]
        assert load_arch(ARCHS / "atsn16x16.yaml", sets).exit_unit.data_memory_bytes == table
        with pytest.raises(ArchError, match=f"exit_unit.exp_lut_entries: 256 {table // 256}-byte entries"):
            load_arch(ARCHS / "atsn16x16.yaml", [sets[0], f"exit_unit.data_memory_bytes={table - 1}"])
    assert load_arch(ARCHS / "dtsnn16x16.yaml", ["exit_unit.lut_bytes=7168"]).exit_unit.lut_bytes == 7168
    with pytest.raises(ArchError, match="exit_unit.lut_bytes"):
        load_arch(ARCHS / "dtsnn16x16.yaml", ["exit_unit.lut_bytes=7169"])


def test_a_rule_unit_needs_one_multiplier_and_one_is_enough():
    for name in ("atsn16x16.yaml", "dtsnn16x16.yaml"):
        assert load_arch(ARCHS / name, ["exit_unit.multipliers=1"]).exit_unit.multipliers == 1
        with pytest.raises(ArchError, match="exit_unit.multipliers"):
            load_arch(ARCHS / name, ["exit_unit.multipliers=0"])
