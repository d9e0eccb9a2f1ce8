"""Every note a command prints is in its --json too (README: "with the notes it prints"): train, evaluate and the
workload commands that print notes (stats, build), each without the "note: " prefix."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_statistical import overlapping_pool_files
from test_train_cli import run_cli

from satasim_atsn.workload.datasets import write_idx

TRAIN = ["train", "--dataset", "synthetic", "--method", "snn", "--epochs", "1", "--width", "0.5", "--batch-size", "32",
         "--quiet", "--no-augment"]


def test_train_json_holds_the_notes_it_prints(tmp_path, capsys):
    """`--train-subset 100000` printed a note that the JSON left out; --quiet drops the line, not the JSON's."""
    report = tmp_path / "w.json"
    code, _, err = run_cli(TRAIN + ["--train-subset", "100000", "--test-images", "5000", "-o", str(tmp_path / "w.npz"),
                                    "--json", str(report)], capsys)
    assert code == 0, err
    notes = json.loads(report.read_text())["notes"]
    assert len(notes) == 2 and notes[0].startswith("--train-subset 100000: the training split has ")
    assert notes[1].startswith("--test-images 5000: the test split has ") and "all of them are used" in notes[1]
    plain = tmp_path / "p.json"
    code, _, err = run_cli(TRAIN + ["--test-images", "16", "-o", str(tmp_path / "p.npz"), "--json", str(plain)],
                           capsys)
    assert code == 0 and json.loads(plain.read_text())["notes"] == []


def test_evaluate_json_holds_the_cross_dataset_note(tmp_path, capsys):
    """A workload trained on MNIST scored on an image folder: the note was printed (not with -q) and never stored."""
    image = pytest.importorskip("PIL.Image")
    rng = np.random.default_rng(0)
    data = tmp_path / "mn"
    data.mkdir()
    for prefix, n in (("train", 40), ("t10k", 10)):
        write_idx(data / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 12, 12), dtype=np.uint8))
        write_idx(data / f"{prefix}-labels-idx1-ubyte", (np.arange(n) % 10).astype(np.uint8))
    for split in ("train", "test"):
        for c in range(10):
            (tmp_path / "f" / split / f"c{c}").mkdir(parents=True)
            image.fromarray(rng.integers(0, 256, (12, 12), dtype=np.uint8), "L").save(tmp_path / "f" / split /
                                                                                      f"c{c}" / "0.png")
    out = tmp_path / "w.npz"
    code, _, err = run_cli(["train", "--dataset", "mnist", "--data-dir", str(data), "--method", "snn", "--epochs", "1",
                            "--width", "0.25", "--test-images", "10", "--quiet", "-o", str(out)], capsys)
    assert code == 0, err
    for extra, name in (([], "e.json"), (["--dataset", "imagefolder", "--data-dir", str(tmp_path / "f")], "f.json")):
        code, _, err = run_cli(["evaluate", str(out), "-q", "--json", str(tmp_path / name)] + extra, capsys)
        assert code == 0, err
    assert json.loads((tmp_path / "e.json").read_text())["notes"] == []
    notes = json.loads((tmp_path / "f.json").read_text())["notes"]
    assert len(notes) == 1 and notes[0].startswith("the workload was trained on mnist and is scored on imagefolder")


def test_workload_build_and_stats_json_hold_the_pool_notes(tmp_path, capsys):
    """A pool_rate_ratio the draw cannot keep is noted on the terminal; its --json now holds the note too."""
    net, table = overlapping_pool_files(tmp_path)
    code, out, err = run_cli(["workload", "build", "--network", str(net), "--rates", str(table), "--dataset", "d",
                              "-o", str(tmp_path / "b.npz"), "--json", str(tmp_path / "b.json")], capsys)
    assert code == 0, err
    notes = json.loads((tmp_path / "b.json").read_text())["notes"]
    assert len(notes) == 1 and notes[0].startswith("pool_rate_ratio gives pool1 0.24 on average")
    assert f"note: {notes[0]}" in out
    code, out, err = run_cli(["workload", "build", "--network", str(net), "--rate", "0.2", "--timesteps", "2",
                              "-o", str(tmp_path / "r.npz"), "--json", str(tmp_path / "r.json")], capsys)
    assert code == 0 and json.loads((tmp_path / "r.json").read_text())["notes"] == []


def test_workload_stats_json_has_its_notes_list(tmp_path, capsys):
    """`workload stats --json` carries `notes` (what it prints as "note: ..."), empty when nothing was noted."""
    from satasim_atsn.train.config import TrainConfig
    from satasim_atsn.train.trainer import train_model
    from satasim_atsn.workload.datasets import synthetic

    out = tmp_path / "w.npz"
    train_model(TrainConfig(model="vgg_small", dataset="synthetic", method="snn", epochs=1, batch_size=32,
                            test_images=8, width=0.25, seed=1), out, quiet=True,
                data=(synthetic("train", 32), synthetic("test", 8)))
    code, out_text, err = run_cli(["workload", "stats", str(out), "-o", str(tmp_path / "t.npz"), "--json",
                                   str(tmp_path / "t.json")], capsys)
    assert code == 0, err
    numbers = json.loads((tmp_path / "t.json").read_text())
    assert numbers["notes"] == [line.strip().removeprefix("note: ") for line in out_text.splitlines()
                                if line.strip().startswith("note: ")]


def test_evaluate_help_says_quiet_drops_the_note(capsys):
    """evaluate -q drops the cross-dataset note line (the JSON keeps it); its help said only "no progress bar"."""
    code, out, _ = run_cli(["evaluate", "--help"], capsys)
    quiet = " ".join(out.split("--quiet")[1].split())
    assert code == 0 and quiet.startswith("no progress bar and no note line") and "--json keeps the notes" in quiet
