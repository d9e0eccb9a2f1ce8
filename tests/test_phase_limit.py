"""A compute phase longer than the engine's packed cycle counter holds is refused in one line that names the
design's or the workload's file, the field to change and the layer, on both of the engine's paths (batches, batch
refill)."""
from __future__ import annotations

from pathlib import Path

import pytest

from satasim_atsn.cli import main
from satasim_atsn.hw import kernels

ROOT = Path(__file__).resolve().parents[1]
FMNIST = str(ROOT / "workloads" / "vgg_small_fmnist_atsn.npz")


@pytest.mark.parametrize("refill", [[], ["--set", "batch_refill=true"]])
@pytest.mark.parametrize(("batch", "where", "fix"), [
    ("1", f"{FMNIST}: --images: layer 'conv1' on atsn16x16: ", "; simulate fewer images per run (--images, --start)"),
    ("4", f"atsn16x16: images_per_batch: layer 'conv1' of {FMNIST}: ",
     "; use a smaller images_per_batch (now 4) or fewer --images")])
def test_a_phase_too_long_for_the_counter_names_the_file_and_field(refill, batch, where, fix, capsys, monkeypatch):
    """It said "conv1: a compute phase may exceed ... cycles; fix: simulate fewer images per batch" with no file or
    field, also to a design of one image per batch. A real trigger needs a phase of about 2^40 cycles (a 1x1 analog
    array, a huge layer); a ring that leaves the packed counter 2 bits (4 cycles) stands in for it."""
    monkeypatch.setattr(kernels, "ring_shift", lambda ring_length: 60)
    with pytest.raises(SystemExit) as stop:
        main(["run", "atsn16x16", FMNIST, "--images", "2", "-q", "--set", f"images_per_batch={batch}", *refill])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.count("\n") == 1, err
    assert err.startswith(f"satasim: error: {where}a compute phase may exceed 4 cycles"), err
    assert err.rstrip().endswith(fix), err
