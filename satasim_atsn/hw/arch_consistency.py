"""The rules that tie an architecture's fields together (docs/architecture.md, 'Consistency rules'): buffers and
spikes, exit tiles and kinds, ADC fields, dataflow; the DRAM rates in whole bytes and cycles, its part in the table."""

from __future__ import annotations

import math
from decimal import ROUND_CEILING, Context, Decimal
from fractions import Fraction

from satasim_atsn.errors import ArchError, did_you_mean, shown
from satasim_atsn.hw.arch_fields import ADC_FIELDS, DRAM_UNITS, MAX_EXIT_UNIT_TILES, RATE, SCHEMA
from satasim_atsn.hw.exit_units import ACCELERATOR_EXIT_KIND, EXIT_UNITS
from satasim_atsn.hw.tech import Tech

# DRAM entries that were renamed, with the name that replaced them
RENAMED_DRAM_PARTS = {"dram_sata_sim": "dram_array_only_cacti"}
# other names of a part: DESIGN.md's sketch writes dram_commodity, i.e. commodity DDR4 (the resolved design, and so
# every result, names the part itself)
DRAM_PART_ALIASES = {"dram_commodity": "dram_ddr4"}


def cross_checks(where: str, cfg: dict) -> None:
    """Rules that tie fields together (docs/architecture.md, 'Consistency rules')."""
    sb = cfg["spike_address_bytes"]
    if cfg["noc"]["link_bytes_per_cycle"] < sb:
        raise ArchError.at(where, "noc.link_bytes_per_cycle",
                           f"{cfg['noc']['link_bytes_per_cycle']} B is narrower than one spike address ({sb} B)",
                           f"make it >= spike_address_bytes ({sb})")
    tiles = cfg["array"]["exit_unit_tiles"]
    for unit in ("pe", "exit_unit") if tiles else ("pe",):  # with 0 tiles the exit unit is no hardware
        for buf in ("input_spike_buffer_bytes", "output_spike_buffer_bytes"):
            if cfg[unit][buf] < sb:
                raise ArchError.at(where, f"{unit}.{buf}", f"{cfg[unit][buf]} B cannot hold one {sb}-byte spike",
                                   f"make it >= spike_address_bytes ({sb})")
    eu = cfg["exit_unit"]
    _check_exit_tiles(where, tiles, eu, ACCELERATOR_EXIT_KIND[cfg["kind"]])
    rows, cols = cfg["array"]["rows"], cfg["array"]["cols"]
    if rows * cols <= tiles:
        raise ArchError.at(where, "array", f"rows x cols = {rows} x {cols} leaves no tile for a PE beside "
                           f"{tiles} exit-unit tile", f"use at least {tiles + 1} tiles (e.g. 16x16)")
    pe = cfg["pe"]
    for f in ("data_memory_bytes",):
        if pe[f] * 8 < pe["vmem_bits"]:
            raise ArchError.at(where, f"pe.{f}", f"{pe[f]} B cannot hold one {pe['vmem_bits']}-bit membrane",
                               "enlarge the data memory or lower pe.vmem_bits")
    if pe["accumulation"] == "analog":
        for f in ADC_FIELDS:
            if pe[f] is None:
                raise ArchError.at(where, f"pe.{f}", "analog accumulation needs an ADC description",
                                   f"add pe.{f} (e.g. adc_bits: 8, adc_cycles_per_conversion: 1)")
    else:
        for f in ADC_FIELDS:
            if pe[f] is not None:
                raise ArchError.at(where, f"pe.{f}", "only meaningful with pe.accumulation: analog",
                                   f"remove it (or --set pe.{f}=null), or set pe.accumulation: analog")
    want = ACCELERATOR_EXIT_KIND[cfg["kind"]]
    if eu["kind"] != want:
        article = "an" if cfg["kind"][:1] in "aeiou" else "a"
        raise ArchError.at(where, "exit_unit.kind", f"{article} {cfg['kind']} accelerator has exit unit kind "
                           f"{shown(want)}, got {shown(eu['kind'])}", f"set exit_unit.kind: {want} or change 'kind'")
    given = [f for f in EXIT_UNITS[eu["kind"]].fields if eu.get(f) is not None]  # before the defaults fill in
    for kind, unit in EXIT_UNITS.items():
        for f in unit.fields:
            if kind == eu["kind"] and eu[f] is None:
                eu[f] = unit.defaults[f]
            if kind != eu["kind"] and eu[f] is not None:
                raise ArchError.at(where, f"exit_unit.{f}", f"only meaningful for exit unit kind {shown(kind)}, "
                                   f"this one is {shown(eu['kind'])}", f"remove it (or --set exit_unit.{f}=null)")
    EXIT_UNITS[eu["kind"]].validate(where, eu)
    if cfg["dataflow"] == "layer_major" and eu["kind"] != "none":
        # the fix names every field of the deciding unit the design gives: exit_unit.kind none refuses them
        drop = "".join(f", exit_unit.{f}: null" for f in given)
        raise ArchError.at(where, "dataflow", f"layer_major runs all T timesteps of a layer before the next layer, "
                           f"but exit unit kind {shown(eu['kind'])} decides after every timestep",
                           "use dataflow: timestep_major, or make it fixed-T: kind: conventional, "
                           f"exit_unit.kind: none{drop}")


def _check_exit_tiles(where: str, tiles: int, eu: dict, want: str) -> None:
    """At most one exit tile; with none, no exit unit kind that decides (the run is fixed-T)."""
    if tiles > MAX_EXIT_UNIT_TILES:
        raise ArchError.at(where, "array.exit_unit_tiles", f"{tiles} exit units per accelerator are not modelled",
                           "use 1 (an exit unit) or 0 (the output layer runs on the PEs)")
    kind = eu["kind"]
    needed = kind if EXIT_UNITS[kind].decides else want
    if tiles == 0 and EXIT_UNITS[needed].decides:
        # the fix names every field of the deciding unit the design gives: exit_unit.kind none refuses them
        given = [f"exit_unit.{f}: null" for f in EXIT_UNITS[kind].fields if eu.get(f) is not None]
        drop = f" and {', '.join(given)}" if given else ""
        raise ArchError.at(where, "array.exit_unit_tiles",
                           f"0 leaves no tile for the {needed} unit (exit_unit.kind: {needed})",
                           "set array.exit_unit_tiles: 1, or make it fixed-T: kind: conventional with no exit_unit "
                           f"section, or with exit_unit.kind: none{drop}")


def exact(value: float) -> Fraction:
    """A YAML number as the decimal it was written as (0.1 is 1/10, not the binary float nearest to it)."""
    return Fraction(repr(value)) if isinstance(value, float) else Fraction(value)


def dram_cycles(where: str, cfg: dict) -> None:
    """Fill dram.bytes_per_cycle and dram.latency_cycles from GB/s and ns when the file gives those.

    The timing models move whole bytes per cycle and wait whole cycles, so the bandwidth is rounded down and the
    latency up (never a faster DRAM than the one described), in exact decimal arithmetic."""
    dram, clock = cfg["dram"], exact(cfg["clock_hz"])
    for per_cycle, timed in DRAM_UNITS.items():
        if dram[per_cycle] is None and dram[timed] is None:
            raise ArchError.at(where, f"dram.{per_cycle}", "missing",
                               f"give dram.{per_cycle} (in accelerator cycles) or dram.{timed} (held whatever "
                               "clock_hz is)")
        if dram[per_cycle] is not None and dram[timed] is not None:
            raise ArchError.at(where, f"dram.{timed}", f"and dram.{per_cycle} are both given: one rate in two units",
                               "give one of them (a --set of one replaces the file's other)")
    if dram["bandwidth_GB_per_s"] is not None:
        rate = exact(dram["bandwidth_GB_per_s"]) * 10**9 / clock
        if rate < 1:
            least = Decimal(clock.numerator) / Decimal(clock.denominator * 10**9)  # GB/s of one byte per cycle
            raise ArchError.at(where, "dram.bandwidth_GB_per_s",
                               f"{dram['bandwidth_GB_per_s']:g} GB/s is less than one byte per cycle at "
                               f"{cfg['clock_hz'] / 1e6:g} MHz",
                               f"give at least {Context(6, ROUND_CEILING).plus(least):f} GB/s")
        if rate >= RATE[1] + 1:
            raise ArchError.at(where, "dram.bandwidth_GB_per_s",
                               f"{dram['bandwidth_GB_per_s']:g} GB/s is more than {RATE[1]} bytes per cycle at "
                               f"{cfg['clock_hz'] / 1e6:g} MHz", "give a smaller bandwidth (an exponent typo?)")
        dram["bytes_per_cycle"] = math.floor(rate)
    if dram["latency_ns"] is not None:
        cycles = math.ceil(exact(dram["latency_ns"]) * clock / 10**9)
        most = SCHEMA["dram"]["latency_cycles"][2][1]
        if cycles > most:
            raise ArchError.at(where, "dram.latency_ns", f"{dram['latency_ns']:g} ns is more than {most} cycles at "
                               f"{cfg['clock_hz'] / 1e6:g} MHz", "give a shorter latency (an exponent typo?)")
        dram["latency_cycles"] = cycles


def dram_parts(tech: Tech) -> list[str]:
    """The DRAM parts a technology table offers: the stems of its dram_<part>_energy_pJ_per_bit entries."""
    return sorted(k[: -len("_energy_pJ_per_bit")] for k in tech.entries
                  if k.startswith("dram_") and k.endswith("_energy_pJ_per_bit"))


def check_dram_part(where: str, part: str, tech: Tech) -> None:
    """dram.energy_table_entry must name a DRAM part of the table (one line with the fix otherwise);
    a part with background power needs its channel bandwidth."""
    field_at = "dram.energy_table_entry"
    if part in RENAMED_DRAM_PARTS and not tech.has(f"{part}_energy_pJ_per_bit"):
        raise ArchError.at(where, field_at, f"{shown(part)} was renamed: it is CACTI's array-only figure "
                           "(SATA-Sim's default), not a DRAM part", f"use {RENAMED_DRAM_PARTS[part]}")
    parts = dram_parts(tech)
    if part not in parts:
        raise ArchError.at(where, field_at, f"{shown(part)} is not a DRAM part of {tech.path.name}",
                           did_you_mean(part, parts, "valid:"))
    if tech.has(f"{part}_background_power_mW") and not tech.has(f"{part}_channel_bandwidth_GB_per_s"):
        raise ArchError.at(str(tech.path), f"entries.{part}_channel_bandwidth_GB_per_s",
                           "a DRAM part with background power needs its channel bandwidth",
                           "add the entry (the channels needed are the DRAM bandwidth / this)")
    if tech.has(f"{part}_channel_bandwidth_GB_per_s") and not tech.has(f"{part}_background_power_mW"):
        # an access-only part has neither; a bandwidth alone is a table that lost its standby power
        raise ArchError.at(str(tech.path), f"entries.{part}_background_power_mW",
                           "a DRAM part with a channel bandwidth needs its background power (else the DRAM's "
                           "standby power is silently 0)", "add the entry, or drop the bandwidth for an "
                           "access-only part (docs/energy.md)")
