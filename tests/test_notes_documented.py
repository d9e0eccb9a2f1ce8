"""docs/results.md's `notes` row listed four of the nine notes `satasim run` can print (and write into --json's
`notes`): a user who met the SRAM extrapolation note, the batch-refill note or the others found no word of them."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from satasim_atsn.hw import notes

ROOT = Path(__file__).resolve().parents[1]

#: each note of ``run_notes`` and words the row must hold for it
WORDS = {
    "exit_parameters_note": "thresholds differ",
    "exit_table_note": "exp table",
    "idle_accelerators_note": "too few images",
    "class_coverage_note": "fewer than half the classes",
    "unused_technology_note": "never reads",
    "dram_rounding_note": "DRAM rate",
    "batch_refill_note": "`batch_refill`",
    "absent_exit_unit_note": "without an exit unit",
    "extrapolated_memories_note": "extrapolated",
    "register_file_buffers_note": "register files",
    "adc_rate_note": "ADC area",
}


def test_the_results_doc_names_every_note_run_can_print():
    called = re.findall(r"(\w+_note)\(", inspect.getsource(notes.run_notes))
    assert sorted(set(called)) == sorted(WORDS), "a note was added or removed: name it in docs/results.md and here"
    lines = (ROOT / "docs" / "results.md").read_text().splitlines()
    row = next(line for line in lines if line.startswith("| `notes` |"))
    missing = [name for name, words in WORDS.items() if words not in row]
    assert not missing, missing
