"""hw/exit_units.py: one class per exit-unit kind, tied to the architectures and to the reference's own copy."""

from __future__ import annotations

from pathlib import Path

import pytest

from satasim_atsn.hw import reference
from satasim_atsn.hw.arch import load_arch
from satasim_atsn.hw.arch_fields import SCHEMA
from satasim_atsn.hw.exit_units import ACCELERATOR_EXIT_KIND, EXIT_UNITS
from satasim_atsn.snn.exit_policies import AtsnPolicy, DtsnnPolicy, FixedPolicy

ARCHS = Path(__file__).resolve().parent.parent / "archs"
SHIPPED = {"at": "atsn16x16.yaml", "dt": "dtsnn16x16.yaml", "none": "conventional16x16.yaml"}


def test_the_reference_witness_knows_exactly_the_registry_kinds():
    assert set(reference.DECIDE) == set(EXIT_UNITS) == set(SHIPPED)
    assert SCHEMA["exit_unit"]["kind"][0] == tuple(EXIT_UNITS)
    assert set(SCHEMA["kind"][0]) == set(ACCELERATOR_EXIT_KIND)


@pytest.mark.parametrize("kind", sorted(SHIPPED))
@pytest.mark.parametrize("classes", [2, 10, 100])
def test_registry_decision_equals_the_reference_literal_copy(kind, classes):
    arch = load_arch(ARCHS / SHIPPED[kind])
    eu = arch.exit_unit
    unit = EXIT_UNITS[kind]
    assert eu.unit is unit and arch.kind == unit.accelerator_kind
    if reference.DECIDE[kind] is None:
        assert unit.decide_cycles(eu, classes) == 0 and unit.decide_actions(eu, classes) == {}
    else:
        assert reference.DECIDE[kind](eu, classes) == (unit.decide_cycles(eu, classes),
                                                       unit.decide_actions(eu, classes))


def test_each_unit_implements_its_policy_with_the_shared_defaults():
    at, dt, none = (load_arch(ARCHS / SHIPPED[k]) for k in ("at", "dt", "none"))
    assert at.exit_policy().describe() == AtsnPolicy(at.exit_unit.cl_init, at.exit_unit.tau_cl, hardware=True,
                                                     lut_entries=at.exit_unit.exp_lut_entries).describe()
    assert isinstance(dt.exit_policy(), DtsnnPolicy) and isinstance(none.exit_policy(), FixedPolicy)
    # a study point without parameters gets the snn defaults
    assert EXIT_UNITS["at"].software_policy({}).describe() == AtsnPolicy().describe()
    assert EXIT_UNITS["dt"].software_policy({}).theta == DtsnnPolicy().theta
    assert EXIT_UNITS["at"].hardware_policy({"cl_init": 0.9}).cl_init == 0.9
    assert EXIT_UNITS["dt"].hardware_policy({}) is None


def test_table_bytes_and_policy_names():
    at = load_arch(ARCHS / SHIPPED["at"])
    assert at.exit_unit.exp_frac_bits == 23  # 24-bit words: 3 bytes
    assert EXIT_UNITS["at"].table_bytes(at.exit_unit) == at.exit_unit.exp_lut_entries * 3
    for bits, word in ((7, 1), (8, 2), (15, 2), (16, 3), (23, 3), (24, 4), (30, 4)):
        narrow = load_arch(ARCHS / SHIPPED["at"], [f"exit_unit.exp_frac_bits={bits}"])
        assert EXIT_UNITS["at"].table_bytes(narrow.exit_unit) == narrow.exit_unit.exp_lut_entries * word
        assert EXIT_UNITS["at"].lut_word_bits(narrow.exit_unit) == 8 * word
        assert EXIT_UNITS["at"].hardware_policy(narrow.exit_unit).frac_bits == bits
    assert {k: u.policy_name for k, u in EXIT_UNITS.items()} == {"at": "atsn", "dt": "dtsnn", "none": "fixed"}


@pytest.mark.parametrize("kind", sorted(SHIPPED))
def test_a_unit_decides_exactly_when_the_reference_has_a_decision(kind):
    """``decides`` (needs its own tile and an output layer, docs/microarchitecture.md section 11) follows the
    decision the reference writes out, and only a unit that never decides runs without an exit tile."""
    unit = EXIT_UNITS[kind]
    assert unit.decides == (reference.DECIDE[kind] is not None)
    arch = load_arch(ARCHS / SHIPPED[kind], [] if unit.decides else ["array.exit_unit_tiles=0"])
    assert arch.has_exit_unit == unit.decides


@pytest.mark.parametrize("sets, field", [((), "exit_unit.data_memory_bytes"),
                                         (("images_per_batch=4",), "images_per_batch")])
def test_a_unit_without_a_table_is_refused_without_a_0_b_table(sets, field):
    """The conventional output tile has no table: its refusals said '... and a 0 B table (8000 B needed)' and
    'its 3072 B hold a 0 B table and those of 3'; the AT unit's keep naming its 768 B table."""
    from satasim_atsn.errors import MappingError
    from satasim_atsn.hw.run_checks import check_mappable
    from satasim_atsn.workload.synthetic import random_workload

    workload = random_workload(5, images=1, size=6, residual=False, output_mode="membrane",
                               num_classes=100 if sets else 500)
    for name, shows_table in (("conventional16x16.yaml", False), ("atsn16x16.yaml", True)):
        arch = load_arch(ARCHS / name, sets)
        for check in (check_mappable, reference.simulate_reference):
            with pytest.raises(MappingError, match=field) as refusal:
                check(arch, workload)
            assert ("768 B table" in str(refusal.value)) == shows_table, str(refusal.value)
            assert " 0 B table" not in str(refusal.value)


def test_a_functional_study_point_may_set_the_at_units_fraction_bits():
    """exit_unit.exp_frac_bits is a functional study field: the point's hardware rule takes it (and 16 bits, as in
    the Fashion-MNIST measurement of workloads/README.md, round CL = 0.999 coarser than 23)."""
    from satasim_atsn.study.functional import policies_for
    from satasim_atsn.study.spec import FUNCTIONAL_FIELDS

    assert "exit_unit.exp_frac_bits" in FUNCTIONAL_FIELDS
    soft, hard = policies_for({"exit_unit.kind": "at", "exit_unit.exp_frac_bits": 16})
    assert hard.frac_bits == 16 and hard.hardware and not soft.hardware
    assert policies_for({"exit_unit.kind": "at"})[1].frac_bits == 23
    assert hard.cl_fixed(1) == round(0.999 * 2**16) and hard.lut[0] == 2**16
