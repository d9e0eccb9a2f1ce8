"""docs/workload-format.md: its example writes a valid workload, and the semantics it states are what the
forward computes (recomputed here by hand from the page's equations, not with the simulator's code)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest

from satasim_atsn.cli import main
from satasim_atsn.snn.forward import run_forward
from satasim_atsn.workload.format import read_workload

DOC = Path(__file__).resolve().parents[1] / "docs" / "workload-format.md"


@pytest.fixture(scope="module")
def example(tmp_path_factory) -> Path:
    """The page's python block, run as written in a fresh directory."""
    code = re.search(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    assert code, "docs/workload-format.md lost its example"
    where = tmp_path_factory.mktemp("doc")
    cwd = Path.cwd()
    try:
        os.chdir(where)
        exec(compile(code.group(1), str(DOC), "exec"), {})
    finally:
        os.chdir(cwd)
    return where / "tiny_mlp.npz"


def _sat(u: np.ndarray, bits: int) -> np.ndarray:
    hi = (1 << (bits - 1)) - 1
    return np.clip(u, -hi - 1, hi)


def test_the_example_follows_the_pages_equations(example):
    """Direct input (W.x + b) >> input_shift once; LIF u = sat(u_base + I), spike u > vth, reset 0 else u >> 1;
    membrane output u = sat((u >> 1) + W s + b), logits u * logit_scale."""
    wl = read_workload(example)
    with np.load(example) as data:
        arrays = {k: data[k] for k in data.files}
    meta = json.loads(str(arrays["meta"]))
    T, shift = meta["timesteps"], meta["quant"]["input_shift"]
    x = arrays["x"].reshape(len(arrays["x"]), -1).astype(np.int64)
    current = (x @ arrays["w/fc1"].astype(np.int64).T + arrays["b/fc1"]) >> shift
    u_base = np.zeros_like(current)
    out = np.zeros((len(x), 3), dtype=np.int64)
    spikes, outs = [], []
    for _ in range(T):
        u = _sat(u_base + current, 16)
        s = u > arrays["vth/fc1"]
        u_base = np.where(s, 0, u >> 1)
        out = _sat((out >> 1) + s.astype(np.int64) @ arrays["w/fc"].astype(np.int64).T + arrays["b/fc"], 32)
        spikes.append(s)
        outs.append(out)
    result = run_forward(wl, record_spikes=True)
    np.testing.assert_array_equal(result.spikes["fc1"], np.stack(spikes, axis=1))
    np.testing.assert_array_equal(result.out_membrane, np.stack(outs, axis=1))
    np.testing.assert_allclose(result.logits, np.stack(outs, axis=1) * 0.05, rtol=0, atol=0)
    assert np.stack(spikes).any() and not np.stack(spikes).all()  # the example exercises both outcomes


def test_the_example_runs_through_the_commands_it_names(example, capsys):
    for argv in (["workload", "info", str(example)], ["evaluate", str(example), "-q"],
                 ["run", "atsn16x16", str(example), "-q"]):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 0, (argv, capsys.readouterr().err)
