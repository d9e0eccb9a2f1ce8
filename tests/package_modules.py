"""The package's modules, whose constants hypothesis (6.131 and later) also draws from: tests/conftest.py loads
them all before a hypothesis test runs, and tests/test_engine_vs_reference.py checks that it did."""

from __future__ import annotations

import pkgutil

import satasim_atsn


def package_module_names() -> list[str]:
    """Every module of satasim_atsn but ``__main__`` (which would run the command line)."""
    return [m.name for m in pkgutil.walk_packages(satasim_atsn.__path__, "satasim_atsn.")
            if m.name.rsplit(".", 1)[-1] != "__main__"]


def has_hypothesis_test(items) -> bool:
    """Whether any of the collected test items is a hypothesis test."""
    return any(getattr(getattr(item, "function", None), "is_hypothesis_test", False) for item in items)
