"""CLI commands of the hw area (registered by satasim_atsn.cli): ``satasim run``, ``bench`` and ``verify``."""

from __future__ import annotations

import json
import math
import resource
import statistics
import sys
import time
from typing import TYPE_CHECKING

import click
import numpy as np

from satasim_atsn.errors import SatasimError, counted
from satasim_atsn.fileio import atomic_write_text, check_output_path, check_outputs, refuse_overwriting_inputs
from satasim_atsn.options import ARCH_PATH, DIRECTORY, FILE, WORKLOAD_PATH, NumberRange
from satasim_atsn.workload.format import read_workload
from satasim_atsn.workload.schema import emits_spikes

if TYPE_CHECKING:
    from satasim_atsn.hw.arch import Arch
    from satasim_atsn.workload.format import Workload

BENCH_IMAGES = 256  # satasim bench's default image count


def _peak_rss_mb() -> float:
    """Peak resident memory of this process in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


@click.command("run")
@click.argument("arch_path", metavar="ARCH", type=ARCH_PATH)
@click.argument("workload_path", metavar="WORKLOAD", type=WORKLOAD_PATH)
@click.option("--images", type=int, default=None, help="Number of images (default: all from --start).")
@click.option("--start", type=int, default=0, show_default=True, help="Index of the first image.")
@click.option("--set", "overrides", multiple=True, metavar="PATH=VALUE",
              help="Override an arch field, or a technology-table entry as tech.<entry> (repeatable).")
@click.option("--json", "json_path", type=FILE, default=None, help="Write the full results.")
@click.option("--csv", "csv_dir", type=DIRECTORY, default=None, help="Write layers/images CSVs.")
@click.option("--quiet", "-q", is_flag=True, help="No progress line and no summary.")
@click.option("--timing", is_flag=True, help="Report wall-clock time (also in --json).")
def run_command(arch_path: str, workload_path: str, images: int | None, start: int, overrides: tuple[str, ...],
                json_path: str | None, csv_dir: str | None, quiet: bool, timing: bool) -> None:
    """Simulate WORKLOAD (.npz) on the accelerator ARCH (.yaml)."""
    from satasim_atsn.hw.arch import load_arch_with_set
    from satasim_atsn.hw.arch_overrides import naming_set_values
    from satasim_atsn.hw.engine import simulate
    from satasim_atsn.hw.notes import run_notes
    from satasim_atsn.hw.results import CSV_FILES
    from satasim_atsn.hw.run_checks import image_count
    from satasim_atsn.report.progress import Progress

    arch = load_arch_with_set(arch_path, list(overrides))
    workload = read_workload(workload_path, "run: the second argument")
    refuse_overwriting_inputs({"--json": json_path, "--csv": csv_dir}, [*arch.files, workload_path])
    check_outputs({"--json": json_path}, {"--csv": (csv_dir, CSV_FILES)})
    n_images = image_count(workload, images, start)
    t0 = time.perf_counter()
    with naming_set_values(overrides):  # a refusal at mapping time of a value a --set gave says so
        result = simulate(arch, workload, images=images, start=start, progress=Progress(arch.clock_hz, quiet=quiet))
    wall = time.perf_counter() - t0
    if timing:
        result.timing = {"wall_seconds": wall, "peak_rss_MiB": _peak_rss_mb()}
    notes = run_notes(arch, arch_path, list(overrides), workload, n_images, start=start)
    result.notes = [note.removeprefix("note: ") for note in notes]  # in --json too, where scripts read results
    _write_outputs(result, json_path, csv_dir, timing)
    if not quiet:
        for note in notes:
            click.echo(note, err=True)
        click.echo(result.summary_text())
    if timing:
        click.echo(f"wall time {wall:.2f} s, peak memory {_peak_rss_mb():.0f} MiB", err=quiet)


def _write_outputs(result, json_path: str | None, csv_dir: str | None, timing: bool) -> None:
    """Write the --csv files, then the --json file; a failure is one SatasimError naming the path.

    Nothing the user had is ever deleted: each file is written atomically (a failed write leaves the file that was
    there), the CSVs come first so that a CSV failure leaves the JSON as it was, and the message says which of
    this run's files were written before the failure."""
    written: list[str] = []
    try:
        if csv_dir:
            for path, text in result.csv_files(csv_dir):
                atomic_write_text(path, text)
                written.append(str(path))
        if json_path:
            result.write_json(json_path, timing=timing)
    except BrokenPipeError:
        raise  # `--json - | head`: the reader went away; click ends quietly (exit 1)
    except (OSError, SatasimError) as error:
        failure = error if isinstance(error, SatasimError) else SatasimError.at(
            str(error.filename or csv_dir or json_path), None, f"cannot write ({error.strerror or error})",
            "choose a writable location")
        if written:
            failure = SatasimError(f"{failure} (written before it: {', '.join(written)})")
        raise failure from None


def _default_arch() -> str:
    """The shipped ATSN design's file (package data/archs/atsn16x16.yaml): by its bare name, a folder or file named
    atsn16x16 in the working directory (a sweep's -o) won over it."""
    from satasim_atsn.hw.arch_files import shipped_arch

    return str(shipped_arch("atsn16x16"))


def functional_floor(arch: Arch, workload: Workload, start: int, count: int) -> None:
    """The bare functional work: the forward with the arch's exit policy (or a statistical draw + counts)."""
    if workload.is_statistical:
        from satasim_atsn.traces.statistical_draw import draw_trace

        trace = draw_trace(workload, arch.policy_name, start, count)
        for spikes in trace.spikes.values():
            spikes.reshape(spikes.shape[0], spikes.shape[1], -1).sum(axis=(0, 2))
        return
    from satasim_atsn.snn.forward import run_forward

    run_forward(workload, policy=arch.exit_policy(), start=start, count=count)


@click.command("bench")
@click.argument("workload_path", metavar="WORKLOAD", type=WORKLOAD_PATH)
@click.option("--arch", "arch_path", type=ARCH_PATH, default=None,
              help="Architecture YAML or shipped name (default atsn16x16).")
@click.option("--images", type=int, default=None,
              help=f"Images to time (default {BENCH_IMAGES}, or all if the workload has fewer).")
@click.option("--repeat", type=click.IntRange(1, 100), default=3, show_default=True,
              help="Timed rounds (forward, then simulation, each round); the medians are reported.")
@click.option("--set", "overrides", multiple=True, metavar="PATH=VALUE",
              help="Override an arch field, or a technology-table entry as tech.<entry> (repeatable).")
@click.option("--json", "json_path", type=FILE, default=None, help="Write the numbers.")
def bench_command(workload_path: str, arch_path: str | None, images: int | None, repeat: int,
                  overrides: tuple[str, ...], json_path: str | None) -> None:
    """Time the simulation of WORKLOAD against its bare functional forward, in one process.

    The two are timed in alternation, ``--repeat`` rounds, so that a busy machine slows both alike; the
    ratio is the median simulation time over the median forward time.
    """
    from satasim_atsn.hw.arch import load_arch_with_set
    from satasim_atsn.hw.arch_overrides import naming_set_values
    from satasim_atsn.hw.engine import simulate
    from satasim_atsn.hw.run_checks import image_count

    arch = load_arch_with_set(_default_arch() if arch_path is None else arch_path, list(overrides))
    workload = read_workload(workload_path, "bench: its argument")
    refuse_overwriting_inputs({"--json": json_path}, [*arch.files, workload_path])
    check_output_path(json_path, "--json")
    count = image_count(workload, min(BENCH_IMAGES, workload.num_images) if images is None else images)
    # warm-up (numba compilation / caches) on one image, not timed; a mapping-time refusal of a --set value says so
    with naming_set_values(overrides):
        simulate(arch, workload, images=1)
    functional_floor(arch, workload, 0, 1)
    forward_times, sim_times = [], []
    result = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        functional_floor(arch, workload, 0, count)
        forward_times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        result = simulate(arch, workload, images=count)
        sim_times.append(time.perf_counter() - t0)
    forward_s, sim_s = statistics.median(forward_times), statistics.median(sim_times)
    rss_sim = _peak_rss_mb()
    numbers = {
        "workload": workload.name,
        "workload_kind": workload.kind,
        "arch": arch.name,
        "set": list(overrides),
        "images": count,
        "repeat": repeat,
        "forward_seconds": forward_s,
        "simulate_seconds": sim_s,
        "forward_seconds_all": forward_times,
        "simulate_seconds_all": sim_times,
        "ratio": sim_s / forward_s if forward_s > 0 else float("inf"),
        "peak_rss_MiB": rss_sim,
        "simulated_fps": result.metrics()["fps"],
        "numpy": np.__version__,
        "python": sys.version.split()[0],
        "emitting_layers": sum(1 for ly in workload.layers if emits_spikes(ly)),
    }
    floor = "statistical draw + per-layer counts" if workload.is_statistical else "functional forward"
    spread = f"  ({repeat} rounds, median)" if repeat > 1 else ""
    changed = "".join(f" --set {text}" for text in overrides)
    click.echo(f"{workload.name} on {arch.name}{changed}, {count} image{'s' if count != 1 else ''}{spread}")
    click.echo(f"  {floor:<36}{_seconds_text(forward_s):>10} s{_range_text(forward_times)}")
    click.echo(f"  {'simulation (satasim run)':<36}{_seconds_text(sim_s):>10} s{_range_text(sim_times)}")
    ratio = "ratio simulation / draw" if workload.is_statistical else "ratio simulation / forward"
    click.echo(f"  {ratio:<36}{numbers['ratio']:10.2f}")
    click.echo(f"  {'peak memory':<36}{rss_sim:10.0f} MiB")
    if json_path:
        atomic_write_text(json_path, json.dumps(numbers, sort_keys=True, indent=1) + "\n")


def _seconds_text(seconds: float) -> str:
    """A time in seconds to 4 significant digits, at least 3 decimals: the quotient of two shown times is the
    shown ratio to within 0.1% (at 3 decimals, 0.007 s and 0.060 s were 8.57 beside a ratio of 8.71)."""
    decimals = 3 if not 0 < seconds < 1 else max(3, 3 - math.floor(math.log10(seconds)))
    return f"{seconds:.{decimals}f}"


def _range_text(times: list[float]) -> str:
    """'  (min-max)' of several timings, nothing for one."""
    return f"  ({_seconds_text(min(times))}-{_seconds_text(max(times))})" if len(times) > 1 else ""


@click.command("verify")
@click.argument("arch_path", metavar="ARCH", type=ARCH_PATH)
@click.argument("workload_path", metavar="[WORKLOAD]", required=False, type=WORKLOAD_PATH)
@click.option("--images", type=int, default=1, show_default=True, help="Images of WORKLOAD to check.")
@click.option("--start", type=int, default=0, show_default=True, help="Index of the first image.")
@click.option("--random", "random_count", type=click.IntRange(0, 1000), default=12, show_default=True,
              help="Random small networks to check the design on.")
@click.option("--seed", type=click.IntRange(0, 2**31 - 1), default=0, show_default=True,
              help="Seed of the first random network.")
@click.option("--max-minutes", type=NumberRange(0, None, min_open=True), default=10.0, show_default=True,
              help="Time allowed for verify's runs of the engine and the per-cycle reference (each estimated before "
                   "it runs): WORKLOAD is refused beyond it, random networks beyond the rest are shrunk to one image "
                   "or skipped.")
@click.option("--set", "overrides", multiple=True, metavar="PATH=VALUE",
              help="Override an arch field, or a technology-table entry as tech.<entry> (repeatable).")
@click.option("--json", "json_path", type=FILE, default=None, help="Write every case.")
@click.option("--quiet", "-q", is_flag=True, help="Print nothing but the verdict and errors.")
def verify_command(arch_path: str, workload_path: str | None, images: int, start: int, random_count: int,
                   seed: int, max_minutes: float, overrides: tuple[str, ...], json_path: str | None,
                   quiet: bool) -> None:
    """Check the fast engine against the literal per-cycle reference on ARCH: every counter must be equal.

    On random small networks (whose membranes fit ARCH's), and on the first --images of WORKLOAD if given (the
    reference is plain Python, a step of every PE each cycle: the quarter-width VGG16's first image, 699,298
    cycles on atsn16x16, takes it about 10 s). Exit code 1 if any counter differs (please report it)."""
    from satasim_atsn.hw.arch import load_arch_with_set
    from satasim_atsn.hw.arch_overrides import naming_set_values, override_label
    from satasim_atsn.hw.verify import compare_case
    from satasim_atsn.report.progress import progress_bar

    if math.isnan(max_minutes):  # click's range lets nan through: every estimate compared with it was "within" it
        raise SatasimError.at(None, "--max-minutes", "is nan, not a number of minutes", "give minutes > 0, e.g. "
                              "--max-minutes 10 (inf: no limit)")
    arch = load_arch_with_set(arch_path, list(overrides))
    workload = read_workload(workload_path, "verify: the second argument") if workload_path else None
    refuse_overwriting_inputs({"--json": json_path}, [*arch.files] + ([workload_path] if workload_path else []))
    check_output_path(json_path, "--json")
    if workload is None and random_count == 0:
        raise SatasimError.at(None, "--random", "is 0 and no WORKLOAD is given: nothing to check",
                              "give a WORKLOAD or --random N")
    with naming_set_values(overrides):
        jobs, plan, unfit = _verify_jobs(arch, workload, workload_path, images, start, random_count, seed,
                                         max_minutes, quiet)
    cases = []
    for job in jobs:
        mine = job.workload is workload
        ran = mine and job.engine_result is not None  # None: the engine refused the workload's mapping
        bar = progress_bar(job.engine_result.counters()["total_cycles"] if ran else None,
                           desc="per-cycle reference", unit="cycle", quiet=quiet or not ran)
        with naming_set_values(overrides), bar:
            case = compare_case(arch, job.workload, job.images, job.label, start if mine else 0,
                                engine_result=job.engine_result,
                                on_cycles=(lambda now, bar=bar: bar.update(now - bar.n)) if mine else None)
        cases.append(case)
        if not quiet:
            verdict = ("agree (both refuse: " + case.refused + ")" if case.refused and case.agree else
                       f"agree, {case.total_cycles:,} cycles" if case.agree else
                       f"DIFFER, {counted(len(case.differences), 'difference')}: " + "; ".join(case.differences[:3]))
            click.echo(f"  {job.label}, {job.images} image{'s' if job.images != 1 else ''}: {verdict}")
    if not quiet:
        for job in plan.skipped:
            click.echo(f"  {job.label}: skipped ({job.skip_reason()})")
    design = arch.name + "".join(f" --set {override_label(o)}" for o in overrides)  # the design checked, as changed
    _verify_verdict(arch, design, list(zip(cases, jobs, strict=True)), plan, unfit, max_minutes, json_path,
                    workload_path)


def _verify_jobs(arch: Arch, workload: Workload | None, workload_path: str | None, images: int, start: int,
                 random_count: int, seed: int, max_minutes: float, quiet: bool):
    """The comparisons verify runs within --max-minutes: the workload's images first (refused if they alone take
    longer), then the random networks that fit the rest; (jobs, plan, why no random network fits or None)."""
    from satasim_atsn.hw.run_checks import image_count
    from satasim_atsn.hw.verify import (
        Job,
        budget_enough,
        check_affordable,
        minutes_enough,
        network_widths,
        plan_random_cases,
        spent,
    )

    jobs, budget = [], max_minutes * 60
    if workload is not None:
        count = image_count(workload, images, start)
        mine, seconds, engine_seconds = check_affordable(arch, workload, count, start, max_minutes, workload_path)
        if not quiet and seconds > 30:
            click.echo(f"the per-cycle reference may take up to about {seconds / 60:.1f} min for {workload.name}",
                       err=True)
        shown = f"image {start}" if count == 1 else f"images {start}-{start + count - 1}"
        jobs.append(Job(f"{workload.name}, {shown}", workload, count, mine, seconds, engine_seconds, count))
        budget -= seconds + engine_seconds
    widths = network_widths(arch)
    unfit = widths if random_count and isinstance(widths, SatasimError) else None
    plan = plan_random_cases(arch, random_count, seed, budget)
    jobs.extend(plan.jobs)
    if not jobs and unfit is not None:
        raise unfit
    if not jobs:  # every random network is over the budget, even shrunk to one image
        enough, known = budget_enough(arch, plan)
        what = ("the engine and the per-cycle reference take" if known else "the engine alone takes (the reference's "
                "time is known from the engine's run)")
        raise SatasimError.at(None, "--max-minutes", f"{what} up to about {spent(enough)} for even the cheapest of "
                              f"the {len(plan.skipped)} random networks on {arch.where}'s {arch.num_pes:,} PEs (the "
                              "reference steps every PE each cycle)", f"allow {'it with' if known else 'at least'} "
                              f"--max-minutes {minutes_enough(enough):g}, or use fewer PEs")
    return jobs, plan, unfit


def _estimates(jobs: list, plan) -> dict[str, float]:
    """The estimated seconds verify planned within --max-minutes (rounded: the same on every machine): the engine's
    runs (those of networks then shrunk or skipped too) and the reference's."""
    engine_seconds = sum(job.engine_seconds for job in jobs) + plan.spent_engine_seconds
    reference = sum(job.seconds for job in jobs)
    return {"engine": round(engine_seconds, 1), "reference": round(reference, 1),
            "total": round(engine_seconds + reference, 1)}


def _verify_verdict(arch: Arch, design: str, runs: list, plan, unfit: SatasimError | None, max_minutes: float,
                    json_path: str | None, workload_path: str | None = None) -> None:
    """Write the --json record and print the verdict (``runs``: each case and its job): exit code 1 on any
    difference. The record names the design's file and the workload's by name alone."""
    from satasim_atsn.hw.verify import named_by_file

    cases, jobs = [case for case, _ in runs], [job for _, job in runs]
    bad = [c for c in cases if not c.agree]
    left_out = plan.note(max_minutes) + (f"; {unfit.field}: {unfit.problem}" if unfit is not None else "")
    if json_path:
        # the resolved design, as run --json records it: a --set-changed design is not the file's own
        record = {"arch": arch.name, "design": arch.to_dict(), "agree": not bad, "cases": [dict(
                      c.to_dict(), refused=named_by_file(c.refused, arch, workload_path),
                      differences=[named_by_file(d, arch, workload_path) for d in c.differences],
                      estimated_seconds=round(job.seconds, 1),
                      estimated_engine_seconds=round(job.engine_seconds, 1)) for c, job in runs],
                  "shrunk": plan.shrunk, "skipped": [{"case": job.label, "images": job.images,
                                                      "estimated_seconds": round(job.seconds, 1),
                                                      "estimated_engine_seconds": round(job.engine_seconds, 1),
                                                      "engine_ran": job.engine_result is not None}
                                                     for job in plan.skipped],
                  "max_minutes": max_minutes, "planned_seconds": _estimates(jobs, plan),
                  "not_compared": named_by_file(str(unfit), arch) if unfit is not None else None}
        atomic_write_text(json_path, json.dumps(record, sort_keys=True, indent=1) + "\n")
    if bad:
        click.echo(f"satasim: the engine and the per-cycle reference differ on {len(bad)} of {len(cases)} cases of "
                   f"{design} (first: {bad[0].label}: {bad[0].differences[0]}); please report it with this "
                   "command", err=True)
        raise SystemExit(1)
    refused = sum(1 for c in cases if c.refused)
    click.echo(f"{design}: the engine and the per-cycle reference agree on every counter and emitted spike in "
               f"{len(cases)} case{'s' if len(cases) != 1 else ''}"
               + (f" ({refused} refused by both, for the same field and fix)" if refused else "") + left_out)


COMMANDS: list = [run_command, bench_command, verify_command]
