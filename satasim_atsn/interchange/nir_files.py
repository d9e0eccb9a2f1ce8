"""NIR files and an import's inputs: the ``nir`` package (an optional extra), reading and writing graphs (one-line
refusals of a missing, corrupt or other-version file) and reading the inputs an import embeds."""

from __future__ import annotations

import io
import os
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from satasim_atsn.errors import WorkloadError
from satasim_atsn.fileio import atomic_write_bytes, starts_as_zip


def require_nir() -> ModuleType:
    """The ``nir`` module, or a one-line WorkloadError saying how to install it."""
    try:
        import nir
    except ImportError:
        raise WorkloadError.at(None, "nir", "the nir package is not installed",
                               "pip install 'satasim-atsn[nir]' (or pip install nir)") from None
    return nir


def write_nir(path: str | os.PathLike, graph: Any) -> None:
    """Write a NIR graph atomically (a temp file renamed into place; links followed, special files in place).

    The HDF5 file is made in memory and then written as bytes: HDF5 writing to a full disk (or past ``ulimit -f``)
    printed hundreds of tracebacks, crashed the process (segmentation fault) and left its temp file behind."""
    nir = require_nir()
    buffer = io.BytesIO()
    nir.write(buffer, graph)
    atomic_write_bytes(path, buffer.getvalue())


def _refuse_other_file_kinds(where: str) -> None:
    """A workload, inputs or YAML file given where a NIR graph goes is named as what it is (it was "not a readable
    NIR (HDF5) file (OSError); ...; export it again")."""
    if starts_as_zip(where):
        raise WorkloadError.at(where, None, "is a .npz file (a workload or inputs), not a NIR graph",
                               "give a NIR graph as MODEL (a workload is exported with satasim workload export W.npz "
                               "--nir MODEL.nir; inputs go as --inputs)")
    if where.lower().endswith((".yaml", ".yml")):
        raise WorkloadError.at(where, None, "is a YAML file, not a NIR graph",
                               "give a NIR graph as MODEL (a network file is built with satasim workload build "
                               "--network)")


def read_nir(path: str | os.PathLike) -> Any:
    """Read a NIR file, refusing (one line) a missing, corrupt or other-major-version file."""
    nir = require_nir()
    where = str(path)
    if not Path(path).is_file():
        raise WorkloadError.at(where, None, "no such file", "check the path")
    import h5py

    try:
        with h5py.File(path, "r") as handle:
            raw = handle["version"][()] if "version" in handle else None
            has_node = "node" in handle
    except (OSError, ValueError) as error:
        _refuse_other_file_kinds(where)
        raise WorkloadError.at(where, None, f"not a readable NIR (HDF5) file ({type(error).__name__})",
                               "the file is corrupt or not NIR; export it again") from None
    version = raw.decode("utf8") if isinstance(raw, bytes) else (None if raw is None else str(raw))
    if version is None or not has_node:
        raise WorkloadError.at(where, "version" if version is None else "node", "missing",
                               "not a NIR file written by nir.write")
    major = version.split(".")[0]
    if major != str(nir.version).split(".")[0]:
        raise WorkloadError.at(where, "version", f"is NIR {version}; this tool reads NIR {nir.version.split('.')[0]}.x",
                               "convert it with a matching nir package")
    try:
        return nir.read(path, type_check=False)
    except Exception as error:  # nir raises bare ValueError/KeyError/AssertionError on malformed content
        nested = _nested_node_names(path)
        if nested:  # nir.write stores a node named 'a/b' as group a holding b: the file cannot be read back
            raise WorkloadError.at(where, "node names", f"{nested} contain '/', which NIR's HDF5 files store as "
                                   "nested groups (the node cannot be read back)",
                                   "rename the nodes without '/' (e.g. '.' or '_') and export again") from None
        raise WorkloadError.at(where, None, f"is not a valid NIR graph ({type(error).__name__}: "
                               f"{' '.join(str(error).split())[:120]})", "export it again") from None


def _nested_node_names(path: str | os.PathLike) -> list[str]:
    """Node names that nir.write split at '/' into nested HDF5 groups (a group without a ``type``)."""
    import h5py

    found: list[str] = []
    try:
        with h5py.File(path, "r") as handle:
            nodes = handle["node"].get("nodes")
            if nodes is None:
                return []
            for name, group in nodes.items():
                if isinstance(group, h5py.Group) and "type" not in group:
                    found += [f"{name}/{child}" for child in group]
    except (OSError, KeyError, ValueError):
        return []
    return sorted(found)[:5]


HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"  # the first bytes of an HDF5 file (NIR graphs are HDF5)


def load_inputs(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray | None]:
    """Inputs for an import: a workload .npz (its x, y) or a plain .npz with ``x`` (and optionally ``y``)."""
    from satasim_atsn.workload.format import load_npz_arrays, read_workload

    where = str(path)
    if not Path(path).is_file():
        raise WorkloadError.at(where, None, "no such file", "give an .npz with x (and y), or a workload")
    with open(path, "rb") as handle:
        if handle.read(8) == HDF5_MAGIC:  # the graph given twice: "not a readable .npz file; regenerate it" before
            raise WorkloadError.at(where, None, "is an HDF5 file (a NIR graph), not inputs",
                                   "give the graph as MODEL and an .npz with x (and y), or a workload, as --inputs")
    try:
        arrays = load_npz_arrays(path, where)
    except WorkloadError:  # a member that is not an array, stored twice, or beyond memory: named by the loader
        raise
    except Exception as error:
        raise WorkloadError.at(where, None, f"not a readable .npz file ({type(error).__name__})",
                               "regenerate it") from None
    if "format" in arrays:
        wl = read_workload(path)
        if wl.is_statistical:
            raise WorkloadError.at(where, None, "a statistical workload embeds no inputs",
                                   "give a trained or imported workload, or an .npz with x (and y)")
        return wl.inputs(), wl.labels()
    if "x" not in arrays:
        raise WorkloadError.at(where, "x", "missing", "store inputs as x: uint8 [N, C, H, W] or 0/1 [N, T, C, H, W]")
    x, y = arrays["x"], arrays.get("y")
    if x.ndim == 5:
        if not np.isin(x, (0, 1)).all():
            raise WorkloadError.at(where, "x", "5-D inputs must be 0/1 spike frames", "binarise the frames")
        x = x.astype(np.uint8)
    elif x.ndim == 3 and x.dtype == np.uint8:  # one-channel images stored without their channel axis (MNIST's)
        frames = bool(np.isin(x, (0, 1)).all())  # or 0/1 spike frames [N, T, F] of a flat Input
        raise WorkloadError.at(where, "x", f"has shape {list(x.shape)}, images without a channel axis"
                               + (" (or spike frames [N, T, F] without their map axes)" if frames else ""),
                               "add the channel axis: x[:, None] is [N, 1, H, W] (what a graph whose Input is "
                               "[1, H, W] or [H, W] reads)" + ("; spike frames of a flat Input [F] are "
                                                                "x[:, :, :, None, None], [N, T, F, 1, 1]"
                                                                if frames else ""))
    elif x.ndim not in (2, 4) or x.dtype != np.uint8:
        raise WorkloadError.at(where, "x", f"has shape {list(x.shape)} and dtype {x.dtype}",
                               "give uint8 images [N, C, H, W] (or [N, features]) or 0/1 spike frames [N, T, C, H, W]")
    if x.shape[0] == 0:
        raise WorkloadError.at(where, "x", "holds no inputs", "give at least one input")
    if y is not None and (y.ndim != 1 or y.shape[0] != x.shape[0] or y.dtype.kind not in "iu"):
        raise WorkloadError.at(where, "y", f"has shape {list(y.shape)} and dtype {y.dtype} for {x.shape[0]} inputs",
                               "give one integer label per input")
    return x, y
