"""`satasim verify`: the fast engine against the literal per-cycle reference, on the user's own design.

The test suite checks engine = reference on thousands of random small designs (tests/test_engine_vs_reference.py);
a user with a design of their own can check it too: every counter of docs/microarchitecture.md section 9
(total cycles, per-image start and end cycles, per-PE busy and stall cycles, the exit unit's, every action
count, the DRAM channel's busy cycles) and the spikes each group emitted must be equal, on random small networks
(which exercise the design with other layer kinds, encodings, timesteps and residual joins) and, if given, on
the first images of the user's own workload. The reference is plain Python, one loop iteration per cycle, so
the user's workload is checked only when its estimated cost fits ``max_minutes``.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from satasim_atsn.errors import MappingError, SatasimError
from satasim_atsn.hw import engine
from satasim_atsn.hw.arch import Arch
from satasim_atsn.hw.reference import simulate_reference
from satasim_atsn.hw.results import SimResult
from satasim_atsn.workload.format import Workload
from satasim_atsn.workload.synthetic import random_workload

#: the reference's cost per simulated cycle of one busy accelerator, about the largest measured (EPYC-26, one image:
#: 1.0e-5 s for the full VGG16 on dtsnn16x16, 1.9e-5 s for VGG16 w0.25 and 4.2e-5 s for vgg_small on atsn16x16,
#: 5.0e-5 s for ResNet19 w0.125 on conventional16x16)
REFERENCE_SECONDS_PER_CYCLE = 5e-5


@dataclass
class Case:
    """One comparison: what ran, and where the two disagree (empty: they agree)."""

    label: str
    images: int
    total_cycles: int | None = None
    refused: str | None = None  # the one-line refusal both gave (a design that cannot map the network)
    differences: list[str] = field(default_factory=list)

    @property
    def agree(self) -> bool:
        return not self.differences

    def to_dict(self) -> dict[str, Any]:
        return {"case": self.label, "images": self.images, "total_cycles": self.total_cycles,
                "refused": self.refused, "agree": self.agree, "differences": self.differences}


def diff_counters(a: Any, b: Any, path: str = "") -> list[str]:
    """Paths where two counter trees differ (a: engine, b: reference), with both values."""
    out: list[str] = []
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b), key=str):
            if key not in a or key not in b:
                out.append(f"{path}.{key}: only in {'reference' if key not in a else 'engine'}")
            else:
                out.extend(diff_counters(a[key], b[key], f"{path}.{key}"))
    elif isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) and len(a) == len(b):
        if any(isinstance(v, (dict, list, tuple)) for v in a):
            for i, (x, y) in enumerate(zip(a, b, strict=True)):
                out.extend(diff_counters(x, y, f"{path}[{i}]"))
        elif list(a) != list(b):
            out.append(f"{path}: engine {list(a)} != reference {list(b)}")
    elif type(a) is not type(b) and not (isinstance(a, int) and isinstance(b, int)):
        out.append(f"{path}: engine type {type(a).__name__} != reference type {type(b).__name__}")
    elif a != b:
        out.append(f"{path}: engine {a!r} != reference {b!r}")
    return out


def compare_case(arch: Arch, workload: Workload, images: int, label: str, start: int = 0,
                 on_cycles: Callable[[int], None] | None = None, engine_result: SimResult | None = None) -> Case:
    """Run both on images [start, start + images) and list every counter and emitted-spike count that differs.

    A network the design cannot map must be refused by both, naming the same field and the same fix (the
    reference words its problem in its own way). ``on_cycles`` hears of the reference's progress (cycles);
    ``engine_result`` is the engine's run of the same images when the caller has it already."""
    case = Case(label, images)
    try:
        reference = simulate_reference(arch, workload, images, start, on_cycles)
    except MappingError as error:
        try:
            engine.simulate(arch, workload, images, start)
        except MappingError as engine_error:
            case.refused = str(engine_error)
            if (engine_error.field, _fix(engine_error)) != (error.field, _fix(error)):
                case.differences.append(f"refusal: engine {str(engine_error)!r} != reference {str(error)!r}")
        else:
            case.differences.append(f"refusal: the reference refuses ({error}), the engine runs")
        return case
    try:
        result = engine_result if engine_result is not None else engine.simulate(arch, workload, images, start)
    except MappingError as engine_error:
        case.differences.append(f"refusal: the engine refuses ({engine_error}), the reference runs")
        return case
    case.total_cycles = int(reference["total_cycles"])
    case.differences = diff_counters(result.counters(),
                                     {k: v for k, v in reference.items() if k != "pe_output_spikes"})
    emitted = {g["name"]: int(g["counts"]["pe_spikes_out"]) for g in result.layers if g["kind"] == "pe"}
    expected = {name: int(sum(v)) for name, v in reference["pe_output_spikes"].items()}
    if emitted != expected:
        case.differences.append(f"emitted spikes per group: engine {emitted} != reference {expected}")
    return case


def _fix(error: MappingError) -> str:
    """The fix a refusal suggests (its text after the first "; ")."""
    return str(error).partition("; ")[2]


def random_cases(arch: Arch, count: int, seed: int) -> list[tuple[str, Workload, int]]:
    """``count`` random small networks for ``arch`` (seeded): 1-3 images, 4x4 to 8x8 inputs of up to 4 or 8 channels,
    random encodings, timesteps and residual joins; a network without an output layer only where the design
    has no exit unit to need one."""
    cases = []
    for i in range(count):
        case_seed = seed + i
        images = 1 + case_seed % 3
        output_layer = arch.has_exit_unit or case_seed % 4 != 3
        workload = random_workload(case_seed, images=images, max_channels=(4, 8)[case_seed % 2],
                                   size=(4, 6, 8)[case_seed % 3], output_layer=output_layer)
        cases.append((f"random network, seed {case_seed}", workload, images))
    return cases


def estimated_reference_seconds(arch: Arch, total_cycles: int, images: int) -> float:
    """About how long the reference takes for a run the engine found to last ``total_cycles``."""
    busy = min(int(arch.accelerators), -(-images // int(arch.images_per_batch)))
    return total_cycles * busy * REFERENCE_SECONDS_PER_CYCLE


def check_affordable(arch: Arch, workload: Workload, images: int, start: int, max_minutes: float,
                     where: str) -> tuple[SimResult, float]:
    """The engine's run of the user's images and about how long the reference will take on them; a refusal if
    that is longer than allowed."""
    result = engine.simulate(arch, workload, images, start)
    total = int(result.counters()["total_cycles"])
    seconds = estimated_reference_seconds(arch, total, images)
    if seconds > max_minutes * 60:
        enough = (math.floor(seconds / 6) + 1) / 10  # minutes, one decimal, above the estimate: it passes the check
        fewer = "--images 1, " if images > 1 else ""  # one image already: no fewer to ask for
        took = f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"
        raise SatasimError.at(where, "--images", f"{images} image{'s' if images != 1 else ''} last {total:,} cycles, "
                              f"up to about {took} for the per-cycle reference (plain Python, one loop per cycle)",
                              f"use {fewer}a smaller workload, or allow it with --max-minutes {enough:g}")
    return result, seconds
