"""The note of a measurement whose images hold few of a workload's classes (a workload may store its images class
by class, as the CIFAR-10 image-folder workloads trained before session 45 do): run, compare and sweep say it of
the images they simulate, workload stats and rates of the images they fit."""

from __future__ import annotations

from satasim_atsn.workload.format import Workload


def class_coverage_note(workload: Workload, start: int, images: int,
                        measured: str = "accuracy, exit steps and energy per image", verb: str = "run") -> str | None:
    """A note when the images run hold less than half the classes they could (a workload that embeds its inputs
    class by class, as image-folder workloads trained before session 45 do): accuracy, exit steps and spike rates
    are then those of a few classes, not of the test set."""
    labels = workload.labels()
    if labels is None or images < 2:
        return None
    classes = len(set(labels.tolist()))
    held = len(set(labels[start:start + images].tolist()))
    if 2 * held >= min(images, classes):
        return None
    last = start + images - 1
    return (f"note: images {start}..{last} hold {held} of the {classes} classes of the workload's "
            f"{len(labels)} images, so {measured} are those of "
            f"{'this class' if held == 1 else 'these classes'}, not of its whole sample ({verb} all {len(labels)} "
            "images: a workload may store its images class by class)")
