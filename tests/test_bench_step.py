"""python -m satasim_atsn.train.bench_step: a bad option or a missing PyTorch is one line and exit 2."""

from __future__ import annotations

import sys

import pytest

from satasim_atsn.train import bench_step


@pytest.mark.parametrize(("argv", "says"), [(["--steps", "0"], "--steps: must be at least 1, got 0"),
                                            (["--batch", "0"], "--batch: must be at least 1, got 0"),
                                            (["--timesteps", "-1"], "--timesteps: must be at least 1, got -1"),
                                            (["--warmup", "-2"], "--warmup: must be at least 0, got -2")])
def test_bad_counts_are_one_line(argv, says, capsys):
    """--steps 0 was a StatisticsError traceback, --batch 0 a ValueError, --timesteps 0 a ZeroDivisionError."""
    with pytest.raises(SystemExit) as info:
        bench_step.main(argv)
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.count("\n") == 1 and says in err, err


def test_torch_missing_is_one_line(capsys, monkeypatch):
    """--torch without PyTorch installed was a ModuleNotFoundError traceback (PyTorch is no dependency)."""
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch raises ImportError
    with pytest.raises(SystemExit) as info:
        bench_step.main(["--torch", "--steps", "1", "--warmup", "0"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.count("\n") == 1 and "--torch: PyTorch is not installed" in err, err
