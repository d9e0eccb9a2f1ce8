"""The report of a finished sweep: trade-off plots with Pareto fronts, heat maps, the table of points."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from satasim_atsn.errors import counted, shown_number
from satasim_atsn.fileio import staged_directory
from satasim_atsn.report import load_plots
from satasim_atsn.report.document import Document, fmt, md_code, md_text
from satasim_atsn.study.pareto import pareto_front
from satasim_atsn.study.point_notes import point_list, point_notes
from satasim_atsn.study.spec import MAXIMISE
from satasim_atsn.study.spec_fields import as_number, key_value
from satasim_atsn.study.spec_types import Study


def short_names(fields: list[str]) -> dict[str, str]:
    """Each dotted field by its shortest trailing part that no other field ends with (``weight.bytes`` and
    ``input.bytes`` for two buffers' ``bytes``: the last part alone labelled both points "bytes=...")."""
    names = {}
    for f in fields:
        parts = f.split(".")
        for k in range(1, len(parts) + 1):
            tail = ".".join(parts[-k:])
            if not any(o != f and (o == tail or o.endswith("." + tail)) for o in fields):
                break
        names[f] = tail
    return names


def _label(row: dict, fields: list[str]) -> str:
    """A point's varied values, each named by its field's short name."""
    names = short_names(fields)
    return ", ".join(f"{md_text(names[f])}={md_text(value_text(f, row[f]))}" for f in fields)


def value_text(field: str, value: Any) -> str:
    """A point's value of ``field`` as the report shows it: a number of a numeric field as short as it reads back
    exactly (1e+09 and 2.5e+08, not Python's 1000000000.0; 0.999; an int in full), whether the row holds it as a
    number or as the journal's text; anything else as written."""
    number = key_value(field, value) if not isinstance(value, bool) else value
    if isinstance(number, float) and math.isfinite(number):
        return shown_number(number).removesuffix(".0")  # 123456789.0, whose :g (1.23457e+08) is not it: in full
    return str(number) if isinstance(number, int) and not isinstance(number, bool) else str(value)


def _as_float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def sweep_report(study: Study, rows: list[dict[str, Any]], out_dir: str | Path, command: str,
                 stats: dict | None = None, notes: list[tuple[str, list[int]]] | None = None,
                 draw_plots: bool = True) -> Document:
    """Write report.md/report.html and the PNG plots of a sweep into out_dir.

    ``stats`` (this run's computed/reused counts) is accepted for callers but not written: an
    interrupted and resumed sweep must leave the same bytes as an uninterrupted one. ``notes``: the points'
    notes (study.point_notes) when the caller has them already. Without ``draw_plots`` (`--no-plots`) the report
    has its tables (the Pareto fronts too) and no figure."""
    out = Path(out_dir)
    # out gets the report only once all of it is written; the plots an earlier report here showed go unless shown
    # again (--force, or other metrics on --resume)
    with staged_directory(out, Document.figures_in) as stage:
        doc = _sweep_document(study, rows, stage if draw_plots else None, command,
                              point_notes(study, rows) if notes is None else notes)
        doc.write(stage)
    return doc


def _sweep_document(study: Study, rows: list[dict[str, Any]], out: Path | None, command: str,
                    notes: list[tuple[str, list[int]]]) -> Document:
    """The sweep's report, with its plots written into ``out`` (None: no plots, `--no-plots`)."""
    fields = study.fields
    headers = [md_text(f) for f in fields]
    ok = [r for r in rows if r["status"] == "ok"]
    errors = [r for r in rows if r["status"] == "error"]
    skipped = [r for r in rows if r["status"] == "skipped"]
    why_skipped = ("combinations the architecture refuses" if study.mode == "engine"
                   else "exit-unit fields their exit_unit.kind does not have")
    doc = Document(f"Study {md_text(study.name)}", notice=_workload_line(study))
    if study.description:
        doc.para(md_text(study.description))
    doc.para("Regenerate with:")
    doc.code(command)
    doc.bullets([
        (f"mode: `{study.mode}`; base architecture: {md_code(study.arch.name)}; " if study.arch is not None
         else f"mode: `{study.mode}` (the network's exit rules alone, no architecture); ")
        + f"workload: {md_code(study.workload.name)}; {study.images} images per point from image {study.start}",
        f"fixed overrides: {', '.join(md_code(s) for s in study.fixed) or 'none'}",
        f"varied: {', '.join(md_code(f) for f in fields)}; {counted(len(rows), 'point')}, {len(ok)} ok, "
        f"{counted(len(errors), 'error')}"
        + (f", {len(skipped)} skipped ({why_skipped})" if skipped else "")
        + ("" if out is not None else "; figures not drawn (`--no-plots`)"),
    ])  # run statistics (computed/reused) go to the terminal only: the report is the same however the run went
    ran = sum(1 for r in rows if r["status"] == "ok")
    for note, indices in notes:  # what `satasim run` would have printed for those points
        doc.para(f"**Note** ({point_list(indices, ran)}): {note}.")
    # trade-off plots
    for p_index, plot in enumerate(study.plots):
        xm, ym = plot["x"], plot["y"]
        drawn = [r for r in ok if np.isfinite(_as_float(r[xm])) and np.isfinite(_as_float(r[ym]))]
        doc_heading = f"{ym} vs {xm}"
        if not drawn:
            if ok:
                doc.heading(doc_heading)
                doc.para(f"No point has a value of both {xm} and {ym}, so there is nothing to plot.")
            continue
        xs = np.array([_as_float(r[xm]) for r in drawn])
        ys = np.array([_as_float(r[ym]) for r in drawn])
        front = pareto_front(np.stack([xs, ys], axis=1), [xm in MAXIMISE, ym in MAXIMISE])
        color, color_label, categories = _colours([r.get(plot["color"]) for r in drawn], plot["color"]) \
            if plot.get("color") else (None, "", None)
        name = f"tradeoff_{p_index}_{xm}_vs_{ym}.png"
        goal = lambda m: "higher" if m in MAXIMISE else "lower"  # noqa: E731
        doc.heading(doc_heading)
        if out is not None:
            load_plots().pareto_scatter(out / name, xs, ys, front, xm, ym, f"{study.name}: {ym} vs {xm}",
                                    annotations=[str(r["point"]) for r in drawn], color=color,
                                    color_label=color_label, categories=categories)
            missing = len(ok) - len(drawn)
            doc.figure(name, f"{ym} against {xm}; red: the Pareto front ({goal(xm)} {xm} and {goal(ym)} {ym} are "
                       "better), labelled with its points' numbers (the table below)"
                       + (f"; {missing} point{'s' if missing > 1 else ''} without a value of {xm} or {ym} not drawn"
                          if missing else ""))
        doc.table(["point"] + headers + [xm, ym], [[r["point"]] + [md_text(value_text(f, r[f])) for f in fields]
                                                   + [fmt(_as_float(r[xm])), fmt(_as_float(r[ym]))]
                                                   for r, on in zip(drawn, front, strict=True) if on],
                  caption=f"Pareto-optimal points ({int(front.sum())} of {len(drawn)})")
    if out is not None and len(study.axes) == 2 and all(len(a.fields) == 1 for a in study.axes) and ok:
        _heatmaps(doc, study, ok, out)
    doc.heading("All points")
    doc.table(["point"] + headers + ["status"] + study.metrics,
              [[r["point"]] + [md_text(value_text(f, r[f])) for f in fields] + [r["status"]]
               + [fmt(_as_float(r.get(m))) for m in study.metrics] for r in rows])
    _problem_sections(doc, fields, errors, skipped)
    return doc


def _heatmaps(doc: Document, study: Study, ok: list[dict[str, Any]], out: Path) -> None:
    """A heat map per metric of a study of two one-field axes; numeric axes run in ascending order whatever order
    the study lists them in (tau_CL [0.9, 0.99, 1.0, 0.5] drew 0.5 right of 1)."""
    fx, fy = study.axes[1].fields[0], study.axes[0].fields[0]
    xs_v = _ascending([v[0] for v in study.axes[1].values])
    ys_v = _ascending([v[0] for v in study.axes[0].values])
    for metric in study.metrics:
        grid = np.full((len(ys_v), len(xs_v)), np.nan)
        for r in ok:
            grid[ys_v.index(_coerce(r[fy], ys_v)), xs_v.index(_coerce(r[fx], xs_v))] = _as_float(r[metric])
        if np.isnan(grid).all():
            continue
        name = f"heatmap_{metric}.png"
        load_plots().heatmap(out / name, grid, xs_v, ys_v, fx, fy, f"{study.name}: {metric}", metric)
        doc.heading(f"{metric} over {md_text(fy)} x {md_text(fx)}", 3)
        doc.figure(name, f"{metric} for every ({md_text(fy)}, {md_text(fx)})")


def _ascending(values: list) -> list:
    """An axis's values sorted by the numbers they spell when all are numbers (1e8 as text too), else as given."""
    numbers = [None if isinstance(v, bool) else as_number(v) for v in values]
    if any(n is None for n in numbers):
        return values
    return [v for _, v in sorted(zip(numbers, values, strict=True), key=lambda pair: pair[0])]


def _problem_sections(doc: Document, fields: list[str], errors: list[dict], skipped: list[dict]) -> None:
    """The points that failed, one line each, and the skipped ones, one line per distinct reason."""
    if errors:
        doc.heading("Errors")
        doc.bullets([f"point {r['point']} ({_label(r, fields)}): {md_text(r['error'])}" for r in errors])
    if skipped:
        doc.heading("Skipped points")
        reasons: dict[str, list[str]] = {}
        for r in skipped:  # one line per distinct reason, with the points it covers
            reasons.setdefault(str(r["error"]), []).append(str(r["point"]))
        doc.bullets([f"point{'s' if len(pts) > 1 else ''} {', '.join(pts)}: {md_text(reason)}"
                     for reason, pts in reasons.items()])




def _colours(values: list, field: str) -> tuple[np.ndarray | None, str, list[str] | None]:
    """Colour values, the colour bar's label and, for text (a dataflow, an architecture) or booleans, the categories
    that the codes 0, 1, ... stand for (named on the colour bar's ticks); None when no point has a value."""
    present = [v for v in values if v not in (None, "")]
    if not present:
        return None, "", None
    numbers = np.array([_as_float(v) for v in values])  # a missing value is NaN: drawn grey
    if all(np.isfinite(_as_float(v)) and not isinstance(v, bool) for v in present):
        return numbers, field, None
    index = {c: i for i, c in enumerate(sorted({str(v) for v in present}))}
    codes = np.array([np.nan if v in (None, "") else index[str(v)] for v in values], dtype=float)
    return codes, field, list(index)


def _coerce(value: Any, choices: list) -> Any:
    """Match a CSV string back to the axis value it came from."""
    for choice in choices:
        if str(choice) == str(value) or _as_float(choice) == _as_float(value):
            return choice
    return value


def _workload_line(study: Study) -> str:
    """'Statistical workload' notice for the first line of a report (empty for trained workloads)."""
    from satasim_atsn.study.metrics import workload_notice

    return workload_notice(study.workload)
