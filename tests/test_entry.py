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



def test_an_address_space_limit_while_loading_is_one_line(monkeypatch, capsys) -> None:
    def load():  # what llvmlite raises under a tight `ulimit -v`: its own OSError, while handling the loader's
        try:
            raise OSError("/site-packages/llvmlite/binding/libllvmlite.so: failed to map segment from shared object")
        except OSError:
            raise OSError("Could not find/load shared object file 'libllvmlite.so'")  # noqa: B904 - as llvmlite does

    monkeypatch.setattr(entry, "_load_cli", load)
    with pytest.raises(SystemExit) as stop:
        entry.main()
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("satasim: error: out of memory while loading") and "ulimit -v" in err
    assert err.count("\n") == 1

def test_another_os_error_while_loading_is_not_called_memory(monkeypatch) -> None:
    def load():
        raise OSError("libllvmlite.so: cannot open shared object file: No such file or directory")

    monkeypatch.setattr(entry, "_load_cli", load)
    with pytest.raises(OSError, match="cannot open shared object"):
        entry.main()


class _TerminatedImport(importlib.abc.MetaPathFinder):
    """Sends this process SIGTERM when satasim_atsn.cli is imported, as `kill PID` during its imports does."""

    def find_spec(self, name, path, target=None):  # noqa: D102
        if name == "satasim_atsn.cli":
            import os
            import signal

            os.kill(os.getpid(), signal.SIGTERM)
        return None


def test_sigterm_during_the_imports_is_one_line(monkeypatch, capsys) -> None:
    """SIGTERM's default action ended a satasim still loading numba without a word (the shell saw 143)."""
    import signal

    before = signal.getsignal(signal.SIGTERM)
    monkeypatch.delitem(sys.modules, "satasim_atsn.cli", raising=False)
    monkeypatch.setattr(sys, "meta_path", [_TerminatedImport(), *sys.meta_path])
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # without entry's handler the test process must survive
    try:
        with pytest.raises(SystemExit) as stop:
            entry.main()
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_IGN  # the handler before it is restored
    finally:
        signal.signal(signal.SIGTERM, before)
    assert stop.value.code == 128 + signal.SIGTERM
    assert capsys.readouterr().err == "satasim: terminated\n"


@pytest.mark.parametrize(("stop", "code", "line"), [("terminated", 143, "satasim: terminated\n"),
                                                    ("interrupted", 130, "satasim: interrupted\n")])
def test_a_signal_inside_a_numba_call_is_one_line(monkeypatch, capsys, stop, code, line) -> None:
    """SIGTERM's handler raises Terminated; raised while a numba dispatcher ran, it came back wrapped in SystemErrors
    ("returned a result with an exception set") and `satasim train` printed a 70-line traceback (docs audit, s48)."""
    from pathlib import Path

    from satasim_atsn import cli
    from satasim_atsn.traces import commands

    def wrapped(*args, **kwargs):
        try:
            raise cli.Terminated if stop == "terminated" else KeyboardInterrupt
        except KeyboardInterrupt as signal_error:
            raise SystemError("CPUDispatcher(<function spike_conv_s1_lif>) returned a result with an exception "
                              "set") from signal_error

    monkeypatch.setattr(commands, "workload_summary", wrapped)
    workload = Path(__file__).resolve().parents[1] / "workloads" / "vgg_small_fmnist_atsn.npz"
    with pytest.raises(SystemExit) as exit_:
        cli.main(["workload", "info", str(workload)])
    assert exit_.value.code == code and capsys.readouterr().err == line
    assert cli.interrupt_behind(SystemError("no signal behind it")) is None
