"""`satasim run` and `satasim bench` on small workloads; bad inputs give one line, exit 2, no partial files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from satasim_atsn.cli import main
from satasim_atsn.workload.format import write_workload
from satasim_atsn.workload.synthetic import random_workload

ARCH = str(Path(__file__).resolve().parent.parent / "archs" / "atsn16x16.yaml")
SMALL = ["--set", "array.rows=2", "--set", "array.cols=3", "--set", "accelerators=2"]


@pytest.fixture()
def workload_file(tmp_path):
    path = tmp_path / "wl.npz"
    write_workload(path, random_workload(21, images=4))
    return str(path)


def run(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    out = capsys.readouterr()
    return info.value.code, out.out, out.err


def test_run_writes_json_and_csv(workload_file, tmp_path, capsys):
    out_json, out_csv = tmp_path / "r.json", tmp_path / "csv"
    code, out, err = run(["run", ARCH, workload_file, *SMALL, "--json", str(out_json), "--csv", str(out_csv)], capsys)
    assert code == 0, err
    assert "FPS" in out
    data = json.loads(out_json.read_text())
    assert data["counters"]["total_cycles"] > 0 and data["metrics"]["images"] == 4
    assert "timing" not in data
    assert (out_csv / "layers.csv").read_text().startswith("group,name,kind")
    assert len((out_csv / "images.csv").read_text().splitlines()) == 5


def test_edp_is_per_image_and_agrees_with_compare(workload_file, tmp_path, capsys):
    metrics = []
    for images in ("2", "4"):
        out_json = tmp_path / f"r{images}.json"
        code, _, err = run(["run", ARCH, workload_file, *SMALL, "--images", images, "--quiet", "--json", str(out_json)],
                           capsys)
        assert code == 0, err
        m = json.loads(out_json.read_text())["metrics"]
        # energy per image (uJ) x mean latency (ms) = 1e-9 J*s
        assert m["edp_J_s"] == pytest.approx(m["energy_per_image_uJ"] * m["latency_ms"]["mean"] * 1e-9, rel=1e-12)
        metrics.append(m)
    # twice the images, not twice the EDP: the random images differ a little, never by 2x
    assert 0.5 < metrics[1]["edp_J_s"] / metrics[0]["edp_J_s"] < 1.5
    out = tmp_path / "cmp"
    code, _, err = run(["compare", "--no-plots", ARCH, "conventional16x16", workload_file, *SMALL, "--images", "4",
                        "--quiet",
                        "-o", str(out), "--json", str(tmp_path / "c.json")], capsys)
    assert code == 0, err
    summary = json.loads((tmp_path / "c.json").read_text())
    text = json.dumps(summary)
    assert "edp_uJ_ms" in text
    rows = [row for row in _find_dicts(summary) if "edp_uJ_ms" in row]
    assert any(row["edp_uJ_ms"] == pytest.approx(metrics[1]["edp_J_s"] * 1e9, rel=1e-9) for row in rows)


def _find_dicts(node):
    """Every dict nested in a JSON value."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _find_dicts(value)
    elif isinstance(node, list):
        for value in node:
            yield from _find_dicts(value)


def test_run_images_start_and_timing(workload_file, tmp_path, capsys):
    out_json = tmp_path / "r.json"
    argv = ["run", ARCH, workload_file, *SMALL, "--images", "2", "--start", "1", "--quiet", "--timing"]
    code, out, err = run(argv + ["--json", str(out_json)], capsys)
    assert code == 0, err
    data = json.loads(out_json.read_text())
    assert data["metrics"]["images"] == 2 and data["start"] == 1
    assert data["timing"]["wall_seconds"] > 0
    assert out == ""


@pytest.mark.parametrize(
    "extra, arch_ok, wl_ok",
    [
        (["--set", "pe.adders=zero"], True, True),
        (["--set", "pe.addrs=2"], True, True),
        (["--images", "99"], True, True),
        (["--start", "-1"], True, True),
        (["--set", "pe.data_memory_bytes=1"], True, True),
        ([], False, True),
        ([], True, False),
    ],
)
def test_bad_inputs_exit_2_without_partial_files(workload_file, tmp_path, capsys, extra, arch_ok, wl_ok):
    out_json, out_csv = tmp_path / "r.json", tmp_path / "csv"
    arch = ARCH if arch_ok else str(tmp_path / "missing.yaml")
    wl = workload_file if wl_ok else str(tmp_path / "missing.npz")
    code, out, err = run(["run", arch, wl, *SMALL, *extra, "--json", str(out_json), "--csv", str(out_csv)], capsys)
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("satasim: error:"), err
    assert not out_json.exists() and not out_csv.exists()
    assert not list(tmp_path.glob(".r.json*"))


def test_unwritable_json_path_fails_before_simulating(workload_file, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = run(["run", ARCH, workload_file, *SMALL, "--json", str(blocker / "r.json")], capsys)
    assert code == 2 and "cannot be written" in err


def test_bench_prints_both_times_and_ratio(workload_file, tmp_path, capsys):
    out_json = tmp_path / "b.json"
    code, out, err = run(["bench", workload_file, "--arch", ARCH, *SMALL, "--images", "3", "--json", str(out_json)],
                         capsys)
    assert code == 0, err
    data = json.loads(out_json.read_text())
    assert data["images"] == 3 and data["forward_seconds"] > 0 and data["simulate_seconds"] > 0
    assert "ratio" in out and "peak memory" in out
    assert data["repeat"] == 3 and len(data["forward_seconds_all"]) == len(data["simulate_seconds_all"]) == 3
    assert data["forward_seconds"] == sorted(data["forward_seconds_all"])[1]  # the median of 3 rounds
    assert data["ratio"] == data["simulate_seconds"] / data["forward_seconds"]


def test_bench_single_round_and_bad_repeat(workload_file, tmp_path, capsys):
    out_json = tmp_path / "b.json"
    code, out, err = run(["bench", workload_file, "--arch", ARCH, *SMALL, "--images", "2", "--repeat", "1",
                          "--json", str(out_json)], capsys)
    assert code == 0, err
    data = json.loads(out_json.read_text())
    assert data["forward_seconds_all"] == [data["forward_seconds"]]
    code, _, err = run(["bench", workload_file, "--arch", ARCH, *SMALL, "--repeat", "0"], capsys)
    assert code == 2 and "--repeat" in err and len(err.strip().splitlines()) == 1


def test_bench_names_the_set_values_it_ran_with(workload_file, tmp_path, capsys):
    """Two benches of one arch name with other --set values are told apart, on the terminal and in the JSON."""
    out_json = tmp_path / "b.json"
    code, out, err = run(["bench", workload_file, "--arch", ARCH, *SMALL, "--images", "1", "--repeat", "1",
                          "--json", str(out_json)], capsys)
    assert code == 0, err
    assert json.loads(out_json.read_text())["set"] == ["array.rows=2", "array.cols=3", "accelerators=2"]
    assert out.splitlines()[0] == ("random-21 on atsn16x16 --set array.rows=2 --set array.cols=3 "
                                   "--set accelerators=2, 1 image")


@pytest.mark.parametrize(("forward", "simulation"), [(0.006891, 0.06003), (0.01268, 0.03617), (0.315, 1.5601),
                                                     (0.0004123, 0.0231), (2.5, 61.25)])
def test_bench_ratio_is_the_quotient_of_the_times_it_prints(workload_file, monkeypatch, forward, simulation, capsys):
    """The printed ratio is what the printed medians give (to 1%), also for runs of milliseconds."""
    from types import SimpleNamespace

    import satasim_atsn.hw.commands as commands

    clock = {"now": 0.0, "calls": 0}

    def perf_counter() -> float:  # bench reads it before and after each forward, then each simulation
        clock["calls"] += 1
        if clock["calls"] % 2 == 0:
            clock["now"] += forward if clock["calls"] % 4 == 2 else simulation
        return clock["now"]

    monkeypatch.setattr(commands, "time", SimpleNamespace(perf_counter=perf_counter))
    code, out, err = run(["bench", workload_file, "--arch", ARCH, *SMALL, "--images", "1", "--repeat", "1"], capsys)
    assert code == 0, err
    shown = {line[:38].strip(): float(line[38:].split()[0]) for line in out.splitlines()[1:4]}
    ratio = shown["ratio simulation / forward"]
    assert ratio == round(simulation / forward, 2)
    quotient = shown["simulation (satasim run)"] / shown["functional forward"]
    assert abs(quotient - ratio) <= 0.01 * ratio, (quotient, ratio, out)


def test_bench_refuses_an_empty_arch_instead_of_timing_the_default(workload_file, capsys):
    """`--arch "$DESIGN"` with DESIGN unset must not time atsn16x16 as if it were the user's design."""
    code, out, err = run(["bench", workload_file, "--arch", "", "--images", "1", "--repeat", "1"], capsys)
    assert code == 2 and out == ""
    assert err.strip() == ("satasim: error: --arch: is an empty path (a shell variable left unset?); give an "
                           "architecture YAML's path or a shipped design's name (e.g. atsn16x16), "
                           "or leave the option out")


def test_a_small_input_spike_buffer_spills_like_a_small_output_buffer(workload_file, tmp_path, capsys):
    counters = {}
    for label, sets in (("big", []), ("small_in", ["--set", "global_buffers.input.bytes=2"]),
                        ("small_out", ["--set", "global_buffers.output.bytes=2"])):
        out_json = tmp_path / f"{label}.json"
        code, _, err = run(["run", ARCH, workload_file, *SMALL, *sets, "--quiet", "--json", str(out_json)], capsys)
        assert code == 0, err
        data = json.loads(out_json.read_text())
        counters[label] = (data["counters"]["total_cycles"], data["totals"]["dram_write_bytes"])
    # the spike buffers are a ping-pong pair: a map must fit the smaller one, whichever it is
    assert counters["small_in"] == counters["small_out"]
    assert counters["small_in"][0] > counters["big"][0] and counters["small_in"][1] > counters["big"][1]


@pytest.mark.parametrize(("buffer_bytes", "expect"), [(16, "not resident: {reads:,} DRAM reads of up to 16 B per "
                                                            "batch-timestep ({later:,} after t = 1), read ahead into "
                                                            "2 banks"),
                                                      (10**7, "resident in the 10,000,000 B weight buffer")])
def test_summary_says_where_weights_live_and_how_many_reads_fetch_them(workload_file, tmp_path, capsys,
                                                                      buffer_bytes, expect):
    out_json = tmp_path / "r.json"
    code, out, err = run(["run", ARCH, workload_file, *SMALL, "--set", f"global_buffers.weight.bytes={buffer_bytes}",
                          "--json", str(out_json)], capsys)
    assert code == 0, err
    mapping = json.loads(out_json.read_text())["mapping"]
    line = next(ln for ln in out.splitlines() if ln.strip().startswith("mapping"))
    assert f"weights {mapping['total_weight_bytes']:,} B" in line
    assert expect.format(reads=mapping["weight_fetch_reads"], later=mapping["weight_fetch_reads_after_first_step"]) \
        in line
    assert (mapping["weight_fetch_reads"] == 0) == (buffer_bytes == 10**7)
    # the direct-encoded image's layer fetches its weights at t = 1 only (section 5): later passes read fewer
    assert (mapping["weight_fetch_reads_after_first_step"] < mapping["weight_fetch_reads"]) == (buffer_bytes == 16)
    assert "streamed at 8 B/cycle (the NoC link's width; the weight port gives 32)" in line  # section 4 phase 2
    assert mapping["weight_fetch_reads"] == 0 or mapping["weight_fetch_reads"] > len(mapping["groups"])


def test_every_quiet_option_is_also_minus_q():
    """`satasim run ... -q` was 'No such option'; every other command took -q for --quiet."""
    import click

    from satasim_atsn.cli import _register_commands, cli

    _register_commands()
    missing, seen = [], []

    def walk(command: click.Command, name: str) -> None:
        for param in command.params:
            if param.name == "quiet":
                seen.append(name)
                if "-q" not in param.opts:
                    missing.append(name)
        for sub_name, sub in getattr(command, "commands", {}).items():
            walk(sub, f"{name} {sub_name}")

    walk(cli, "satasim")
    assert "satasim run" in seen and len(seen) >= 6 and not missing


def test_run_says_when_the_exit_unit_ignores_the_workloads_own_thresholds(workload_file, capsys):
    """The exit unit's thresholds are the architecture's; a workload whose own defaults (used by evaluate)
    differ is told so, with the --set that applies them; -q keeps the note quiet too."""
    code, out, err = run(["run", ARCH, workload_file, *SMALL], capsys)  # random workloads: 0.9 / 0.95
    assert code == 0, err
    assert ("note: the exit unit decides with the architecture's cl_init 0.999, tau_cl 0.999; the workload's own "
            "cl_init 0.9, tau_cl 0.95 (satasim evaluate's defaults) apply with --set exit_unit.cl_init=0.9 "
            "--set exit_unit.tau_cl=0.95") in err
    code, out, err = run(["run", ARCH, workload_file, *SMALL, "--set", "exit_unit.cl_init=0.9",
                          "--set", "exit_unit.tau_cl=0.95"], capsys)
    assert code == 0 and "note:" not in err
    code, out, err = run(["run", ARCH, workload_file, *SMALL, "-q"], capsys)
    assert code == 0 and err == "" and out == ""


def test_json_on_standard_output_is_json_alone(workload_file):
    """--json - is for a pipe into jq: the readable summary goes to stderr instead of being mixed into it (the
    README used to ask for --quiet)."""
    import subprocess
    import sys

    for argv in (["run", ARCH, workload_file, *SMALL, "--json", "-"], ["workload", "info", workload_file, "--json=-"]):
        done = subprocess.run([sys.executable, "-m", "satasim_atsn", *argv], capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, done.stderr
        assert isinstance(json.loads(done.stdout), dict)
        assert ("makespan" if argv[0] == "run" else "layer") in done.stderr


def test_run_says_a_statistical_workloads_exits_ignore_the_thresholds(capsys):
    """`--set exit_unit.cl_init=0.5` on a statistical workload gave the default run's numbers without a word."""
    shipped = str(Path(ARCH).parent.parent / "workloads" / "vgg16_cifar10.npz")
    code, out, err = run(["run", ARCH, shipped, "--images", "4", "--set", "exit_unit.cl_init=0.5"], capsys)
    assert code == 0, err
    assert ("note: the architecture's cl_init 0.5 does not change this statistical workload's exits: they are drawn "
            "from its exit histogram (the file's meta.exit_policy says cl_init 0.999); a rate table measured at the "
            "architecture's thresholds: satasim workload rates TRAINED --network NET --dataset D --cl-init 0.5 -o "
            "T.yaml, then satasim workload build --network NET --rates T.yaml --dataset D -o W.npz"
            ) in err  # it is built from workloads/rates/
    code, out, err = run(["run", ARCH, shipped, "--images", "4"], capsys)
    assert code == 0 and "note:" not in err


def test_the_rate_table_remedy_names_every_option_its_commands_require(capsys):
    """The note ended 'then satasim workload build --rates T.yaml', which build refuses (--network, -o and, with
    --rates, --dataset are required): each command the note gives now carries its command's required options."""
    from satasim_atsn.traces.commands import workload_group

    shipped = str(Path(ARCH).parent.parent / "workloads" / "vgg16_cifar10.npz")
    code, _, err = run(["run", ARCH, shipped, "--images", "4", "--set", "exit_unit.cl_init=0.5"], capsys)
    assert code == 0, err
    remedy = next(line for line in err.splitlines() if "rate table measured" in line).split("thresholds: ", 1)[1]
    commands = [part.split() for part in remedy.split(", then ")]
    assert [words[:3] for words in commands] == [["satasim", "workload", "rates"], ["satasim", "workload", "build"]]
    for words in commands:
        required = [p for p in workload_group.commands[words[2]].params if p.required]
        for param in required:
            assert param.param_type_name == "argument" or set(param.opts) & set(words), (param.opts, words)
        assert "--rates" not in words or "--dataset" in words, words  # build: --dataset is required with --rates


def test_too_few_images_for_the_accelerators_are_noted(capsys):
    """2 images on 4 accelerators: the 2 idle ones leak over the makespan, halving FPS per design without a word."""
    from satasim_atsn.cli import main

    workload = str(Path(__file__).resolve().parents[1] / "workloads" / "vgg_small_fmnist_atsn.npz")
    with pytest.raises(SystemExit) as stop:
        main(["run", "atsn16x16", workload, "--images", "2"])
    assert stop.value.code in (0, None)
    assert "note: 2 images in batches of 1 keep 2 of the 4 accelerators busy" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["run", "atsn16x16", workload, "--images", "4"])
    assert "accelerators busy" not in capsys.readouterr().err


def test_a_technology_entry_the_design_never_reads_is_noted(capsys):
    """--set tech.dram_ddr4_energy_pJ_per_bit=100 on the LPDDR4 design changed nothing, yet the results recorded it."""
    from satasim_atsn.cli import main

    workload = str(Path(__file__).resolve().parents[1] / "workloads" / "vgg_small_fmnist_atsn.npz")
    with pytest.raises(SystemExit):
        main(["run", "atsn16x16", workload, "--images", "4", "--set", "tech.dram_ddr4_energy_pJ_per_bit=100",
              "--set", "tech.dram_lpddr4_energy_pJ_per_bit=9"])
    err = capsys.readouterr().err
    assert "note: --set tech.dram_ddr4_energy_pJ_per_bit changes nothing in this design" in err
    assert "lpddr4" not in err.split("changes nothing")[0]


def test_the_notes_a_run_prints_are_in_its_json(tmp_path, capsys):
    """Notes went to stderr only: a script reading --json could not tell a short run or an unused --set."""
    from satasim_atsn.cli import main

    workload = str(Path(__file__).resolve().parents[1] / "workloads" / "vgg_small_fmnist_atsn.npz")
    out = tmp_path / "r.json"
    with pytest.raises(SystemExit):
        main(["run", "atsn16x16", workload, "--images", "2", "--set", "tech.dram_ddr4_energy_pJ_per_bit=100",
              "--json", str(out), "--quiet"])
    assert capsys.readouterr().err == ""  # --quiet prints no note, the JSON still holds them
    notes = json.loads(out.read_text())["notes"]
    assert [n.split(" ")[0] for n in notes] == ["2", "--set"]
    assert notes[0].startswith("2 images in batches of 1 keep 2 of the 4 accelerators busy")
    with pytest.raises(SystemExit):
        main(["run", "atsn16x16", workload, "--images", "4", "--json", str(out), "--quiet"])
    assert json.loads(out.read_text())["notes"] == []


def test_batch_refill_where_it_cannot_act_is_noted(tmp_path, capsys):
    """`batch_refill: true` on a design without a deciding exit unit gave the same numbers as without, silently."""
    from satasim_atsn.cli import main

    workload = str(Path(__file__).resolve().parents[1] / "workloads" / "vgg_small_fmnist_atsn.npz")
    refill = ["--images", "16", "--set", "images_per_batch=4", "--set", "batch_refill=true"]
    with pytest.raises(SystemExit):
        main(["run", "conventional16x16", workload, *refill])
    assert "note: batch_refill changes nothing here: the design has no deciding exit unit" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["run", "atsn16x16", workload, *refill])
    assert "batch_refill" not in capsys.readouterr().err  # ATSN's early exits free slots: it acts
    with pytest.raises(SystemExit):
        main(["run", "atsn16x16", workload, "--images", "4", "--set", "batch_refill=true"])
    assert "batch_refill changes nothing here: a batch holds one image" in capsys.readouterr().err


@pytest.mark.parametrize(("design", "sets", "why"), [
    ("atsn16x16", ["images_per_batch=2"], None),
    ("atsn16x16", ["images_per_batch=4"], None),
    ("atsn16x16", ["images_per_batch=1"], "a batch holds one image"),
    ("conventional16x16", ["images_per_batch=2"],
     "the design has no deciding exit unit, so no image leaves its batch early"),
])
def test_batch_refill_is_noted_exactly_where_it_cannot_act(design, sets, why):
    """It acts with a deciding exit unit and two or more images a batch (a deciding unit needs the timestep_major
    dataflow: layer_major is refused beside it, so its reason is never the one given)."""
    from satasim_atsn.hw.arch import load_arch
    from satasim_atsn.hw.notes import batch_refill_note

    path = Path(__file__).resolve().parents[1] / "archs" / f"{design}.yaml"
    arch = load_arch(str(path), ["batch_refill=true", *sets])
    note = batch_refill_note(arch)
    assert note == (None if why is None else f"note: batch_refill changes nothing here: {why} (docs/architecture.md)")


def test_an_exit_unit_field_set_on_a_design_without_an_exit_tile_is_noted(tmp_path, capsys):
    """--set exit_unit.adders=4 with array.exit_unit_tiles=0 (the file's exit_unit section kept) gave the numbers of
    the design without it, silently: the note says it acts on nothing; the kind and null removals that make the
    section valid are no change and get no note."""
    from satasim_atsn.cli import main

    workload = str(Path(__file__).resolve().parents[1] / "workloads" / "vgg_small_fmnist_atsn.npz")
    on_pes = ["--images", "4", "--set", "array.exit_unit_tiles=0"]
    with pytest.raises(SystemExit):
        main(["run", "conventional16x16", workload, *on_pes, "--set", "exit_unit.adders=4",
              "--set", "exit_unit.multipliers=null", "--json", str(tmp_path / "a.json")])
    err = capsys.readouterr().err
    assert "note: exit_unit.adders=4 changes nothing here: array.exit_unit_tiles is 0" in err
    assert "multipliers" not in err
    assert any("exit_unit.adders=4" in n for n in json.loads((tmp_path / "a.json").read_text())["notes"])
    with pytest.raises(SystemExit):
        main(["run", "conventional16x16", workload, *on_pes, "--set", "exit_unit.kind=none"])
    with pytest.raises(SystemExit):
        main(["run", "conventional16x16", workload, "--images", "4", "--set", "exit_unit.adders=4"])
    assert "changes nothing" not in capsys.readouterr().err  # the kind alone, and an exit tile that has the adders


def test_memories_far_outside_the_technology_table_are_noted(tmp_path, capsys):
    """A 2 B PE memory cost 0.014 pJ per access and a 1 TB one 2.4e9 mm2, extrapolated without a word (4 B here:
    a first layer's membrane and current need two words, section 5)."""
    from satasim_atsn.cli import main

    workload = str(Path(__file__).resolve().parents[1] / "workloads" / "vgg_small_fmnist_atsn.npz")
    out = tmp_path / "r.json"
    with pytest.raises(SystemExit):
        main(["run", "atsn16x16", workload, "--images", "4", "--set", "pe.data_memory_bytes=4",
              "--set", "global_buffers.weight.bytes=1474560", "--json", str(out)])
    err = capsys.readouterr().err
    assert ("note: the SRAM figures of pe.data_memory_bytes (4 B; the smallest sram64 point is 1,024 B); "
            "global_buffers.weight.bytes (1,474,560 B; the largest glb point is 147,456 B) are extrapolated") in err
    assert any("extrapolated log-log" in n for n in json.loads(out.read_text())["notes"])
    # within twice the table's range (interpolated or just beyond it): no note
    with pytest.raises(SystemExit):
        main(["run", "atsn16x16", workload, "--images", "4", "--set", "pe.data_memory_bytes=512",
              "--set", "global_buffers.weight.bytes=294912"])
    assert "extrapolated" not in capsys.readouterr().err


def test_a_long_exit_histogram_stays_one_readable_line():
    """T = 1024 printed all 1024 counts on the summary line; the JSON keeps the whole list."""
    from satasim_atsn.hw.results import _exits_shown

    assert _exits_shown([0, 2, 0, 2]) == "[0, 2, 0, 2]"
    assert _exits_shown([0] * 20 + [5] + [0] * 1000 + [7]) == "{t=21: 5, t=1022: 7} (the rest 0)"
    many = _exits_shown([1] * 40)
    assert "... 24 more ..." in many and many.startswith("{t=1: 1") and many.count("t=") == 16


def test_a_slow_design_prints_its_throughput_and_times_not_zero(workload_file, tmp_path, capsys):
    """At 1 kHz the summary printed 'throughput 0.0 FPS' (0.0024 FPS) and '1 images'; every printed number that
    is not 0 shows as not 0, and agrees with the JSON to its printed digits."""
    out_json = tmp_path / "r.json"
    code, out, err = run(["run", ARCH, workload_file, *SMALL, "--images", "1", "--set", "clock_hz=1e3",
                          "--set", "noc.hop_cycles=100000", "--json", str(out_json)], capsys)
    assert code == 0, err
    m = json.loads(out_json.read_text())["metrics"]
    assert 0 < m["fps"] < 0.05  # slow enough that one decimal shows 0.0
    line = next(x for x in out.splitlines() if x.strip().startswith("throughput"))
    shown = float(line.split()[1])
    assert shown == pytest.approx(m["fps"], rel=5e-3), line
    assert ": 1 image from #0," in out.splitlines()[0], out.splitlines()[0]


def test_the_accuracy_line_counts_differing_predictions_in_words_that_agree():
    """The summary printed '1 predictions differ'; one prediction differs, two predictions differ."""
    from satasim_atsn.hw.results import _predictions_differ

    assert _predictions_differ(1) == "1 prediction differs"
    assert [_predictions_differ(n) for n in (0, 2)] == ["0 predictions differ", "2 predictions differ"]


def test_a_design_without_an_exit_tile_has_no_exit_unit_busy_line(workload_file, tmp_path, capsys):
    """The summary said 'exit unit 0.0%' for a design with no exit unit (exit_unit_tiles: 0); its JSON keeps the
    key, idle throughout (docs/results.md)."""
    own = str(Path(ARCH).parent.parent / "examples" / "my_array12x12.yaml")
    out_json = tmp_path / "r.json"
    code, out, err = run(["run", own, workload_file, "--json", str(out_json)], capsys)
    assert code == 0, err
    line = next(ln for ln in out.splitlines() if ln.strip().startswith("unit busy"))
    assert "no exit unit; DRAM channel" in line and "exit unit 0" not in line
    assert json.loads(out_json.read_text())["utilisation"]["exit_unit"]["idle"] == 1
    code, out, err = run(["run", ARCH, workload_file, *SMALL], capsys)
    assert code == 0, err
    assert "unit busy       exit unit " in out and "no exit unit" not in out


def test_bench_times_the_shipped_design_whatever_the_working_directory_holds(workload_file, tmp_path, capsys,
                                                                             monkeypatch):
    """bench's default design was the bare name atsn16x16, which a folder of that name in the working directory (a
    sweep's -o) won over: 'atsn16x16: cannot read (Is a directory)'."""
    (tmp_path / "cwd" / "atsn16x16").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "cwd")
    code, out, err = run(["bench", workload_file, "--images", "1", "--repeat", "1"], capsys)
    assert code == 0, err
    assert " on atsn16x16, 1 image" in out


def test_the_threshold_note_of_assumed_exits_names_the_build_not_a_trained_network(tmp_path, capsys):
    """A workload built with --exit-mean was told to refit 'a twin ... workload stats TRAINED' or measure a table:
    its exits are an assumed mean, which is what the note now says to change (a measured table stays the way)."""
    built = tmp_path / "assumed.npz"
    code, _, err = run(["workload", "build", "--network", "vgg16", "--rate", "0.1",
                        "--timesteps", "4", "--exit-mean", "atsn=2.5", "--num-images", "4", "-o", str(built)], capsys)
    assert code == 0, err
    code, _, err = run(["run", ARCH, str(built), "--images", "2", "--set", "exit_unit.cl_init=0.5"], capsys)
    assert code == 0, err
    assert ("they are drawn from an assumed exit histogram (a mean given to the build, not measured) (the file's "
            "meta.exit_policy says cl_init 0.999); give the build the mean these thresholds would give (workload "
            "build --exit-mean atsn=M, or the table's exit_mean_timesteps), or measure the exits of a trained "
            "network at them: satasim workload rates TRAINED --network NET --dataset D --cl-init 0.5") in err, err
    assert "workload stats TRAINED" not in err


def test_the_idle_accelerator_advice_stays_within_the_workload(capsys):
    """'run at least 16384 images' of a 1000-image workload: the run that followed it was refused; the note now
    says to shrink the design instead."""
    fmnist = str(Path(ARCH).parent.parent / "workloads" / "vgg_small_fmnist_atsn.npz")
    code, _, err = run(["run", ARCH, fmnist, "--images", "8", "--set", "images_per_batch=300", "--set",
                        "exit_unit.data_memory_bytes=1048576", "--set", "pe.data_memory_bytes=1048576"], capsys)
    assert code == 0, err
    assert ("(the workload holds 1000 from this start, so use at most 3 accelerators, or images_per_batch at most "
            "250)") in err, err
    code, _, err = run(["run", ARCH, fmnist, "--images", "2", "--start", "10"], capsys)
    assert code == 0 and "(run at least 4 images)" in err, err
