"""`satasim verify`: the engine against the per-cycle reference on a user's design, from the command line."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from satasim_atsn.cli import main
from satasim_atsn.errors import MappingError
from satasim_atsn.hw import verify

ROOT = Path(__file__).resolve().parents[1]
FMNIST = str(ROOT / "workloads" / "vgg_small_fmnist_atsn.npz")


def _run(args: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as stop:
        main(args)
    out = capsys.readouterr()
    return (stop.value.code or 0), out.out, out.err


def test_a_trained_workload_and_random_networks_agree_and_the_json_is_stable(tmp_path, capsys):
    code, out, err = _run(["verify", "atsn16x16", FMNIST, "--random", "3", "--json", str(tmp_path / "a.json")], capsys)
    assert code == 0, err
    assert "vgg_small_fmnist_atsn, image 0, 1 image: agree, " in out
    assert out.rstrip().endswith("agree on every counter and emitted spike in 4 cases")
    data = json.loads((tmp_path / "a.json").read_text())
    assert data["agree"] and [c["images"] for c in data["cases"]] == [1, 1, 2, 3]
    assert all(c["total_cycles"] > 0 and c["differences"] == [] for c in data["cases"])
    _run(["verify", "atsn16x16", FMNIST, "--random", "3", "--json", str(tmp_path / "b.json"), "-q"], capsys)
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()


def test_a_design_changed_by_set_is_named_and_recorded(tmp_path, capsys):
    """verify --set checks another design than the file's: the verdict names the --set values and the JSON holds the
    resolved design (as run --json does), so two verifications of different designs never read alike."""
    sets = ["--set", "array.rows=3", "--set", "array.cols=2"]
    code, out, err = _run(["verify", "atsn16x16", "--random", "1", *sets, "--json", str(tmp_path / "s.json")], capsys)
    assert code == 0, err
    assert out.rstrip().splitlines()[-1].startswith("atsn16x16 --set array.rows=3 --set array.cols=2: the engine")
    changed = json.loads((tmp_path / "s.json").read_text())
    _run(["verify", "atsn16x16", "--random", "1", "--json", str(tmp_path / "f.json"), "-q"], capsys)
    own = json.loads((tmp_path / "f.json").read_text())
    assert changed["design"]["array"]["rows"] == 3 and changed["design"]["array"]["cols"] == 2
    assert own["design"]["array"]["rows"] == 16 and own["design"]["name"] == changed["design"]["name"] == "atsn16x16"

@pytest.mark.parametrize(("override", "field"), [("pe.vmem_bits=8", "pe.vmem_bits"),
                                                 ("exit_unit.vmem_bits=16", "exit_unit.vmem_bits")])
def test_membranes_narrower_than_the_networks_are_refused_by_both_models(override, field, capsys):
    """A valid design with narrower membranes than the random networks' (16-bit PEs, 32-bit outputs): the engine
    refused and the reference ran, so verify reported a difference and exit code 1 ('please report it')."""
    from satasim_atsn.hw.arch import load_arch
    from satasim_atsn.hw.reference import simulate_reference
    from satasim_atsn.workload.synthetic import random_workload

    with pytest.raises(MappingError) as refused:
        simulate_reference(load_arch("atsn16x16", [override]), random_workload(0, images=1), 1)
    assert refused.value.field == field and "\n" not in str(refused.value)
    code, out, err = _run(["verify", "atsn16x16", "--random", "2", "--set", override], capsys)
    assert code == 0, err
    assert out.rstrip().endswith("in 2 cases (2 refused by both, for the same field and fix)")

def test_an_exit_memory_too_small_for_one_image_is_refused_alike_by_both_models(capsys):
    """800 B beside the AT unit's 768 B table hold 4 classes' membranes and running sums, not 5 (random seed 5): the
    engine named exit_unit.data_memory_bytes, the reference images_per_batch ('use images_per_batch <= 0'), so verify
    reported a difference and exit code 1 on a valid design."""
    from satasim_atsn.hw.arch import load_arch
    from satasim_atsn.hw.reference import simulate_reference
    from satasim_atsn.workload.synthetic import random_workload

    workload = random_workload(5, images=1, max_channels=8, size=8)
    for sets, fix in ((["exit_unit.data_memory_bytes=800"], "raise it to at least 808"),
                      (["exit_unit.data_memory_bytes=800", "images_per_batch=2"], "raise it to at least 848 (the 2 ")):
        with pytest.raises(MappingError) as refused:
            simulate_reference(load_arch("atsn16x16", sets), workload, 1)
        assert refused.value.field == "exit_unit.data_memory_bytes" and f"; {fix}" in str(refused.value)
    code, out, err = _run(["verify", "atsn16x16", "--random", "1", "--seed", "5",
                           "--set", "exit_unit.data_memory_bytes=800"], capsys)
    assert code == 0, err
    assert out.rstrip().endswith("in 1 case (1 refused by both, for the same field and fix)")

def test_a_batch_too_large_for_the_pes_without_an_exit_tile_is_refused_not_a_traceback(capsys):
    """No exit tile, and more images per batch than a PE holds membranes: the reference divided by the absent exit
    unit's 0-bit membranes (ZeroDivisionError) while wording its refusal, so verify died with a traceback."""
    from satasim_atsn.hw.arch import load_arch
    from satasim_atsn.hw.reference import simulate_reference
    from satasim_atsn.workload.synthetic import random_workload

    sets = ["array.exit_unit_tiles=0", "images_per_batch=9", "pe.data_memory_bytes=8"]
    with pytest.raises(MappingError) as refused:
        simulate_reference(load_arch("conventional16x16", sets), random_workload(0, images=1), 1)
    # a direct-encoded first layer keeps two words per neuron and image (its membrane and current, section 5)
    assert refused.value.field == "images_per_batch" and str(refused.value).endswith(
        "use images_per_batch <= 2 or raise pe.data_memory_bytes to 36")
    code, out, err = _run(["verify", "conventional16x16", "--random", "2", *(f"--set={s}" for s in sets)], capsys)
    assert code == 0, err
    assert out.rstrip().endswith("in 2 cases (2 refused by both, for the same field and fix)")


def test_a_difference_is_named_and_exits_1(tmp_path, capsys, monkeypatch):
    """A reference that counts one cycle more: the counter's path and both values, exit code 1."""
    real = verify.simulate_reference

    def one_more(*args, **kwargs):
        counters = real(*args, **kwargs)
        return {**counters, "total_cycles": counters["total_cycles"] + 1}

    monkeypatch.setattr(verify, "simulate_reference", one_more)
    code, out, err = _run(["verify", "conventional16x16", "--random", "1", "--json", str(tmp_path / "v.json")], capsys)
    assert code == 1
    cycles = json.loads((tmp_path / "v.json").read_text())["cases"][0]["total_cycles"]
    assert f".total_cycles: engine {cycles - 1} != reference {cycles}" in err
    assert "differ on 1 of 1 cases of conventional16x16" in err and "please report it" in err


def test_networks_the_design_cannot_map_are_refused_by_both(capsys):
    code, out, err = _run(["verify", "atsn16x16", "--random", "3", "--set", "pe.weight_memory_bytes=20"], capsys)
    assert code == 0, err
    assert "agree (both refuse: atsn16x16: pe.weight_memory_bytes: 20 B cannot hold" in out
    assert "(2 refused by both, for the same field and fix)" in out


def test_a_workload_too_long_for_the_reference_is_refused_in_one_line(capsys):
    code, out, err = _run(["verify", "atsn16x16", FMNIST, "--max-minutes", "0.0001"], capsys)
    assert code == 2 and err.count("\n") == 1
    assert "--images: 1 image last" in err and "; use a smaller workload, or allow it with --max-minutes" in err
    assert "--images 1" not in err  # it is one image already: that fix changed nothing


@pytest.mark.parametrize("images", ["1", "3"])
def test_the_refusal_names_a_max_minutes_that_lets_it_run(capsys, images):
    """Followed literally, the fix works: the --max-minutes it names passes the check (it said "use --images 1" to a
    run of one image, "a larger --max-minutes" without saying how large, and "about 0 min" for 7 s)."""
    code, _, err = _run(["verify", "atsn16x16", FMNIST, "--images", images, "--random", "0", "--max-minutes",
                         "0.0001"], capsys)
    assert code == 2 and "about 0 min" not in err
    assert ("use --images 1, a smaller workload" in err) == (images != "1")
    enough = err.rsplit("--max-minutes ", 1)[1].split()[0]
    code, out, err = _run(["verify", "atsn16x16", FMNIST, "--images", images, "--random", "0", "--max-minutes",
                           enough, "-q"], capsys)
    assert code == 0, err


def test_nothing_to_check_is_refused(capsys):
    code, out, err = _run(["verify", "atsn16x16", "--random", "0"], capsys)
    assert code == 2 and "--random: is 0 and no WORKLOAD is given" in err
