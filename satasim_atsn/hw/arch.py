"""Architecture YAML -> validated, frozen dataclasses (schema: docs/interfaces.md, reference: docs/architecture.md).

Every field is checked for type and range; unknown keys are errors with a "did you mean"
suggestion; ``--set a.b.c=value`` overrides (values parsed as YAML scalars, ``null`` removes a
field) are validated the same way. The optional ``tech:`` section (``--set tech.<entry>=value``)
replaces the value of technology-table entries. Every mistake raises :class:`ArchError` as one
line naming the file, the field and the fix.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from satasim_atsn.errors import ArchError, SatasimError, shown
from satasim_atsn.fileio import load_yaml
from satasim_atsn.hw.arch_consistency import DRAM_PART_ALIASES, check_dram_part, cross_checks, dram_cycles, exact
from satasim_atsn.hw.arch_fields import (
    ABSENT_EXIT_UNIT,
    OTHER_DRAM_SPELLING,
    SAME_AS_PE,
    SCHEMA,
    TECH_SECTION,
    check_section,
    exit_unit_omitted,
    schema_for,
    unknown_key_fix,
)
from satasim_atsn.hw.arch_files import read_yaml, resolve_arch_path, shipped_arch
from satasim_atsn.hw.arch_types import ArrayCfg, BufferCfg, DramCfg, ExitUnitCfg, GlobalBuffersCfg, NocCfg, PeCfg
from satasim_atsn.hw.tech import Tech, load_tech, table_label

if TYPE_CHECKING:
    from satasim_atsn.snn.exit_policies import ExitPolicy


# ---------------------------------------------------------------------------------------------
# dataclasses
# ---------------------------------------------------------------------------------------------
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


# ---------------------------------------------------------------------------------------------
# parsing and validation
# ---------------------------------------------------------------------------------------------


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


def _schema_at(path: list[str]) -> Any:
    node: Any = SCHEMA
    for i, part in enumerate(path):
        if not isinstance(node, dict):  # the path goes on below a value
            parent = ".".join(path[:i])
            raise ArchError.at("--set", ".".join(path), f"{parent} is a value, not a section",
                               f"set it directly, e.g. --set {parent}=VALUE")
        if part not in node:
            options = list(node) + ([TECH_SECTION] if i == 0 else [])
            where = ".".join(path[: i + 1])
            here = ".".join(path[:i]) + "." if i else ""
            fix = unknown_key_fix(part, options, here, given_by_set=True)
            raise ArchError.at("--set", where, "no such field", fix)
        node = node[part]
    return node


def parse_override(text: str) -> tuple[list[str], Any]:
    """'a.b.c=value' -> (['a','b','c'], value parsed as a YAML scalar); the path is checked against the schema."""
    if "=" not in text:
        raise ArchError.at("--set", text, "expected path.to.field=value", "e.g. --set pe.adders=2")
    key, _, raw_value = text.partition("=")
    if not key.strip():
        raise ArchError.at("--set", None, f"{shown(text)} has no field name before '='",
                           "write FIELD=VALUE, e.g. --set pe.adders=2")
    path = [p for p in key.strip().split(".")]
    if not all(path):
        raise ArchError.at("--set", key, "empty path component", "e.g. --set global_buffers.weight.bytes=262144")
    if path[0] == TECH_SECTION:  # the entry itself is checked against the table when the arch is built
        if len(path) != 2:
            raise ArchError.at("--set", key, "a technology override names one table entry",
                               "e.g. --set tech.sram64_1KB_read_energy_pJ=0.9")
    else:
        spec = _schema_at(path)
        if isinstance(spec, dict):
            raise ArchError.at("--set", key, "is a section, not a field", f"set one of its fields: {', '.join(spec)}")
    try:
        value = load_yaml(raw_value, f"--set {key.strip()}", ArchError) if raw_value.strip() else None
    except yaml.YAMLError:
        raise ArchError.at("--set", key, f"cannot parse value {shown(raw_value)}", "give a YAML scalar") from None
    if isinstance(value, (dict, list)):
        raise ArchError.at("--set", key, f"value must be a scalar, got {shown(raw_value)}")
    return path, value


def override_label(text: str) -> str:
    """An override as results record it: a technology table by :func:`~satasim_atsn.hw.tech.table_label`
    (its file name), every other override as given."""
    key, sep, value = text.partition("=")
    return f"{key}={table_label(value.strip())}" if sep and key.strip() == "technology" else text


def apply_overrides(raw: dict, overrides: Iterable[str]) -> dict:
    """Apply ``--set`` overrides to a raw YAML dict (a deep copy is returned; null removes a field)."""
    import copy

    out = copy.deepcopy(raw)
    given: set[tuple[str, ...]] = set()
    for text in overrides:
        path, value = parse_override(text)
        if tuple(path) in given:
            raise ArchError.at("--set", ".".join(path), "given twice (the last value would win, silently)",
                               "give each field once")
        given.add(tuple(path))
        node = out
        for part in path[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            node = child
        if value is None and path[0] == TECH_SECTION:
            node[path[-1]] = None  # no override; the entry's name is still checked against the table
        elif value is None:
            node.pop(path[-1], None)
        else:
            node[path[-1]] = value
        other = OTHER_DRAM_SPELLING.get(path[1]) if len(path) == 2 and path[0] == "dram" else None
        if value is not None and other is not None and ("dram", other) not in given:
            node.pop(other, None)  # one spelling of a DRAM rate replaces the other (DRAM_UNITS)
    return out


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
    _refuse_fields_of_an_absent_exit_unit(raw, overridden, overrides)
    arch = build_arch(overridden, where=shown_as or str(path), base_dir=path.resolve().parent, path=path)
    return replace(arch, shown_as=shown_as) if shown_as else arch


def override_list(overrides: Iterable[str] | None) -> list[str]:
    """A script's ``overrides`` as a list of 'path=value' strings (None: none); a lone string or a dict, which
    would be taken apart character by character or key by key, or an item that is no string, is an ArchError."""
    if overrides is None:
        return []
    if isinstance(overrides, (str, bytes, dict)):
        raise ArchError.at("overrides", None, f"must be a list of 'path.to.field=value' strings, got a "
                           f"{type(overrides).__name__} {shown(overrides)}",
                           "wrap it in a list, e.g. ['accelerators=1']")
    items = list(overrides)
    for item in items:
        if not isinstance(item, str):
            raise ArchError.at("overrides", None, f"item {shown(item)} ({type(item).__name__}) is not a string",
                               "write each override as 'path.to.field=value', e.g. 'pe.adders=2'")
    return items


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


@contextmanager
def naming_set_values(overrides: Iterable[str], source: str = "--set") -> Iterator[None]:
    """Inside, a user error whose field one of the command's ``--set`` values (or the ``source`` named) gave says so:
    the message names the architecture file, which does not hold the value (also for refusals at mapping time,
    e.g. images_per_batch)."""
    given = {text.partition("=")[0].strip(): text for text in overrides}
    try:
        yield
    except SatasimError as error:
        field = error.field or ""
        culprit = given.get(field)
        inside = [text for path, text in given.items() if field and path.startswith(field + ".")]
        if (culprit is None and not inside) or getattr(error, "from_set", False) or str(error).startswith("--set: "):
            raise  # not a --set's value, already said so, or an override refused by itself (the message names it)
        if culprit is not None:
            relabelled = type(error)(f"{error} (the value comes from {source} {culprit})")
        else:  # a section's check of several fields (array: rows x cols): name the values given inside it
            relabelled = type(error)(f"{error} ({source.removesuffix(' item')} gave {', '.join(inside)})")
        relabelled.field, relabelled.problem, relabelled.from_set = error.field, error.problem, True
        raise relabelled from None


def _refuse_fields_of_an_absent_exit_unit(raw: dict, overridden: dict, overrides: list[str]) -> None:
    """A --set of an exit-unit field on a design without an exit unit (no exit tile, no exit_unit section) has
    nothing to act on; say so, instead of the 'exit_unit.kind: missing' that the half-made section would give."""
    section, array = overridden.get("exit_unit"), overridden.get("array")
    still_none = isinstance(array, dict) and array.get("exit_unit_tiles") == 0  # not given one by --set either
    if not exit_unit_omitted(raw) or not still_none or not isinstance(section, dict) or "kind" in section:
        return
    fields = [text.split("=", 1)[0].strip() for text in overrides if text.strip().startswith("exit_unit.")]
    raise ArchError.at("--set", fields[0] if fields else "exit_unit",
                       "this design has no exit unit (array.exit_unit_tiles: 0 and no exit_unit section), so the "
                       "field acts on nothing", "drop the --set, or give the design an exit unit with "
                       "--set array.exit_unit_tiles=1 --set exit_unit.kind=at (or dt; and the section's other fields)")
