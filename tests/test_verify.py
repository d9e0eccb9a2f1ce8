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
                                                 ("pe.vmem_bits=12", "pe.vmem_bits"),
                                                 ("exit_unit.vmem_bits=16", "exit_unit.vmem_bits")])
def test_designs_with_narrow_membranes_are_compared_on_networks_that_fit(override, field, tmp_path, capsys):
    """Membranes narrower than the random networks' 16-bit (PEs) or 32-bit (outputs) ones: both models refused every
    network, so verify passed having compared nothing. Now its networks fit the design's widths and run on both."""
    from satasim_atsn.hw.arch import load_arch
    from satasim_atsn.hw.reference import simulate_reference
    from satasim_atsn.workload.synthetic import random_workload

    with pytest.raises(MappingError) as refused:  # a 16-bit network still does not fit
        simulate_reference(load_arch("atsn16x16", [override]), random_workload(0, images=1), 1)
    assert refused.value.field == field and "\n" not in str(refused.value)
    code, out, err = _run(["verify", "atsn16x16", "--random", "3", "--set", override,
                           "--json", str(tmp_path / "v.json")], capsys)
    assert code == 0, err
    assert out.rstrip().endswith("in 3 cases") and "refuse" not in out
    cases = json.loads((tmp_path / "v.json").read_text())["cases"]
    assert all(c["refused"] is None and c["total_cycles"] > 0 for c in cases)


@pytest.mark.parametrize(("bits", "out_bits"), [(8, 8), (9, 12), (12, 32), (16, 8)])
def test_random_networks_of_narrow_membranes_never_saturate(bits, out_bits):
    """The shrunk networks' worst-case membranes fit their registers: the forward at the narrow widths computes what
    it computes at 32 and 64 bits (spikes and output membranes), and the networks still fire."""
    import copy

    import numpy as np

    from satasim_atsn.snn.forward import run_forward
    from satasim_atsn.workload.format import Workload, validate
    from satasim_atsn.workload.synthetic import random_workload

    fired = 0
    for seed in range(24):
        narrow = random_workload(seed, images=2, max_channels=(4, 8)[seed % 2], size=(4, 6, 8)[seed % 3],
                                 output_layer=seed % 4 != 3, vmem_bits=bits, output_vmem_bits=out_bits)
        assert narrow.meta["quant"]["vmem_bits"] == bits and narrow.meta["quant"]["output_vmem_bits"] == out_bits
        meta = copy.deepcopy(narrow.meta)
        meta["quant"].update(vmem_bits=32, output_vmem_bits=64)
        wide = validate(Workload(meta=meta, arrays=dict(narrow.arrays), source="wide"))
        a, b = run_forward(narrow, record_spikes=True), run_forward(wide, record_spikes=True)
        assert np.array_equal(a.out_membrane, b.out_membrane), seed
        assert all(np.array_equal(a.spikes[k], b.spikes[k]) for k in a.spikes), seed
        fired += any(v.any() for v in a.spikes.values())
    assert fired >= 18


@pytest.mark.parametrize(("override", "message"), [
    ("pe.vmem_bits=4", "atsn16x16: pe.vmem_bits: its 4-bit PE membranes hold no workload's (8 to 32 bits), so no "
                       "random network fits and there is nothing to compare; give pe.vmem_bits >= 8"),
    ("exit_unit.vmem_bits=6", "atsn16x16: exit_unit.vmem_bits: its 6-bit output membranes hold no workload's (8 to 64 "
                              "bits), so no random network fits and there is nothing to compare; give "
                              "exit_unit.vmem_bits >= 8")])
def test_a_design_no_network_fits_is_refused_not_passed(override, message, capsys):
    """Membranes narrower than any workload's: verify said "agree ... in 2 cases (2 refused by both)" and exit 0,
    having compared nothing; now a one-line refusal naming the field (a workload is refused the same way)."""
    code, out, err = _run(["verify", "atsn16x16", "--random", "2", "--set", override], capsys)
    assert code == 2 and err.count("\n") == 1 and out == "", err
    assert message in err

def test_an_exit_memory_too_small_for_one_image_is_refused_alike_by_both_models(capsys):
    """32 B beside the AT unit's 768 B table hold 4 classes' membranes and running sums, not 5 (random seed 5): the
    engine named exit_unit.data_memory_bytes, the reference images_per_batch ('use images_per_batch <= 0'), so verify
    reported a difference and exit code 1 on a valid design."""
    from satasim_atsn.hw.arch import load_arch
    from satasim_atsn.hw.reference import simulate_reference
    from satasim_atsn.workload.synthetic import random_workload

    workload = random_workload(5, images=1, max_channels=8, size=8)
    small = "exit_unit.data_memory_bytes=800"
    for sets, fix in (([small], "raise it to at least 808"),
                      ([small, "images_per_batch=2"], "raise it to at least 848 (the 2 ")):
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
    assert f"DIFFER, 1 difference: .total_cycles: engine {cycles - 1}" in out  # was "DIFFER on 1 counters"
    assert "differ on 1 of 1 cases of conventional16x16" in err and "please report it" in err


def test_networks_the_design_cannot_map_are_refused_by_both(capsys):
    code, out, err = _run(["verify", "atsn16x16", "--random", "3", "--set", "pe.weight_memory_bytes=20"], capsys)
    assert code == 0, err
    assert "agree (both refuse: atsn16x16: pe.weight_memory_bytes: 20 B cannot hold" in out
    assert "(2 refused by both, for the same field and fix)" in out


def test_a_design_that_cannot_map_many_images_is_compared_as_a_refusal_not_refused_over_time(capsys):
    """--max-minutes was checked before the mapping: 1,000 images on 4-bit membranes were refused as taking too
    long, although both models refuse the mapping before any cycle. The mapping comes first now."""
    code, out, err = _run(["verify", "atsn16x16", FMNIST, "--images", "1000", "--random", "0", "--max-minutes",
                           "0.01", "--set", "pe.vmem_bits=4"], capsys)
    assert code == 0, err
    assert "images 0-999, 1000 images: agree (both refuse: atsn16x16: pe.vmem_bits: 4-bit membranes" in out


def _fmnist_estimates(images: int = 1) -> tuple[float, float]:
    """The engine's estimate for FMNIST's first images on atsn16x16 (before it runs), and the reference's."""
    from satasim_atsn.hw import engine
    from satasim_atsn.hw.arch import load_arch
    from satasim_atsn.workload.format import read_workload

    arch, workload = load_arch("atsn16x16"), read_workload(FMNIST)
    counters = engine.simulate(arch, workload, images).counters()
    return verify.estimated_engine_seconds(arch, workload, images), verify.estimated_reference_seconds(counters)


def test_a_workload_too_long_for_the_engine_is_refused_before_it_runs(capsys, monkeypatch):
    """--max-minutes bounded the reference alone: the engine ran on the user's images whatever its time (seconds per
    image on 10^5 PEs). Now its estimate, from the design and the network, is checked before it runs."""
    from satasim_atsn.hw import engine

    monkeypatch.setattr(engine, "simulate", lambda *a, **k: pytest.fail("the engine ran beyond --max-minutes"))
    code, out, err = _run(["verify", "atsn16x16", FMNIST, "--max-minutes", "0.0001"], capsys)
    assert code == 2 and err.count("\n") == 1
    assert "--images: 1 image of vgg_small_fmnist_atsn on 255 PEs takes the engine alone up to about 2 s" in err
    assert "; use a smaller workload, or allow at least --max-minutes 0.1 for the engine alone (the reference's time " \
           "comes on top, and is said after the engine's run if it does not fit)" in err  # 0.1 then asked for 1.9
    assert "--images 1" not in err  # it is one image already: that fix changed nothing


def test_a_workload_too_long_for_the_engine_and_reference_is_refused_in_one_line(capsys):
    engine_seconds, reference = _fmnist_estimates()
    minutes = (engine_seconds + reference / 2) / 60  # room for the engine, not for the reference after it
    code, out, err = _run(["verify", "atsn16x16", FMNIST, "--random", "0", "--max-minutes", repr(minutes)], capsys)
    assert code == 2 and err.count("\n") == 1
    assert "--images: 1 image last" in err and "for the per-cycle reference (plain Python" in err
    assert f"after up to about {verify.spent(engine_seconds)} for the engine" in err
    assert f"allow it with --max-minutes {verify.minutes_enough(engine_seconds + reference):g}" in err


@pytest.mark.parametrize("images", ["1", pytest.param("3", marks=pytest.mark.slow)])  # 3: 7-12 s, slow tier
def test_the_refusal_names_a_max_minutes_that_lets_it_run(capsys, images):
    """Followed literally, the fix works: the --max-minutes it names passes the check (it said "use --images 1" to a
    run of one image, "a larger --max-minutes" without saying how large, and "about 0 min" for 7 s). A refusal before
    the engine runs names what the engine needs ("at least"): followed, the next names what both need."""
    minutes, refusals = "0.0001", []
    for _ in range(3):
        code, out, err = _run(["verify", "atsn16x16", FMNIST, "--images", images, "--random", "0", "--max-minutes",
                               minutes, "-q"], capsys)
        if code == 0:
            break
        assert code == 2 and "about 0 min" not in err
        assert ("use --images 1, a smaller workload" in err) == (images != "1")
        refusals.append(err)
        minutes = err.rsplit("--max-minutes ", 1)[1].split()[0]
    assert code == 0 and len(refusals) <= 2, refusals
    engine_seconds, reference = _fmnist_estimates(int(images))
    assert float(minutes) * 60 >= engine_seconds + reference  # what ran fits the budget that ran it
    if "allow it with --max-minutes" in refusals[-1]:  # named after the engine's run: exactly what both need
        assert float(minutes) == verify.minutes_enough(engine_seconds + reference)


def test_nothing_to_check_is_refused(capsys):
    code, out, err = _run(["verify", "atsn16x16", "--random", "0"], capsys)
    assert code == 2 and "--random: is 0 and no WORKLOAD is given" in err


def test_random_networks_beyond_max_minutes_are_shrunk_to_one_image_or_skipped(tmp_path, capsys):
    """--max-minutes bounded only the user's workload: the random networks ran whatever the reference's time. Now
    they run in seed order while the estimates fit: one too long is shrunk to its first image, else skipped, and the
    verdict and the JSON say which. The engine's runs count too (estimated before they run): seed 1's two images are
    run by the engine, their reference does not fit, then its first image does, in what that engine run left."""
    from satasim_atsn.hw import engine
    from satasim_atsn.hw.arch import load_arch

    sets = ["array.rows=64", "array.cols=64"]
    arch = load_arch("atsn16x16", sets)
    (_, first, _), (_, second, _), _ = verify.random_cases(arch, 3, 0)
    seed0 = verify.estimated_engine_seconds(arch, first, 1) + verify.estimated_reference_seconds(
        engine.simulate(arch, first, 1).counters())
    engine_two = verify.estimated_engine_seconds(arch, second, 2)
    reference_two = verify.estimated_reference_seconds(engine.simulate(arch, second, 2).counters())
    seed1 = verify.estimated_engine_seconds(arch, second, 1) + verify.estimated_reference_seconds(
        engine.simulate(arch, second, 1).counters())
    minutes = (seed0 + engine_two + seed1 + 0.01) / 60  # seed 0, seed 1's spent run of 2 images and its first image
    assert engine_two + reference_two > engine_two + seed1 + 0.01  # so seed 1 does not fit with its two images
    code, out, err = _run(["verify", "atsn16x16", "--random", "3", "--max-minutes", repr(minutes), "--json",
                           str(tmp_path / "v.json"), *(f"--set={s}" for s in sets)], capsys)
    assert code == 0, err
    assert "  random network, seed 1, 1 image: agree" in out
    assert "  random network, seed 2: skipped (even its first image would take the engine alone up to about 2 s)" in out
    assert out.rstrip().endswith(f"in 2 cases; of the random networks 1 shrunk to 1 image and 1 skipped (about 2 s "
                                 f"more of the engine and the reference) to keep verify's runs of the engine and the "
                                 f"per-cycle reference within --max-minutes {minutes:g}")
    data = json.loads((tmp_path / "v.json").read_text())
    assert [c["images"] for c in data["cases"]] == [1, 1] and data["shrunk"] == ["random network, seed 1"]
    assert [(s["case"], s["engine_ran"]) for s in data["skipped"]] == [("random network, seed 2", False)]
    planned = data["planned_seconds"]
    engine_seconds = verify.estimated_engine_seconds(arch, first, 1) + engine_two + verify.estimated_engine_seconds(
        arch, second, 1)  # seed 2's engine did not run: not counted
    assert planned["total"] <= round(minutes * 60, 1) + 0.05 and planned["engine"] == round(engine_seconds, 1)


def test_the_reference_time_counts_the_pes_and_bounds_a_large_array(capsys):
    """The estimate counted cycles only, not the PEs the reference steps each cycle: on 128x128 PEs three random
    networks (up to about 35 s of the reference) ran under --max-minutes 0.05, on 1024x1024 about an hour. Now nothing
    fits: a one-line refusal whose --max-minutes, followed, runs the cheapest network and skips the rest."""
    sets = ["--set", "array.rows=128", "--set", "array.cols=128"]
    code, out, err = _run(["verify", "atsn16x16", "--random", "3", *sets, "--max-minutes", "0.05"], capsys)
    assert code == 2 and err.count("\n") == 1 and out == "", err
    assert "--max-minutes: the engine and the per-cycle reference take up to about" in err
    assert "for even the cheapest of the 3 random networks on atsn16x16's 16,383 PEs" in err
    enough = err.rsplit("--max-minutes ", 1)[1].split(",")[0]
    code, out, err = _run(["verify", "atsn16x16", "--random", "3", *sets, "--max-minutes", enough], capsys)
    assert code == 0, err
    verdict = out.rstrip().splitlines()[-1]
    assert "in 1 case; of the random networks 2 skipped (about " in verdict and "seed 0, 1 image: agree" in out
    assert verdict.endswith(f" more of the engine and the reference) to keep verify's runs of the engine and the "
                            f"per-cycle reference within --max-minutes {enough}")


def test_a_max_minutes_of_nan_is_refused(capsys):
    """click's FloatRange(0, min_open) lets nan through: the user's workload then ran (no estimate is > nan) and every
    random network was skipped (none is <= nan), in a verdict citing --max-minutes nan."""
    code, out, err = _run(["verify", "atsn16x16", FMNIST, "--max-minutes", "nan"], capsys)
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "--max-minutes: is nan, not a number of minutes; give minutes > 0" in err


def test_the_help_states_the_cycles_of_the_image_it_cites(capsys):
    """The help cited a 562,000-cycle image, a count of an earlier hardware model: the quarter-width VGG16's first
    image on atsn16x16, the example it gives, lasts the cycles the engine counts now."""
    import re

    from satasim_atsn.hw import engine
    from satasim_atsn.hw.arch import load_arch
    from satasim_atsn.workload.format import read_workload

    code, out, _ = _run(["verify", "--help"], capsys)
    stated = re.search(r"first image,\s+([\d,]+)\s+cycles on atsn16x16", " ".join(out.split()))
    assert code == 0 and stated, out
    workload = read_workload(ROOT / "workloads" / "vgg16w025_cifar10_atsn.npz")
    counted = engine.simulate(load_arch("atsn16x16"), workload, 1).counters()["total_cycles"]
    assert int(stated.group(1).replace(",", "")) == counted


@pytest.mark.parametrize("sets", [["--random", "3", "--set", "pe.weight_memory_bytes=20"],  # refused by both
                                  ["--random", "1", "--set", "exit_unit.vmem_bits=4"]])  # no random network fits
def test_the_json_names_a_users_design_by_file_name_from_any_directory(sets, tmp_path, capsys, monkeypatch):
    """A refusal (or the reason nothing was compared) names the design's file; in --json it named it as typed, so the
    same verification from another directory wrote other bytes. The JSON names the file alone, as run and sweep do."""
    design = tmp_path / "mine" / "my_design.yaml"
    design.parent.mkdir()
    design.write_text((ROOT / "archs" / "conventional16x16.yaml").read_text())
    network = str(tmp_path / "spk.npz")
    _run(["workload", "build", "--network", str(_spiking_output_network(tmp_path)), "--rate", "0.3", "--timesteps",
          "2", "--num-images", "1", "-o", network], capsys)
    outputs = []
    for where, spelling in (("mine", "my_design.yaml"), ("deeper/down", str(design))):
        (tmp_path / where).mkdir(parents=True, exist_ok=True)
        monkeypatch.chdir(tmp_path / where)
        code, _, err = _run(["verify", spelling, network, "--json", "v.json", "-q", *sets], capsys)
        assert code == 0, err
        outputs.append((tmp_path / where / "v.json").read_bytes())
    assert outputs[0] == outputs[1]
    record = json.loads(outputs[0])
    named = [c["refused"] for c in record["cases"] if c["refused"]] + [record["not_compared"] or ""]
    assert any(text.startswith("my_design.yaml: ") for text in named)


def _spiking_output_network(tmp_path: Path) -> Path:
    """A network file ending in a spiking layer (it runs on a design whose output membranes hold no workload's)."""
    path = tmp_path / "spk.yaml"
    path.write_text("name: spk\ninput_shape: [1, 4, 4]\nlayers:\n"
                    "  - {name: c1, type: conv, out_channels: 1, kernel: 3, padding: 1}\n"
                    "  - {name: f, type: flatten}\n  - {name: l, type: linear, out_features: 3}\n")
    return path


def test_a_users_workload_the_design_cannot_map_is_compared_as_a_refusal(tmp_path, capsys):
    """A workload too large for the design's PE weight memories: verify printed the engine's refusal as its verdict
    (exit code 2) without asking the reference; now both are asked, as for random networks, and both refusing, for
    the same field and fix, is an agreement on the refusal."""
    code, out, err = _run(["verify", "atsn16x16", FMNIST, "--random", "0", "--set", "pe.weight_memory_bytes=20",
                           "--json", str(tmp_path / "v.json")], capsys)
    assert code == 0, err
    assert "vgg_small_fmnist_atsn, image 0, 1 image: agree (both refuse: atsn16x16: pe.weight_memory_bytes:" in out
    assert out.rstrip().endswith("in 1 case (1 refused by both, for the same field and fix)")
    case = json.loads((tmp_path / "v.json").read_text())["cases"][0]
    assert case["agree"] and case["total_cycles"] is None
    assert case["refused"].startswith("atsn16x16: pe.weight_memory_bytes: 20 B cannot hold")


def test_a_users_workload_refused_by_one_model_only_is_a_difference(capsys, monkeypatch):
    """Only the engine refuses: a difference (exit code 1), found without running the reference's cycles (it is
    stopped at its first); only the reference refuses: a difference too."""
    from satasim_atsn.hw import engine

    real_engine, real_reference, heard = engine.simulate, verify.simulate_reference, []

    def engine_refuses(arch, *args, **kwargs):
        raise MappingError.at(arch.where, "pe.weight_memory_bytes", "made up", "raise it")

    def counting(arch, workload, images, start=0, on_cycles=None):
        return real_reference(arch, workload, images, start, lambda now: (heard.append(now), on_cycles(now)))

    monkeypatch.setattr(engine, "simulate", engine_refuses)
    monkeypatch.setattr(verify, "simulate_reference", counting)
    code, _, err = _run(["verify", "atsn16x16", FMNIST, "--random", "0"], capsys)
    assert code == 1 and heard == [0], err
    assert "the engine refuses (atsn16x16: pe.weight_memory_bytes: made up; raise it), the reference runs" in err

    def reference_refuses(arch, *args, **kwargs):
        raise MappingError.at(arch.where, "pe.weight_memory_bytes", "made up", "raise it")

    monkeypatch.setattr(engine, "simulate", real_engine)
    monkeypatch.setattr(verify, "simulate_reference", reference_refuses)
    code, _, err = _run(["verify", "atsn16x16", FMNIST, "--random", "0"], capsys)
    assert code == 1 and "refusal: the reference refuses (atsn16x16: pe.weight_memory_bytes: made up" in err


def test_a_refused_workload_is_named_by_file_name_in_the_json_from_any_directory(tmp_path, capsys, monkeypatch):
    """The refusal of a user's workload names it as typed; --json recorded that path, so the same verification from
    another directory wrote other bytes. The JSON names it by its file name, as it names the design."""
    outputs = []
    for where, spelling in (("a", FMNIST), ("b/c", str(Path("..") / ".." / Path(FMNIST).relative_to(ROOT)))):
        (tmp_path / where).mkdir(parents=True)
        monkeypatch.chdir(tmp_path / where)
        if where == "b/c":  # the workload by a relative path: the checkout's, seen from two folders down
            (tmp_path / "workloads").symlink_to(ROOT / "workloads")
        code, _, err = _run(["verify", "atsn16x16", spelling, "--random", "0", "--set", "pe.vmem_bits=8", "-q",
                             "--json", "v.json"], capsys)
        assert code == 0, err
        outputs.append((tmp_path / where / "v.json").read_bytes())
    assert outputs[0] == outputs[1]
    refused = json.loads(outputs[0])["cases"][0]["refused"]
    assert "of vgg_small_fmnist_atsn.npz (its quant.vmem_bits)" in refused and "/" not in refused


@pytest.mark.parametrize("sets", [[], ["--set", "pe.vmem_bits=8"]])
def test_a_spiking_output_network_on_a_deciding_exit_unit_is_refused_alike_by_both_models(sets, tmp_path, capsys):
    """A network without an output layer on an at design: the engine refused it while mapping (exit_unit.kind,
    section 11 rule 7), the reference only in its functional trace, as a WorkloadError naming the workload, so verify
    stopped on the reference's error (exit code 2); with a second problem (PE membranes too narrow) the reference
    named that one and verify called the two models different (exit code 1, "please report it"). Both refuse it
    while mapping now, naming exit_unit.kind and the same fix."""
    from satasim_atsn.workload.format import write_workload
    from satasim_atsn.workload.synthetic import random_workload

    path = tmp_path / "spiking_out.npz"
    write_workload(path, random_workload(3, images=2, output_layer=False))
    code, out, err = _run(["verify", "atsn16x16", str(path), "--random", "0", *sets], capsys)
    assert code == 0, err
    assert "agree (both refuse: atsn16x16: exit_unit.kind: the at exit rule needs an output layer" in out
    assert out.rstrip().endswith("in 1 case (1 refused by both, for the same field and fix)")


def test_an_output_layer_reading_the_image_is_refused_alike_by_both_models(tmp_path, capsys):
    """A network of one output layer on direct-encoded images, on a design with an exit tile: both models refuse it
    (section 11), but the reference's refusal named no fix, so verify called them different (exit code 1, "please
    report it") on a shipped design. Both name the field and the same fix now."""
    net = tmp_path / "only.yaml"
    net.write_text("input_shape: [5]\nnum_classes: 2\nlayers:\n  - {name: fc, type: output}\n")
    workload = tmp_path / "only.npz"
    with pytest.raises(SystemExit):
        main(["workload", "build", "--network", str(net), "--rate", "0.2", "--timesteps", "2", "--num-images", "2",
              "--exit-mean", "atsn=1.5", "-o", str(workload)])
    capsys.readouterr()
    code, out, err = _run(["verify", "atsn16x16", str(workload), "--random", "0"], capsys)
    assert code == 0, err
    assert "agree (both refuse: " in out and "layers: the output layer reads the image" in out
    assert out.rstrip().endswith("in 1 case (1 refused by both, for the same field and fix)")
