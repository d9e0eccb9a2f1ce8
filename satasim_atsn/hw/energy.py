"""Energy and area: action counts x technology-table entries + leakage x time (docs/energy.md).

``compute_energy(arch, counts, makespan_cycles)`` charges every action count of
docs/microarchitecture.md section 9 to one component at an energy per action that depends only on
the architecture's widths/sizes and the technology table, never on the clock. Leakage power is
charged for every instance (every PE, every bank, every accelerator, idle or not) over the
makespan. DRAM background power (active standby + refresh of every channel the DRAM bandwidth
needs) is the DRAM's static power, charged once for the shared DRAM over the makespan, beside the
leakage. ``compute_area(arch)`` sums instance areas per component.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, Decimal

from satasim_atsn.errors import SatasimError
from satasim_atsn.hw.arch import Arch

COMPONENTS = ("pe_compute", "pe_memory", "spike_buffers", "adc", "exit_unit", "noc", "global_buffer", "dram")
# the four groups energy is reported in (docs/energy.md, "Groups"): every component belongs to one, so a
# counter charged to any component (ACTION_COMPONENT below) lands in that component's group with no more code
ENERGY_GROUPS = ("compute", "on_chip_memory", "noc", "dram")
COMPONENT_GROUP = {
    "pe_compute": "compute",
    "adc": "compute",
    "exit_unit": "compute",
    "pe_memory": "on_chip_memory",
    "spike_buffers": "on_chip_memory",
    "global_buffer": "on_chip_memory",
    "noc": "noc",
    "dram": "dram",
}
GROUP_COMPONENTS = {g: tuple(c for c in COMPONENTS if COMPONENT_GROUP[c] == g) for g in ENERGY_GROUPS}

# every action counter (docs/microarchitecture.md section 9), in counter-array order -> the component it is
# charged to; the engine, the reference and the results all take the counter names from here
ACTION_COMPONENT = {
    "pe_accumulations": "pe_compute",
    "pe_fire_updates": "pe_compute",
    "pe_spikes_out": "pe_compute",
    "pe_input_buffer_pushes": "spike_buffers",
    "pe_output_buffer_pushes": "spike_buffers",
    "pe_dm_reads": "pe_memory",
    "pe_dm_writes": "pe_memory",
    "pe_weight_reads": "pe_memory",
    "pe_weight_write_bytes": "pe_memory",
    "adc_conversions": "adc",
    "weight_glb_read_bytes": "global_buffer",
    "weight_glb_write_bytes": "global_buffer",
    "spike_glb_read_bytes": "global_buffer",
    "spike_glb_write_bytes": "global_buffer",
    "noc_byte_hops": "noc",
    "dram_read_bytes": "dram",
    "dram_write_bytes": "dram",
    "exit_accumulations": "exit_unit",
    "exit_updates": "exit_unit",
    "exit_prediction_adds": "exit_unit",
    "exit_lut_reads": "exit_unit",
    "exit_multiplies": "exit_unit",
    "exit_compares": "exit_unit",
    "exit_divides": "exit_unit",
    "exit_decision_adds": "exit_unit",
    "exit_weight_write_bytes": "exit_unit",
    "pool_ors": "global_buffer",
}
ACTIONS = tuple(ACTION_COMPONENT)


def _sram_scaled(arch: Arch, capacity_bytes: int, bits: int) -> tuple[float, float]:
    """(read, write) pJ for one ``bits``-wide access to a 64-bit-port SRAM of ``capacity_bytes``.

    CACTI figures are per 64-bit access; a narrower access is charged proportionally (bits/64),
    an approximation that ignores the fixed decode/wordline share of the access energy.
    """
    fig = arch.tech.sram("sram64", capacity_bytes)
    scale = bits / fig.access_bits
    return fig.read_pJ * scale, fig.write_pJ * scale


def _glb_per_byte(arch: Arch, buffer_bytes: int) -> tuple[float, float]:
    """(read, write) pJ per byte of a global buffer bank of ``buffer_bytes``.

    The table's figures are per block of access_bits/8 bytes (32 B for SATA-Sim). A transfer of B
    bytes is B / bytes_per_cycle block accesses of bytes_per_cycle bytes, each charged
    proportionally to its width, which is B x (block energy / block bytes).
    """
    fig = arch.tech.sram("glb", buffer_bytes)
    block_bytes = fig.access_bits / 8
    return fig.read_pJ / block_bytes, fig.write_pJ / block_bytes


def tile_pitch_mm(arch: Arch) -> float:
    """Tile pitch (mm) = sqrt(area of the array without global buffers / tiles): the NoC link length per hop.

    An analog PE's ADC counts here at its table point's own area (the points' ``rate_hz``), not at the rate the
    clock asks of it: the link energy per byte-hop follows from the pitch, and energy per action never depends on
    the clock (DESIGN section 5: deriving energy from the clock is the fault to avoid). The area report keeps the
    rate's ADC area; at the table's rate (500 MHz, one cycle per conversion in the shipped designs) they agree."""
    area = _per_component(arch, "area_um2")
    if arch.pe.accumulation == "analog":
        area["adc"] = arch.num_pes * arch.tech.adc_area_um2(arch.pe.adc_bits)
    tile_area_um2 = (sum(area[c] for c in COMPONENTS) - area["global_buffer"]) / arch.num_tiles  # as compute_area sums
    return math.sqrt(tile_area_um2) * 1e-3


def decay_op(arch: Arch) -> str:
    """The logic entry of the decay unit: ``decay_shift_add`` or ``mult`` per ``pe.decay``; the exit unit, a PE
    without the reset mux (the paper's section 2.4), has the same kind of decay unit as the PEs."""
    return "decay_shift_add" if arch.pe.decay == "shift_add" else "mult"


def energy_per_action_pJ(arch: Arch) -> dict[str, float]:
    """Energy in pJ charged per unit of every count (independent of the clock)."""
    t = arch.tech
    pe, eu = arch.pe, arch.exit_unit
    w, we = pe.vmem_bits, eu.vmem_bits
    analog = pe.accumulation == "analog"
    out: dict[str, float] = {}
    # PE compute
    out["pe_accumulations"] = t.energy_pJ("analog_accumulate") if analog else t.logic("add", w, "energy_pJ")
    fire = t.logic("compare", w, "energy_pJ") + t.logic("mux", w, "energy_pJ")
    if not analog:  # an analog membrane decays by leaking; its read-out is the ADC conversion
        fire += t.logic(decay_op(arch), w, "energy_pJ")
    out["pe_fire_updates"] = fire
    out["pe_spikes_out"] = 0.0  # the comparator's output; its cost is the output-buffer push
    # spike buffers: each push is later popped (one write + one read of a spike address)
    spike_bits = arch.spike_address_bytes * 8
    out["pe_input_buffer_pushes"] = 2 * spike_bits * t.value("regfile_energy_pJ_per_bit")
    out["pe_output_buffer_pushes"] = out["pe_input_buffer_pushes"]
    # PE data memory: one vmem_bits membrane per access
    rd, wr = _sram_scaled(arch, pe.data_memory_bytes, w)
    out["pe_dm_reads"], out["pe_dm_writes"] = rd, wr
    # PE weight memory: one int8 weight read per accumulation; the fold's weight stream writes each PE's share
    out["pe_weight_reads"], out["pe_weight_write_bytes"] = _sram_scaled(arch, pe.weight_memory_bytes, 8)
    out["adc_conversions"] = t.adc_energy_pJ(pe.adc_bits) if analog else 0.0
    # global buffers
    wr_b = _glb_per_byte(arch, arch.global_buffers.weight.bytes)
    out["weight_glb_read_bytes"], out["weight_glb_write_bytes"] = wr_b
    out["spike_glb_read_bytes"] = _glb_per_byte(arch, arch.global_buffers.input.bytes)[0]
    out["spike_glb_write_bytes"] = _glb_per_byte(arch, arch.global_buffers.output.bytes)[1]
    out["pool_ors"] = t.logic("compare", spike_bits, "energy_pJ")  # address match of the OR-ing controller
    # NoC: router per hop + link of one tile pitch, per bit
    per_bit = t.value("noc_router_energy_pJ_per_bit") + t.value("noc_link_energy_pJ_per_bit_mm") * tile_pitch_mm(arch)
    out["noc_byte_hops"] = 8 * per_bit
    # DRAM
    dram_bit = t.value(f"{arch.dram.energy_table_entry}_energy_pJ_per_bit")
    out["dram_read_bytes"] = out["dram_write_bytes"] = 8 * dram_bit
    if not arch.has_exit_unit:  # no exit tile: no exit-unit action ever happens (the output layer is on the PEs)
        out.update(dict.fromkeys((a for a in ACTIONS if ACTION_COMPONENT[a] == "exit_unit"), 0.0))
        return out
    # exit unit: accumulate/update read and write one membrane of its data memory; an accumulation also
    # reads its int8 weight from that memory (docs/microarchitecture.md section 7)
    erd, ewr = _sram_scaled(arch, eu.data_memory_bytes, we)
    weight_read = _sram_scaled(arch, eu.data_memory_bytes, 8)[0]
    out["exit_accumulations"] = t.logic("add", we, "energy_pJ") + erd + ewr + weight_read
    out["exit_updates"] = t.logic(decay_op(arch), we, "energy_pJ") + erd + ewr  # the PE's kind of decay unit
    out["exit_prediction_adds"] = t.logic("add", we, "energy_pJ") + erd + ewr  # running sum += membrane (no weight)
    # the decision's actions, priced where this kind of unit takes them (the DT unit alone divides; the none unit
    # decides nothing): a table needs no divider for an AT design, and its figure moves nothing there
    decision = {
        "exit_lut_reads": lambda: _sram_scaled(arch, eu.data_memory_bytes, eu.unit.lut_word_bits(eu))[0],  # a word
        "exit_multiplies": lambda: t.logic("mult", we, "energy_pJ"),
        "exit_compares": lambda: t.logic("compare", we, "energy_pJ"),
        "exit_divides": lambda: t.energy_pJ("div_32b"),
        "exit_decision_adds": lambda: t.logic("add", we, "energy_pJ"),  # operands in registers; LUT reads apart
    }
    taken = eu.unit.decide_actions(eu, 2)
    out.update({action: price() if taken.get(action) else 0.0 for action, price in decision.items()})
    # the output layer's weights pass through the exit data memory as they stream (section 7, phase 1)
    out["exit_weight_write_bytes"] = _sram_scaled(arch, eu.data_memory_bytes, 8)[1]
    return out


def _per_component(arch: Arch, quantity: str) -> dict[str, float]:
    """One accelerator's hardware instances, each priced by ``quantity`` (``leakage_mW`` or ``area_um2``).

    Leakage and area enumerate the same instances; only the figure read from the table differs.
    """
    t = arch.tech
    pe, eu = arch.pe, arch.exit_unit
    w, we = pe.vmem_bits, eu.vmem_bits
    entry = getattr(t, quantity)  # t.leakage_mW(name) or t.area_um2(name)
    analog = pe.accumulation == "analog"
    per_pe = t.logic("compare", w, quantity) + t.logic("mux", w, quantity)
    if analog:
        per_pe += entry("analog_accumulator")
    else:
        per_pe += pe.adders * t.logic("add", w, quantity)
        per_pe += t.logic(decay_op(arch), w, quantity)
    buffer_bits = 8 * (arch.num_pes * (pe.input_spike_buffer_bytes + pe.output_spike_buffer_bytes)
                       + _exit_buffer_bytes(arch))
    exit_unit = 0.0  # no exit tile: no exit unit (an exit_unit section, if given, describes no hardware)
    if arch.has_exit_unit:
        # the paper's AT unit is a PE without the reset mux and with a multiplier (its section 2.4): so it keeps the
        # PE's decay unit (shift-add or multiplier, per pe.decay), whose energy every exit_updates action is charged
        exit_unit = (getattr(t.sram("sram64", eu.data_memory_bytes), quantity)
                     + eu.adders * t.logic("add", we, quantity) + t.logic(decay_op(arch), we, quantity)
                     + eu.multipliers * t.logic("mult", we, quantity) + t.logic("compare", we, quantity))
        exit_unit += eu.unit.extra_instances(t, quantity)
    if quantity == "area_um2":
        adc = arch.num_pes * t.adc_area_um2(pe.adc_bits, adc_conversion_rate_hz(arch)) if analog else 0.0
    else:
        adc = 0.0  # SAR-type ADCs: no static bias assumed; their energy is per conversion
    gb = arch.global_buffers
    return {
        "pe_compute": arch.num_pes * per_pe,
        "pe_memory": arch.num_pes * (getattr(t.sram("sram64", pe.data_memory_bytes), quantity)
                                     + getattr(t.sram("sram64", pe.weight_memory_bytes), quantity)),
        "spike_buffers": buffer_bits * t.value(f"regfile_{quantity}_per_bit"),
        "adc": adc,
        "exit_unit": exit_unit,
        "noc": arch.num_tiles * entry("noc_router"),
        "global_buffer": sum(b.banks * getattr(t.sram("glb", b.bytes), quantity)
                             for b in (gb.weight, gb.input, gb.output)),
        "dram": 0.0,  # off chip: no area; its background power is the shared DRAM's (dram_background)
    }


def adc_conversion_rate_hz(arch: Arch) -> float:
    """The conversion rate each PE's ADC is built for: one conversion every ``pe.adc_cycles_per_conversion``
    cycles of ``clock_hz`` (its peak; an ADC's area follows the rate it must sustain, docs/energy.md)."""
    return float(arch.clock_hz) / int(arch.pe.adc_cycles_per_conversion)


def adc_rate_note(arch: Arch) -> str | None:
    """A note when an analog design's technology table gives its ADC areas at no conversion rate (no ``rate_hz``
    on the points): the area then holds at this design's rate unscaled, which the user should know."""
    if arch.pe.accumulation != "analog" or arch.tech.adc_area_rate_hz() is not None:
        return None
    return (f"note: the technology table {arch.tech.label} gives its ADC areas at no conversion rate, so the ADC area "
            f"is taken as is at this design's {adc_conversion_rate_hz(arch) / 1e6:g} MS/s (give rate_hz on the "
            "adc_<bits>b_area_um2 entries and adc_area_rate_exponent to scale it; docs/energy.md)")


def _exit_buffer_bytes(arch: Arch) -> int:
    """Spike-buffer bytes of the exit unit (0 without an exit tile)."""
    eu = arch.exit_unit
    return eu.input_spike_buffer_bytes + eu.output_spike_buffer_bytes if arch.has_exit_unit else 0


def dram_channels(arch: Arch) -> int:
    """DRAM channels of the part needed to supply ``dram.bytes_per_cycle`` at ``clock_hz`` (0: no background data).

    Computed in decimal from the shortest repr of each number, so that a bandwidth that is an exact
    multiple of the channel's (12.8 GB/s of 6.4 GB/s channels) gives that multiple on every machine.
    """
    t, part = arch.tech, arch.dram.energy_table_entry
    if not t.has(f"{part}_background_power_mW"):
        return 0
    need = Decimal(arch.dram.bytes_per_cycle) * Decimal(repr(float(arch.clock_hz)))
    per_channel = Decimal(repr(t.value(f"{part}_channel_bandwidth_GB_per_s"))) * Decimal(10) ** 9
    return max(1, int((need / per_channel).to_integral_value(rounding=ROUND_CEILING)))


def dram_background_mW(arch: Arch) -> float:
    """Background power of the shared DRAM in mW: channels x the part's per-channel standby + refresh power."""
    channels = dram_channels(arch)
    return channels * arch.tech.value(f"{arch.dram.energy_table_entry}_background_power_mW") if channels else 0.0


def leakage_power_mW(arch: Arch) -> dict[str, float]:
    """Static power per component in mW: leakage of all accelerators (idle ones included); for 'dram', the
    shared DRAM's background power (not multiplied by the accelerators, which share one DRAM)."""
    out = {k: v * arch.accelerators for k, v in _per_component(arch, "leakage_mW").items()}
    out["dram"] = dram_background_mW(arch)
    return out


def compute_area(arch: Arch) -> dict[str, float]:
    """Area in um2 per component of ONE accelerator, plus 'per_accelerator_total' and 'total' (x accelerators)."""
    area = _per_component(arch, "area_um2")
    area["per_accelerator_total"] = sum(area[c] for c in COMPONENTS)
    area["total"] = area["per_accelerator_total"] * arch.accelerators
    return area


def memory_bytes(arch: Arch) -> dict[str, int]:
    """On-chip memory per accelerator in bytes: PE data and weight memories, exit unit, spike and global buffers."""
    pe, eu, gb = arch.pe, arch.exit_unit, arch.global_buffers
    out = {
        "pe_data_memory": arch.num_pes * pe.data_memory_bytes,
        "pe_weight_memory": arch.num_pes * pe.weight_memory_bytes,
        "exit_unit_memory": eu.data_memory_bytes if arch.has_exit_unit else 0,
        "spike_buffers": arch.num_pes * (pe.input_spike_buffer_bytes + pe.output_spike_buffer_bytes)
        + _exit_buffer_bytes(arch),
        "global_buffers": sum(b.bytes * b.banks for b in (gb.weight, gb.input, gb.output)),
    }
    out["total"] = sum(out.values())
    return out


@dataclass(frozen=True)
class EnergyBreakdown:
    """Energy of one run: dynamic per component and action, leakage per component, all in pJ."""

    dynamic_pJ: dict[str, dict[str, float]]
    leakage_pJ: dict[str, float]
    per_action_pJ: dict[str, float] = field(repr=False)
    makespan_cycles: int = 0
    clock_hz: float = 0.0

    @property
    def dynamic_total_pJ(self) -> float:
        """Sum of all dynamic energy."""
        return sum(sum(a.values()) for a in self.dynamic_pJ.values())

    @property
    def leakage_total_pJ(self) -> float:
        """Sum of all leakage energy."""
        return sum(self.leakage_pJ.values())

    @property
    def total_pJ(self) -> float:
        """Dynamic + leakage."""
        return self.dynamic_total_pJ + self.leakage_total_pJ

    def component_pJ(self) -> dict[str, float]:
        """Dynamic + leakage per component."""
        return {c: sum(self.dynamic_pJ[c].values()) + self.leakage_pJ[c] for c in COMPONENTS}

    def to_dict(self) -> dict:
        """JSON-ready, deterministic order."""
        return {
            "total_pJ": self.total_pJ,
            "dynamic_total_pJ": self.dynamic_total_pJ,
            "leakage_total_pJ": self.leakage_total_pJ,
            "makespan_cycles": self.makespan_cycles,
            "clock_hz": self.clock_hz,
            "by_component_pJ": self.component_pJ(),
            "dynamic_pJ": {c: dict(self.dynamic_pJ[c]) for c in COMPONENTS},
            "leakage_pJ": {c: self.leakage_pJ[c] for c in COMPONENTS},
            "per_action_pJ": {k: self.per_action_pJ[k] for k in ACTIONS},
        }


def compute_energy(arch: Arch, counts: dict[str, int], makespan_cycles: int) -> EnergyBreakdown:
    """Energy of a run: sum over counts of count x energy per action, plus leakage x makespan.

    ``counts`` uses the names of docs/microarchitecture.md section 9 (missing names count 0);
    unknown names or negative counts are programming errors (ValueError).
    """
    unknown = sorted(set(counts) - set(ACTIONS))
    if unknown:
        raise ValueError(f"unknown action counts {unknown}; expected names from {ACTIONS}")
    if makespan_cycles < 0:
        raise ValueError(f"makespan_cycles must be >= 0, got {makespan_cycles}")
    per_action = energy_per_action_pJ(arch)
    dynamic: dict[str, dict[str, float]] = {c: {} for c in COMPONENTS}
    for name in ACTIONS:
        n = counts.get(name, 0)
        if n < 0:
            raise ValueError(f"action count {name} is negative ({n})")
        if name == "adc_conversions" and n and arch.pe.accumulation != "analog":
            raise ValueError("adc_conversions > 0 on an architecture with digital PEs")
        dynamic[ACTION_COMPONENT[name]][name] = float(n) * per_action[name]
    seconds = makespan_cycles / arch.clock_hz
    leakage = {c: p_mW * 1e-3 * seconds * 1e12 for c, p_mW in leakage_power_mW(arch).items()}
    return EnergyBreakdown(dynamic_pJ=dynamic, leakage_pJ=leakage, per_action_pJ=per_action,
                           makespan_cycles=int(makespan_cycles), clock_hz=arch.clock_hz)


def technology_fingerprint(arch: Arch) -> str:
    """Everything a technology entry can change in a design: its energies per action, leakage, areas and DRAM."""
    return repr((energy_per_action_pJ(arch), leakage_power_mW(arch), compute_area(arch), dram_background_mW(arch),
                 dram_channels(arch)))


def check_technology(arch: Arch) -> None:
    """Read every technology figure the design uses (its energies per action, leakage, areas and DRAM), so that an
    entry its table lacks is refused before a run's first image, or before a study's first point, and not met
    mid-run by the first energy."""
    technology_fingerprint(arch)


def unused_technology_overrides(arch_path: str, overrides: list[str]) -> list[str]:
    """The ``tech.<entry>=value`` overrides that change nothing in the design at ``arch_path`` (DDR4 figures of an
    LPDDR4 design, the ADC of a digital one): with the value moved, every energy, leakage, area and DRAM figure
    stays the same. A run reports them (they are recorded in its results as if they mattered)."""
    from satasim_atsn.hw.arch import read_arch

    base = technology_fingerprint(read_arch(arch_path, overrides))
    unused = []
    for i, text in enumerate(overrides):
        key, _, value = text.partition("=")
        if not key.strip().startswith("tech."):
            continue
        try:
            probe = repr(float(value) * 2 + 1)
        except ValueError:
            continue  # a table file's name: not an entry
        moved = overrides[:i] + [f"{key}={probe}"] + overrides[i + 1:]
        try:
            if technology_fingerprint(read_arch(arch_path, moved)) == base:
                unused.append(key.strip())
        except SatasimError:
            continue
    return unused


#: how far outside its family's table points an SRAM may lie before a note calls its figures rough
SRAM_EXTRAPOLATION_NOTE_FACTOR = 2


def extrapolated_memories(arch: Arch) -> list[tuple[str, int, str, int]]:
    """The memories of ``arch`` whose capacity lies more than SRAM_EXTRAPOLATION_NOTE_FACTOR x outside the points
    of its SRAM family (figures extrapolated log-log, docs/energy.md): (field, bytes, family, nearest point)."""
    memories = [("pe.data_memory_bytes", arch.pe.data_memory_bytes, "sram64"),
                ("pe.weight_memory_bytes", arch.pe.weight_memory_bytes, "sram64")]
    if arch.has_exit_unit:
        memories.append(("exit_unit.data_memory_bytes", arch.exit_unit.data_memory_bytes, "sram64"))
    gb = arch.global_buffers
    memories += [(f"global_buffers.{name}.bytes", getattr(gb, name).bytes, "glb")
                 for name in ("weight", "input", "output")]
    found = []
    for field_name, capacity, family in memories:
        points = arch.tech.sram_capacities(family)
        capacity = int(capacity)
        if capacity * SRAM_EXTRAPOLATION_NOTE_FACTOR < points[0]:
            found.append((field_name, capacity, family, points[0]))
        elif capacity > points[-1] * SRAM_EXTRAPOLATION_NOTE_FACTOR:
            found.append((field_name, capacity, family, points[-1]))
    return found


def extrapolated_memories_note(arch: Arch) -> str | None:
    """A note naming the memories whose energy, area and leakage come from far outside the technology table."""
    found = extrapolated_memories(arch)
    if not found:
        return None
    parts = [f"{name} ({capacity:,} B; the {'smallest' if capacity < point else 'largest'} {family} point is "
             f"{point:,} B)" for name, capacity, family, point in found]
    return (f"note: the SRAM figures of {'; '.join(parts)} are extrapolated log-log far outside the technology "
            f"table {arch.tech.label}: their energy, area and leakage are rough "
            "(add CACTI points near these sizes; docs/energy.md)")


#: the largest spike buffer the register-file entries price as the table's source intends ("buffers below 256 B have
#: no CACTI organisation and are modelled as register files", the regfile_* entries' source)
REGISTER_FILE_MAX_BYTES = 256


def register_file_buffers_note(arch: Arch) -> str | None:
    """A note naming the spike buffers larger than REGISTER_FILE_MAX_BYTES: every spike buffer is priced as a
    register file (bits x regfile_* figures), whose area and leakage grow with the bits where an SRAM's grow far
    slower, so theirs are overstated (docs/microarchitecture.md, known gaps); None when every buffer is small."""
    fields = [("pe.input_spike_buffer_bytes", arch.pe.input_spike_buffer_bytes),
              ("pe.output_spike_buffer_bytes", arch.pe.output_spike_buffer_bytes)]
    if arch.has_exit_unit:
        fields += [("exit_unit.input_spike_buffer_bytes", arch.exit_unit.input_spike_buffer_bytes),
                   ("exit_unit.output_spike_buffer_bytes", arch.exit_unit.output_spike_buffer_bytes)]
    large = [f"{name} ({int(size):,} B)" for name, size in fields if int(size) > REGISTER_FILE_MAX_BYTES]
    if not large:
        return None
    return (f"note: the spike buffers {', '.join(large)} are priced as register files (the regfile_* entries of "
            f"{arch.tech.label}), which stand for buffers of at most {REGISTER_FILE_MAX_BYTES} B: their area and "
            "leakage grow with every bit, an SRAM's far slower, so at these sizes they are overstated "
            "(docs/microarchitecture.md, known gaps)")


def unused_technology_note(arch_path: str, overrides: list[str]) -> str | None:
    """A note naming the --set tech.<entry> values this design never reads (they change nothing, yet the results
    record them)."""
    unused = unused_technology_overrides(arch_path, overrides)
    return unused_entries_note(unused) if unused else None


def unused_entries_note(entries: list[str], several_designs: bool = False) -> str:
    """The note naming technology ``entries`` (``tech.<entry>``) that the design (or none of several) reads."""
    scope = "any of the designs: none of them uses" if several_designs else "this design: it does not use"
    return (f"note: --set {', '.join(entries)} changes nothing in {scope} "
            f"{'this technology entry' if len(entries) == 1 else 'these technology entries'} "
            "(docs/energy.md: which component reads which entry)")
