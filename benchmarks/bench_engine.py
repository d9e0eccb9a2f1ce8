"""Speed and memory of the engine (not a timed test).

    python benchmarks/bench_engine.py [--images 10000] [--arch archs/atsn16x16.yaml]
        [--workload workloads/vgg16_cifar10.npz] [--trained PATH.npz] [--trained-images 512]
        [--buffers 2,128,1024 --buffer-images 50]

Prints the wall time and peak RSS of ``simulate`` on the (statistical) workload, and, given a
trained workload, the ratio simulation / bare functional forward as ``satasim bench`` measures it.
``--buffers`` prints what head-of-line blocking costs: total cycles and PE input stalls of the
workload at each PE input-buffer size (bytes).
"""

from __future__ import annotations

import argparse
import resource
import time

from satasim_atsn.hw.arch import load_arch
from satasim_atsn.hw.commands import functional_floor
from satasim_atsn.hw.engine import simulate
from satasim_atsn.workload.format import read_workload


def peak_rss_mib() -> float:
    """Peak resident memory of this process in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main() -> None:
    """Run the benchmarks given on the command line."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="archs/atsn16x16.yaml")
    parser.add_argument("--workload", default="workloads/vgg16_cifar10.npz")
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--trained", default=None)
    parser.add_argument("--trained-images", type=int, default=512)
    parser.add_argument("--buffers", default=None, help="comma-separated pe.input_spike_buffer_bytes values")
    parser.add_argument("--buffer-images", type=int, default=50)
    args = parser.parse_args()
    arch = load_arch(args.arch)
    workload = read_workload(args.workload)
    if args.buffers:
        for size in (int(v) for v in args.buffers.split(",")):
            res = simulate(load_arch(args.arch, [f"pe.input_spike_buffer_bytes={size}"]), workload,
                           images=args.buffer_images)
            c = res.counters()
            stall = sum(sum(acc["pe"]["stall_input"]) for acc in c["accelerators"])
            busy = sum(sum(acc["pe"]["busy"]) for acc in c["accelerators"])
            print(f"input buffer {size:5d} B: total cycles {c['total_cycles']:,}, PE stall_input {stall:,}, "
                  f"PE busy {busy:,}, FPS {res.metrics()['fps']:.1f}")
        return
    simulate(arch, workload, images=1)  # numba caches warm
    t0 = time.perf_counter()
    result = simulate(arch, workload, images=args.images)
    wall = time.perf_counter() - t0
    print(f"{workload.name}: {args.images} images in {wall:.1f} s ({args.images / wall:.1f} images/s), "
          f"simulated {result.metrics()['fps']:.1f} FPS, peak RSS {peak_rss_mib():.0f} MiB")
    if args.trained:
        trained = read_workload(args.trained)
        n = min(args.trained_images, trained.num_images)
        simulate(arch, trained, images=1)
        functional_floor(arch, trained, 0, 1)
        t0 = time.perf_counter()
        functional_floor(arch, trained, 0, n)
        floor = time.perf_counter() - t0
        t0 = time.perf_counter()
        simulate(arch, trained, images=n)
        sim = time.perf_counter() - t0
        print(f"{trained.name}: forward {floor:.2f} s, simulation {sim:.2f} s, ratio {sim / floor:.2f}")


if __name__ == "__main__":
    main()
