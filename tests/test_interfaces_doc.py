"""docs/interfaces.md's first example prints what its comments say (a model change that moves the numbers must
update the page)."""

from __future__ import annotations

import contextlib
import io
import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_library_example_prints_what_the_page_says():
    text = (ROOT / "docs" / "interfaces.md").read_text(encoding="utf-8")
    code = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    promised = re.findall(r"# (\d+)\s*$", code, re.M)
    assert len(promised) == 2
    lead = re.search(r"it prints (\d+) and (\d+)", text)
    assert lead is not None and list(lead.groups()) == promised
    out = io.StringIO()
    here = os.getcwd()
    try:
        os.chdir(ROOT)
        with contextlib.redirect_stdout(out):
            exec(compile(code, "docs/interfaces.md", "exec"), {})
    finally:
        os.chdir(here)
    assert out.getvalue().split() == promised
