"""satasim_atsn/entry.py: a Ctrl-C while the command line's modules import ends in one line and exit code 130."""

from __future__ import annotations

import importlib.abc
import sys

import pytest

from satasim_atsn import entry


class _InterruptedImport(importlib.abc.MetaPathFinder):
    """Raises KeyboardInterrupt when satasim_atsn.cli is imported, as a Ctrl-C during its imports does."""

    def find_spec(self, name, path, target=None):  # noqa: D102
        if name == "satasim_atsn.cli":
            raise KeyboardInterrupt
        return None


def test_interrupt_during_the_imports_is_one_line(monkeypatch, capsys) -> None:
    monkeypatch.delitem(sys.modules, "satasim_atsn.cli", raising=False)
    monkeypatch.setattr(sys, "meta_path", [_InterruptedImport(), *sys.meta_path])
    with pytest.raises(SystemExit) as stop:
        entry.main()
    assert stop.value.code == 130
    assert capsys.readouterr().err == "satasim: interrupted\n"


def test_the_console_script_runs_the_cli(monkeypatch, capsys) -> None:
    monkeypatch.setattr(sys, "argv", ["satasim", "--version"])
    with pytest.raises(SystemExit) as stop:
        entry.main()
    assert stop.value.code == 0
    assert capsys.readouterr().out.startswith("satasim")
