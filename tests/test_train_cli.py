"""The train/evaluate commands, checkpoints, resume and bad input."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest

from satasim_atsn.cli import main
from satasim_atsn.errors import TrainError
from satasim_atsn.train import trainer
from satasim_atsn.train.config import TrainConfig
from satasim_atsn.train.trainer import train_model
from satasim_atsn.workload.datasets import synthetic
from satasim_atsn.workload.format import read_workload

DATA = (synthetic("train", 128), synthetic("test", 32))


def _cfg(**kw) -> TrainConfig:
    base = dict(model="vgg_small", dataset="synthetic", method="snn", epochs=2, batch_size=32, lr=0.05,
                test_images=32, width=0.5, seed=1)
    base.update(kw)
    return TrainConfig(**base)


def run_cli(args, capsys):
    with pytest.raises(SystemExit) as info:
        main(args)
    out = capsys.readouterr()
    return info.value.code, out.out, out.err


def test_cli_trains_and_evaluates(tmp_path, capsys):
    out = tmp_path / "w.npz"
    code, _, err = run_cli(["train", "--dataset", "synthetic", "--method", "dtsnn", "--epochs", "1", "--width", "0.5",
                            "--test-images", "32", "--batch-size", "64", "--quiet", "-o", str(out), "--json",
                            str(tmp_path / "r.json")], capsys)
    assert code == 0 and err == ""
    summary = json.loads((tmp_path / "r.json").read_text())
    assert summary["loss"] == "dtsnn" and summary["output_mode"] == "accumulate"
    assert read_workload(out).meta["exit_policy"]["default"] == "dtsnn"
    code, text, _ = run_cli(["evaluate", str(out), "--json", str(tmp_path / "e.json")], capsys)
    assert code == 0
    assert "hardware LUT" in text and "T=1" in text and "DTSNN" in text
    table = json.loads((tmp_path / "e.json").read_text())
    assert table["fixed"]["complexity"] == 1.0 and set(table["fixed_t"]) == {"1", "2", "3", "4"}
    assert 0 <= table["atsn_hw"]["exit_agrees_with_float"] <= 1


@pytest.mark.parametrize("args,needle", [
    (["train", "--model", "alexnet", "-o", "x.npz"], "unknown model"),
    # a network file (docs/networks.md) is trained as written: a missing one is named before any data is read
    (["train", "--model", "nets/my_net.yaml", "-o", "x.npz"], "nets/my_net.yaml: no such file"),
    (["train", "--model", "my_net.yml", "-o", "x.npz"], "my_net.yml: no such file"),
    (["train", "--dataset", "imagenet", "-o", "x.npz"], "unknown dataset"),
    (["train", "--method", "fast", "-o", "x.npz"], "unknown method"),
    (["train", "--loss", "mse", "-o", "x.npz"], "unknown loss"),
    (["train", "--epochs", "0", "-o", "x.npz"], "--epochs"),
    # inf is a number, and positive: the refusal has to say what is wrong with it
    (["train", "--checkpoint-minutes", "inf", "-o", "x.npz"], "--checkpoint-minutes: must be a positive finite number "
                                                             "of minutes, got inf"),
    (["train", "--checkpoint-minutes", "nan", "-o", "x.npz"], "finite number of minutes, got nan"),
    (["train", "--lr", "inf", "-o", "x.npz"], "--lr: must be a positive finite number, got inf"),
    (["train", "--width", "nan", "-o", "x.npz"], "--width: must be in (0, 4], got nan"),
    (["evaluate", "does/not/exist.npz"], "no such file"),
    (["evaluate", "x.npz", "--policy", "magic"], "unknown policy"),
])
def test_cli_bad_input_exit_2(args, needle, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(args, capsys)
    assert code == 2 and needle in err and err.count("\n") == 1 and "Traceback" not in err


def test_cli_missing_dataset_dir(tmp_path, capsys):
    code, _, err = run_cli(["train", "--data-dir", str(tmp_path), "-o", str(tmp_path / "x.npz")], capsys)
    assert code == 2 and "dataset-fashion-mnist" in err


def test_evaluate_rejects_non_workload(tmp_path, capsys):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    code, _, err = run_cli(["evaluate", str(bad)], capsys)
    assert code == 2 and "bad.npz" in err


@pytest.mark.parametrize(("option", "value", "needle"), [
    ("--tau-cl", "2", "--tau-cl: must be in (0, 1], got 2"),
    ("--cl-init", "0", "--cl-init: must be in (0, 1], got 0"),
    ("--theta", "1.5", "--theta: must be in (0, 1], got 1.5"),
])
def test_evaluate_names_the_exit_option_out_of_range(capsys, option, value, needle):
    """It said 'cl_init/tau_cl: must be in (0, 1]' without the option or the value."""
    workload = str(Path(__file__).resolve().parents[1] / "workloads" / "vgg_small_fmnist_atsn.npz")
    code, _, err = run_cli(["evaluate", workload, option, value], capsys)
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1


def test_resume_repeats_the_uninterrupted_run(tmp_path, monkeypatch):
    (tmp_path / "s").mkdir()
    (tmp_path / "r").mkdir()
    straight = tmp_path / "s" / "w.npz"
    train_model(_cfg(), straight, quiet=True, data=DATA)
    real = trainer.loss_and_grad
    calls = {"n": 0}

    def interrupt(*args, **kw):
        calls["n"] += 1
        if calls["n"] > 4:  # 4 batches per epoch: stop inside epoch 2
            raise KeyboardInterrupt
        return real(*args, **kw)

    resumed = tmp_path / "r" / "w.npz"
    monkeypatch.setattr(trainer, "loss_and_grad", interrupt)
    with pytest.raises(KeyboardInterrupt):
        train_model(_cfg(), resumed, quiet=True, data=DATA)
    assert not resumed.exists() and (tmp_path / "r" / "w.npz.ckpt.npz").exists()
    monkeypatch.setattr(trainer, "loss_and_grad", real)
    train_model(_cfg(), resumed, resume=True, quiet=True, data=DATA)
    assert resumed.read_bytes() == straight.read_bytes()


def test_nan_loss_stops_and_keeps_checkpoint(tmp_path, monkeypatch):
    out = tmp_path / "n.npz"
    real = trainer.loss_and_grad
    calls = {"n": 0}

    def nan_later(*args, **kw):
        calls["n"] += 1
        loss, grad = real(*args, **kw)
        return (float("nan"), grad) if calls["n"] > 5 else (loss, grad)

    monkeypatch.setattr(trainer, "loss_and_grad", nan_later)
    with pytest.raises(TrainError, match="NaN|nan") as info:
        train_model(_cfg(), out, quiet=True, data=DATA)
    assert "checkpoint" in str(info.value) and "epoch 2" in str(info.value)
    ckpt = tmp_path / "n.npz.ckpt.npz"
    with np.load(ckpt) as data:
        assert json.loads(str(data["state"]))["epochs_done"] == 1
    assert not out.exists()


def test_checkpoint_of_another_model_is_refused(tmp_path):
    out = tmp_path / "c.npz"
    train_model(_cfg(epochs=1), out, quiet=True, data=DATA)
    with pytest.raises(TrainError, match="method"):
        train_model(_cfg(epochs=2, method="atsn"), out, resume=True, quiet=True, data=DATA)
    with pytest.raises(TrainError, match="width"):
        train_model(_cfg(epochs=2, width=0.25), out, resume=True, quiet=True, data=DATA)
    with pytest.raises(TrainError, match="no checkpoint"):
        train_model(_cfg(), tmp_path / "other.npz", resume=True, quiet=True, data=DATA)
    (tmp_path / "bad.ckpt").write_bytes(b"junk")
    with pytest.raises(TrainError, match="not a readable checkpoint"):
        train_model(_cfg(), out, checkpoint=tmp_path / "bad.ckpt", resume=True, quiet=True, data=DATA)


def test_progress_is_quiet_when_piped(tmp_path):
    import io

    stream = io.StringIO()
    train_model(_cfg(epochs=1), tmp_path / "p.npz", stream=stream, data=DATA)
    text = stream.getvalue()
    assert "\r" not in text and "epoch 1/1" in text and "quantised" in text


def _framed(split: str, n: int) -> trainer.Dataset:
    base = synthetic(split, n, shape=(2, 8, 8))
    rng = np.random.default_rng(0 if split == "train" else 1)
    frames = (rng.random((n, 3, 2, 8, 8)) * 255 < base.x[:, None]).astype(np.uint8)
    return trainer.Dataset("cifar10-dvs", split, frames, base.y, base.num_classes, "<test>")


def test_spike_frame_dataset_trains_and_exports(tmp_path):
    data = (_framed("train", 64), _framed("test", 16))
    cfg = _cfg(dataset="cifar10-dvs", epochs=1, timesteps=3, test_images=16, method="atsn")
    out = tmp_path / "dvs.npz"
    summary = train_model(cfg, out, quiet=True, data=data)
    wl = read_workload(out)
    assert wl.input_encoding == "spike_frames" and wl.inputs().shape == (16, 3, 2, 8, 8)
    assert np.array_equal(wl.inputs(), data[1].x)
    assert abs(summary["float"]["fixed_t"]["3"] - summary["quantised"]["fixed_t"]["3"]) <= 0.25
    with pytest.raises(TrainError, match="--timesteps"):
        train_model(_cfg(dataset="cifar10-dvs", epochs=1, timesteps=4), tmp_path / "x.npz", quiet=True, data=data)
    # the refusal is the only line: the note of --test-images beyond the 16 test frames came before it
    stream = io.StringIO()
    with pytest.raises(TrainError, match="--timesteps"):
        train_model(_cfg(dataset="cifar10-dvs", epochs=1, timesteps=4, test_images=100), tmp_path / "x.npz",
                    stream=stream, data=data)
    assert stream.getvalue() == ""


def test_full_disk_leaves_nothing_half_written(tmp_path, monkeypatch):
    import satasim_atsn.workload.format as fmt

    def full(*args, **kw):
        raise OSError(28, "No space left on device")

    from satasim_atsn.train import checkpoints

    monkeypatch.setattr(fmt, "atomic_write_bytes", full)
    monkeypatch.setattr(checkpoints, "atomic_write_bytes", full)
    with pytest.raises(TrainError, match="No space left"):
        train_model(_cfg(epochs=1), tmp_path / "full.npz", quiet=True, data=DATA)
    assert list(tmp_path.iterdir()) == []


def test_evaluate_uses_the_exit_settings_the_workload_stores(tmp_path, capsys):
    """A network trained with --cl-init 0.3 was evaluated at the paper's 0.999 (workload stats used 0.3)."""
    from satasim_atsn.workload.format import write_workload

    workload = read_workload(Path(__file__).resolve().parents[1] / "workloads" / "vgg_small_fmnist_atsn.npz")
    workload.meta["exit_policy"] = {"cl_init": 0.3, "tau_cl": 0.9, "theta": 0.5}
    path = tmp_path / "w.npz"
    write_workload(path, workload)
    code, _, err = run_cli(["evaluate", str(path), "-q", "--json", str(tmp_path / "e.json")], capsys)
    assert code == 0, err
    assert json.loads((tmp_path / "e.json").read_text())["policy_params"] == {"cl_init": 0.3, "tau_cl": 0.9,
                                                                              "theta": 0.5}
    code, _, err = run_cli(["evaluate", str(path), "-q", "--cl-init", "0.8", "--json", str(tmp_path / "f.json")],
                           capsys)
    assert code == 0, err
    assert json.loads((tmp_path / "f.json").read_text())["policy_params"]["cl_init"] == 0.8
