"""Rate tables measured on a trained network: the statistics behind a paper-scale statistical workload.

``satasim workload rates TRAINED`` fits the trained network's firing rates (per layer and
timestep, max-pools included), its exit histograms under each policy and its input bit-plane
densities, and writes them as a rate table (workloads/rates/*.yaml) for a network of the same
topology: layers are matched by name, i.e. by depth and position. ``workload build --rates`` then
draws the full-width network at those statistics. Every number is a ratio of integer counts,
rounded to a fixed decimal grid, so the table's bytes do not depend on the CPU.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import numpy as np
import yaml

from satasim_atsn.errors import WorkloadError
from satasim_atsn.traces.statistical import DRAW_ORDER_FIRST, fit_statistical_twin, pooled_layers, spiking_layers
from satasim_atsn.workload.format import Workload

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
    from satasim_atsn.traces.statistical import load_rate_spec

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
    from satasim_atsn.fileio import atomic_write_text

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
