"""What a training shows while it evaluates: a bar over the test images on a terminal, and the last epoch's float
evaluation used once (the export measured the same network on the same images again, without a bar)."""

from __future__ import annotations

import io

from satasim_atsn.train import trainer
from satasim_atsn.train.config import TrainConfig
from satasim_atsn.train.trainer import train_model
from satasim_atsn.workload.datasets import synthetic

DATA = (synthetic("train", 64), synthetic("test", 300))


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _cfg(**kw) -> TrainConfig:
    base = dict(model="vgg_small", dataset="synthetic", method="atsn", epochs=2, batch_size=32, lr=0.05,
                test_images=8, width=0.25, seed=3, timesteps=2)
    base.update(kw)
    return TrainConfig(**base)


def test_the_last_epochs_float_evaluation_is_not_run_twice(tmp_path, monkeypatch):
    """Fashion-MNIST's 10,000 test images: each float evaluation took about 15 s, and the export ran the last
    epoch's again on the same weights and images (an integer forward of them took 5 s)."""
    calls = []
    real = trainer.float_logits

    def counting(net, x, normalise, *args, **kwargs):
        calls.append(len(x))
        return real(net, x, normalise, *args, **kwargs)

    monkeypatch.setattr(trainer, "float_logits", counting)
    summary = train_model(_cfg(), tmp_path / "w.npz", quiet=True, data=DATA)
    assert calls == [300, 300]  # one per epoch; the export reuses the last
    assert summary["float"]["fixed_t"]["2"] == summary["history"][-1]["test_acc"]
    calls.clear()
    again = train_model(_cfg(), tmp_path / "w.npz", resume=True, quiet=True, data=DATA)  # nothing left to train
    assert calls == [300] and again["float"] == summary["float"]


def test_a_terminal_shows_the_evaluations_progress(tmp_path):
    """On a terminal the epoch's bar closed and then nothing moved while the test images were evaluated (float
    after each epoch, int8 at the export): on Fashion-MNIST half a minute that looked like a hang."""
    stream = _Terminal()
    train_model(_cfg(epochs=1), tmp_path / "w.npz", stream=stream, data=DATA)
    text = stream.getvalue()
    assert "epoch 1/1 float test:   0%" in text and "int8 test:   0%" in text and "0/300 [" in text


class _UnsizedPty(io.StringIO):
    """A terminal that reports 0 rows and 0 columns, as ``script`` and some CI runners give: isatty, with the
    fileno of a fresh pty; what is written is kept here."""

    def __init__(self, fd: int) -> None:
        super().__init__()
        self.fd = fd

    def isatty(self) -> bool:
        return True

    def fileno(self) -> int:
        return self.fd


def test_an_unsized_terminal_shows_the_training_bars(tmp_path):
    """tqdm followed the unsized pty's 0 rows and hid every bar of the training (epochs, evaluations), while
    simulate and evaluate drew theirs at a fixed size."""
    import os

    master, slave = os.openpty()
    try:
        assert os.get_terminal_size(slave).lines == 0
        stream = _UnsizedPty(slave)
        train_model(_cfg(epochs=1), tmp_path / "w.npz", stream=stream, data=DATA)
    finally:
        os.close(master)
        os.close(slave)
    text = stream.getvalue()
    assert "epoch 1/1:   0%" in text and "int8 test:   0%" in text and "0/300 [" in text


def test_a_log_file_gets_a_line_per_mid_epoch_checkpoint(tmp_path):
    """Piped to a log, a large network's epoch (13 minutes at VGG16 width 0.5 on 2 cores) printed nothing until
    it ended; each mid-epoch checkpoint now prints where it is. A terminal's bar shows that already, and --quiet
    prints nothing."""
    log, term = io.StringIO(), _Terminal()
    train_model(_cfg(epochs=1, batch_size=16, checkpoint_minutes=1e-9), tmp_path / "a.npz", stream=log, data=DATA)
    lines = [line for line in log.getvalue().splitlines() if "checkpoint written" in line]
    assert [line.split(":")[0] + ":" + line.split(":")[1].split(",")[0] for line in lines] == [
        "epoch 1/1: 1/4 batches", "epoch 1/1: 2/4 batches", "epoch 1/1: 3/4 batches"]  # the last batch ends the epoch
    assert all("loss " in line and "train acc " in line and "img/s" in line for line in lines)
    train_model(_cfg(epochs=1, batch_size=16, checkpoint_minutes=1e-9), tmp_path / "b.npz", stream=term, data=DATA)
    assert "checkpoint written" not in term.getvalue()
    quiet = io.StringIO()
    train_model(_cfg(epochs=1, batch_size=16, checkpoint_minutes=1e-9), tmp_path / "c.npz", stream=quiet,
                quiet=True, data=DATA)
    assert quiet.getvalue() == ""
