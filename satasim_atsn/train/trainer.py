"""The STBP training loop: data, augmentation, epochs, checkpoints on time, export.

Determinism: the network is initialised from ``seed`` and epoch e shuffles and augments with
a generator seeded by (seed, e), so a resumed run repeats the uninterrupted one on the same machine.
Checkpoints are written atomically after every epoch and every ``checkpoint_minutes`` inside an
epoch (with the generator's state), so a killed run loses at most those minutes; a NaN loss stops
training with the last good checkpoint kept. Its parts: the configuration and optimiser (config.py), checkpoints
(checkpoints.py), the lock of one training per checkpoint (run_lock.py), the bars (training_progress.py) and the
warnings a finished training prints (training_warnings.py).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import numpy as np

from satasim_atsn import __version__
from satasim_atsn.errors import DatasetError, TrainError
from satasim_atsn.fileio import text_name
from satasim_atsn.snn.forward import forward_progress
from satasim_atsn.train.checkpoints import (
    check_epochs_left,
    check_resumed_start,
    data_identity,
    diverged_fix,
    label_earlier_evaluations,
    last_good,
    load_checkpoint,
    read_initial_weights,
    require_checkpoint,
    resume_record,
    save_checkpoint,
    start_from,
)
from satasim_atsn.train.config import F32, SGD, TrainConfig, cosine_lr
from satasim_atsn.train.evaluation import evaluate_with_predictions, float_logits, policy_table
from satasim_atsn.train.export import export_network, int8_grid_weights
from satasim_atsn.train.losses import loss_and_grad
from satasim_atsn.train.models import (
    METHODS,
    build_spec,
    output_mode_notes,
)
from satasim_atsn.train.network import Network
from satasim_atsn.train.run_lock import training_lock
from satasim_atsn.train.training_progress import Progress
from satasim_atsn.train.training_warnings import training_warnings
from satasim_atsn.workload.datasets import Dataset, balanced_sample, load_dataset
from satasim_atsn.workload.format import validate, write_workload


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
        require_checkpoint(ckpt)  # before the data load, which takes a minute on CIFAR-10
        check_epochs_left(ckpt, config)
        check_resumed_start(ckpt, config)
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
                                        f"stopped, {last_good(ckpt)}", diverged_fix(ckpt))
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
