"""Inputs at the edge of what a command models: a spike-frame workload measured into a rate table, running out
of memory, network files whose mistakes must be named by the user's own lines, a network of one output layer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from cli_helpers import one_line_error

from satasim_atsn.cli import main
from satasim_atsn.workload.format import write_workload

ROOT = Path(__file__).resolve().parents[1]


def test_rates_of_a_spike_frame_workload_build_a_spike_frame_workload(tmp_path, capsys):
    """A rate table used to describe pixels only: `build` made a DVS-style network read pixels at assumed
    densities (2.4x the synaptic operations). It now carries the measured input frame rate per timestep."""
    nir = pytest.importorskip("nir")
    from satasim_atsn.interchange.nir_io import import_nir
    from satasim_atsn.workload.format import read_workload

    rng = np.random.default_rng(0)
    s = (4, 8, 8)
    graph = nir.NIRGraph(nodes={
        "input": nir.Input(input_type={"input": np.array([1, 8, 8])}),
        "conv": nir.Conv2d(input_shape=(8, 8), weight=rng.normal(0, 1.0, (4, 1, 3, 3)), stride=1, padding=1,
                           dilation=1, groups=1, bias=np.zeros(4)),
        "lif": nir.LIF(tau=np.full(s, 1e-3), r=np.full(s, 1.0), v_leak=np.zeros(s), v_threshold=np.ones(s),
                       v_reset=np.zeros(s)),
        "flat": nir.Flatten(input_type={"input": np.array(s)}, start_dim=0, end_dim=-1),
        "fc": nir.Affine(weight=rng.normal(0, 0.5, (3, 256)), bias=np.zeros(3)),
        "li": nir.LI(tau=np.full(3, 1e-3), r=np.full(3, 1.0), v_leak=np.zeros(3)),
        "output": nir.Output(output_type={"output": np.array([3])})},
        edges=[("input", "conv"), ("conv", "lif"), ("lif", "flat"), ("flat", "fc"), ("fc", "li"), ("li", "output")],
        type_check=False)
    frames = (rng.random((8, 5, 1, 8, 8)) < 0.3).astype(np.uint8)
    trained = tmp_path / "frames.npz"
    write_workload(trained, import_nir(graph, frames).workload)
    net = tmp_path / "net.yaml"
    net.write_text("name: fr\ninput_shape: [1, 8, 8]\nnum_classes: 3\nlayers:\n"
                   "  - {name: conv, type: conv, out_channels: 4, kernel: 3, padding: 1}\n"
                   "  - {name: flat, type: flatten}\n  - {name: fc, type: output}\n")
    table, built = tmp_path / "r.yaml", tmp_path / "b.npz"
    for argv in (["workload", "rates", str(trained), "--network", str(net), "--dataset", "d", "-o", str(table)],
                 ["workload", "build", "--network", str(net), "--rates", str(table), "--dataset", "d", "-o",
                  str(built), "--num-images", "8"]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code in (0, None)
    capsys.readouterr()
    text = table.read_text()
    assert "input_frame_rate:" in text and "input_bit_density" not in text
    wl = read_workload(built)
    assert wl.input_encoding == "spike_frames" and "input_bit_density" not in wl.meta
    rate = wl.arrays["rate/input"]
    assert rate.shape == (5,) and abs(float(rate.mean()) - float(frames.mean())) < 0.01


def test_out_of_memory_is_one_line(tmp_path, capsys, monkeypatch):
    import satasim_atsn.hw.commands as commands

    def too_big(*_args, **_kwargs):
        raise MemoryError("Unable to allocate 4.00 TiB")

    monkeypatch.setattr(commands, "read_workload", too_big)
    line = one_line_error(["run", str(ROOT / "archs" / "atsn16x16.yaml"), str(ROOT / "workloads" / "vgg16_cifar10.npz"),
                 "--images", "1"], capsys)
    assert line.startswith("satasim: error: out of memory:") and "--images" in line
    assert "fewer (workload build --timesteps)" in line  # one image of a long workload can be too much on its own


@pytest.mark.parametrize(("layers", "needle"), [
    ("  - {name: c, type: conv, out_channels: 4, kernel: 3, padding: 1}\n  - {name: f, type: flatten}\n"
     "  - {name: fc, type: output}\n  - {name: fcb, type: output, inputs: [f]}\n",
     "layers: 2 output layers (fc, fcb); give the network one output layer, the last"),
    ("  - {name: \"c\\nout\", type: conv, out_channels: 4, kernel: 3, padding: 1}\n  - {name: f, type: flatten}\n"
     "  - {name: fc, type: output}\n", "is not a usable name"),
])
def test_network_file_mistakes_are_named(tmp_path, capsys, layers, needle):
    path = tmp_path / "net.yaml"
    path.write_text(f"input_shape: [1, 8, 8]\nnum_classes: 3\nlayers:\n{layers}")
    line = one_line_error(["workload", "build", "--network", str(path), "--rate", "0.1", "--timesteps", "2", "-o",
                 str(tmp_path / "w.npz")], capsys)
    assert needle in line and not (tmp_path / "w.npz").exists()


def test_a_layer_is_named_by_its_index_in_the_file(tmp_path, capsys):
    """The validator numbers layers in execution order (meta.layers[i]); a file listing them in another order
    must be told about its own lines: here the join is the file's first entry, third in execution order."""
    path = tmp_path / "net.yaml"
    path.write_text("input_shape: [3, 8, 8]\nnum_classes: 10\nlayers:\n"
                    "  - {name: add, type: add, inputs: [b, c1]}\n"
                    "  - {name: fc, type: output, inputs: [f]}\n"
                    "  - {name: f, type: flatten, inputs: [add]}\n"
                    "  - {name: c1, type: conv, out_channels: 4, kernel: 3, padding: 1, inputs: [input]}\n"
                    "  - {name: b, type: conv, out_channels: 4, kernel: 3, padding: 1, inputs: [c1]}\n")
    line = one_line_error(["workload", "build", "--network", str(path), "--rate", "0.1", "--timesteps", "2", "-o",
                 str(tmp_path / "w.npz")], capsys)
    assert "net.yaml: layers[0] (add).inputs: the first input 'b' must be a current" in line
    assert "meta.layers" not in line


def test_a_network_of_only_an_output_layer_names_the_design_that_runs_it(tmp_path, capsys):
    net = tmp_path / "only.yaml"
    net.write_text("input_shape: [16]\nnum_classes: 3\nlayers:\n  - {name: fc, type: output}\n")
    wl = tmp_path / "only.npz"
    main_args = ["workload", "build", "--network", str(net), "--rate", "0.1", "--timesteps", "2", "--num-images", "4",
                 "-o", str(wl)]
    with pytest.raises(SystemExit):
        main(main_args)
    capsys.readouterr()
    arch = str(ROOT / "archs" / "conventional16x16.yaml")
    line = one_line_error(["run", arch, str(wl), "--images", "2"], capsys)
    assert "the exit unit cannot read pixels" in line and "--set array.exit_unit_tiles=0" in line
    with pytest.raises(SystemExit) as exc:  # the design the message names runs it
        main(["run", arch, str(wl), "--images", "2", "--quiet", "--set", "array.exit_unit_tiles=0"])
    assert exc.value.code in (0, None)
    # on an exit-unit design the tile cannot go alone (its unit needs one): the message names a fixed-T design, and
    # the --set it gave there was refused in turn (h3, session 47)
    line = one_line_error(["run", str(ROOT / "archs" / "atsn16x16.yaml"), str(wl), "--images", "2"], capsys)
    assert "run it on a fixed-T design without an exit tile, where the PEs compute it (e.g. " \
           "archs/conventional16x16.yaml with --set array.exit_unit_tiles=0)" in line


def test_a_value_option_given_twice_is_refused(capsys):
    """`--images 10 ... --images 1000` ran with 1000 without a word (click keeps the last value)."""
    from satasim_atsn.cli import main

    root = Path(__file__).resolve().parents[1]
    workload = str(root / "workloads" / "vgg_small_fmnist_atsn.npz")
    for argv, needle in (
        (["run", "atsn16x16", workload, "--images", "2", "--images=3", "-q"], "--images: given 2 times (2, 3)"),
        (["workload", "stats", workload, "-o", "a.npz", "--output", "b.npz"], "--output: given 2 times"),
        # a short option's value attached, as click reads it (`-ocz`, `-j2`), escaped the check
        (["compare", "atsn16x16", workload, "-ocz", "-o", "cz3"], "--out: given 2 times (cz, cz3)"),
        (["compare", "atsn16x16", workload, "-j2", "-j", "1", "-o", "x"], "given 2 times (2, 1)"),
        # an empty value was shown as nothing: '(synthetic, )'
        (["train", "--dataset", "synthetic", "--dataset", "", "-o", "x.npz"],
         "--dataset: given 2 times (synthetic, '')"),
    ):
        with pytest.raises(SystemExit) as stop:
            main(argv)
        err = capsys.readouterr().err
        assert stop.value.code == 2 and needle in err and err.count("\n") == 1, err


def test_a_run_whose_per_image_results_exceed_memory_is_refused_before_its_first_image(tmp_path, capsys, monkeypatch):
    """A statistical file of 10^9 images run without --images filled 8 GB before its first image (h7, session 35):
    its per-image results alone cannot fit, so the run is refused up front, naming --images and a count that fits."""
    import satasim_atsn.hw.run_checks as run_checks

    net = tmp_path / "mlp.yaml"
    net.write_text("input_shape: [16]\nnum_classes: 3\nlayers:\n  - {name: fc1, type: linear, out_features: 8}\n"
                   "  - {name: fc, type: output}\n")
    wl = tmp_path / "many.npz"
    with pytest.raises(SystemExit):
        main(["workload", "build", "--network", str(net), "--rate", "0.1", "--timesteps", "2", "--num-images",
              str(10**9), "-o", str(wl)])
    capsys.readouterr()
    monkeypatch.setattr(run_checks, "physical_memory_bytes", lambda: 64 * 2**30)
    arch = str(ROOT / "archs" / "conventional16x16.yaml")  # the file is built for fixed T
    line = one_line_error(["run", arch, str(wl)], capsys)
    assert "many.npz: --images: 1,000,000,000 images from 0 keep at least 238 GiB of per-image results, more than " \
           "this machine's 64 GiB of memory; simulate at most 268,435,456 images per run" in line
    line = one_line_error(["run", arch, str(wl), "--start", "5", "--images", str(300 * 2**20)], capsys)
    assert "314,572,800 images from 5" in line
    with pytest.raises(SystemExit) as exc:  # a count that fits runs
        main(["run", arch, str(wl), "--images", "3", "--quiet"])
    assert exc.value.code in (0, None)


def test_a_statistical_draw_beyond_the_memory_is_refused_in_one_line(tmp_path, capsys, monkeypatch):
    """One image of a statistical workload holds its spikes, float32 thresholds and a block of uniforms whatever
    --images is: a long T on a wide network used to fill memory and be killed without a word. It is refused before
    any image."""
    import satasim_atsn.hw.run_checks as run_checks
    from satasim_atsn.traces.statistical_draw import draw_memory_bytes
    from satasim_atsn.workload.format import read_workload

    wl = tmp_path / "long.npz"
    with pytest.raises(SystemExit):
        main(["workload", "build", "--network", "vgg16", "--rate", "0.1", "--timesteps", "64", "--num-images", "4",
              "-o", str(wl)])
    capsys.readouterr()
    need, row = draw_memory_bytes(read_workload(wl))
    # no pooled rates: every neuron one uniform and one spike; all 64 timesteps' thresholds are kept (70.8 MB, within
    # THRESHOLD_KEEP_BYTES), and the uniforms are drawn 15 timesteps at a time (16 MiB // (4 row))
    assert row == 276480 and need == 64 * row + 4 * row * (64 + 15)
    monkeypatch.setattr(run_checks, "physical_memory_bytes", lambda: 64 * 2**20)
    arch = str(ROOT / "archs" / "conventional16x16.yaml")
    out = tmp_path / "r.json"
    line = one_line_error(["run", arch, str(wl), "--images", "1", "--json", str(out)], capsys)
    assert "long.npz: meta.timesteps: drawing one image takes at least 0.1 GiB (its spikes over T = 64 timesteps and " \
           "the float32 thresholds and uniforms of 276,480 per timestep it holds), more than this machine's 0.1 GiB " \
           "of memory; build the workload with fewer timesteps" in line
    assert not out.exists()
    monkeypatch.setattr(run_checks, "physical_memory_bytes", lambda: need)  # a draw that fits runs
    with pytest.raises(SystemExit) as exc:
        main(["run", arch, str(wl), "--images", "1", "--quiet"])
    assert exc.value.code in (0, None)
