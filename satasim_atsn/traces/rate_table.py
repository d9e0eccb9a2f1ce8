"""Rate tables (workloads/rates/*.yaml): the statistics behind a paper-scale statistical workload, read and written.

Reading: ``load_rate_spec`` checks a table (every key, rate and histogram, each error one line naming the field) and
``build_from_spec`` builds the statistical workload of a network at its rates (``workload build --rates``).
Writing: ``satasim workload rates TRAINED`` fits the trained network's firing rates (per layer and
timestep, max-pools included), its exit histograms under each policy and its input bit-plane
densities, and writes them as a rate table for a network of the same
topology: layers are matched by name, i.e. by depth and position. ``workload build --rates`` then
draws the full-width network at those statistics. Every number is a ratio of integer counts,
rounded to a fixed decimal grid, so the table's bytes do not depend on the CPU.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from satasim_atsn import exactmath
from satasim_atsn.errors import WorkloadError, file_count, shown
from satasim_atsn.fileio import atomic_write_text, load_yaml, starts_as_zip
from satasim_atsn.snn.exit_policies import CL_INIT_DEFAULT, TAU_CL_DEFAULT, THETA_DEFAULT
from satasim_atsn.traces.exit_histograms import DRAW_ORDER_FIRST, exit_histograms, unknown_key_error
from satasim_atsn.traces.statistical import (
    DEFAULT_NUM_IMAGES,
    SEED_MAX,
    build_statistical,
    fixed_only,
    output_classes,
    pooled_layers,
    spiking_layers,
)
from satasim_atsn.traces.twin_fit import fit_statistical_twin
from satasim_atsn.workload.format import Workload
from satasim_atsn.workload.network_file import YAML_FILE_KINDS, NetworkSpec, resolve_network, yaml_file_kind
from satasim_atsn.workload.networks import DATASET_CLASSES, IDENTITY_SHORTCUT_GAIN
from satasim_atsn.workload.pool_windows import has_window_cores, pool_rate_bounds, pool_rate_problem_of
from satasim_atsn.workload.schema import EXIT_PARAMETERS, HIST_SCALE

RATE_DECIMALS = 6
HISTOGRAM_DECIMALS = 9


def _grid(values, decimals: int) -> list:
    return [round(float(v), decimals) for v in np.asarray(values, dtype=np.float64).reshape(-1)]


def measure_rate_table(trained: Workload, network: str, dataset: str, *, label: str, images: int | None = None,
                       rates_policy: str = "atsn", seed: int = 0, num_images: int = 10000,
                       inputs: str = "the workload's embedded test images", thresholds: dict | None = None) -> dict:
    """A rate table (as a dict) from a trained workload's measured statistics; ``label`` names it in the sources.
    ``thresholds`` (cl_init, tau_cl, theta; None or a missing key: the workload's own) set the exit rules the
    histograms are measured under, as `workload stats` takes them."""
    twin = fit_statistical_twin(trained, images, rates_policy=rates_policy, input_rows=False, spike_rows=False,
                                exit_steps=False, **(thresholds or {}))
    layers = trained.layers
    rated = [ly["name"] for ly in spiking_layers(layers) + pooled_layers(layers)]
    rates = {name: _grid(twin.arrays[f"rate/{name}"], RATE_DECIMALS) for name in rated
             if f"rate/{name}" in twin.arrays}  # a pool the draw could not keep is left to be the OR of its input
    hist = {p: _grid(twin.arrays[f"exit_hist/{p}"], HISTOGRAM_DECIMALS)
            for p in DRAW_ORDER_FIRST if p != "fixed" and f"exit_hist/{p}" in twin.arrays}
    policy = twin.meta["provenance"]["exit_policies"]
    measured_on = f"{label}, {twin.num_images} images ({inputs})"
    table = {
        "network": network,
        "timesteps": int(trained.timesteps),
        "num_images": int(num_images),
        "rates": rates,
        "datasets": {dataset: {"seed": int(seed), "exit_histograms": hist,  # and the thresholds they were measured at
                               **({"exit_policy": dict(twin.meta["exit_policy"])} if hist else {})}},
        "sources": {
            "rates": f"measured: firing rate of each spiking layer and max-pool at each timestep of {measured_on}, "
                     f"over the images still running under {rates_policy}; mapped by layer name (same depth and "
                     f"position) onto {network}",
            "exit_histograms": f"measured: fraction of images exiting at t = 1..T of {measured_on} under "
                               + "; ".join(f"{p} {policy[p]}" for p in hist),
        },
    }
    dropped = twin.meta["provenance"].get("pooled_rates_not_kept")
    if dropped:
        table["sources"]["pooled_rates_not_kept"] = (
            f"{', '.join(dropped)}: a pool carries a rate when every window has a neuron of its own (kernel < 2 x "
            "stride) and its input feeds no other layer; this one is drawn as the OR of its input")
    clamped = twin.meta["provenance"].get("pooled_rates_clamped")
    if clamped:
        table["sources"]["pooled_rates_clamped"] = "; ".join(
            f"{name}: measured {v['measured_mean']:g} on average, outside what the draw can keep with its input's "
            f"rate, drawn at {v['drawn_mean']:g}" for name, v in clamped.items())
    if twin.meta.get("input_bit_density") is not None:
        table["input_bit_density"] = _grid(twin.meta["input_bit_density"], RATE_DECIMALS)
        table["sources"]["input_bit_density"] = f"measured: bit-plane densities of the input pixels of {measured_on}"
    if twin.input_encoding == "spike_frames":
        table["input_frame_rate"] = _grid(twin.arrays["rate/input"], RATE_DECIMALS)
        table["sources"]["input_frame_rate"] = (f"measured: fraction of the input spike-frame bits set at each "
                                                f"timestep of {measured_on}")
    return table


def borrow_dataset(table: dict, name: str, source: str | Path) -> None:
    """Add dataset ``name`` to a measured table with the exit statistics and seed of another rate table's entry.

    For a dataset that is not on this machine (CIFAR-100): the firing rates and input densities stay the
    measured ones, and the table's sources say which numbers are borrowed and from where.
    """
    if name in table["datasets"]:
        raise WorkloadError.at(None, "--borrow-dataset", f"{name!r} is the measured dataset",
                               "borrow only datasets that were not measured")
    other = load_rate_spec(source, "--borrow-dataset NAME=TABLE")
    where = str(source)
    if other["network"] != table["network"]:
        raise WorkloadError.at(where, "network", f"is {other['network']!r}, not {table['network']!r}",
                               "borrow from the same network's table")
    if other["timesteps"] != table["timesteps"]:
        raise WorkloadError.at(where, "timesteps", f"is {other['timesteps']}, not {table['timesteps']}",
                               "borrow from a table with the same T")
    if name not in other["datasets"]:
        raise WorkloadError.at(where, f"datasets.{name}", "missing",
                               f"the table covers {', '.join(map(str, other['datasets']))}")
    entry = {k: v for k, v in other["datasets"][name].items() if k != "rates"}
    table["datasets"][name] = entry
    their = other.get("sources") or {}
    what = ", ".join(k for k in ("exit_mean_timesteps", "exit_histograms") if k in entry) or "the seed"
    table["sources"][f"datasets.{name}"] = (
        f"borrowed from {Path(source).name}: {what} and seed"  # by name: the same bytes from any directory
        + (f" ({their['exit_mean_timesteps']})" if "exit_mean_timesteps" in entry and "exit_mean_timesteps" in their
           else "")
        + f"; the firing rates and input bit densities are the ones measured on {next(iter(table['datasets']))}")


def write_rate_table(path: str | Path, table: dict, command: str, network_arg: str | None = None) -> None:
    """Write a rate table YAML with a header naming the command that made it and the build that uses it
    (``--network`` as the user gave it: a network file's path, or a shipped network's name)."""
    header = (f"# Rate table measured on a trained network (satasim workload rates); regenerate with:\n"
              f"#   {command}\n# Build the statistical workload with: satasim workload build --network "
              f"{shlex.quote(network_arg or table['network'])} --rates THIS --dataset "
              f"{next(iter(table['datasets']))}\n")
    atomic_write_text(path, header + yaml.safe_dump(table, sort_keys=False, width=120))


def check_topology(trained: Workload, network_layers: list[dict], network: str) -> None:
    """The trained network's rated layers (spiking and max-pool) must be the target's: same names, kinds, order and
    windows (kernel, stride, padding: they set where spikes land); only the channel widths may differ."""
    def rated(layers: list[dict]) -> list[tuple[str, str]]:
        # every max-pool, rated or not: a pool whose window differs (stride 1 for 2) is named as such, not counted
        names = {ly["name"] for ly in spiking_layers(layers)} | {ly["name"] for ly in layers if ly["type"] == "maxpool"}
        return [(ly["name"], ly["type"] + "".join(f", {key} {ly[key]}" for key in ("kernel", "stride", "padding")
                                                   if ly.get(key) is not None))
                for ly in layers if ly["name"] in names]

    mine, theirs = rated(trained.layers), rated(network_layers)
    if [kind for _, kind in mine] == [kind for _, kind in theirs] and mine != theirs:
        # the same layers under other names: the table keys its rates by the target's names, mapped by name
        renamed = ", ".join(f"{a[0]} -> {b[0]}" for a, b in zip(mine, theirs, strict=True) if a[0] != b[0])
        raise WorkloadError.at(trained.source, "layers", f"{network} has the trained network's rated layers "
                               f"under other names ({renamed}); rates are mapped by layer name",
                               f"name the layers of {network}'s network file as the trained network does")
    if mine != theirs:
        pairs = list(zip(mine, theirs, strict=False))  # the first pair whose windows differ, not only their names
        first = next((f"{a[0]} ({a[1]}) against {b[0]} ({b[1]})" for a, b in pairs if a[1] != b[1]),
                     f"{len(mine)} rated layers against {len(theirs)}")
        from satasim_atsn.train.models import MODELS

        how = f" (satasim train --model {network})" if network in MODELS else ""
        raise WorkloadError.at(trained.source, "layers", f"the topology differs from {network}'s: {first}",
                               f"measure a network trained with the {network} topology{how}, or pass the "
                               "network file the trained network has as --network")


def topology_differences(trained: Workload, network_layers: list[dict], network_input_shape: list[int],
                         network: str, classes: tuple[int | None, str] = (None, "")) -> list[str]:
    """What the target network has that the trained one was not measured with, beyond its channel widths: another
    input size (the maps the rates are mapped onto have other sizes), another output mode or another number of
    classes (``classes``: the target's and what sets them; the exit histograms were decided on the trained network's
    readout). Not refused: the table is then a stated extrapolation."""
    notes = []
    if list(trained.input_shape) != list(network_input_shape):
        notes.append(f"the input is {list(network_input_shape)} in {network} but {list(trained.input_shape)} in the "
                     "trained network: each layer's rates are mapped onto maps of other sizes")
    mine = [ly.get("output_mode") for ly in trained.layers if ly["type"] == "output"]
    theirs = [ly.get("output_mode") for ly in network_layers if ly["type"] == "output"]
    if mine and theirs and mine != theirs:
        notes.append(f"the output layer reads its membranes as {theirs[0]!r} in {network} but {mine[0]!r} in the "
                     "trained network: the exit histograms were measured with the trained network's readout")
    count, by = classes
    if trained.has_output and count is not None and count != trained.num_classes:
        notes.append(f"the output layer has {count} classes in {network} ({by}) but {trained.num_classes} in the "
                     "trained network: the exit histograms were measured over its classes")
    return notes


# ------------------------------------------------------------------------------------------
# reading a rate table: a statistical workload built from one
# ------------------------------------------------------------------------------------------
SPEC_KEYS = (
    "network",
    "timesteps",
    "num_images",
    "input_bit_density",
    "input_frame_rate",
    "default_rate",
    "pool_rate_ratio",
    "rates",
    "datasets",
    "sources",
)
DATASET_KEYS = ("seed", "exit_mean_timesteps", "exit_histograms", "exit_policy", "rates")


def _rate_array(value, layer: dict, T: int, where: str, field: str) -> np.ndarray:
    """A YAML rate (scalar, [T] list or [T][C] list) as a [T] or [T, C] float64 array."""
    def numbers_only(item) -> bool:  # numpy would read the text '0.1', or True inside a list, as a number
        if isinstance(item, list):
            return all(numbers_only(v) for v in item)
        return isinstance(item, (int, float)) and not isinstance(item, bool)

    try:
        if not numbers_only(value):
            raise TypeError
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise WorkloadError.at(where, field, "is not a number or a list of numbers", "give rates in [0, 1]") from None
    if arr.ndim == 0:
        arr = np.full(T, float(arr))
    channels = int(layer["out_shape"][0])
    if arr.shape not in ((T,), (T, channels)):
        raise WorkloadError.at(
            where, field, f"has shape {list(arr.shape)}", f"give a scalar, {T} values, or {T} lists of {channels}"
        )
    if not np.isfinite(arr).all() or (arr < 0).any() or (arr > 1).any():
        raise WorkloadError.at(where, field, "rates must be finite and in [0, 1]", "fix the rate table")
    return arr


def _check_sources(sources: Any, where: str) -> None:
    """A table's ``sources`` (copied into the built workload's provenance) must map names to text (``sources:
    measured`` raised a bare ValueError out of build)."""
    if sources is None:
        return
    if not isinstance(sources, dict):
        raise WorkloadError.at(where, "sources", f"is {shown(sources)}, not a mapping of names to text",
                               "give one line of text per source (see workloads/rates/vgg16.yaml), or drop the key")
    for key, value in sources.items():
        if not isinstance(value, str):
            raise WorkloadError.at(where, f"sources.{key}", f"is {shown(value)}, not text",
                                   "give the source as text, or drop it")


def load_rate_spec(path: str | Path, option: str = "--rates") -> dict:
    """Read a rate table YAML (see workloads/rates/), checking its keys; raises WorkloadError. ``option``: where
    the command took the path, named in the fix of a file that is another kind (a network file, an architecture)."""
    where = str(path)
    try:
        with open(path, encoding="utf-8") as handle:
            spec = load_yaml(handle, where, WorkloadError)
    except FileNotFoundError:
        raise WorkloadError.at(where, None, "no such file", "check the path (tables: workloads/rates/)") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError, RecursionError) as error:
        if starts_as_zip(path):  # a workload .npz given where the rate table goes
            raise WorkloadError.at(where, None, "is a workload (.npz), not a rate table",
                                   f"give a rate table (workloads/rates/*.yaml, or `satasim workload rates` of a "
                                   f"trained workload) as {option}") from None
        raise WorkloadError.at(where, None, f"not a readable YAML file ({type(error).__name__})", "fix it") from None
    if not isinstance(spec, dict):
        raise WorkloadError.at(where, None, "must be a YAML mapping", "see workloads/rates/vgg16.yaml")
    kind = yaml_file_kind(spec)
    if kind not in (None, "rates"):
        other = YAML_FILE_KINDS[kind]
        give = ("give it as --network, and a rate table (workloads/rates/*.yaml, or `satasim workload rates`) as "
                "--rates" if option == "--rates" and kind == "network" else
                f"give a rate table (workloads/rates/*.yaml, or `satasim workload rates`) as {option}")
        raise WorkloadError.at(where, None, f"is {other}, not a rate table", give)
    for key in spec:
        if key not in SPEC_KEYS:
            raise unknown_key_error(where, "", key, SPEC_KEYS)
    for key in ("network", "timesteps", "datasets"):
        if key not in spec:
            raise WorkloadError.at(where, key, "missing", "see workloads/rates/vgg16.yaml")
    _whole_counts(spec)
    if not isinstance(spec["datasets"], dict) or not spec["datasets"]:
        raise WorkloadError.at(where, "datasets", "must map dataset names to settings", "see the shipped tables")
    _check_sources(spec.get("sources"), where)
    for name, entry in spec["datasets"].items():
        if not isinstance(name, str):  # `10:` is a number to YAML, and --dataset 10 is text: it never matched
            kind = ("a boolean" if isinstance(name, bool) else "a number" if isinstance(name, (int, float))
                    else "null" if name is None else f"a {type(name).__name__}")
            raise WorkloadError.at(where, f"datasets.{name}", f"the name is {kind} to YAML, not text, so --dataset "
                                   "never matches it", "quote the name in the table (e.g. '10': for 10:)")
        if not isinstance(entry, dict):
            raise WorkloadError.at(where, f"datasets.{name}", "must be a mapping", "give seed and exit_mean_timesteps")
        for key in entry:
            if key not in DATASET_KEYS:
                raise unknown_key_error(where, f"datasets.{name}.", key, DATASET_KEYS)
        seed = entry.get("seed")
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed <= SEED_MAX):
            raise WorkloadError.at(where, f"datasets.{name}.seed", f"{shown(seed)} is not an integer in [0, 2^63 - 1]",
                                   "fix the value")
        for key, example in (("exit_mean_timesteps", "{dtsnn: 2.53, atsn: 2.19}"), ("rates", "{conv1_1: 0.1}"),
                             ("exit_histograms", "{atsn: [0.4, 0.3, 0.2, 0.1]}")):
            if entry.get(key) is not None and not isinstance(entry[key], dict):
                raise WorkloadError.at(where, f"datasets.{name}.{key}", "must be a mapping", f"e.g. {example}")
    if not isinstance(spec.get("rates") or {}, dict):
        raise WorkloadError.at(where, "rates", "must map layer names to rates", "e.g. rates: {conv1_1: 0.1}")
    if "input_frame_rate" in spec:
        frames, T = spec["input_frame_rate"], spec["timesteps"]
        if isinstance(frames, (int, float)) and not isinstance(frames, bool) and isinstance(T, int) and T >= 1:
            frames = spec["input_frame_rate"] = [frames] * T  # one rate for every timestep, as layer rates allow
        if "input_bit_density" in spec:
            raise WorkloadError.at(where, "input_frame_rate", "and input_bit_density both given: the inputs are "
                                   "spike frames or pixels, not both", "keep the one the trained network reads")
        if not (isinstance(frames, list) and isinstance(T, int) and len(frames) == T and all(
                isinstance(r, (int, float)) and not isinstance(r, bool) and 0 <= r <= 1 for r in frames)):
            raise WorkloadError.at(where, "input_frame_rate", f"needs one rate in [0, 1], or {shown(T)} of them, "
                                   "one per timestep", "the fraction of input frame bits set at t = 1..T")
    num = spec.get("num_images")
    if num is not None and (not isinstance(num, int) or isinstance(num, bool) or not 1 <= num <= 10**9):
        raise WorkloadError.at(where, "num_images", f"{shown(num)} is not an integer in 1..10^9", "fix the value")
    spec["_source"] = where
    return spec


def _whole_counts(spec: dict) -> None:
    """The table's counts (timesteps, num_images, each dataset's seed) as ints where they are whole numbers written
    as 4.0 or '1e3', as architecture files take them (errors.file_count); other values are left to the checks."""
    for holder, key in [(spec, "timesteps"), (spec, "num_images")] + [
            (entry, "seed") for entry in (spec["datasets"].values() if isinstance(spec["datasets"], dict) else ())
            if isinstance(entry, dict)]:
        if key in holder and file_count(holder[key]) is not None:
            holder[key] = file_count(holder[key])


def _with_assumed_density(spec: dict) -> dict:
    """A table's sources, saying the pixels' 0.5 densities are assumed when it gives none (it was said with --rate
    alone: a table without them built a workload whose provenance named no source for them)."""
    sources = dict(spec.get("sources") or {})
    if "input_bit_density" not in spec and "input_frame_rate" not in spec:
        sources["input_bit_density"] = "assumed: uniform 8-bit pixels, 0.5 per bit plane (the rate table gives none)"
    return sources


def _dataset_sources(sources: dict, dataset: str, measured_histograms: bool) -> dict:
    """The sources of a table that concern one dataset's build: other datasets' entries and, when this
    dataset's exit histograms are not given in the table, the measured histograms' source are left out."""
    return {k: v for k, v in sources.items()
            if (not str(k).startswith("datasets.") or k == f"datasets.{dataset}")
            and (measured_histograms or k != "exit_histograms" or not str(v).startswith("measured"))}


def table_exit_policy(entry: dict, where: str, field: str) -> dict | None:
    """A dataset entry's ``exit_policy`` (the thresholds its exit histograms were measured at), checked, the paper's
    defaults for those it leaves out; None if absent (the built workload then records the defaults)."""
    policy = entry.get("exit_policy")
    if policy is None:
        return None
    if not isinstance(policy, dict):
        raise WorkloadError.at(where, field, "must be a mapping", "e.g. {cl_init: 0.999, tau_cl: 0.999, theta: 0.1}")
    for key, value in policy.items():
        if key not in EXIT_PARAMETERS:
            raise unknown_key_error(where, f"{field}.", str(key), EXIT_PARAMETERS)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 < value <= 1:
            raise WorkloadError.at(where, f"{field}.{key}", f"{shown(value)} is not a number in (0, 1]",
                                   "give the threshold the exit histograms were measured at")
    return {"cl_init": CL_INIT_DEFAULT, "tau_cl": TAU_CL_DEFAULT, "theta": THETA_DEFAULT,
            **{k: float(policy[k]) for k in EXIT_PARAMETERS if k in policy}}


MAX_ENTROPY_NOTE = "maximum-entropy distribution on t = 1..T with the given mean (p_t ~ exp(lam t))"
FIXED_ONLY_NOTE = "fixed: all images at T; no other policy (the table gives this dataset no exit statistics)"


def given_histograms(table: dict, means: dict, T: int, where: str, field: str) -> dict[str, np.ndarray]:
    """A rate table's explicit exit histograms (e.g. measured on a trained network), checked and put on the
    2^-32 grid (integer counts out of 2^32, computed in decimal: the same bytes on every CPU)."""
    out = {}
    for policy, values in table.items():
        if policy == "fixed":
            if isinstance(values, list) and len(values) == T and all(
                    type(v) in (int, float) and v == (1 if i == T - 1 else 0) for i, v in enumerate(values)):
                continue  # the histogram every build writes: harmless
            raise WorkloadError.at(where, f"{field}.fixed", "a fixed-T design runs every image all T timesteps: its "
                                   "histogram is not a choice", "drop it (every build writes [0, ..., 0, 1])")
        if policy not in DRAW_ORDER_FIRST:
            raise unknown_key_error(where, f"{field}.", str(policy), DRAW_ORDER_FIRST)
        if policy in means:
            raise WorkloadError.at(where, f"{field}.{policy}", "is also given as a mean exit timestep",
                                   "give a histogram or a mean, not both")
        try:  # numbers only: numpy reads true/false, or the text '0.5', inside a list as a number
            if not isinstance(values, list) or any(type(v) not in (int, float) for v in values):
                raise TypeError
            hist = np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError):
            hist = np.full(1, np.nan)
        if hist.shape != (T,) or not np.isfinite(hist).all() or (hist < 0).any() or abs(hist.sum() - 1) > 1e-6:
            raise WorkloadError.at(where, f"{field}.{policy}", f"needs {T} non-negative probabilities summing to 1",
                                   "e.g. the measured fraction of images exiting at t = 1..T")
        # on the 2^-32 grid, as the max-entropy shapes: integer counts summing exactly to 2^32, in decimal
        counts = exactmath.largest_remainder([exactmath.dec(v) for v in hist], HIST_SCALE)
        out[policy] = np.asarray(counts, dtype=np.float64) / HIST_SCALE
    return out


def build_from_spec(spec: dict, network: str | NetworkSpec, dataset: str, num_images: int | None = None,
                    seed: int | None = None) -> Workload:
    """Build the statistical workload of ``network`` on ``dataset`` from a loaded rate table.

    ``network`` is a shipped network's name or a loaded network file (``workload/network_file.py``);
    a dataset of unknown class count takes the network file's ``num_classes``.
    """
    where = spec.get("_source", "<rate table>")
    net = resolve_network(network) if isinstance(network, str) else network
    network = net.name
    if spec["network"] != network:
        raise WorkloadError.at(
            where, "network", f"is {shown(spec['network'])} but --network is {shown(network)}",
            "use the matching rate table"
        )
    num_classes = DATASET_CLASSES.get(dataset, net.num_classes)  # None: the network's own (out_features, spikes)
    if dataset not in spec["datasets"]:
        raise WorkloadError.at(where, f"datasets.{dataset}", "missing",
                               f"the table covers {', '.join(map(str, spec['datasets']))}")
    entry = spec["datasets"][dataset]
    T = spec["timesteps"]
    if not isinstance(T, int) or isinstance(T, bool) or not 1 <= T <= 1024:
        raise WorkloadError.at(where, "timesteps", f"{shown(T)} is not an integer in 1..1024", "fix the value")
    layers = net.build(num_classes, identity_gain=IDENTITY_SHORTCUT_GAIN)
    rates, ratio_clamped = _table_rates(spec, entry, layers, network, T, where, dataset)
    means = entry.get("exit_mean_timesteps") or {}
    if not isinstance(means, dict):
        raise WorkloadError.at(where, f"datasets.{dataset}.exit_mean_timesteps", "must map policies to means",
                               "e.g. {dtsnn: 2.53, atsn: 2.19}")
    hist = exit_histograms(means, T, where, f"datasets.{dataset}.exit_mean_timesteps")
    measured = given_histograms(entry.get("exit_histograms") or {}, means, T, where,
                                f"datasets.{dataset}.exit_histograms")
    hist = {p: measured.get(p, hist.get(p)) for p in DRAW_ORDER_FIRST if p in hist or p in measured}
    fixed_only(net, hist, f"datasets.{dataset}", where)
    num_classes = output_classes(net, layers, num_classes, "--dataset")
    frames, density = _table_inputs(spec, where)
    n_images = num_images if num_images is not None else spec.get("num_images", DEFAULT_NUM_IMAGES)
    if not isinstance(n_images, int) or isinstance(n_images, bool) or n_images < 1:
        raise WorkloadError.at(where, "num_images", f"{shown(n_images)} is not a positive integer", "fix the value")
    seed_value = seed if seed is not None else entry.get("seed", 0)
    if not isinstance(seed_value, int) or isinstance(seed_value, bool) or seed_value < 0:
        raise WorkloadError.at(where, f"datasets.{dataset}.seed", "must be a non-negative integer", "fix the value")
    provenance = {
        "generator": "satasim workload build",
        "rate_table": Path(where).name,
        "sources": _dataset_sources(_with_assumed_density(spec), dataset, bool(measured)),
        "exit_histograms": (MAX_ENTROPY_NOTE if set(hist) != {"fixed"} else FIXED_ONLY_NOTE) if not measured else {
            p: "given in the rate table (measured: see its sources)" if p in measured else
            "all images at T" if p == "fixed" else MAX_ENTROPY_NOTE for p in hist},
        "exit_mean_timesteps": {p: float(means[p]) for p in ("dtsnn", "atsn") if p in means},
        "accuracy": None,
        "note": "statistical workload: independent Bernoulli spikes, no weights, no labels, no accuracy",
    }
    if ratio_clamped:
        provenance["pool_rate_ratio_clamped"] = ratio_clamped
    try:
        workload = build_statistical(
            name=f"{network}-{dataset}-statistical",
            dataset=dataset,
            num_classes=num_classes,
            layers=layers,
            timesteps=T,
            rates=rates,
            exit_hist=hist,
            input_bit_density=None if density is None else [float(d) for d in density],
            input_encoding="direct" if frames is None else "spike_frames",
            input_rate=None if frames is None else np.asarray(frames, dtype=np.float64),
            input_shape=list(net.input_shape),
            seed=seed_value,
            num_images=n_images,
            exit_policy=table_exit_policy(entry, where, f"datasets.{dataset}.exit_policy"),
            provenance=provenance,
            source=net.source,
        )
    except WorkloadError as error:  # name layers as the network file does
        raise net.relabel(error) from None
    return workload


def _table_inputs(spec: dict, where: str) -> tuple[list | None, list | None]:
    """(input frame rates, None) for a table of spike-frame inputs (e.g. DVS events), else (None, the 8 bit-plane
    densities of the pixels, 0.5 each unless given)."""
    frames = spec.get("input_frame_rate")
    if frames is not None:
        return frames, None
    density = spec.get("input_bit_density", [0.5] * 8)
    if not (
        isinstance(density, list)
        and len(density) == 8
        and all(isinstance(d, (int, float)) and not isinstance(d, bool) and 0 <= d <= 1 for d in density)
    ):
        raise WorkloadError.at(where, "input_bit_density", "needs 8 densities in [0, 1]", "bit plane 0 first")
    return None, density


def _table_rates(spec: dict, entry: dict, layers: list[dict], network: str, T: int,
                 where: str, dataset: str = "") -> tuple[dict, dict]:
    """Every spiking layer's rate from the table (the dataset's entry over the table's, else ``default_rate``),
    and the max-pool layers' given explicitly or from ``pool_rate_ratio``."""
    by_name = {layer["name"]: layer for layer in spiking_layers(layers)}
    rated = {**by_name, **{layer["name"]: layer for layer in pooled_layers(layers)}}  # pools may carry a rate
    table = dict(spec.get("rates") or {})
    table.update(entry.get("rates") or {})
    rates = {}
    pools = {layer["name"]: layer for layer in layers if layer["type"] == "maxpool"}
    for name, value in table.items():
        if name in pools and name not in rated:
            why = ("its windows have no neurons of their own (kernel >= 2 x stride)"
                   if not has_window_cores(pools[name]["kernel"], pools[name]["stride"]) else
                   "its input is not a spiking layer that it alone reads")
            raise WorkloadError.at(where, f"rates.{name}", f"a pooled rate needs a pool of its own spiking layer whose "
                                   f"windows have neurons of their own; {name} is not one: {why}",
                                   "drop the rate: the pooled map is then the OR of its input")
        if name not in rated:
            raise WorkloadError.at(
                where, f"rates.{name}", "is not a spiking (or rate-carrying max-pool) layer of " + network,
                f"use one of {', '.join(rated)}"
            )
        rates[name] = _rate_array(value, rated[name], T, where, f"rates.{name}")
    users = [layer for name, layer in by_name.items() if name not in rates]  # the layers default_rate rates
    default = spec.get("default_rate")
    if isinstance(default, list) and any(isinstance(v, list) for v in default):  # per channel: one width
        widths = {layer["name"]: int(layer["out_shape"][0]) for layer in users}
        if len(set(widths.values())) > 1:
            listed = ", ".join(f"{name} {width}" for name, width in list(widths.items())[:6])
            listed += ", ..." if len(widths) > 6 else ""
            raise WorkloadError.at(where, "default_rate", f"per-channel lists rate layers of different widths "
                                   f"(channels: {listed})", "give those layers their own rates.<layer>, or a "
                                   f"default_rate of one number or {T} values")
    if "default_rate" in spec and by_name:  # checked even where every layer has its own rate
        _rate_array(default, (users or list(by_name.values()))[0], T, where, "default_rate")
    for name, layer in by_name.items():
        if name not in rates:
            if "default_rate" not in spec:
                raise WorkloadError.at(where, f"rates.{name}", "missing", "give it a rate or set default_rate")
            rates[name] = _rate_array(spec["default_rate"], layer, T, where, "default_rate")
    clamped: dict = {}  # pools whose pool_rate_ratio rate was moved into the drawable range
    ratio = spec.get("pool_rate_ratio")
    if ratio is not None:
        if not isinstance(ratio, (int, float)) or isinstance(ratio, bool) or not 1 <= ratio <= 64:
            raise WorkloadError.at(where, "pool_rate_ratio", f"{shown(ratio)} must be a number in [1, 64]",
                                   "a pooled map fires at least as often as its input, and at most kernel^2 times")
        if not pooled_layers(layers):
            pools_here = [layer["name"] for layer in layers if layer["type"] == "maxpool"]
            raise WorkloadError.at(where, "pool_rate_ratio", f"applies to no max-pool of {network}: "
                                   + (f"none of {', '.join(pools_here)} has windows with neurons of their own over a "
                                      "spiking layer it alone reads" if pools_here else "it has none"),
                                   "drop it: such a pool's map is the OR of its input")
        own = [pool["name"] for pool in pooled_layers(layers) if pool["name"] in (spec.get("rates") or {})]
        if len(own) == len(pooled_layers(layers)):  # for every dataset of the table: an entry that does nothing
            raise WorkloadError.at(where, "pool_rate_ratio", f"applies to no max-pool of {network}: every pool it "
                                   f"could rate has a rate of its own in rates ({', '.join(own)})",
                                   "drop it, or drop a pool's rate to let the ratio give it")
        for pool in pooled_layers(layers):
            if pool["name"] not in rates and ratio > int(pool["kernel"]) ** 2:
                raise WorkloadError.at(where, "pool_rate_ratio", f"{shown(ratio)} is more than kernel^2 = "
                                       f"{int(pool['kernel']) ** 2} of {pool['name']}: a pooled map fires at most "
                                       "kernel^2 times as often as its input", "lower it, or give that pool its rate")
        for pool in (p for p in pooled_layers(layers) if p["name"] not in rates):  # an explicit rate wins
            r_in = rates[pool["inputs"][0]]
            _, h, w = pool["in_shape"]
            given = float(ratio) * r_in
            rates[pool["name"]] = np.clip(given, *pool_rate_bounds(r_in, pool["kernel"], pool["stride"], h, w))
            if not np.array_equal(rates[pool["name"]], given):  # said, as a twin says its clamped rates
                clamped[pool["name"]] = {"given_mean": round(float(np.mean(given)), 6),
                                         "drawn_mean": round(float(np.mean(rates[pool["name"]])), 6)}
    for pool in (p for p in pooled_layers(layers) if p["name"] in table):
        problem = pool_rate_problem_of(pool, rates[pool["inputs"][0]], rates[pool["name"]])
        if problem:
            source = pool["inputs"][0]
            given_by = (f", which datasets.{dataset}.rates gives" if source in (entry.get("rates") or {}) else "")
            raise WorkloadError.at(where, f"rates.{pool['name']}", problem,
                                   f"give {pool['name']} a rate in that range (or change {source}'s{given_by}), "
                                   "or drop it: the pooled map is then the OR of its input")
    return rates, clamped
