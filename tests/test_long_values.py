"""A value of hundreds (or thousands) of digits, typed on the command line or written in a YAML file: the one-line
error shortens it to its first 20 digits and its length (it echoed all 400 digits), and an integer beyond Python's
4300-digit limit of conversion from text is refused in one line (it was a ValueError traceback)."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import one_line_error

from satasim_atsn.errors import SatasimError, shorten_digits, shown

ROOT = Path(__file__).resolve().parents[1]
WORKLOAD = str(ROOT / "workloads" / "vgg_small_fmnist_atsn.npz")
HUGE, HUGER = "9" * 400, "9" * 5000
SHORT, SHORTER = "99999999999999999999... (400 digits)", "99999999999999999999... (5000 digits)"


def test_shorten_digits_keeps_numbers_a_field_takes():
    assert shorten_digits(f"got {HUGE}, max {2**63 - 1}") == f"got {SHORT}, max {2**63 - 1}"
    assert shorten_digits("9" * 40) == "9" * 40 and shown(int(HUGE)) == SHORT
    assert shown(f"x={HUGE}.0") == f"'x={SHORT}.0'"  # a text of digits (a study's set entry): shortened, not cut
    assert str(SatasimError.at("f.yaml", "x", f"got {HUGE}")) == f"f.yaml: x: got {SHORT}"


@pytest.mark.parametrize(("args", "needle"), [
    (["--images", HUGE], f"--images: {SHORT} images"),
    (["--images", HUGER], f"'{SHORTER}' is not a valid integer"),
    (["--images", "2", "--start", HUGE], f"--start: {SHORT} is outside"),
    (["--images", "2", "--set", f"pe.data_memory_bytes={HUGE}"], f"got {SHORT}"),
    (["--images", "2", "--set", f"pe.data_memory_bytes={HUGER}"],
     f"--set pe.data_memory_bytes: line 1: the integer {SHORTER} is longer than any value a field takes"),
    (["--images", "2", "--images", HUGE], f"--images: given 2 times (2, {SHORT})"),
])
def test_a_huge_option_value_is_shortened(capsys, args, needle):
    line = one_line_error(["run", "atsn16x16", WORKLOAD, *args], capsys)
    assert needle in line and "9" * 41 not in line, line


@pytest.mark.parametrize("digits", [HUGE, HUGER])
def test_a_huge_integer_in_an_architecture_file_is_one_short_line(tmp_path, capsys, digits):
    arch = tmp_path / "big.yaml"
    arch.write_text((ROOT / "archs" / "atsn16x16.yaml").read_text().replace("clock_hz: 500e6", f"clock_hz: {digits}"))
    line = one_line_error(["run", str(arch), WORKLOAD, "--images", "2"], capsys)
    where = f"{arch}: clock_hz: must be <= 1e+10, got " if digits == HUGE else f"{arch}: line 9: the integer "
    assert line.startswith(f"satasim: error: {where}"), line
    assert "9" * 41 not in line and f"({len(digits)} digits)" in line, line


# a float option typed beyond a float's range read as inf, and the message said "inf is not a firing rate"
@pytest.mark.parametrize(("argv", "needle"), [
    (["workload", "build", "--network", "vgg16", "--rate", HUGE, "--timesteps", "4", "-o", "{tmp}/x.npz"],
     f"--rate: {SHORT} is not a firing rate in [0, 1]"),
    (["workload", "build", "--network", "vgg16", "--rate", "-1e999", "--timesteps", "4", "-o", "{tmp}/x.npz"],
     "--rate: -1e999 is not a firing rate in [0, 1]"),
    (["evaluate", WORKLOAD, "--tau-cl", HUGE], f"--tau-cl: must be in (0, 1], got {SHORT}"),
    (["workload", "stats", WORKLOAD, "-o", "{tmp}/t.npz", "--theta", f"-{HUGE}"],
     f"--theta: must be in (0, 1], got -{SHORT}"),
    (["train", "-o", "{tmp}/t.npz", "--lr", HUGE], f"--lr: must be a positive finite number, got {SHORT}"),
    (["workload", "export", WORKLOAD, "--nir", "{tmp}/n.nir", "--dt", HUGE], f"--dt: {SHORT} must be"),
    (["verify", "atsn16x16", WORKLOAD, "--max-minutes", f"-{HUGE}"], f"'--max-minutes': -{SHORT} is not in the range"),
])
def test_a_float_option_beyond_range_is_echoed_as_typed(tmp_path, capsys, argv, needle):
    line = one_line_error([a.format(tmp=tmp_path) for a in argv], capsys)
    assert needle in line and "inf" not in line, line
    assert list(tmp_path.iterdir()) == []
