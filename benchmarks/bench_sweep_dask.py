"""Wall time of one small study on local workers and on a local Dask cluster (not a timed test).

    python benchmarks/bench_sweep_dask.py [--images 4] [--workers 2]

Writes a 60-point engine study of the ATSN design on vgg_small (``--images`` per point) to a temporary
directory, runs it with ``--jobs WORKERS`` and on a ``LocalCluster`` of WORKERS one-thread worker processes
started without ``OMP_WAIT_POLICY`` (as a shell running ``dask worker`` starts them), prints both times and
checks that the two ``points.csv`` are the same bytes. Needs the ``[dask]`` extra.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

from script_args import OneLineParser

from satasim_atsn.study.runner import CSV_NAME, run_study
from satasim_atsn.study.spec import load_study

REPO = Path(__file__).resolve().parents[1]

STUDY = """name: bench_sweep_dask
mode: engine
arch: {repo}/archs/atsn16x16.yaml
workload: {repo}/workloads/vgg_small_fmnist_atsn.npz
images: {images}
vary:
  pe.input_spike_buffer_bytes: {{start: 32, stop: 256, factor: 2}}
  pe.output_spike_buffer_bytes: [64, 128, 256]
  pe.data_memory_bytes: [512, 1024, 2048, 4096, 8192]
metrics: [fps, energy_per_image_uJ, area_mm2]
"""


def main() -> int:
    """Time the study both ways and compare the journals' bytes."""
    parser = OneLineParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=4, help="images per point (default 4)")
    parser.add_argument("--workers", type=int, default=2, help="local workers and Dask workers (default 2)")
    args = parser.parse_args()
    if args.images < 1 or args.workers < 1:
        parser.error("--images and --workers must be >= 1")
    import distributed

    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "study.yaml"
        path.write_text(STUDY.format(repo=REPO, images=args.images))
        study = load_study(path)
        start = time.perf_counter()
        run_study(study, Path(scratch) / "local", jobs=args.workers, quiet=True)
        local = time.perf_counter() - start
        os.environ.pop("OMP_WAIT_POLICY", None)  # what `dask worker` started from a shell has
        with distributed.LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                                      host="127.0.0.1", scheduler_port=0, dashboard_address=None) as cluster:
            start = time.perf_counter()
            run_study(study, Path(scratch) / "dask", scheduler=cluster.scheduler_address, quiet=True)
            dask = time.perf_counter() - start
        same = (Path(scratch) / "local" / CSV_NAME).read_bytes() == (Path(scratch) / "dask" / CSV_NAME).read_bytes()
    print(f"{len(study.points())} points x {args.images} images: local --jobs {args.workers} {local:.1f} s, "
          f"Dask ({args.workers} workers x 1 thread) {dask:.1f} s; points.csv {'identical' if same else 'DIFFER'}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
