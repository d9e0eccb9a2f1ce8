"""`satasim verify`'s comparisons themselves (hw/verify.py): each kind of disagreement the module docstring lists
(a counter, a counter only one model has, a per-PE list, a value of another type, the spikes each group emitted, a
refusal with another fix) must be reported, so that a check which can never fail is caught here."""
from __future__ import annotations

import pytest

from satasim_atsn.errors import MappingError
from satasim_atsn.hw import engine, verify
from satasim_atsn.hw.arch import load_arch
from satasim_atsn.workload.synthetic import random_workload

ARCH = "conventional16x16"


def test_equal_counter_trees_have_no_difference():
    tree = {"total_cycles": 10, "pe": {"busy": [1, 2, 3], "stall": [[0, 1], [2, 3]]}, "name": "a"}
    assert verify.diff_counters(tree, {**tree, "pe": dict(tree["pe"])}) == []


@pytest.mark.parametrize(("engine_tree", "reference_tree", "expected"), [
    ({"a": {"b": 1}}, {"a": {"b": 2}}, [".a.b: engine 1 != reference 2"]),
    ({"a": 1, "b": 2}, {"a": 1}, [".b: only in engine"]),
    ({"a": 1}, {"a": 1, "c": 3}, [".c: only in reference"]),
    ({"busy": [1, 2, 3]}, {"busy": [1, 2, 4]}, [".busy: engine [1, 2, 3] != reference [1, 2, 4]"]),
    ({"busy": [1, 2]}, {"busy": [1, 2, 0]}, [".busy: engine [1, 2] != reference [1, 2, 0]"]),
    ({"pe": [{"x": 1}, {"x": 2}]}, {"pe": [{"x": 1}, {"x": 5}]}, [".pe[1].x: engine 2 != reference 5"]),
    ({"n": 3}, {"n": 3.0}, [".n: engine type int != reference type float"]),
])
def test_each_kind_of_difference_is_named_with_both_values(engine_tree, reference_tree, expected):
    assert verify.diff_counters(engine_tree, reference_tree) == expected


def _case(monkeypatch, change_reference):
    """compare_case on one random network, the reference's result changed by ``change_reference``."""
    arch, workload = load_arch(ARCH), random_workload(1, images=1)
    real = verify.simulate_reference

    def changed(*args, **kwargs):
        return change_reference(real(*args, **kwargs))

    monkeypatch.setattr(verify, "simulate_reference", changed)
    return verify.compare_case(arch, workload, 1, "random network")


def test_the_unchanged_models_agree(monkeypatch):
    case = _case(monkeypatch, lambda counters: counters)
    assert case.agree and case.differences == [] and case.to_dict()["agree"] is True
    assert case.total_cycles is not None and case.total_cycles > 0


def test_a_group_emitting_other_spikes_is_a_difference(monkeypatch):
    """The counters may agree while a group emits other spikes: verify compares those too (module docstring)."""
    def one_more_spike(counters):
        spikes = {name: list(v) for name, v in counters["pe_output_spikes"].items()}
        first = sorted(spikes)[0]
        spikes[first][0] += 1
        return {**counters, "pe_output_spikes": spikes}

    case = _case(monkeypatch, one_more_spike)
    assert not case.agree and case.to_dict()["agree"] is False
    assert len(case.differences) == 1 and case.differences[0].startswith("emitted spikes per group: engine {")


def test_a_per_pe_counter_that_differs_is_a_difference(monkeypatch):
    def one_more_busy_cycle(counters):
        accelerators = [dict(acc) for acc in counters["accelerators"]]
        pe = dict(accelerators[0]["pe"])
        pe["busy"] = [pe["busy"][0] + 1, *pe["busy"][1:]]
        accelerators[0]["pe"] = pe
        return {**counters, "accelerators": accelerators}

    case = _case(monkeypatch, one_more_busy_cycle)
    assert [d.split(":")[0] for d in case.differences] == [".accelerators[0].pe.busy"]


def _refusing(field, fix):
    def refuse(arch, *args, **kwargs):
        raise MappingError.at(arch.where, field, "made up", fix)
    return refuse


@pytest.mark.parametrize(("field", "fix", "agree"), [
    ("pe.weight_memory_bytes", "raise it", True),
    ("pe.weight_memory_bytes", "lower it", False),
    ("pe.data_memory_bytes", "raise it", False),
])
def test_both_refusing_agree_only_for_the_same_field_and_fix(monkeypatch, field, fix, agree):
    """A refusal by both is agreement only when both name the same field and suggest the same fix."""
    monkeypatch.setattr(engine, "simulate", _refusing("pe.weight_memory_bytes", "raise it"))
    monkeypatch.setattr(verify, "simulate_reference", _refusing(field, fix))
    case = verify.compare_case(load_arch(ARCH), random_workload(1, images=1), 1, "random network")
    assert case.refused is not None and case.refused.endswith("pe.weight_memory_bytes: made up; raise it")
    assert case.agree is agree
    if not agree:
        assert case.differences[0].startswith("refusal: engine ")


def test_an_engine_refusal_the_reference_does_not_share_is_a_difference(monkeypatch):
    monkeypatch.setattr(engine, "simulate", _refusing("pe.weight_memory_bytes", "raise it"))
    case = verify.compare_case(load_arch(ARCH), random_workload(1, images=1), 1, "random network")
    assert not case.agree
    assert case.differences == ["refusal: the engine refuses (" + case.differences[0].split("(", 1)[1]]
    assert "the reference runs" in case.differences[0]


@pytest.mark.parametrize(("seconds", "shown"), [(0.4, "0 s"), (89, "89 s"), (90, "2 min"), (150, "2 min"),
                                                (3600, "60 min")])
def test_durations_are_given_in_minutes_from_90_seconds(seconds, shown):
    assert verify.spent(seconds) == shown


def test_the_reference_steps_its_pes_only_outside_memory_stalls_and_exit_unit_phases():
    """reference_pe_cycles: each busy accelerator's cycles up to its last image's end, less its memory stalls and its
    exit unit's busy and input-stall cycles, times its PEs; an accelerator without images steps none."""
    def accelerator(pes, stall, unit_busy, unit_stall):
        return {"pe": {"busy": [0] * pes, "stall_memory": [stall] * pes},
                "exit_unit": {"busy": unit_busy, "stall_input": unit_stall}}

    counters = {"images": {"end_cycle": [100, 150, 90], "accelerator": [0, 0, 1]},
                "accelerators": [accelerator(4, 10, 5, 3), accelerator(2, 0, 20, 0), accelerator(8, 0, 0, 0)]}
    assert verify.reference_pe_cycles(counters) == (150 - 10 - 5 - 3) * 4 + (90 - 20) * 2


def test_random_networks_end_without_an_output_layer_only_on_a_design_without_an_exit_unit():
    """An exit unit needs an output layer to decide on; a design without one (its output layer on the PEs) is also
    checked on networks ending in spikes, which exercise its other path."""
    with_unit = verify.random_cases(load_arch(ARCH), 8, 0)
    without = verify.random_cases(load_arch(ARCH, ["array.exit_unit_tiles=0"]), 8, 0)
    assert all(workload.has_output for _, workload, _ in with_unit)
    assert 0 < sum(not workload.has_output for _, workload, _ in without) < 8


def test_the_engine_estimate_grows_with_the_images():
    arch, workload = load_arch(ARCH), random_workload(1, images=3)
    one, three = (verify.estimated_engine_seconds(arch, workload, n) for n in (1, 3))
    operations = verify.dense_operations(workload)
    per_image = verify.ENGINE_SECONDS_PER_IMAGE + operations * verify.ENGINE_SECONDS_PER_OPERATION
    assert three - one == pytest.approx(2 * per_image) and per_image > verify.ENGINE_SECONDS_PER_IMAGE


def test_an_engine_estimate_just_over_max_minutes_is_refused_before_the_engine_runs(monkeypatch):
    from pathlib import Path

    from satasim_atsn.errors import SatasimError
    from satasim_atsn.workload.format import read_workload

    arch = load_arch("atsn16x16")
    workload = read_workload(Path(__file__).resolve().parents[1] / "workloads" / "vgg_small_fmnist_atsn.npz")
    estimate = verify.estimated_engine_seconds(arch, workload, 1)
    monkeypatch.setattr(engine, "simulate", lambda *a, **k: pytest.fail("the engine ran beyond --max-minutes"))
    with pytest.raises(SatasimError, match="takes the engine alone up to about"):
        verify.check_affordable(arch, workload, 1, 0, 0.9 * estimate / 60, "atsn16x16")
