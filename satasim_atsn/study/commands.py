"""CLI commands of the study area (registered by satasim_atsn.cli): compare, sweep, reproduce, validate."""

from __future__ import annotations

import shlex
import sys
from collections import Counter
from pathlib import Path

import click

from satasim_atsn.errors import StudyError, counted
from satasim_atsn.fileio import (
    check_outputs,
    directory_lock,
    expand_home,
    new_output_directory,
    real_path,
    refuse_overwriting_inputs,
    write_json,
)
from satasim_atsn.options import ARCH_PATH, PATH, WORKLOAD_PATH
from satasim_atsn.study.functional import DEFAULT_TRAINED_SET
from satasim_atsn.threads import apply_thread_policy
from satasim_atsn.workload.datasets import DATASETS

apply_thread_policy()  # DESIGN section 9: numba and OpenBLAS threads must not busy-wait against each other


def command_line(args: list[str]) -> str:
    """The satasim command line that regenerates an output (relative paths as given)."""
    return "satasim " + " ".join(shlex.quote(a) for a in args)


def _refuse_empty(options: dict[str, str | None]) -> None:
    """Refuse a text option given empty (``--dataset "$UNSET"``; a path option is refused by options.UserPath): it was
    taken as left out, the default used without a word."""
    for option, value in options.items():
        if value is not None and not value.strip():
            raise StudyError.at(None, option, "is empty", "give a value, or leave the option out for its default")


def _check_jobs(jobs: int | None) -> None:
    """Refuse a non-positive --jobs (None: the default, the CPUs this process may use)."""
    if jobs is not None and jobs < 1:
        raise StudyError.at(None, "--jobs", f"must be >= 1, got {jobs}", "give a positive number of workers")


@click.command("sweep")
@click.argument("study_path", metavar="STUDY.yaml",
                type=PATH.described("a study YAML's path (e.g. studies/atsn_buffers.yaml)"))
@click.option("-o", "--out", "out_dir", type=PATH, required=True, help="output directory (CSV, plots, report)")
@click.option("--resume", is_flag=True, help="keep finished rows even if the directory holds a different study")
@click.option("--force", is_flag=True, help="start over: discard the rows and report of the study the directory "
              "holds (other files stay; another command's report is refused)")
@click.option("--jobs", "-j", type=int, default=None, help="worker processes (default: the CPUs this process may use)")
@click.option("--scheduler", default=None, metavar="ADDRESS", help="run on a Dask distributed scheduler instead")
@click.option("--json", "json_path", metavar="FILE", type=PATH, default=None,
              help="also write every point's values, status and metrics, and the notes, as JSON here")
@click.option("--no-plots", is_flag=True, help="write the report's tables (Pareto fronts too) without figures")
@click.option("--quiet", "-q", is_flag=True, help="no progress bar, no summary")
def sweep_command(study_path: str, out_dir: str, resume: bool, force: bool, jobs: int | None, scheduler: str | None,
                  json_path: str | None, no_plots: bool, quiet: bool) -> None:
    """Run a study: every point of the varied fields, in parallel, resumable; CSV + trade-off plots + report."""
    from satasim_atsn.study.point_notes import point_list, point_notes
    from satasim_atsn.study.runner import SWEEP_FILES, make_output_dir, run_study, study_results
    from satasim_atsn.study.spec import load_study
    from satasim_atsn.study.sweep_report import sweep_report

    _check_jobs(jobs)
    if jobs is not None and scheduler is not None:  # the cluster's workers run the points: --jobs would be ignored
        raise StudyError.at(None, "--jobs/--scheduler", "are exclusive: a Dask scheduler's own workers run the "
                            "points", "drop --jobs (size the cluster instead), or drop --scheduler for local workers")
    if resume and force:
        raise StudyError.at(None, "--resume/--force", "are exclusive",
                            "keep rows with --resume or discard them with --force")
    study = load_study(study_path)
    check_outputs({"--json": json_path}, {"-o": (out_dir, SWEEP_FILES)})
    refuse_overwriting_inputs({"--json": json_path}, [study_path, study.workload, *([study.arch] if study.arch else []),
                                                   *study.arch_files.values()])
    with new_output_directory(out_dir):  # a -o made for a sweep that then wrote nothing is removed
        make_output_dir(Path(out_dir))
        # one sweep at a time in -o: a second one deleted the first's temp files while it wrote them
        with directory_lock(out_dir, "-o", "another sweep"):
            rows, stats = run_study(study, out_dir, jobs=jobs, resume=resume, force=force, scheduler=scheduler,
                                    quiet=quiet)
            args = ["sweep", study_path, "-o", out_dir] + (["--no-plots"] if no_plots else [])
            notes = point_notes(study, rows)  # once, for the report, the terminal and --json
            sweep_report(study, rows, out_dir, command_line(args), stats, notes, draw_plots=not no_plots)
    if json_path:
        write_json(json_path, study_results(study, out_dir, notes))
    if not quiet:
        ran = sum(1 for r in rows if r["status"] == "ok")
        for note, indices in notes:  # in report.md too
            click.echo(f"note ({point_list(indices, ran)}): {note}", err=True)
        click.echo(f"{study.name}: {counted(stats['points'], 'point')} ({stats['computed']} computed, "
                   f"{stats['reused']} reused, {counted(stats['errors'], 'error')}, {stats.get('skipped', 0)} "
                   f"skipped) in {stats['seconds']:.1f} s -> {out_dir}/points.csv, report.md")
    if stats["errors"]:  # a script must see it: the report is written, but points are missing from it
        click.echo(f"satasim: {counted(stats['errors'], 'point')} failed; see the error column of {out_dir}/points.csv",
                   err=True)
        raise SystemExit(1)
    if stats.get("skipped", 0) == stats["points"]:
        raise _all_skipped_error(study_path, out_dir, rows)


def _all_skipped_error(study_path: str, out_dir: str, rows: list[dict]) -> StudyError:
    """The one-line error of a sweep whose every point was skipped: the study file, its most common reason (a
    skipped point's design refused its combination of values, which is seldom the workload's doing) and where
    the others are."""
    reasons = Counter(str(r.get("error") or "") for r in rows)
    reason, count = max(reasons.items(), key=lambda kv: (kv[1], -list(reasons).index(kv[0])))
    others = len(reasons) - 1
    more = f"; {others} other reason{'s' if others > 1 else ''} in {out_dir}/report.md" if others else ""
    return StudyError.at(study_path, "vary", f"none of the {len(rows)} points could run: every point was skipped "
                         f"({count} of them: {reason}{more})", "change the varied or set values")


def _split_pair(item: str) -> tuple[str, str | None]:
    """``ARCH=WORKLOAD`` -> (ARCH, WORKLOAD), anything else -> (item, None), each side with ``~`` expanded.

    An existing file whose name holds '=' is that file, and a pair splits at the first '=' whose left side is a
    file or a shipped design's name (a `w=1.npz` workload was read as the architecture 'w' paired with '1.npz')."""
    from satasim_atsn.hw.arch_files import shipped_arch

    if "=" not in item or Path(expand_home(item)).exists():
        return expand_home(item), None
    cuts = [i for i, ch in enumerate(item) if ch == "="]
    cut = next((i for i in cuts if Path(expand_home(item[:i])).is_file() or shipped_arch(item[:i])), cuts[0])
    return expand_home(item[:cut]), expand_home(item[cut + 1:])


def _arch_workload_pairs(paths: tuple[str, ...]) -> tuple[list[str], str | list[str]]:
    """The architectures and their workloads from compare's arguments: one shared workload, or one each."""
    last, last_workload = _split_pair(paths[-1])  # each side with ~ expanded, as every path argument
    shared = None if last_workload is not None else last
    items = list(paths[:-1] if shared is not None else paths)
    if not items:
        raise StudyError.at(None, "ARCH... WORKLOAD", "needs at least one architecture and a workload",
                            "e.g. satasim compare archs/atsn16x16.yaml workloads/vgg16_cifar10.npz -o out")
    archs, own = [], []
    for item in items:
        arch, workload = _split_pair(item)
        if not arch or (workload is not None and not workload):
            raise StudyError.at(None, item, "is not ARCH or ARCH=WORKLOAD", "e.g. archs/atsn16x16.yaml="
                                "workloads/vgg16w025_cifar10_atsn.npz")
        archs.append(arch)
        own.append(workload or shared)
    missing = [a for a, w in zip(archs, own, strict=True) if w is None]
    if missing:
        raise StudyError.at(None, missing[0], "has no workload", "give it one (ARCH=WORKLOAD) or end the "
                            "arguments with a workload for the architectures that name none")
    if shared is not None and shared not in own:
        raise StudyError.at(None, shared, "is read as the workload of the architectures that name none, but every "
                            "architecture names its own", "drop it, or give it a workload if it is an architecture "
                            "(ARCH=WORKLOAD)")
    if len({real_path(w) for w in own}) == 1:  # every ARCH=WORKLOAD names one file: a shared workload
        return archs, shared if shared is not None else own[0]
    return archs, own


@click.command("compare")
@click.argument("paths", nargs=-1, required=True, metavar="ARCH[=WORKLOAD]... [WORKLOAD]")
@click.option("-o", "--out", "out_dir", type=PATH, required=True, help="output directory for the report")
@click.option("--baseline", default=None, help="the architecture the ratios refer to: its name, its file (as given, "
              "its file name or stem) or its 0-based index (default: the first)")
@click.option("--images", type=int, default=None, help="images to simulate (default: 100, or all if fewer)")
@click.option("--start", type=int, default=0, show_default=True, help="first image")
@click.option("--set", "overrides", multiple=True,
              help="override a field of every architecture: path.to.field=value, or tech.<entry>=value")
@click.option("--jobs", "-j", type=int, default=None,
              help="worker processes (default: one per usable CPU, at most one per arch)")
@click.option("--json", "json_path", metavar="FILE", type=PATH, default=None,
              help="also write the comparison as JSON here")
@click.option("--no-plots", is_flag=True, help="write the report's tables and results.json without figures "
              "(about a second less per figure)")
@click.option("--quiet", "-q", is_flag=True, help="print nothing but errors")
def compare_command(paths: tuple[str, ...], out_dir: str, baseline: str | None, images: int | None, start: int,
                    overrides: tuple[str, ...], jobs: int | None, json_path: str | None, no_plots: bool,
                    quiet: bool) -> None:
    """Run several architectures on one workload (or each on its own: ARCH=WORKLOAD) and write a side-by-side report.

    The last argument is the workload of every architecture that names none; ARCH=WORKLOAD gives one
    architecture its own (e.g. each accelerator on the network trained for it).
    """
    from satasim_atsn.study.compare import run_compare

    arch_paths, workloads = _arch_workload_pairs(paths)
    _check_jobs(jobs)
    args = ["compare", *paths, "-o", out_dir]
    if baseline:
        args += ["--baseline", baseline]
    if images is not None:
        args += ["--images", str(images)]
    if start:
        args += ["--start", str(start)]
    for item in overrides:
        args += ["--set", item]
    if no_plots:
        args += ["--no-plots"]
    with new_output_directory(out_dir):  # a full disk or Ctrl-C while writing the report leaves no empty -o behind
        summary = run_compare(arch_paths, workloads, out_dir, baseline=baseline, images=images, start=start,
                              overrides=list(overrides), jobs=jobs, json_path=json_path, command=command_line(args),
                              quiet=quiet, draw_plots=not no_plots)
    if not quiet:
        click.echo(summary)


@click.command("reproduce")
@click.argument("what", type=click.Choice(["table1", "table2", "table3", "table4", "table5", "figs", "claims", "twin",
                                          "all", "algorithm"]))
@click.option("-o", "--out", "out_dir", type=PATH, required=True, help="output directory")
@click.option("--images", type=int, default=None, help="images per simulation / evaluation (default per table)")
@click.option("--arch", "arch_path", type=ARCH_PATH, default=None,
              help="the ATSN design of table3 and claims (claims takes the DTSNN and conventional designs from "
                   "its folder), or the design of twin (any kind); default: the shipped atsn16x16")
@click.option("--workloads", "workload_dir", type=PATH, default=None,
              help="directory of the workloads (default: workloads/ here, else the checkout's beside the installed "
              "package)")
@click.option("--trained", "trained_path", type=WORKLOAD_PATH, default=None,
              help="the trained workload of `twin` (default: the trained set's ATSN network)")
@click.option("--trained-set", "prefix", default=DEFAULT_TRAINED_SET, show_default=True,
              help="the trained networks of Tables 1, 2, 4, 5 and the figures: PREFIX_snn/_dtsnn/_atsn.npz (Table 5: "
                   "every PREFIX_*.npz), e.g. vgg16w025_cifar10")
@click.option("--dataset", default=None, help="measure accuracies on this dataset's whole test split instead of the "
              "images embedded in the workloads: " + " | ".join(DATASETS))
@click.option("--data-dir", type=PATH, default=None, help="dataset directory (with --dataset)")
@click.option("--image-size", default=None, type=int, help="imagefolder: resize every image to S x S (bilinear)")
@click.option("--json", "json_path", metavar="FILE", type=PATH, default=None,
              help="also write the results here: the part's results.json, or {part: results} for all/algorithm")
@click.option("--quiet", "-q", is_flag=True, help="print nothing but errors")
def reproduce_command(what: str, out_dir: str, images: int | None, arch_path: str | None, workload_dir: str | None,
                      trained_path: str | None, prefix: str, dataset: str | None, data_dir: str | None,
                      image_size: int | None, json_path: str | None, quiet: bool) -> None:
    """Regenerate the paper's tables and figures (ours beside the paper's) with one command each.

    `all` runs every part and `algorithm` the accuracy parts (table1, table2, table4, table5, figs), each into
    its own subdirectory of --out.
    """
    from satasim_atsn.study.driver import reproduce
    from satasim_atsn.study.functional import TestSplit, TrainedSet

    if images is not None and images < 1:
        raise StudyError.at(None, "--images", f"must be at least 1, got {images}",
                            "leave it out for each part's default")
    _refuse_empty({"--trained-set": prefix, "--dataset": dataset})  # the path options refuse it (options.UserPath)
    args = ["reproduce", what, "-o", out_dir]
    if images is not None:
        args += ["--images", str(images)]
    if arch_path:
        args += ["--arch", arch_path]
    if workload_dir:
        args += ["--workloads", workload_dir]
    if trained_path:
        if what != "twin":
            raise StudyError.at(None, "--trained", f"is for `reproduce twin`, not {what}", "drop --trained")
        args += ["--trained", trained_path]
    if dataset is None and (data_dir is not None or image_size is not None):
        raise StudyError.at(None, "--data-dir/--image-size", "apply only to a --dataset",
                            "add --dataset (e.g. imagefolder), or drop them to use the embedded test images")
    if image_size is not None and dataset not in (None, "imagefolder"):
        raise StudyError.at(None, "--image-size", f"resizes image folders only; {dataset} images keep their size",
                            "drop --image-size")
    if dataset is not None and what in ("table3", "twin"):
        raise StudyError.at(None, "--dataset", f"`reproduce {what}` simulates workloads and measures no accuracy",
                            "drop --dataset (it is for table1, table2, table4, table5, figs, claims and all)")
    if arch_path is not None and what in ("table1", "table2", "table4", "table5", "figs", "algorithm"):
        raise StudyError.at(None, "--arch", f"`reproduce {what}` simulates no architecture (it measures accuracy)",
                            "drop --arch (it is for table3, claims, twin and all)")
    if prefix != DEFAULT_TRAINED_SET and what == "table3":
        raise StudyError.at(None, "--trained-set", "`reproduce table3` reads no trained network",
                            "drop --trained-set (it is for table1, table2, table4, table5, figs, claims, twin and all)")
    if prefix != DEFAULT_TRAINED_SET:
        args += ["--trained-set", prefix]
    if dataset is not None:
        args += ["--dataset", dataset] + (["--data-dir", data_dir] if data_dir else []) + \
            (["--image-size", str(image_size)] if image_size else [])
    split = None if dataset is None else TestSplit(dataset, data_dir, image_size)
    text = reproduce(what, out_dir, images=images, arch_path=arch_path, workload_dir=workload_dir,
                     command=command_line(args), quiet=quiet, trained_path=trained_path,
                     trained_set=TrainedSet(prefix, split, quiet), json_path=json_path)
    if not quiet and text:
        click.echo(text)
    sys.stdout.flush()


@click.command("validate")
@click.option("-o", "--out", "out_dir", type=PATH, required=True,
              help="directory of validation.md (-o docs regenerates the checkout's docs/validation.md)")
@click.option("--images", type=int, default=None, help="images per simulated configuration (default 8)")
@click.option("--workloads", "workload_dir", type=PATH, default=None,
              help="directory of the workloads (default: workloads/ here, else the checkout's beside the installed "
              "package)")
@click.option("--json", "json_path", metavar="FILE", type=PATH, default=None,
              help="also write every table's numbers as JSON here")
@click.option("--quiet", "-q", is_flag=True, help="print nothing but errors")
def validate_command(out_dir: str, images: int | None, workload_dir: str | None, json_path: str | None,
                     quiet: bool) -> None:
    """Published chips, accelerators, Horowitz and the paper's Table 3 beside our models: docs/validation.md."""
    from satasim_atsn.study.validate import validate

    args = ["validate", "-o", out_dir]
    if images is not None:
        args += ["--images", str(images)]
    if workload_dir:
        args += ["--workloads", workload_dir]
    path, data = validate(out_dir, images=images, workload_dir=workload_dir, json_path=json_path,
                          command=command_line(args))
    if not quiet:
        for note in data["notes"]:  # as `run` prints it: these numbers describe a short run
            click.echo(f"note: {note}", err=True)
        click.echo(f"wrote {path}")


COMMANDS: list = [compare_command, sweep_command, reproduce_command, validate_command]
