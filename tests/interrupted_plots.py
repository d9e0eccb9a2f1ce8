"""A plot function that is interrupted (Ctrl-C) at its second call, for the tests of staged reports."""

from __future__ import annotations

from pathlib import Path


def interrupt_second_plot(monkeypatch, function: str) -> list:
    """Replace ``satasim_atsn.report.plots.<function>``: the first call writes a placeholder PNG where the plot goes,
    the second raises KeyboardInterrupt. Returns the paths drawn (to assert that the report was interrupted midway)."""
    from satasim_atsn.report import plots

    drawn: list = []

    def interrupted(path, *args, **kwargs):
        if drawn:
            raise KeyboardInterrupt
        drawn.append(path)
        Path(path).write_bytes(b"a new plot")

    monkeypatch.setattr(plots, function, interrupted)
    return drawn
