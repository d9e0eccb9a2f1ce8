"""`satasim train --init-from CKPT`: a training that starts from another training's weights (fine-tuning), records
where it started, resumes like any training, and refuses a checkpoint of another network or another set of classes."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from test_train_guards import DATA
from test_train_guards import _cfg as guards_cfg

from satasim_atsn.cli import main
from satasim_atsn.errors import TrainError
from satasim_atsn.train.checkpoints import read_initial_weights, start_from
from satasim_atsn.train.config import TrainConfig
from satasim_atsn.train.network import Network
from satasim_atsn.train.trainer import train_model
from satasim_atsn.workload.datasets import Dataset
from satasim_atsn.workload.format import read_workload


def _cfg(**kw) -> TrainConfig:
    """test_train_guards' small training, one epoch unless told."""
    return guards_cfg(**{"epochs": 1, **kw})


def _start(tmp_path: Path, **kw) -> Path:
    """A first training; returns its checkpoint."""
    train_model(_cfg(**kw), tmp_path / "first.npz", quiet=True, data=DATA)
    return tmp_path / "first.npz.ckpt.npz"


def _arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as z:
        return {k: z[k] for k in z.files if k.startswith(("p/", "r/"))}


def test_the_network_starts_with_the_checkpoints_weights_and_statistics(tmp_path):
    ckpt = _start(tmp_path)
    config = _cfg(init_from=str(ckpt))
    state, arrays = read_initial_weights(config)
    from satasim_atsn.train.models import build_spec

    spec = build_spec("vgg_small", DATA[0].input_shape, DATA[0].num_classes, "accumulate", 0.5, False)
    net = Network(spec, 4, seed=99, direct_input=True)
    fresh = {k: v.copy() for k, v in net.state_arrays().items()}
    assert start_from(state, arrays, net, config, None) == []  # same recipe: nothing to note
    loaded, stored = net.state_arrays(), _arrays(ckpt)
    assert loaded.keys() == stored.keys()
    assert all(np.array_equal(loaded[k], stored[k]) for k in stored)
    assert any(not np.array_equal(fresh[k], stored[k]) for k in stored)  # the seed's weights were replaced


def test_a_fine_tune_differs_from_a_fresh_training_and_records_its_start(tmp_path):
    ckpt = _start(tmp_path)
    first = json.loads(str(np.load(ckpt)["state"]))
    tuned = train_model(_cfg(init_from=str(ckpt), lr=0.01), tmp_path / "tuned.npz", quiet=True, data=DATA)
    fresh = train_model(_cfg(lr=0.01), tmp_path / "fresh.npz", quiet=True, data=DATA)
    record = tuned["config"]["init_from"]
    assert record["file"] == "first.npz.ckpt.npz"
    assert record["sha256"] == hashlib.sha256(ckpt.read_bytes()).hexdigest()
    assert (record["epochs_done"], record["batches_done"]) == (1, 0)
    assert record["history"] == first["history"] and record["config"] == first["config"]
    assert "init_from" not in fresh["config"]  # a training from scratch keeps its bytes
    provenance = read_workload(tmp_path / "tuned.npz").meta["provenance"]
    assert provenance["config"]["init_from"] == record
    w_tuned, w_fresh = (read_workload(tmp_path / n).arrays["w/conv1"] for n in ("tuned.npz", "fresh.npz"))
    assert not np.array_equal(w_tuned, w_fresh)
    # the same fine-tune again (the same name: the workload records it): the same bytes
    (tmp_path / "again").mkdir()
    train_model(_cfg(init_from=str(ckpt), lr=0.01), tmp_path / "again" / "tuned.npz", quiet=True, data=DATA)
    assert (tmp_path / "again" / "tuned.npz").read_bytes() == (tmp_path / "tuned.npz").read_bytes()


def test_a_fine_tune_of_another_recipe_is_allowed_and_noted(tmp_path):
    ckpt = _start(tmp_path)  # method snn: CE loss, accumulating output layer
    tuned = train_model(_cfg(init_from=str(ckpt), method="atsn", timesteps=2), tmp_path / "t.npz", quiet=True,
                        data=DATA)
    notes = " | ".join(tuned["notes"])
    assert "trained with method 'snn', this fine-tune uses 'atsn'" in notes
    assert "timesteps 4" in notes and "uses 2" in notes


def test_a_resumed_fine_tune_keeps_its_start(tmp_path):
    ckpt = _start(tmp_path)
    out = tmp_path / "t.npz"
    first = train_model(_cfg(init_from=str(ckpt)), out, quiet=True, data=DATA)
    other = tmp_path / "other.npz.ckpt.npz"
    other.write_bytes(ckpt.read_bytes() + b"")  # same bytes: accepted
    resumed = train_model(_cfg(epochs=2), out, resume=True, quiet=True, data=DATA)  # --init-from left out
    assert resumed["config"]["init_from"] == first["config"]["init_from"]
    again = train_model(_cfg(epochs=2, init_from=str(other)), out, resume=True, quiet=True, data=DATA)
    assert again["config"]["init_from"] == first["config"]["init_from"]
    train_model(_cfg(seed=3), tmp_path / "third.npz", quiet=True, data=DATA)
    with pytest.raises(TrainError, match=r"third\.npz\.ckpt\.npz: --init-from: is not the checkpoint this training "
                                         r"started from \(first\.npz\.ckpt\.npz, sha256 [0-9a-f]{16}\.\.\.\)"):
        train_model(_cfg(epochs=2, init_from=str(tmp_path / "third.npz.ckpt.npz")), out, resume=True, quiet=True,
                    data=DATA)
    with pytest.raises(TrainError, match=r"third\.npz\.ckpt\.npz: --init-from: the checkpoint's training started "
                                         r"from scratch, not from first\.npz\.ckpt\.npz"):
        train_model(_cfg(epochs=2, seed=3, init_from=str(ckpt)), tmp_path / "third.npz", resume=True, quiet=True,
                    data=DATA)


def test_a_checkpoint_of_another_network_or_classes_is_refused(tmp_path):
    ckpt = _start(tmp_path)
    with pytest.raises(TrainError, match=r"first\.npz\.ckpt\.npz: --width: the checkpoint is of width=0\.5, this run "
                                         r"has 0\.25: its weights do not fit this network"):
        train_model(_cfg(init_from=str(ckpt), width=0.25), tmp_path / "t.npz", quiet=True, data=DATA)

    def named(data, names):
        return Dataset("imagefolder", data.split, data.x, data.y, data.num_classes, "d", names)

    folders = tmp_path / "folders"
    folders.mkdir()
    train_model(_cfg(dataset="imagefolder"), folders / "a.npz", quiet=True,
                data=tuple(named(d, ("c0", "c1", "c2", "c3")) for d in DATA))
    with pytest.raises(TrainError, match=r"--data-dir \(class folders\): the checkpoint's output layer was trained "
                                         r"on the classes \['c0', 'c1', 'c2', 'c3'\], this run's are"):
        train_model(_cfg(dataset="imagefolder", init_from=str(folders / "a.npz.ckpt.npz")), folders / "b.npz",
                    quiet=True, data=tuple(named(d, ("c0", "c1", "c3", "c2")) for d in DATA))
    assert sorted(p.name for p in folders.iterdir()) == ["a.npz", "a.npz.ckpt.npz"]  # nothing written


@pytest.mark.parametrize(("target", "message"), [
    (lambda d: d / "missing.ckpt.npz", "--init-from: no such checkpoint"),
    (lambda d: d, "--init-from: is a directory"),
    (lambda d: d / "first.npz", "--init-from: a workload, not a checkpoint"),
])
def test_what_is_not_a_checkpoint_is_refused_in_one_line(tmp_path, capsys, target, message):
    _start(tmp_path)
    with pytest.raises(SystemExit) as info:
        main(["train", "--dataset", "synthetic", "--method", "snn", "--epochs", "1", "--width", "0.5", "--quiet",
              "--init-from", str(target(tmp_path)), "-o", str(tmp_path / "t.npz")])
    err = capsys.readouterr().err.strip().splitlines()
    assert info.value.code == 2 and len(err) == 1 and message in err[0], err
    assert not (tmp_path / "t.npz").exists() and not (tmp_path / "t.npz.ckpt.npz").exists()


def test_outputs_over_the_starting_checkpoint_are_refused(tmp_path, capsys):
    ckpt = _start(tmp_path)
    before = ckpt.read_bytes()
    for extra, needle in ((["-o", str(ckpt)], "-o: is the checkpoint --init-from reads"),
                          (["-o", str(tmp_path / "t.npz"), "--json", str(ckpt)],
                           "--json: is the checkpoint --init-from reads"),
                          (["-o", str(tmp_path / "t.npz"), "--checkpoint", str(tmp_path / "c.npz")], None)):
        if needle is None:  # its own checkpoint path: refused by the trainer, which says why
            (tmp_path / "c.npz").write_bytes(before)
            extra = ["-o", str(tmp_path / "t.npz"), "--checkpoint", str(tmp_path / "c.npz")]
            needle = "--init-from: is this training's own checkpoint"
            start = str(tmp_path / "c.npz")
        else:
            start = str(ckpt)
        with pytest.raises(SystemExit) as info:
            main(["train", "--dataset", "synthetic", "--epochs", "1", "--quiet", "--init-from", start, *extra])
        err = capsys.readouterr().err.strip().splitlines()
        assert info.value.code == 2 and len(err) == 1 and needle in err[0], err
    assert ckpt.read_bytes() == before
