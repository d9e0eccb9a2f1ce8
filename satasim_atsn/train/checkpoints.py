"""Training checkpoints: written atomically, read back with every field checked, resumed only by the training
that wrote them (its identity: model, data, options), and read as the start of a fine-tune (--init-from)."""


from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path

import numpy as np

from satasim_atsn.errors import TrainError
from satasim_atsn.fileio import NPZ_READ_ERRORS, atomic_write_bytes, file_sha256, text_name
from satasim_atsn.train.config import SGD, TrainConfig
from satasim_atsn.train.network import Network
from satasim_atsn.workload.datasets import Dataset
from satasim_atsn.workload.npz import read_npz


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
                            f"{epoch}); training stopped, {last_good(path)}", diverged_fix(path))
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


def diverged_fix(path: Path) -> str:
    """The way out of a diverged run: a resumed run keeps its --lr (and would diverge the same way), so start over."""
    return (f"delete {path} and train again with a lower --lr" if path.is_file() else "train again with a lower --lr")


def last_good(path: Path) -> str:
    """Where the last good checkpoint is, for an error that stops a training."""
    return f"the last good checkpoint is {path}" if path.is_file() else "no checkpoint was written yet"


# without --resume the same file would be refused as an earlier training's checkpoint: it must go first
_UNREADABLE_FIX = "pass the OUTPUT.ckpt.npz a training wrote, or delete this file and train without --resume"


def _checkpoint_state(path: Path) -> dict:
    """A checkpoint's ``state`` record (the file read by :func:`load_checkpoint` first, whose refusals name it)."""
    arrays = read_npz(path, str(path), TrainError, _UNREADABLE_FIX, keys=("state",), what="checkpoint")
    return json.loads(str(arrays["state"]))


def require_checkpoint(path: Path) -> None:
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
    for key in sorted(keys, key=lambda k: k != "width"):  # the width first: it changes a network file's model name
        if theirs.get(key) != mine[key]:
            raise TrainError.at(str(path), options[key], f"checkpoint is for {key}={theirs.get(key)!r}, this run has "
                                f"{mine[key]!r}", "resume with the same options or use another --checkpoint")


def load_checkpoint(path: Path, net: Network, opt: SGD, config: TrainConfig,
                    data_id: dict | None = None) -> tuple[int, list, dict | None]:
    """Restore a checkpoint of the same model/method/dataset; returns (epochs done, history, in-epoch position)."""
    require_checkpoint(path)
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
    # the width first: a network file's model name carries a digest of its layers at the width trained, so another
    # --width also changes the model name, and the message must name --width (h3, session 47)
    for key, option in (("width", "--width"), ("model", "--model"), ("layers", "--model/--width")):
        if key == "model" and _same_network_file(theirs.get(key), mine[key]):
            continue  # the same layers under another file name (a copy, a renamed file): its weights fit
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


def _same_network_file(theirs: object, mine: str) -> bool:
    """Two models named "FILE sha256:DIGEST" (train.models.model_label of a network file) whose layer digests agree,
    whatever the files are called."""
    return (isinstance(theirs, str) and " sha256:" in theirs and " sha256:" in mine
            and theirs.rpartition(" sha256:")[2] == mine.rpartition(" sha256:")[2])


def check_resumed_start(ckpt: Path, config: TrainConfig) -> None:
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


def check_epochs_left(path: Path, config: TrainConfig) -> None:
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
