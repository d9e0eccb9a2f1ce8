"""A script's wrong argument to the Python API (docs/interfaces.md, "Python APIs") is the project's one-line error
naming the argument and the fix: never a bare TypeError, a count quietly truncated (images=1.5 ran one image), a
string taken apart character by character, or a trace of fewer images than asked for."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from satasim_atsn.errors import ArchError, SatasimError, WorkloadError
from satasim_atsn.hw.arch import load_arch
from satasim_atsn.hw.engine import simulate
from satasim_atsn.hw.mapping import build_mapping
from satasim_atsn.hw.reference import simulate_reference
from satasim_atsn.hw.run_checks import image_count
from satasim_atsn.traces.functional import functional_trace
from satasim_atsn.traces.statistical_draw import draw_trace
from satasim_atsn.traces.twin_fit import fit_statistical_twin
from satasim_atsn.workload.format import read_workload
from satasim_atsn.workload.network_file import load_network, resolve_network, shipped_network_path

MY_NET = Path(__file__).resolve().parents[1] / "examples" / "my_net.yaml"


@pytest.mark.parametrize("overrides", ["accelerators=1", {"accelerators": 1}, b"accelerators=1"])
def test_a_lone_override_string_or_a_dict_is_refused_by_name(overrides):
    """A str used to be read as one override per character ('--set: a: expected path.to.field=value')."""
    with pytest.raises(ArchError, match=r"^overrides: must be a list of 'path.to.field=value' strings.*wrap it"):
        load_arch("atsn16x16", overrides)


@pytest.mark.parametrize("item", [1, b"accelerators=1", None])
def test_an_override_that_is_no_string_is_refused(item):
    with pytest.raises(ArchError, match=r"^overrides: item .* is not a string; write each override as"):
        load_arch("atsn16x16", [item])


def test_overrides_none_means_none():
    assert load_arch("atsn16x16", None).to_dict() == load_arch("atsn16x16").to_dict()
    assert load_arch("atsn16x16", ("accelerators=1",)).accelerators == 1


@pytest.mark.parametrize("path", [None, 3])
def test_a_workload_path_that_is_no_path_is_refused(path):
    with pytest.raises(WorkloadError, match=r"not a path; give the workload's path as a str or pathlib.Path"):
        read_workload(path)


@pytest.mark.parametrize("images", [1.5, 1.0, "2", True])
def test_images_that_are_not_an_int_are_refused_not_truncated(workload_path, images):
    workload = read_workload(workload_path)
    with pytest.raises(SatasimError, match=r": images: must be a whole number \(an int\), got .*; pass an int"):
        simulate(load_arch("atsn16x16"), workload, images=images)  # a script's argument, named as it is written


@pytest.mark.parametrize("start", [1.0, None, "0"])
def test_a_start_that_is_not_an_int_is_refused(workload_path, start):
    workload = read_workload(workload_path)
    with pytest.raises(SatasimError, match=r"--start: must be a whole number \(an int\)"):
        image_count(workload, 1, start)


def test_simulate_names_its_arguments_where_the_commands_name_their_options(workload_path):
    """`simulate(images=0)` said `--images`, an option a script never gave (audit, session 47); the commands check
    the range first, naming --images and --start."""
    workload, arch = read_workload(workload_path), load_arch("atsn16x16")
    with pytest.raises(SatasimError, match=r": images: must be >= 1, got 0; give a positive count$"):
        simulate(arch, workload, images=0)
    with pytest.raises(SatasimError, match=r": start: -1 is outside 0\.\.\d+; pick an existing image$"):
        simulate(arch, workload, images=1, start=-1)
    with pytest.raises(SatasimError, match=r": --images: must be >= 1, got 0"):
        image_count(workload, 0)


def test_numpy_integers_are_counts(workload_path):
    workload = read_workload(workload_path)
    assert image_count(workload, np.int64(2), np.int32(1)) == 2


@pytest.mark.parametrize("start, count, needle", [
    (3, 5, r"images: range \[3, 8\) is outside the workload's 4 images; ask for images within 0..3"),
    (-2, 2, r"start: -2 is outside 0..3; pick an existing image"),
    (9, 1, r"start: 9 is outside 0..3"),
    (0, 0, r"count: must be >= 1, got 0"),
    (1, -1, r"count: must be >= 1, got -1"),
    (0.0, 1, r"start: must be a whole number"),
])
def test_a_trained_trace_of_images_the_workload_lacks_is_refused(workload_path, start, count, needle):
    """functional_trace of a trained workload used to return a shorter (or empty) trace, the statistical one refused."""
    workload = read_workload(workload_path)
    arch = load_arch("atsn16x16")
    with pytest.raises(WorkloadError, match=needle):
        functional_trace(workload, arch.exit_policy(), arch.policy_name, start, count)


def test_a_statistical_draw_of_no_images_is_refused(workload_path):
    """draw_trace(count=0) used to fail inside numpy (cannot reshape array of size 0)."""
    twin = fit_statistical_twin(read_workload(workload_path))
    assert len(draw_trace(twin, "fixed", 0, 1).exit_t) == 1
    with pytest.raises(WorkloadError, match=r"count: must be >= 1, got 0; ask for at least one image"):
        draw_trace(twin, "fixed", 0, 0)


@pytest.mark.parametrize("width", [0, -1, float("nan"), float("inf"), "0.5", None])
def test_a_network_width_that_is_no_positive_number_is_refused(width):
    """width=0 or -1 used to build every layer one channel wide; NaN, inf and a string failed inside round()."""
    network = load_network(MY_NET)
    for scale in (lambda: network.build(width=width), lambda: network.body(width)):
        with pytest.raises(WorkloadError, match=r"my_net.yaml: width: must be a positive finite number.*halves"):
            scale()


def test_a_small_network_width_still_rounds_to_one_channel():
    """Documented (docs/networks.md): rounded, at least 1."""
    widths = [ly.get("out_channels") for ly in load_network(MY_NET).build(width=np.float32(1e-9))]
    assert {w for w in widths if w is not None} == {1}


@pytest.mark.parametrize("classes, needle", [(0, r"num_classes: 0 is not an integer >= 2"),
                                             (-3, r"num_classes: -3 is not an integer >= 2"),
                                             (2.5, r"num_classes: must be a whole number")])
def test_build_refuses_a_class_count_below_two_or_not_whole(classes, needle):
    """build(num_classes=-3) used to give an output layer of -3 features, 2.5 one of 2."""
    with pytest.raises(WorkloadError, match=needle):
        load_network(MY_NET).build(num_classes=classes)


def test_load_network_points_a_shipped_name_at_resolve_network():
    with pytest.raises(WorkloadError, match=r"^vgg16: no such file; load the shipped network by name with "
                                            r"resolve_network\('vgg16'\)"):
        load_network("vgg16")
    assert resolve_network("vgg16").name == load_network(shipped_network_path("vgg16")).name
    with pytest.raises(WorkloadError, match=r"^None: is a NoneType, not a path"):
        load_network(None)


@pytest.mark.parametrize("run", [simulate, build_mapping, simulate_reference])
def test_a_path_where_a_loaded_design_or_workload_belongs_is_refused(workload_path, run):
    """simulate('atsn16x16', w) used to fail with "'str' object has no attribute 'array'"."""
    arch, workload = load_arch("atsn16x16"), read_workload(workload_path)
    with pytest.raises(SatasimError, match=r"^arch: is a str \('atsn16x16'\), not a loaded Arch; pass load_arch"):
        run("atsn16x16", workload)
    with pytest.raises(SatasimError, match=r"^workload: is a PosixPath .*not a loaded Workload; pass read_workload"):
        run(arch, workload_path)


def test_compute_energy_of_a_runs_totals_is_the_runs_energy(workload_path):
    """docs/interfaces.md: compute_energy(arch, result.totals, result.total_cycles) is how a script recomputes a run's
    energy (result.counters() is the nested section 9 record, refused as counts)."""
    from satasim_atsn.hw.energy import compute_energy

    arch = load_arch("atsn16x16", ["accelerators=1"])
    result = simulate(arch, read_workload(workload_path), images=2)
    energy = compute_energy(arch, result.totals, result.total_cycles)
    assert energy.total_pJ == result.to_dict()["energy"]["total_pJ"] > 0
    with pytest.raises(ValueError, match="unknown action counts"):
        compute_energy(arch, result.counters(), result.total_cycles)


def test_editing_a_loaded_tables_entries_does_not_change_later_loads():
    """Tech.entries of one load used to be the process's cached table: a script's what-if edit of
    arch.tech.entries changed every later load_tech and load_arch (A, edit, A again gave other numbers)."""
    from satasim_atsn.hw.energy import energy_per_action_pJ
    from satasim_atsn.hw.tech import load_tech

    before = energy_per_action_pJ(load_arch("atsn16x16"))
    edited = load_arch("atsn16x16")
    edited.tech.entries["add_8b_energy_pJ"]["value"] = 1000.0
    load_tech("28nm").entries["mult_8b_energy_pJ"]["value"] = 1000.0
    assert load_tech("28nm").energy_pJ("add_8b") < 1 and load_tech("28nm").energy_pJ("mult_8b") < 1
    assert energy_per_action_pJ(load_arch("atsn16x16")) == before


@pytest.mark.parametrize("count, seed, budget, needle", [
    (2, -1, 60.0, r"^--seed: must be in 0..2147483647, got -1"),  # was numpy's ValueError
    (2, 1.5, 60.0, r"^--seed: must be a whole number"),  # was a TypeError
    (-1, 0, 60.0, r"^--random: must be in 0..1000, got -1"),  # was an empty plan
    (2, 0, float("nan"), r"^budget: must be a number of seconds, got nan"),
])
def test_plan_random_cases_refuses_what_the_cli_refuses(count, seed, budget, needle):
    from satasim_atsn.hw.verify import plan_random_cases

    with pytest.raises(SatasimError, match=needle):
        plan_random_cases(load_arch("atsn16x16"), count, seed, budget)


def test_plan_random_cases_with_no_budget_left_skips_every_network():
    """What verify's CLI asks after WORKLOAD took the whole --max-minutes: not an error, an empty plan."""
    from satasim_atsn.hw.verify import plan_random_cases

    plan = plan_random_cases(load_arch("atsn16x16"), 2, 0, -5.0)
    assert (plan.jobs, len(plan.skipped)) == ([], 2)


@pytest.mark.parametrize("start", [4, 9])
def test_the_reference_from_a_start_past_the_end_names_start(workload_path, start):
    """simulate_reference(images=None, start=9) used to say 'count: must be >= 1, got -5'."""
    with pytest.raises(WorkloadError, match=rf"start: {start} is outside 0..3; pick an existing image"):
        simulate_reference(load_arch("atsn16x16"), read_workload(workload_path), None, start)


@pytest.mark.parametrize("kwargs, needle", [
    ({"images": 1.5}, r"--images: must be a whole number"),  # fitted 1 image
    ({"images": 0}, r"--images: 0 is not in 1..4 .*; ask for 1 to 4 images"),
    ({"seed": 1.5}, r"seed: must be a whole number"),  # used as given
    ({"seed": -1}, r"seed: must be >= 0, got -1"),  # was blamed on the twin's meta ('re-export the workload')
    ({"batch_size": 0}, r"batch_size: must be >= 1, got 0"),  # ValueError from range()
    ({"batch_size": -3}, r"batch_size: must be >= 1, got -3"),
])
def test_fit_statistical_twin_refuses_counts_that_are_not_counts(workload_path, kwargs, needle):
    with pytest.raises(WorkloadError, match=needle):
        fit_statistical_twin(read_workload(workload_path), **kwargs)


def test_the_documented_recipe_gives_the_cli_json_bytes(tmp_path, workload_path, capsys):
    """docs/interfaces.md: simulate() leaves result.notes empty; with run_notes the API writes `satasim run`'s bytes
    (here the idle-accelerators note: 2 images on 4 accelerators)."""
    from satasim_atsn.cli import main
    from satasim_atsn.hw.notes import run_notes

    overrides = ["exit_unit.cl_init=0.9"]
    with pytest.raises(SystemExit) as ended:
        main(["run", "atsn16x16", str(workload_path), "--images", "2", "-q", "--set", overrides[0],
              "--json", str(tmp_path / "cli.json")])
    assert ended.value.code in (0, None)
    arch, workload = load_arch("atsn16x16", overrides), read_workload(workload_path)
    result = simulate(arch, workload, images=2)
    assert result.notes == []
    result.notes = [n.removeprefix("note: ") for n in run_notes(arch, "atsn16x16", overrides, workload, 2)]
    assert any("accelerators busy" in note for note in result.notes)
    result.write_json(tmp_path / "api.json")
    assert (tmp_path / "api.json").read_bytes() == (tmp_path / "cli.json").read_bytes()


@pytest.mark.parametrize("start, count, needle", [(5, None, r"start: 5 is outside 0..3; pick an existing image"),
                                                  (-1, 2, r"start: -1 is outside 0..3"),
                                                  (0, -1, r"count: must be >= 0, got -1")])
def test_exit_steps_from_a_start_past_the_end_name_start(workload_path, start, count, needle):
    """draw_exit_steps(start=N+1) used to say 'count: must be >= 0, got -1; ask for at least one image'."""
    from satasim_atsn.traces.statistical_draw import draw_exit_steps

    twin = fit_statistical_twin(read_workload(workload_path))
    assert {len(steps) for steps in draw_exit_steps(twin, 4).values()} == {0}  # from the end: none
    with pytest.raises(WorkloadError, match=needle):
        draw_exit_steps(twin, start, count)


def test_a_workload_built_in_memory_runs_once_validated(workload_path):
    """docs/interfaces.md: validate(Workload(meta, arrays)) fills the shapes the models read."""
    import copy

    from satasim_atsn.workload.format import Workload, validate

    source = read_workload(workload_path)
    meta = copy.deepcopy(source.meta)
    for layer in meta["layers"]:
        layer.pop("in_shape", None), layer.pop("out_shape", None)
    arrays = {k: np.asarray(v) for k, v in source.arrays.items()}
    built = validate(Workload(meta, arrays))
    arch = load_arch("atsn16x16", ["accelerators=1"])
    assert simulate(arch, built, images=2).counters() == simulate(arch, source, images=2).counters()


@pytest.mark.parametrize("model", ["simulate", "simulate_reference", "build_mapping"])
def test_a_workload_built_in_memory_and_not_validated_is_validated_by_the_models(workload_path, model):
    """Before, a Workload(meta, arrays) given to a model unvalidated failed with KeyError('out_shape')."""
    import copy

    from satasim_atsn.workload.format import Workload

    source = read_workload(workload_path)
    meta = copy.deepcopy(source.meta)
    for layer in meta["layers"]:
        layer.pop("in_shape", None), layer.pop("out_shape", None)
    arrays = {k: np.asarray(v) for k, v in source.arrays.items()}
    arch = load_arch("atsn16x16", ["accelerators=1"])
    run = {"simulate": lambda w: simulate(arch, w, images=1).counters(),
           "simulate_reference": lambda w: simulate_reference(arch, w, images=1)["total_cycles"],
           "build_mapping": lambda w: build_mapping(arch, w).fold_capacity_neurons}[model]
    built = Workload(meta, arrays)
    assert not built.validated
    assert run(built) == run(source) and built.validated
    broken = Workload(dict(copy.deepcopy(source.meta), num_classes=1), arrays)
    with pytest.raises(WorkloadError, match=r"^<memory>: meta.num_classes: must be at least 2"):
        run(broken)


@pytest.mark.parametrize("change, needle", [
    (lambda meta, arrays: (meta, dict(arrays, x=arrays["x"].tolist())), r"x: is a list, not a numpy array; pass np"),
    (lambda meta, arrays: (None, arrays), r"meta: is a NoneType, not a dict"),
    (lambda meta, arrays: (meta, list(arrays.items())), r"arrays: is a list, not a dict"),
])
def test_validate_refuses_containers_that_are_not_a_workloads(workload_path, change, needle):
    """Python lists for arrays failed with "'list' object has no attribute 'dtype'", a None meta with a TypeError."""
    from satasim_atsn.workload.format import Workload, validate

    source = read_workload(workload_path)
    meta, arrays = change(source.meta, {k: np.asarray(v) for k, v in source.arrays.items()})
    with pytest.raises(WorkloadError, match=needle):
        validate(Workload(meta, arrays))


@pytest.mark.parametrize(("overrides", "pattern"), [
    (["clock_hz=5"], r"^atsn16x16: clock_hz: must be >= 1000, got 5; .* \(the value comes from the overrides item "
                     r"clock_hz=5\)$"),
    (["accelerators=1", "pe.decay=foo"], r"^atsn16x16: pe.decay: must be one of .*\(the value comes from the "
                                         r"overrides item pe.decay=foo\)$"),
    (["clock=5"], r"^overrides: clock: no such field; did you mean 'clock_hz'\?$"),
    (["clock_hz=1e9", "clock_hz=2e9"], r"^overrides: clock_hz: given twice \(the last value would win, silently\); "
                                       r"give each field once$"),
], ids=["value", "second-item", "unknown-field", "twice"])
def test_a_refused_override_value_is_blamed_on_the_overrides_not_the_file(overrides, pattern):
    """The file holds no such value; only the CLI said where it came from (its --set). An override refused by
    itself (an unknown field, one given twice) is named as the caller gave it, ``overrides``, not as the CLI's
    ``--set`` (h1, session 47)."""
    with pytest.raises(ArchError, match=pattern) as info:
        load_arch("atsn16x16", overrides)
    assert "comes from --set" not in str(info.value)


def test_the_cli_still_names_its_set_option(capsys):
    from satasim_atsn.cli import main

    with pytest.raises(SystemExit) as info:
        main(["run", "atsn16x16", "workload-not-read.npz", "--set", "clock_hz=5"])
    err = capsys.readouterr().err.strip()
    assert info.value.code == 2 and err.endswith("(the value comes from --set clock_hz=5)") and "\n" not in err


@pytest.mark.parametrize("change, needle", [
    (lambda w: w.arrays.__setitem__("w/conv1", w.arrays["w/conv1"].astype(np.float64) * 1.5),
     r"w/conv1: has dtype float64; store it as int8"),
    (lambda w: w.arrays.__setitem__("vth/conv1", -w.arrays["vth/conv1"]), r"vth/conv1: thresholds must be in 1\.\."),
    (lambda w: w.arrays["vth/conv1"].__imul__(-1), r"vth/conv1: thresholds must be in 1\.\."),  # in place
    (lambda w: w.meta["quant"].__setitem__("vmem_bits", 8), r"vth/conv1: thresholds must be in 1\.\.127"),
    (lambda w: w.arrays.__setitem__("y", w.arrays["y"] + 100), r"y: labels must be in 0\.\."),
    (lambda w: w.arrays.__setitem__("x", w.arrays["x"].astype(np.float64)), r"x: has dtype float64"),
    (lambda w: w.meta.__setitem__("timesteps", 0), r"meta\.timesteps: must be between 1 and 1024"),
])
@pytest.mark.parametrize("model", ["simulate", "functional_trace", "fit_statistical_twin"])
def test_a_validated_workload_changed_afterwards_is_validated_again(change, needle, model):
    """A workload validated, then changed (a negated threshold, float weights, labels past the classes) ran with
    wrong numbers, or failed inside numpy (h1, session 47): validated holds only for the workload as it was checked,
    so each model validates it again and refuses it as validate() and write_workload() do."""
    import copy

    from satasim_atsn.snn.exit_policies import FixedPolicy
    from satasim_atsn.workload.synthetic import random_workload

    base = random_workload(3, images=4, encoding="direct", output_mode="membrane")
    assert base.validated
    workload = copy.deepcopy(base)
    change(workload)
    assert not workload.validated
    run = {"simulate": lambda w: simulate(load_arch("atsn16x16", ["accelerators=1"]), w, images=2),
           "functional_trace": lambda w: functional_trace(w, FixedPolicy(), "fixed", 0, 2),
           "fit_statistical_twin": lambda w: fit_statistical_twin(w, 4)}[model]
    with pytest.raises(WorkloadError, match=needle):
        run(workload)


@pytest.mark.parametrize("call", [
    lambda path: fit_statistical_twin(path),
    lambda path: draw_trace(path, "atsn", 0, 1),
    lambda path: functional_trace(path, None, "atsn", 0, 1),
])
def test_a_path_where_a_workload_belongs_names_the_loader(workload_path, call):
    """fit_statistical_twin(path) and draw_trace(path, ...) raised AttributeError: 'str' object has no attribute
    'is_statistical' (h1, session 47); simulate(path) already said which loader to call."""
    with pytest.raises(WorkloadError, match=r"is a str \('.*'\), not a loaded Workload; pass read_workload\(path\)"):
        call(str(workload_path))


def test_the_api_writers_refuse_the_paths_the_cli_refuses(workload_path, tmp_path):
    """SimResult.write_json("out/") wrote a file named out (the CLI's --json refuses it), write_json(None) raised a
    TypeError, write_csv onto a file said a file inside it "cannot be written (File exists)" (h1, session 47)."""
    result = simulate(load_arch("atsn16x16", ["accelerators=1"]), read_workload(workload_path), images=1)
    with pytest.raises(SatasimError, match=r"path: ends with a slash, so it names a folder, not a file"):
        result.write_json(f"{tmp_path}/out/")
    assert not (tmp_path / "out").exists()
    with pytest.raises(SatasimError, match=r"^path: is a NoneType \(null\), not a path; give a file path"):
        result.write_json(None)
    (tmp_path / "afile").write_text("x")
    with pytest.raises(SatasimError, match=r"afile: directory: is a file, not a directory"):
        result.write_csv(tmp_path / "afile")
    result.write_json(tmp_path / "r.json")
    assert [p.name for p in result.write_csv(tmp_path / "csv")] == ["layers.csv", "images.csv", "neurobench.csv"]


@pytest.mark.parametrize("chunk, needle", [("2", r"chunk_images: must be a whole number \(an int\), got '2'"),
                                           (1.5, r"chunk_images: must be a whole number"),
                                           (0, r"chunk_images: must be >= 1, got 0"),
                                           (-3, r"chunk_images: must be >= 1, got -3")])
def test_a_chunk_size_that_is_not_a_positive_whole_number_is_refused(workload_path, chunk, needle):
    """simulate(chunk_images='2') raised a TypeError; 0, -3 and 1.5 were used as they came (h1, session 47)."""
    with pytest.raises(SatasimError, match=needle):
        simulate(load_arch("atsn16x16", ["accelerators=1"]), read_workload(workload_path), images=2, chunk_images=chunk)


def test_the_verify_planners_refuse_a_name_and_take_a_result(workload_path):
    """plan_random_cases('atsn16x16', ...) raised AttributeError, and estimated_reference_seconds(result) raised
    TypeError where it wants result.counters() (h1, session 47). (A budget <= 0 is verify's own question once the
    workload took the whole --max-minutes: an empty plan, not an error.)"""
    from satasim_atsn.hw.verify import estimated_reference_seconds, plan_random_cases

    arch = load_arch("atsn16x16", ["accelerators=1"])
    with pytest.raises(SatasimError, match=r"^arch: is a str \('atsn16x16'\), not a loaded Arch; pass load_arch"):
        plan_random_cases("atsn16x16", 2, 0, 60)
    result = simulate(arch, read_workload(workload_path), images=1)
    assert estimated_reference_seconds(result) == estimated_reference_seconds(result.counters()) > 0
