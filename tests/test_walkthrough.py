"""docs/walkthrough.md runs end to end: every ```sh block, in order, in a temporary directory.

The blocks run as written with three changes: install lines (``pip install``) are skipped (the
suite runs inside the installed package), ``--images N`` becomes ``--images 6`` (speed), and
``satasim`` is this interpreter's ``python -m satasim_atsn`` (the worktree under test). The
temporary directory holds a copy of ``examples/``, as the clone's root does.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "walkthrough.md"
IMAGES = 6


def sh_blocks(text: str) -> list[str]:
    """The bodies of the ```sh fenced blocks, in order."""
    return re.findall(r"^```sh\n(.*?)^```", text, flags=re.S | re.M)


def prepared(block: str) -> str:
    lines = [line for line in block.splitlines() if not line.startswith("pip install")]
    return re.sub(r"--images \d+", f"--images {IMAGES}", "\n".join(lines))


def test_the_walkthrough_has_the_promised_steps():
    blocks = [prepared(b) for b in sh_blocks(DOC.read_text())]
    text = "\n".join(blocks)
    for step in ("satasim workload build --network examples/my_net.yaml", "satasim run examples/my_array12x12.yaml",
                 "--set tech.", "satasim compare", "neurobench"):
        assert step in text, step
    assert (ROOT / "examples" / "my_net.yaml").is_file() and (ROOT / "examples" / "my_array12x12.yaml").is_file()


@pytest.mark.slow
def test_walkthrough_runs_end_to_end(tmp_path):
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for name, line in (("satasim", f'exec "{sys.executable}" -m satasim_atsn "$@"'),
                       ("python", f'exec "{sys.executable}" "$@"')):
        shim = bindir / name
        shim.write_text(f"#!/bin/sh\n{line}\n")
        shim.chmod(0o755)
    env = dict(os.environ, PATH=f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}",
               PYTHONPATH=f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", MPLBACKEND="Agg")
    outputs = []
    for index, block in enumerate(sh_blocks(DOC.read_text())):
        script = prepared(block)
        if not script.strip():
            continue
        done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=900)
        assert done.returncode == 0, f"block {index} failed:\n{script}\n--- stderr ---\n{done.stderr[-3000:]}"
        outputs.append(done.stdout)
    run = json.loads((tmp_path / "run.json").read_text())
    low = json.loads((tmp_path / "run_lowleak.json").read_text())
    assert run["per_image"]["images"] == IMAGES and run["neurobench"]["samples"] == IMAGES
    assert low["arch"]["technology_table"]["overrides"] == {"glb_144KB_leakage_mW": 12.455}
    gb = [r["per_image"]["energy_by_component_uJ"]["global_buffer"] for r in (run, low)]
    assert gb[1] < gb[0]
    assert (tmp_path / "run_csv" / "neurobench.csv").read_text().startswith("group,name,kind,Effective_MACs")
    compared = json.loads((tmp_path / "cmp" / "results.json").read_text())
    assert [a["name"] for a in compared["architectures"]] == ["my_array12x12", "atsn16x16"]
    assert all("SynapticOperations" in a["neurobench"] for a in compared["architectures"])
    assert (tmp_path / "cmp" / "report.md").read_text().count("my_array12x12") > 2
    assert any("Effective_ACs" in out for out in outputs)


def test_the_numbers_the_walkthrough_shows_are_what_the_tool_prints(tmp_path):
    """The walkthrough's 200-image numbers went stale when the hardware model changed (they were model 3's), and
    its end-to-end test runs 6 images, so nothing noticed: they are now computed and compared here."""
    from satasim_atsn.cli import main

    text = DOC.read_text()
    net, arch = ROOT / "examples" / "my_net.yaml", ROOT / "examples" / "my_array12x12.yaml"
    workload = tmp_path / "my_net.npz"
    runs = {"run.json": [], "run_lowleak.json": ["--set", "tech.glb_144KB_leakage_mW=12.455"]}
    for argv in (["workload", "build", "--network", net, "--rate", "0.15", "--timesteps", "4", "--exit-mean",
                  "atsn=2.5", "-o", workload],
                 *(["run", arch, workload, "--images", "200", "--quiet", "--json", tmp_path / name, *extra]
                   for name, extra in runs.items())):
        with pytest.raises(SystemExit) as exc:
            main([str(a) for a in argv])
        assert exc.value.code == 0
    results = {name: json.loads((tmp_path / name).read_text())["per_image"] for name in runs}

    def shown(pattern: str) -> list[float]:
        """The numbers of the walkthrough's one line that matches ``pattern`` (numbers, not bytes: the JSON is
        rounded to a fixed grid, and a stale line differs by far more than a last digit)."""
        line = re.search(pattern, text, flags=re.M)
        assert line, pattern
        return [float(x) for x in re.findall(r"-?\d+\.?\d*(?:e[-+]?\d+)?", line.group(0))]

    p = results["run.json"]
    groups = p["energy_by_group_uJ"]
    assert shown(r"^energy per image \(uJ\): .*$") == pytest.approx(
        [p["energy_uJ"], groups["compute"], groups["dram"], groups["noc"], groups["on_chip_memory"]], rel=1e-9)
    assert shown(r"^latency per image \(us\): .*$") == pytest.approx([p["latency_us"], p["sops"]], rel=1e-9)
    for name, q in results.items():
        numbers = shown(rf"^{re.escape(name)} energy per image \(uJ\): .*$")
        assert numbers[:2] == pytest.approx([q["energy_uJ"], q["energy_by_component_uJ"]["global_buffer"]], rel=1e-9)
