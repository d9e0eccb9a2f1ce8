"""`satasim verify`: the fast engine against the literal per-cycle reference, on the user's own design.

The test suite checks engine = reference on thousands of random small designs (tests/test_engine_vs_reference.py);
a user with a design of their own can check it too: every counter of docs/microarchitecture.md section 9
(total cycles, per-image start and end cycles, per-PE busy and stall cycles, the exit unit's, every action
count, the DRAM channel's busy cycles) and the spikes each group emitted must be equal, on random small networks
(which exercise the design with other layer kinds, encodings, timesteps and residual joins) and, if given, on
the first images of the user's own workload. The reference is plain Python, one loop iteration per cycle, so
the user's workload is checked only when its estimated cost fits ``max_minutes``. That budget covers everything
verify runs, the engine's runs too: each is estimated before it runs (:func:`estimated_engine_seconds`, from the
design and the network alone) and the reference's from the engine's counters, so the plan is the same on every
machine.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from satasim_atsn.errors import MappingError, SatasimError, shown, whole_count
from satasim_atsn.hw import engine, run_checks
from satasim_atsn.hw.arch import Arch
from satasim_atsn.hw.reference import simulate_reference
from satasim_atsn.hw.results import SimResult
from satasim_atsn.workload.format import Workload
from satasim_atsn.workload.synthetic import random_workload

#: the reference's cost (plain Python, one loop iteration per cycle; EPYC-26, measured with tqdm off, docs in
#: README "What cycle-accurate means here"): about a second of set-up (functional trace, mapping), a little per
#: cycle of each busy accelerator, and, in its compute phases, a step of every one of the accelerator's PEs per
#: cycle. Measured per PE and compute cycle: 1.5e-7 to 7.6e-7 s (random networks on 16x16 to 512x512 arrays,
#: vgg_small on 16x16 and 64x64, the full VGG16 on dtsnn16x16 3.8e-7); the largest is taken, so the estimate is an
#: upper bound (up to about 5x on the largest arrays), and the memory-stall and exit-unit cycles cost 2e-6 s.
REFERENCE_SETUP_SECONDS = 1.0
REFERENCE_SECONDS_PER_CYCLE = 2e-6
REFERENCE_SECONDS_PER_PE_CYCLE = 8e-7

#: the engine's cost, bounded before it runs from the design and the network alone (EPYC-znver4, session 33, a shared
#: 2-core machine, warm kernel cache): set-up (mapping, the static model, a kernel's first load: 0.02-1.4 s for the
#: random networks on 16x16 to 512x512 PEs), a share per PE (vgg_small's first image: 0.09 s on 16x16 PEs, 1.6 s on
#: 64x64, 8.7 s on 512x512), and per image a little plus its dense synaptic operations (every weight at every output
#: position each timestep, :func:`dense_operations`): 1.2e-8 s each for vgg_small, 4.9e-9 for the quarter-width
#: VGG16, 1.4e-8 for ResNet19 at 1/8 width; 1.2e-10 to 8e-10 for the statistical VGG16 (drawn, not computed: 0.12 to
#: 1.0 s an image). The largest, rounded up: an upper bound, by up to about 20x for a small network on few PEs.
ENGINE_SETUP_SECONDS = 1.5
ENGINE_SECONDS_PER_PE = 4e-5
ENGINE_SECONDS_PER_IMAGE = 0.1
ENGINE_SECONDS_PER_OPERATION = 1.5e-8
ENGINE_SECONDS_PER_DRAWN_OPERATION = 2e-9


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


def named_by_file(text: str | None, arch: Arch, workload_path: str | None = None) -> str | None:
    """``text`` (a refusal naming ``arch``'s file, or the user's workload, as typed) with each file named by its name
    alone, as --json records it: the same bytes from any directory."""
    if text is None:
        return None
    if workload_path:
        text = text.replace(workload_path, Path(workload_path).name)
    return text.replace(arch.where, Path(arch.where).name)


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
        result = engine_result if engine_result is not None else engine.simulate(arch, workload, images, start)
    except MappingError as engine_error:
        return _compare_refusal(case, engine_error, arch, workload, images, start)
    try:
        reference = simulate_reference(arch, workload, images, start, on_cycles)
    except MappingError as error:
        case.differences.append(f"refusal: the reference refuses ({error}), the engine runs")
        return case
    case.total_cycles = int(reference["total_cycles"])
    case.differences = diff_counters(result.counters(),
                                     {k: v for k, v in reference.items() if k != "pe_output_spikes"})
    emitted = {g["name"]: int(g["counts"]["pe_spikes_out"]) for g in result.layers if g["kind"] == "pe"}
    expected = {name: int(sum(v)) for name, v in reference["pe_output_spikes"].items()}
    if emitted != expected:
        case.differences.append(f"emitted spikes per group: engine {emitted} != reference {expected}")
    return case


class _ReferenceStarted(Exception):
    """The reference reached its first cycle: it mapped the network (raised to stop it there)."""


def _stop_at_first_cycle(now: int) -> None:
    """``on_cycles`` that stops the reference at its first cycle."""
    raise _ReferenceStarted(now)


def _compare_refusal(case: Case, engine_error: MappingError, arch: Arch, workload: Workload, images: int,
                     start: int) -> Case:
    """The engine refused: the reference must refuse too, for the same field and fix. It refuses while mapping,
    before its first cycle, so one that does not is stopped there (a difference, found without running it)."""
    try:
        simulate_reference(arch, workload, images, start, _stop_at_first_cycle)
    except MappingError as error:
        case.refused = str(engine_error)
        if (engine_error.field, _fix(engine_error)) != (error.field, _fix(error)):
            case.differences.append(f"refusal: engine {str(engine_error)!r} != reference {str(error)!r}")
        return case
    except _ReferenceStarted:
        pass
    case.differences.append(f"refusal: the engine refuses ({engine_error}), the reference runs")
    return case


def _fix(error: MappingError) -> str:
    """The fix a refusal suggests (its text after the first "; ")."""
    return str(error).partition("; ")[2]


def network_widths(arch: Arch) -> tuple[int, int | None] | SatasimError:
    """The membrane widths of random networks that fit ``arch`` (PE bits, output bits or None for the default 32
    bits), or, unraised, why none fits: a workload's membranes are 8 to 32 bits wide, its output membranes 8 to 64."""
    pe_bits, out_bits = int(arch.pe.vmem_bits), int(arch.exit_unit.vmem_bits)
    if pe_bits < 8:
        return SatasimError.at(arch.where, "pe.vmem_bits", f"its {pe_bits}-bit PE membranes hold no workload's (8 to "
                               "32 bits), so no random network fits and there is nothing to compare",
                               "give pe.vmem_bits >= 8")
    if arch.has_exit_unit and out_bits < 8:
        return SatasimError.at(arch.where, "exit_unit.vmem_bits", f"its {out_bits}-bit output membranes hold no "
                               "workload's (8 to 64 bits), so no random network fits and there is nothing to compare",
                               "give exit_unit.vmem_bits >= 8")
    bits = min(pe_bits, 16)
    if arch.has_exit_unit:
        return bits, (out_bits if out_bits < 32 else None)
    return bits, (bits if bits < 16 else None)  # without an exit tile the PEs hold the output membranes too


def random_cases(arch: Arch, count: int, seed: int) -> list[tuple[str, Workload, int]]:
    """``count`` random small networks for ``arch`` (seeded): 1-3 images, 4x4 to 8x8 inputs of up to 4 or 8 channels,
    random encodings, timesteps and residual joins; a network without an output layer only where the design
    has no exit unit to need one. Their membranes fit the design's (:func:`network_widths`): a design narrower than
    16-bit PE or 32-bit output membranes gets networks shrunk to fit; none where none fits."""
    widths = network_widths(arch)
    if isinstance(widths, SatasimError):
        return []
    bits, out_bits = widths
    cases = []
    for i in range(count):
        case_seed = seed + i
        images = 1 + case_seed % 3
        output_layer = arch.has_exit_unit or case_seed % 4 != 3
        workload = random_workload(case_seed, images=images, max_channels=(4, 8)[case_seed % 2],
                                   size=(4, 6, 8)[case_seed % 3], output_layer=output_layer, vmem_bits=bits,
                                   output_vmem_bits=out_bits)
        cases.append((f"random network, seed {case_seed}", workload, images))
    return cases


def reference_pe_cycles(counters: dict) -> int:
    """PE steps the reference takes: each busy accelerator's compute cycles (up to its last image's end, less its
    memory stalls and exit-unit phases, in which it steps no PE) times its PEs."""
    images, steps = counters["images"], 0
    for a, acc in enumerate(counters["accelerators"]):
        ends = [end for end, on in zip(images["end_cycle"], images["accelerator"], strict=True) if on == a]
        if ends:
            unit = acc["exit_unit"]
            compute = max(ends) - acc["pe"]["stall_memory"][0] - unit["busy"] - unit["stall_input"]
            steps += max(compute, 0) * len(acc["pe"]["busy"])
    return steps


def estimated_reference_seconds(counters: dict) -> float:
    """About how long (at most) the reference takes for a run whose engine counters are ``counters`` (a SimResult is
    taken for its counters: passing the result itself raised a TypeError; h1, session 47)."""
    if hasattr(counters, "counters") and callable(counters.counters):
        counters = counters.counters()
    busy = len(set(counters["images"]["accelerator"]))
    return (REFERENCE_SETUP_SECONDS + counters["total_cycles"] * busy * REFERENCE_SECONDS_PER_CYCLE
            + reference_pe_cycles(counters) * REFERENCE_SECONDS_PER_PE_CYCLE)


def dense_operations(workload: Workload) -> int:
    """Synaptic operations of one image over all T timesteps were every neuron to spike: each conv or dense weight at
    each output position each timestep, and one per output neuron of any other layer (pool, join, flatten)."""
    total = 0
    for layer in workload.layers:
        out = math.prod(int(v) for v in layer["out_shape"])
        if layer["type"] == "conv":
            total += out * int(layer["in_shape"][0]) * int(layer["kernel"]) ** 2
        elif layer["type"] in ("linear", "output"):
            total += out * math.prod(int(v) for v in layer["in_shape"])
        else:
            total += out
    return total * int(workload.timesteps)


def estimated_engine_seconds(arch: Arch, workload: Workload, images: int) -> float:
    """About how long (at most) the engine takes on ``images`` images of ``workload`` on ``arch``, before it runs."""
    per_operation = ENGINE_SECONDS_PER_DRAWN_OPERATION if workload.is_statistical else ENGINE_SECONDS_PER_OPERATION
    per_image = ENGINE_SECONDS_PER_IMAGE + dense_operations(workload) * per_operation
    return ENGINE_SETUP_SECONDS + arch.num_pes * ENGINE_SECONDS_PER_PE + images * per_image


def minutes_enough(seconds: float) -> float:
    """A --max-minutes (one decimal) above ``seconds``: followed literally, it passes the check."""
    return (math.floor(seconds / 6) + 1) / 10


def spent(seconds: float) -> str:
    """A duration as a message gives it: minutes from 90 s, else seconds."""
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"


@dataclass
class Job:
    """One comparison to run: the images, and the engine's run of them (None: the engine refused the network, or,
    for a skipped job, did not run)."""

    label: str
    workload: Workload
    images: int
    engine_result: SimResult | None = None
    seconds: float = 0.0  # the reference's estimated time (0 until the engine has run)
    engine_seconds: float = 0.0  # the engine's estimated time, bounded before it runs
    asked: int = 0  # the images first tried (a random network shrunk to one image tried more first)

    @property
    def total_seconds(self) -> float:
        """The engine's and the reference's estimated time together."""
        return self.engine_seconds + self.seconds

    def skip_reason(self) -> str:
        """Why a skipped job was not compared, as verify prints it."""
        first = "even its first image" if self.images == 1 else f"its {self.images} images"
        if self.engine_result is None:
            return f"{first} would take the engine alone up to about {spent(self.engine_seconds)}"
        return f"{first} would take the reference up to about {spent(self.seconds)}"


@dataclass
class Plan:
    """The random networks to compare within verify's time budget, those shrunk or skipped for it, and the estimated
    seconds of the engine runs spent on networks then shrunk or skipped."""

    jobs: list[Job] = field(default_factory=list)
    shrunk: list[str] = field(default_factory=list)
    skipped: list[Job] = field(default_factory=list)
    spent_engine_seconds: float = 0.0

    def note(self, max_minutes: float) -> str:
        """What the budget left out, for the verdict ("" if nothing)."""
        if not (self.shrunk or self.skipped):
            return ""
        parts = [f"{len(self.shrunk)} shrunk to 1 image"] if self.shrunk else []
        more = sum(job.total_seconds for job in self.skipped)
        if self.skipped:
            parts.append(f"{len(self.skipped)} skipped (about {spent(more)} more of the engine and the reference)")
        return (f"; of the random networks {' and '.join(parts)} to keep verify's runs of the engine and the "
                f"per-cycle reference within --max-minutes {max_minutes:g}")

    def estimated_seconds(self) -> float:
        """The estimated time of everything planned: the compared jobs and the engine runs spent on the others."""
        return sum(job.total_seconds for job in self.jobs) + self.spent_engine_seconds


def plan_random_cases(arch: Arch, count: int, seed: int, budget: float) -> Plan:
    """The random networks whose runs of the engine and the reference fit ``budget`` seconds together (each estimated
    before it runs: the engine's from the design and the network, the reference's from the engine's counters, so the
    plan is the same on every machine), in seed order: a network that does not fit is shrunk to its first image if
    that fits, else skipped (an engine run that does not fit is not run). ``count`` and ``seed`` are the CLI's
    --random and --seed: a script's value outside their ranges is the one-line SatasimError the CLI would give."""
    for name, value, high in (("--random", count, 1000), ("--seed", seed, 2**31 - 1)):
        if not 0 <= whole_count(value, None, name) <= high:
            raise SatasimError.at(None, name, f"must be in 0..{high}, got {value}", "give a value in that range")
    if isinstance(budget, bool) or not isinstance(budget, (int, float)) or math.isnan(budget):  # <= 0: none fits
        raise SatasimError.at(None, "budget", f"must be a number of seconds, got {budget!r}",
                              "give the seconds the engine and the reference may take together")
    if not isinstance(arch, Arch):  # a path or a name: an AttributeError from inside the plan (h1, session 47)
        raise SatasimError.at(None, "arch", f"is a {type(arch).__name__} ({shown(arch)}), not a loaded Arch",
                              "pass load_arch(path_or_name)'s result")
    plan = Plan()
    for label, workload, images in random_cases(arch, count, seed):
        job = Job(label, workload, images, asked=images)
        if not any(_fits(plan, job, arch, n, budget) for n in ((images, 1) if images > 1 else (images,))):
            plan.skipped.append(job)
        elif job.images != images:
            plan.shrunk.append(label)
            plan.jobs.append(job)
        else:
            plan.jobs.append(job)
    return plan


def _fits(plan: Plan, job: Job, arch: Arch, images: int, budget: float) -> bool:
    """Whether ``job`` on ``images`` images fits what ``plan`` leaves of ``budget``: the engine is run if its estimate
    fits, then the reference's is estimated from its counters (an engine run whose reference does not fit is spent).
    A network the engine refuses fits: the reference refuses it while mapping, before any cycle."""
    left = budget - plan.estimated_seconds()
    job.images, job.engine_result, job.seconds = images, None, 0.0
    job.engine_seconds = estimated_engine_seconds(arch, job.workload, images)
    if job.engine_seconds > left:
        return False
    try:
        job.engine_result = engine.simulate(arch, job.workload, images)
    except MappingError:  # compared as a refusal
        return True
    job.seconds = estimated_reference_seconds(job.engine_result.counters())
    if job.total_seconds <= left:
        return True
    plan.spent_engine_seconds += job.engine_seconds
    return False


def budget_enough(arch: Arch, plan: Plan) -> tuple[float, bool]:
    """When no random network fits: the budget (seconds) under which one does, planned again, and whether it is known
    whole (False: no engine run fitted, so it covers the cheapest network's engine run and the reference's set-up
    alone, the rest being known once the engine has run). A network k fits any budget of its own estimate plus every
    engine run the networks before it may spend (both their sizes), and a shrunk one's first try."""
    best: tuple[float, bool] | None = None
    before = 0.0
    for job in plan.skipped:
        first = estimated_engine_seconds(arch, job.workload, job.asked)
        tried = first if job.images != job.asked else 0.0
        known = job.engine_result is not None
        seconds = before + tried + (job.total_seconds if known else job.engine_seconds + REFERENCE_SETUP_SECONDS)
        if best is None or (known, -seconds) > (best[1], -best[0]):
            best = (seconds, known)
        before += first + (estimated_engine_seconds(arch, job.workload, 1) if job.asked > 1 else 0.0)
    return best if best is not None else (0.0, False)


def check_affordable(arch: Arch, workload: Workload, images: int, start: int, max_minutes: float,
                     where: str) -> tuple[SimResult | None, float, float]:
    """The engine's run of the user's images (None: the engine refuses the mapping, compared as a refusal), and about
    how long the reference (then the engine) takes on them; a refusal, before the engine runs, if its own estimate is
    longer than allowed, or after, if both together are. The mapping is checked first: a design that cannot map the
    network is compared as a refusal (both refuse before any cycle), however many images were asked for."""
    try:
        run_checks.check_mappable(arch, workload)
    except MappingError:
        return None, 0.0, 0.0
    fewer = "--images 1, " if images > 1 else ""  # one image already: no fewer to ask for
    engine_seconds = estimated_engine_seconds(arch, workload, images)
    shown = f"{images} image{'s' if images != 1 else ''}"
    if engine_seconds > max_minutes * 60:
        raise SatasimError.at(where, "--images", f"{shown} of {workload.name} on {arch.num_pes:,} PEs "
                              f"take{'s' if images == 1 else ''} the engine "
                              f"alone up to about {spent(engine_seconds)} (estimated before it runs; the per-cycle "
                              "reference's time is known from the engine's run)", f"use {fewer}a smaller workload, or "
                              f"allow at least --max-minutes {minutes_enough(engine_seconds):g} for the engine alone "
                              "(the reference's time comes on top, and is said after the engine's run if it does "
                              "not fit)")
    try:
        result = engine.simulate(arch, workload, images, start)
    except MappingError:  # compared as a refusal: the reference refuses while mapping, before any cycle
        return None, 0.0, engine_seconds
    counters = result.counters()
    seconds = estimated_reference_seconds(counters)
    if seconds + engine_seconds > max_minutes * 60:
        pes = len(counters["accelerators"][0]["pe"]["busy"])
        raise SatasimError.at(where, "--images", f"{shown} last {counters['total_cycles']:,} cycles on {pes:,} PEs, up "
                              f"to about {spent(seconds)} for the per-cycle reference (plain Python, one loop per "
                              f"cycle and PE) after up to about {spent(engine_seconds)} for the engine",
                              f"use {fewer}a smaller workload, or allow it with --max-minutes "
                              f"{minutes_enough(seconds + engine_seconds):g}")
    return result, seconds, engine_seconds
