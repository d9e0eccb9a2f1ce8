"""`satasim reproduce`: run each part of the paper's reproduction into its directory, with its report."""

from __future__ import annotations

from pathlib import Path

from satasim_atsn.errors import StudyError
from satasim_atsn.fileio import (
    atomic_write_text,
    check_output_path,
    check_outputs,
    new_output_directory,
    refuse_overwriting_inputs,
    staged_directory,
)
from satasim_atsn.hw.arch_files import ARCH_DIR
from satasim_atsn.report.document import Document
from satasim_atsn.study.functional import DEFAULT_TRAINED_SET, TrainedSet
from satasim_atsn.study.reproduce import (
    PART_FILES,
    default_workload_dir,
    figs,
    part_command,
    results_text,
    table1,
    table2,
    table4,
    table5,
    write_part,
)
from satasim_atsn.study.runner import STUDY_JSON
from satasim_atsn.study.table3 import _paths as table3_inputs
from satasim_atsn.study.table3 import claims, table3
from satasim_atsn.study.twin import twin_check

# Parts that run together, each into its own subdirectory; "algorithm" is the accuracy parts alone, which
# share their networks' forwards (one per network, cached) and run no simulation.
GROUPS = {"all": ["table1", "table2", "table3", "table4", "table5", "figs", "claims", "twin"],
          "algorithm": ["table1", "table2", "table4", "table5", "figs"]}


def _twin_workload(wdir: Path, trained_path: str | None, trained_set: TrainedSet) -> Path:
    """The trained workload the twin part fits, or the one-line error if it is missing."""
    trained = Path(trained_path) if trained_path else wdir / trained_set.file("ATSN")
    if not trained.is_file():
        raise StudyError.at(str(trained), None, "no such trained workload",
                            "train it first (see workloads/README.md) or pass --workloads DIR")
    return trained


def _run_part(part: str, out: Path, images: int | None, wdir: Path, command: str, arch_path: str | None,
              quiet: bool, trained_path: str | None, trained_set: TrainedSet) -> tuple[Document, dict, str]:
    """One part other than claims, with its plots written into ``out``: (report, results, terminal summary)."""
    if part == "twin":
        arch = arch_path or str(ARCH_DIR / "atsn16x16.yaml")  # the shipped design, from any directory
        return twin_check(_twin_workload(wdir, trained_path, trained_set), arch, images, per_channel=False,
                          command=command, argument="reproduce twin: --trained" if trained_path else "")
    if part == "table3":
        return table3(out, images, wdir, command, arch_path=arch_path, quiet=quiet)
    func = {"table1": table1, "table2": table2, "table4": table4, "table5": table5, "figs": figs}[part]
    trained_set.notes.clear()
    doc, results, summary = func(out, images, wdir, command, trained_set)
    if trained_set.notes:  # --images beyond a network's images: on the terminal and in results.json, as twin does
        results["notes"] = list(trained_set.notes)
        summary += "".join(f"\nnote: {note}" for note in trained_set.notes)
    return doc, results, summary


def reproduce(what: str, out_dir: str | Path, images: int | None = None, arch_path: str | None = None,
              workload_dir: str | None = None, command: str = "", quiet: bool = False,
              trained_path: str | None = None, trained_set: TrainedSet | None = None,
              json_path: str | None = None) -> str:
    """Regenerate one part (or a group of GROUPS, each part into its own subdirectory); returns a terminal summary.

    ``trained_set`` names the trained networks of the accuracy parts (Tables 1, 4, 5, figures, and the
    twin's default) and their test images; the default is the shipped Fashion-MNIST set. ``json_path`` also gets
    the results: one part's results.json, or a group's as ``{part: results}``.
    """
    trained_set = trained_set or TrainedSet(quiet=quiet)
    out = Path(out_dir)
    wdir = Path(workload_dir) if workload_dir else default_workload_dir()
    if not wdir.is_dir() and not (what == "twin" and trained_path):  # the twin of --trained reads no other
        raise StudyError.at(str(wdir), None, "no such workload directory", "pass --workloads DIR (the checkout's "
                            "workloads/, which a pip-installed package does not include)")
    parts = GROUPS.get(what, [what])
    check_output_path(out_dir, "-o", is_dir=True)  # before any part runs: a part's minutes must not end in a traceback
    for part in parts if what in GROUPS else []:
        check_output_path(out / part, "-o", is_dir=True)
    for target in [out / part for part in parts] if what in GROUPS else [out]:
        check_outputs({"--json": json_path}, {"-o": (target, PART_FILES)})
    refuse_overwriting_inputs({"--json": json_path}, [*(sorted(wdir.glob("*.npz")) if wdir.is_dir() else []),
                                                      trained_path, arch_path])
    for target in [out / part for part in parts] if what in GROUPS else [out]:
        if (target / STUDY_JSON).is_file():  # as compare and sweep refuse each other's directory
            raise StudyError.at(str(target), "-o", f"holds a sweep's results ({STUDY_JSON}): the part's report.md "
                                "would replace the sweep's", "use another -o")
    if {"table3", "claims"} & set(parts):  # their statistical workloads, before any part runs or writes
        table3_inputs(wdir, arch_path)
    reads_set = {"table1", "table2", "table4", "table5", "figs", "claims"} & set(parts)
    named_set = trained_set.prefix != DEFAULT_TRAINED_SET and reads_set
    # a typo, not missing data: none of the set's own files ('vgg' matched vgg_small_fmnist_*.npz by a glob)
    none_there = not any((wdir / trained_set.file(algo)).is_file() for algo in ("SNN", "DTSNN", "ATSN"))
    snn, dtsnn, atsn = (trained_set.file(algo) for algo in ("SNN", "DTSNN", "ATSN"))
    if named_set and none_there:
        raise StudyError.at(str(wdir), "--trained-set", f"no workload is named {snn}, {dtsnn} or {atsn}",
                            "check the prefix (the networks PREFIX_snn/_dtsnn/_atsn.npz), or --workloads")
    if reads_set and reads_set == set(parts) and none_there:  # nothing to reproduce: a report saying so exited 0
        raise StudyError.at(str(wdir), "--workloads", f"holds none of the trained workloads {snn}, {dtsnn}, {atsn}",
                            "pass --workloads DIR holding them (the checkout's workloads/), or train them "
                            "(workloads/README.md)")
    if "twin" in parts:
        _twin_workload(wdir, trained_path, trained_set)
    summaries, everything = [], {}
    with new_output_directory(out):  # an error or Ctrl-C before any report is written leaves no empty -o behind
        for part in parts:
            target = out / part if what in GROUPS else out
            sub_command = part_command(command, part, target) if what in GROUPS else command
            target.mkdir(parents=True, exist_ok=True)
            # target gets the part only once all of it is written; the plots of the report it held go unless shown
            # again (a compare's plots stood beside table3's report)
            with staged_directory(target, Document.figures_in) as stage:
                if part == "claims":  # its sub-reports (table3/, figs/, table1/, ...): in the stage, named as in target
                    doc, results, summary = claims(stage, images, wdir, sub_command, arch_path=arch_path,
                                                   quiet=quiet, trained=trained_set, named=target)
                else:
                    doc, results, summary = _run_part(part, stage, images, wdir, sub_command, arch_path, quiet,
                                                      trained_path, trained_set)
                write_part(stage, doc, results)
            everything[part] = results
            summaries.append(f"== {part} -> {target}/report.md\n{summary}")
    if json_path:
        atomic_write_text(json_path, results_text(everything if what in GROUPS else everything[what]))
    return "\n".join(summaries)
