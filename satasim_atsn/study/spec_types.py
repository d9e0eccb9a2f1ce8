"""A parsed study: its axes (:class:`Axis`) and the study itself (:class:`Study`: its points, their names and
the digests that key their rows), as :func:`study.spec.load_study` builds it."""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from satasim_atsn.hw import MODEL_VERSION
from satasim_atsn.study.spec_designs import file_digest, user_table_digest
from satasim_atsn.study.spec_fields import key_value


@dataclass
class Axis:
    """One axis of the study: one field, or several zipped fields moving together."""

    fields: tuple[str, ...]
    values: list[tuple[Any, ...]]


@dataclass
class Study:
    """A validated study."""

    path: Path
    name: str
    description: str
    mode: str
    arch: Path | None
    workload: Path
    images: int
    start: int
    fixed: list[str]
    axes: list[Axis]
    metrics: list[str]
    plots: list[dict]
    raw: dict = field(default_factory=dict)
    arch_files: dict[str, Path] = field(default_factory=dict)  # vary.arch: value as written -> resolved file

    def point_arch(self, point: dict[str, Any]) -> Path | None:
        """The architecture file of a point: its ``arch`` value when the study varies it, else the base."""
        return self.arch_files[str(point["arch"])] if "arch" in point else self.arch

    @property
    def fields(self) -> list[str]:
        """Varied field paths in axis order."""
        return [f for axis in self.axes for f in axis.fields]

    def points(self) -> list[dict[str, Any]]:
        """Every point (field -> value), in product order of the axes; index = position."""
        out = []
        for combo in itertools.product(*[axis.values for axis in self.axes]):
            point: dict[str, Any] = {}
            for axis, values in zip(self.axes, combo, strict=False):
                point.update(zip(axis.fields, values, strict=False))
            out.append(point)
        return out

    def base_identity(self) -> dict:
        """What every point's result depends on besides its own values (file contents, not paths, and for an
        engine study the hardware model's version)."""
        model = {"model_version": MODEL_VERSION} if self.mode == "engine" else {}
        return {
            **model,
            "mode": self.mode,
            "arch": None if self.arch is None else file_digest(self.arch),
            "workload": file_digest(self.workload),
            "images": self.images,
            "start": self.start,
            "fixed": list(self.fixed),
            "metrics": sorted(self.metrics),  # a row holds its metrics by name: their order changes no result
        }

    def point_key(self, point: dict[str, Any], base: dict | None = None) -> str:
        """A content key for a point: equal keys mean equal results, so rows can be reused."""
        base = base if base is not None else self.base_identity()
        if "arch" in point:  # a varied architecture: its file's contents, not its path
            base = {**base, "arch": file_digest(self.arch_files[str(point["arch"])])}
        table = user_table_digest(self.point_arch(point), self.fixed, point) if self.mode == "engine" else None
        if table is not None:  # a technology table of the user's: its contents too (a shipped one is the tool's)
            base = {**base, "technology_table": table}
        items = sorted((fname, key_value(fname, value)) for fname, value in point.items())
        payload = json.dumps({"base": base, "point": items}, sort_keys=True, default=str)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def identity(self) -> dict:
        """The identity stored in the output directory (study.json)."""
        base = self.base_identity()
        points = self.points()
        return {
            "name": self.name,
            "study_file": self.path.name,
            "mode": self.mode,
            "fields": self.fields,
            "metrics": self.metrics,
            "points": len(points),
            **({"model_version": MODEL_VERSION} if self.mode == "engine" else {}),
            "digest": hashlib.sha256(
                json.dumps([self.point_key(p, base) for p in points]).encode()
            ).hexdigest()[:16],
        }
