"""CLI commands of the workload area (registered by satasim_atsn.cli): ``satasim workload info|stats|build``
(and ``import``/``export``, NIR, from interchange/nir_io.py)."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path

import click
import numpy as np

from satasim_atsn.errors import SatasimError, WorkloadError, closest, shown_number
from satasim_atsn.fileio import check_outputs, expand_home, refuse_overwriting_inputs, write_json
from satasim_atsn.options import FILE, NETWORK_PATH, NUMBER, PATH, WORKLOAD_FILE
from satasim_atsn.snn.confidence_bound import ceiling_line, ceiling_table
from satasim_atsn.snn.exit_policies import exit_settings
from satasim_atsn.traces.exit_histograms import DRAW_ORDER_FIRST, histogram_mean, histogram_policies
from satasim_atsn.traces.rate_table import build_from_spec, load_rate_spec
from satasim_atsn.traces.statistical import SEED_MAX, build_with_rate, mean_rate_per_t, rates_summary
from satasim_atsn.traces.twin_fit import fit_statistical_twin, pool_notes
from satasim_atsn.workload.class_coverage import class_coverage_note
from satasim_atsn.workload.format import (
    Workload,
    check_inputs_whole,
    check_workload_output,
    read_workload,
    write_workload,
)
from satasim_atsn.workload.network_file import resolve_network
from satasim_atsn.workload.networks import DATASET_CLASSES, NETWORKS, layer_costs, network_totals
from satasim_atsn.workload.schema import (
    EXIT_STEPS,
    INPUT_ROW_BITS,
    MAX_STATISTICAL_IMAGES,
    SPIKE_ROWS,
    fitted_images,
)
from satasim_atsn.workload.steps import steps_shown

SEED = click.IntRange(min=0, max=SEED_MAX)  # a draw seed, stored as int64 in the workload


def _fmt_count(value: int) -> str:
    """12345678 -> '12.35 M' (exact values go to --json)."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= scale:
            return f"{value / scale:.2f} {unit}"
    return str(value)


def workload_summary(workload: Workload) -> dict:
    """Everything ``workload info`` shows, as a deterministic JSON-able dict (the file by its name only)."""
    meta = workload.meta
    summary: dict = {
        "file": Path(workload.source).name,
        "name": workload.name,
        "kind": workload.kind,
        "dataset": meta.get("dataset"),
        "num_classes": workload.num_classes,
        "input_shape": list(workload.input_shape),
        "input_encoding": workload.input_encoding,
        "timesteps": workload.timesteps,
        "num_images": workload.num_images,
        "neuron": meta.get("neuron"),
        "quant": meta.get("quant"),
        "exit_policy": meta.get("exit_policy", {}),
        "layers": layer_costs(workload.layers),
        "totals": network_totals(workload.layers),
        "provenance": meta.get("provenance", {}),
    }
    if workload.is_statistical:
        summary["rates"] = rates_summary(workload)
        summary.update(_exit_numbers(workload))
        fitted = fitted_images(workload.arrays)  # M: the row profiles' images, else the exit steps' (a twin fitted
        if _paired_policies(workload) and fitted is not None:  # --no-input-rows --no-spike-rows keeps no profiles)
            # twin image i exits at fitted image (i mod M)'s step
            summary["exit_steps"] = {"images": fitted[1], "policies": _paired_policies(workload)}
        summary["seed"] = int(np.asarray(workload.arrays["seed"]).reshape(-1)[0])
        if "input_bit_density" in meta:
            summary["input_bit_density"] = [float(d) for d in meta["input_bit_density"]]
        if "rate/input" in workload.arrays:  # spike frames: the share of frame bits set at each t
            summary["input_frame_rate"] = mean_rate_per_t(workload.arrays["rate/input"])
    if workload.has_output:
        summary["output_mode"] = workload.layers[-1]["output_mode"]  # which equation the ceiling bounds
        if not workload.is_statistical:  # the ceiling is bounded from the output layer's weights
            summary["confidence_ceiling"] = _ceiling_rows(workload)
    return summary


# info computes the ceiling only while C * C * K stays small (seconds); `satasim evaluate` always does
CEILING_INFO_LIMIT = 500_000_000


def _ceiling_rows(workload: Workload) -> list[dict] | None:
    """The output layer's confidence ceiling per t against the workload's default CL_t (None if too big)."""
    classes, inputs = workload.weights(workload.layers[-1]["name"]).shape
    if classes * classes * inputs > CEILING_INFO_LIMIT:
        return None
    cl_init, tau_cl, _ = exit_settings(workload.meta)
    return ceiling_table(workload, cl_init, tau_cl)


def _images(count: int, noun: str = "image") -> str:
    """``count`` images, in words that agree with the count ("1 image", "2 images")."""
    return f"{count} {noun}" + ("" if count == 1 else "s")


def _print_summary(s: dict, path: str) -> None:
    """The terminal view of :func:`workload_summary` of the workload at ``path`` (as typed)."""
    echo = click.echo
    echo(f"{path}: {s['name']} ({s['kind']})")
    if s["kind"] == "statistical":
        echo("  STATISTICAL workload: spikes are drawn from per-layer rates; it has no accuracy")
    echo(
        f"  dataset {'not given' if s['dataset'] is None else s['dataset']}, {s['num_classes']} classes, "
        f"input {s['input_shape']} ({s['input_encoding']}), "
        f"T = {s['timesteps']}, {_images(s['num_images'])}"
    )
    if s["exit_policy"]:
        unused = "" if s["layers"][-1]["type"] == "output" else " (unused: a network ending in spikes runs all T)"
        echo("  exit defaults: " + ", ".join(f"{k} = {v}" for k, v in sorted(s["exit_policy"].items())) + unused)
    echo("")
    # columns as wide as their longest entry (a layer named input_flatten pushed its row out of line)
    name_w = max([12] + [len(str(c["name"])) for c in s["layers"]])
    shape_w = max([14] + [len("x".join(map(str, c[k]))) + 1 for c in s["layers"] for k in ("in_shape", "out_shape")])
    header = (f"  {'layer':<{name_w}} {'type':<8} {'in':<{shape_w}} {'out':<{shape_w}} {'params':>10} {'MACs/t':>10} "
              f"{'neurons':>9}")
    rates = s.get("rates", {})
    if rates:
        header += "  rate per t"
    echo(header)
    for c in s["layers"]:
        kind = c["type"] + ("" if c["spiking"] or c["type"] not in ("conv", "linear") else "*")
        line = (
            f"  {c['name']:<{name_w}} {kind:<8} {'x'.join(map(str, c['in_shape'])):<{shape_w}} "
            f"{'x'.join(map(str, c['out_shape'])):<{shape_w}} {_fmt_count(c['params']):>10} "
            f"{_fmt_count(c['macs_per_timestep']):>10} {c['neurons']:>9}"
        )
        if c["name"] in rates:
            line += "  " + steps_shown([f"{r:.3f}" for r in rates[c["name"]]])
        echo(line)
    t = s["totals"]
    echo(
        f"  total: {t['params']} weights ({_fmt_count(t['params'])}), {t['macs_per_timestep']} MACs per timestep "
        f"({_fmt_count(t['macs_per_timestep'])}), {t['lif_neurons']} LIF neurons"
    )
    currents = sorted({c["type"] for c in s["layers"] if not c["spiking"] and c["type"] in ("conv", "linear")})
    if currents:  # the kinds present ("conv" alone was said of a linear* layer too)
        echo(f"  (* = {' or '.join(currents)} without LIF: a current feeding a residual join)")
    if "exit_hist" in s:
        echo("")
        for p in s["exit_hist"]:
            hist = steps_shown([f"{v:.4f}" for v in s["exit_hist"][p]])
            echo(f"  exit histogram {p:<6} [{hist}]  mean timestep {s['exit_mean_timestep'][p]:.4f}")
        if "exit_steps" in s:
            paired = s["exit_steps"]
            fitted = _images(paired["images"], "fitted image")
            echo(f"  exit steps of {fitted} ({', '.join(paired['policies'])}): image i exits "
                 f"at image (i mod {paired['images']})'s step, the image whose row profiles it draws; the histograms "
                 "are their distribution")
        if "input_bit_density" in s:
            echo("  input bit-plane densities (bit 0..7): " + " ".join(f"{d:.3f}" for d in s["input_bit_density"]))
        if "input_frame_rate" in s:
            echo("  input frame rate per t: " + steps_shown([f"{d:.3f}" for d in s["input_frame_rate"]]))
        echo(f"  seed {s['seed']}")
    if "confidence_ceiling" in s:
        echo("")
        rows = s["confidence_ceiling"]
        if rows is None:
            echo("  confidence ceiling: not computed here (a large output layer); satasim evaluate computes it")
        else:
            echo("  " + ceiling_line(rows, s["output_mode"]))
    prov = s["provenance"] or {}
    if prov:
        echo("")
        echo("  provenance:")
        for key in sorted(prov):
            value = prov[key]
            text = json.dumps(value, sort_keys=True, ensure_ascii=False) if isinstance(value, (dict, list)) \
                else str(value)
            if len(text) > 150:
                text = text[:147] + "..."
            echo(f"    {key}: {text}")


@click.group("workload")
def workload_group() -> None:
    """Inspect, build and fit workload .npz files."""


@workload_group.command("info")
@click.argument("file", type=WORKLOAD_FILE)
@click.option("--json", "json_path", type=FILE, help="also write the summary as JSON")
def info_command(file: str, json_path: str | None) -> None:
    """Show a workload: layers with params, MACs/timestep and neurons, exit defaults, provenance (every array read
    through once: a damaged file is named, however large)."""
    refuse_overwriting_inputs({"--json": json_path}, [file])
    check_outputs({"--json": json_path})
    workload = read_workload(file, "workload info: its argument")
    check_inputs_whole(workload)
    summary = workload_summary(workload)
    if json_path:  # before the printing, as `run` writes its files first: `info W --json F | head` keeps F
        write_json(json_path, summary)
    _print_summary(summary, file)


@workload_group.command("stats")
@click.argument("trained", type=WORKLOAD_FILE)
@click.option("-o", "--output", required=True, type=FILE, help="the statistical twin (.npz)")
@click.option("--per-channel", is_flag=True, help="fit rates per channel ([T, C]) instead of per layer ([T])")
@click.option("--images", type=click.IntRange(min=1), help="fit from the first N images only (default: all)")
@click.option(
    "--rates-policy",
    type=click.Choice(DRAW_ORDER_FIRST),
    default="atsn",
    show_default=True,
    help="rates at t are averaged over the images still running at t under this policy",
)
@click.option("--cl-init", type=NUMBER, help="ATSN CL_init (default: the workload's meta.exit_policy)")
@click.option("--tau-cl", type=NUMBER, help="ATSN tau_CL (default: the workload's meta.exit_policy)")
@click.option("--theta", type=NUMBER, help="DTSNN entropy threshold (default: the workload's meta.exit_policy)")
@click.option("--seed", type=SEED, default=0, show_default=True, help="the twin's draw seed")
@click.option("--input-rows/--no-input-rows", default=True, show_default=True,
              help="keep each fitted image's set bits per bit plane, channel and row (input_row_bits; spike frames: "
                   "its events per timestep, channel and row, spike_rows/input), which the twin's images draw their "
                   "input from; without it every pixel draws from the 8 plane densities (every event from rate/input)")
@click.option("--spike-rows/--no-spike-rows", default=True, show_default=True,
              help="keep each fitted image's spikes per timestep, channel and row of every spiking conv/add layer "
                   "(spike_rows/<layer>), which the twin's images draw those layers from (docs/statistical.md, step "
                   "4); without it they draw at the fitted rates. The profiles make the twin larger (1.09 MB for 64 "
                   "images of the width-0.125 ResNet19, against 36 kB without); stats prints their size")
@click.option("--exit-steps/--no-exit-steps", default=True, show_default=True,
              help="keep each fitted image's exit step under each policy (exit_steps/<policy>), at which the "
                   "twin's image i exits, the one whose profiles it draws (docs/statistical.md, step 2); without it "
                   "the exits are drawn from the histograms, independently of the profiles")
@click.option("--json", "json_path", type=FILE,
              help="also write the numbers printed (rates, exit histograms and means, input densities, the layers "
                   "with spike rows, file sizes) as JSON")
def stats_command(
    trained: str,
    output: str,
    per_channel: bool,
    images: int | None,
    rates_policy: str,
    cl_init: float | None,
    tau_cl: float | None,
    theta: float | None,
    seed: int,
    input_rows: bool,
    spike_rows: bool,
    exit_steps: bool,
    json_path: str | None,
) -> None:
    """Fit a statistical twin of a trained workload: firing rates, exit histograms, input densities.

    ``--json FILE`` writes the printed numbers (files by name only, keys sorted) as JSON.
    """
    refuse_overwriting_inputs({"-o": output, "--json": json_path}, [trained])
    # before the work; -o X --json X is refused
    check_outputs({"-o": output, "--json": json_path}, examples={"-o": "twin.npz"})
    check_workload_output(output)
    workload = read_workload(trained, "workload stats: its argument")
    _refuse_exit_options_without_output(workload, trained, rates_policy, cl_init, tau_cl, theta)
    with _forward_bar(workload, images, "stats"):
        twin = fit_statistical_twin(
            workload,
            images,
            per_channel=per_channel,
            rates_policy=rates_policy,
            cl_init=cl_init,
            tau_cl=tau_cl,
            theta=theta,
            seed=seed,
            input_rows=input_rows,
            spike_rows=spike_rows,
            exit_steps=exit_steps,
        )
    written = write_workload(output, twin)
    numbers = _stats_numbers(trained, output, twin)
    numbers.update(_profile_sizes(written, twin))
    notes = pool_notes(twin.meta["provenance"])
    coverage = class_coverage_note(workload, 0, twin.num_images if images else workload.num_images,
                                   "the twin's rates and exit histograms", "fit on")
    notes += [coverage] if coverage else []
    numbers["notes"] = [line.strip().removeprefix("note: ") for line in notes]  # printed below, in --json too
    if json_path:  # before the printing (a closed pipe ends it)
        _write_json_after(json_path, numbers, output)
    click.echo(f"fitted {_images(numbers['num_images'])} of {trained} (rates over images running under "
               f"{numbers['rates_over_images_running_under']}):")
    for name, rates in numbers["rates"].items():
        click.echo(f"  {name:<12} " + steps_shown([f"{r:.4f}" for r in rates]))
    for p, hist in numbers["exit_hist"].items():
        click.echo(f"  exit {p:<6} [{steps_shown([f'{v:.4f}' for v in hist])}]  "
                   f"mean {numbers['exit_mean_timestep'][p]:.4f}")
    if "input_bit_density" in numbers:
        click.echo("  input bit densities " + " ".join(f"{d:.4f}" for d in numbers["input_bit_density"]))
    if "input_frame_rate" in numbers:
        click.echo("  input frame rate per t " + steps_shown([f"{r:.4f}" for r in numbers["input_frame_rate"]]))
    rows = twin.meta["provenance"].get("spike_rows")
    if rows is not None:
        click.echo(f"  spike row profiles of {_images(twin.num_images)}: {len(rows['layers'])} layer"
                   f"{'s' if len(rows['layers']) != 1 else ''}")
        for name, why in rows["left_out"].items():
            click.echo(f"    none for {name}: {why}")
    if numbers["exit_steps"]:
        click.echo(f"  exit steps of {_images(twin.num_images)} ({', '.join(numbers['exit_steps'])}): twin image i "
                   "exits at image i's step")
    click.echo(f"  file size {_megabytes(numbers['file_bytes'])}: row profiles of the input "
               f"{_megabytes(numbers['input_row_bits_bytes'])}, of the spikes {_megabytes(numbers['spike_rows_bytes'])}"
               f", exit steps {_megabytes(numbers['exit_steps_bytes'])} (compressed)")
    for line in notes:
        click.echo(line)
    click.echo(f"wrote {output}")


def _refuse_exit_options_without_output(workload: Workload, path: str, rates_policy: str, cl_init: float | None,
                                       tau_cl: float | None, theta: float | None) -> None:
    """A network ending in a spiking layer runs fixed T (no exit rule reads it): exit thresholds, or another rates
    policy given on the command line, would be ignored (the thresholds still written to the twin's meta), as
    `evaluate` refuses them."""
    if workload.has_output:
        return
    context = click.get_current_context(silent=True)
    typed = (context is not None and rates_policy != "fixed"
             and context.get_parameter_source("rates_policy") == click.core.ParameterSource.COMMANDLINE)
    given = [o for o, v in (("--rates-policy", rates_policy if typed else None), ("--cl-init", cl_init),
                            ("--tau-cl", tau_cl), ("--theta", theta)) if v is not None]
    if given:
        raise SatasimError.at(path, given[0], f"sets an exit rule, but the network ends in the spiking layer "
                              f"{workload.layers[-1]['name']!r} (no output layer): it runs fixed T, and its twin "
                              "holds the fixed exits only", f"drop {', '.join(given)}")


def _write_json_after(json_path: str, numbers: dict, written: str) -> None:
    """Write --json after the command's main file; a failure says that file was written (it was not said)."""
    try:
        write_json(json_path, numbers)
    except SatasimError as error:
        raise SatasimError(f"{error} ({written} was written before it)") from None


def _megabytes(size: int) -> str:
    """A byte count as printed: 1.05 MB, 35.9 kB, 120 bytes."""
    return f"{size / 1e6:.2f} MB" if size >= 1e6 else f"{size / 1e3:.1f} kB" if size >= 1e3 else f"{size} bytes"


def _profile_sizes(data: bytes, twin: Workload) -> dict:
    """The written twin's size in bytes (taken from the bytes written, not from the output: `-o -`, /dev/null or a
    FIFO cannot be read back), the compressed bytes of its input's row profiles (input_row_bits, or
    spike_rows/input of spike frames), of its layers' (spike_rows/) and of its exit steps (exit_steps/), the layers
    with spike rows and the policies with exit steps."""
    import io
    import zipfile

    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        members = archive.infolist()
    # the input's row profiles: input_row_bits of images, spike_rows/input of spike frames (--input-rows writes both)
    of_input = (f"{INPUT_ROW_BITS}.npy", f"{SPIKE_ROWS}/input.npy")
    return {"file_bytes": len(data),
            "input_row_bits_bytes": sum(i.compress_size for i in members if i.filename in of_input),
            "spike_rows_bytes": sum(i.compress_size for i in members
                                    if i.filename.startswith(f"{SPIKE_ROWS}/") and i.filename not in of_input),
            "exit_steps_bytes": sum(i.compress_size for i in members if i.filename.startswith(f"{EXIT_STEPS}/")),
            "spike_rows": twin.meta["provenance"].get("spike_rows", {}).get("layers", []),
            "exit_steps": _paired_policies(twin)}


def _paired_policies(workload: Workload) -> list[str]:
    """The policies a twin holds its fitted images' exit steps for (exit_steps/<policy>), in draw order."""
    return [p for p in histogram_policies(workload) if f"{EXIT_STEPS}/{p}" in workload.arrays]


def _exit_numbers(workload: Workload) -> dict:
    """The exit histogram of each policy a statistical workload holds, and its mean exit timestep."""
    hists = {p: [float(v) for v in workload.arrays[f"exit_hist/{p}"]] for p in histogram_policies(workload)}
    return {"exit_hist": hists, "exit_mean_timestep": {p: histogram_mean(h) for p, h in hists.items()}}


def _stats_numbers(trained: str, output: str, twin: Workload) -> dict:
    """What ``workload stats`` prints about a fitted twin, JSON-ready (the files by name only)."""
    numbers = {
        "source": Path(trained).name,
        "file": Path(output).name,
        "num_images": twin.num_images,
        "rates_over_images_running_under": twin.meta["provenance"]["rates_over_images_running_under"],
        "rates": rates_summary(twin),
        **_exit_numbers(twin),
    }
    if "input_bit_density" in twin.meta:
        numbers["input_bit_density"] = [float(d) for d in twin.meta["input_bit_density"]]
    if "rate/input" in twin.arrays:  # spike frames: the share of frame bits set at each t, as info shows it
        numbers["input_frame_rate"] = mean_rate_per_t(twin.arrays["rate/input"])
    return numbers


@contextlib.contextmanager
def _forward_bar(workload, images: int | None, desc: str) -> Iterator[None]:
    """A progress bar over the images of the one full-T forward a fit runs (stderr, terminals only)."""
    from satasim_atsn.report.progress import paced, progress_bar
    from satasim_atsn.snn.forward import forward_progress

    total = min(images, workload.num_images) if images else workload.num_images
    with progress_bar(total, desc=desc, unit="img", smoothing=0) as bar, forward_progress(paced(bar)):
        yield


def _exit_means(values: tuple[str, ...], timesteps: int) -> dict[str, float]:
    """--exit-mean POLICY=MEAN options as a dict (WorkloadError on a malformed one, on a mean that is not a finite
    number, or on a policy given twice: which of the two means was meant cannot be known, so neither silently wins)."""
    means: dict[str, float] = {}
    given: dict[str, str] = {}
    for text in values:
        policy, sep, value = (part.strip() for part in text.partition("="))
        if not sep or not policy:
            raise WorkloadError.at(None, "--exit-mean", f"{text!r} is not POLICY=MEAN ("
                                   + ("no policy before '='" if sep else "no '='") + ")",
                                   "e.g. --exit-mean atsn=2.2")
        if policy in given:
            raise WorkloadError.at(None, "--exit-mean", f"gives {policy!r} twice ({given[policy]!r} and {text!r})",
                                   f"give one --exit-mean {policy}=MEAN")
        given[policy] = text
        try:
            means[policy], problem = float(value), "is not a finite number"
        except ValueError:
            means[policy], problem = float("nan"), "is not a number"
        if not np.isfinite(means[policy]):
            raise WorkloadError.at(None, f"--exit-mean.{policy}", f"{value!r} {problem}",
                                   f"give a mean exit timestep in [1, {timesteps}] (= --timesteps), e.g. "
                                   f"--exit-mean {policy}={min(2.2, timesteps):g}")
    return means


@workload_group.command("rates")
@click.argument("trained", type=WORKLOAD_FILE)
@click.option("--network", required=True, type=NETWORK_PATH,
              help=f"the target network of the same topology: {', '.join(NETWORKS)} or a network YAML file")
@click.option("--dataset", required=True, help="the dataset entry of the table (e.g. cifar10)")
@click.option("-o", "--output", required=True, type=FILE, help="the rate table (.yaml)")
@click.option("--test-dataset", default=None, help="measure on this dataset's whole test split (e.g. imagefolder) "
              "instead of the workload's embedded images")
@click.option("--data-dir", type=PATH, default=None, help="dataset directory (with --test-dataset)")
@click.option("--image-size", default=None, type=click.IntRange(min=1),
              help="imagefolder test split: resize every image to S x S (bilinear), as the workload was trained")
@click.option("--images", type=click.IntRange(min=1), help="measure on the first N images only")
@click.option("--seed", type=SEED, default=0, show_default=True, help="the built workload's seed")
@click.option("--cl-init", type=NUMBER, help="ATSN CL_init the exit histogram is measured at (default: the "
              "workload's meta.exit_policy)")
@click.option("--tau-cl", type=NUMBER, help="ATSN tau_CL the exit histogram is measured at (default: the workload's)")
@click.option("--theta", type=NUMBER, help="DTSNN entropy threshold the exit histogram is measured at (default: the "
              "workload's)")
@click.option("--borrow-dataset", "borrowed", multiple=True, metavar="NAME=TABLE",
              help="also give dataset NAME, with its exit statistics and seed copied from another rate table "
                   "(e.g. cifar100=workloads/rates/vgg16.yaml, for a dataset not on this machine); repeatable")
def rates_command(trained: str, network: str, dataset: str, output: str, test_dataset: str | None,
                  data_dir: str | None, image_size: int | None, images: int | None, seed: int, cl_init: float | None,
                  tau_cl: float | None, theta: float | None, borrowed: tuple[str, ...]) -> None:
    """Measure a trained network's rates, exit histograms and input densities into a rate table for ``build``."""
    _check_dataset_label(dataset, required=True)
    refuse_overwriting_inputs({"-o": output}, [trained, network] + [expand_home(b.partition("=")[2].strip())
                                                                    for b in borrowed])
    if data_dir is not None and test_dataset is None:  # else the embedded images were measured without a word
        raise WorkloadError.at(None, "--data-dir", "applies only to a --test-dataset",
                               "add --test-dataset (e.g. imagefolder), or drop --data-dir to measure the embedded "
                               "test images")
    if image_size is not None and test_dataset != "imagefolder":
        raise WorkloadError.at(None, "--image-size", "resizes an image folder's test split only ("
                               + ("no --test-dataset: the embedded images keep their size" if test_dataset is None
                                  else f"{test_dataset} images keep their size") + ")",
                               "drop --image-size" + ("" if test_dataset else ", or add --test-dataset imagefolder "
                                                      "--data-dir DIR"))
    check_outputs({"-o": output}, examples={"-o": "rates.yaml"})
    from satasim_atsn.traces.rate_table import (
        borrow_dataset,
        check_topology,
        measure_rate_table,
        topology_differences,
        write_rate_table,
    )
    from satasim_atsn.workload.datasets import with_test_split

    workload = read_workload(trained, "workload rates: its argument")
    if workload.is_statistical:
        raise WorkloadError.at(trained, "meta.kind", "is statistical", "measure a trained or imported workload")
    _refuse_exit_options_without_output(workload, trained, "atsn", cl_init, tau_cl, theta)
    net = resolve_network(network)
    target_layers = net.build(workload.num_classes)
    check_topology(workload, target_layers, net.name)
    by = f"--dataset {dataset}" if dataset in DATASET_CLASSES else "its num_classes"  # the classes a build gives it
    differences = topology_differences(workload, target_layers, net.input_shape, net.name,
                                       (DATASET_CLASSES.get(dataset, net.num_classes), by))
    inputs = "the workload's embedded test images"
    if test_dataset is not None:
        workload = with_test_split(workload, test_dataset, data_dir, image_size)
        total = workload.num_images
        inputs = (f"the whole {test_dataset} test split" if images is None or images >= total else
                  f"the first {images} of the {total} in the {test_dataset} test split")  # not "the whole": a lie
    with _forward_bar(workload, images, "rates"):
        table = measure_rate_table(workload, net.name, dataset, label=Path(trained).name, images=images, seed=seed,
                                   inputs=inputs, thresholds={"cl_init": cl_init, "tau_cl": tau_cl, "theta": theta})
    for text in borrowed:
        name, sep, source = text.partition("=")
        if not sep or not name.strip() or not source.strip():
            raise WorkloadError.at(None, "--borrow-dataset", f"{text!r} is not NAME=TABLE",
                                   "e.g. --borrow-dataset cifar100=workloads/rates/vgg16.yaml")
        borrow_dataset(table, name.strip(), expand_home(source.strip()))
    coverage = class_coverage_note(workload, 0, min(images or workload.num_images, workload.num_images),
                                   "the table's rates and exit histograms", "measure on")
    differences += [coverage.removeprefix("note: ")] if coverage else []
    if differences:
        table["sources"]["differences"] = "; ".join(differences)
    command = " ".join(["satasim workload rates", Path(trained).as_posix(), "--network", network, "--dataset",
                        dataset, "-o", Path(output).as_posix()]
                       + (["--test-dataset", test_dataset, "--data-dir", "DIR"] if test_dataset else [])
                       + (["--images", str(images)] if images else []) + (["--seed", str(seed)] if seed else [])
                       + [f"--{k.replace('_', '-')} {shown_number(v)}" for k, v in
                          (("cl_init", cl_init), ("tau_cl", tau_cl), ("theta", theta)) if v is not None]
                       + [f"--borrow-dataset {Path(b).as_posix()}" for b in borrowed])
    write_rate_table(output, table, command, network)
    means = {p: sum((t + 1) * v for t, v in enumerate(h)) for p, h in
             table["datasets"][dataset]["exit_histograms"].items()}
    exits = (f"mean exit {', '.join(f'{p} {m:.3f}' for p, m in means.items())}" if means else
             "fixed T only (no output layer: no exit histograms)")
    rated = len(table["rates"])
    click.echo(f"wrote {output}: {rated} rated layer{'s' if rated != 1 else ''}, {exits}")
    for note in differences:
        click.echo(f"note: {note} (kept in the table's sources.differences)", err=True)


@workload_group.command("build")
@click.option("--network", required=True, type=NETWORK_PATH,
              help=f"a network YAML file (docs/networks.md) or a shipped network: {', '.join(NETWORKS)}")
@click.option("--rates", "rates_path", type=FILE, help="rate table YAML (workloads/rates/)")
@click.option("--rate", type=NUMBER, help="quick start: one firing rate for every spiking layer and timestep")
@click.option("--timesteps", type=click.IntRange(1, 1024), help="T (with --rate; a rate table sets its own)")
@click.option("--dataset", help="the dataset: sets the classes of cifar10/cifar100 and picks the rate table's entry "
              "(required with --rates)")
@click.option("--exit-mean", "exit_means", multiple=True, metavar="POLICY=MEAN",
              help="with --rate: a mean exit timestep for dtsnn or atsn (repeatable); without it only fixed T")
@click.option("-o", "--output", required=True, type=FILE, help="the workload (.npz)")
@click.option("--num-images", type=click.IntRange(1, MAX_STATISTICAL_IMAGES),
              help="override the table's num_images (--rate: 10000; at most 10^9)")
@click.option("--seed", type=SEED, help="override the table's seed for this dataset (--rate: 0)")
@click.option("--timing", is_flag=True, help="print how long the build took")
@click.option("--json", "json_path", type=FILE,
              help="also write the numbers printed (images, T, exit histograms and means; no timing) as JSON")
def build_command(
    network: str, rates_path: str | None, rate: float | None, timesteps: int | None, dataset: str | None,
    exit_means: tuple[str, ...], output: str, num_images: int | None, seed: int | None, timing: bool,
    json_path: str | None,
) -> None:
    """Build a statistical workload of a network file from a rate table or one --rate.

    ``--json FILE`` writes the printed numbers (the file by name only, keys sorted, no timing) as JSON.
    """
    began = time.perf_counter()
    _check_dataset_label(dataset)
    net = resolve_network(network)
    refuse_overwriting_inputs({"-o": output, "--json": json_path}, [net.source, rates_path])
    # before the work; -o X --json X is refused
    check_outputs({"-o": output, "--json": json_path}, examples={"-o": "workload.npz"})
    check_workload_output(output)
    if (rates_path is None) == (rate is None):
        raise WorkloadError.at(None, "--rates/--rate", "give exactly one of them",
                               "--rates TABLE.yaml --dataset NAME, or --rate 0.15 --timesteps T")
    if rates_path is not None:
        for flag, value in (("--timesteps", timesteps), ("--exit-mean", exit_means or None)):
            if value is not None:
                raise WorkloadError.at(None, flag, "goes with --rate", "the rate table sets it; edit the table")
        if dataset is None:
            raise WorkloadError.at(None, "--dataset", "missing", "--rates needs the dataset entry of the table")
        spec = load_rate_spec(rates_path)
        workload = build_from_spec(spec, net, dataset, num_images=num_images, seed=seed)
    else:
        if timesteps is None:
            raise WorkloadError.at(None, "--timesteps", "missing", "--rate needs the number of timesteps T")
        _refuse_near_known_dataset(dataset)
        classes = DATASET_CLASSES.get(dataset) if dataset else None
        if dataset and classes is None and net.has_output and net.num_classes is None:
            raise WorkloadError.at(net.source, "num_classes", "missing", "give num_classes in the network file")
        workload = build_with_rate(net, rate=rate, timesteps=timesteps, dataset=dataset, num_classes=classes,
                                   exit_means=_exit_means(exit_means, timesteps), num_images=num_images or 10000,
                                   seed=seed or 0)
    write_workload(output, workload)
    notes = pool_notes(workload.meta.get("provenance") or {})
    numbers = {"file": Path(output).name, "name": workload.name, "num_images": workload.num_images,
               "timesteps": workload.timesteps, **_exit_numbers(workload),
               "notes": [line.strip().removeprefix("note: ") for line in notes]}  # printed below, in --json too
    if json_path:  # before the printing (a closed pipe ends it)
        _write_json_after(json_path, numbers, output)
    click.echo(
        f"wrote {output}: {workload.name}, {_images(workload.num_images)}, T = {workload.timesteps}, mean exit "
        + ", ".join(f"{p} {m:.2f}" for p, m in numbers["exit_mean_timestep"].items())
    )
    for line in notes:
        click.echo(line)
    if timing:
        click.echo(f"took {time.perf_counter() - began:.2f} s")


def _check_dataset_label(dataset: str | None, required: bool = False) -> None:
    """``--dataset`` labels the workload and its results: refuse a blank one ('' built 'vgg16-statistical' as if left
    out, ' ' 'vgg16- -...') and one with line breaks or control characters (import stored them; build blamed them on
    the network file's name)."""
    if dataset is None:
        return
    fix = "give a dataset label (e.g. cifar10)" + ("" if required else ", or leave it out")
    if not dataset.strip():
        raise WorkloadError.at(None, "--dataset", "is empty", fix)
    if any((ord(ch) < 32 and ch != "\t") or ord(ch) == 127 for ch in dataset):
        raise WorkloadError.at(None, "--dataset", f"{dataset!r} is not one line of visible text",
                               fix.replace("label", "label without line breaks or control characters", 1))


def _refuse_near_known_dataset(dataset: str | None) -> None:
    """With ``--rate``, ``--dataset`` is a free label unless it names a dataset whose classes it sets; a label that
    is a near miss of one (``cifar-100``, ``CIFAR100``) would quietly keep the network file's classes, so refuse it."""
    if not dataset or dataset in DATASET_CLASSES:
        return
    folded = "".join(ch for ch in dataset.lower() if ch.isalnum())
    near = folded if folded in DATASET_CLASSES else closest(folded, DATASET_CLASSES, cutoff=0.8)
    if near is not None:
        raise WorkloadError.at(None, "--dataset", f"{dataset!r} is not a dataset name but is close to "
                               f"{near!r}, which sets {DATASET_CLASSES[near]} classes",
                               f"write --dataset {near}, or a label that is not a near miss")


@workload_group.command("import")
@click.argument("model", type=FILE.described("a NIR graph's path (.nir)"))
@click.option("--inputs", "inputs_path", required=True, type=FILE,
              help=".npz with x (uint8 images or 0/1 spike frames) and optionally y, or a workload")
@click.option("-o", "--output", required=True, type=FILE, help="the workload (.npz)")
@click.option("--timesteps", type=click.IntRange(1, 1024), help="T for image inputs (default: the graph's metadata)")
@click.option("--input-scale", type=NUMBER, help="float input = uint8 pixel x this (default 1/255; 1 for our exports)")
@click.option("--dt", type=NUMBER, help="Euler step of the NIR dynamics in seconds (default: for a graph this tool "
                                        "exported, the dt in its metadata; else 1e-4, snnTorch's)")
@click.option("--name", help="the workload's name (default: the file's stem)")
@click.option("--dataset", default="unknown", show_default=True, help="dataset label stored in the workload")
@click.option("--json", "json_path", type=FILE, help="also write the agreement report as JSON")
def import_command(model: str, inputs_path: str, output: str, timesteps: int | None, input_scale: float | None,
                   dt: float | None, name: str | None, dataset: str, json_path: str | None) -> None:
    """Import a NIR graph as an int8 workload and report how its integer forward agrees with a float one."""
    from satasim_atsn.interchange.nir_io import agreement, check_nodes, import_nir, load_inputs, read_nir

    for flag, value in (("--input-scale", input_scale), ("--dt", dt)):
        if value is not None and not (np.isfinite(value) and value > 0):
            raise WorkloadError.at(None, flag, f"{value} must be a positive number", "fix the value")
    _check_dataset_label(dataset)
    if name is not None and (not name.strip() or any((ord(ch) < 32 and ch != "\t") or ord(ch) == 127 for ch in name)):
        raise WorkloadError.at(None, "--name", f"{name!r} is not one line of visible text",  # "" took the stem
                               f"give a name, or drop --name to use the file's stem {Path(model).stem!r}")
    refuse_overwriting_inputs({"-o": output, "--json": json_path}, [model, inputs_path])
    # before the work; -o X --json X is refused
    check_outputs({"-o": output, "--json": json_path}, examples={"-o": "workload.npz"})
    check_workload_output(output)
    graph = read_nir(model)
    stem = Path(model).stem if name is None else name
    try:
        check_nodes(graph)  # an unsupported node first: reshaping the inputs would not help it
        x, y = load_inputs(inputs_path)
        result = import_nir(graph, x, y, timesteps=timesteps, input_scale=input_scale, dt=dt, name=stem,
                            dataset=dataset, source=model)
    except WorkloadError as error:  # name the graph file once (the validator may have named it already)
        text = str(error)
        if text.startswith(f"{inputs_path}: "):  # the inputs' own error names their file
            raise
        raise WorkloadError(text if text.startswith(f"{model}: ") else f"{model}: {text}") from None
    report = agreement(result, graph)
    write_workload(output, result.workload)
    if json_path:  # before the printing (a closed pipe ends it)
        _write_json_after(json_path, report, output)
    wl = result.workload
    click.echo(f"imported {model}: {len(wl.layers)} layers, T = {wl.timesteps}, {wl.num_images} inputs, "
               f"decay shifts {list(wl.decay_shifts)}, input_shift {wl.input_shift}")
    for note in report["approximations"]:
        click.echo(f"  approximation: {note}")
    click.echo(f"agreement of the int8 forward with the float NIR forward on {report['images']} inputs:")
    click.echo(f"  top-1 (argmax of the output at T)  {report['top1_agreement']:.4f}")
    for lname, layer in report["layers"].items():
        click.echo(f"  spikes {lname:<12} {layer['spike_agreement']:.4f}  (rate int {layer['rate_int']:.4f}, "
                   f"float {layer['rate_float']:.4f})")
    if "accuracy_int" in report:
        rules = report["accuracy_rules"]
        click.echo(f"  accuracy, {rules['accuracy_int']}: int8 {report['accuracy_int']:.4f}")
        summed = " (float: summed over t)" if result.decision == "sum" else ""
        click.echo(f"  accuracy, argmax of the output at T{summed} (top-1's decisions): float "
                   f"{report['accuracy_float']:.4f}, int8 {report['accuracy_int_at_t']:.4f}")
    click.echo(f"wrote {output}")


@workload_group.command("export")
@click.argument("workload_path", metavar="WORKLOAD", type=WORKLOAD_FILE)
@click.option("--nir", "nir_path", required=True, type=FILE, help="the NIR graph to write")
@click.option("--dt", type=NUMBER, default=1e-4, show_default=True,
              help="Euler step in seconds that the NIR time constants assume")
def export_command(workload_path: str, nir_path: str, dt: float) -> None:
    """Write a trained or imported workload as a NIR graph (docs/networks.md: the mapping and what is lossy)."""
    from satasim_atsn.interchange.nir_io import export_nir, write_nir

    if not (np.isfinite(dt) and dt > 0):
        raise WorkloadError.at(None, "--dt", f"{dt} must be a positive number", "fix the value")
    refuse_overwriting_inputs({"--nir": nir_path}, [workload_path])
    check_outputs({"--nir": nir_path}, examples={"--nir": "graph.nir"})
    workload = read_workload(workload_path, "workload export: its argument")
    graph = export_nir(workload, dt=dt)
    write_nir(nir_path, graph)
    click.echo(f"wrote {nir_path}: {len(graph.nodes)} NIR nodes, {len(graph.edges)} edges from {workload.name} "
               f"({len(workload.layers)} layers)")


COMMANDS: list = [workload_group]
