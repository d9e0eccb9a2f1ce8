"""The notes `satasim run` would print for each point of an engine study, gathered for the sweep's report.

A sweep over accelerators or batch sizes can leave accelerators idle at some points (their leakage then
counts over a short run, so FPS and energy per image describe the run, not the design), a clock can round a
DRAM rate in GB/s or ns by more than 1%, an exit unit can decide at other thresholds than the workload was
evaluated at, batch refill can be on where it cannot act, a memory can lie far outside the technology table's
SRAM points, and a --set tech.<entry> can reach a design that never reads it. `run` and `compare` say so
(hw/notes.py); a sweep said nothing."""
from __future__ import annotations

from typing import Any

from satasim_atsn.errors import SatasimError
from satasim_atsn.study.spec import in_study_terms, point_overrides
from satasim_atsn.study.spec_types import Study

#: the fields a note depends on (besides the architecture file): others are not loaded, so a study of
#: thousands of points over exit thresholds loads its architecture once
_NOTE_FIELDS = ("accelerators", "images_per_batch", "clock_hz", "dram.", "tech.", "exit_unit.", "batch_refill",
                "dataflow", "array.exit_unit_tiles", "technology", "pe.data_memory_bytes", "pe.weight_memory_bytes",
                "global_buffers.")


def _relevant(override: str) -> bool:
    name = override.split("=", 1)[0].strip()
    return name.startswith(_NOTE_FIELDS)


def point_notes(study: Study, rows: list[dict[str, Any]]) -> list[tuple[str, list[int]]]:
    """Each distinct note of the study's points that ran, with the indices of the points it applies to, in
    the order first met; none for a functional study (it simulates no hardware).

    A technology entry is noted only when no point's design reads it (a study that sets an entry for all its
    designs while only some read it is not wrong, and one note per design would bury the others)."""
    from satasim_atsn.hw.arch import read_arch
    from satasim_atsn.hw.energy import unused_entries_note, unused_technology_overrides
    from satasim_atsn.hw.notes import run_notes
    from satasim_atsn.study.metrics import read_cached

    if study.mode != "engine":
        return []
    points = study.points()
    workload = read_cached(str(study.workload))
    seen: dict[tuple, tuple[list[str], set[str]]] = {}
    notes: dict[str, list[int]] = {}
    unused_everywhere: set[str] | None = None
    ran: list[int] = []
    for row in rows:
        if row.get("status") != "ok":
            continue
        index = int(row["point"])
        path = study.point_arch(points[index])
        overrides = [o for o in point_overrides(study, points[index]) if _relevant(o)]
        key = (str(path), tuple(overrides))
        if key not in seen:
            try:
                arch = read_arch(path, overrides)
            except SatasimError:  # the point ran with all its overrides; a subset need not stand alone
                seen[key] = ([], set())
            else:
                seen[key] = ([n.removeprefix("note: ") for n in run_notes(
                    arch, str(path), overrides, workload, study.images, technology=False, start=study.start)],
                             set(unused_technology_overrides(str(path), overrides)))
        point_notes_here, unused = seen[key]
        for note in point_notes_here:
            notes.setdefault(note, []).append(index)
        unused_everywhere = unused if unused_everywhere is None else unused_everywhere & unused
        ran.append(index)
    if unused_everywhere:
        note = unused_entries_note(sorted(unused_everywhere), several_designs=bool(study.arch_files))
        notes[note.removeprefix("note: ")] = ran
    return [(in_study_terms(note, study.fields), indices) for note, indices in notes.items()]


def point_list(indices: list[int], total: int) -> str:
    """``every point`` (when ``indices`` are all ``total`` points that ran), else the runs of consecutive
    indices: ``points 0-3, 7``."""
    if len(indices) == total:
        return "every point"
    runs: list[list[int]] = []
    for index in indices:
        if runs and index == runs[-1][1] + 1:
            runs[-1][1] = index
        else:
            runs.append([index, index])
    text = ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)
    return f"point{'s' if len(indices) > 1 else ''} {text}"
