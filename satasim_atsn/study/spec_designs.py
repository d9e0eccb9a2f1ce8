"""The designs a study names: which technology table each uses, and digests that tell two files of one design
apart from two designs (a study refuses points that would run the same design twice)."""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from satasim_atsn.errors import SatasimError
from satasim_atsn.fileio import (
    content_key,
    file_sha256,
)
from satasim_atsn.hw.tech import TECH_DIR

_DIGESTS: dict[tuple, str] = {}


def technology_as_named(arch_path: Path, overrides: Iterable[str]) -> dict[str, str]:
    """{resolved path of the design's technology table: the name its file (or a ``technology=`` override) gives}, or
    {} when it cannot be resolved (the refusal then says why)."""
    from satasim_atsn.hw.tech import resolve_tech_path

    name = arch_technology(arch_path)
    for entry in overrides:
        field_name, _, value = entry.partition("=")
        if field_name.strip() == "technology":
            name = value.strip()
    try:
        return {str(resolve_tech_path(str(name), arch_path.parent)): str(name)} if name else {}
    except (SatasimError, OSError):
        return {}


def user_table_digest(arch_path: Path | None, fixed: list[str], point: dict[str, Any]) -> str | None:
    """sha256 of the technology table a point runs with when it is the user's file (None for a table shipped
    with the package, which is part of the tool like the engine, or when the name cannot be resolved: the
    architecture check reports that)."""
    from satasim_atsn.hw.tech import resolve_tech_path

    if arch_path is None:
        return None
    name = arch_technology(arch_path)
    for entry in fixed:
        field_name, _, value = entry.partition("=")
        if field_name.strip() == "technology":
            name = value.strip()
    name = point.get("technology", name)
    try:
        path = resolve_tech_path(str(name), arch_path.parent)
        if path.resolve().parent == TECH_DIR.resolve() or not path.is_file():
            return None
        return file_digest(path)
    except (SatasimError, OSError):
        return None


def arch_technology(arch_path: Path) -> str | None:
    """The ``technology`` an architecture file names (None if it cannot be read: its check says why)."""
    try:
        arch_path.stat()
        return _technology_named(str(arch_path), content_key(arch_path))
    except OSError:
        return None


@functools.lru_cache(maxsize=256)
def _technology_named(path: str, key: tuple) -> str | None:  # noqa: ARG001 - the content key keys the cache
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    return raw.get("technology") if isinstance(raw, dict) else None


def file_digest(path: Path) -> str:
    """sha256 of a file's bytes (cached by fileio.content_key: a file rewritten keeping its size and time is read)."""
    path.stat()  # a missing file: the OSError callers handle
    key = content_key(path)
    if key not in _DIGESTS:
        _DIGESTS[key] = file_sha256(path)[:16]
    return _DIGESTS[key]


def same_design(one: Path, other: Path) -> bool:
    """Two architecture files of the same bytes whose technology tables are one (a shipped table, or user tables
    of the same contents): the same design, whatever the files' names."""
    try:
        if file_digest(one) != file_digest(other):
            return False
    except OSError:
        return False  # the architecture checks say why it cannot be read
    tables = [technology_as_named(path, []) for path in (one, other)]
    if not all(table and all(os.path.isfile(found) for found in table) for table in tables):
        return False  # a table that cannot be found: the architecture checks say so, not "the same design"
    return user_table_digest(one, [], {}) == user_table_digest(other, [], {})
