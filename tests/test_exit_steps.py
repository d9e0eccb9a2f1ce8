"""Exit steps paired with the row profiles (``exit_steps/<policy>``, docs/statistical.md step 2): a twin keeps each
fitted image's exit step under each policy, and twin image i exits at image (i mod M)'s step, the image whose row
profiles it draws, instead of drawing one from the histogram."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from twin_helpers import run_cli, with_arrays

from satasim_atsn.errors import WorkloadError
from satasim_atsn.hw.arch import load_arch
from satasim_atsn.hw.engine import simulate
from satasim_atsn.snn.exit_policies import FixedPolicy
from satasim_atsn.snn.forward import run_forward
from satasim_atsn.traces.exit_histograms import DRAW_ORDER_FIRST
from satasim_atsn.traces.statistical_draw import draw_exit_steps, draw_trace
from satasim_atsn.traces.twin_fit import fit_statistical_twin, twin_policies
from satasim_atsn.workload.format import read_workload, validate, write_workload
from satasim_atsn.workload.schema import grid_histogram
from satasim_atsn.workload.synthetic import random_workload

ROOT = Path(__file__).resolve().parents[1]
ARCH = ROOT / "archs" / "atsn16x16.yaml"
IMAGES = 16
T = 6


def _trained():
    """A random trained workload (direct images, a rated max-pool) whose images exit at t = 1..4 under dtsnn/atsn."""
    return random_workload(3, images=IMAGES, timesteps=T, size=8, output_mode="membrane")


def _real_steps(wl) -> dict[str, np.ndarray]:
    """Each image's exit step under each policy, from one full-T forward (as the fit computes them)."""
    result = run_forward(wl, wl.inputs(), policy=FixedPolicy(), record_spikes=False)
    return {p: policy.exit_steps(result.logits, result.out_membrane, result.scale_per_t)
            for p, policy in twin_policies(wl).items()}


def _with(wl, **arrays):
    """A copy of ``wl`` (source steps.npz) with ``arrays`` added (a value of None removes the key), not validated."""
    return with_arrays(wl, "steps.npz", **arrays)


def _without_exit_steps(twin):
    return _with(twin, **{key.replace("/", "__"): None for key in twin.arrays if key.startswith("exit_steps/")})


@pytest.fixture(scope="module")
def twin():
    return fit_statistical_twin(_trained(), rates_policy="atsn")


# ------------------------------------------------------------------------------------------
# the fit and the draw
# ------------------------------------------------------------------------------------------
def test_a_twin_keeps_each_fitted_images_exit_steps(twin):
    real = _real_steps(_trained())
    assert len(set(real["atsn"].tolist())) > 2  # the images exit at different steps
    for p in DRAW_ORDER_FIRST:
        steps = twin.arrays[f"exit_steps/{p}"]
        assert steps.dtype == np.uint16 and steps.shape == (IMAGES,)
        np.testing.assert_array_equal(steps, real[p])
        assert np.array_equal(twin.arrays[f"exit_hist/{p}"], grid_histogram(np.bincount(real[p] - 1, minlength=T)))


def test_twin_image_i_exits_at_image_i_mod_m_with_its_profiles(twin):
    real = _real_steps(_trained())
    doubled = _with(twin)
    doubled.meta["num_images"] = 2 * IMAGES  # images M..2M-1 take profiles (and exits) 0..M-1 again
    drawn = draw_exit_steps(validate(doubled))
    for p in DRAW_ORDER_FIRST:
        np.testing.assert_array_equal(drawn[p], np.tile(real[p], 2))
        trace = draw_trace(doubled, p, 3, 2 * IMAGES - 3)
        np.testing.assert_array_equal(trace.exit_t, np.tile(real[p], 2)[3:])
    # the histogram draw would not give these steps: the pairing is what the twin draws
    assert not all(np.array_equal(draw_exit_steps(_without_exit_steps(twin))[p], real[p]) for p in ("dtsnn", "atsn"))


def test_paired_exits_keep_the_uniforms_and_the_prefixes(twin):
    """The exit uniforms are drawn as before, so the spikes are today's (fixed T: every step is T either way), and
    an image's spikes under a policy are the first exit-step timesteps of its fixed-T run."""
    plain = _without_exit_steps(twin)
    full, before = draw_trace(twin, "fixed", 0, IMAGES), draw_trace(plain, "fixed", 0, IMAGES)
    np.testing.assert_array_equal(full.inputs, before.inputs)
    for name in full.spikes:
        np.testing.assert_array_equal(full.spikes[name], before.spikes[name], err_msg=name)
    for p in ("dtsnn", "atsn"):
        early = draw_trace(twin, p, 0, IMAGES)
        np.testing.assert_array_equal(early.inputs, full.inputs)
        for i, e in enumerate(early.exit_t):
            for name in full.spikes:
                np.testing.assert_array_equal(early.spikes[name][i, :e], full.spikes[name][i, :e], err_msg=name)
                assert not early.spikes[name][i, e:].any()


def test_twins_without_row_profiles_still_carry_exit_steps_unless_asked_not_to():
    """A spike-frame CNN whose pool does not tile its map has no row profile: its exits were drawn from the
    histogram (mean timestep 1.000 against the trained 1.167, -7.5% in cycles); the steps give M themselves."""
    trained = _trained()
    bare = fit_statistical_twin(trained, input_rows=False, spike_rows=False)
    assert bare.arrays["exit_steps/atsn"].shape == (IMAGES,)
    assert draw_exit_steps(bare)["atsn"].tolist() == bare.arrays["exit_steps/atsn"].tolist()
    same = fit_statistical_twin(trained, input_rows=False, spike_rows=False, exit_steps=False)
    assert not any(key.startswith("exit_steps/") for key in same.arrays)
    assert {k for k in bare.arrays if not k.startswith("exit_steps/")} == set(same.arrays)
    unpaired = fit_statistical_twin(trained, exit_steps=False)
    assert not any(key.startswith("exit_steps/") for key in unpaired.arrays)
    rows_only = fit_statistical_twin(trained, input_rows=False)  # the spike rows alone give M
    assert rows_only.arrays["exit_steps/atsn"].shape == (IMAGES,)
    # `workload info` of such a twin read M from the row profiles it does not have: a TypeError (audit, session 48)
    from satasim_atsn.traces.commands import workload_summary

    assert workload_summary(bare)["exit_steps"] == {"images": IMAGES, "policies": list(DRAW_ORDER_FIRST)}


def test_the_twins_mean_timestep_and_exits_per_t_are_the_trained_ones(twin, tmp_path):
    design = tmp_path / "atsn_at_the_workloads_thresholds.yaml"  # the thresholds the twin is fitted at
    design.write_text(ARCH.read_text().replace("cl_init: 0.999", "cl_init: 0.9").replace("tau_cl: 0.999",
                                                                                          "tau_cl: 0.95"))
    arch = load_arch(design)
    trained = simulate(arch, _trained(), images=IMAGES).metrics()
    ours = simulate(arch, twin, images=IMAGES).metrics()
    assert ours["avg_timestep"] == trained["avg_timestep"]
    assert ours["exit_histogram"] == trained["exit_histogram"]
    unpaired = simulate(arch, _without_exit_steps(twin), images=IMAGES).metrics()
    assert unpaired["avg_timestep"] != trained["avg_timestep"]  # a sample of the histogram


# ------------------------------------------------------------------------------------------
# the reader
# ------------------------------------------------------------------------------------------
def _refused(wl, message: str, field: str, **arrays) -> None:
    with pytest.raises(WorkloadError, match=r"steps\.npz.*" + re.escape(field) + r": .*" + re.escape(message)):
        validate(_with(wl, **arrays))


def test_reader_refuses_bad_exit_steps(twin):
    steps = twin.arrays["exit_steps/atsn"]
    no_rows = {key.replace("/", "__"): None for key in twin.arrays
               if key.startswith("spike_rows/") or key == "input_row_bits"}
    _refused(twin, "has no exit_hist/slow: the steps pair each fitted image's exit with its row profiles",
             "exit_steps/slow", exit_steps__slow=steps)
    _refused(twin, "add exit_hist/slow (satasim workload stats writes both), or remove exit_steps/slow",
             "exit_steps/slow", exit_steps__slow=steps)
    validate(_with(twin, **no_rows))  # without row profiles the steps give M themselves
    _refused(twin, f"has shape [{IMAGES - 1}], but exit_steps/atsn holds {IMAGES} images", "exit_steps/dtsnn",
             exit_steps__dtsnn=twin.arrays["exit_steps/dtsnn"][1:], **no_rows)
    _refused(twin, "has dtype float64", "exit_steps/atsn", exit_steps__atsn=steps.astype(np.float64))
    _refused(twin, f"has shape [{IMAGES - 1}], but input_row_bits holds {IMAGES} images", "exit_steps/atsn",
             exit_steps__atsn=steps[1:])
    _refused(twin, f"use [M] = [{IMAGES}]", "exit_steps/atsn", exit_steps__atsn=steps[None])
    _refused(twin, f"exit steps must be in 1..{T} (T)", "exit_steps/atsn", exit_steps__atsn=steps - steps)
    _refused(twin, f"exit steps must be in 1..{T} (T)", "exit_steps/atsn",
             exit_steps__atsn=np.where(np.arange(IMAGES) == 0, T + 1, steps).astype(np.uint16))
    early = twin.arrays["exit_steps/fixed"].copy()
    early[0] = T - 1
    _refused(twin, f"sends an image out before t = {T}, but a fixed-T design runs every image all T timesteps",
             "exit_steps/fixed", exit_steps__fixed=early)
    swapped = steps.copy()
    i = int(np.argmax(steps != steps.max()))
    swapped[i] = steps.max()  # one image moved: the histogram no longer counts these steps
    _refused(twin, "is not the distribution of exit_hist/atsn: the histogram must equal the steps' counts on the "
             "2^-32 grid exactly (grid_histogram of their bincount", "exit_steps/atsn", exit_steps__atsn=swapped)
    nudged = twin.arrays["exit_hist/atsn"].copy()
    nudged[np.argmax(nudged)] -= 2.0**-32  # one unit of the grid
    nudged[np.argmin(nudged)] += 2.0**-32
    _refused(twin, "is not the distribution of exit_hist/atsn", "exit_steps/atsn", exit_hist__atsn=nudged)
    # the M of spike_rows/<layer> serves without input_row_bits; any integer type is read
    ok = validate(_with(twin, input_row_bits=None, exit_steps__atsn=steps.astype(np.int32)))
    assert ok.arrays["exit_steps/atsn"].dtype == np.int32


def test_a_trained_workload_with_exit_steps_is_refused():
    wl = _trained()
    with pytest.raises(WorkloadError, match=r"steps\.npz.*exit_steps/atsn: is a statistical twin's exit steps, but "
                                            r"meta\.kind is 'trained'.*remove it"):
        validate(_with(wl, exit_steps__atsn=np.ones(IMAGES, dtype=np.uint16)))


# ------------------------------------------------------------------------------------------
# the commands
# ------------------------------------------------------------------------------------------
def _run(args, capsys) -> tuple[int, str, str]:
    return run_cli(args, capsys)


def test_stats_writes_exit_steps_unless_told_not_to(tmp_path, capsys):
    trained = tmp_path / "trained.npz"
    write_workload(trained, _trained())
    code, out, err = _run(["workload", "stats", trained, "-o", tmp_path / "paired.npz", "--json",
                           tmp_path / "paired.json"], capsys)
    assert code == 0, err
    paired = read_workload(tmp_path / "paired.npz")
    assert all(f"exit_steps/{p}" in paired.arrays for p in DRAW_ORDER_FIRST)
    assert f"exit steps of {IMAGES} images (fixed, dtsnn, atsn): twin image i exits at image i's step" in out
    numbers = json.loads((tmp_path / "paired.json").read_text())
    assert numbers["exit_steps"] == list(DRAW_ORDER_FIRST) and 0 < numbers["exit_steps_bytes"] < 2000
    code, out, err = _run(["workload", "stats", trained, "-o", tmp_path / "plain.npz", "--no-exit-steps"], capsys)
    assert code == 0, err
    assert "exit steps of" not in out and ", exit steps 0 bytes (compressed)" in out
    write_workload(tmp_path / "direct.npz", fit_statistical_twin(read_workload(trained), exit_steps=False))
    assert (tmp_path / "direct.npz").read_bytes() == (tmp_path / "plain.npz").read_bytes()
    code, out, _ = _run(["workload", "stats", "--help"], capsys)
    assert "--exit-steps / --no-exit-steps" in out
    code, out, err = _run(["workload", "info", tmp_path / "paired.npz", "--json", tmp_path / "info.json"], capsys)
    assert code == 0, err
    assert (f"exit steps of {IMAGES} fitted images (fixed, dtsnn, atsn): image i exits at image (i mod {IMAGES})'s"
            in out)
    info = json.loads((tmp_path / "info.json").read_text())
    assert info["exit_steps"] == {"images": IMAGES, "policies": list(DRAW_ORDER_FIRST)}
    code, out, err = _run(["workload", "info", tmp_path / "plain.npz", "--json", tmp_path / "plain.json"], capsys)
    assert "exit steps of" not in out and "exit_steps" not in json.loads((tmp_path / "plain.json").read_text())


def test_the_twin_note_gives_a_stats_command_that_runs_and_agrees_in_number(tmp_path, capsys):
    """The note's remedy was 'satasim workload stats TRAINED --cl-init 0.5', which stops at the missing -o; and one
    threshold read 'the architecture's cl_init 0.5 do not change'. Run as given (TRAINED and TWIN.npz filled in), the
    command now writes a twin, and the verb agrees with the number of thresholds named."""
    trained, twin = tmp_path / "trained.npz", tmp_path / "twin.npz"
    write_workload(trained, _trained())
    write_workload(twin, fit_statistical_twin(_trained()))
    for tau, named in (("0.95", "cl_init 0.5 does not"), ("0.5", "cl_init 0.5, tau_cl 0.5 do not")):  # file: 0.95
        code, _, err = _run(["run", ARCH, twin, "--images", "4", "--set", "exit_unit.cl_init=0.5", "--set",
                             f"exit_unit.tau_cl={tau}"], capsys)
        assert code == 0, err
        note = next(line for line in err.splitlines() if "statistical workload's exits" in line)
        assert f"the architecture's {named} change" in note, note
        command = note.split("thresholds: satasim ", 1)[1].split()
        command = [str(trained) if w == "TRAINED" else str(tmp_path / "refit.npz") if w == "TWIN.npz" else w
                   for w in command]
        code, _, err = _run(command, capsys)
        assert code == 0 and (tmp_path / "refit.npz").is_file(), err
        (tmp_path / "refit.npz").unlink()


def test_run_says_a_twins_paired_exits_ignore_the_thresholds(tmp_path, capsys):
    write_workload(tmp_path / "twin.npz", fit_statistical_twin(_trained()))
    code, _, err = _run(["run", ARCH, tmp_path / "twin.npz", "--images", "4", "--set", "exit_unit.cl_init=0.5"],
                        capsys)
    assert code == 0, err
    assert ("do not change this statistical workload's exits: they are its fitted images' exit steps "
            "(exit_steps/atsn) at the file's thresholds (the file's meta.exit_policy says cl_init 0.9, tau_cl 0.95)"
            ) in err
