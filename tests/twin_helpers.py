"""Helpers shared by the twin tests (tests/test_spike_rows.py, tests/test_exit_steps.py)."""
from __future__ import annotations

import json

import pytest

from satasim_atsn.cli import main


def with_arrays(wl, source: str, **arrays):
    """A copy of ``wl`` (named ``source``) with ``arrays`` added, ``a__b`` for key ``a/b`` (a value of None removes
    the key), not validated."""
    out = dict(wl.arrays)
    for key, value in arrays.items():
        key = key.replace("__", "/")
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return type(wl)(meta=json.loads(json.dumps(wl.meta)), arrays=out, source=source)


def run_cli(args, capsys) -> tuple[int, str, str]:
    """``satasim ARGS``: its exit code, stdout and stderr."""
    with pytest.raises(SystemExit) as info:
        main([str(a) for a in args])
    out = capsys.readouterr()
    return info.value.code, out.out, out.err
