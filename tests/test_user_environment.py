"""The environment a user runs satasim in: an ASCII-only locale, a full disk under a new output directory, and
reports staged before they move into place. Each case was found by running the CLI as an outside user would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_a_utf8_architecture_reads_under_an_ascii_locale(tmp_path):
    """Under ``LC_ALL=C`` with Python's UTF-8 mode off the locale's encoding is ASCII: an architecture file with
    a non-ASCII name or comment (the YAML is UTF-8) was refused with "give a UTF-8 YAML file"."""
    arch = tmp_path / "arch.yaml"
    text = (ROOT / "archs" / "atsn16x16.yaml").read_text(encoding="utf-8")
    arch.write_text("# µ-architecture, 16×16 PEs ≤ 1 W\n" + text.replace("name: atsn16x16", "name: atsn×µ", 1),
                    encoding="utf-8")
    env = {**os.environ, "LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0", "PYTHONIOENCODING": "utf-8"}
    code = "import sys; from satasim_atsn.hw.arch import load_arch; print(load_arch(sys.argv[1]).name)"
    done = subprocess.run([sys.executable, "-c", code, str(arch)], env=env, capture_output=True, text=True,
                          encoding="utf-8", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "atsn×µ"
