"""The notes `satasim run`, `compare` and `sweep` print beside their numbers (and write into their results).

Each says why a number may not mean what it seems: the exit unit decides at other thresholds than the workload
was evaluated at, too few images leave accelerators idle, a --set tech.<entry> changes nothing in the design, a
DRAM rate in GB/s or ns is rounded to whole bytes or cycles, the images run hold a few of the workload's classes,
batch refill is on where it cannot act, a --set of an exit-unit field acts on no exit unit, a memory's figures are
extrapolated far outside the technology table, a spike buffer too large for its register-file pricing, an ADC's
area is given at no conversion rate. One list, so that the three commands say the same."""
from __future__ import annotations

from satasim_atsn.errors import shown_number
from satasim_atsn.hw.arch import Arch, dram_rounding_note
from satasim_atsn.hw.arch_overrides import parse_override
from satasim_atsn.hw.energy import (
    adc_rate_note,
    extrapolated_memories_note,
    register_file_buffers_note,
    unused_technology_note,
)
from satasim_atsn.snn.exit_policies import ATSN_FRAC_BITS, LUT_ENTRIES_DEFAULT, AtsnPolicy
from satasim_atsn.workload.class_coverage import class_coverage_note
from satasim_atsn.workload.format import Workload
from satasim_atsn.workload.schema import EXIT_PARAMETERS, EXIT_STEPS


def run_notes(arch: Arch, arch_path: str, overrides: list[str], workload: Workload, images: int,
              technology: bool = True, start: int = 0) -> list[str]:
    """Every note for ``images`` images of ``workload`` from ``start`` on ``arch`` (from ``arch_path`` with
    ``overrides``), each starting ``note: ``, in a fixed order; ``technology=False`` leaves out the unused --set
    tech.<entry> note (a sweep judges it over all its points)."""
    notes = [exit_parameters_note(arch, workload), exit_table_note(arch, workload),
             idle_accelerators_note(arch, images, workload.num_images - start),
             class_coverage_note(workload, start, images),
             unused_technology_note(arch_path, overrides) if technology else None, dram_rounding_note(arch),
             batch_refill_note(arch), absent_exit_unit_note(arch, overrides), extrapolated_memories_note(arch),
             register_file_buffers_note(arch), adc_rate_note(arch)]
    return [note for note in notes if note]


def exit_table_note(arch: Arch, workload: Workload) -> str | None:
    """A note when the AT unit's fixed-point rule cannot follow the float rule of a trained workload: CL_t rounds to
    1 in its fraction bits at some t < T (no image can exit there, where the float rule may), or its exp table is
    not the one `satasim evaluate`'s hardware LUT line models by default (256 entries, 23 fraction bits); None
    otherwise."""
    policy = arch.exit_policy() if arch.has_exit_unit else None
    if not isinstance(policy, AtsnPolicy) or not policy.hardware or workload.is_statistical:
        return None
    parts = []
    one = 1 << policy.frac_bits
    stuck = [t for t in range(1, workload.timesteps) if policy.confidence(t) < 1 and policy.cl_fixed(t) >= one]
    if stuck:
        shown = f"t = {stuck[0]}" + (f"..{stuck[-1]}" if len(stuck) > 1 else "")
        parts.append(f"CL_t rounds to 1 in the AT unit's {policy.frac_bits} fraction bits at {shown}, so no image "
                     f"exits there although the float rule of eq. 16 can (CL_t is told from 1 only below "
                     f"1 - 2^-{policy.frac_bits + 1} = {shown_number(1 - 2.0 ** -(policy.frac_bits + 1))})")
    changed = [f"exit_unit.{name} is {value}" for name, value, default in (
        ("exp_lut_entries", policy.lut_entries, LUT_ENTRIES_DEFAULT),
        ("exp_frac_bits", policy.frac_bits, ATSN_FRAC_BITS)) if value != default]
    if changed:
        parts.append(f"{' and '.join(changed)}, and satasim evaluate's hardware LUT line models the "
                     f"{LUT_ENTRIES_DEFAULT}-entry table with {ATSN_FRAC_BITS} fraction bits, so this run's exits may "
                     f"differ from it (satasim evaluate --lut-entries {policy.lut_entries} --exp-frac-bits "
                     f"{policy.frac_bits} models this unit)")
    return "note: " + "; ".join(parts) if parts else None


def absent_exit_unit_note(arch: Arch, overrides: list[str]) -> str | None:
    """A note when overrides give exit-unit fields a value on a design without an exit tile (array.exit_unit_tiles
    0 beside an exit_unit section, whose fields then act on nothing); ``exit_unit.kind`` and null removals are what
    makes such a section valid, not a change of the design."""
    if arch.has_exit_unit:
        return None
    given = []
    for text in overrides:
        path, value = parse_override(text)
        if path[0] == "exit_unit" and path[-1] != "kind" and value is not None:
            given.append(f"{'.'.join(path)}={text.partition('=')[2].strip()}")
    if not given:
        return None
    return (f"note: {', '.join(given)} change{'s' if len(given) == 1 else ''} nothing here: array.exit_unit_tiles is "
            "0, so the design has no exit unit and the output layer runs on the PEs (docs/architecture.md)")


def batch_refill_note(arch: Arch) -> str | None:
    """A note when ``batch_refill`` is on where it cannot act: it gives an exited image's slot to the next image,
    so it needs early exits (an exit unit), the timestep_major dataflow and more than one image per batch."""
    if not arch.batch_refill:
        return None
    exits = arch.has_exit_unit and arch.policy_name != "fixed"
    why = ("the design has no deciding exit unit, so no image leaves its batch early" if not exits else
           "the layer_major dataflow runs a batch's timesteps together" if arch.dataflow == "layer_major" else
           "a batch holds one image" if int(arch.images_per_batch) == 1 else None)
    return None if why is None else f"note: batch_refill changes nothing here: {why} (docs/architecture.md)"


def exit_parameters_note(arch: Arch, workload: Workload) -> str | None:
    """A note when the exit unit's thresholds (the architecture's) differ from the workload's own defaults
    (meta.exit_policy, which satasim evaluate uses), with the --set that runs the workload's; None if they agree.
    A statistical workload's exits are drawn from its histograms (a twin's, with row profiles, are its fitted images'
    exit steps, exit_steps/<policy>), which no threshold changes: the note then says so and how to fit a twin at the
    architecture's thresholds."""
    if not arch.has_exit_unit:
        return None
    own = workload.meta.get("exit_policy") or {}
    used = arch.exit_policy().describe()
    differ = [k for k in EXIT_PARAMETERS if k in used and own.get(k) is not None and float(own[k]) != float(used[k])]
    if not differ:
        return None
    arch_values = ", ".join(f"{k} {shown_number(used[k])}" for k in differ)
    own_values = ", ".join(f"{k} {shown_number(own[k])}" for k in differ)
    if workload.is_statistical:
        options = " ".join(f"--{k.replace('_', '-')} {shown_number(used[k])}" for k in differ)
        source = (f"they are its fitted images' exit steps (exit_steps/{arch.policy_name}) at the file's thresholds"
                  if f"{EXIT_STEPS}/{arch.policy_name}" in workload.arrays else
                  "they are drawn from its exit histogram")
        provenance = workload.meta.get("provenance") or {}
        built = "fitted_from" not in provenance  # built by workload build (a table or --rate), not a twin
        measure = (f"satasim workload rates TRAINED --network NET --dataset D {options} -o T.yaml, then satasim "
                   "workload build --network NET --rates T.yaml --dataset D -o W.npz")
        remedy = (f"a rate table measured at the architecture's thresholds: {measure}" if built else
                  f"a twin fitted at the architecture's thresholds: satasim workload stats TRAINED {options} "
                  "-o TWIN.npz")
        if built and _assumed_exits(provenance, arch.policy_name):  # no threshold was ever measured for them
            source = "they are drawn from an assumed exit histogram (a mean given to the build, not measured)"
            remedy = (f"give the build the mean these thresholds would give (workload build --exit-mean "
                      f"{arch.policy_name}=M, or the table's exit_mean_timesteps), or measure the exits of a trained "
                      f"network at them: {measure}")
        verb = "does not" if len(differ) == 1 else "do not"  # 'cl_init 0.5 does not', 'cl_init 0.5, tau_cl 0.5 do not'
        return (f"note: the architecture's {arch_values} {verb} change this statistical workload's exits: {source} "
                f"(the file's meta.exit_policy says {own_values}); {remedy}")
    return (f"note: the exit unit decides with the architecture's {arch_values}; the workload's own {own_values} "
            f"(satasim evaluate's defaults) apply with "
            f"{' '.join(f'--set exit_unit.{k}={shown_number(own[k])}' for k in differ)}")


def _assumed_exits(provenance: dict, policy: str) -> bool:
    """Whether a built workload's exit histogram of ``policy`` is an assumed one (a maximum-entropy shape around a
    mean given with --exit-mean or a table's exit_mean_timesteps, or the build's default), not one measured."""
    said = provenance.get("exit_histograms")
    text = str(said.get(policy, "") if isinstance(said, dict) else said or "")
    return "measured" not in text or "assumed" in text or "maximum-entropy" in text


def idle_accelerators_note(arch, images: int, available: int | None = None) -> str | None:
    """A note when too few images keep every accelerator busy: the idle ones stay off but leak over the makespan
    (docs/microarchitecture.md section 8), so FPS and energy per image describe the short run, not the design.
    ``available``: the images the workload holds from the run's first one, which the advice must not pass."""
    batch, count = int(arch.images_per_batch), int(arch.accelerators)
    busy = -(-images // batch)
    if busy >= count:
        return None
    advice = f"run at least {count * batch} images"
    if available is not None and count * batch > available:  # more than the workload holds: shrink the design
        most = max(1, available // batch)
        advice = (f"the workload holds {available} from this start, so use at most {most} "
                  f"accelerator{'s' if most != 1 else ''}, or images_per_batch at most {max(1, available // count)}")
    return (f"note: {images} image{'s' if images != 1 else ''} in batches of {batch} keep {busy} of the {count} "
            "accelerators busy; the others stay off but their leakage counts, so FPS and energy per image describe "
            f"this short run, not the design's throughput ({advice})")
