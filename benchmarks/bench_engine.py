"""Speed and memory of the engine (not a timed test).

    python benchmarks/bench_engine.py [--images 1000] [--arch archs/atsn16x16.yaml]
        [--workload workloads/vgg16_cifar10.npz] [--trained PATH.npz] [--trained-images 512]
        [--buffers 2,128,1024 --buffer-images 50]

Prints the wall time and peak RSS of ``simulate`` on the (statistical) workload, and, given a
trained workload, the ratio simulation / bare functional forward as ``satasim bench`` measures it.
``--buffers`` prints what head-of-line blocking costs: total cycles and PE input stalls of the
workload at each PE input-buffer size (bytes); it is a run of its own (``--images``, ``--trained`` and
``--trained-images`` with it, or ``--buffer-images`` without it, are refused: they would do nothing).
Every input is read and checked before anything is timed; a bad argument or file is one line on
stderr and exit code 2, as with the satasim command.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time

from script_args import OneLineParser, positive

from satasim_atsn.errors import SatasimError
from satasim_atsn.hw.arch import load_arch
from satasim_atsn.hw.commands import functional_floor
from satasim_atsn.hw.engine import simulate
from satasim_atsn.hw.run_checks import image_count
from satasim_atsn.workload.format import read_workload


def peak_rss_mib() -> float:
    """Peak resident memory of this process in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def sizes(text: str) -> list[int]:
    """An argparse type: comma-separated byte counts, each >= 1."""
    return [positive(part) for part in text.split(",")]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line, checked: counts are whole numbers >= 1."""
    parser = OneLineParser(prog="bench_engine.py", description=__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="archs/atsn16x16.yaml")
    parser.add_argument("--workload", default="workloads/vgg16_cifar10.npz")
    parser.add_argument("--images", type=positive, default=None, help="images timed (default 1000)")
    parser.add_argument("--trained", default=None)
    parser.add_argument("--trained-images", type=positive, default=None, help="default 512")
    parser.add_argument("--buffers", type=sizes, default=None,
                        help="comma-separated pe.input_spike_buffer_bytes values")
    parser.add_argument("--buffer-images", type=positive, default=None, help="default 50")
    args = parser.parse_args(argv)
    # --buffers is its own run: the options of the timing run were silently ignored with it, and the reverse
    mode, other = (("--buffers", ("--images", "--trained", "--trained-images")) if args.buffers else
                   ("the timing run (no --buffers)", ("--buffer-images",)))
    ignored = [opt for opt in other if getattr(args, opt[2:].replace("-", "_")) is not None]
    if not args.buffers and args.trained_images is not None and args.trained is None:
        parser.error("--trained-images does nothing without --trained; give the trained workload whose images it "
                     "counts")
    if ignored:
        parser.error(f"{' and '.join(ignored)} {'does' if len(ignored) == 1 else 'do'} nothing with {mode}; run "
                     "--buffers [--buffer-images N] and the timing run [--images N --trained X.npz] separately")
    args.images = 1000 if args.images is None else args.images
    args.trained_images = 512 if args.trained_images is None else args.trained_images
    args.buffer_images = 50 if args.buffer_images is None else args.buffer_images
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks given on the command line; a bad input is one line and exit code 2."""
    args = parse_args(argv)
    try:
        run(args)
    except SatasimError as error:
        print(f"bench_engine.py: error: {error}", file=sys.stderr)
        return 2
    return 0


def run(args: argparse.Namespace) -> None:
    """Read and check every input, then time what ``args`` asks for."""
    arch = load_arch(args.arch)
    workload = read_workload(args.workload)
    if args.buffers:
        designs = [(size, load_arch(args.arch, [f"pe.input_spike_buffer_bytes={size}"])) for size in args.buffers]
        image_count(workload, args.buffer_images)
        for size, design in designs:
            res = simulate(design, workload, images=args.buffer_images)
            c = res.counters()
            stall = sum(sum(acc["pe"]["stall_input"]) for acc in c["accelerators"])
            busy = sum(sum(acc["pe"]["busy"]) for acc in c["accelerators"])
            print(f"input buffer {size:5d} B: total cycles {c['total_cycles']:,}, PE stall_input {stall:,}, "
                  f"PE busy {busy:,}, FPS {res.metrics()['fps']:.1f}")
        return
    trained = read_workload(args.trained) if args.trained else None
    image_count(workload, args.images)
    simulate(arch, workload, images=1)  # numba caches warm; a design that cannot run the workload stops here
    if trained is not None:
        simulate(arch, trained, images=1)
        functional_floor(arch, trained, 0, 1)
    t0 = time.perf_counter()
    result = simulate(arch, workload, images=args.images)
    wall = time.perf_counter() - t0
    print(f"{workload.name}: {args.images} images in {wall:.1f} s ({args.images / wall:.1f} images/s), "
          f"simulated {result.metrics()['fps']:.1f} FPS, peak RSS {peak_rss_mib():.0f} MiB")
    if trained is not None:
        n = min(args.trained_images, trained.num_images)
        t0 = time.perf_counter()
        functional_floor(arch, trained, 0, n)
        floor = time.perf_counter() - t0
        t0 = time.perf_counter()
        simulate(arch, trained, images=n)
        sim = time.perf_counter() - t0
        what = "draw" if trained.is_statistical else "forward"  # a statistical workload's floor is its draw
        print(f"{trained.name}: {what} {floor:.4g} s, simulation {sim:.4g} s, ratio {sim / floor:.2f}")


if __name__ == "__main__":
    sys.exit(main())
