"""Metrics of one simulation, extracted from the engine's SimResult, plus workload notices."""

from __future__ import annotations

import json
import zipfile
from functools import lru_cache
from pathlib import Path


@lru_cache(maxsize=64)
def workload_meta(path: str) -> dict:
    """The meta of a workload file, read without loading its arrays."""
    with zipfile.ZipFile(path) as archive:
        import numpy as np

        with archive.open("meta.npy") as handle:
            return json.loads(str(np.lib.format.read_array(handle, allow_pickle=False)))


def workload_notice(path: str | Path) -> str:
    """First line of a report on a statistical workload ('' for trained/imported ones)."""
    meta = workload_meta(str(path))
    if meta.get("kind") != "statistical":
        return ""
    source = meta.get("provenance", {}).get("rates_source") or meta.get("provenance", {}).get("source") or ""
    extra = f" Rates: {source}." if source else ""
    return (f"Statistical workload: {meta.get('name')} ({meta.get('dataset')}) has no trained weights; its spikes are "
            f"drawn from per-layer firing rates and exit-step histograms (DESIGN.md section 4), so accuracy is not "
            f"simulated and absolute numbers depend on those rates.{extra}")
