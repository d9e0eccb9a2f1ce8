"""CLI commands of the train area (registered by satasim_atsn.cli): ``satasim train`` and ``satasim evaluate``."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import click

from satasim_atsn.errors import SatasimError, TrainError
from satasim_atsn.fileio import (
    check_output_path,
    refuse_overwriting_inputs,
    refuse_shared_outputs,
    standard_stream,
    text_name,
    write_json,
)
from satasim_atsn.options import NUMBER, PATH, WORKLOAD_PATH
from satasim_atsn.snn.exit_policies import (
    ATSN_FRAC_BITS,
    CL_INIT_DEFAULT,
    FRAC_BITS_RANGE,
    LUT_ENTRIES_DEFAULT,
    LUT_ENTRIES_RANGE,
    TAU_CL_DEFAULT,
    THETA_DEFAULT,
    exit_settings,
)
from satasim_atsn.threads import apply_thread_policy
from satasim_atsn.workload.datasets import DATASETS, data_folder, dataset_inputs

apply_thread_policy()  # DESIGN section 9: numba and OpenBLAS threads must not busy-wait against each other


def _write_json(path: str | None, payload: dict) -> None:
    """Write ``payload`` to --json ``path`` when one was given."""
    if path is not None:
        write_json(path, payload)


def _check_outputs(out_path: str, json_path: str | None, checkpoint: str | None, dataset: str,
                   data_dir: str | None, init_from: str | None = None) -> None:
    """Before hours of training: every output can be written, no two are one file, and none lands among an image
    folder's images (where the next training would read it as one)."""
    if standard_stream(out_path) is not None or (checkpoint is not None and standard_stream(checkpoint) is not None):
        option, value = ("-o", out_path) if standard_stream(out_path) is not None else ("--checkpoint", checkpoint)
        raise SatasimError.at(str(value), option, "names standard output (or a descriptor): a training writes its "
                              "workload, and its checkpoint beside it, as files that --resume reads again",
                              "give a file path")
    target = Path(out_path)
    if checkpoint is None and target.exists() and not target.is_file() and not target.is_dir():  # /dev/null
        raise SatasimError.at(str(out_path), "-o", "is not a regular file (a device or a pipe): the checkpoint, "
                              f"written beside it as {out_path}.ckpt.npz, would land there", "give a file path")
    ckpt = checkpoint or str(out_path) + ".ckpt.npz"
    outputs = {"-o": out_path, "--json": json_path, "--checkpoint": ckpt}
    examples = {"-o": "workload.npz", "--checkpoint": "workload.npz.ckpt.npz"}
    for option, path in outputs.items():
        check_output_path(path, option, example=examples.get(option, "results.json"))
    refuse_shared_outputs(outputs)
    refuse_dataset_outputs(outputs, dataset, data_dir)
    if init_from is not None and standard_stream(init_from) is None:
        start = Path(init_from).resolve()
        for option in ("-o", "--json"):  # the checkpoint's own path is refused by the trainer (it says why)
            path = outputs[option]
            if path and standard_stream(path) is None and Path(path).resolve() == start:
                raise SatasimError.at(str(init_from), option, "is the checkpoint --init-from reads, which the training "
                                      "would overwrite", f"give {option} another path")


def refuse_dataset_outputs(outputs: dict[str, str | None], dataset: str | None, data_dir: str | None) -> None:
    """No output may land among an image folder's images (where the next run would read it as one) or replace one
    of a dataset's files (``-o DIR/test.npz`` of cifar10-dvs, ``--json`` over an image): both destroy the data."""
    if dataset not in DATASETS:
        return
    if dataset == "imagefolder" and data_dir:
        splits = [(Path(data_dir) / split).resolve() for split in ("train", "test")]
        for option, path in outputs.items():
            if path and standard_stream(path) is None and any(split in Path(path).resolve().parents
                                                              for split in splits):
                raise SatasimError.at(str(path), option, f"is inside the image folder {data_dir}'s train/ or test/",
                                      "write the outputs somewhere else")
    inputs = {f.resolve(): f for f in dataset_inputs(dataset, data_dir)}
    for option, path in outputs.items():
        if path and standard_stream(path) is None and Path(path).resolve() in inputs:
            raise SatasimError.at(str(path), option, f"is the {dataset} dataset's file {inputs[Path(path).resolve()]}; "
                                  "writing it would destroy the data", "write the outputs somewhere else")


@click.command("train")
@click.option("--model", default="vgg_small", show_default=True,
              help="vgg_small | vgg16 | resnet19, or a network YAML file (docs/networks.md)")
@click.option("--dataset", default="fashion-mnist", show_default=True, help=" | ".join(DATASETS))
@click.option("--method", default="atsn", show_default=True, help="snn | dtsnn | atsn (loss, output layer, exit)")
@click.option("--loss", default=None, help="override the method's loss: ce | dtsnn | imp (Table 5 ablation)")
@click.option("--output", "output_mode", default=None, help="override the output layer: membrane | accumulate")
@click.option("--timesteps", "-T", default=4, show_default=True, type=int,
              help="timesteps T every image runs in training (and the workload's T)")
@click.option("--epochs", default=10, show_default=True, type=int,
              help="passes over the training images (the cosine schedule's length)")
@click.option("--batch-size", default=64, show_default=True, type=int, help="images per STBP step")
@click.option("--lr", default=0.1, show_default=True, type=NUMBER, help="initial learning rate (cosine schedule)")
@click.option("--seed", default=0, show_default=True, type=int,
              help="seed of the initial weights, the shuffles and the embedded test sample")
@click.option("--train-subset", default=None, type=int, help="train on N images drawn with the seed")
@click.option("--test-images", default=1000, show_default=True, type=int,
              help="test inputs embedded in the workload (a seeded class-balanced sample)")
@click.option("--eval-images", default=None, type=int,
              help="measure accuracies on a seeded class-balanced sample of N test images (default: all)")
@click.option("--image-size", default=None, type=int, help="imagefolder: resize every image to S x S (bilinear)")
@click.option("--checkpoint-minutes", default=10.0, show_default=True, type=NUMBER,
              help="also checkpoint inside an epoch every this many minutes")
@click.option("--width", default=1.0, show_default=True, type=NUMBER, help="channel multiplier (1.0 = the paper's)")
@click.option("--data-dir", type=PATH, default=None, help="dataset directory (Fashion-MNIST is found automatically)")
@click.option("--cl-init", default=CL_INIT_DEFAULT, show_default=True, type=NUMBER,
              help="ATSN CL_init stored as default")
@click.option("--tau-cl", default=TAU_CL_DEFAULT, show_default=True, type=NUMBER, help="ATSN tau_CL stored as default")
@click.option("--theta", default=THETA_DEFAULT, show_default=True, type=NUMBER,
              help="DTSNN entropy threshold stored as default")
@click.option("--no-augment", is_flag=True, help="no random crop / flip")
@click.option("--resume", is_flag=True, help="continue from the checkpoint")
@click.option("--checkpoint", type=PATH, default=None, help="checkpoint path (default: OUTPUT.ckpt.npz)")
@click.option("--init-from", type=PATH, default=None,
              help="start from the weights of a checkpoint another training wrote (fine-tuning: fresh momentum, a "
                   "new cosine schedule from --lr over --epochs)")
@click.option("--quant-aware", is_flag=True,
              help="train on the weights as the int8 export rounds them (fake quantisation, straight-through "
                   "gradients), so the workload keeps the float network's accuracy; best as a short fine-tune")
@click.option("--quiet", "-q", is_flag=True, help="print nothing but errors")
@click.option("--json", "json_path", metavar="FILE", type=PATH, default=None,
              help="also write the results as JSON")
@click.option("-o", "--out", "out_path", type=PATH, required=True, help="workload .npz to write")
def train_command(model: str, dataset: str, method: str, loss: str | None, output_mode: str | None, timesteps: int,
                  epochs: int, batch_size: int, lr: float, seed: int, train_subset: int | None, test_images: int,
                  eval_images: int | None, image_size: int | None, checkpoint_minutes: float, width: float,
                  data_dir: str | None, cl_init: float, tau_cl: float, theta: float, no_augment: bool, resume: bool,
                  checkpoint: str | None, init_from: str | None, quant_aware: bool, quiet: bool,
                  json_path: str | None, out_path: str) -> None:
    """Train an SNN with STBP (numpy) and export it as an int8 workload with its measured accuracies."""
    from satasim_atsn.train.config import TrainConfig
    from satasim_atsn.train.trainer import train_model

    config = TrainConfig(model=model, dataset=dataset, method=method, timesteps=timesteps, epochs=epochs,
                         batch_size=batch_size, lr=lr, seed=seed, train_subset=train_subset, test_images=test_images,
                         eval_images=eval_images, image_size=image_size, checkpoint_minutes=checkpoint_minutes,
                         loss=loss, output=output_mode, width=width, cl_init=cl_init, tau_cl=tau_cl, theta=theta,
                         augment=not no_augment, data_dir=data_dir, init_from=init_from,
                         quant_aware=quant_aware)
    if dataset not in DATASETS:
        raise TrainError.at(None, "--dataset", f"unknown dataset {dataset!r}", f"use one of {', '.join(DATASETS)}")
    _check_outputs(out_path, json_path, checkpoint, dataset, data_dir, init_from)
    summary = train_model(config, out_path, checkpoint=checkpoint, resume=resume, quiet=quiet)
    try:
        _write_json(json_path, summary)
    except SatasimError as error:  # the workload is written: say how to get its JSON without training again
        raise TrainError(f"{error}; the workload {out_path} is written, and the same command with --resume and "
                         "another --json writes the JSON again from the checkpoint without retraining") from None


@contextlib.contextmanager
def _reading_bar(quiet: bool, desc: str, total: int) -> Iterator[Callable[[int], object]]:
    """A bar over the images of an image folder being read (terminal only, not with --quiet)."""
    from satasim_atsn.report.progress import progress_bar

    with progress_bar(total, desc=desc, unit="img", quiet=quiet) as bar:
        yield bar.update


# what each --policy prints (--json keeps all): the policies' rows, and the lines about the ATSN rule's CL_t
_POLICY_ROWS = {"fixed": ("fixed",), "atsn": ("fixed", "atsn", "atsn_hw"), "dtsnn": ("fixed", "dtsnn")}
_ATSN_LINES = ("atsn_sweep", "gain_sweep", "confidence_profile", "confidence_ceiling")


def _shown_for_policy(table: dict, policy: str) -> dict:
    """The part of an evaluation table ``--policy`` prints: ``fixed`` and ``dtsnn`` leave out the ATSN rule's sweep,
    exit-test profile and ceiling (they printed under ``--policy dtsnn`` too); each shows its own thresholds only."""
    keep = _POLICY_ROWS.get(policy)
    if keep is None:
        return table
    shown = {k: v for k, v in table.items() if k not in ("fixed", "atsn", "atsn_hw", "dtsnn") or k in keep}
    if policy != "atsn":
        shown = {k: v for k, v in shown.items() if k not in _ATSN_LINES}
    reads = {"atsn": ("cl_init", "tau_cl"), "dtsnn": ("theta",)}.get(policy, ())
    shown["policy_params"] = {k: v for k, v in (table.get("policy_params") or {}).items() if k in reads}
    return shown


@click.command("evaluate")
@click.argument("workload_path", metavar="WORKLOAD", type=WORKLOAD_PATH)
@click.option("--policy", default="all", show_default=True, help="all | fixed | atsn | dtsnn (what to print)")
@click.option("--cl-init", default=None, type=NUMBER,
              help=f"ATSN CL_init (default: the workload's meta.exit_policy, else {CL_INIT_DEFAULT})")
@click.option("--tau-cl", default=None, type=NUMBER,
              help=f"ATSN tau_CL (default: the workload's meta.exit_policy, else {TAU_CL_DEFAULT})")
@click.option("--theta", default=None, type=NUMBER,
              help=f"DTSNN entropy threshold (default: the workload's meta.exit_policy, else {THETA_DEFAULT})")
@click.option("--lut-entries", default=None, type=int,
              help=f"the AT unit's exp-table entries for the hardware LUT line, as an architecture's "
                   f"exit_unit.exp_lut_entries (default {LUT_ENTRIES_DEFAULT})")
@click.option("--exp-frac-bits", default=None, type=int,
              help=f"the AT unit's fraction bits for the hardware LUT line, as an architecture's "
                   f"exit_unit.exp_frac_bits, {FRAC_BITS_RANGE[0]}..{FRAC_BITS_RANGE[1]} (default {ATSN_FRAC_BITS})")
@click.option("--dataset", default=None, help="evaluate on this dataset's whole test split instead of the "
              "workload's embedded inputs: " + " | ".join(DATASETS))
@click.option("--data-dir", type=PATH, default=None, help="dataset directory (with --dataset)")
@click.option("--image-size", default=None, type=int, help="imagefolder: resize every image to S x S (bilinear)")
@click.option("--json", "json_path", metavar="FILE", type=PATH, default=None,
              help="also write the results as JSON")
@click.option("--quiet", "-q", is_flag=True,
              help="no progress bar and no note line (the table is still printed; --json keeps the notes)")
def evaluate_command(workload_path: str, policy: str, cl_init: float | None, tau_cl: float | None,
                     theta: float | None, lut_entries: int | None, exp_frac_bits: int | None, dataset: str | None,
                     data_dir: str | None, image_size: int | None, json_path: str | None, quiet: bool) -> None:
    """Accuracy and average timestep of a workload: fixed T, ATSN (float and hardware rule), DTSNN, complexity,
    and why exits fire or not (per-t confidence profile, and the ceiling the output weights allow)."""
    from satasim_atsn.train.evaluation import evaluate_workload, format_table
    from satasim_atsn.workload.datasets import cross_dataset_note, with_test_split
    from satasim_atsn.workload.format import read_workload

    if policy not in ("all", "fixed", "atsn", "dtsnn"):
        raise SatasimError.at(None, "--policy", f"unknown policy {policy!r}", "use all, fixed, atsn or dtsnn")
    for option, value, (low, high), shipped in (("--lut-entries", lut_entries, LUT_ENTRIES_RANGE, LUT_ENTRIES_DEFAULT),
                                                ("--exp-frac-bits", exp_frac_bits, FRAC_BITS_RANGE, ATSN_FRAC_BITS)):
        if value is not None and not low <= value <= high:  # the architecture fields' bounds
            raise SatasimError.at(None, option, f"must be {low}..{high}, got {value}",
                                  f"the shipped AT unit has {shipped}")
    refuse_overwriting_inputs({"--json": json_path}, [workload_path])
    check_output_path(json_path, "--json")  # before the forward, not after it
    refuse_dataset_outputs({"--json": json_path}, dataset, data_dir)
    if dataset is None and (data_dir is not None or image_size is not None):
        raise SatasimError.at(None, "--data-dir/--image-size", "apply only to a --dataset",
                              "add --dataset (e.g. imagefolder), or drop them to use the embedded test images")
    if dataset == "synthetic" and data_dir is not None:  # as train refuses it: the folder would be ignored
        raise SatasimError.at(None, "--data-dir", "the synthetic dataset is generated, not read from a directory",
                              "drop --data-dir")
    if image_size is not None and dataset != "imagefolder":
        raise SatasimError.at(None, "--image-size", f"resizes image folders only; {dataset} images keep their size",
                              "drop --image-size")
    workload = read_workload(workload_path, "evaluate: its argument")
    if workload.is_statistical:
        raise SatasimError.at(workload_path, "kind", "a statistical workload has no weights to evaluate",
                              "evaluate a trained or imported workload")
    given = [o for o, v in (("--policy", None if policy in ("all", "fixed") else policy), ("--cl-init", cl_init),
                            ("--tau-cl", tau_cl), ("--theta", theta), ("--lut-entries", lut_entries),
                            ("--exp-frac-bits", exp_frac_bits)) if v is not None]
    if not workload.has_output and given:  # a spike-count network runs fixed T: no exit rule reads it
        raise SatasimError.at(workload_path, given[0], f"sets an exit rule, but the network ends in the spiking layer "
                              f"{workload.layers[-1]['name']!r} (no output layer): it runs fixed T and predicts by "
                              "spike counts", f"drop {', '.join(given)}")
    cl_init, tau_cl, theta = exit_settings(workload.meta, cl_init, tau_cl, theta)  # as `workload stats` does
    notes = []
    if dataset is not None:
        workload = with_test_split(workload, dataset, data_dir, image_size, partial(_reading_bar, quiet))
        note = cross_dataset_note(workload, dataset)
        notes = [note.removeprefix("note: ")] if note else []
        if note and not quiet:
            click.echo(note, err=True)
    from satasim_atsn.report.progress import paced, progress_bar
    from satasim_atsn.snn.forward import forward_progress

    # evaluate_workload runs the integer forward once (full T); every policy is read off its outputs
    with progress_bar(workload.num_images, desc="evaluate", unit="img", quiet=quiet, smoothing=0) as bar, \
            forward_progress(paced(bar)):
        table = evaluate_workload(workload, cl_init, tau_cl, theta,
                                  lut_entries=LUT_ENTRIES_DEFAULT if lut_entries is None else lut_entries,
                                  frac_bits=ATSN_FRAC_BITS if exp_frac_bits is None else exp_frac_bits)
    shown = _shown_for_policy(table, policy)
    # the name of the folder read: the same whether --data-dir is CIFAR's archive folder or the folder holding it
    source = (text_name(data_folder(dataset, data_dir).resolve().name) if dataset is not None and data_dir is not None
              else None)
    # before the printing, as `run` writes its files first: `evaluate W --json F | head` keeps F
    _write_json(json_path, {"workload": text_name(Path(workload_path).name), "inputs": dataset or "embedded",
                            "data_source": source, **table, "notes": notes})  # the folder's name only: same bytes
    count = table["images"]
    click.echo(format_table(shown, f"{workload.name}: {count} image{'s' if count != 1 else ''}, "
                                   f"T = {workload.timesteps}"))


COMMANDS: list = [train_command, evaluate_command]
