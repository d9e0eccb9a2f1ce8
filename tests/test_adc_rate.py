"""An analog PE's ADC area follows the conversion rate it is built for (clock_hz / pe.adc_cycles_per_conversion):
the table's area points are taken at their ``rate_hz`` and scale by ``(rate / rate_hz) ** adc_area_rate_exponent``
(the Accelergy regression's ln f coefficient); tables that give no rate keep their areas at any rate, with a note."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from satasim_atsn.cli import main
from satasim_atsn.errors import ArchError
from satasim_atsn.hw.arch import load_arch
from satasim_atsn.hw.energy import (
    adc_conversion_rate_hz,
    adc_rate_note,
    compute_area,
    energy_per_action_pJ,
    tile_pitch_mm,
)
from satasim_atsn.hw.notes import run_notes
from satasim_atsn.hw.tech import TECH_DIR, load_tech
from satasim_atsn.workload.format import write_workload
from satasim_atsn.workload.synthetic import random_workload

ROOT = Path(__file__).resolve().parents[1]
DTSNN = str(ROOT / "archs" / "dtsnn16x16.yaml")
ATSN = str(ROOT / "archs" / "atsn16x16.yaml")


def _adc_area(overrides: list[str]) -> float:
    return compute_area(load_arch(DTSNN, overrides))["adc"]


def test_the_shipped_rate_keeps_the_table_point_exactly():
    arch = load_arch(DTSNN)
    assert adc_conversion_rate_hz(arch) == 500e6 == arch.tech.adc_area_rate_hz()
    assert _adc_area([]) == arch.num_pes * arch.tech.value("adc_8b_area_um2")
    # the same rate from another clock: one conversion every 2 cycles of 1 GHz
    assert _adc_area(["clock_hz=1e9", "pe.adc_cycles_per_conversion=2"]) == _adc_area([])


@pytest.mark.parametrize("overrides,rate_hz", [
    (["clock_hz=1e9"], 1e9),
    (["pe.adc_cycles_per_conversion=4"], 125e6),
    (["clock_hz=2e9", "pe.adc_cycles_per_conversion=1"], 2e9),
])
def test_the_area_scales_with_the_rate_by_the_regression_exponent(overrides, rate_hz):
    arch = load_arch(DTSNN, overrides)
    assert adc_conversion_rate_hz(arch) == rate_hz
    exponent = arch.tech.value("adc_area_rate_exponent")
    assert exponent == 0.0667
    expected = _adc_area([]) * (rate_hz / 500e6) ** exponent
    assert _adc_area(overrides) == pytest.approx(expected, rel=1e-12)
    assert (_adc_area(overrides) > _adc_area([])) == (rate_hz > 500e6)
    # interpolated resolutions scale alike
    assert arch.tech.adc_area_um2(7, rate_hz) == pytest.approx(arch.tech.adc_area_um2(7) * (rate_hz / 500e6)
                                                                ** exponent, rel=1e-12)


def test_an_exponent_of_zero_removes_the_rate_dependence():
    assert _adc_area(["clock_hz=1e9", "tech.adc_area_rate_exponent=0"]) == _adc_area([])


@pytest.mark.parametrize("zero,bits,between", [
    ("adc_8b_area_um2", 9, (8, 10)),    # from a zero point up
    ("adc_8b_area_um2", 7, (6, 8)),     # towards a zero point
    ("adc_4b_area_um2", 2, (4, 6)),     # extrapolated below a zero point: floored at 0
    ("adc_12b_area_um2", 14, (10, 12)),  # extrapolated beyond a zero point: floored at 0
])
def test_a_zero_area_point_interpolates_linearly_in_bits_floored_at_zero(zero, bits, between):
    """docs/energy.md: a table value of 0 is allowed, and interpolating towards it is linear, floored at 0. A
    resolution between or beyond a zero ADC area point took the logarithm of 0 (decimal.DivisionByZero: a traceback
    from `satasim run --set tech.adc_8b_area_um2=0 --set pe.adc_bits=9`)."""
    arch = load_arch(DTSNN, [f"tech.{zero}=0", f"pe.adc_bits={bits}"])
    lo, hi = between
    y0, y1 = (arch.tech.value(f"adc_{b}b_area_um2") for b in between)
    expected = max(0.0, y0 + (y1 - y0) * (bits - lo) / (hi - lo))
    assert arch.tech.adc_area_um2(bits) == pytest.approx(expected, rel=1e-12, abs=0.0)
    assert compute_area(arch)["adc"] == pytest.approx(arch.num_pes * expected, rel=1e-12, abs=0.0)
    assert (expected > 0) == (bits in (7, 9))


@pytest.mark.parametrize(("arch", "overrides"), [
    *((arch, [f"clock_hz={clock}"]) for arch in (DTSNN, ATSN, str(ROOT / "archs" / "conventional16x16.yaml"))
      for clock in ("1e3", "2.5e8", "1e9")),
    (DTSNN, ["pe.adc_cycles_per_conversion=4"]),  # only an analog design has the field
])
def test_energy_per_action_never_depends_on_the_clock(arch, overrides):
    """The ADC's area follows its conversion rate, and the tile pitch (a NoC hop's link length) came from the area:
    on an analog design the clock moved the energy of a byte-hop (0.06% per doubling). The pitch counts the ADC at
    its table point's area, so every energy per action is the same at any clock; the area report keeps the rate's."""
    base, moved = load_arch(arch), load_arch(arch, overrides)
    assert energy_per_action_pJ(moved) == energy_per_action_pJ(base)
    assert tile_pitch_mm(moved) == tile_pitch_mm(base)
    if arch == DTSNN:
        assert compute_area(moved)["adc"] != compute_area(base)["adc"]  # the ADC itself still follows its rate


def test_digital_designs_have_no_adc_area_whatever_the_clock():
    assert compute_area(load_arch(ATSN, ["clock_hz=1e9"]))["adc"] == 0.0


def _table(tmp_path: Path, mutate) -> Path:
    data = yaml.safe_load((TECH_DIR / "28nm.yaml").read_text())
    mutate(data["entries"])
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _drop_rates(entries: dict) -> None:
    entries.pop("adc_area_rate_exponent")
    for key, entry in entries.items():
        entry.pop("rate_hz", None) if key.startswith("adc_") else None


@pytest.mark.parametrize("mutate,pattern", [
    (lambda e: e["adc_8b_area_um2"].update(rate_hz=1e9),
     r"entries.adc_8b_area_um2.rate_hz: the ADC area points give 2 rates \(5e\+08, 1e\+09 Hz\); take every point"),
    (lambda e: e["adc_6b_area_um2"].pop("rate_hz"),
     r"entries.adc_6b_area_um2.rate_hz: missing: adc_\d+b_area_um2 gives its conversion rate; give rate_hz: 5000+ "),
    (lambda e: e.pop("adc_area_rate_exponent"),
     r"entries.adc_area_rate_exponent: missing: .* not how area grows with it; add adc_area_rate_exponent"),
    (lambda e: [e[k].pop("rate_hz") for k in list(e) if k.endswith("b_area_um2") and k.startswith("adc_")],
     r"entries.adc_area_rate_exponent: the ADC area points give no conversion rate \(rate_hz\)"),
    (lambda e: e["add_8b_area_um2"].update(rate_hz=5e8),
     r"entries.add_8b_area_um2.rate_hz: only ADC area points \(adc_<bits>b_area_um2\) take a conversion rate"),
    (lambda e: e["adc_4b_area_um2"].update(rate_hz="fast"),
     r"entries.adc_4b_area_um2.rate_hz: must be a conversion rate in Hz between 1 and 1e12, got 'fast'"),
    (lambda e: e["adc_4b_area_um2"].update(rate_hz=0),
     r"entries.adc_4b_area_um2.rate_hz: must be a conversion rate in Hz"),
    (lambda e: e["adc_area_rate_exponent"].update(value=50),
     r"entries.adc_area_rate_exponent.value: 50 exponent is outside 0..10"),
])
def test_half_given_rates_are_refused(tmp_path, mutate, pattern):
    with pytest.raises(ArchError, match=pattern):
        load_tech(_table(tmp_path, mutate))


def test_a_rate_written_as_yaml_text_is_read(tmp_path):
    path = _table(tmp_path, lambda e: None)
    path.write_text(path.read_text().replace("rate_hz: 500000000", "rate_hz: 500e6"))
    assert "500e6" in path.read_text()
    assert load_tech(path).adc_area_rate_hz() == 500e6


def test_a_table_without_rates_keeps_its_areas_and_says_so(tmp_path):
    table = _table(tmp_path, _drop_rates)
    fast = load_arch(DTSNN, [f"technology={table}", "clock_hz=1e9"])
    assert fast.tech.adc_area_rate_hz() is None
    assert compute_area(fast)["adc"] == _adc_area([])
    note = adc_rate_note(fast)
    assert note is not None and "gives its ADC areas at no conversion rate" in note and "1000 MS/s" in note
    assert note in run_notes(fast, DTSNN, [], random_workload(3, images=2, timesteps=2, num_classes=3), 2)
    assert adc_rate_note(load_arch(DTSNN)) is None  # the shipped table gives its rate
    assert adc_rate_note(load_arch(ATSN, [f"technology={table}"])) is None  # no ADC: nothing to say


def test_cli_refuses_a_half_given_rate_in_one_line(tmp_path, capsys):
    table = _table(tmp_path, lambda e: e["adc_6b_area_um2"].pop("rate_hz"))
    workload = tmp_path / "w.npz"
    write_workload(workload, random_workload(5, images=2, timesteps=2, num_classes=3))
    with pytest.raises(SystemExit) as info:
        main(["run", DTSNN, str(workload), "--set", f"technology={table}", "-q"])
    err = capsys.readouterr().err.strip()
    assert info.value.code == 2 and "\n" not in err
    assert "mine.yaml: entries.adc_6b_area_um2.rate_hz: missing" in err
