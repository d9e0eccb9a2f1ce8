"""The sections of an architecture as frozen dataclasses (array, PE, exit unit, NoC, global buffers, DRAM), with the
values derived from one section alone; hw/arch.py's Arch holds one of each."""

from __future__ import annotations

from dataclasses import dataclass

from satasim_atsn.hw.exit_units import EXIT_UNITS, ExitUnit


@dataclass(frozen=True)
class ArrayCfg:
    """PE array geometry: rows x cols tiles, the last ``exit_unit_tiles`` of them exit units."""

    rows: int
    cols: int
    exit_unit_tiles: int


@dataclass(frozen=True)
class PeCfg:
    """One processing element."""

    input_spike_buffer_bytes: int
    output_spike_buffer_bytes: int
    data_memory_bytes: int
    weight_memory_bytes: int
    adders: int
    decay: str
    vmem_bits: int
    accumulation: str
    adc_bits: int | None
    adc_cycles_per_conversion: int | None


@dataclass(frozen=True)
class ExitUnitCfg:
    """The AT / DT unit (or, for kind none, the plain output-layer unit)."""

    kind: str
    data_memory_bytes: int
    input_spike_buffer_bytes: int
    output_spike_buffer_bytes: int
    adders: int
    multipliers: int
    vmem_bits: int
    prediction: str
    exp_lut_entries: int | None
    exp_frac_bits: int | None
    lut_bytes: int | None
    divider_cycles: int | None
    cl_init: float | None
    tau_cl: float | None
    theta: float | None

    @property
    def unit(self) -> ExitUnit:
        """The exit-unit kind's behaviour (hw/exit_units.py)."""
        return EXIT_UNITS[self.kind]


@dataclass(frozen=True)
class NocCfg:
    """The mesh network on chip."""

    topology: str
    link_bytes_per_cycle: int
    hop_cycles: int


@dataclass(frozen=True)
class BufferCfg:
    """One global buffer: ``banks`` ping-pong banks of ``bytes`` each, ``bytes_per_cycle`` port."""

    bytes: int
    banks: int
    bytes_per_cycle: int


@dataclass(frozen=True)
class GlobalBuffersCfg:
    """The weight buffer and the two spike buffers (input/output, used ping-pong)."""

    weight: BufferCfg
    input: BufferCfg
    output: BufferCfg

    @property
    def spike_map_bytes(self) -> int:
        """The most bytes of one group's output spikes that stay on chip (docs/microarchitecture.md section 4,
        phase 6): the two spike buffers trade roles ping-pong, so a map must fit the smaller one."""
        return min(int(self.input.bytes), int(self.output.bytes))


@dataclass(frozen=True)
class DramCfg:
    """The DRAM channel shared by all accelerators. ``bytes_per_cycle`` and ``latency_cycles`` are what the timing
    models use; when the file gives GB/s or ns they are derived from them at ``clock_hz``
    (:func:`~satasim_atsn.hw.arch_consistency.dram_cycles`)."""

    bytes_per_cycle: int
    latency_cycles: int
    energy_table_entry: str
    arbitration: str = "demand_first"
    bandwidth_GB_per_s: float | None = None
    latency_ns: float | None = None
