"""Architecture YAML -> a validated, frozen Arch (schema: docs/interfaces.md, reference: docs/architecture.md).

The top of the arch_*.py modules: read the file (arch_files.py), apply the ``--set a.b.c=value`` overrides
(arch_overrides.py; values parsed as YAML scalars, ``null`` removes a field), check every field for type and range
with "did you mean" for unknown keys (arch_fields.py) and the fields against each other (arch_consistency.py), and
build the Arch of the section dataclasses (arch_types.py). The optional ``tech:`` section (``--set
tech.<entry>=value``) replaces the value of technology-table entries. Every mistake raises :class:`ArchError` as one
line naming the file, the field and the fix.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

from satasim_atsn.errors import ArchError, SatasimError, shown
from satasim_atsn.hw.arch_consistency import DRAM_PART_ALIASES, check_dram_part, cross_checks, dram_cycles, exact
from satasim_atsn.hw.arch_fields import (
    ABSENT_EXIT_UNIT,
    SAME_AS_PE,
    SCHEMA,
    TECH_SECTION,
    check_section,
    exit_unit_omitted,
    schema_for,
)
from satasim_atsn.hw.arch_files import read_yaml, resolve_arch_path, shipped_arch
from satasim_atsn.hw.arch_overrides import (
    apply_overrides,
    naming_set_values,
    override_list,
    refuse_fields_of_an_absent_exit_unit,
)
from satasim_atsn.hw.arch_types import ArrayCfg, BufferCfg, DramCfg, ExitUnitCfg, GlobalBuffersCfg, NocCfg, PeCfg
from satasim_atsn.hw.tech import Tech, load_tech, table_label

if TYPE_CHECKING:
    from satasim_atsn.snn.exit_policies import ExitPolicy


@dataclass(frozen=True)
class Arch:
    """A validated accelerator description; attribute access mirrors the YAML."""

    name: str
    kind: str
    technology: str
    clock_hz: float
    accelerators: int
    images_per_batch: int
    spike_address_bytes: int
    dataflow: str
    batch_refill: bool
    array: ArrayCfg
    pe: PeCfg
    exit_unit: ExitUnitCfg
    noc: NocCfg
    global_buffers: GlobalBuffersCfg
    dram: DramCfg
    path: Path | None = field(default=None, compare=False)
    tech: Tech | None = field(default=None, compare=False, repr=False)
    shown_as: str | None = field(default=None, compare=False)  # a shipped design given by its bare name

    @property
    def source(self) -> str:
        """The file this architecture was loaded from, or its name."""
        return str(self.path) if self.path is not None else self.name

    @property
    def where(self) -> str:
        """The architecture as error messages name it: the bare name it was given by ('atsn16x16', not the
        installed file's absolute path), else :attr:`source`."""
        return self.shown_as or self.source

    @property
    def files(self) -> list[Path]:
        """The files this design is read from, its YAML and its technology table: no output may replace them."""
        return [p for p in (self.path, self.tech.path if self.tech is not None else None) if p is not None]

    @property
    def num_pes(self) -> int:
        """PEs per accelerator: rows*cols - exit_unit_tiles."""
        return self.array.rows * self.array.cols - self.array.exit_unit_tiles

    @property
    def has_exit_unit(self) -> bool:
        """False when array.exit_unit_tiles is 0: no exit unit, the output layer (if any) runs on the PEs."""
        return self.array.exit_unit_tiles > 0

    @property
    def prediction_rule(self) -> str:
        """The rule behind the hardware prediction: exit_unit.prediction; without an exit tile the output
        membranes at T as the PEs hold them ('membrane': nobody keeps a running sum)."""
        return self.exit_unit.prediction if self.has_exit_unit else "membrane"

    @property
    def num_tiles(self) -> int:
        """Tiles (PEs + exit units) per accelerator."""
        return self.array.rows * self.array.cols

    @property
    def spikes_per_cycle(self) -> int:
        """Spikes a NoC link carries per cycle: link_bytes_per_cycle // spike_address_bytes (>= 1)."""
        return self.noc.link_bytes_per_cycle // self.spike_address_bytes

    @property
    def pe_capacity_neurons(self) -> int:
        """Membranes one PE holds: data_memory_bytes*8 // vmem_bits."""
        return self.pe.data_memory_bytes * 8 // self.pe.vmem_bits

    @property
    def policy_name(self) -> str:
        """'atsn' | 'dtsnn' | 'fixed', from exit_unit.kind."""
        return self.exit_unit.unit.policy_name

    def exit_policy(self) -> ExitPolicy:
        """The snn.exit_policies object the exit unit implements."""
        return self.exit_unit.unit.policy(self.exit_unit)

    def to_dict(self) -> dict:
        """The fully resolved configuration (JSON-ready, deterministic key order)."""
        out = {}
        for key in SCHEMA:
            value = getattr(self, key)
            out[key] = asdict(value) if hasattr(value, "__dataclass_fields__") else value
        out["technology"] = table_label(self.technology)  # a user's table by file name: no path as typed
        if self.tech is not None:
            out["technology_table"] = self.tech.describe()
        return out


def dram_rounding_note(arch: Arch) -> str | None:
    """A note when a DRAM rate given in GB/s or ns lost more than 1% to whole bytes per cycle or whole cycles at
    this clock (the model's DRAM is then that much slower than the one described); None otherwise."""
    dram, clock = arch.dram, exact(arch.clock_hz)
    parts = []
    if dram.bandwidth_GB_per_s is not None:
        given = exact(dram.bandwidth_GB_per_s) * 10**9 / clock  # bytes per cycle
        if dram.bytes_per_cycle < given * Fraction(99, 100):
            parts.append(f"{dram.bandwidth_GB_per_s:g} GB/s is {float(given):.4g} B per cycle at "
                         f"{arch.clock_hz / 1e6:g} MHz and the model moves whole bytes: {dram.bytes_per_cycle} B per "
                         f"cycle, {float(dram.bytes_per_cycle * clock / 10**9):.4g} GB/s")
    if dram.latency_ns is not None:
        given = exact(dram.latency_ns) * clock / 10**9  # cycles
        if dram.latency_cycles > given * Fraction(101, 100):
            parts.append(f"{dram.latency_ns:g} ns is {float(given):.4g} cycles and the model waits whole cycles: "
                         f"{dram.latency_cycles}, {float(dram.latency_cycles * 10**9 / clock):.4g} ns")
    return f"note: dram: {'; '.join(parts)} (docs/architecture.md, dram)" if parts else None


def build_arch(raw: dict, where: str = "<arch>", base_dir: Path | None = None, path: Path | None = None) -> Arch:
    """Validate a raw mapping (already overridden) and build the Arch, loading its technology table."""
    tech_values = raw.get(TECH_SECTION)
    if tech_values is None:
        tech_values = {}
    if not isinstance(tech_values, dict):
        raise ArchError.at(where, TECH_SECTION, f"must be a mapping of table entries, got {shown(tech_values)}",
                           "write 'tech:' followed by indented 'entry_name: value' lines")
    body = {k: v for k, v in raw.items() if k != TECH_SECTION}
    if exit_unit_omitted(body):  # no exit tile and no exit_unit section: an exit unit of kind none, no hardware
        cfg = check_section(where, "", body, {k: v for k, v in SCHEMA.items() if k != "exit_unit"})
        cfg["exit_unit"] = dict(ABSENT_EXIT_UNIT)
    else:
        cfg = check_section(where, "", body, schema_for(body))
        for key, value in cfg["exit_unit"].items():
            if value is SAME_AS_PE:
                cfg["exit_unit"][key] = cfg["pe"][key]
    cross_checks(where, cfg)
    if cfg["array"]["exit_unit_tiles"] == 0:  # a given section was validated, but no exit unit is modelled: the
        cfg["exit_unit"] = dict(ABSENT_EXIT_UNIT)  # resolved design (and its JSON) says so, as when it is left out
    dram_cycles(where, cfg)
    try:
        tech = load_tech(cfg["technology"], base_dir=base_dir)
    except ArchError as error:  # the table's own errors name their file; a missing name is this file's field
        text = str(error)
        relabelled = ArchError(f"{where}: {text}" if text.startswith("technology:") else f"{where}: technology: {text}")
        relabelled.field, relabelled.problem = "technology", error.problem  # a --set technology=... is named
        raise relabelled from None
    tech = tech.with_overrides({str(k): v for k, v in tech_values.items()}, where)
    part = cfg["dram"]["energy_table_entry"]
    if part in DRAM_PART_ALIASES and not tech.has(f"{part}_energy_pJ_per_bit"):
        cfg["dram"]["energy_table_entry"] = DRAM_PART_ALIASES[part]
    check_dram_part(where, cfg["dram"]["energy_table_entry"], tech)
    gb = cfg["global_buffers"]
    return Arch(
        name=cfg["name"], kind=cfg["kind"], technology=cfg["technology"], clock_hz=cfg["clock_hz"],
        accelerators=cfg["accelerators"], images_per_batch=cfg["images_per_batch"],
        spike_address_bytes=cfg["spike_address_bytes"], dataflow=cfg["dataflow"], batch_refill=cfg["batch_refill"],
        array=ArrayCfg(**cfg["array"]), pe=PeCfg(**cfg["pe"]), exit_unit=ExitUnitCfg(**cfg["exit_unit"]),
        noc=NocCfg(**cfg["noc"]),
        global_buffers=GlobalBuffersCfg(**{k: BufferCfg(**v) for k, v in gb.items()}),
        dram=DramCfg(**cfg["dram"]), path=path, tech=tech,
    )


def load_arch(path: str | Path, overrides: Iterable[str] | None = ()) -> Arch:
    """Load, override and validate an architecture YAML (a path or a shipped name); raises ArchError. A refused
    value that one of ``overrides`` gave says so: the message names the file, which does not hold it."""
    overrides = override_list(overrides)
    try:
        with naming_set_values(overrides, "the overrides item"):
            return read_arch(path, overrides)
    except ArchError as error:  # an override refused by itself is named as the caller gave it, not as --set
        if not str(error).startswith("--set: "):
            raise
        relabelled = ArchError("overrides: " + str(error).removeprefix("--set: ").replace("e.g. --set ", "e.g. "))
        relabelled.field, relabelled.problem = error.field, error.problem
        raise relabelled from None


def read_arch(path: str | Path, overrides: Iterable[str] | None = ()) -> Arch:
    """:func:`load_arch` without naming an override that gave a refused value, for callers that name the values'
    source themselves (a command's --set, a study's set: and vary:)."""
    given = str(path)
    overrides = override_list(overrides)
    path = resolve_arch_path(path)
    shown_as = given if path == shipped_arch(given) else None  # a bare shipped name: messages say it as given
    raw = read_yaml(path)
    overridden = apply_overrides(raw, overrides)
    refuse_fields_of_an_absent_exit_unit(raw, overridden, overrides)
    arch = build_arch(overridden, where=shown_as or str(path), base_dir=path.resolve().parent, path=path)
    return replace(arch, shown_as=shown_as) if shown_as else arch


def require_arch_and_workload(arch: Arch, workload: object) -> None:
    """A script's path or name where a loaded design or workload belongs (``simulate("atsn16x16", w)``) is a
    one-line SatasimError saying which loader to call, not an AttributeError from deep inside a model; a workload
    built in memory and never validated is validated here (a WorkloadError, not a KeyError from a model)."""
    from satasim_atsn.workload.format import require_validated

    if not isinstance(arch, Arch):
        raise SatasimError.at(None, "arch", f"is a {type(arch).__name__} ({shown(arch)}), not a loaded Arch",
                              "pass load_arch(path_or_name)'s result")
    require_validated(workload)


def load_arch_with_set(path: str | Path, overrides: Iterable[str] = ()) -> Arch:
    """load_arch for a command's --set options: a refused value that a --set gave says so (the message names the
    architecture file, where it is not). Studies call read_arch: their values come from set: and vary:."""
    overrides = list(overrides)
    with naming_set_values(overrides):
        return read_arch(path, overrides)


