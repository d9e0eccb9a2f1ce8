"""Layout of the report plots, read from the drawn figure: what a reader would see overlap or run off the page."""

from __future__ import annotations

import re

import numpy as np
import pytest

from satasim_atsn.report import plots


@pytest.fixture
def drawn(monkeypatch):
    """Every figure a plot function saves, drawn and kept open (the function closes it otherwise)."""
    figures = []

    def keep(fig, path):
        plots._finish(fig)  # as _save does
        fig.canvas.draw()
        figures.append(fig)
        fig.savefig(path, format="png", dpi=plots.DPI)
        return path

    monkeypatch.setattr(plots, "_save", keep)
    yield figures
    for fig in figures:
        plots.plt.close(fig)


def _extent(fig, artist):
    return artist.get_window_extent(fig.canvas.get_renderer())


def _overlaps(a, b, gap: float = 0.0) -> bool:
    """Do two boxes overlap, or stand closer than ``gap`` pixels side by side?"""
    return a.x0 < b.x1 + gap and b.x0 < a.x1 + gap and a.y0 < b.y1 and b.y0 < a.y1


def test_the_timeline_legend_hides_no_bar(tmp_path, drawn):
    """The legend sat inside the axes at the lower right, over the last layer's bar of the last timestep (which
    always ends there): on a small network the output layer's last bar was hidden."""
    segments, now = [], 0.0
    for t in (1, 2, 3):
        for layer, duration in (("conv1", 2.0), ("pool1", 0.3), ("conv2", 4.0), ("output", 3.0)):
            segments.append((layer, now, duration, f"t={t}"))
            now += duration
    plots.timeline(tmp_path / "t.png", segments, "one image", "time (us)")
    fig = drawn[0]
    ax = fig.axes[0]
    legend = _extent(fig, ax.get_legend())
    bars = [_extent(fig, patch) for patch in ax.patches]
    assert len(bars) == len(segments)
    assert not [b for b in bars if _overlaps(b, legend)]


LONG = ["conventional-accelerator-with-a-very-long-name-for-review", "ATSN ré-timed µ-arch ∆ variant Ω",
        "dtsnn-design-variant-with-an-extremely-long-descriptive-nm", "atsn-a", "conv-b", "dtsnn-c",
        "atsn-second-long-name-for-layout-stress-testing-abc-0123", "atsn-d"]


def _names_readable(fig, ax) -> bool:
    """Upright tick labels must not overlap; slanted ones (parallel lines of text) must lie a line apart."""
    ticks = [t for t in ax.get_xticklabels() if t.get_text()]
    rotation = ticks[0].get_rotation()
    if rotation == 0:
        boxes = [_extent(fig, t) for t in ticks]
        return not any(_overlaps(a, b, gap=4) for i, a in enumerate(boxes) for b in boxes[i + 1:])
    lines = max(t.get_text().count("\n") + 1 for t in ticks)  # a long slanted name is broken into lines
    xs = ax.transData.transform([(i, 0) for i in range(len(ticks))])[:, 0]
    line = fig.dpi * ticks[0].get_fontsize() / 72
    return float(np.min(np.diff(xs))) * np.sin(np.radians(rotation)) >= lines * line


@pytest.mark.parametrize("names", [LONG[:2], LONG[:4], LONG, ["VGG16 CIFAR10", "VGG16 CIFAR100", "ResNet19 CIFAR10",
                                                            "ResNet19 CIFAR100"]])
def test_bar_names_do_not_run_into_each_other(tmp_path, drawn, names):
    """Up to 4 bars stood upright whatever their names' length: two 50-character names ran into one another
    (energy_by_group.png of a compare), and so did reports/table3's 'ResNet19 CIFAR10ResNet19 CIFAR100'."""
    n = len(names)
    components = ["adc", "dram", "exit_unit", "global_buffer", "noc", "pe_compute", "pe_memory", "spike_buffers"]
    plots.stacked_bars(tmp_path / "s.png", names, {c: [2500.0] * n for c in components}, "t", "uJ")
    plots.energy_groups(tmp_path / "g.png", names, {"compute": ([1.0] * n, [0.5] * n)}, "t", "uJ")
    for fig in drawn:
        assert _names_readable(fig, fig.axes[0])


def test_one_long_name_among_slanted_names_leaves_the_plot_its_height(tmp_path, drawn):
    """Short unbreakable names ('conventional16x16') beside each other are slanted; a long name then stood on one
    slanted line that took most of the figure's height, and the bars were squeezed into a strip."""
    names = ["conventional16x16", "dtsnn16x16", "atsn16x16", "my_array12x12", "small8x8",
             "ATSN design with a very long name indeed that goes on and on past sixty characters", "big32x32",
             "tiny2x2"]
    n = len(names)
    stacks = {layer: [1.0] * n for layer in ("c1", "p1", "c2", "p2", "fc1", "out", "initial weight load (no layer)")}
    plots.stacked_bars(tmp_path / "s.png", names, stacks, "t", "uJ")
    fig = drawn[0]
    ax = fig.axes[0]
    assert ax.get_xticklabels()[0].get_rotation() != 0  # the case: slanted names
    assert ax.get_position().height > 0.4
    assert _names_readable(fig, ax)
    assert [t.get_text().replace("\n", " ") for t in ax.get_xticklabels()] == names


def test_names_no_font_draws_do_not_run_into_each_other(tmp_path, drawn):
    """Names in Chinese were measured as drawn with missing glyphs, then written as their \\uXXXX escapes, six
    times as wide: upright, the four names of energy_by_component.png ran into one another."""
    names = ["自适应时间步设计一", "自适应时间步设计二", "常规设计三号", "动态时间步四"]
    plots.stacked_bars(tmp_path / "s.png", names, {"a": [1.0, 2.0, 3.0, 4.0]}, "t", "uJ")
    plots.energy_groups(tmp_path / "g.png", names, {"compute": ([1.0] * 4, [0.5] * 4)}, "t", "uJ")
    for fig in drawn:
        ax = fig.axes[0]
        assert "\\u81ea" in ax.get_xticklabels()[0].get_text()
        assert _names_readable(fig, ax)


def test_metric_bars_of_many_long_named_designs_stay_readable(tmp_path, drawn):
    """8 designs with long names: the names under each of the 6 plots ran into one another, squeezed the plots to a
    third of the figure and their ratio annotations ('1.00x') ran together. Every design is named (in a legend that
    covers no plot), and no two texts of the figure overlap."""
    metrics = [(title, [10.0 + i for i in range(len(LONG))]) for title in ("FPS", "energy", "area", "power", "EDP",
                                                                          "per image-timestep")]
    plots.metric_bars(tmp_path / "m.png", LONG, metrics, 3)
    fig = drawn[0]
    axes = [ax for ax in fig.axes if ax.get_visible() and ax.has_data()]
    assert len(axes) == 6
    texts = [t for ax in axes for t in ax.texts + ax.get_xticklabels() if t.get_text()]
    boxes = [_extent(fig, t) for t in texts]
    assert not [(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1:] if _overlaps(a, b)]
    named = [t.get_text() for legend in fig.legends for t in legend.get_texts()]
    named += [t.get_text() for ax in axes[:1] for t in ax.get_xticklabels()]
    assert set(LONG) <= set(named)
    for legend in fig.legends:
        assert not [ax for ax in axes if _overlaps(_extent(fig, legend), _extent(fig, ax))]


def test_the_legend_of_grouped_bars_hides_no_bar(tmp_path, drawn):
    """An exit histogram of 8 designs, one with a long name: the legend, inside the axes where matplotlib found
    the least data, lay over the bars of the first two timesteps."""
    names = [f"design{i}" for i in range(7)] + ["ATSN variant with a very long name that goes on past sixty chars"]
    series = {name: [2.0 + (i % 2), 3.0 - (i % 3), 4.0 * (i % 2)] for i, name in enumerate(names)}
    plots.grouped_bars(tmp_path / "h.png", ["1", "2", "3"], series, "exit timestep histogram", "exit timestep",
                       "images", counts=True)
    fig = drawn[0]
    ax = fig.axes[0]
    legend = _extent(fig, ax.get_legend())
    bars = [_extent(fig, bar) for bar in ax.patches if bar.get_height() > 0]
    assert len(bars) == sum(v > 0 for values in series.values() for v in values)
    assert not [b for b in bars if _overlaps(b, legend)]
    assert legend.x1 <= fig.bbox.x1  # on the figure


def test_the_legend_hides_no_bar_once_a_cjk_name_is_spelled(tmp_path, drawn):
    """A compare of 8 designs, one named in Chinese: the legend was placed beside the bars, then the name was
    written as its \\uXXXX escapes (no font draws it) and the wider legend covered a bar."""
    series = {"conventional16x16": [0, 0, 4], "dtsnn16x16": [0, 3, 1], "atsn16x16": [2, 2, 0],
              "my_array12x12": [0, 0, 4], "small8x8": [2, 2, 0],
              "ATSN 设计 — αβγ δ ünïcødé with a very long name indeed that goes on and on "
              "past sixty characters": [2, 2, 0],
              "big32x32": [2, 2, 0], "tiny2x2": [2, 2, 0]}
    plots.grouped_bars(tmp_path / "h.png", ["1", "2", "3"], {k: [float(v) for v in vs] for k, vs in series.items()},
                       "exit timestep histogram", "exit timestep", "images", counts=True)
    fig = drawn[0]
    ax = fig.axes[0]
    legend = _extent(fig, ax.get_legend())
    assert "\\u8bbe" in " ".join(t.get_text() for t in ax.get_legend().get_texts())
    assert not [bar for bar in ax.patches if bar.get_height() > 0 and _overlaps(_extent(fig, bar), legend)]


def test_coincident_pareto_points_get_one_label(tmp_path, drawn):
    """31 points with equal values (a metric the swept field does not move) are all on the front: their 31 labels
    were written over one another into an unreadable smudge."""
    x, y = np.full(31, 26.05), np.zeros(31)
    plots.pareto_scatter(tmp_path / "p.png", x, y, np.ones(31, dtype=bool), "area_mm2", "energy_adc_uJ", "t",
                         annotations=[str(i) for i in range(31)])
    assert [t.get_text() for t in drawn[0].axes[0].texts] == ["0-30"]


def test_the_pareto_labels_of_many_fields_stay_on_the_plot(tmp_path):
    """reports/sram-leakage-cells: each front point was labelled with its 20 varied fields and values, a line
    running 2,000 pixels to the right of the plot (the PNG was 2590 x 437, the plot a fifth of it). The front is
    labelled with its points' numbers, which the table under the plot lists."""
    import csv

    from PIL import Image

    from satasim_atsn.study.spec import load_study
    from satasim_atsn.study.sweep_report import sweep_report

    root = plots.Path(__file__).resolve().parents[1]
    study = load_study(root / "studies" / "sram_leakage_cells.yaml")
    with open(root / "reports" / "sram-leakage-cells" / "points.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    out = tmp_path / "out"
    out.mkdir()
    sweep_report(study, rows, out, "satasim sweep studies/sram_leakage_cells.yaml -o out")
    width, _ = Image.open(out / "tradeoff_0_leakage_share_vs_energy_per_image_uJ.png").size
    assert width < 800
    assert "labelled with its points' numbers" in (out / "report.md").read_text()


def test_values_over_decades_are_drawn_on_log_scales(tmp_path, drawn):
    """A sweep over 1e-4..100 pJ/bit on linear axes drew five of seven points as one dot, and its colour bar
    one colour for 1e-4..1. Positive values spanning 100x or more get a log axis (or colour scale), labelled
    so, with plain numbers on the ticks (not raw '$\\mathdefault{10^{3}}$' text); narrower ones stay linear."""
    wide = np.array([1e-4, 1e-3, 1e-2, 0.1, 1.0, 10.0, 100.0])
    narrow = np.linspace(30.0, 40.0, 7)
    plots.pareto_scatter(tmp_path / "p.png", wide * 2e3 + 2e3, narrow, np.eye(7, dtype=bool)[0], "power_mW",
                         "energy", "t", annotations=[str(i) for i in range(7)], color=wide, color_label="pJ")
    fig = drawn[0]
    ax, bar = fig.axes
    assert (ax.get_xscale(), ax.get_yscale(), bar.get_yscale()) == ("log", "linear", "log")
    assert ax.get_xlabel() == "power_mW (log scale)" and ax.get_ylabel() == "energy"
    ticks = [t.get_text() for axis in (ax.xaxis, bar.yaxis) for t in axis.get_ticklabels() if t.get_text()]
    assert ticks and not [t for t in ticks if "$" in t or "mathdefault" in t]


def test_text_colours_are_named_on_the_colour_bar(tmp_path):
    """Colouring by architecture file: a continuous 0..2 bar (ticks at 0.25, 0.5, ...) with every path spelt out in
    its label, '(0 = /abs/path/atsn16x16.yaml, 1 = ...)', a line taller than the plot (the PNG was 1000 px high).
    Each category gets its own colour band and a tick with its file's name."""
    from PIL import Image

    from satasim_atsn.study.spec import load_study
    from satasim_atsn.study.sweep_report import sweep_report

    root = plots.Path(__file__).resolve().parents[1]
    archs = [str(root / "archs" / f"{k}16x16.yaml") for k in ("conventional", "dtsnn", "atsn")]
    path = tmp_path / "s.yaml"
    path.write_text(f"name: s\nmode: engine\nworkload: {root / 'workloads' / 'vgg16_cifar10.npz'}\nimages: 4\n"
                    f"vary:\n  arch: [{', '.join(archs)}]\nmetrics: [fps, energy_per_image_uJ]\n"
                    "plots:\n  - {x: energy_per_image_uJ, y: fps, color: arch}\n")
    study = load_study(path)
    rows = [{"point": i, "arch": a, "status": "ok", "fps": 100.0 + i, "energy_per_image_uJ": 10.0 - i, "error": ""}
            for i, a in enumerate(archs)]
    out = tmp_path / "out"
    out.mkdir()
    captured = []
    real = plots.pareto_scatter

    def spy(*args, **kwargs):
        captured.append(kwargs)
        return real(*args, **kwargs)

    plots.pareto_scatter = spy
    try:
        sweep_report(study, rows, out, "satasim sweep s.yaml -o out")
    finally:
        plots.pareto_scatter = real
    assert captured[0]["color_label"] == "arch"
    assert plots._category_names(captured[0]["categories"]) == ["atsn16x16.yaml", "conventional16x16.yaml",
                                                                "dtsnn16x16.yaml"]
    _, height = Image.open(out / "tradeoff_0_energy_per_image_uJ_vs_fps.png").size
    assert height < 600


def test_heatmaps_say_when_a_metric_is_constant_or_a_cell_has_no_value(tmp_path, drawn):
    """reports/dram-energy/heatmap_area_mm2.png: 26.05 mm2 at every point, drawn one colour against a bar of
    23.5..28.5 mm2 (an energy of 0 everywhere got a bar of -0.1..0.1 uJ); a skipped point's cell and an infinite
    value were blank, like a cell outside the grid."""
    plots.heatmap(tmp_path / "a.png", np.full((4, 2), 26.05), [1, 4], ["a", "b", "c", "d"], "x", "y", "area", "mm2")
    grid = np.array([[1.0, 2.0, np.nan], [3.0, np.inf, 4.0]])
    plots.heatmap(tmp_path / "b.png", grid, [0.5, 0.9, 0.99], ["at", "dt"], "cl_init", "kind", "acc", "acc")
    constant, holes = drawn
    assert "the same at every point: 26.05" in constant.axes[0].get_title()
    assert [t.get_text() for t in constant.axes[1].get_yticklabels()] == ["26.05"]
    assert sorted(t.get_text() for t in holes.axes[0].texts) == ["inf", "n/a"]
    assert "the same" not in holes.axes[0].get_title()


def test_a_heatmap_over_decades_has_a_log_colour_scale(tmp_path, drawn):
    """A study of DRAM pJ/bit [0, 4, 4000] x weight buffer drew energy_dram_uJ of 1.5..2,816 uJ on a linear colour
    bar: the 1.5 and 2.5 uJ columns read as one colour, where a trade-off plot's colour bar went logarithmic. Positive
    values spanning 100x or more get a log colour scale, labelled so, with plain numbers on its ticks; a grid with a
    zero, or a narrower one, stays linear."""
    wide = np.array([[1.53, 2.48, 943.4], [2.01, 4.82, 2816.2]])
    plots.heatmap(tmp_path / "w.png", wide, [0, 4, 4000], [8192, 2048], "pJ/bit", "bytes", "t", "energy_dram_uJ")
    zero = wide.copy()
    zero[0, 0] = 0.0
    plots.heatmap(tmp_path / "z.png", zero, [0, 4, 4000], [8192, 2048], "pJ/bit", "bytes", "t", "energy_dram_uJ")
    log, linear = drawn
    bar = log.axes[1]
    assert bar.get_yscale() == "log" and bar.get_ylabel() == "energy_dram_uJ (log scale)"
    ticks = [t.get_text() for t in bar.get_yticklabels() if t.get_text()]
    assert ticks and not [t for t in ticks if "$" in t or "mathdefault" in t]
    assert linear.axes[1].get_yscale() == "linear" and linear.axes[1].get_ylabel() == "energy_dram_uJ"


def test_a_heatmap_names_architecture_files_as_the_colour_bars_do(tmp_path, drawn):
    """A study of vary.arch x clock_hz wrote each design's path as typed on the heat map's axis: a 70-character file
    name squeezed the map into a strip a third of the figure wide. Text ticks are named as the trade-off plots'
    colour bars name them (the file name when unique, wrapped); numbers keep their labels."""
    archs = ["mine/my_tiny_accelerator_with_an_exceptionally_long_descriptive_name.yaml", "/abs/archs/atsn16x16.yaml"]
    plots.heatmap(tmp_path / "h.png", np.array([[1.0, 2.0, 3.0], [2.0, 3.0, 4.0]]), [2e8, 5e8, 1e9], archs,
                  "clock_hz", "arch", "t", "fps")
    fig = drawn[0]
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == plots._category_names(archs) and labels[1] == "atsn16x16.yaml"
    assert max(len(line) for label in labels for line in label.split("\n")) <= 24
    assert [t.get_text() for t in ax.get_xticklabels()] == ["2e+08", "5e+08", "1e+09"]
    assert _extent(fig, ax).width > 0.4 * fig.bbox.width


def test_a_cjk_architecture_file_is_wrapped_as_drawn(tmp_path, drawn):
    """A CJK file name of 15 characters was wrapped as 15 characters, then drawn as 90 (its \\uXXXX escapes, no
    font having the glyphs): one line wider than the map beside it. Wrapped as drawn, never inside an escape."""
    archs = ["la/设计二号加速器架构文件名字很长.yaml", "la/short.yaml"]
    plots.heatmap(tmp_path / "h.png", np.array([[1.0, 2.0], [2.0, 3.0]]), [512, 1024], archs, "bytes", "arch", "t",
                  "fps")
    fig = drawn[0]
    lines = [line for t in fig.axes[0].get_yticklabels() for line in t.get_text().split("\n")]
    assert max(map(len, lines)) <= 24, lines
    assert all(re.fullmatch(r"(\\u[0-9a-f]{4}|[^\\])*", line) for line in lines), lines
    assert "".join(lines).startswith(("设计", "\\u8bbe"))


def test_an_exit_histogram_of_a_few_images_has_whole_number_ticks(tmp_path, drawn):
    """compare's exit histogram of 4 images drew ticks at 0.5, 1.5 images."""
    plots.grouped_bars(tmp_path / "h.png", ["1", "2", "3", "4"], {"a": [1.0, 2.0, 0.0, 1.0], "b": [0.0, 1.0, 3.0, 0.0]},
                       "t", "exit timestep", "images", counts=True)
    ticks = drawn[0].axes[0].get_yticks()
    assert len(ticks) >= 2 and all(float(t).is_integer() for t in ticks)


LONGER = ("A" * 30 + " design name with spaces that goes on past one hundred and fifty characters, as a user may write "
          + "Z" * 40)


def _on_the_figure(fig, artist) -> bool:
    box = _extent(fig, artist)
    return box.x0 >= 0 and box.x1 <= fig.bbox.x1


@pytest.mark.parametrize("plot", ["timeline", "metric_bars", "grouped_bars", "lines"])
def test_a_long_name_in_a_title_or_legend_stays_on_the_figure(tmp_path, drawn, plot):
    """A design's name of 150 characters in a timeline's title, metrics.png's 'ratios to' title or a legend ran past
    the figure's edge: saved 'tight', the PNG grew to twice the figure's width and the plot shrank to a strip of it.
    Such a title or legend entry is wrapped; whatever the reader sees is on the figure, every name still whole."""
    names = [LONGER, "short", LONGER[::-1]]
    if plot == "timeline":
        segments = [(layer, t + k * 0.2, 0.2, f"t={t + 1}") for t in range(3) for k, layer in enumerate(("c1", "out"))]
        plots.timeline(tmp_path / "p.png", segments, f"{LONGER}: one image through layers and timesteps", "time (us)")
    elif plot == "metric_bars":
        plots.metric_bars(tmp_path / "p.png", names, [(m, [1.0, 2.0, 3.0]) for m in ("FPS", "area (mm2)")], 0)
    elif plot == "grouped_bars":
        plots.grouped_bars(tmp_path / "p.png", ["1", "2"], {n: [1.0, 2.0] for n in names}, "exit timestep histogram",
                           "exit timestep", "images", counts=True)
    else:
        plots.lines(tmp_path / "p.png", {n: ([1, 2], [1.0, 2.0]) for n in names}, "x", "accuracy %", "t")
    fig = drawn[0]
    texts = [ax.title for ax in fig.axes] + [fig._suptitle] * (fig._suptitle is not None)
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend()] + list(fig.legends)
    assert legends or plot == "timeline"
    assert [t.get_text() for t in texts + legends if not _on_the_figure(fig, t)] == []
    shown = ["".join(t.get_text().split()) for t in texts + [t for legend in legends for t in legend.get_texts()]]
    assert any("".join(LONGER.split()) in s for s in shown), shown  # wrapped, not cut
    if plot == "lines":  # beside the plot, not over its lines
        assert not _overlaps(_extent(fig, legends[0]), _extent(fig, fig.axes[0].patch))


def test_a_colour_field_of_one_value_is_one_named_band(tmp_path, drawn):
    """A one-point study (or a colour field the study holds at one value) drew a colour bar from 4.6 to 5.4 with
    '1e8' above it, for clock_hz = 5e8: a scale of values no point has. It is one band, named by its value."""
    plots.pareto_scatter(tmp_path / "p.png", np.array([1.0, 2.0]), np.array([2.0, 1.0]), np.array([True, True]),
                         "energy", "fps", "t", color=np.array([5e8, 5e8]), color_label="clock_hz")
    fig = drawn[0]
    bar = fig.axes[1]
    assert [t.get_text() for t in bar.get_yticklabels() if t.get_text()] == ["5e+08"]
    assert bar.get_ylabel() == "clock_hz"


def test_the_legend_of_lines_hides_no_point(tmp_path, drawn):
    """compare's exit histogram past T = 9 is lines, one per design: six designs' histograms filled the plot, and
    the legend, inside the axes where matplotlib found the least data, lay over their points."""
    steps = list(range(1, 41))
    series = {f"design{i}": (steps, [float((7 * t + 11 * i) % 30) for t in steps]) for i in range(6)}
    plots.lines(tmp_path / "l.png", series, "exit timestep", "images", "exit timestep histogram")
    fig = drawn[0]
    ax = fig.axes[0]
    legend = _extent(fig, ax.get_legend())
    points = np.concatenate([line.get_transform().transform(line.get_xydata()) for line in ax.get_lines()])
    inside = (points[:, 0] >= legend.x0) & (points[:, 0] <= legend.x1) & (points[:, 1] >= legend.y0) & (
        points[:, 1] <= legend.y1)
    assert not inside.any()
    assert legend.x1 <= fig.bbox.x1


@pytest.mark.parametrize("plot", ["grouped_bars", "lines", "stacked_bars"])
def test_a_name_starting_with_an_underscore_is_in_the_legend(tmp_path, drawn, plot):
    """matplotlib leaves an artist whose label starts with '_' out of a legend: a design named '_a_' had bars in
    compare's exit histogram and no entry naming them (a layer '_skip' likewise in energy_by_layer.png)."""
    names = ["_a_", "b", "_hidden"]
    if plot == "grouped_bars":
        plots.grouped_bars(tmp_path / "p.png", ["1", "2"], {n: [1.0, 2.0] for n in names}, "t", "x", "images")
    elif plot == "lines":
        plots.lines(tmp_path / "p.png", {n: ([1, 2], [1.0, 2.0]) for n in names}, "x", "y", "t")
    else:
        plots.stacked_bars(tmp_path / "p.png", ["x", "y"], {n: [1.0, 2.0] for n in names}, "t", "uJ")
    legend = drawn[0].axes[0].get_legend()
    assert [t.get_text() for t in legend.get_texts()] == names
    assert len(legend.legend_handles) == len(names)


def test_a_metric_of_one_value_says_so_on_its_axis(tmp_path, drawn):
    """A trade-off plot of fps = 54,900 at every point drew an axis from 52,000 to 57,800, read as a spread of
    results; heat maps said so in their title. Its axis label now says it, and a varying axis says nothing."""
    plots.pareto_scatter(tmp_path / "p.png", np.array([1.0, 2.0, 3.0]), np.array([54900.0, 54900.0, 54900.0]),
                         np.array([True, False, False]), "energy_per_image_uJ", "fps", "t")
    ax = drawn[0].axes[0]
    assert ax.get_ylabel() == "fps (the same at every point: 54900)"
    assert ax.get_xlabel() == "energy_per_image_uJ"
