"""report package: Markdown/HTML documents, figures and progress displays."""

from types import ModuleType


def load_plots() -> ModuleType:
    """report.plots, imported when a figure is first drawn: it loads matplotlib (about 2 s), which a report written
    with `--no-plots` (compare, sweep) never needs."""
    from satasim_atsn.report import plots

    return plots
