"""The STBP training loop: data, augmentation, SGD with momentum and cosine LR, checkpoints, export.

Determinism: the network is initialised from ``seed`` and epoch e shuffles and augments with
a generator seeded by (seed, e), so a resumed run repeats the uninterrupted one on the same machine.
Checkpoints are written atomically after every epoch and every ``checkpoint_minutes`` inside an
epoch (with the generator's state), so a killed run loses at most those minutes; a NaN loss stops
training with the last good checkpoint kept.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import os
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO

import numpy as np

from satasim_atsn import __version__
from satasim_atsn.errors import DatasetError, TrainError
from satasim_atsn.fileio import NPZ_READ_ERRORS, atomic_write_bytes, file_sha256, process_alive, text_name
from satasim_atsn.snn.exit_policies import CL_INIT_DEFAULT, TAU_CL_DEFAULT, THETA_DEFAULT
from satasim_atsn.snn.forward import forward_progress
from satasim_atsn.train.evaluation import evaluate_with_predictions, float_logits, policy_table
from satasim_atsn.train.export import export_network, int8_grid_weights
from satasim_atsn.train.losses import LOSSES, loss_and_grad
from satasim_atsn.train.models import (
    METHODS,
    MODELS,
    build_spec,
    check_input_readers,
    is_network_file,
    model_label,
    network_file,
    output_mode_notes,
    unknown_model,
)
from satasim_atsn.train.network import Network
from satasim_atsn.workload.datasets import SPIKE_FRAME_DATASETS, Dataset, balanced_sample, load_dataset
from satasim_atsn.workload.format import validate, write_workload
from satasim_atsn.workload.npz import read_npz
from satasim_atsn.workload.schema import OUTPUT_MODES

F32 = np.float32


@dataclass
class TrainConfig:
    """Everything that determines a training run (stored in checkpoints and provenance)."""

    model: str = "vgg_small"
    dataset: str = "fashion-mnist"
    method: str = "atsn"
    timesteps: int = 4
    epochs: int = 10
    batch_size: int = 64
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    seed: int = 0
    train_subset: int | None = None
    test_images: int = 1000
    eval_images: int | None = None
    image_size: int | None = None
    loss: str | None = None
    output: str | None = None
    width: float = 1.0
    cl_init: float = CL_INIT_DEFAULT
    tau_cl: float = TAU_CL_DEFAULT
    theta: float = THETA_DEFAULT
    augment: bool = True
    #: --quant-aware: every training step's forward and backward run on the weights moved to the int8 export's grid
    #: (straight-through: the float weights take the update), so the workload scores what the float network does
    quant_aware: bool = False
    data_dir: str | None = field(default=None, compare=False)
    checkpoint_minutes: float = field(default=10.0, compare=False)
    #: --init-from: a checkpoint whose weights start this training (fine-tuning); its record (file name, digest,
    #: what trained it) is ``init_record``, set when the file is read, and stored with the config
    init_from: str | None = field(default=None, compare=False)
    init_record: dict | None = field(default=None, init=False, compare=False, repr=False)
    _model_label: str | None = field(default=None, init=False, compare=False, repr=False)

    def model_name(self) -> str:
        """The model as provenance and checkpoints name it (train.models.model_label), read once: a network
        file edited or removed while it trains must not fail the checkpoints hours later."""
        if self._model_label is None:
            self._model_label = model_label(self.model, self.width)
        return self._model_label

    def resolved(self) -> tuple[str, str]:
        """(loss, output mode) after applying the method's defaults and the overrides."""
        method = METHODS[self.method]
        return self.loss or method.loss, self.output or method.output_mode

    def check(self) -> None:
        """Reject impossible settings with a TrainError naming the option."""
        if is_network_file(self.model):  # read and checked now: a bad file is refused before the data load
            spec = network_file(self.model)  # read once: the label names the file that was checked
            check_input_readers(spec, framed=self.dataset in SPIKE_FRAME_DATASETS)
            if self._model_label is None:
                self._model_label = model_label(self.model, self.width, spec)
        elif self.model not in MODELS:
            raise unknown_model(self.model)
        if self.method not in METHODS:
            raise TrainError.at(None, "--method", f"unknown method {self.method!r}", f"use one of {', '.join(METHODS)}")
        if self.loss is not None and self.loss not in LOSSES:
            raise TrainError.at(None, "--loss", f"unknown loss {self.loss!r}", f"use one of {', '.join(LOSSES)}")
        if self.output is not None and self.output not in OUTPUT_MODES:
            file_like = str(self.output).lower().endswith((".npz", ".json", "/")) or "/" in str(self.output)
            raise TrainError.at(None, "--output", f"unknown output {self.output!r}",
                                f"use one of {', '.join(OUTPUT_MODES)}" + (
                                    " (--output is the output layer's mode; the workload file is -o/--out)"
                                    if file_like else ""))
        for key, value, low in (("--timesteps", self.timesteps, 1), ("--epochs", self.epochs, 1),
                                ("--batch-size", self.batch_size, 1), ("--test-images", self.test_images, 1)):
            if value < low:
                raise TrainError.at(None, key, f"must be at least {low}, got {value}", "fix the value")
        if self.timesteps > 1024:  # the workload format's limit, checked before the training rather than at export
            raise TrainError.at(None, "--timesteps", f"must be at most 1024, got {self.timesteps}", "fix the value")
        for key, value in (("--train-subset", self.train_subset), ("--eval-images", self.eval_images),
                           ("--image-size", self.image_size)):
            if value is not None and value < 1:
                raise TrainError.at(None, key, f"must be positive, got {value}", "fix the value or leave it out")
        if not (self.checkpoint_minutes > 0 and math.isfinite(self.checkpoint_minutes)):
            raise TrainError.at(None, "--checkpoint-minutes", f"must be a positive finite number of minutes, got "
                                f"{self.checkpoint_minutes}", "try 10 (a checkpoint is also written after each epoch; "
                                "a value longer than an epoch, e.g. 100000, writes none inside one)")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise TrainError.at(None, "--lr", f"must be a positive finite number, got {self.lr}", "try 0.1")
        if not 0 < self.width <= 4:  # nan too
            raise TrainError.at(None, "--width", f"must be in (0, 4], got {self.width}", "1.0 is the paper's network")
        if self.seed < 0:
            raise TrainError.at(None, "--seed", f"must be a non-negative integer, got {self.seed}", "e.g. --seed 0")
        if self.data_dir is not None and self.dataset == "synthetic":
            raise TrainError.at(None, "--data-dir", "the synthetic dataset is generated, not read from a directory",
                                "drop --data-dir")
        if self.image_size is not None and self.dataset != "imagefolder":
            raise TrainError.at(None, "--image-size", f"resizes image folders only; {self.dataset} images keep "
                                "their size", "drop --image-size")
        for key, value in (("--cl-init", self.cl_init), ("--tau-cl", self.tau_cl), ("--theta", self.theta)):
            if not (isinstance(value, (int, float)) and 0 < value <= 1):
                raise TrainError.at(None, key, f"must be in (0, 1], got {value}",
                                    "the paper's defaults: --cl-init 0.999 --tau-cl 0.999 --theta 0.1")

    def public(self) -> dict:
        """The config as stored in provenance (no machine-specific paths)."""
        d = asdict(self)
        d.pop("data_dir")
        d.pop("checkpoint_minutes")
        d.pop("_model_label")
        d.pop("init_from")
        if not d["quant_aware"]:  # a training without it keeps the bytes it had before the option
            d.pop("quant_aware")
        if d.pop("init_record") is not None:  # a training from scratch keeps its bytes
            d["init_from"] = self.init_record
        d["loss"], d["output"] = self.resolved()
        d["model"] = self.model_name()  # a network file by its name and layers, not its path
        return d


def cosine_lr(base_lr: float, step: int, total_steps: int) -> float:
    """Cosine annealing from ``base_lr`` to 0 over ``total_steps``."""
    return 0.5 * base_lr * (1.0 + math.cos(math.pi * min(step, total_steps) / max(total_steps, 1)))


class SGD:
    """SGD with momentum and weight decay on conv/linear weights (not on BN or biases)."""

    def __init__(self, net: Network, momentum: float, weight_decay: float) -> None:
        self.net, self.momentum, self.weight_decay = net, momentum, weight_decay
        self.buffers = {n: {k: np.zeros_like(v) for k, v in p.items()} for n, p in net.params.items()}

    def step(self, grads: dict[str, dict[str, np.ndarray]], lr: float) -> None:
        """One update: v = m*v + g (+ wd*w); w -= lr*v."""
        for name, group in grads.items():
            params, bufs = self.net.params[name], self.buffers[name]
            for key, g in group.items():
                if key == "w" and self.weight_decay:
                    g = g + F32(self.weight_decay) * params[key]
                buf = bufs[key]
                buf *= F32(self.momentum)
                buf += g
                params[key] -= F32(lr) * buf

    def state_arrays(self) -> dict[str, np.ndarray]:
        """Momentum buffers for checkpoints."""
        return {f"m/{n}/{k}": v for n, b in self.buffers.items() for k, v in b.items()}

    def load_state_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        """Restore momentum buffers."""
        for n, b in self.buffers.items():
            for k in b:
                b[k] = arrays[f"m/{n}/{k}"].astype(F32)


# ------------------------------------------------------------------------------------------
# data
# ------------------------------------------------------------------------------------------
def make_normaliser(mean: np.ndarray, std: np.ndarray, framed: bool) -> Callable[[np.ndarray], np.ndarray]:
    """uint8 [B, C, H, W] -> float32 [B, H, W, C] normalised; spike frames [B, T, C, H, W] -> [T, B, H, W, C]."""
    m = (np.asarray(mean) * 255.0).astype(F32)
    s = (np.asarray(std) * 255.0).astype(F32)

    def normalise(x: np.ndarray) -> np.ndarray:
        """Normalise one batch into the trainer's channel-last layout."""
        if framed:
            return np.ascontiguousarray(np.transpose(x, (1, 0, 3, 4, 2)), dtype=F32)
        return (np.transpose(x, (0, 2, 3, 1)).astype(F32) - m) / s

    return normalise


def augment(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random crop (zero padding 2 for <= 28 px, 4 above; ``side // 4`` when the smaller side is under 8 px) and
    horizontal flip of uint8 images."""
    if x.ndim == 5:  # spike frames: flip only
        flip = rng.random(x.shape[0]) < 0.5
        out = x.copy()
        out[flip] = out[flip][..., ::-1]
        return out
    n, c, h, w = x.shape
    # a tiny image (resnet19 takes 1 x 1) padded 2 kept its pixel in 1 crop of 25: the pad scales with its smaller
    # side below 8 px (1 for 4-7 px, none below 4); images of 8 px and more are cropped as they always were
    pad = (2 if h <= 28 else 4) if min(h, w) >= 8 else min(h, w) // 4
    padded = np.zeros((n, c, h + 2 * pad, w + 2 * pad), dtype=x.dtype)
    padded[:, :, pad:pad + h, pad:pad + w] = x
    dy = rng.integers(0, 2 * pad + 1, size=n)
    dx = rng.integers(0, 2 * pad + 1, size=n)
    flip = rng.random(n) < 0.5
    out = np.empty_like(x)
    for i in range(n):
        img = padded[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w]
        out[i] = img[:, :, ::-1] if flip[i] else img
    return out


# ------------------------------------------------------------------------------------------
# checkpoints
# ------------------------------------------------------------------------------------------
def data_identity(train: Dataset) -> dict:
    """What a checkpoint records of the training images: the class names (image folders) and a fingerprint of
    the training split's pixels and labels, so a resume on other images (another --data-dir, a re-extracted or
    edited folder) is refused instead of continuing, and exporting with, another dataset's input statistics."""
    digest = hashlib.sha256(repr((train.x.shape, str(train.x.dtype), train.y.shape, str(train.y.dtype))).encode())
    digest.update(np.ascontiguousarray(train.x).data)
    digest.update(np.ascontiguousarray(train.y).data)
    out: dict = {"train_data": f"{len(train)} images, sha256 {digest.hexdigest()[:16]}"}
    if list(train.class_names):
        out["class_names"] = list(train.class_names)
    return out


def _identity(config: TrainConfig, spec_names: list[str], data: dict | None = None) -> dict:
    loss, output = config.resolved()
    identity = {"model": config.model_name(), "method": config.method, "loss": loss,
                "output": output, "dataset": config.dataset, "timesteps": config.timesteps, "width": config.width,
                "layers": spec_names}
    return {**identity, **(data or {})}


#: config fields that fix the sequence of updates: a resumed run must keep them (``epochs`` may change on
#: purpose, which re-plans the cosine schedule; test, evaluation and exit settings only affect the export)
TRAJECTORY_FIELDS = ("seed", "batch_size", "lr", "momentum", "weight_decay", "train_subset", "augment", "image_size")
_OPTION = {"batch_size": "--batch-size", "train_subset": "--train-subset", "image_size": "--image-size",
           "augment": "--no-augment", "lr": "--lr", "seed": "--seed"}


def save_checkpoint(path: Path, net: Network, opt: SGD, config: TrainConfig, epochs_done: int, history: list,
                    position: dict | None = None, data_id: dict | None = None, resumes: list | None = None) -> None:
    """Atomically write parameters, momentum, BN statistics and progress.

    ``position`` marks a checkpoint inside epoch ``epochs_done + 1``: batches done, the epoch
    generator's state and the running sums, so that resuming repeats the uninterrupted run.
    ``resumes`` are the resumes that changed --epochs so far (:func:`resume_record`; kept only when any).
    """
    arrays = {**net.state_arrays(), **opt.state_arrays()}
    bad = [name for name, v in arrays.items() if v.dtype.kind == "f" and not np.isfinite(v).all()]
    if bad:  # never store a network that cannot be resumed from (the loss check comes before the update)
        epoch = epochs_done + 1 if position else epochs_done  # an end-of-epoch save counts its epoch as done
        raise TrainError.at(None, "loss", f"the network's state became non-finite ({bad[0]}, epoch "
                            f"{epoch}); training stopped, {_last_good(path)}", _diverged_fix(path))
    state = {"identity": _identity(config, [ly["name"] for ly in net.spec], data_id), "epochs_done": epochs_done,
             "config": config.public(), "history": history, "position": position}
    if resumes:  # a fresh training's checkpoint keeps its bytes
        state["resumes"] = resumes
    arrays["state"] = np.array(json.dumps(state))
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    try:
        atomic_write_bytes(path, buffer.getvalue())
    except OSError as error:
        raise TrainError.at(str(path), None, f"cannot write checkpoint ({error.strerror or error})",
                            "free disk space or choose another --checkpoint") from None


def _diverged_fix(path: Path) -> str:
    """The way out of a diverged run: a resumed run keeps its --lr (and would diverge the same way), so start over."""
    return (f"delete {path} and train again with a lower --lr" if path.is_file() else "train again with a lower --lr")


def _last_good(path: Path) -> str:
    """Where the last good checkpoint is, for an error that stops a training."""
    return f"the last good checkpoint is {path}" if path.is_file() else "no checkpoint was written yet"


# without --resume the same file would be refused as an earlier training's checkpoint: it must go first
_UNREADABLE_FIX = "pass the OUTPUT.ckpt.npz a training wrote, or delete this file and train without --resume"


def _checkpoint_state(path: Path) -> dict:
    """A checkpoint's ``state`` record (the file read by :func:`load_checkpoint` first, whose refusals name it)."""
    arrays = read_npz(path, str(path), TrainError, _UNREADABLE_FIX, keys=("state",), what="checkpoint")
    return json.loads(str(arrays["state"]))


def _require_checkpoint(path: Path) -> None:
    """A checkpoint file to resume from is there (checked before the data load, and again when read)."""
    if path.is_dir():
        raise TrainError.at(str(path), "--checkpoint", "is a directory", "name the checkpoint file (OUTPUT.ckpt.npz)")
    if not path.is_file():
        raise TrainError.at(str(path), None, "no checkpoint to resume from", "drop --resume or pass --checkpoint")


#: what a checkpoint is of (its identity), and the option that sets each; the network's layers and the class
#: folders' names are checked too, once the network is built and the data read
_IDENTITY_OPTIONS = {"model": "--model", "method": "--method", "loss": "--loss", "output": "--output",
                     "dataset": "--dataset", "timesteps": "--timesteps", "width": "--width"}


def _refuse_another_identity(path: Path, theirs: dict, mine: dict, keys: list[str]) -> None:
    """Refuse a checkpoint of another network or recipe: the first of ``keys`` whose value differs, named with its
    option."""
    options = {**_IDENTITY_OPTIONS, "layers": "--model/--width", "class_names": "--data-dir (class folders)"}
    for key in keys:
        if theirs.get(key) != mine[key]:
            raise TrainError.at(str(path), options[key], f"checkpoint is for {key}={theirs.get(key)!r}, this run has "
                                f"{mine[key]!r}", "resume with the same options or use another --checkpoint")


def load_checkpoint(path: Path, net: Network, opt: SGD, config: TrainConfig,
                    data_id: dict | None = None) -> tuple[int, list, dict | None]:
    """Restore a checkpoint of the same model/method/dataset; returns (epochs done, history, in-epoch position)."""
    _require_checkpoint(path)
    state, arrays = _read_checkpoint(path, "--checkpoint", _UNREADABLE_FIX)
    mine = _identity(config, [ly["name"] for ly in net.spec], data_id)
    theirs = state.get("identity", {})
    keys = [*_IDENTITY_OPTIONS, "layers"]
    keys += ["class_names"] if "class_names" in theirs and "class_names" in mine else []
    _refuse_another_identity(path, theirs, mine, keys)
    # the options first: --train-subset draws its images with --seed, so another seed or subset also changes the
    # training data's fingerprint, and the message must name the option, not --data-dir
    stored, current = state.get("config", {}) or {}, config.public()
    for key in TRAJECTORY_FIELDS:
        if key in stored and stored[key] != current[key]:
            raise TrainError.at(str(path), _OPTION.get(key, key), f"the checkpoint was trained with {key}="
                                f"{stored[key]!r}, this run has {current[key]!r}; the resumed run would not be the "
                                "one its provenance records", "resume with the same options (only --epochs and the "
                                "test, evaluation and exit options may change)")
    if bool(stored.get("quant_aware", False)) != config.quant_aware:  # absent before the option: off
        had = "with" if stored.get("quant_aware") else "without"
        raise TrainError.at(str(path), "--quant-aware", f"the checkpoint was trained {had} it, this run "
                            f"{'has' if config.quant_aware else 'has not'} it; the resumed run would not be the one "
                            "its provenance records", f"resume {had} --quant-aware")
    if "train_data" in theirs and "train_data" in mine and theirs["train_data"] != mine["train_data"]:
        raise TrainError.at(str(path), "--data-dir", f"the checkpoint was trained on other images "
                            f"({theirs['train_data']}; this run's training split: {mine['train_data']}): resuming "
                            "would continue it, and export it with the input statistics of, data it was not trained on",
                            "resume with the data the training started with, or train anew")
    try:
        net.load_state_arrays(arrays)
        opt.load_state_arrays(arrays)
    except (KeyError, ValueError) as error:
        raise TrainError.at(str(path), None, f"checkpoint does not match the network ({error})",
                            "use another --checkpoint") from None
    try:
        done, history, position = int(state["epochs_done"]), list(state.get("history", [])), state.get("position")
    except (KeyError, TypeError, ValueError):
        raise TrainError.at(str(path), "state", "checkpoint progress record is unreadable",
                            "delete it and train without --resume") from None
    return done, history, position


# --init-from: a training that starts from another training's weights (fine-tuning)
_INIT_FIX = "pass a checkpoint (OUTPUT.ckpt.npz) that a satasim training wrote"


def read_initial_weights(config: TrainConfig) -> tuple[dict, dict[str, np.ndarray]]:
    """The checkpoint ``--init-from`` names, read and checked before the data load (state, arrays); sets
    ``config.init_record``: the file's name and digest, how far its training had come and what trained it."""
    path = Path(config.init_from)
    if path.is_dir():
        raise TrainError.at(str(path), "--init-from", "is a directory", "name the checkpoint file (OUTPUT.ckpt.npz)")
    if not path.is_file():
        raise TrainError.at(str(path), "--init-from", "no such checkpoint", _INIT_FIX)
    state, arrays = _read_checkpoint(path, "--init-from", _INIT_FIX)
    position = state.get("position")
    config.init_record = {"file": text_name(path.name), "sha256": file_sha256(path),
                          "epochs_done": int(state["epochs_done"]),
                          "batches_done": int(position["batches_done"]) if position else 0,
                          "config": state.get("config") or {}, "history": list(state.get("history", []))}
    if state.get("resumes"):
        config.init_record["resumes"] = state["resumes"]
    return state, arrays


def start_from(state: dict, arrays: dict[str, np.ndarray], net: Network, config: TrainConfig,
               data_id: dict | None) -> list[str]:
    """Load the weights and BN statistics of the ``--init-from`` checkpoint (:func:`read_initial_weights`) into
    ``net`` (the momentum starts at zero and the cosine schedule anew, from --lr over --epochs); refused when it is
    of another network or another set of classes. Returns notes on what differs and is allowed (method, loss, output
    layer, T, dataset)."""
    path = str(config.init_from)
    theirs, mine = state.get("identity", {}), _identity(config, [ly["name"] for ly in net.spec], data_id)
    for key, option in (("model", "--model"), ("width", "--width"), ("layers", "--model/--width")):
        if theirs.get(key) != mine[key]:
            raise TrainError.at(path, option, f"the checkpoint is of {key}={theirs.get(key)!r}, this run has "
                                f"{mine[key]!r}: its weights do not fit this network",
                                f"fine-tune with {option} as the checkpoint's training had it, or start from scratch")
    if "class_names" in theirs and "class_names" in mine and theirs["class_names"] != mine["class_names"]:
        raise TrainError.at(path, "--data-dir (class folders)", f"the checkpoint's output layer was trained on the "
                            f"classes {theirs['class_names']}, this run's are {mine['class_names']}: its outputs "
                            "would name other classes", "fine-tune on data with the same class folders")
    try:
        net.load_state_arrays(arrays)
    except (KeyError, ValueError) as error:
        raise TrainError.at(path, "--init-from", f"the checkpoint does not match the network ({error})",
                            "fine-tune with the model, width and dataset its training had") from None
    return [f"--init-from: the checkpoint was trained with {key} {theirs.get(key)!r}, this fine-tune uses "
            f"{mine[key]!r}" for key in ("method", "loss", "output", "timesteps", "dataset")
            if key in theirs and theirs.get(key) != mine[key]]


def _check_resumed_start(ckpt: Path, config: TrainConfig) -> None:
    """A resumed fine-tune keeps its starting checkpoint's record (read from its own checkpoint, so --init-from may
    be left out); an --init-from given with --resume must be the file its training started from (same digest)."""
    try:
        stored = (_checkpoint_state(ckpt).get("config") or {}).get("init_from")
    except Exception:  # noqa: BLE001 - load_checkpoint names what is wrong with it
        return
    if config.init_from is None:
        config.init_record = stored if isinstance(stored, dict) else None
        return
    path = Path(config.init_from)
    if not path.is_file():
        raise TrainError.at(str(path), "--init-from", "no such checkpoint",
                            "drop --init-from: a resumed fine-tune reads its start's record from its own checkpoint")
    if not isinstance(stored, dict):
        raise TrainError.at(str(ckpt), "--init-from", "the checkpoint's training started from scratch, not from "
                            f"{path.name}", "drop --init-from to resume it, or fine-tune into another -o")
    if stored.get("sha256") != file_sha256(path):
        raise TrainError.at(str(path), "--init-from", f"is not the checkpoint this training started from "
                            f"({stored.get('file')}, sha256 {str(stored.get('sha256'))[:16]}...)",
                            "drop --init-from (the record is in the training's own checkpoint) or pass that file")
    config.init_record = stored


POSITION_KEYS = ("batches_done", "rng", "seen", "correct", "loss_sum")


def _read_checkpoint(path: Path, option: str, fix: str) -> tuple[dict, dict[str, np.ndarray]]:
    """A checkpoint's ``state`` record and its arrays, checked (:func:`_check_state`); ``option`` names the command
    line option that passed it (a workload passed instead is told apart), ``fix`` the way out of an unreadable one."""
    try:
        # the workloads' reader and its member checks: a damaged member is named (a duplicated or encrypted one, a
        # header declaring a huge array, a pickle), as in a workload
        arrays = read_npz(path, str(path), TrainError, fix, what="checkpoint")
        state = json.loads(str(arrays.pop("state")))
        if not isinstance(state, dict):
            raise ValueError("state is not a JSON object")
    except (TrainError, *NPZ_READ_ERRORS) as error:
        if _is_workload(path):  # not to be deleted: a training's output, passed as its checkpoint
            raise TrainError.at(str(path), option, "a workload, not a checkpoint: a workload holds int8 weights, a "
                                "checkpoint the float ones a training continues from", "pass the OUTPUT.ckpt.npz a "
                                f"training wrote as {option}") from None
        if isinstance(error, TrainError):
            raise
        raise TrainError.at(str(path), None, f"not a readable checkpoint ({type(error).__name__})", fix) from None
    _check_state(path, state, arrays)
    return state, arrays


def _check_state(path: Path, state: dict, arrays: dict[str, np.ndarray]) -> None:
    """A checkpoint's record is what save_checkpoint writes, and its arrays are finite (a diverging run is stopped
    before its checkpoint is written): an edited or damaged one is refused by name, not met by a traceback mid-way
    or exported as a network of NaNs."""
    position, done = state.get("position"), state.get("epochs_done")
    problem = None
    if not isinstance(state.get("identity", {}), dict) or not isinstance(state.get("config") or {}, dict):
        problem = "its identity or config is not a record"
    elif not isinstance(done, int) or isinstance(done, bool) or done < 0:
        problem = f"epochs_done is {done!r}, not a count of epochs"
    elif not isinstance(state.get("history", []), list) or not all(isinstance(r, dict) for r in state["history"]):
        problem = "its history is not a list of epoch records"
    elif position is not None and (not isinstance(position, dict) or any(k not in position for k in POSITION_KEYS)):
        problem = f"its in-epoch position lacks {', '.join(k for k in POSITION_KEYS if k not in (position or {}))}"
    elif position is not None and not _rng_state_ok(position["rng"]):
        problem = "its in-epoch generator state is not one numpy can restore"
    if problem is None:
        bad = [k for k, v in arrays.items() if v.dtype.kind == "f" and not np.isfinite(v).all()]
        problem = f"{bad[0]} holds values that are not finite" if bad else None
    if problem is not None:
        raise TrainError.at(str(path), "state", f"not a checkpoint a training wrote ({problem})",
                            "delete it and train without --resume, or pass another --checkpoint")


def _rng_state_ok(state: object) -> bool:
    """Whether an epoch generator (:func:`_train_epoch`'s) can take this saved state."""
    try:
        np.random.default_rng(0).bit_generator.state = state
    except (TypeError, ValueError, KeyError):
        return False
    return True


def resume_record(path: Path, epochs: int, done: int, position: dict | None) -> tuple[dict, list[dict]]:
    """This resume (epochs and batches done, and --epochs before and after when they differ) and the resumes that
    changed --epochs: the checkpoint's, then this one if it does. Another --epochs re-plans the cosine schedule, so
    such a run's weights are not a fresh run's; a resume with the same --epochs repeats the uninterrupted run."""
    state = _checkpoint_state(path)
    before = (state.get("config") or {}).get("epochs")
    resumes = list(state.get("resumes") or [])
    record = {"epochs_done": done, "batches_done": int((position or {}).get("batches_done", 0))}
    if before is not None and int(before) != epochs:
        record.update(epochs_before=int(before), epochs_after=epochs)
        resumes.append(record)
    return record, resumes


def label_earlier_evaluations(path: Path, history: list[dict], evaluation: Dataset) -> None:
    """Give the history records of an earlier run, scored on another number of test images (another --eval-images
    before the resume), that number as ``test_images``, so every per-epoch accuracy names its sample's size. Records
    scored on this run's sample stay unlabelled, so a resume with the same options keeps the workload's bytes."""
    asked = (_checkpoint_state(path).get("config") or {}).get("eval_images")
    split_size = evaluation.sample_of or len(evaluation)
    earlier = split_size if asked is None else min(int(asked), split_size)
    if earlier != len(evaluation):
        for record in history:
            record.setdefault("test_images", earlier)


def _check_epochs_left(path: Path, config: TrainConfig) -> None:
    """Refuse --epochs below what the checkpoint holds, before the data load: the export would name fewer epochs
    than trained its network. A checkpoint of another model, width or recipe is refused first (no --epochs would
    make it resumable). An unreadable checkpoint is left to :func:`load_checkpoint`'s own message."""
    epochs = config.epochs
    try:
        state = _checkpoint_state(path)
        done, position = int(state["epochs_done"]), state.get("position")
        theirs = state.get("identity", {})
    except Exception:  # noqa: BLE001 - load_checkpoint names what is wrong with it
        return
    if isinstance(theirs, dict):  # the keys it records (a damaged record is load_checkpoint's to name)
        _refuse_another_identity(path, theirs, _identity(config, []), [k for k in _IDENTITY_OPTIONS if k in theirs])
    least = done + 1 if position else done
    if epochs < least:
        held = f"{done} epoch{'s' if done != 1 else ''}" + (
            f" and {position.get('batches_done', 'some')} batches of epoch {done + 1}" if position else "")
        raise TrainError.at(str(path), "--epochs", f"is {epochs}, but the checkpoint holds {held}; the workload "
                            "would record fewer epochs than trained it", f"pass --epochs {least} or more")


def _is_workload(path: Path) -> bool:
    """True when ``path`` is a readable workload (.npz with ``meta``), e.g. -o passed as --checkpoint."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = {name.removesuffix(".npy") for name in archive.namelist()}
        return "meta" in names and "state" not in names
    except Exception:  # noqa: BLE001 - any unreadable file is simply not a workload
        return False


# ------------------------------------------------------------------------------------------
# progress
# ------------------------------------------------------------------------------------------
class Progress:
    """A tqdm bar per epoch on a terminal; one permanent line per epoch (also when piped); nothing when quiet."""

    def __init__(self, quiet: bool, stream=None) -> None:
        import sys

        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.tty = (not quiet) and bool(getattr(self.stream, "isatty", lambda: False)())
        self.bar = None

    def _size(self) -> dict:
        """tqdm's size arguments: follow the terminal when it reports a size, else a fixed 100 x 24 (or the part it
        reports). An unsized pty (``script``, some CI runners) reports 0 rows, and tqdm, following it, hid every bar
        of the training (report/progress.py's ``_size`` fixed it for the other commands; train cannot import it)."""
        try:
            size = os.get_terminal_size(self.stream.fileno())
        except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
            return {"ncols": 100, "nrows": 24}
        if size.columns > 0 and size.lines > 0:
            return {"dynamic_ncols": True}
        return {"ncols": size.columns or 100, "nrows": size.lines or 24}

    def start_epoch(self, epoch: int, epochs: int, steps: int, done: int) -> None:
        """Open the epoch's bar (terminal only) at ``done`` of ``steps`` batches."""
        if self.tty:
            from tqdm import tqdm

            self.bar = tqdm(total=steps, initial=done, desc=f"epoch {epoch}/{epochs}", unit="batch",
                            file=self.stream, leave=False, **self._size())

    def batch(self, loss: float, acc: float, images_per_s: float) -> None:
        """Advance the bar by one batch with the running loss and accuracy."""
        if self.bar is not None:
            self.bar.set_postfix(loss=f"{loss:.4f}", acc=f"{100 * acc:.2f}%", img_s=f"{images_per_s:.0f}",
                                 refresh=False)
            self.bar.update(1)

    @contextlib.contextmanager
    def images(self, desc: str, total: int) -> Iterator[Callable[[int], object]]:
        """A bar over the ``total`` test images an evaluation runs through (terminal only; it replaces the epoch's
        finished bar); yields the callback that advances it by n images."""
        if not self.tty:
            yield lambda n: None
            return
        from tqdm import tqdm

        if self.bar is not None:
            self.bar.close()
        self.bar = tqdm(total=total, desc=desc, unit="img", file=self.stream, leave=False, **self._size())
        try:
            yield self.bar.update
        finally:
            if self.bar is not None:
                self.bar.close()
                self.bar = None

    def saved_mid_epoch(self, epoch: int, epochs: int, done: int, steps: int, loss: float, acc: float,
                        images_per_s: float) -> None:
        """When piped (a log file), one line per mid-epoch checkpoint: an epoch of a large network takes many
        minutes, and the per-epoch line alone left a log silent that long (a terminal's bar shows it already)."""
        if self.tty or self.quiet:
            return
        self.line(f"epoch {epoch}/{epochs}: {done}/{steps} batches, loss {loss:.4f} train acc {100 * acc:.2f}% "
                  f"({images_per_s:.0f} img/s); checkpoint written")

    def line(self, text: str) -> None:
        """Close any bar and print a permanent line (unless quiet)."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        if self.quiet:
            return
        self.stream.write(text + "\n")
        self.stream.flush()


# ------------------------------------------------------------------------------------------
# the run
# ------------------------------------------------------------------------------------------
def subset(data: Dataset, idx: np.ndarray) -> Dataset:
    """The examples ``idx`` of a split (marked a sample of it when they are fewer)."""
    whole = len(idx) == len(data) and data.sample_of is None
    return Dataset(data.name, data.split, data.x[idx], data.y[idx], data.num_classes, data.source, data.class_names,
                   None if whole else data.sample_of or len(data))


def prepare_data(config: TrainConfig, progress: Progress | None = None) -> tuple[Dataset, Dataset, Dataset]:
    """(train, evaluation, embedded) splits.

    train: the train split (a seeded subset if asked). evaluation: the whole test split, or a
    seeded class-balanced sample of ``eval_images``; every accuracy is measured on it.
    embedded: a seeded class-balanced sample of ``test_images`` test examples, stored in the
    workload as its inputs (never simply the first N: image folders list class by class).
    """
    hook = progress.images if progress is not None else None  # a bar while an image folder is read
    train = load_dataset(config.dataset, "train", config.data_dir, config.image_size, hook)
    test = load_dataset(config.dataset, "test", config.data_dir, config.image_size, hook)
    if list(test.x.shape[1:]) != list(train.x.shape[1:]):
        same_size = list(test.x.shape[2:]) == list(train.x.shape[2:])
        fix = ("use the two splits of one dataset" if config.dataset != "imagefolder" else
               f"give both splits one colour mode (the train split's images have {train.x.shape[1]} channel"
               f"{'s' if train.x.shape[1] != 1 else ''})" if same_size else
               "pass --image-size S to resize both splits, and give them one colour mode")
        folder = config.dataset == "imagefolder" and config.data_dir
        where = str(Path(config.data_dir) / "test") if folder else test.source
        raise DatasetError.at(where, None, f"{config.dataset}: the test split's examples have shape "
                              f"{list(test.x.shape[1:])}, the train split's {list(train.x.shape[1:])}", fix)
    if config.train_subset is not None and config.train_subset < len(train):
        train = subset(train, np.sort(np.random.default_rng([config.seed, 7]).permutation(len(train))[
            : config.train_subset]))
    evaluation = test
    if config.eval_images is not None and config.eval_images < len(test):
        # the embedded sample's seed: one draw order, so the smaller sample is the larger's start (the embedded
        # images are among the evaluated ones, and equal counts are the same images, which evaluate reproduces)
        evaluation = subset(test, balanced_sample(test.y, config.eval_images, config.seed))
    embedded = subset(test, balanced_sample(test.y, config.test_images, config.seed))
    return train, evaluation, embedded


def train_model(config: TrainConfig, output: str | Path, checkpoint: str | Path | None = None, resume: bool = False,
                quiet: bool = False, stream: IO[str] | None = None, data: tuple[Dataset, ...] | None = None) -> dict:
    """Train, export and evaluate; writes the workload to ``output`` and returns the summary dict.

    ``data`` is (train, evaluation, embedded) as :func:`prepare_data` returns, or (train, test)
    with the test split both evaluated and embedded.
    """
    config.check()
    ckpt = Path(checkpoint) if checkpoint else Path(str(output) + ".ckpt.npz")
    with training_lock(ckpt, output):
        return _train_model(config, output, ckpt, resume, quiet, stream, data)


def _lock_path(path: Path) -> Path:
    """The lock of one output, in the temp folder (nothing beside the user's files, and a missing -o folder is
    fine), named by the output's resolved path."""
    key = hashlib.sha256(str(path.resolve()).encode("utf-8", "surrogateescape")).hexdigest()[:24]
    return Path(tempfile.gettempdir()) / f"satasim-train-{key}.lock"


def _process_start(pid: int) -> str | None:
    """When process ``pid`` started (field 22 of Linux's /proc/PID/stat, clock ticks after boot); None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text(errors="replace").rsplit(")", 1)[-1].split()
    except OSError:
        return None
    return fields[19] if len(fields) > 19 else None


def _lock_holder_alive(pid_text: str, started: str) -> bool:
    """Whether the training that wrote a lock still runs: its process id is alive and, where the lock recorded the
    process's start time, that process started then (a killed run's id may since belong to another program)."""
    if not process_alive(pid_text):
        return False
    now = _process_start(int(pid_text)) if started else None
    return now is None or now == started


@contextlib.contextmanager
def training_lock(ckpt: Path, output: str | Path):
    """Hold the checkpoint and the workload for one training: a second training into either (the same command
    started twice, or its --resume while it runs) is refused instead of interleaving its checkpoints with this
    one's and replacing its workload. A lock whose process is gone (SIGKILL) is taken over."""
    taken: list[Path] = []
    try:
        for path, option in ((ckpt, "--checkpoint"), (Path(output), "-o")):
            lock = _lock_path(path)
            if lock in taken:
                continue
            for _ in range(3):
                try:
                    fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
                except FileExistsError:
                    owner = lock.read_text(errors="replace").strip() if lock.is_file() else ""
                    owner, _, started = owner.partition(" ")
                    if _lock_holder_alive(owner, started) and owner != str(os.getpid()):
                        raise TrainError.at(str(path), option, f"another training (process {owner}) is writing it",
                                            "wait for that training to end, or write to another -o and "
                                            "--checkpoint") from None
                    try:
                        lock.unlink()
                    except FileNotFoundError:
                        pass
                    except OSError:  # another user's dead lock in a sticky temp folder: train unguarded
                        break
                    continue
                except OSError:  # no temp folder to lock in: train unguarded rather than not at all
                    break
                with os.fdopen(fd, "w") as handle:  # the start time tells this process from a later one of its id
                    handle.write(f"{os.getpid()} {_process_start(os.getpid()) or ''}".strip())
                taken.append(lock)
                break
        yield
    finally:
        for lock in taken:
            with contextlib.suppress(OSError):
                lock.unlink()


def _train_model(config: TrainConfig, output: str | Path, ckpt: Path, resume: bool, quiet: bool,
                 stream: IO[str] | None, data: tuple[Dataset, ...] | None) -> dict:
    """:func:`train_model` once it holds the outputs."""
    if config.init_from and not resume and ckpt.exists() and Path(config.init_from).resolve() == ckpt.resolve():
        raise TrainError.at(config.init_from, "--init-from", "is this training's own checkpoint, which it would "
                            "overwrite", "write the fine-tuned training to another -o (or --checkpoint), or pass "
                            "--resume to continue the training that wrote it")
    if not resume and ckpt.exists():  # before the data load, which takes a minute on CIFAR-10
        raise TrainError.at(str(ckpt), "--resume", "a checkpoint of an earlier training is there, and this one would "
                            "replace it", "pass --resume to continue it, or delete it (or pass another --checkpoint) "
                            "to start over")
    if resume:
        _require_checkpoint(ckpt)  # before the data load, which takes a minute on CIFAR-10
        _check_epochs_left(ckpt, config)
        _check_resumed_start(ckpt, config)
    initial = read_initial_weights(config) if config.init_from and not resume else None
    progress = Progress(quiet, stream)
    data = data if data is not None else prepare_data(config, progress)
    train, evaluation, embedded = data if len(data) == 3 else (data[0], data[1], data[1])
    notes = [f"{option} {asked}: the {what} split has {got} images; all of them are used"
             for option, asked, got, what in (("--train-subset", config.train_subset, len(train), "training"),
                                              ("--eval-images", config.eval_images, len(evaluation), "test"),
                                              ("--test-images", config.test_images, len(embedded), "test"))
             if asked is not None and got < asked]
    notes += _too_few_to_judge(config, len(evaluation), evaluation.sample_of or len(evaluation), train.num_classes)
    loss_name, output_mode = config.resolved()
    notes += output_mode_notes(config.model, output_mode, config.output is not None)
    if train.framed and train.x.shape[1] != config.timesteps:
        raise TrainError.at(None, "--timesteps", f"is {config.timesteps} but the {config.dataset} frames have "
                            f"T = {train.x.shape[1]}", f"pass --timesteps {train.x.shape[1]} or re-frame the events")
    spec = build_spec(config.model, train.input_shape, train.num_classes, output_mode, config.width, train.framed)
    net = Network(spec, config.timesteps, seed=config.seed, direct_input=not train.framed)
    opt = SGD(net, config.momentum, config.weight_decay)
    mean, std = train.channel_stats()
    normalise = make_normaliser(mean, std, train.framed)
    if not train.framed:
        net.input_pad = (-mean / std).astype(F32)
    data_id = data_identity(train)
    if initial is not None:
        notes += start_from(*initial, net, config, data_id)
    start_epoch, history, position = (load_checkpoint(ckpt, net, opt, config, data_id) if resume else (0, [], None))
    resumed, resumes = resume_record(ckpt, config.epochs, start_epoch, position) if resume else (None, [])
    if resume:
        label_earlier_evaluations(ckpt, history, evaluation)
    for note in notes:  # after the refusals that need the data and the checkpoint: an error is then the only line
        progress.line(f"note: {note}")
    if resumed is not None:
        where = f", batch {position['batches_done']}" if position else ""
        extended = (f" (--epochs {resumed['epochs_before']} -> {resumed['epochs_after']}: the cosine schedule is "
                    "re-planned, recorded in the workload's provenance.resumes)" if "epochs_before" in resumed else "")
        progress.line(f"resumed from {ckpt} after epoch {start_epoch}{where}{extended}")
    elif config.init_record is not None:
        record = config.init_record
        progress.line(f"starting from the weights of {config.init_from} (epoch {record['epochs_done']}"
                      f"{', batch ' + str(record['batches_done']) if record['batches_done'] else ''} of its training), "
                      f"a new schedule: --lr {config.lr} over {config.epochs} epochs")
    for epoch in range(start_epoch, config.epochs):
        record = _train_epoch(net, opt, config, train, normalise, epoch, position, ckpt, history, progress, data_id,
                              resumes, (mean, std))
        position = None
        with progress.images(f"epoch {epoch + 1}/{config.epochs} float test", len(evaluation)) as advance:
            logits = float_logits(net, evaluation.x, normalise, on_batch=advance)
        record["test_acc"] = policy_table(logits, evaluation.y, output_mode)["fixed_t"][str(config.timesteps)]
        history.append(record)
        save_checkpoint(ckpt, net, opt, config, epoch + 1, _stable(history), data_id=data_id, resumes=resumes)
        progress.line(f"epoch {epoch + 1}/{config.epochs}: loss {record['loss']:.4f} train acc "
                      f"{100 * record['train_acc']:.2f}% test acc (T={config.timesteps}, {len(evaluation)} images) "
                      f"{100 * record['test_acc']:.2f}% ({record['seconds']:.0f} s, "
                      f"{record['images_per_s']:.0f} img/s)")
    summary = finish(net, config, train, evaluation, embedded, mean, std, output, _stable(history), progress,
                     resumes, logits if start_epoch < config.epochs else None)  # the last epoch's, not run again
    summary["notes"] = notes  # what was printed as "note: ...", in --json too (README: every command's notes)
    summary["resumed"] = resumed  # this run's resume (None when fresh); summary["resumes"]: those changing --epochs
    return summary


def _too_few_to_judge(config: TrainConfig, images: int, split_images: int, num_classes: int) -> list[str]:
    """The note of an evaluation on fewer test images than classes: some classes go unscored, so no accuracy can be
    told from chance and the near-chance warning is not given (it compared with a "largest class" of one image)."""
    if images >= num_classes:
        return []
    sampled = config.eval_images is not None and config.eval_images < split_images
    asked = (f"--eval-images {config.eval_images}: {images} test image{'s' if images != 1 else ''}" if sampled else
             f"the test split has {images} image{'s' if images != 1 else ''}")
    fix = (f"pass --eval-images {num_classes} or more, or leave it out" if split_images >= num_classes else
           "give the test split an image of each class")
    return [f"{asked}, fewer than the {num_classes} classes: some classes are not scored, so the accuracies cannot be "
            f"told from chance and no near-chance warning is given ({fix})"]


def _stable(history: list) -> list:
    """History without wall-clock fields, as stored (same seed -> same bytes)."""
    return [{k: v for k, v in row.items() if k not in ("seconds", "images_per_s")} for row in history]


def _train_epoch(net: Network, opt: SGD, config: TrainConfig, train: Dataset, normalise, epoch: int,
                 position: dict | None, ckpt: Path, history: list, progress: Progress,
                 data_id: dict | None = None, resumes: list | None = None,
                 stats: tuple[np.ndarray, np.ndarray] | None = None) -> dict:
    """One epoch of SGD from ``position`` (a mid-epoch checkpoint) or its start; checkpoints every few minutes.
    ``stats``: the input normalisation's mean and std, which the export folds in (``--quant-aware`` needs them)."""
    loss_name, output_mode = config.resolved()
    n = len(train)
    steps_per_epoch = math.ceil(n / config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    rng = np.random.default_rng([config.seed, 1000 + epoch])
    order = rng.permutation(n)
    first, seen, correct, loss_sum = 0, 0, 0, 0.0
    if position:
        rng.bit_generator.state = position["rng"]
        first, seen, correct, loss_sum = (position["batches_done"], position["seen"], position["correct"],
                                          position["loss_sum"])
    progress.start_epoch(epoch + 1, config.epochs, steps_per_epoch, first)
    started = last_save = time.perf_counter()
    for b in range(first, steps_per_epoch):
        idx = order[b * config.batch_size:(b + 1) * config.batch_size]
        xb = augment(train.x[idx], rng) if config.augment else train.x[idx]
        yb = train.y[idx]
        lr = cosine_lr(config.lr, epoch * steps_per_epoch + b, total_steps)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # a diverging run: the check below
            with on_int8_grid(net, stats if config.quant_aware else None):
                f = net.forward(normalise(xb), training=True)
                loss, grad = loss_and_grad(f, yb, loss_name, output_mode)
                if not math.isfinite(loss):
                    raise TrainError.at(None, "loss", f"became {loss} at epoch {epoch + 1}, batch {b + 1}; training "
                                        f"stopped, {_last_good(ckpt)}", _diverged_fix(ckpt))
                grads = net.backward(grad)
            opt.step(grads, lr)
        seen += len(idx)
        correct += int((f.mean(axis=0).argmax(axis=-1) == yb).sum())
        loss_sum += loss * len(idx)
        now = time.perf_counter()
        rate = (seen - (position or {}).get("seen", 0)) / max(now - started, 1e-9)
        progress.batch(loss_sum / seen, correct / seen, rate)
        if now - last_save > 60 * config.checkpoint_minutes and b + 1 < steps_per_epoch:
            save_checkpoint(ckpt, net, opt, config, epoch, _stable(history), {
                "batches_done": b + 1, "rng": rng.bit_generator.state, "seen": seen, "correct": correct,
                "loss_sum": loss_sum}, data_id, resumes)
            progress.saved_mid_epoch(epoch + 1, config.epochs, b + 1, steps_per_epoch, loss_sum / seen,
                                     correct / seen, rate)
            last_save = now
    elapsed = time.perf_counter() - started
    return {"epoch": epoch + 1, "loss": round(loss_sum / seen, 6), "train_acc": round(correct / seen, 6),
            "seconds": elapsed, "images_per_s": (seen - (position or {}).get("seen", 0)) / max(elapsed, 1e-9)}


@contextlib.contextmanager
def on_int8_grid(net: Network, stats: tuple[np.ndarray, np.ndarray] | None) -> Iterator[None]:
    """Inside, ``net``'s conv, linear and output weights are on the int8 export's grid (export.int8_grid_weights,
    at the current BN statistics; ``stats``: the input normalisation); the float weights come back on the way out,
    so that the update lands on them (the straight-through estimator). ``stats`` None: nothing changes."""
    if stats is None:
        yield
        return
    grid = int8_grid_weights(net, *stats)
    kept = {name: net.params[name]["w"] for name in grid}
    for name, weights in grid.items():
        net.params[name]["w"] = weights
    try:
        yield
    finally:
        for name, weights in kept.items():
            net.params[name]["w"] = weights


def training_warnings(history: list, accuracy: float, num_classes: int, images: int,
                      augment: bool = False, labels: np.ndarray | None = None, predicted: np.ndarray | None = None,
                      class_names: list[str] | None = None) -> list[str]:
    """What says the trained network learned little: a loss above a uniform guess's ln C (every loss here is
    a mean of cross-entropies), a loss that rose over the run, an accuracy near chance (1/C, or with ``labels``
    of unbalanced classes, the largest class's share), or ``predicted`` naming one class for every image. A
    diverging run that stays finite (too high an --lr) or one that cannot learn (too low, too narrow) finishes
    otherwise without a word. With augmentation on, a last epoch far better on the test images than on the
    (augmented) training images says the flip or crop removes what tells the classes apart."""
    warnings = []
    guess = math.log(num_classes)
    first, last = (float(history[0]["loss"]), float(history[-1]["loss"])) if history else (0.0, 0.0)
    final = history[-1] if history else {}
    # the training accuracy is a running one, taken while the weights learn: in a first epoch from scratch it lags
    # the test accuracy whatever the augmentation does, so only a later epoch is judged
    hidden = (augment and len(history) > 1 and "test_acc" in final
              and float(final["train_acc"]) + 0.25 < float(final["test_acc"]))
    lower = "try a lower --lr" + (", or --no-augment (below)" if hidden else "")
    little = _learned_little(accuracy, num_classes, images, labels, predicted, class_names)
    # a first epoch's mean holds the untrained network's first batches: alone, it tells a divergence only beside
    # a network near chance (a one-epoch run that scored 100% was told it diverged)
    if last > 2 * guess and (len(history) > 1 or little is not None):
        warnings.append(f"the final epoch's loss {last:.4g} is above twice a uniform guess's ln {num_classes} = "
                        f"{guess:.3f}: the training diverged or collapsed ({lower})")
    elif len(history) > 1 and last > 1.5 * first:
        warnings.append(f"the loss rose from {first:.4g} (epoch 1) to {last:.4g}: the training diverged ({lower})")
    if hidden:
        warnings.append(f"the last epoch scored {100 * float(final['train_acc']):.2f}% on the augmented training "
                        f"images but {100 * float(final['test_acc']):.2f}% on the test images: the augmentation "
                        "(random crop, left-right flip) may remove what tells the classes apart; try --no-augment")
    return warnings + ([little] if little else [])


def _learned_little(accuracy: float, num_classes: int, images: int, labels: np.ndarray | None,
                    predicted: np.ndarray | None, class_names: list[str] | None) -> str | None:
    """The warning of an accuracy near chance, saying which chance: one class predicted for every image, the largest
    class's share of unbalanced test images, or a uniform guess among the classes (1/C)."""
    check = "check the data and --lr, --epochs, --width"
    if images < num_classes:  # some classes unscored: no chance level to compare with (a note says so)
        return None
    labels = None if labels is None or len(labels) == 0 else np.asarray(labels)
    if predicted is not None and labels is not None and len(np.unique(predicted)) == 1 < len(np.unique(labels)):
        name = _class_label(int(predicted[0]), class_names)
        return (f"the exported network predicts class {name} for every one of the {images} test images at fixed T: "
                f"its {100 * accuracy:.2f}% is that class's share of them, and it learned nothing that tells the "
                f"classes apart ({check})")
    counts = np.bincount(labels, minlength=num_classes) if labels is not None else None
    largest = float(counts.max() / counts.sum()) if counts is not None else 1 / num_classes
    if largest > 1 / num_classes:  # unbalanced: half a guess's share of what the largest class leaves above it
        if accuracy < largest + 0.5 / num_classes * (1 - largest) / (1 - 1 / num_classes):
            name = _class_label(int(counts.argmax()), class_names)
            ties = int((counts == counts.max()).sum())  # 15 images of 10 classes: five classes of 2
            which = f"the largest class, {name}" if ties == 1 else f"one of the {ties} largest classes (e.g. {name})"
            return (f"the exported network scores {100 * accuracy:.2f}% on {images} test images at fixed T, not "
                    f"clearly above the {100 * largest:.2f}% of always predicting {which} (the test "
                    f"classes are unbalanced; a uniform guess among {num_classes} classes scores "
                    f"{100 / num_classes:.2f}%): it learned little ({check})")
    elif accuracy < 1.5 / num_classes:
        return (f"the exported network scores {100 * accuracy:.2f}% on {images} test images at fixed T, near the "
                f"{100 / num_classes:.2f}% of a guess among {num_classes} classes: it learned little ({check})")
    return None


def _class_label(cls: int, class_names: list[str] | None) -> str:
    """A class as a warning names it: its index, and its folder name when known."""
    return f"{cls} ({class_names[cls]!r})" if class_names and cls < len(class_names) else str(cls)


def finish(net: Network, config: TrainConfig, train: Dataset, evaluation: Dataset, embedded: Dataset,
           mean: np.ndarray, std: np.ndarray, output: str | Path, history: list, progress: Progress,
           resumes: list | None = None, logits: np.ndarray | None = None) -> dict:
    """Measure float and quantised accuracy on the evaluation split (``logits``: the float network's on it, when the
    last epoch has just computed them), export with the embedded inputs, write."""
    loss_name, output_mode = config.resolved()
    if logits is None:
        with progress.images("float test", len(evaluation)) as advance:
            logits = float_logits(net, evaluation.x, make_normaliser(mean, std, train.framed), on_batch=advance)
    float_table = policy_table(logits, evaluation.y, output_mode, config.cl_init, config.tau_cl, config.theta)
    name = text_name(Path(output).name.removesuffix(".npz"))
    default_policy = METHODS[config.method].exit_policy
    exit_policy = {"default": default_policy, "cl_init": config.cl_init, "tau_cl": config.tau_cl,
                   "theta": config.theta}
    whole = evaluation.sample_of is None  # all of the test split: no --eval-images, or as many as it has, or more
    provenance = {"tool": "satasim train", "tool_version": __version__, "config": config.public(),
                  "seed": config.seed, "epochs": config.epochs, "dataset": config.dataset,
                  "dataset_source": text_name(Path(train.source).resolve().name),
                  "class_names": list(train.class_names),
                  "train_images": len(train), "test_images": len(embedded),
                  "test_split": f"seeded class-balanced sample of the test split (seed {config.seed})",
                  "eval_images": len(evaluation),
                  "eval_split": "the whole test split" if whole else
                  f"seeded class-balanced sample of the test split (seed {config.seed}, the embedded sample's draw)",
                  "history": history, "float": float_table}
    if resumes:  # only a resumed run that changed --epochs: a fresh one (or a resume repeating it) keeps its bytes
        provenance["resumes"] = resumes

    def export(x: np.ndarray, y: np.ndarray):
        return export_network(net, name=name, dataset=config.dataset, num_classes=train.num_classes,
                              input_shape=train.input_shape, mean=mean, std=std, x=x, y=y,
                              exit_policy=exit_policy, provenance=provenance)

    with progress.images("int8 test", len(evaluation)) as advance, forward_progress(advance):
        quant, predicted = evaluate_with_predictions(export(evaluation.x, evaluation.y), config.cl_init,
                                                     config.tau_cl, config.theta)
    T = str(config.timesteps)
    provenance["quantised"] = quant
    provenance["int8_minus_float_at_T"] = round(quant["fixed_t"][T] - float_table["fixed_t"][T], 6)
    warnings = training_warnings(history, quant["fixed_t"][T], train.num_classes, len(evaluation), config.augment,
                                 evaluation.y, predicted, list(train.class_names))
    if warnings:  # kept with the network, so that a user of the file sees them too (workload info, evaluate)
        provenance["warnings"] = warnings
    workload = export(embedded.x, embedded.y)
    validate(workload)
    try:
        write_workload(output, workload)
    except OSError as error:
        raise TrainError.at(str(output), None, f"cannot write the workload ({error.strerror or error})",
                            "free disk space or choose another -o") from None
    progress.line(f"float ({len(evaluation)} test images):     T={T} {100 * float_table['fixed_t'][T]:.2f}%  ATSN "
                  f"{100 * float_table['atsn']['accuracy']:.2f}% @ {float_table['atsn']['avg_timestep']:.2f}  DTSNN "
                  f"{100 * float_table['dtsnn']['accuracy']:.2f}% @ {float_table['dtsnn']['avg_timestep']:.2f}")
    progress.line(f"quantised ({len(evaluation)} test images): T={T} {100 * quant['fixed_t'][T]:.2f}%  ATSN "
                  f"{100 * quant['atsn']['accuracy']:.2f}% @ {quant['atsn']['avg_timestep']:.2f}  DTSNN "
                  f"{100 * quant['dtsnn']['accuracy']:.2f}% @ {quant['dtsnn']['avg_timestep']:.2f}; wrote {output} "
                  f"with {len(embedded)} embedded test inputs")
    for warning in warnings:
        progress.line(f"warning: {warning}")
    return {"workload": text_name(Path(output).name), "loss": loss_name, "output_mode": output_mode,
            "float": float_table, "quantised": quant, "history": history, "config": config.public(),
            "warnings": warnings, "resumes": list(resumes or [])}
