"""Exit thresholds near 1 are shown with all their digits: ``:g`` wrote 0.9999999 as ``1``, so an error said
"must be in (0, 1], got 1", evaluate's settings line said CL_init 1, and run's note suggested
``--set exit_unit.cl_init=1``, a different threshold from the workload's own."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from satasim_atsn.cli import main
from satasim_atsn.errors import SatasimError, shown_number
from satasim_atsn.snn.exit_policies import ATSN_FRAC_BITS, AtsnPolicy, DtsnnPolicy
from satasim_atsn.train.evaluation import format_table
from satasim_atsn.workload.format import write_workload
from satasim_atsn.workload.synthetic import random_workload

ARCH = str(Path(__file__).resolve().parent.parent / "archs" / "atsn16x16.yaml")
SMALL = ["--set", "array.rows=2", "--set", "array.cols=3", "--set", "accelerators=2"]


@pytest.mark.parametrize("value", [0.9999999, 0.9999995, 1.0000001, 0.12345678, 1e-320, 0.999, 0.5, 1.0, 0.0])
def test_a_shown_number_reads_back_as_the_same_float(value):
    assert float(shown_number(value)) == value


def test_short_numbers_keep_their_short_spelling():
    assert [shown_number(v) for v in (0.999, 0.1, 1.0, 0.0, 0.95)] == ["0.999", "0.1", "1", "0", "0.95"]


@pytest.mark.parametrize(("make", "shown"), [
    (lambda: AtsnPolicy(cl_init=1.0000001), "--cl-init: must be in (0, 1], got 1.0000001"),
    (lambda: AtsnPolicy(tau_cl=1.0000001), "--tau-cl: must be in (0, 1], got 1.0000001"),
    (lambda: DtsnnPolicy(theta=1.0000001), "--theta: must be in (0, 1], got 1.0000001"),
])
def test_an_out_of_range_threshold_just_above_1_is_not_shown_as_1(make, shown):
    with pytest.raises(SatasimError) as info:
        make()
    assert shown in str(info.value)


def test_evaluates_settings_line_shows_every_digit():
    table = {"policy_params": {"cl_init": 0.9999999, "tau_cl": 0.9999995, "theta": 0.12345678}}
    assert "exit settings: ATSN CL_init 0.9999999, tau_CL 0.9999995; DTSNN theta 0.12345678" in format_table(table)


def test_runs_note_suggests_the_workloads_own_thresholds_exactly(tmp_path, capsys):
    """The suggested --set, applied, runs the workload's own thresholds: the note is gone."""
    workload = random_workload(21, images=4)
    workload.meta["exit_policy"] = {"cl_init": 0.9999999, "tau_cl": 0.9999995, "theta": 0.3}
    path = tmp_path / "near_one.npz"
    write_workload(path, workload)
    with pytest.raises(SystemExit) as info:
        main(["run", ARCH, str(path), *SMALL])
    err = capsys.readouterr().err
    assert info.value.code == 0, err
    suggested = "--set exit_unit.cl_init=0.9999999 --set exit_unit.tau_cl=0.9999995"
    assert "the workload's own cl_init 0.9999999, tau_cl 0.9999995" in err and suggested in err
    with pytest.raises(SystemExit) as info:
        main(["run", ARCH, str(path), *SMALL, *suggested.split()])
    err = capsys.readouterr().err
    assert info.value.code == 0 and "the exit unit decides with" not in err


def _run_notes(path, capsys, *sets):
    argv = ["run", ARCH, str(path), *SMALL]
    for text in sets:
        argv += ["--set", text]
    with pytest.raises(SystemExit) as info:
        main(argv)
    err = capsys.readouterr().err
    assert info.value.code == 0, err
    return err


def test_run_says_when_cl_t_rounds_to_1_in_the_at_units_fraction_bits(tmp_path, capsys):
    """CL_t >= 1 - 2^-(f+1) is 1 in the AT unit's f fraction bits: the hardware rule never exits there, the float
    rule may (CL_1 = 1 - eps/3 vs a max softmax of 1 - 2e-9 below). The note names the steps; CL_init = 1 (never
    exit) is no surprise."""
    bits = ATSN_FRAC_BITS
    eps = 2.0 ** -(bits + 1)
    cl_init, tau_cl = repr(1 - eps / 3), repr(1 - 0.4 * eps)  # CL_2 = 1 - 0.73 eps rounds to 1, CL_3 = 1 - 1.13 eps not
    policy = AtsnPolicy(float(cl_init), float(tau_cl), hardware=True)
    membranes = np.array([[20, 0]])
    assert not policy.decide(1, 4, membranes * 1.0, membranes, 1.0)
    assert AtsnPolicy(float(cl_init), float(tau_cl)).decide(1, 4, membranes * 1.0)
    path = tmp_path / "wl.npz"
    write_workload(path, random_workload(21, images=4, timesteps=4))
    err = _run_notes(path, capsys, f"exit_unit.cl_init={cl_init}", f"exit_unit.tau_cl={tau_cl}")
    assert f"CL_t rounds to 1 in the AT unit's {bits} fraction bits at t = 1..2, so no image exits there" in err
    assert f"(CL_t is told from 1 only below 1 - 2^-{bits + 1} = {shown_number(1 - eps)})" in err  # round to nearest
    # the width is the design's: with exp_frac_bits 30 the same CL_t are told from 1
    assert "rounds to 1" not in _run_notes(path, capsys, f"exit_unit.cl_init={cl_init}", f"exit_unit.tau_cl={tau_cl}",
                                           "exit_unit.exp_frac_bits=30")
    # CL_t stuck at 1 at every step: at t = T every image exits anyway, so the note names t = 1..T-1 alone
    err = _run_notes(path, capsys, f"exit_unit.cl_init={cl_init}", "exit_unit.tau_cl=1")
    assert "at t = 1..3, so no image exits there" in err
    for sets in (["exit_unit.cl_init=1", "exit_unit.tau_cl=1"], ["exit_unit.cl_init=0.9999995"]):
        assert "rounds to 1" not in _run_notes(path, capsys, *sets)


def test_the_exit_table_notes_are_not_given_for_a_statistical_workload():
    """A statistical workload's exits are drawn from its histograms, not decided by the AT unit's fixed-point rule or
    its exp table: the rounding and table notes, true of a trained workload, do not apply to it."""
    from satasim_atsn.hw.arch import load_arch
    from satasim_atsn.hw.notes import exit_table_note
    from satasim_atsn.workload.format import read_workload

    sets = ["exit_unit.cl_init=0.9999999", "exit_unit.tau_cl=0.9999998", "exit_unit.exp_lut_entries=64",
            "exit_unit.exp_frac_bits=20"]
    arch = load_arch(ARCH, sets)
    note = exit_table_note(arch, random_workload(21, images=4, timesteps=4))
    assert note is not None and "rounds to 1" in note and "exp_lut_entries is 64" in note
    statistical = read_workload(Path(ARCH).parent.parent / "workloads" / "assumed" / "vgg16_cifar10.npz")
    assert statistical.is_statistical and statistical.timesteps == 4
    assert exit_table_note(arch, statistical) is None


def test_run_says_when_its_exp_table_is_not_the_one_evaluate_models(tmp_path, capsys):
    path = tmp_path / "wl.npz"
    write_workload(path, random_workload(21, images=4))
    err = _run_notes(path, capsys, "exit_unit.exp_lut_entries=64")
    assert ("exit_unit.exp_lut_entries is 64, and satasim evaluate's hardware LUT line models the 256-entry table "
            f"with {ATSN_FRAC_BITS} fraction bits") in err
    assert "exp_lut_entries" not in _run_notes(path, capsys)
    err = _run_notes(path, capsys, "exit_unit.exp_lut_entries=64", "exit_unit.exp_frac_bits=16")
    assert "exit_unit.exp_lut_entries is 64 and exit_unit.exp_frac_bits is 16, and satasim evaluate's" in err
    assert "(satasim evaluate --lut-entries 64 --exp-frac-bits 16 models this unit)" in err
    assert "exp_frac_bits is 20, and" in _run_notes(path, capsys, "exit_unit.exp_frac_bits=20")


def test_evaluate_models_the_lut_of_the_design_it_is_given(tmp_path, capsys):
    """`satasim run` on a design whose AT unit is not evaluate's default names the evaluate options that model it;
    with them, evaluate's hardware line is that unit's rule (the exits `run` takes), and says which it is."""
    from satasim_atsn.hw.arch import load_arch
    from satasim_atsn.snn.forward import run_forward
    from satasim_atsn.workload.format import read_workload

    path = tmp_path / "wl.npz"
    write_workload(path, random_workload(21, images=48, timesteps=4))
    out = tmp_path / "eval.json"
    with pytest.raises(SystemExit) as info:
        main(["evaluate", str(path), "--cl-init", "0.9", "--tau-cl", "1", "--lut-entries", "16",
              "--exp-frac-bits", "6", "--json", str(out), "-q"])
    assert info.value.code == 0
    printed = capsys.readouterr().out
    assert "hardware LUT exit (16 entries, 6 fraction bits) == float rule on" in printed
    import json

    table = json.loads(out.read_text())
    design = load_arch(ARCH, ["exit_unit.exp_lut_entries=16", "exit_unit.exp_frac_bits=6", "exit_unit.cl_init=0.9",
                              "exit_unit.tau_cl=1"])
    policy = design.exit_policy()
    assert (policy.lut_entries, policy.frac_bits) == (16, 6) == (table["atsn_hw"]["lut_entries"],
                                                                 table["atsn_hw"]["frac_bits"])
    full = run_forward(read_workload(path))
    steps = policy.exit_steps(full.logits, full.out_membrane, full.scale_per_t)
    assert table["atsn_hw"]["avg_timestep"] == pytest.approx(steps.mean(), abs=1e-6)
    default = AtsnPolicy(0.9, 1.0, hardware=True).exit_steps(full.logits, full.out_membrane, full.scale_per_t)
    assert (steps != default).sum() == 4  # 16 entries and 6 bits decide 4 of 48 otherwise: the options matter
    for option, value, bounds in (("--exp-frac-bits", "31", "4..30"), ("--lut-entries", "1", "2..1048576")):
        with pytest.raises(SystemExit) as info:
            main(["evaluate", str(path), option, value])
        assert info.value.code == 2
        assert f"{option}: must be {bounds}, got {value}" in capsys.readouterr().err
