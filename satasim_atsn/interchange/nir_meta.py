"""The ``satasim`` metadata of a NIR graph (what this tool's export writes beside the nodes): read from the graph,
and every field an import uses checked, since a file may have been edited."""

from __future__ import annotations

import json
import math
from typing import Any

from satasim_atsn.errors import WorkloadError, shown
from satasim_atsn.interchange.nir_graph import META_KEY
from satasim_atsn.workload.schema import EXIT_PARAMETERS, POLICY_NAMES


def graph_meta(graph: Any) -> dict:
    """The graph's ``satasim`` metadata as a dict; {} when absent, unreadable or not this tool's export's."""
    raw = (graph.metadata or {}).get(META_KEY) if isinstance(graph.metadata, dict) else None
    if isinstance(raw, bytes):
        raw = raw.decode("utf8")
    try:
        meta = json.loads(raw) if isinstance(raw, str) else {}
    except json.JSONDecodeError:
        meta = {}
    return meta if isinstance(meta, dict) and meta.get("format") == "satasim-nir" else {}


META_NUMBERS = ("dt", "input_scale", "logit_scale")  # positive, finite
META_INTS = {"timesteps": (1, 1024), "vmem_bits": (8, 32), "output_vmem_bits": (8, 64)}  # the workload format's
MAX_DECAY_SHIFT = 31


def checked_meta(meta: dict, where: str) -> dict:
    """The graph's ``satasim`` metadata with every field an import reads checked (a file may have been edited)."""
    def bad(key: str, problem: str) -> WorkloadError:
        return WorkloadError.at(where, f'metadata["{META_KEY}"].{key}', problem,
                                "re-export the graph with `satasim workload export`, or remove the field")
    for key in META_NUMBERS:
        value = meta.get(key)
        if key in meta and not (isinstance(value, (int, float)) and not isinstance(value, bool)
                                and math.isfinite(value) and value > 0):
            raise bad(key, f"must be a positive number, got {shown(value)}")
    for key, (low, high) in META_INTS.items():
        value = meta.get(key)
        if key in meta and not (isinstance(value, int) and not isinstance(value, bool) and low <= value <= high):
            raise bad(key, f"must be an integer in {low}..{high}, got {shown(value)}")
    order = meta.get("layer_order", [])
    if not (isinstance(order, list) and all(isinstance(n, str) for n in order)):
        raise bad("layer_order", f"must be a list of node names, got {shown(order)}")
    shifts = meta.get("decay_shifts", [0])
    if not (isinstance(shifts, list) and shifts and all(isinstance(k, int) and not isinstance(k, bool)
                                                        and 0 <= k <= MAX_DECAY_SHIFT for k in shifts)):
        raise bad("decay_shifts", f"must be a list of shifts in 0..{MAX_DECAY_SHIFT}, got {shown(shifts)}")
    names = meta.get("class_names", [])
    if not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
        raise bad("class_names", f"must be a list of class names, got {shown(names)}")
    policy = meta.get("exit_policy", {})
    if not isinstance(policy, dict) or any(k not in EXIT_PARAMETERS + ("default",) for k in policy) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for k, v in policy.items() if k != "default"):
        raise bad("exit_policy", f"must map {', '.join(EXIT_PARAMETERS)} to numbers (and default to the training's "
                  f"policy name), got {shown(policy)}")
    if not isinstance(policy.get("default", "atsn"), str) or policy.get("default", "atsn") not in POLICY_NAMES:
        raise bad("exit_policy.default", f"must be a policy name ({', '.join(POLICY_NAMES)}), got "
                  f"{shown(policy['default'])}")
    return meta
