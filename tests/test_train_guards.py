"""What `satasim train` and `satasim evaluate` refuse before any work, so that hours of training never end in a
lost, clobbered or mislabelled result: outputs, resumed settings, existing checkpoints, diverging runs, and a
test set whose labels mean something else."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from satasim_atsn.cli import main
from satasim_atsn.errors import TrainError
from satasim_atsn.fileio import write_json
from satasim_atsn.train import run_lock
from satasim_atsn.train.config import TrainConfig
from satasim_atsn.train.trainer import train_model
from satasim_atsn.workload.datasets import synthetic, write_idx
from satasim_atsn.workload.format import read_workload

SHIPPED = Path(__file__).resolve().parent.parent / "workloads" / "vgg_small_fmnist_atsn.npz"
DATA = (synthetic("train", 96), synthetic("test", 32))
TRAIN = ["train", "--dataset", "synthetic", "--method", "snn", "--epochs", "1", "--width", "0.5", "--batch-size", "32",
         "--test-images", "16", "--quiet"]


def run_cli(args, capsys):
    with pytest.raises(SystemExit) as info:
        main(args)
    out = capsys.readouterr()
    return info.value.code, out.out, out.err


def _one_line(code: int, err: str) -> str:
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def _cfg(**kw) -> TrainConfig:
    base = dict(model="vgg_small", dataset="synthetic", method="snn", epochs=2, batch_size=32, lr=0.05,
                test_images=16, width=0.5, seed=1)
    base.update(kw)
    return TrainConfig(**base)


# ------------------------------------------------------------------------------------------
# outputs, checked before the first batch
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("extra", [
    lambda d: ["-o", str(d / "w.npz"), "--json", str(d / "w.npz")],
    lambda d: ["-o", str(d / "w.npz"), "--checkpoint", str(d / "w.npz")],
    lambda d: ["-o", str(d), "--json", str(d / "r.json")],
    lambda d: ["-o", str(d / "w.npz"), "--json", str(d)],
])
def test_outputs_that_cannot_all_be_written_are_refused_before_training(tmp_path, capsys, extra):
    code, _, err = run_cli(TRAIN + extra(tmp_path), capsys)
    line = _one_line(code, err)
    assert "one would replace the other" in line or "cannot be written" in line or ": is a directory;" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing trained, nothing written


def _tiny_image_folder(root) -> None:
    """train/ and test/ with classes a and b of one 8x8 grey image each (Pillow, or the test is skipped)."""
    Image = pytest.importorskip("PIL.Image")
    for split in ("train", "test"):
        for cls in ("a", "b"):
            (root / split / cls).mkdir(parents=True)
            Image.fromarray(np.zeros((8, 8), np.uint8), "L").save(root / split / cls / "0.png")

def test_an_output_among_the_images_is_refused(tmp_path, capsys):
    _tiny_image_folder(tmp_path)
    code, _, err = run_cli(["train", "--dataset", "imagefolder", "--data-dir", str(tmp_path), "-o",
                            str(tmp_path / "train" / "a" / "w.npz")], capsys)
    assert "-o: is inside the image folder" in _one_line(code, err)


@pytest.mark.parametrize(("args", "needle"), [
    (["--seed", "-1"], "--seed: must be a non-negative integer, got -1"),
    (["--cl-init", "1.5"], "--cl-init: must be in (0, 1], got 1.5"),
    (["--theta", "0"], "--theta: must be in (0, 1], got 0.0"),
    (["--image-size", "8"], "--image-size: resizes image folders only"),
    # --output is the output layer's mode here, -o/--output a file elsewhere: a file name there says so
    (["--output", "my.npz"], "--output: unknown output 'my.npz'; use one of membrane, accumulate (--output is the "
                             "output layer's mode; the workload file is -o/--out)"),
])
def test_bad_settings_are_refused_before_training(tmp_path, capsys, args, needle):
    code, _, err = run_cli(TRAIN + args + ["-o", str(tmp_path / "w.npz")], capsys)
    assert needle in _one_line(code, err) and not (tmp_path / "w.npz.ckpt.npz").exists()


# ------------------------------------------------------------------------------------------
# checkpoints: never replaced without --resume, resumed only with the settings that made them
# ------------------------------------------------------------------------------------------
def test_an_existing_checkpoint_is_not_replaced_without_resume(tmp_path):
    out = tmp_path / "w.npz"
    train_model(_cfg(epochs=1), out, quiet=True, data=DATA)
    ckpt = tmp_path / "w.npz.ckpt.npz"
    before = ckpt.read_bytes()
    with pytest.raises(TrainError, match=r"w\.npz\.ckpt\.npz: --resume: a checkpoint of an earlier training is "
                                         r"there.*pass --resume to continue it"):
        train_model(_cfg(epochs=2), out, quiet=True, data=DATA)
    assert ckpt.read_bytes() == before
    train_model(_cfg(epochs=2), out, resume=True, quiet=True, data=DATA)  # --epochs may change on resume
    workload, ckpt_bytes = out.read_bytes(), ckpt.read_bytes()
    # ... but not below what the checkpoint holds: the export would name 1 epoch of a 2-epoch network
    with pytest.raises(TrainError, match=r"w\.npz\.ckpt\.npz: --epochs: is 1, but the checkpoint holds 2 epochs; "
                                         r"the workload would record fewer epochs than trained it; pass --epochs 2"):
        train_model(_cfg(epochs=1), out, resume=True, quiet=True, data=None)  # refused before any data load
    assert (out.read_bytes(), ckpt.read_bytes()) == (workload, ckpt_bytes)
    train_model(_cfg(epochs=2), out, resume=True, quiet=True, data=DATA)  # the same count re-exports


def test_a_checkpoint_taken_mid_epoch_needs_that_epoch(tmp_path):
    """A checkpoint inside epoch 2 (1 epoch and some batches done) continues only with --epochs 2 or more."""
    from satasim_atsn.train.checkpoints import check_epochs_left

    ckpt = tmp_path / "w.npz.ckpt.npz"
    np.savez(ckpt, state=json.dumps({"epochs_done": 1, "position": {"batches_done": 5}}))
    with pytest.raises(TrainError, match=r"--epochs: is 1, but the checkpoint holds 1 epoch and 5 batches of epoch 2; "
                                         r".*pass --epochs 2 or more"):
        check_epochs_left(ckpt, _cfg(epochs=1))
    check_epochs_left(ckpt, _cfg(epochs=2))  # continues epoch 2
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    check_epochs_left(tmp_path / "bad.npz", _cfg(epochs=1))  # unreadable: left to load_checkpoint's own message


@pytest.mark.parametrize(("change", "option"), [({"width": 0.25}, "--width"), ({"method": "atsn"}, "--method"),
                                                ({"model": "vgg16"}, "--model")])
def test_a_checkpoint_of_another_network_is_named_before_the_epochs(tmp_path, change, option):
    """With another width (model, method) and fewer --epochs, the refusal said 'pass --epochs 2 or more'; doing so
    only then revealed the mismatch, which no --epochs repairs."""
    out = tmp_path / "w.npz"
    train_model(_cfg(epochs=2), out, quiet=True, data=DATA)
    with pytest.raises(TrainError, match=rf"w\.npz\.ckpt\.npz: {option}: checkpoint is for "):
        train_model(_cfg(epochs=1, **change), out, resume=True, quiet=True, data=None)  # before any data load


@pytest.mark.parametrize(("change", "option"), [({"batch_size": 16}, "--batch-size"), ({"seed": 7}, "--seed"),
                                                ({"lr": 0.5}, "--lr"), ({"augment": False}, "--no-augment")])
def test_resuming_with_other_trajectory_settings_is_refused(tmp_path, change, option):
    out = tmp_path / "w.npz"
    train_model(_cfg(epochs=1), out, quiet=True, data=DATA)
    with pytest.raises(TrainError, match=rf"{option}: the checkpoint was trained with .*resume with the same "
                                         r"options"):
        train_model(_cfg(epochs=2, **change), out, resume=True, quiet=True, data=DATA)


def test_resuming_on_folders_of_other_class_names_is_refused(tmp_path):
    from satasim_atsn.workload.datasets import Dataset

    def named(data, names):
        return Dataset("imagefolder", data.split, data.x, data.y, data.num_classes, "d", names)

    first = tuple(f"c{i}" for i in range(4))
    other = ("c0", "c1", "c3", "c2")
    out = tmp_path / "w.npz"
    train_model(_cfg(epochs=1, dataset="imagefolder"), out, quiet=True, data=tuple(named(d, first) for d in DATA))
    with pytest.raises(TrainError, match=r"--data-dir \(class folders\): checkpoint is for "
                                         r"class_names=\['c0', 'c1', 'c2', 'c3'\]"):
        train_model(_cfg(epochs=2, dataset="imagefolder"), out, resume=True, quiet=True,
                    data=tuple(named(d, other) for d in DATA))


def test_resuming_on_other_images_is_refused(tmp_path):
    """Same classes, shapes and options, other pixels (another --data-dir, an edited or re-extracted folder): the
    resumed run would continue on, and export with the input statistics of, data it was not trained on."""
    from satasim_atsn.workload.datasets import Dataset

    def darker(data):
        return Dataset(data.name, data.split, data.x // 2, data.y, data.num_classes, data.source, data.class_names)

    out = tmp_path / "w.npz"
    train_model(_cfg(epochs=1), out, quiet=True, data=DATA)
    with pytest.raises(TrainError, match=r"--data-dir: the checkpoint was trained on other images \(\d+ images, "
                                         r"sha256 [0-9a-f]{16}; this run's training split: .*resume with the data"):
        train_model(_cfg(epochs=2), out, resume=True, quiet=True, data=(darker(DATA[0]), *DATA[1:]))
    # the test split may change (it only moves the export's evaluation), and the same images resume
    train_model(_cfg(epochs=2), out, resume=True, quiet=True, data=(DATA[0], darker(DATA[1]), *DATA[2:]))


def test_a_workload_given_as_the_checkpoint_is_named_as_such(tmp_path, capsys):
    out = tmp_path / "w.npz"
    train_model(_cfg(epochs=1), out, quiet=True, data=DATA)
    code, _, err = run_cli(TRAIN + ["-o", str(tmp_path / "x.npz"), "--checkpoint", str(out), "--resume"], capsys)
    line = _one_line(code, err)
    assert "a workload, not a checkpoint" in line and "delete" not in line


def test_a_diverging_run_keeps_a_finite_checkpoint_and_one_line(tmp_path, capsys):
    """The loss was checked before the update and the checkpoint saved after it, so the 'last good
    checkpoint' could hold inf weights; numpy's overflow warnings also preceded the error line."""
    out = tmp_path / "w.npz"
    code, _, err = run_cli(["train", "--dataset", "synthetic", "--epochs", "2", "--width", "0.25", "--batch-size",
                            "16", "--lr", "1e6", "--checkpoint-minutes", "0.000001", "--quiet", "-o", str(out)], capsys)
    line = _one_line(code, err)
    assert "training stopped" in line and "train again with a lower --lr" in line
    ckpt = tmp_path / "w.npz.ckpt.npz"
    if ckpt.exists():
        with np.load(ckpt) as data:
            assert all(np.isfinite(data[k]).all() for k in data.files if data[k].dtype.kind == "f")
        assert "the last good checkpoint is" in line
    else:
        assert "no checkpoint was written yet" in line and "--resume" not in line


def test_provenance_names_the_dataset_folder_not_the_path_typed(tmp_path, capsys, monkeypatch):
    data = tmp_path / "deep" / "mn"
    data.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 64), ("t10k", 16)):
        write_idx(data / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 12, 12), dtype=np.uint8))
        write_idx(data / f"{prefix}-labels-idx1-ubyte", (np.arange(n) % 10).astype(np.uint8))
    monkeypatch.chdir(tmp_path)
    args = ["train", "--dataset", "mnist", "--method", "snn", "--epochs", "1", "--width", "0.25", "--batch-size", "32",
            "--test-images", "10", "--quiet", "--no-augment"]
    run_cli(args + ["--data-dir", "deep/mn", "-o", "a.npz", "--json", "a.json"], capsys)
    run_cli(args + ["--data-dir", str(data), "-o", str(tmp_path / "b.npz"), "--json", "b.json"], capsys)
    monkeypatch.chdir(data)  # "." names the folder too (its name was "")
    run_cli(args + ["--data-dir", ".", "-o", str(tmp_path / "c.npz")], capsys)
    metas = [read_workload(tmp_path / f"{n}.npz").meta for n in "abc"]
    assert [m["provenance"]["dataset_source"] for m in metas] == ["mn"] * 3
    assert json.loads((tmp_path / "b.json").read_text())["workload"] == "b.npz"


# ------------------------------------------------------------------------------------------
# evaluate: a test set whose labels mean something else
# ------------------------------------------------------------------------------------------
def test_evaluate_refuses_another_datasets_test_split(tmp_path, capsys):
    out = tmp_path / "w.npz"
    train_model(_cfg(epochs=1), out, quiet=True, data=DATA)  # meta.dataset: synthetic
    code, _, err = run_cli(["evaluate", str(out), "--dataset", "mnist", "--data-dir", str(tmp_path)], capsys)
    assert "the workload was trained on synthetic, not mnist" in _one_line(code, err)


@pytest.mark.parametrize("dataset", ["", " ", "fmnist"])
def test_evaluate_names_an_unknown_dataset_as_unknown(capsys, dataset):
    """`--dataset ''` said "the workload was trained on fashion-mnist, not : its outputs would be scored against
    another dataset's labels"; an unknown name is now called unknown, and the workload's own dataset offered."""
    shipped = Path(__file__).resolve().parents[1] / "workloads" / "vgg_small_fmnist_atsn.npz"
    code, _, err = run_cli(["evaluate", str(shipped), "--dataset", dataset], capsys)
    line = _one_line(code, err)
    assert f"--dataset: unknown dataset {dataset!r}; pass --dataset fashion-mnist (the workload was trained on it)" \
        in line, line


def test_evaluate_refuses_folders_whose_class_names_differ(tmp_path, capsys):
    Image = pytest.importorskip("PIL.Image")
    rng = np.random.default_rng(0)
    for root, names in ((tmp_path / "orig", ("ant", "bee")), (tmp_path / "renamed", ("bee", "cow"))):
        for split in ("train", "test"):
            for cls in names:
                (root / split / cls).mkdir(parents=True)
                for i in range(8):
                    Image.fromarray(rng.integers(0, 256, (12, 12), dtype=np.uint8), "L").save(
                        root / split / cls / f"{i}.png")
    out = tmp_path / "w.npz"
    run_cli(TRAIN[:2] + ["imagefolder", "--data-dir", str(tmp_path / "orig")] + TRAIN[3:] + ["-o", str(out)], capsys)
    assert out.is_file()
    code, _, err = run_cli(["evaluate", str(out), "--dataset", "imagefolder", "--data-dir", str(tmp_path / "renamed"),
                            "-q"], capsys)
    assert "the test split's class 0 is 'bee', the workload's is 'ant'" in _one_line(code, err)
    code, _, err = run_cli(["evaluate", str(out), "--dataset", "imagefolder", "--data-dir", str(tmp_path / "orig"),
                            "-q"], capsys)
    assert code == 0


def test_evaluate_pairs_image_folders_with_named_datasets_only(tmp_path, capsys):
    """The image-folder exemption let a synthetic-trained network be scored on any folder (and the reverse); a
    folder against a named dataset is allowed (CIFAR-10's JPEGs against its reader) with a note."""
    Image = pytest.importorskip("PIL.Image")
    from satasim_atsn.workload.datasets import cross_dataset_note

    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for cls in ("ant", "bee"):
            (tmp_path / "f" / split / cls).mkdir(parents=True)
            for i in range(6):
                Image.fromarray(rng.integers(0, 256, (12, 12), dtype=np.uint8), "L").save(
                    tmp_path / "f" / split / cls / f"{i}.png")
    out = tmp_path / "w.npz"
    run_cli(TRAIN[:2] + ["imagefolder", "--data-dir", str(tmp_path / "f")] + TRAIN[3:] + ["-o", str(out)], capsys)
    code, _, err = run_cli(["evaluate", str(out), "--dataset", "synthetic"], capsys)
    assert "the workload was trained on imagefolder, not synthetic" in _one_line(code, err)
    wl = read_workload(out)
    assert cross_dataset_note(wl, "imagefolder") is None
    assert "class i of one is taken to be class i of the other" in cross_dataset_note(wl, "cifar10")
    syn = tmp_path / "s.npz"
    train_model(_cfg(epochs=1), syn, quiet=True, data=DATA)
    code, _, err = run_cli(["evaluate", str(syn), "--dataset", "imagefolder", "--data-dir", str(tmp_path / "f")],
                           capsys)
    assert "the workload was trained on synthetic, not imagefolder" in _one_line(code, err)


def test_json_has_no_nan(tmp_path):
    """Python writes NaN, which no JSON reader accepts; a number that does not exist is null."""
    write_json(tmp_path / "x.json", {"a": float("nan"), "b": [1.5, float("inf")], "c": {"d": -float("inf")}})
    assert json.loads((tmp_path / "x.json").read_text()) == {"a": None, "b": [1.5, None], "c": {"d": None}}


@pytest.mark.parametrize("command", [["evaluate", "W"], ["reproduce", "table1", "-o", "OUT"]])
def test_image_size_with_a_dataset_of_fixed_size_is_refused(tmp_path, capsys, command):
    out = tmp_path / "w.npz"
    train_model(_cfg(epochs=1), out, quiet=True, data=DATA)
    args = [str(out) if a == "W" else str(tmp_path / "o") if a == "OUT" else a for a in command]
    code, _, err = run_cli(args + ["--dataset", "mnist", "--data-dir", str(tmp_path), "--image-size", "8"], capsys)
    assert "--image-size: resizes image folders only; mnist images keep their size" in _one_line(code, err)


def test_reproduce_refuses_zero_images(tmp_path, capsys):
    """`reproduce twin --images 0` ran all 1,000 images; table1 blamed --start."""
    for part in ("twin", "table1"):
        code, _, err = run_cli(["reproduce", part, "-o", str(tmp_path / part), "--images", "0"], capsys)
        assert "--images: must be at least 1, got 0" in _one_line(code, err) and not (tmp_path / part).exists()


def test_a_group_writes_each_parts_own_regenerate_command():
    from pathlib import Path

    from satasim_atsn.study.reproduce import part_command

    assert part_command("satasim reproduce algorithm -o ./algx --images 2", "table1", Path("algx") / "table1") \
        == "satasim reproduce table1 -o algx/table1 --images 2"
    assert part_command("satasim reproduce all -o '../a b' --images 2", "twin", Path("../a b") / "twin") \
        == "satasim reproduce twin -o '../a b/twin' --images 2"
    # claims runs its figs on every test image: their command drops --images (and --arch, which they ignore);
    # an -o holding the word "claims" keeps it (a text replace had turned it into "figs")
    assert part_command("satasim reproduce claims -o claims_out --images 4 --arch=x.yaml", "figs",
                        Path("claims_out") / "figs", drop=("--images", "--arch")) \
        == "satasim reproduce figs -o claims_out/figs"


def test_reproduce_checks_the_statistical_workloads_before_any_part_runs(tmp_path, capsys):
    """`claims` left an empty directory after simulating, and `all` wrote table1 before failing at table3."""
    import shutil
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "workloads"
    partial = tmp_path / "w"
    partial.mkdir()
    for name in ("vgg16_cifar10.npz", "vgg_small_fmnist_atsn.npz"):
        shutil.copy(root / name, partial / name)
    for part in ("claims", "all"):
        code, _, err = run_cli(["reproduce", part, "-o", str(tmp_path / part), "--images", "2", "--workloads",
                                str(partial)], capsys)
        assert "missing statistical workload" in _one_line(code, err) and not (tmp_path / part).exists()


def test_a_data_dir_for_the_generated_dataset_is_refused(tmp_path, capsys):
    """`--dataset synthetic --data-dir /nonexist` was accepted silently (evaluate refuses a stray --data-dir)."""
    code, _, err = run_cli(["train", "--dataset", "synthetic", "--data-dir", str(tmp_path / "none"),
                            "-o", str(tmp_path / "w.npz")], capsys)
    assert "--data-dir: the synthetic dataset is generated" in _one_line(code, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_evaluate_refuses_a_data_dir_for_the_generated_dataset(tmp_path, capsys):
    """`evaluate W --dataset synthetic --data-dir /nonexist` scored the generated split and ignored the folder
    without a word; train refuses the same options."""
    out = tmp_path / "w.npz"
    code, _, err = run_cli(["train", "--dataset", "synthetic", "--epochs", "1", "--width", "0.25", "-T", "2",
                            "--quiet", "-o", str(out)], capsys)
    assert code == 0, err
    code, _, err = run_cli(["evaluate", str(out), "--dataset", "synthetic", "--data-dir", str(tmp_path / "none"),
                            "--json", str(tmp_path / "e.json")], capsys)
    assert "--data-dir: the synthetic dataset is generated" in _one_line(code, err)
    assert not (tmp_path / "e.json").exists()


def test_a_network_that_learned_little_is_warned_about():
    from satasim_atsn.train.training_warnings import training_warnings

    healthy = [{"loss": 1.2}, {"loss": 0.6}]
    assert training_warnings(healthy, 0.9, 10, 100) == []
    exploded = training_warnings([{"loss": 1.4}, {"loss": 24527.9}], 0.59, 3, 45)
    assert len(exploded) == 1 and "above twice a uniform guess's ln 3 = 1.099" in exploded[0]
    rising = training_warnings([{"loss": 1.0}, {"loss": 1.8}], 0.8, 10, 100)  # below 2 ln 10, but rose
    assert len(rising) == 1 and "rose from 1 (epoch 1) to 1.8" in rising[0]
    chance = training_warnings([{"loss": 1.53}, {"loss": 1.55}], 0.3567, 3, 30)
    assert len(chance) == 1 and "35.67% on 30 test images" in chance[0] and "33.33% of a guess" in chance[0]


def test_an_augmentation_that_hides_the_classes_is_named():
    """Classes told apart by left and right: the flip made training accuracy 46% beside a test accuracy of 84%,
    and the only hint was 'try a lower --lr'."""
    from satasim_atsn.train.training_warnings import training_warnings

    history = [{"loss": 1.45, "train_acc": 0.5, "test_acc": 0.6}, {"loss": 1.5, "train_acc": 0.46, "test_acc": 0.8375}]
    flipped = training_warnings(history, 0.8375, 2, 80, augment=True)
    assert len(flipped) == 2
    assert "(try a lower --lr, or --no-augment (below))" in flipped[0]
    assert "46.00% on the augmented training images but 83.75% on the test images" in flipped[1]
    assert "try --no-augment" in flipped[1]
    plain = training_warnings(history, 0.8375, 2, 80, augment=False)
    assert len(plain) == 1 and "--no-augment" not in plain[0]
    close = [{"loss": 0.3, "train_acc": 0.9, "test_acc": 0.95}]
    assert training_warnings(close, 0.95, 2, 80, augment=True) == []
    # one epoch from scratch: its running training accuracy lags the test accuracy anyway (no warning)
    first = [{"loss": 0.6, "train_acc": 0.1667, "test_acc": 0.8889}]
    assert training_warnings(first, 0.8889, 2, 9, augment=True) == []


def test_warnings_reach_the_summary_and_the_workload(tmp_path):
    out = tmp_path / "w.npz"
    summary = train_model(_cfg(epochs=1, lr=1e-7), out, quiet=True, data=DATA)  # learns nothing in one epoch
    from satasim_atsn.workload.format import read_workload

    # the 32 synthetic test images are unbalanced (the largest class holds 43.75%): the warning compares with that
    assert summary["warnings"] and "the 43.75% of always predicting the largest class" in summary["warnings"][-1]
    assert read_workload(out).meta["provenance"]["warnings"] == summary["warnings"]


@pytest.mark.parametrize("position, epoch", [(None, 2), ({"batches_done": 3}, 3)])
def test_a_non_finite_state_names_the_epoch_it_happened_in(tmp_path, position, epoch):
    """An end-of-epoch save has that epoch done (epochs_done = 2 after epoch 2); a mid-epoch one is inside
    epochs_done + 1. The message said 'epoch 3' of a 2-epoch run."""
    from types import SimpleNamespace

    from satasim_atsn.train.checkpoints import save_checkpoint

    net = SimpleNamespace(state_arrays=lambda: {"p/w": np.array([np.inf], np.float32)}, spec=[])
    opt = SimpleNamespace(state_arrays=lambda: {})
    with pytest.raises(TrainError, match=rf"non-finite \(p/w, epoch {epoch}\)"):
        save_checkpoint(tmp_path / "c.npz", net, opt, _cfg(epochs=2), 2, [], position=position)


def test_a_json_that_cannot_be_written_after_training_says_how_to_get_it(tmp_path, capsys, monkeypatch):
    """The workload is written first; a full disk then refused the JSON, and rerunning was refused for the
    checkpoint it found. The message now gives the way that works: --resume with another --json."""
    import satasim_atsn.train.commands as commands
    from satasim_atsn.errors import SatasimError

    def full_disk(path, payload):
        raise SatasimError(f"{path}: cannot be written (No space left on device); choose a writable location")

    monkeypatch.setattr(commands, "write_json", full_disk)
    out, report = tmp_path / "w.npz", tmp_path / "w.json"
    code, _, err = run_cli(TRAIN + ["-o", str(out), "--json", str(report)], capsys)
    line = _one_line(code, err)
    assert "No space left on device" in line and f"the workload {out} is written" in line and "--resume" in line
    monkeypatch.undo()
    code, _, err = run_cli(TRAIN + ["-o", str(out), "--json", str(report), "--resume"], capsys)
    assert code == 0 and json.loads(report.read_text())["workload"] == "w.npz"


def test_asking_for_more_images_than_a_split_has_is_said(tmp_path):
    import io

    stream = io.StringIO()
    out = tmp_path / "w.npz"
    train_model(_cfg(epochs=1, train_subset=1000, eval_images=500, test_images=400), out, stream=stream, data=DATA)
    text = stream.getvalue()
    assert "note: --train-subset 1000: the training split has 96 images; all of them are used" in text
    assert "note: --eval-images 500: the test split has 32 images" in text and "--test-images 400" in text
    assert read_workload(out).meta["provenance"]["eval_split"] == "the whole test split"


def test_asking_for_exactly_the_split_is_the_whole_split(tmp_path, monkeypatch):
    from satasim_atsn.train import trainer

    monkeypatch.setattr(trainer, "load_dataset", lambda name, split, *a: DATA[split == "test"])
    for asked, words in ((32, "the whole test split"), (31, "seeded class-balanced sample"), (None, "the whole")):
        out = tmp_path / f"{asked}.npz"
        train_model(_cfg(epochs=1, eval_images=asked), out, quiet=True)  # the test split has 32 images
        provenance = read_workload(out).meta["provenance"]
        assert provenance["eval_split"].startswith(words) and provenance["eval_images"] == (asked or 32)


def test_a_resume_with_other_eval_images_labels_the_earlier_epochs(tmp_path, monkeypatch):
    """After a resume with another --eval-images the history's accuracies came from two sample sizes, unnamed."""
    from satasim_atsn.train import trainer

    monkeypatch.setattr(trainer, "load_dataset", lambda name, split, *a: DATA[split == "test"])
    changed, same = tmp_path / "changed.npz", tmp_path / "same.npz"
    train_model(_cfg(epochs=1, eval_images=16), changed, quiet=True)
    train_model(_cfg(epochs=3), changed, resume=True, quiet=True)  # the whole 32-image split from epoch 2
    assert [r.get("test_images") for r in read_workload(changed).meta["provenance"]["history"]] == [16, None, None]
    train_model(_cfg(epochs=1, eval_images=16), same, quiet=True)  # the same sample after: unlabelled, a fresh run's
    train_model(_cfg(epochs=2, eval_images=16), same, resume=True, quiet=True)
    assert all("test_images" not in r for r in read_workload(same).meta["provenance"]["history"])


def test_small_mistakes_get_the_message_that_helps(tmp_path, capsys):
    # --resume without a checkpoint: said before the (here impossible) data load, not after it
    code, _, err = run_cli(["train", "--dataset", "imagefolder", "--data-dir", str(tmp_path / "nowhere"), "--resume",
                            "-o", str(tmp_path / "w.npz")], capsys)
    assert "no checkpoint to resume from" in _one_line(code, err)
    # a checkpoint given where a workload is expected
    train_model(_cfg(epochs=1), tmp_path / "w.npz", quiet=True, data=DATA)
    code, _, err = run_cli(["evaluate", str(tmp_path / "w.npz.ckpt.npz")], capsys)
    assert "is a training checkpoint" in _one_line(code, err) and "its -o file" in err
    # the official CIFAR-10 reader pointed at an image folder
    (tmp_path / "folder" / "train").mkdir(parents=True)
    (tmp_path / "folder" / "test").mkdir()
    code, _, err = run_cli(["train", "--dataset", "cifar10", "--data-dir", str(tmp_path / "folder"),
                            "-o", str(tmp_path / "c.npz")], capsys)
    assert "use --dataset imagefolder" in _one_line(code, err)
    # an empty -o cannot be "left out": it is required
    code, _, err = run_cli(["train", "-o", ""], capsys)
    line = _one_line(code, err)
    assert "-o: is an empty path (a shell variable left unset?); give a " in line and "leave the option out" not in line


def test_more_than_1024_timesteps_is_refused_before_the_training(tmp_path):
    """-T 1025 trained a whole epoch, then failed at export on meta.timesteps and left a checkpoint behind."""
    with pytest.raises(TrainError, match=r"--timesteps: must be at most 1024, got 1025"):
        train_model(_cfg(timesteps=1025), tmp_path / "w.npz", quiet=True, data=DATA)
    assert list(tmp_path.iterdir()) == []


def test_an_evaluation_sample_of_the_embedded_count_is_the_embedded_images():
    """--eval-images N with --test-images N measured another sample than the one embedded (seed + 1), so
    satasim evaluate could never reproduce the trainer's numbers; a larger one now starts with it."""
    from satasim_atsn.train.trainer import prepare_data
    from satasim_atsn.workload.datasets import balanced_sample

    cfg = _cfg(dataset="synthetic", eval_images=16, test_images=16)
    train, evaluation, embedded = prepare_data(cfg)
    np.testing.assert_array_equal(evaluation.x, embedded.x)
    labels = np.repeat(np.arange(10), 30)
    small, large = balanced_sample(labels, 16, 3), balanced_sample(labels, 40, 3)
    np.testing.assert_array_equal(small, large[:16])  # the start of it, as docs/training.md says


@pytest.mark.parametrize(("change", "option"), [(["--seed", "3"], "--seed"), (["--train-subset", "48"],
                                                                               "--train-subset")])
def test_a_changed_option_that_draws_the_subset_is_named_on_resume(tmp_path, capsys, change, option):
    """--train-subset draws its images with --seed: another seed also changes the training data, and the refusal
    named --data-dir (the data check ran before the options'); it names the option the user changed."""
    from satasim_atsn.cli import main

    def train(epochs: str, options: list[str]) -> int:
        with pytest.raises(SystemExit) as done:
            main(["train", "--dataset", "synthetic", "--epochs", epochs, "--test-images", "8", "-q",
                  "-o", str(tmp_path / "s.npz"), *options])
        return done.value.code

    assert train("1", ["--train-subset", "64"]) == 0
    options = {"--seed": "0", "--train-subset": "64", change[0]: change[1]}
    assert train("2", [*(x for item in options.items() for x in item), "--resume"]) == 2
    err = capsys.readouterr().err
    assert f"{option}: the checkpoint was trained with" in err and "--data-dir" not in err


def test_a_network_near_the_largest_class_of_unbalanced_test_images_is_warned_about():
    """7 classes, the largest holding 26% of the test images: 26.32% passed the 1.5/C = 21.4% test without a word,
    although the network predicted one class for every image. The warning now says which chance it compares with."""
    from satasim_atsn.train.training_warnings import training_warnings

    labels = np.repeat(np.arange(7), [30, 2, 1, 30, 30, 20, 1])
    names = ["cat", "dog", "eel", "fox", "gnu", "hen", "ibex"]
    history = [{"loss": 1.8}]
    one = training_warnings(history, 30 / 114, 7, 114, labels=labels, predicted=np.full(114, 3), class_names=names)
    assert len(one) == 1 and "predicts class 3 ('fox') for every one of the 114 test images" in one[0]
    varied = np.arange(114) % 7
    near = training_warnings(history, 0.2895, 7, 114, labels=labels, predicted=varied, class_names=names)
    # classes 0, 3 and 4 hold 30 each: one of three, not "the largest class"
    assert len(near) == 1 and "not clearly above the 26.32% of always predicting one of the 3 largest classes " \
        "(e.g. 0 ('cat'))" in near[0]
    assert "unbalanced" in near[0] and "14.29%" in near[0]
    assert training_warnings(history, 0.5, 7, 114, labels=labels, predicted=varied) == []
    # balanced classes keep the uniform guess's rule and words; one class for all is said whatever the balance
    balanced = np.arange(70) % 7
    chance = training_warnings(history, 0.2, 7, 70, labels=balanced, predicted=balanced[::-1])
    assert len(chance) == 1 and "near the 14.29% of a guess among 7 classes" in chance[0]
    assert training_warnings(history, 0.22, 7, 70, labels=balanced, predicted=balanced) == []
    assert "for every one of the 70" in training_warnings(history, 1 / 7, 7, 70, labels=balanced,
                                                          predicted=np.zeros(70, int))[0]


def test_training_on_an_unbalanced_folder_that_learns_nothing_is_warned_about(tmp_path, capsys):
    """The audit's reproducer on a generated folder: 7 classes of one image each (nothing tells them apart), four
    holding 24% of the test images each: the network predicts one of them for all, above 1.5/C = 21.4%."""
    image = pytest.importorskip("PIL.Image")
    pattern = np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    for split in ("train", "test"):
        for c, n in enumerate([20, 20, 20, 20, 1, 1, 1]):
            (tmp_path / "f" / split / f"c{c}").mkdir(parents=True)
            for i in range(n if split == "test" else 2):
                image.fromarray(pattern, "RGB").save(tmp_path / "f" / split / f"c{c}" / f"{i}.png")
    report = tmp_path / "w.json"
    code, _, err = run_cli(["train", "--dataset", "imagefolder", "--data-dir", str(tmp_path / "f"), "-T", "2",
                            "--epochs", "1", "--train-subset", "2", "--quiet", "-o", str(tmp_path / "w.npz"),
                            "--json", str(report)], capsys)
    assert code == 0, err
    summary = json.loads(report.read_text())
    assert summary["quantised"]["fixed_t"]["2"] == round(20 / 83, 6) > 1.5 / 7  # above the old threshold
    assert len(summary["warnings"]) == 1
    assert "for every one of the 83 test images at fixed T: its 24.10% is that class's share" in \
        summary["warnings"][0]
    assert read_workload(tmp_path / "w.npz").meta["provenance"]["warnings"] == summary["warnings"]


def test_a_resume_that_extends_the_epochs_is_recorded_and_a_fresh_run_is_not(tmp_path):
    """`--epochs 1` then `--epochs 2 --resume` stored config.epochs 2 like a fresh 2-epoch run, with other weights
    (the cosine schedule is re-planned): provenance.resumes and the summary now say where and from what it resumed."""
    fresh = tmp_path / "fresh" / "w.npz"
    fresh.parent.mkdir()
    summary = train_model(_cfg(epochs=2), fresh, quiet=True, data=DATA)
    assert summary["resumed"] is None and summary["resumes"] == []
    assert "resumes" not in read_workload(fresh).meta["provenance"]
    out = tmp_path / "ext" / "w.npz"
    out.parent.mkdir()
    train_model(_cfg(epochs=1), out, quiet=True, data=DATA)
    summary = train_model(_cfg(epochs=2), out, resume=True, quiet=True, data=DATA)
    record = {"epochs_done": 1, "batches_done": 0, "epochs_before": 1, "epochs_after": 2}
    assert summary["resumed"] == record and summary["resumes"] == [record]
    assert read_workload(out).meta["provenance"]["resumes"] == [record]
    assert read_workload(out).meta["provenance"]["config"] == read_workload(fresh).meta["provenance"]["config"]
    # resuming the finished run with the same --epochs (e.g. to write the JSON again) trains and records nothing new
    before = out.read_bytes()
    again = train_model(_cfg(epochs=2), out, resume=True, quiet=True, data=DATA)
    assert again["resumed"] == {"epochs_done": 2, "batches_done": 0} and again["resumes"] == [record]
    assert out.read_bytes() == before
    fresh_bytes = fresh.read_bytes()
    train_model(_cfg(epochs=2), fresh, resume=True, quiet=True, data=DATA)
    assert fresh.read_bytes() == fresh_bytes  # a resume that repeats the uninterrupted run keeps its bytes


def test_a_mid_epoch_resume_with_other_epochs_records_the_batch(tmp_path, monkeypatch):
    """A run stopped inside epoch 1 of 2 and resumed with --epochs 3: the record names the batch it went on from."""
    import satasim_atsn.train.trainer as trainer

    original = trainer.save_checkpoint

    def stop_after_a_mid_epoch_save(*args, **kwargs):
        original(*args, **kwargs)
        if (args[6] if len(args) > 6 else kwargs.get("position")) is not None:
            raise KeyboardInterrupt

    out = tmp_path / "w.npz"
    monkeypatch.setattr(trainer, "save_checkpoint", stop_after_a_mid_epoch_save)
    with pytest.raises(KeyboardInterrupt):
        train_model(_cfg(epochs=2, batch_size=16, checkpoint_minutes=1e-9), out, quiet=True, data=DATA)
    monkeypatch.undo()
    summary = train_model(_cfg(epochs=3, batch_size=16, checkpoint_minutes=1e-9), out, resume=True, quiet=True,
                          data=DATA)
    record = {"epochs_done": 0, "batches_done": 1, "epochs_before": 2, "epochs_after": 3}
    assert summary["resumed"] == record and read_workload(out).meta["provenance"]["resumes"] == [record]
    assert [row["epoch"] for row in read_workload(out).meta["provenance"]["history"]] == [1, 2, 3]


def test_an_output_over_a_dataset_file_is_refused(tmp_path, capsys):
    """-o DIR/test.npz of a cifar10-dvs folder replaced its test split with the workload after the training, and
    `evaluate --json` into an image folder overwrote an image: both are refused before any work, nothing written."""
    rng = np.random.default_rng(0)
    for split, n in (("train", 16), ("test", 8)):
        np.savez(tmp_path / f"{split}.npz", x=(rng.random((n, 2, 2, 8, 8)) < 0.3).astype(np.uint8),
                 y=np.arange(n) % 10)
    before = (tmp_path / "test.npz").read_bytes()
    code, _, err = run_cli(["train", "--dataset", "cifar10-dvs", "--data-dir", str(tmp_path), "-T", "2", "--epochs",
                            "1", "-q", "-o", str(tmp_path / "test.npz")], capsys)
    assert "-o: is the cifar10-dvs dataset's file" in _one_line(code, err)
    assert (tmp_path / "test.npz").read_bytes() == before and not (tmp_path / "test.npz.ckpt.npz").exists()
    code, _, err = run_cli(["evaluate", str(SHIPPED), "--dataset", "cifar10-dvs",
                            "--data-dir", str(tmp_path), "--json", str(tmp_path / "train.npz")], capsys)
    assert "--json: is the cifar10-dvs dataset's file" in _one_line(code, err)


def test_evaluate_json_among_the_images_is_refused(tmp_path, capsys):
    _tiny_image_folder(tmp_path)
    image = tmp_path / "test" / "a" / "0.png"
    before = image.read_bytes()
    code, _, err = run_cli(["evaluate", str(SHIPPED), "--dataset", "imagefolder",
                            "--data-dir", str(tmp_path), "--json", str(image)], capsys)
    assert "--json: is inside the image folder" in _one_line(code, err)
    assert image.read_bytes() == before


def test_the_fix_for_an_unreadable_checkpoint_works_when_followed(tmp_path, capsys):
    """The fix said "or train without --resume", which the file still there refused (an earlier training's
    checkpoint): it says to delete the file first, and doing so trains."""
    out, ckpt = tmp_path / "w.npz", tmp_path / "w.npz.ckpt.npz"
    ckpt.write_bytes(b"a truncated copy")
    code, _, err = run_cli(TRAIN + ["-o", str(out), "--resume"], capsys)
    line = _one_line(code, err)
    assert "not a readable checkpoint" in line and "delete this file and train without --resume" in line
    ckpt.unlink()
    code, _, err = run_cli(TRAIN + ["-o", str(out)], capsys)
    assert code == 0 and out.is_file(), err


def _edited_checkpoint(path, edit_state=None, edit_arrays=None):
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    state = json.loads(str(arrays["state"]))
    if edit_state:
        edit_state(state)
    if edit_arrays:
        edit_arrays(arrays)
    arrays["state"] = np.array(json.dumps(state))
    np.savez(path, **arrays)


@pytest.mark.parametrize(("edit_state", "edit_arrays", "needle"), [
    (lambda s: s.update(epochs_done=0, position={"batches_done": 1}), None, "in-epoch position lacks rng, seen"),
    (lambda s: s.update(epochs_done=0, position={"batches_done": 1, "rng": {"x": 1}, "seen": 1, "correct": 0,
                                                 "loss_sum": 1.0}), None, "generator state"),
    (lambda s: s.update(history="abc"), None, "history is not a list"),
    (lambda s: s.update(identity="abc"), None, "identity or config is not a record"),
    (lambda s: s.update(epochs_done=-5), None, "epochs_done is -5"),
    (None, lambda a: a["p/conv1/w"].__setitem__((0, 0), np.nan), "p/conv1/w holds values that are not finite"),
])
def test_an_edited_or_damaged_checkpoint_is_refused_by_name(tmp_path, capsys, edit_state, edit_arrays, needle):
    """A checkpoint whose zip is sound but whose record is not what a training writes ended in a KeyError or
    AttributeError traceback, trained from epoch -5, or exported NaN weights as a workload (numpy warnings)."""
    out = tmp_path / "w.npz"
    assert run_cli(TRAIN + ["-o", str(out)], capsys)[0] == 0
    out.unlink()
    _edited_checkpoint(tmp_path / "w.npz.ckpt.npz", edit_state, edit_arrays)
    longer = [("2" if a == "1" and TRAIN[i - 1] == "--epochs" else a) for i, a in enumerate(TRAIN)]
    code, _, err = run_cli(longer + ["-o", str(out), "--resume"], capsys)
    line = _one_line(code, err)
    assert "not a checkpoint a training wrote" in line and needle in line, line
    assert not out.exists()


def test_a_second_training_into_the_same_outputs_is_refused_while_the_first_runs(tmp_path, capsys, monkeypatch):
    """The same command started twice (or its --resume while it ran) trained both: before the first checkpoint
    nothing stopped the second, whose checkpoints and workload silently replaced the first's. A lock held for the
    run refuses it in one line; the lock goes when the run ends, and a dead run's lock is taken over."""
    import subprocess
    import sys


    out = tmp_path / "w.npz"
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        run_lock.lock_path(out).write_text(str(holder.pid))  # a live training holding -o
        code, _, err = run_cli(TRAIN + ["-o", str(out)], capsys)
        assert f"-o: another training (process {holder.pid}) is writing it" in _one_line(code, err)
        assert sorted(p.name for p in tmp_path.iterdir()) == []
        run_lock.lock_path(Path(str(out) + ".ckpt.npz")).write_text(str(holder.pid))
        code, _, err = run_cli(TRAIN + ["-o", str(out), "--resume"], capsys)
        assert "--checkpoint: another training" in _one_line(code, err)
    finally:
        holder.kill()
        holder.wait()
    code, _, err = run_cli(TRAIN + ["-o", str(out)], capsys)  # its process gone: the stale locks are taken over
    assert code == 0 and out.is_file(), err
    assert not run_lock.lock_path(out).exists() and not run_lock.lock_path(Path(str(out) + ".ckpt.npz")).exists()


def test_an_output_that_is_a_device_is_refused_before_its_checkpoint_lands_beside_it(tmp_path, capsys):
    """`-o /dev/null` wrote the workload into the device and its checkpoint as the file /dev/null.ckpt.npz."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    code, _, err = run_cli(["train", "--dataset", "synthetic", "--epochs", "1", "-o", str(fifo)], capsys)
    assert code == 2 and "-o: is not a regular file (a device or a pipe)" in err and "give a file path" in err
    assert not Path(str(fifo) + ".ckpt.npz").exists()


def test_one_epoch_whose_mean_loss_holds_its_first_batches_is_no_divergence():
    """A one-epoch ATSN run on an image folder scored 100% (92% while training) and was told "the final epoch's
    loss 2.289 is above twice a uniform guess's ln 3: the training diverged or collapsed": a first epoch's mean
    holds the untrained network's first batches. Alone, it says so only beside an accuracy near chance."""
    from satasim_atsn.train.training_warnings import training_warnings

    learned = [{"epoch": 1, "loss": 2.2891, "train_acc": 0.9233, "test_acc": 1.0}]
    assert training_warnings(learned, 1.0, 3, 60, augment=True) == []
    collapsed = training_warnings([{"epoch": 1, "loss": 2.2891, "train_acc": 0.34, "test_acc": 0.35}], 0.35, 3, 60)
    assert len(collapsed) == 2 and "above twice a uniform guess's ln 3 = 1.099" in collapsed[0]
    assert "35.00% on 60 test images" in collapsed[1]
    later = [{"epoch": 1, "loss": 1.0}, {"epoch": 2, "loss": 2.2891}]  # a later epoch's mean is judged as it is
    assert "above twice" in training_warnings(later, 1.0, 3, 60)[0]


def test_a_killed_trainings_lock_is_taken_over_when_its_process_id_is_reused(tmp_path, capsys):
    """A SIGKILLed training leaves its lock; once another program got its process id (PID 1 in a container, or any
    id after many processes), every later training into the same outputs was refused, "another training (process
    N) is writing it; wait for that training to end", for ever. The lock also records the process's start time."""
    import subprocess
    import sys

    from satasim_atsn.train import trainer

    out = tmp_path / "w.npz"
    ckpt = Path(str(out) + ".ckpt.npz")
    with trainer.training_lock(ckpt, out):  # as a training takes them; kept below as a SIGKILL leaves them
        left = {path: run_lock.lock_path(path).read_text() for path in (ckpt, out)}
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])  # the id's new owner
    try:
        for path, text in left.items():
            run_lock.lock_path(path).write_text(text.replace(str(os.getpid()), str(holder.pid), 1))
        code, _, err = run_cli(TRAIN + ["-o", str(out)], capsys)
        assert code == 0 and out.is_file(), err
    finally:
        holder.kill()
        holder.wait()
    assert not run_lock.lock_path(out).exists() and not run_lock.lock_path(ckpt).exists()


def test_fewer_evaluated_images_than_classes_are_not_judged_against_chance():
    """--eval-images 1 with 12 classes warned that the network was 'not clearly above the 100.00% of always
    predicting the largest class' (a class of one image, 'the test classes are unbalanced'): no network can score
    above 100%, and 3 images of 4 classes named one of three tied classes the largest."""
    from satasim_atsn.train.training_warnings import training_warnings

    history = [{"loss": 1.0}]
    assert training_warnings(history, 0.0, 12, 1, labels=np.array([5]), predicted=np.array([3])) == []
    assert training_warnings(history, 1 / 3, 4, 3, labels=np.array([0, 1, 3]), predicted=np.array([0, 0, 2])) == []
    # from as many images as classes on, the rules hold as before
    assert "near the 25.00% of a guess" in training_warnings(history, 0.25, 4, 4, labels=np.arange(4),
                                                             predicted=np.array([0, 0, 1, 2]))[0]


@pytest.mark.parametrize("asked", [1, 3])
def test_fewer_evaluated_images_than_classes_are_noted(tmp_path, capsys, asked):
    code, _, err = run_cli([*TRAIN, "--eval-images", str(asked), "-o", str(tmp_path / "w.npz"), "--json",
                            str(tmp_path / "r.json")], capsys)  # the synthetic set has 4 classes
    assert code == 0 and err == ""
    notes = json.loads((tmp_path / "r.json").read_text())["notes"]
    assert len(notes) == 1 and notes[0].startswith(f"--eval-images {asked}: {asked} test image")
    assert "fewer than the 4 classes" in notes[0] and "pass --eval-images 4 or more" in notes[0]
    assert "warnings" not in read_workload(tmp_path / "w.npz").meta["provenance"] or not any(
        "largest class" in w for w in read_workload(tmp_path / "w.npz").meta["provenance"]["warnings"])


def test_a_test_split_smaller_than_its_classes_says_the_fix_is_the_split(tmp_path):
    """With 3 test images of 4 classes, 'pass --eval-images 4 or more, or leave it out' would not help."""
    data = (synthetic("train", 64), synthetic("test", 3))
    for asked in (None, 2):
        summary = train_model(_cfg(epochs=1, eval_images=asked, test_images=3), tmp_path / f"w{asked}.npz",
                              quiet=True, data=data)
        assert any("fewer than the 4 classes" in n and "give the test split an image of each class" in n
                   for n in summary["notes"]), summary["notes"]


def test_tied_largest_classes_are_named_as_such():
    """15 evaluated images of 10 classes (--eval-images 15): five classes hold 2 each, and the warning named one of
    them 'the largest class'."""
    from satasim_atsn.train.training_warnings import training_warnings

    labels = np.repeat(np.arange(10), [2, 2, 2, 2, 2, 1, 1, 1, 1, 1])
    varied = np.arange(15) % 10
    tied = training_warnings([{"loss": 2.0}], 0.1333, 10, 15, labels=labels, predicted=varied)
    assert len(tied) == 1 and "of always predicting one of the 5 largest classes (e.g. 0)" in tied[0]
    single = training_warnings([{"loss": 2.0}], 0.1333, 10, 14, labels=np.r_[np.zeros(5, int), np.arange(1, 10)],
                               predicted=varied[:14])
    assert len(single) == 1 and "the largest class, 0 " in single[0]


def test_a_refused_resume_prints_its_error_alone_not_after_a_note(tmp_path, capsys):
    """The '--test-images 1000: the test split has 128 images' note was printed before the checkpoint was read, so
    a resume the checkpoint refuses (another --seed, a workload given as the checkpoint) gave two lines."""
    base = ["train", "--dataset", "synthetic", "--epochs", "1", "--train-subset", "64", "-o", str(tmp_path / "s.npz")]
    with pytest.raises(SystemExit) as done:
        main(base)  # the test split holds fewer images than the default --test-images: a note
    assert done.value.code == 0 and "note: --test-images 1000" in capsys.readouterr().err
    for extra in (["--seed", "3", "--resume"], ["--checkpoint", str(tmp_path / "s.npz"), "--resume"]):
        with pytest.raises(SystemExit) as done:
            main([*base[:-2], "-o", str(tmp_path / "again.npz"), *extra] if "--checkpoint" in extra else
                 [*base, *extra])
        err = capsys.readouterr().err
        assert done.value.code == 2 and err.startswith("satasim: error: ") and err.count("\n") == 1, err


def test_a_dead_lock_of_another_user_that_cannot_be_removed_does_not_stop_a_training(tmp_path, monkeypatch):
    """A pip-installed tool is run by several users: one's SIGKILLed training left its lock in /tmp, whose sticky
    bit refuses another user's unlink, and that user's training into the same outputs ended in a PermissionError
    traceback. A dead lock that cannot be taken over is left alone (unguarded, as with no temp folder)."""
    from satasim_atsn.train import trainer

    out = tmp_path / "w.npz"
    ckpt = Path(str(out) + ".ckpt.npz")
    theirs = run_lock.lock_path(out)
    theirs.write_text("999999999 1")  # no such process
    real_unlink = Path.unlink

    def sticky(path, *args, **kwargs):
        if path == theirs:
            raise PermissionError(1, "Operation not permitted", str(path))
        return real_unlink(path, *args, **kwargs)

    monkeypatch.setattr(Path, "unlink", sticky)
    try:
        with trainer.training_lock(ckpt, out):
            assert run_lock.lock_path(ckpt).read_text().startswith(f"{os.getpid()}")  # the other one is still taken
        assert theirs.read_text() == "999999999 1" and not run_lock.lock_path(ckpt).exists()
    finally:
        real_unlink(theirs, missing_ok=True)
