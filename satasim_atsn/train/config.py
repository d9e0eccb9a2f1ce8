"""A training run's configuration (TrainConfig: everything stored in its checkpoints and provenance) and its
optimiser: SGD with momentum and weight decay on a cosine learning-rate schedule."""


from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from satasim_atsn.errors import TrainError
from satasim_atsn.snn.exit_policies import CL_INIT_DEFAULT, TAU_CL_DEFAULT, THETA_DEFAULT
from satasim_atsn.train.losses import LOSSES
from satasim_atsn.train.models import (
    METHODS,
    MODELS,
    check_input_readers,
    is_network_file,
    model_label,
    network_file,
    unknown_model,
)
from satasim_atsn.train.network import Network
from satasim_atsn.workload.datasets import SPIKE_FRAME_DATASETS
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
