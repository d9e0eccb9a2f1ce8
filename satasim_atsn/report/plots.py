"""Matplotlib plots for reports: deterministic PNGs (Agg backend, no timestamps in metadata)."""

from __future__ import annotations

import functools
import io
import textwrap
import warnings
from collections.abc import Callable
from pathlib import Path

from satasim_atsn.runtime import matplotlib_config

matplotlib_config()  # before matplotlib is imported: a writable config directory even with a read-only HOME
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from satasim_atsn.errors import shown_number  # noqa: E402
from satasim_atsn.fileio import atomic_write_bytes  # noqa: E402
from satasim_atsn.report.document import ratio_text  # noqa: E402

DPI = 100
COLORS = plt.get_cmap("tab20").colors


def _plain_text(plot: Callable) -> Callable:
    """Draw ``plot``'s texts as they are: labels are names users chose (designs, studies, fields), so "$" is a
    dollar, never matplotlib's maths ('v$\\qqq$' in a design's name crashed the report after every run)."""
    @functools.wraps(plot)
    def drawn(*args, **kwargs):
        with plt.rc_context({"text.parse_math": False}):
            return plot(*args, **kwargs)

    return drawn


@functools.lru_cache(maxsize=64)
def _font_chars(path: str) -> frozenset[int]:
    """The code points a font file draws."""
    from matplotlib.ft2font import FT2Font

    return frozenset(FT2Font(path).get_charmap())


def _drawable_chars(prop) -> frozenset[int]:
    """The code points some font of ``prop``'s family list draws (matplotlib falls back along the list)."""
    from matplotlib import font_manager

    chars: set[int] = set()
    for family in prop.get_family():
        names = matplotlib.rcParams.get(f"font.{family}", [family]) if family in font_manager.font_family_aliases \
            else [family]
        for name in names:
            try:
                found = font_manager.findfont(_with_family(prop, name), fallback_to_default=False)
            except ValueError:  # not installed
                continue
            chars |= _font_chars(found)
    return frozenset(chars)


def _with_family(prop, name: str):
    copy = prop.copy()
    copy.set_family(name)
    return copy


def _spell_undrawable(fig) -> None:
    """Write the characters no installed font draws as \\uXXXX escapes, and tabs as spaces: drawn as boxes, two
    designs named in a script the machine has no font for (CJK on most servers) were told apart by nothing."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.text import Text

    def spell(content: str, prop) -> str:
        if content.isascii() and "\t" not in content:
            return content
        chars = _drawable_chars(prop)
        return "".join(_spelled(c, chars) for c in content)

    for text in fig.findobj(Text):
        if text.get_text():
            text.set_text(spell(text.get_text(), text.get_fontproperties()))
    for ax in fig.axes:  # tick labels are their formatter's, set again at every draw: fix those ticks' texts
        for axis in (ax.xaxis, ax.yaxis):
            for minor in (False, True):
                labels = axis.get_ticklabels(minor=minor)  # formatted for the ticks as they stand
                spelled = [spell(t.get_text(), t.get_fontproperties() or FontProperties()) for t in labels]
                if spelled != [t.get_text() for t in labels]:
                    axis.set_ticks(axis.get_ticklocs(minor=minor), spelled, minor=minor)


def _spelled(char: str, chars: frozenset[int]) -> str:
    """One character as drawn: itself when a font has it, a space for a tab, else its escape."""
    if char == "\t":
        return " "
    if char == "\n" or ord(char) in chars:
        return char
    return f"\\u{ord(char):04x}" if ord(char) <= 0xFFFF else f"\\U{ord(char):08x}"


LEGEND_SHARE = 0.4  # an axes' legend past the figure's edge is wrapped to this share of the figure's width


def _finish(fig) -> None:
    """The figure as it is saved: undrawable characters spelled, then titles and legends kept on the page."""
    _spell_undrawable(fig)
    if _fit_to_figure(fig):
        _tight(fig)


def _centred_room(box, width: float) -> float:
    """The width a text centred where ``box`` is has before it runs past either edge of a figure ``width`` wide."""
    return 2 * min((box.x0 + box.x1) / 2, width - (box.x0 + box.x1) / 2)


def _rewrap(text, fraction: float, originals: dict) -> bool:
    """Break a text's lines at ``fraction`` of their length as drawn (at spaces where it can, else inside a word),
    wrapping its lines as first written (``originals``), not the pieces of an earlier wrap."""
    lines = originals.setdefault(text, text.get_text()).split("\n")
    chars = max(8, int(max(map(len, text.get_text().split("\n"))) * fraction))
    wrapped = "\n".join(textwrap.fill(line, chars) if len(line) > chars else line for line in lines)
    if wrapped == text.get_text():
        return False
    text.set_text(wrapped)
    return True


def _fit_to_figure(fig) -> bool:
    """Wrap a title or legend wider than the figure (a design's or study's long name): saved 'tight', it widened
    the PNG to twice the figure and shrank the plot to a strip beside it. Returns whether anything was wrapped."""
    changed, originals = False, {}
    for _ in range(3):  # a wrap is judged by eye (characters, not pixels): look again
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        width = fig.bbox.width - 4
        wrapped = False
        titles = [ax.title for ax in fig.axes] + [t for t in [getattr(fig, "_suptitle", None)] if t is not None]
        for title in (t for t in titles if t.get_text()):
            box = title.get_window_extent(renderer)
            room = _centred_room(box, width)
            if box.width > room:
                wrapped |= _rewrap(title, 0.95 * room / box.width, originals)
        legends = [(ax.get_legend(), LEGEND_SHARE) for ax in fig.axes if ax.get_legend()]
        for legend, share in legends + [(legend, 1.0) for legend in fig.legends]:  # a figure's: below the plots
            box = legend.get_window_extent(renderer)
            if box.x1 <= width and box.x0 >= 0:
                continue
            if share < 1:  # inside the axes, its wrapped lines would cover the plot: beside it, as grouped_bars has it
                legend.set_loc("upper left")
                legend.set_bbox_to_anchor((1.01, 1), transform=legend.axes.transAxes)
            excess = box.width - share * width  # beside the axes, it leaves the plot the rest of the figure
            widest = max((t.get_window_extent(renderer).width for t in legend.get_texts()), default=0.0)
            for text in legend.get_texts() if widest > excess > 0 else []:
                drawn = text.get_window_extent(renderer).width
                if drawn > widest - excess:
                    wrapped |= _rewrap(text, 0.95 * (widest - excess) / drawn, originals)
        changed |= wrapped
        if not wrapped:
            break
    return changed


def _save(fig, path: str | Path) -> Path:
    """Save a figure as PNG without dates/software metadata, atomically; close it."""
    buffer = io.BytesIO()
    _finish(fig)
    with warnings.catch_warnings():  # a character the font lacks would still be drawn as a box, silently
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from font", category=UserWarning)
        fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None}, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
    return Path(path)


LEGEND_NAMES = (4, 20)  # more bars than this, or a longer name: metric_bars names the designs in a legend


def _bar_colours(n: int) -> list:
    """One colour per bar: every other tab20 colour (the strong ones) up to 10 bars, all 20 beyond."""
    return [COLORS[(2 * i) % len(COLORS)] if n <= 10 else COLORS[i % len(COLORS)] for i in range(n)]


@_plain_text
def metric_bars(path: str | Path, labels: list[str], metrics: list[tuple[str, list[float]]], baseline: int) -> Path:
    """One bar subplot per metric, each bar annotated with its ratio to the baseline bar.

    Many designs, or long names, are named once in a legend below the plots rather than under every bar: 8
    designs' names under 6 small plots ran into one another, squeezed the plots and their ratios ran together."""
    n = len(metrics)
    cols = min(n, 3)
    rows = (n + cols - 1) // cols
    legend = len(labels) > LEGEND_NAMES[0] or max(len(label) for label in labels) > LEGEND_NAMES[1]
    width = max(4.2, 0.5 * len(labels) + 1.2) if legend else 4.2
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, 3.4 * rows), squeeze=False)
    x = np.arange(len(labels))
    colours = _bar_colours(len(labels))
    for index, (title, values) in enumerate(metrics):
        ax = axes[index // cols][index % cols]
        vals = np.asarray(values, dtype=float)
        ax.bar(x, vals, color=colours)
        if _decades(vals):  # a bar 300x shorter than another was no bar at all on a linear scale
            ax.set_yscale("log")
            _plain_log_ticks(ax.yaxis)
            title = f"{title} (log scale)"
        base = vals[baseline]
        for i, v in enumerate(vals):
            ratio = v / base if base else float("nan")
            ax.annotate(ratio_text(ratio, 2), (i, v), ha="center", va="bottom", fontsize=8 if len(labels) <= 6 else 7)
        ax.set_title(title, fontsize=10)
        ax.set_xticks(x)
        if legend:
            ax.set_xticklabels([])
        else:
            ax.set_xticklabels(labels, rotation=20, ha="right", fontsize=8)
        ax.margins(y=0.15)
    for index in range(n, rows * cols):
        axes[index // cols][index % cols].axis("off")
    fig.suptitle(f"ratios to {labels[baseline]}", fontsize=10)
    _tight(fig)
    if legend:
        from matplotlib.patches import Patch

        fig.legend(handles=[Patch(facecolor=c, label=label) for c, label in zip(colours, labels, strict=True)],
                   loc="upper center", bbox_to_anchor=(0.5, 0.0), fontsize=8, frameon=False,
                   ncol=max(1, min(len(labels), int(width * cols // (0.09 * max(map(len, labels)) + 0.6)))))
    return _save(fig, path)


@_plain_text
def stacked_bars(
    path: str | Path, labels: list[str], stacks: dict[str, list[float]], title: str, ylabel: str,
    horizontal: bool = False,
) -> Path:
    """Stacked bars: one bar per label, one colour per stack key."""
    fig, ax = plt.subplots(figsize=(max(5.0, 0.9 * len(labels) + 3), 4.2))
    x = np.arange(len(labels))
    bottom = np.zeros(len(labels))
    handles = []
    for index, (name, values) in enumerate(stacks.items()):
        vals = np.asarray(values, dtype=float)
        handles.append(ax.bar(x, vals, bottom=bottom, label=name, color=COLORS[index % len(COLORS)]))
        bottom += vals
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend(handles, list(stacks), fontsize=7, bbox_to_anchor=(1.01, 1), loc="upper left")  # named: '_x' too
    _fit_names(fig, ax, labels)
    return _save(fig, path)


@_plain_text
def energy_groups(path: str | Path, labels: list[str], groups: dict[str, tuple[list[float], list[float]]],
                  title: str, ylabel: str) -> Path:
    """One stacked bar per label: each group in its colour, its leakage solid with its dynamic part hatched above.

    ``groups`` maps a group name to (dynamic values, leakage values), one value per label. Each bar is
    annotated with its total and its leakage share.
    """
    from matplotlib.patches import Patch

    fig, ax = plt.subplots(figsize=(max(5.0, 1.1 * len(labels) + 3.5), 4.4))
    x = np.arange(len(labels))
    bottom = np.zeros(len(labels))
    leak_total = np.zeros(len(labels))
    handles = []
    for index, (name, (dynamic, leakage)) in enumerate(groups.items()):
        color = COLORS[(2 * index) % len(COLORS)]
        leak, dyn = np.asarray(leakage, dtype=float), np.asarray(dynamic, dtype=float)
        ax.bar(x, leak, bottom=bottom, color=color, edgecolor="black", linewidth=0.3)
        bottom += leak
        ax.bar(x, dyn, bottom=bottom, color=color, edgecolor="white", hatch="///", linewidth=0.3)
        bottom += dyn
        leak_total += leak
        handles.append(Patch(facecolor=color, label=name))
    handles += [Patch(facecolor="0.75", edgecolor="black", linewidth=0.3, label="leakage (DRAM: background), solid"),
                Patch(facecolor="0.75", edgecolor="white", hatch="///", label="dynamic (DRAM: access), hatched")]
    for i, total in enumerate(bottom):
        share = leak_total[i] / total if total else 0.0
        ax.annotate(f"{total:.4g}\nleakage {share:.0%}", (i, total), ha="center", va="bottom", fontsize=7)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.margins(y=0.15)
    ax.legend(handles=handles, fontsize=7, bbox_to_anchor=(1.01, 1), loc="upper left")
    _fit_names(fig, ax, labels)
    return _save(fig, path)


WRAP_CHARS = 12  # a bar's name longer than this is broken at its spaces and hyphens when the names stand upright


def _wrapped(label: str) -> str:
    return textwrap.fill(label, WRAP_CHARS, break_long_words=False) if len(label) > WRAP_CHARS else label


GAP_PX = 4  # texts closer than this read as one ("ResNet19 CIFAR10ResNet19 CIFAR100")


def _collide(fig, texts) -> bool:
    """Do any two of these drawn texts overlap, or stand closer than GAP_PX side by side?"""
    renderer = fig.canvas.get_renderer()
    boxes = [t.get_window_extent(renderer) for t in texts if t.get_visible() and t.get_text()]
    return any(a.x0 < b.x1 + GAP_PX and b.x0 < a.x1 + GAP_PX and a.y0 < b.y1 and b.y0 < a.y1
               for i, a in enumerate(boxes) for b in boxes[i + 1:])


def _fit_names(fig, ax, labels: list[str], fontsize: int = 8) -> None:
    """Name the bars at 0..n-1 and lay the figure out: upright, long names wrapped, when they fit side by side;
    else on one line each, slanted. (Upright up to 4 bars and slanted beyond, as before, ran two long names
    into one another: 'ResNet19 CIFAR10ResNet19 CIFAR100'.)"""
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, fontsize=fontsize)
    _spell_undrawable(fig)  # measured as _save draws them: a CJK character no font has is a 6-character escape
    labels = [t.get_text() for t in ax.get_xticklabels()]
    ticks = ax.set_xticklabels([_wrapped(label) for label in labels], fontsize=fontsize)
    _tight(fig)
    if _collide(fig, ticks):
        ax.set_xticklabels([_slant_wrapped(label) for label in labels], rotation=30, ha="right",
                           rotation_mode="anchor", fontsize=fontsize)
        _tight(fig)


SLANT_WRAP_CHARS = 32  # a slanted name longer than this is broken into lines: on one line it took the figure's height


def _slant_wrapped(label: str) -> str:
    return textwrap.fill(label, SLANT_WRAP_CHARS) if len(label) > SLANT_WRAP_CHARS else label


def _tight(fig) -> None:
    """tight_layout, silently kept as is when the decorations cannot fit (matplotlib would warn on the terminal
    of every command that draws, e.g. a compare of a T = 40 network; the plot is still written)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        fig.tight_layout()


@_plain_text
def timeline(path: str | Path, segments: list[tuple[str, float, float, str]], title: str, xlabel: str) -> Path:
    """A Gantt-style timeline: segments (row label, start, duration, colour group)."""
    rows = list(dict.fromkeys(s[0] for s in segments))
    groups = list(dict.fromkeys(s[3] for s in segments))
    fig, ax = plt.subplots(figsize=(9, max(2.5, 0.28 * len(rows) + 1.2)))
    for label, start, duration, group in segments:
        y = rows.index(label)
        ax.barh(y, duration, left=start, color=COLORS[(2 * groups.index(group)) % len(COLORS)], height=0.8)
    handles = [plt.Rectangle((0, 0), 1, 1, color=COLORS[(2 * i) % len(COLORS)]) for i in range(len(groups))]
    # beside the axes, 10 rows per column, so that it hides no bar: inside, at the lower right, it covered the
    # last layer's bar of the last timestep, which always ends there
    ax.legend(handles, groups, fontsize=7 if len(groups) <= 8 else 6, loc="upper left", bbox_to_anchor=(1.01, 1),
              ncol=-(-len(groups) // 10))
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels(rows, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    ax.set_title(title, fontsize=10)
    _tight(fig)
    return _save(fig, path)


@_plain_text
def grouped_bars(path: str | Path, categories: list[str], series: dict[str, list[float]], title: str,
                 xlabel: str, ylabel: str, counts: bool = False) -> Path:
    """Grouped bars: one group per category, one bar per series; ``counts`` (of images): whole-number ticks only
    (4 images drew ticks at 0.5, 1.5)."""
    fig, ax = plt.subplots(figsize=(max(5.0, 0.6 * len(categories) * max(1, len(series)) + 2), 3.8))
    x = np.arange(len(categories))
    width = 0.8 / max(len(series), 1)
    handles = [ax.bar(x + (index - (len(series) - 1) / 2) * width, values, width, label=name,
                      color=COLORS[(2 * index) % len(COLORS)]) for index, (name, values) in enumerate(series.items())]
    ax.set_xticks(x)
    ax.set_xticklabels(categories)
    if counts:
        from matplotlib.ticker import MaxNLocator

        ax.yaxis.set_major_locator(MaxNLocator(integer=True, steps=[1, 2, 5, 10]))  # 50s, not 30s, for 250
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend(handles, list(series), fontsize=8)  # named explicitly: matplotlib leaves out a label starting '_'
    _tight(fig)
    if _hides_a_bar(fig, ax):  # no free corner (many or long names): beside the axes, as stacked_bars has it
        ax.legend(handles, list(series), fontsize=8, bbox_to_anchor=(1.01, 1), loc="upper left")
        _tight(fig)
    return _save(fig, path)


def _hides_a_bar(fig, ax) -> bool:
    """Does the legend inside the axes cover part of a bar? (Eight designs' names over an exit histogram hid the
    bars of the first timesteps.)"""
    _spell_undrawable(fig)  # as _save will: a CJK name's escapes widen the legend
    fig.canvas.draw()  # "best" places the legend when the figure is drawn
    renderer = fig.canvas.get_renderer()
    legend = ax.get_legend().get_window_extent(renderer)
    return any(bar.get_height() > 0 and legend.overlaps(bar.get_window_extent(renderer)) for bar in ax.patches)


def _hides_a_point(fig, ax) -> bool:
    """Does the legend inside the axes cover a marker of a line? ("best" finds no free corner when several designs'
    exit histograms fill the plot: the legend lay over their points.)"""
    _spell_undrawable(fig)  # as _save will: a CJK name's escapes widen the legend
    fig.canvas.draw()  # "best" places the legend when the figure is drawn
    legend = ax.get_legend().get_window_extent(fig.canvas.get_renderer())
    points = np.concatenate([line.get_transform().transform(line.get_xydata()) for line in ax.get_lines()
                             if line.get_marker() not in (None, "None", "")] or [np.empty((0, 2))])
    return bool(np.any((points[:, 0] >= legend.x0) & (points[:, 0] <= legend.x1)
                       & (points[:, 1] >= legend.y0) & (points[:, 1] <= legend.y1)))


LOG_SPAN = 100  # positive values spanning this factor or more are drawn on a logarithmic scale


def _decades(values: np.ndarray) -> bool:
    """Do these values (all positive) span LOG_SPAN or more? On a linear scale, a sweep over 1e-4..100 drew all but
    the last two points as one dot, and its colour bar one colour for 1e-4..1."""
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite)]
    return finite.size > 1 and bool((finite > 0).all()) and finite.max() >= LOG_SPAN * finite.min()


def _category_names(categories: list[str]) -> list[str]:
    """Categories as tick labels: files (architectures) by their file name when those are unique, long ones wrapped."""
    names = [Path(c).name for c in categories]
    if len(set(names)) < len(names):
        names = list(categories)
    return [_fill_spelled(n, 24) for n in names]


def _fill_spelled(name: str, width: int) -> str:
    """A name wrapped at ``width`` characters as it will be drawn: characters no font has are spelled first (a CJK
    file name, wrapped as 12 characters, was drawn as one line of 72), and an escape is never split."""
    from matplotlib.font_manager import FontProperties

    chars = _drawable_chars(FontProperties())
    spelled = [_spelled(c, chars) for c in name]
    if all(len(piece) == 1 for piece in spelled):
        return textwrap.fill(name, width, break_long_words=True) if len(name) > width else name
    lines = [""]
    for piece in spelled:
        if lines[-1] and len(lines[-1]) + len(piece) > width:
            lines.append("")
        lines[-1] += piece
    return "\n".join(lines)


def _plain_log_ticks(axis) -> None:
    """Decades written as numbers (1e-04, 0.01, 100): the log scale's own '10^n' labels are maths, drawn as raw
    '$\\mathdefault{10^{3}}$' text under _plain_text."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    axis.set_minor_formatter(NullFormatter())


@_plain_text
def _one_value(values: np.ndarray) -> str:
    """An axis label's note when every point has the same finite value: else matplotlib's invented range around
    it (52,000..57,800 for 54,900 everywhere) reads as a spread of results."""
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite)]
    return f" (the same at every point: {finite[0]:.6g})" if finite.size > 1 and finite.min() == finite.max() else ""


def pareto_scatter(path: str | Path, x: np.ndarray, y: np.ndarray, front: np.ndarray, xlabel: str, ylabel: str,
                   title: str, annotations: list[str] | None = None, color: np.ndarray | None = None,
                   color_label: str = "", categories: list[str] | None = None) -> Path:
    """Scatter of points with the Pareto front (the mask ``front``) marked and joined; points whose ``color``
    is NaN are drawn grey. With ``categories``, ``color`` holds their indices: one colour and one named tick each."""
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    coloured = np.isfinite(color) if color is not None else np.zeros(len(x), dtype=bool)
    if coloured.any() and not categories and np.unique(color[coloured]).size == 1:  # one value: one named band,
        categories = [_tick(float(color[coloured][0]))]  # not a scale from 4.6 to 5.4 x 1e8 around 5e8
        color = np.where(coloured, 0.0, np.nan)
    if coloured.any():
        log = not categories and _decades(color[coloured])
        norm = matplotlib.colors.LogNorm() if log else None
        if categories:  # a band per category, not a continuum with ticks at 0.25, 0.5, ...
            norm = matplotlib.colors.BoundaryNorm(np.arange(len(categories) + 1) - 0.5, len(categories))
        sc = ax.scatter(x[coloured], y[coloured], c=color[coloured], s=28, zorder=2, norm=norm,
                        cmap=plt.get_cmap("viridis", len(categories)) if categories else "viridis")
        bar = fig.colorbar(sc, ax=ax, label=color_label + (" (log scale)" if log else ""))
        if log:
            _plain_log_ticks(bar.ax.yaxis)
        if categories:
            bar.set_ticks(range(len(categories)), labels=_category_names(categories), fontsize=7)
    for values, axis, scale in ((x, ax.xaxis, ax.set_xscale), (y, ax.yaxis, ax.set_yscale)):
        if _decades(values):
            scale("log")
            _plain_log_ticks(axis)
    if (~coloured).any():  # points without a colour value are still drawn, in grey
        ax.scatter(x[~coloured], y[~coloured], color="0.55", s=22, zorder=2,
                   label="points" if color is None else f"no {color_label.split(' (')[0]}")
    idx = np.flatnonzero(front)
    if idx.size:
        order = idx[np.argsort(x[idx], kind="stable")]
        ax.plot(x[order], y[order], "-o", color="crimson", mfc="none", ms=10, zorder=3, label="Pareto front")
    if annotations is not None:
        _label_front(ax, x, y, idx, annotations)
    ax.set_xlabel(xlabel + (" (log scale)" if ax.get_xscale() == "log" else "") + _one_value(x))
    ax.set_ylabel(ylabel + (" (log scale)" if ax.get_yscale() == "log" else "") + _one_value(y))
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    _tight(fig)
    return _save(fig, path)


def _runs(labels: list[str]) -> str:
    """Point numbers as runs ('0-30', '3, 5, 7-9'); other labels joined by commas."""
    if not all(label.isdigit() for label in labels):
        return ", ".join(labels)
    numbers, runs = sorted(int(label) for label in labels), []
    for n in numbers:
        if runs and n == runs[-1][1] + 1:
            runs[-1][1] = n
        else:
            runs.append([n, n])
    return ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in runs)


def _label_front(ax, x: np.ndarray, y: np.ndarray, idx: np.ndarray, annotations: list[str]) -> None:
    """One label per place on the front: the labels of points that coincide are joined (31 equal points wrote
    31 labels over one another), and a label in the right part of the plot reads leftwards from its point
    (it ran off the axes, over the colour bar)."""
    places: dict[tuple[float, float], list[str]] = {}
    for i in idx:
        places.setdefault((float(x[i]), float(y[i])), []).append(annotations[i])
    scale = np.log10 if ax.get_xscale() == "log" else float
    low, high = scale(float(np.min(x))), scale(float(np.max(x)))
    for (px, py), labels in places.items():
        left = high > low and (scale(px) - low) > 0.6 * (high - low)
        ax.annotate(_runs(labels), (px, py), fontsize=7, xytext=(-5 if left else 5, 4), textcoords="offset points",
                    ha="right" if left else "left")


def _tick(value) -> str:
    """A heat map's axis value as the report's tables show it: a float as short as reads back exactly (:g made
    0.9999999 and 1 both '1'), an int in full (:g made 1179648 '1.17965e+06'), text as written."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    return str(value) if isinstance(value, int) else shown_number(value).removesuffix(".0")


def _heat_ticks(values: list) -> list[str]:
    """A heat map axis's labels: text (an architecture's file as the study spells it) as the trade-off plots' colour
    bars name it, by file name when those are unique, long ones wrapped (a path of 70 characters squeezed the map
    into a strip)."""
    labels = [_tick(v) for v in values]
    return _category_names(labels) if any(isinstance(v, str) for v in values) else labels


@_plain_text
def heatmap(path: str | Path, grid: np.ndarray, xs: list[float], ys: list[float], xlabel: str, ylabel: str,
            title: str, cbar: str) -> Path:
    """A heat map of grid[len(ys), len(xs)]: cells without a finite value (a skipped or failed point, an
    infinity) say so; a grid of one value says that in its title; positive values spanning LOG_SPAN or more get a
    logarithmic colour scale, labelled so, as the trade-off plots' colour bars do."""
    fig, ax = plt.subplots(figsize=(6.4, 5.2))
    finite = grid[np.isfinite(grid)]
    log = _decades(finite)  # on a linear scale 1.5 and 2.5 uJ read as one colour beside 2,800
    norm = matplotlib.colors.LogNorm(vmin=finite.min(), vmax=finite.max()) if log else None
    im = ax.imshow(grid, origin="lower", aspect="auto", cmap="viridis", norm=norm)
    constant = finite.size > 0 and finite.min() == finite.max()
    if constant:  # else the bar spans an invented range around it (23.5..28.5 mm2 for 26.05 everywhere)
        title += f" (the same at every point: {finite[0]:.6g})"
    for row, col in zip(*np.nonzero(~np.isfinite(grid)), strict=True):  # else blank, like a cell with no point
        ax.text(col, row, "n/a" if np.isnan(grid[row, col]) else f"{grid[row, col]:g}", ha="center", va="center",
                fontsize=7, color="0.3")
    step_x = max(1, len(xs) // 8)
    step_y = max(1, len(ys) // 8)
    ax.set_xticks(range(0, len(xs), step_x))
    ax.set_xticklabels(_heat_ticks(xs)[::step_x], rotation=45, fontsize=7)
    ax.set_yticks(range(0, len(ys), step_y))
    ax.set_yticklabels(_heat_ticks(ys)[::step_y], fontsize=7)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    bar = fig.colorbar(im, ax=ax, label=cbar + (" (log scale)" if log else ""))
    if log:
        _plain_log_ticks(bar.ax.yaxis)
    if constant:
        bar.set_ticks([finite[0]], labels=[f"{finite[0]:.6g}"])
    _tight(fig)
    return _save(fig, path)


@_plain_text
def lines(path: str | Path, series: dict[str, tuple[list[float], list[float]]], xlabel: str, ylabel: str,
          title: str, vline: float | None = None) -> Path:
    """Line plot with markers, one line per series (x, y)."""
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    handles = [ax.plot(xv, yv, "-o", ms=3, label=name, color=COLORS[(2 * index) % len(COLORS)])[0]
               for index, (name, (xv, yv)) in enumerate(series.items())]
    if vline is not None:
        ax.axvline(vline, color="0.4", ls="--", lw=1)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(handles, list(series), fontsize=8)  # named explicitly: matplotlib leaves out a label starting '_'
    _tight(fig)
    if _hides_a_point(fig, ax):  # no free corner: beside the axes, as grouped_bars has it
        ax.legend(handles, list(series), fontsize=8, bbox_to_anchor=(1.01, 1), loc="upper left")
        _tight(fig)
    return _save(fig, path)
