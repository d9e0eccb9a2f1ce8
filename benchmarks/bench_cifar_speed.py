"""Training and integer-forward speed of a CIFAR-10 network as a fraction of this machine's sgemm rate.

    python benchmarks/bench_cifar_speed.py [--model vgg16] [--width 0.25] [--batch 64] [--steps 5]
        [--workload workloads/vgg16w025_cifar10_atsn.npz] [--images 512] [--json FILE]

Measured in one run, so that the fractions do not depend on how loaded the machine is:
- sgemm: float32 2048 x 2048 GEMMs through numpy (OpenBLAS), GFLOP/s;
- training: one STBP step (forward, L_imp, backward, SGD) of the model at batch ``--batch``,
  T = 4, on random 32x32 inputs; FLOPs counted as 3 x the dense forward (2 per MAC; the first
  layer once per image, the others T times), the usual forward + two backward GEMMs estimate;
- forward: ``snn/forward.py`` on a trained workload's embedded images at fixed T (dense FLOPs
  counted the same way, though the spikes are sparse).
Targets of issue 9: training and forward each >= 25% of the sgemm rate. Like the ``satasim`` command, it
first lets the allocator keep freed memory (satasim_atsn/runtime.py); ``SATASIM_SYSTEM_MALLOC=1`` measures
without that. Every argument and input is checked before anything is timed; a bad one is one line on
stderr and exit code 2, as with the satasim command.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "passive")
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

import numpy as np  # noqa: E402
from script_args import OneLineParser, positive  # noqa: E402


def sgemm_gflops(size: int = 2048, repeats: int = 5) -> float:
    """Best-of float32 GEMM rate of numpy's BLAS, GFLOP/s."""
    rng = np.random.default_rng(0)
    a, b = rng.random((size, size), dtype=np.float32), rng.random((size, size), dtype=np.float32)
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * size**3 / best / 1e9


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def dense_forward_flops(layers: list[dict], timesteps: int) -> float:
    """2 x MACs of one image over T timesteps, the first layer once (its current is computed once)."""
    from satasim_atsn.workload.networks import layer_macs

    macs = [layer_macs(ly) for ly in layers]
    first = next(i for i, m in enumerate(macs) if m)
    return 2.0 * (macs[first] + timesteps * (sum(macs) - macs[first]))


def training_rate(model: str, width: float, batch: int, steps: int) -> dict:
    """Median seconds per STBP step and its GFLOP/s."""
    from satasim_atsn.train.config import SGD
    from satasim_atsn.train.losses import loss_and_grad
    from satasim_atsn.train.models import build_spec
    from satasim_atsn.train.network import Network

    spec = build_spec(model, [3, 32, 32], 10, "membrane", width)
    net = Network(spec, 4, seed=0)
    opt = SGD(net, 0.9, 5e-4)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, 32, 32, 3)).astype(np.float32)
    y = rng.integers(0, 10, batch)
    times = []
    for i in range(steps + 1):
        start = time.perf_counter()
        f = net.forward(x, training=True)
        _, grad = loss_and_grad(f, y, "imp", "membrane")
        opt.step(net.backward(grad), 0.01)
        if i:
            times.append(time.perf_counter() - start)
    seconds = statistics.median(times)
    flops = 3 * batch * dense_forward_flops(spec, 4)
    return {"seconds_per_step": seconds, "gflops": flops / seconds / 1e9, "epoch_minutes_50k":
            seconds * 50000 / batch / 60}


def forward_rate(workload, images: int) -> dict:
    """Seconds per image of the integer forward of ``workload`` at fixed T and its dense GFLOP/s."""
    from satasim_atsn.snn.forward import run_forward

    count = min(images, workload.num_images)
    run_forward(workload, count=min(count, 16))  # compile the kernels
    seconds = _timed(lambda: run_forward(workload, count=count)) / count
    return {"images": count, "ms_per_image": 1000 * seconds,
            "gflops": dense_forward_flops(workload.layers, workload.timesteps) / seconds / 1e9}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line, checked: counts are whole numbers >= 1."""
    parser = OneLineParser(prog="bench_cifar_speed.py", description=__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="vgg16")
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--batch", type=positive, default=64)
    parser.add_argument("--steps", type=positive, default=5)
    parser.add_argument("--workload", default=None, help="a trained CIFAR workload for the forward rate")
    parser.add_argument("--images", type=positive, default=None, help="images of --workload run forward (default 512)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    if args.images is not None and not args.workload:  # it was silently ignored: no forward rate is measured
        parser.error("--images does nothing without --workload; give the trained workload whose images it counts")
    args.images = 512 if args.images is None else args.images
    return args


def checked_inputs(args: argparse.Namespace):
    """The workload of ``--workload`` (or None), after checking --model, --width and --json: a SatasimError
    before anything is timed."""
    from satasim_atsn.errors import SatasimError
    from satasim_atsn.fileio import check_output_path
    from satasim_atsn.train.models import build_spec
    from satasim_atsn.workload.format import read_workload

    build_spec(args.model, [3, 32, 32], 10, "membrane", args.width)
    check_output_path(args.json, "--json")
    if not args.workload:
        return None
    workload = read_workload(args.workload, "--workload")
    if workload.is_statistical:
        raise SatasimError.at(args.workload, "--workload", "a statistical workload has no weights to run forward",
                              "give a trained or imported workload (e.g. workloads/vgg16w025_cifar10_atsn.npz)")
    return workload


def main(argv: list[str] | None = None) -> int:
    """Measure and print (and with --json, write) the three rates and the two fractions."""
    from satasim_atsn.errors import SatasimError

    args = parse_args(argv)
    try:
        workload = checked_inputs(args)
    except SatasimError as error:
        print(f"bench_cifar_speed.py: error: {error}", file=sys.stderr)
        return 2
    from satasim_atsn.fileio import atomic_write_text
    from satasim_atsn.runtime import keep_freed_memory

    # as the satasim command does (SATASIM_SYSTEM_MALLOC=1 measures without it)
    result = {"allocator_keeps_freed_memory": keep_freed_memory(), "sgemm_gflops": sgemm_gflops()}
    result["training"] = training_rate(args.model, args.width, args.batch, args.steps)
    result["training"]["fraction_of_sgemm"] = result["training"]["gflops"] / result["sgemm_gflops"]
    if workload is not None:
        result["forward"] = forward_rate(workload, args.images)
        result["forward"]["fraction_of_sgemm"] = result["forward"]["gflops"] / result["sgemm_gflops"]
    result["sgemm_gflops_after"] = sgemm_gflops()
    print(json.dumps(result, indent=2))
    if args.json:
        atomic_write_text(args.json, json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
