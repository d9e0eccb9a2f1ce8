"""Shared by the study-file tests: an engine study around a small workload (conftest.py's workload_path)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARCH = ROOT / "archs" / "atsn16x16.yaml"


def engine_study(tmp_path: Path, workload_path: Path, body: str, name: str = "s.yaml") -> Path:
    """An engine study on archs/atsn16x16.yaml (unless ``body`` varies arch) with ``body`` appended."""
    path = tmp_path / name
    arch = "" if "arch:" in body else f"arch: {ARCH}\n"
    path.write_text(f"name: t\nmode: engine\n{arch}workload: {workload_path}\nimages: 2\n{body}metrics: [fps]\n")
    return path
