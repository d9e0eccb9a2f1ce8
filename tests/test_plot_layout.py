"""Layout of the report plots, read from the drawn figure: what a reader would see overlap or run off the page."""

from __future__ import annotations

import pytest

from satasim_atsn.report import plots


@pytest.fixture
def drawn(monkeypatch):
    """Every figure a plot function saves, drawn and kept open (the function closes it otherwise)."""
    figures = []

    def keep(fig, path):
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


def _overlaps(a, b, pad: float = 0.0) -> bool:
    return a.x0 < b.x1 - pad and b.x0 < a.x1 - pad and a.y0 < b.y1 - pad and b.y0 < a.y1 - pad


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
