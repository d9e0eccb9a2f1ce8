"""What an architect reads first: energy in four groups, pJ per synaptic operation, and how busy each unit was.

``energy_breakdown(result)`` groups the run's energy by ``hw/energy.py``'s ``COMPONENT_GROUP`` (compute,
on-chip memory, NoC, DRAM), each split into dynamic and leakage (for DRAM: access energy and background
power), with totals, per-image values and shares, and the energy per synaptic operation.
``utilisation(result)`` divides the run's counters by what each unit could have done over the makespan.
Definitions: docs/results.md. Energies are held as integer femtojoules (the 1 fJ grid ``per_image`` uses),
so parts, groups and totals add up exactly and the JSON bytes cannot move with summation order; ratios
are rounded to 12 decimals.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import numpy as np

from satasim_atsn.hw.energy import ENERGY_GROUPS, GROUP_COMPONENTS
from satasim_atsn.hw.per_image import (
    FJ_PER_PJ,
    PARTS,
    RATIO_PLACES,
    _grid,
    group_fJ,
    synaptic_operations,
)

PJ_PER_SOP_PLACES = 9  # pJ per synaptic operation on a 1e-9 pJ grid
#: the groups that are on the chip (the scope of published chips' pJ per synaptic operation)
ON_CHIP_GROUPS = tuple(g for g in ENERGY_GROUPS if g != "dram")


def _pJ(fJ: int) -> float:
    """Whole femtojoules as pJ (an integer quotient: correctly rounded, the same bytes on any machine)."""
    return fJ / FJ_PER_PJ


def _ratio(num: int | float, den: int | float) -> float:
    """num / den rounded to RATIO_PLACES (0 when den is 0)."""
    return _grid(Fraction(num) / Fraction(den), RATIO_PLACES) if den else 0.0


def _pJ_per_sop(fJ: int, sops: int) -> float | None:
    return _grid(Fraction(fJ, FJ_PER_PJ * sops), PJ_PER_SOP_PLACES) if sops else None


def energy_breakdown(result) -> dict[str, Any]:
    """The run's energy by group (dynamic, leakage, total; run totals, per image, shares) and pJ per SOP."""
    n = int(result.images)
    # per image: each part rounded to the fJ grid, group and grand totals summed from the rounded parts
    run, per = group_fJ(result)
    total = {part: sum(run[g][part] for g in ENERGY_GROUPS) for part in PARTS}
    grand = total["dynamic"] + total["leakage"]
    groups = {}
    for g in ENERGY_GROUPS:
        r, p = run[g], per[g]
        groups[g] = {
            "components": list(GROUP_COMPONENTS[g]),
            "dynamic_pJ": _pJ(r["dynamic"]),
            "leakage_pJ": _pJ(r["leakage"]),
            "total_pJ": _pJ(r["dynamic"] + r["leakage"]),
            "per_image": {"dynamic_pJ": _pJ(p["dynamic"]), "leakage_pJ": _pJ(p["leakage"]),
                          "total_pJ": _pJ(p["dynamic"] + p["leakage"])},
            "share": _ratio(r["dynamic"] + r["leakage"], grand),
            "dynamic_share": _ratio(r["dynamic"], grand),
            "leakage_share": _ratio(r["leakage"], grand),
        }
    per_dyn = sum(per[g]["dynamic"] for g in ENERGY_GROUPS)
    per_leak = sum(per[g]["leakage"] for g in ENERGY_GROUPS)
    sops = synaptic_operations(result.totals)
    on_chip = {part: sum(run[g][part] for g in ON_CHIP_GROUPS) for part in PARTS}
    return {
        "groups": groups,
        "dynamic_pJ": _pJ(total["dynamic"]),
        "leakage_pJ": _pJ(total["leakage"]),
        "total_pJ": _pJ(grand),
        "per_image": {"dynamic_pJ": _pJ(per_dyn), "leakage_pJ": _pJ(per_leak), "total_pJ": _pJ(per_dyn + per_leak)},
        "leakage_share": _ratio(total["leakage"], grand),
        "synaptic_operations": sops,
        "synaptic_operations_per_image": sops / n,
        "pJ_per_sop": _pJ_per_sop(grand, sops),
        "dynamic_pJ_per_sop": _pJ_per_sop(total["dynamic"], sops),
        "on_chip_pJ_per_sop": _pJ_per_sop(on_chip["dynamic"] + on_chip["leakage"], sops),
        "on_chip_dynamic_pJ_per_sop": _pJ_per_sop(on_chip["dynamic"], sops),
    }


def mesh_links(rows: int, cols: int) -> int:
    """Directed links of a rows x cols mesh (one each way between neighbouring tiles)."""
    return 2 * (rows * (cols - 1) + cols * (rows - 1))


def utilisation(result) -> dict[str, Any]:
    """Busy fractions of the PE array, the exit unit and the DRAM channel; port loads of the global buffers,
    the DRAM and the NoC links: each a ratio of the run's counters to the capacity over the makespan."""
    arch, totals = result.arch, result.totals
    accs = result.per_accelerator
    makespan = int(result.total_cycles)
    acc_cycles = len(accs) * makespan  # every accelerator's cycles over the makespan
    pe_cycles = sum(len(a["pe"]["busy"]) for a in accs) * makespan
    pe = {state: int(sum(int(np.asarray(a["pe"][state]).sum()) for a in accs))
          for state in ("busy", "stall_input", "stall_output", "stall_memory", "idle")}
    eu = {state: int(sum(int(a["exit_unit"][state]) for a in accs)) for state in ("busy", "stall_input", "idle")}
    gb = arch["global_buffers"]
    dram_bytes = int(totals["dram_read_bytes"]) + int(totals["dram_write_bytes"])
    links = mesh_links(int(arch["array"]["rows"]), int(arch["array"]["cols"]))
    return {
        "pe_array": {state: _ratio(v, pe_cycles) for state, v in pe.items()},
        "exit_unit": {state: _ratio(v, acc_cycles) for state, v in eu.items()},
        "dram_channel_busy": _ratio(int(result.dram_busy_cycles), makespan),
        "dram_bandwidth": _ratio(dram_bytes, int(arch["dram"]["bytes_per_cycle"]) * makespan),
        "weight_buffer_read_port": _ratio(int(totals["weight_glb_read_bytes"]),
                                          int(gb["weight"]["bytes_per_cycle"]) * acc_cycles),
        "input_buffer_read_port": _ratio(int(totals["spike_glb_read_bytes"]),
                                         int(gb["input"]["bytes_per_cycle"]) * acc_cycles),
        "output_buffer_write_port": _ratio(int(totals["spike_glb_write_bytes"]),
                                           int(gb["output"]["bytes_per_cycle"]) * acc_cycles),
        "noc_link_load": _ratio(int(totals["noc_byte_hops"]),
                                links * int(arch["noc"]["link_bytes_per_cycle"]) * acc_cycles),
    }
