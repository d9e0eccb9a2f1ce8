"""Run satasim's commands as other CPUs would, and check that every output is byte-identical.

CI may run on a machine of another kind than the one a result was made on, and the same inputs must give
the same bytes there (README, "On any machine"). This script makes this machine behave like others where
the last bits of float math could differ: numba compiles its kernels for another CPU (``NUMBA_CPU_NAME``, so
without AVX-512 or without AVX at all), numpy dispatches fewer SIMD paths (``NPY_DISABLE_CPU_FEATURES``) and
OpenBLAS runs another core's kernels (``OPENBLAS_CORETYPE``). Each profile runs the same commands in its own
directory with the same relative output names (so even the command lines reports record are equal) and with
its own numba cache, then every file is compared with the host's. What the commands read besides the
checkout (two small studies and a seeded folder of PNG images to train on) is written once into DIR/inputs.

    python benchmarks/cross_cpu.py [--out DIR] [--profile NAME ...]

It prints one line per profile and one per differing file, and exits 1 if any file differs. What is not
expected to be identical, and so not compared: the training checkpoints (their float32 weights go through BLAS,
whose summation order depends on the CPU; README, "On any machine"); the workloads those trainings export
are compared. tests/test_cross_cpu.py runs a few of these commands on two profiles (``pytest -m slow``).
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

#: the machines emulated: environment variables read by numba, numpy and OpenBLAS at start-up
PROFILES: dict[str, dict[str, str]] = {
    "host": {},
    # an AVX2 machine (Zen 2/3, Haswell-Skylake client): no AVX-512 anywhere
    "avx2": {"NUMBA_CPU_NAME": "haswell", "NUMBA_CPU_FEATURES": "+64bit", "OPENBLAS_CORETYPE": "Haswell",
             "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR"},
    # an Intel AVX-512 server (the Xeons of CI clouds): AVX-512 numba code and OpenBLAS's SkylakeX kernels
    "skylakex": {"NUMBA_CPU_NAME": "skylake-avx512", "NUMBA_CPU_FEATURES": "+64bit", "OPENBLAS_CORETYPE": "SkylakeX"},
    # an old x86-64-v2 machine: SSE4.2 only, no AVX or FMA in numba, numpy or OpenBLAS
    "sse42": {"NUMBA_CPU_NAME": "nehalem", "NUMBA_CPU_FEATURES": "+64bit", "OPENBLAS_CORETYPE": "Nehalem",
              "NPY_DISABLE_CPU_FEATURES": "X86_V3 X86_V4 AVX512_ICL AVX512_SPR"},
}

#: what this CPU must have to run a profile's code (numpy's names for the host's features)
REQUIRES: dict[str, tuple[str, ...]] = {"host": (), "avx2": ("AVX2", "FMA3"), "skylakex": ("AVX512_SKX",),
                                        "sse42": ("SSE42",)}


def supported(name: str) -> bool:
    """Whether this CPU can run profile ``name``'s code (an emulated CPU may only have fewer features)."""
    try:
        from numpy._core._multiarray_umath import __cpu_features__
    except ImportError:  # numpy 1.x
        from numpy.core._multiarray_umath import __cpu_features__

    return all(__cpu_features__.get(feature, False) for feature in REQUIRES[name])


#: the commands of one profile, run in its directory; ``{repo}`` is the checkout (inputs are read from it)
COMMANDS: list[str] = [
    "satasim run {repo}/archs/atsn16x16.yaml {repo}/workloads/vgg16_cifar10.npz --images 40 --json run_vgg16.json -q",
    "satasim run {repo}/archs/conventional16x16.yaml {repo}/workloads/vgg16w03125e40_cifar10_atsn.npz --images 16 "
    "--json run_trained.json -q",
    "satasim run {repo}/archs/dtsnn16x16.yaml {repo}/workloads/resnet19w0125_cifar10_atsn.npz --images 16 "
    "--json run_resnet.json -q",
    "satasim run {repo}/archs/atsn16x16.yaml {repo}/workloads/vgg_small_fmnist_atsn.npz --json run_fmnist.json -q",
    "satasim workload stats {repo}/workloads/vgg_small_fmnist_atsn.npz -o twin.npz",
    "satasim workload stats {repo}/workloads/resnet19w0125_cifar10_atsn.npz -o twin_resnet.npz",
    "satasim run {repo}/archs/atsn16x16.yaml twin.npz --images 50 --json run_twin.json -q",
    "satasim evaluate {repo}/workloads/vgg16w03125e40_cifar10_atsn.npz --json evaluate.json",
    "satasim workload rates {repo}/workloads/vgg16w025_cifar10_atsn.npz --network vgg16 --dataset cifar10 "
    "--images 64 -o rates.yaml",
    "satasim workload build --network vgg16 --rates rates.yaml --dataset cifar10 --num-images 30 -o built.npz",
    "satasim run {repo}/archs/atsn16x16.yaml built.npz --json run_built.json -q",
    "satasim compare {repo}/archs/conventional16x16.yaml {repo}/archs/dtsnn16x16.yaml {repo}/archs/atsn16x16.yaml "
    "{repo}/workloads/vgg_small_fmnist_atsn.npz --images 64 -o cmp -q",
    "satasim train --model vgg_small --dataset synthetic --epochs 1 --train-subset 256 --test-images 16 "
    "--eval-images 64 -q -o trained.npz --json train.json",
    # the engine against the per-cycle reference, on random networks and on a twin's image
    "satasim verify {repo}/archs/atsn16x16.yaml --random 2 --json verify.json -q",
    "satasim workload stats {repo}/workloads/vgg_small_fmnist_atsn.npz --rates-policy dtsnn --per-channel "
    "-o twin_dtsnn.npz --json twin_dtsnn.json",
    "satasim workload stats {repo}/workloads/vgg16w025_cifar10_atsn.npz --rates-policy fixed --no-spike-rows "
    "--no-input-rows --no-exit-steps --images 40 -o twin_fixed.npz --json twin_fixed.json",
    "satasim run {repo}/archs/dtsnn16x16.yaml twin_dtsnn.npz --images 30 --json run_twin_dtsnn.json -q",
    "satasim run {repo}/archs/conventional16x16.yaml twin_fixed.npz --images 8 --json run_twin_fixed.json -q",
    "satasim verify {repo}/archs/dtsnn16x16.yaml twin_dtsnn.npz --random 1 --seed 7 --json verify_twin.json -q",
    # a statistical workload of a user's network from one rate, with exit means
    "satasim workload build --network {repo}/examples/my_net.yaml --rate 0.15 --timesteps 6 --exit-mean atsn=2.7 "
    "--exit-mean dtsnn=3.1 --num-images 60 -o quick.npz --json quick.json",
    "satasim run {repo}/archs/atsn16x16.yaml quick.npz --json run_quick.json -q",
    # evaluations with other exit parameters than the stored ones
    "satasim evaluate {repo}/workloads/vgg_small_fmnist_dtsnn.npz --theta 0.3 --json evaluate_dtsnn.json -q",
    "satasim evaluate {repo}/workloads/vgg16w025_cifar10_atsn.npz --cl-init 0.997 --tau-cl 0.9995 "
    "--json evaluate_atsn.json -q",
    # studies: an engine sweep over two designs and a functional sweep of the exit parameters
    "satasim sweep {inputs}/engine_study.yaml -o sweep_engine -j 1 -q",
    "satasim sweep {inputs}/functional_study.yaml -o sweep_functional -j 1 -q",
    "satasim compare {repo}/archs/atsn16x16.yaml "
    "{repo}/archs/dtsnn16x16.yaml={repo}/workloads/vgg_small_fmnist_dtsnn.npz "
    "{repo}/workloads/vgg_small_fmnist_atsn.npz --images 20 --baseline 1 -o cmp_own --json cmp_own.json -q",
    # training on an image folder (its exported workload; the checkpoint is not compared) and its evaluation
    "satasim train --model vgg_small --dataset imagefolder --data-dir {inputs}/images --image-size 16 --epochs 1 "
    "--batch-size 16 --test-images 12 -T 3 --method dtsnn -q -o trained_images.npz --json train_images.json",
    "satasim evaluate trained_images.npz --dataset imagefolder --data-dir {inputs}/images --image-size 16 "
    "--json evaluate_images.json -q",
    # NIR out and back in
    "satasim workload export {repo}/workloads/vgg_small_fmnist_atsn.npz --nir exported.nir",
    "satasim workload import exported.nir --inputs {repo}/workloads/vgg_small_fmnist_atsn.npz --input-scale 1 "
    "-o imported.npz --json import.json",
    # quick parts of the paper's reproduction and of the validation
    "satasim reproduce twin -o reproduce_twin --images 16 -q",
    "satasim reproduce table1 -o reproduce_table1 --images 100 -q",
    "satasim validate -o validate --images 2 --json validate.json -q",
    # summaries of an imported and of a built workload, and an evaluation on a dataset's test split
    "satasim workload info imported.npz --json info_imported.json",
    "satasim workload info quick.npz --json info_quick.json",
    "satasim evaluate trained.npz --dataset synthetic --json evaluate_synthetic.json -q",
]

#: input files the commands read from ``{inputs}`` (made once, shared by every profile, not compared);
#: ``{repo}`` in their text is the checkout
STUDIES: dict[str, str] = {
    "engine_study.yaml": """name: cross_cpu_engine
description: two designs and two PE data memories on the trained Fashion-MNIST workload
mode: engine
workload: {repo}/workloads/vgg_small_fmnist_atsn.npz
images: 24
vary:
  arch: [{repo}/archs/atsn16x16.yaml, {repo}/archs/dtsnn16x16.yaml]
  pe.data_memory_bytes: [512, 1024]
metrics: [fps, latency_us, energy_per_image_uJ, area_mm2, power_mW, edp_uJ_ms, avg_timestep]
plots:
  - {{x: area_mm2, y: energy_per_image_uJ, color: pe.data_memory_bytes}}
""",
    "functional_study.yaml": """name: cross_cpu_functional
description: the ATSN exit parameters on the trained Fashion-MNIST workload
mode: functional
workload: {repo}/workloads/vgg_small_fmnist_atsn.npz
images: 200
vary:
  exit_unit.tau_cl: {{start: 0.9950, stop: 0.9998, step: 0.0012}}
  exit_unit.cl_init: {{start: 0.9950, stop: 0.9998, step: 0.0012}}
metrics: [accuracy, avg_timestep, complexity, accuracy_hw_rule, avg_timestep_hw_rule, hw_float_disagreement]
plots:
  - {{x: avg_timestep, y: accuracy, color: exit_unit.tau_cl}}
""",
}


def make_inputs(where: Path) -> Path:
    """Write the studies and a small seeded image folder (3 classes of 20 x 20 RGB PNGs) into ``where``."""
    import numpy as np
    from PIL import Image

    where.mkdir(parents=True, exist_ok=True)
    for name, text in STUDIES.items():
        (where / name).write_text(text.format(repo=REPO))
    rng = np.random.default_rng(5)
    for split, count in (("train", 24), ("test", 8)):
        for label, cls in enumerate(("cat", "dog", "eel")):
            folder = where / "images" / split / cls
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                pixels = (rng.integers(0, 256, (20, 20, 3)) // (label + 1)).astype(np.uint8)
                Image.fromarray(pixels).save(folder / f"{i:03d}.png")
    return where

NOT_COMPARED = ("trained.npz.ckpt.npz", "trained_images.npz.ckpt.npz")


def run_profile(name: str, out: Path, commands: list[str] = COMMANDS) -> Path:
    """Run ``commands`` under profile ``name`` in ``out/name`` (emptied first); return that directory.

    ``out`` may be relative: it is made absolute first, as each command runs in ``out/name`` and reads
    ``out/inputs``."""
    out = out.resolve()
    where = out / name
    shutil.rmtree(where, ignore_errors=True)
    where.mkdir(parents=True)
    inputs = out / "inputs"
    if not inputs.is_dir():
        make_inputs(inputs)
    env = {**os.environ, **PROFILES[name], "NUMBA_CACHE_DIR": str(out / f"numba-cache-{name}")}
    for command in commands:
        argv = command.format(repo=REPO, inputs=inputs).split()
        with open(where / "log.txt", "a") as log:  # stdout and stderr name no directory of the profile's own
            done = subprocess.run(argv, cwd=where, env=env, stdout=log, stderr=subprocess.STDOUT, check=False)
        if done.returncode != 0:
            raise SystemExit(f"{name}: `{command}` failed (exit {done.returncode}); see {where / 'log.txt'}")
    return where


def differing_files(reference: Path, other: Path) -> list[str]:
    """Relative paths of the files of ``reference`` that ``other`` lacks or holds with other bytes."""
    differ = []
    for path in sorted(p for p in reference.rglob("*") if p.is_file()):
        rel = path.relative_to(reference)
        if rel.name in NOT_COMPARED:
            continue
        twin = other / rel
        if not twin.is_file() or twin.read_bytes() != path.read_bytes():
            differ.append(str(rel))
    return differ


def foreign_entries(out: Path) -> list[str]:
    """Names in ``out`` that this script does not make (it empties inputs/ and each profile's folder)."""
    if not out.is_dir():
        return []
    ours = {"inputs", *PROFILES}
    return sorted(p.name for p in out.iterdir() if p.name not in ours and not p.name.startswith("numba-cache-"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="/tmp/satasim-cross-cpu",
                        help="scratch directory (new, empty, or a former --out: its inputs/ and profile folders are "
                             "emptied)")
    parser.add_argument("--profile", action="append", choices=[p for p in PROFILES if p != "host"],
                        help="profiles to compare with the host (default: all)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    if foreign_entries(out):  # `--out .` or `--out ~` would empty the user's own inputs/ or host/ folder
        print(f"cross_cpu.py: error: --out: {out} holds files this script did not make "
              f"({', '.join(foreign_entries(out)[:3])}); give a new or empty directory, or a former --out",
              file=sys.stderr)
        return 2
    shutil.rmtree(out / "inputs", ignore_errors=True)  # made afresh: a former run's may be of another version
    try:
        make_inputs(out / "inputs")
    except OSError as error:  # --out under a file, or where nothing can be made: one line, before any command
        print(f"cross_cpu.py: error: --out: cannot make {out / 'inputs'} ({error.strerror or error}); "
              "choose a writable directory", file=sys.stderr)
        return 2
    host = run_profile("host", out)
    failed = False
    for name in args.profile or [p for p in PROFILES if p != "host"]:
        if not supported(name):
            print(f"{name}: skipped, this CPU lacks {', '.join(REQUIRES[name])}")
            continue
        differ = differing_files(host, run_profile(name, out))
        print(f"{name}: {'identical' if not differ else f'{len(differ)} files differ'} "
              f"({sum(1 for p in host.rglob('*') if p.is_file() and p.name not in NOT_COMPARED)} files compared)")
        for rel in differ:
            print(f"  differs: {rel}")
        failed |= bool(differ)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
