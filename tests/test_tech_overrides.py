"""Technology-table entries overridden like architecture fields: ``tech:`` in the arch file, ``--set
tech.<entry>=value`` on the command line, ``vary: {tech.<entry>: [...]}`` in a study; bad ones give one
line naming the key and the fix, exit 2, nothing written; results record the overrides."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from satasim_atsn.cli import main
from satasim_atsn.errors import ArchError, StudyError
from satasim_atsn.hw.arch import load_arch
from satasim_atsn.hw.energy import energy_per_action_pJ, leakage_power_mW
from satasim_atsn.study.runner import CSV_NAME, run_study
from satasim_atsn.study.spec import load_study
from satasim_atsn.workload.format import write_workload
from satasim_atsn.workload.synthetic import random_workload

ROOT = Path(__file__).resolve().parents[1]
ARCH = str(ROOT / "archs" / "atsn16x16.yaml")
SMALL = ["--set", "array.rows=2", "--set", "array.cols=3", "--set", "accelerators=2"]
ENTRY = "sram64_1KB_read_energy_pJ"


@pytest.fixture(scope="module")
def workload_path(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("wl") / "w.npz"
    write_workload(path, random_workload(21, images=4, timesteps=3, num_classes=4))
    return path


def run(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    out = capsys.readouterr()
    return info.value.code, out.out, out.err


def test_override_changes_the_charged_energy_and_is_recorded():
    base = load_arch(ARCH)
    table = base.tech.value(ENTRY)
    over = load_arch(ARCH, [f"tech.{ENTRY}={table * 2}", "tech.glb_32KB_leakage_mW=0"])
    # the PE data memory (1 KB, 16-bit membranes) is charged the table's 64-bit read x 16/64
    assert energy_per_action_pJ(base)["pe_dm_reads"] == pytest.approx(table / 4)
    assert energy_per_action_pJ(over)["pe_dm_reads"] == pytest.approx(table / 2)
    assert leakage_power_mW(over)["global_buffer"] < leakage_power_mW(base)["global_buffer"]
    described = over.to_dict()["technology_table"]
    assert described["overrides"] == {"glb_32KB_leakage_mW": 0.0, ENTRY: table * 2}
    assert "overrides" not in base.to_dict()["technology_table"]  # no overrides: the bytes of old results stay
    assert base.tech.value(ENTRY) == table  # the cached table itself is never modified
    # null leaves the table's value; one field given twice is refused (the last value used to win, silently)
    assert load_arch(ARCH, [f"tech.{ENTRY}=null"]).tech.value(ENTRY) == table
    with pytest.raises(ArchError, match=rf"overrides: tech\.{ENTRY}: given twice"):
        load_arch(ARCH, [f"tech.{ENTRY}=5", f"tech.{ENTRY}=null"])


def test_null_in_the_file_is_no_override_as_with_set(tmp_path):
    # `tech: {entry: null}` in the file was refused ('must be a number, got null') while --set tech.entry=null
    # dropped the override; both now leave the table's value, and a null still names a real entry
    table = load_arch(ARCH).tech.value(ENTRY)
    path = tmp_path / "a.yaml"
    path.write_text(Path(ARCH).read_text() + f"\ntech: {{{ENTRY}: null}}\n")
    arch = load_arch(path)
    assert arch.tech.value(ENTRY) == table and "overrides" not in arch.to_dict()["technology_table"]
    path.write_text(Path(ARCH).read_text() + "\ntech: {sram64_1KB_read_energy_pj: null}\n")
    with pytest.raises(ArchError, match=r"tech\.sram64_1KB_read_energy_pj: no such entry in the technology table"):
        load_arch(path)
    with pytest.raises(ArchError, match=r"tech\.sram64_1KB_read_energy_pj: no such entry in the technology table"):
        load_arch(ARCH, ["tech.sram64_1KB_read_energy_pj=null"])  # a typo's null was silently nothing


def test_a_zero_entry_never_extrapolates_below_zero():
    # sram64 capacity points are 1, 4, 16, ... KB: 1 MB extrapolates from the two largest; zeroing the largest
    # one's leakage makes the straight line through (cap, 0) fall below zero beyond it
    caps = sorted(int(e["capacity_bytes"]) for k, e in load_arch(ARCH).tech.entries.items()
                  if k.startswith("sram64_") and k.endswith("_read_energy_pJ"))
    stem = next(k[: -len("_read_energy_pJ")] for k, e in load_arch(ARCH).tech.entries.items()
                if k.startswith("sram64_") and k.endswith("_read_energy_pJ") and int(e["capacity_bytes"]) == caps[-1])
    arch = load_arch(ARCH, [f"tech.{stem}_leakage_mW=0", f"tech.{stem}_read_energy_pJ=0"])
    far = arch.tech.sram("sram64", caps[-1] * 64)
    assert far.leakage_mW == 0.0 and far.read_pJ == 0.0
    assert arch.tech.sram("sram64", caps[-1] // 2).read_pJ > 0.0  # between the points: on the line, positive
    assert min(energy_per_action_pJ(arch).values()) >= 0.0


def test_tech_section_in_an_arch_file(tmp_path):
    text = Path(ARCH).read_text()
    path = tmp_path / "mine.yaml"
    path.write_text(text.replace("technology: 28nm", "technology: 28nm\ntech:\n  add_16b_energy_pJ: 0.05"))
    arch = load_arch(path)
    assert arch.tech.value("add_16b_energy_pJ") == 0.05
    assert energy_per_action_pJ(arch)["pe_accumulations"] == 0.05
    path.write_text(text.replace("technology: 28nm", "technology: 28nm\ntech: 3"))
    with pytest.raises(ArchError, match=r"mine.yaml: tech: must be a mapping of table entries"):
        load_arch(path)
    path.write_text(text.replace("technology: 28nm", "technology: 28nm\ntehc: {}"))
    with pytest.raises(ArchError, match=r"tehc: unknown key; did you mean 'tech'"):
        load_arch(path)


@pytest.mark.parametrize(
    ("override", "pattern"),
    [
        ("tech.sram64_1KB_read_energy_pj=0.9", r"tech.sram64_1KB_read_energy_pj: no such entry in the technology "
         r"table '28nm'; did you mean 'sram64_1KB_read_energy_pJ'\?"),
        ("tech.qqqqqqqqqqqq=1", r"tech.qqqqqqqqqqqq: no such entry.*use one of the keys under 'entries:'"),
        ("tech.add_8b_energy_pJ=-0.1", r"tech.add_8b_energy_pJ: must be >= 0, got -0.1; energies, areas"),
        ("tech.add_8b_energy_pJ=cheap", r"tech.add_8b_energy_pJ: must be a number, got 'cheap'.*\(energy_pJ\)"),
        ("tech.add_8b_energy_pJ=.nan", r"must be a number"),
        ("tech.add_8b_energy_pJ=[1]", r"value must be a scalar"),
        ("tech.add_8b.energy_pJ=1", r"overrides: tech.add_8b.energy_pJ: a technology override names one table entry"),
        ("tech=1", r"overrides: tech: a technology override names one table entry"),
        ("tehc.add_8b_energy_pJ=1", r"overrides: tehc: no such field; did you mean 'tech'\?"),
    ],
)
def test_bad_overrides(override, pattern):
    with pytest.raises(ArchError, match=pattern):
        load_arch(ARCH, [override])


@pytest.mark.parametrize("override", ["tech.sram64_1KB_read_energy_pj=0.9", "tech.add_8b_energy_pJ=-1",
                                      "tech.add_8b_energy_pJ=cheap", "tech.x.y=1"])
def test_cli_bad_override_one_line_exit_2_nothing_written(workload_path, tmp_path, capsys, override):
    out_json, out_csv = tmp_path / "r.json", tmp_path / "csv"
    code, out, err = run(["run", ARCH, str(workload_path), *SMALL, "--set", override, "--json", str(out_json),
                          "--csv", str(out_csv)], capsys)
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("satasim: error:") and "tech." in lines[0], err
    assert not out_json.exists() and not out_csv.exists()


def test_cli_run_records_overrides_without_paths(workload_path, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    jsons = []
    for extra in ([], ["--set", "tech.dram_lpddr4_energy_pJ_per_bit=50.0"]):
        out = tmp_path / f"r{len(jsons)}.json"
        code, _, err = run(["run", ARCH, str(workload_path), *SMALL, *extra, "--quiet", "--json", str(out)], capsys)
        assert code == 0, err
        jsons.append(out.read_text())
    plain, over = (json.loads(t) for t in jsons)
    table = over["arch"]["technology_table"]
    assert table["overrides"] == {"dram_lpddr4_energy_pJ_per_bit": 50.0} and table["table"] == "28nm"
    assert over["energy"]["dynamic_pJ"]["dram"]["dram_read_bytes"] > plain["energy"]["dynamic_pJ"]["dram"][
        "dram_read_bytes"]
    assert over["counters"] == plain["counters"]  # energy only: the timing does not see the table
    assert str(tmp_path) not in jsons[1] and str(ROOT) not in jsons[1]


def _engine_study(tmp_path: Path, workload_path: Path, vary: str) -> Path:
    path = tmp_path / "tech.yaml"
    path.write_text(f"name: tech\narch: {ARCH}\nworkload: {workload_path}\nimages: 4\n"
                    "set: [array.rows=2, array.cols=3, accelerators=1]\n"
                    f"vary:\n{vary}metrics: [energy_per_image_uJ, energy_pe_memory_uJ, fps]\n")
    return path


def test_study_varies_a_tech_entry(tmp_path, workload_path):
    study = load_study(_engine_study(tmp_path, workload_path, f"  tech.{ENTRY}: [0.65, 1.3]\n"))
    rows, stats = run_study(study, tmp_path / "out", jobs=1, quiet=True)
    assert stats["computed"] == 2 and stats["errors"] == 0
    by_value = {row[f"tech.{ENTRY}"]: row for row in rows}
    assert by_value[1.3]["energy_pe_memory_uJ"] > by_value[0.65]["energy_pe_memory_uJ"]
    assert by_value[1.3]["fps"] == by_value[0.65]["fps"]
    assert f"tech.{ENTRY}" in (tmp_path / "out" / CSV_NAME).read_text().splitlines()[0]


@pytest.mark.parametrize(
    ("vary", "pattern"),
    [
        ("  tech.sram64_1KB_read_energy_pj: [1]\n",
         r"vary.tech.sram64_1KB_read_energy_pj: no such entry in the design's technology table; did you mean "
         r"'tech.sram64_1KB_read_"),
        ("  tech.nope_pJ: [1]\n",  # nothing close: the table's entries, not the architecture's fields, are meant
         r"vary.tech.nope_pJ: no such entry in the design's technology table; use an entry under 'entries:'"),
        (f"  tech.{ENTRY}: [1, -1]\n", r"vary.tech.sram64_1KB_read_energy_pJ: value -1 is refused .*must be >= 0"),
        (f"  tech.{ENTRY}: [cheap]\n", r"value 'cheap' is refused .*must be a number"),
    ],
)
def test_study_bad_tech_values(tmp_path, workload_path, vary, pattern):
    with pytest.raises(StudyError, match=pattern):
        load_study(_engine_study(tmp_path, workload_path, vary))


def test_an_override_that_makes_a_larger_sram_smaller_is_refused_by_its_name(tmp_path):
    """Setting the 6 KB area above the 8 KB one made a bigger weight memory shrink the chip (38.0 -> 34.8 mm2)."""
    with pytest.raises(ArchError, match=r"tech.sram64_6KB_area_um2: 20000 um2 for 6,144 B is more than "
                                        r"sram64_8KB_area_um2's 11091.3 um2 for 8,192 B"):
        load_arch("atsn16x16", ["tech.sram64_6KB_area_um2=20000"])
    load_arch("atsn16x16", ["tech.sram64_6KB_area_um2=9000"])  # still between its neighbours: accepted
