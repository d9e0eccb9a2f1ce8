"""A technology table that lacks an entry the design reads is refused before any image or point runs (it was met
by the first energy: `run` refused it after simulating, a sweep filled every point with an error row), and a
skipped point's reason names the files as the study does, wherever they lie."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
import yaml
from cli_helpers import one_line_error

from satasim_atsn.errors import ArchError, StudyError
from satasim_atsn.hw.arch import load_arch
from satasim_atsn.hw.run_checks import check_mappable
from satasim_atsn.hw.tech import TECH_DIR
from satasim_atsn.study.spec import load_study
from satasim_atsn.workload.format import read_workload

ROOT = Path(__file__).resolve().parents[1]
DT_WORKLOAD = ROOT / "workloads" / "vgg_small_fmnist_dtsnn.npz"
AT_WORKLOAD = ROOT / "workloads" / "vgg_small_fmnist_atsn.npz"


def _design_without(tmp_path: Path, arch: str | Path, dropped: str) -> Path:
    """``arch`` (a shipped design's name, or a design file) on a copy of the 28 nm table without the entries whose
    names start with ``dropped``."""
    table = yaml.safe_load((TECH_DIR / "28nm.yaml").read_text())
    table["entries"] = {k: v for k, v in table["entries"].items() if not k.startswith(dropped)}
    (tmp_path / "short.yaml").write_text(yaml.safe_dump(table, sort_keys=False))
    source = Path(arch) if isinstance(arch, Path) else ROOT / "archs" / f"{arch}.yaml"
    design = yaml.safe_load(source.read_text())
    design["technology"] = "short.yaml"
    path = tmp_path / f"{source.stem}_short.yaml"
    path.write_text(yaml.safe_dump(design, sort_keys=False))
    return path


def test_the_check_before_any_image_reads_the_designs_entries(tmp_path):
    """An exit unit's actions include the divider's (div_32b_*); the PEs read none of its figures, so a design
    without an exit unit (examples/my_array12x12.yaml) is accepted on the same table."""
    dt = load_arch(_design_without(tmp_path, "dtsnn16x16", "div_32b"))
    with pytest.raises(ArchError, match=r"short\.yaml: entries\.div_32b_\w+: no such entry in the technology table"):
        check_mappable(dt, read_workload(DT_WORKLOAD))
    no_exit_unit = load_arch(_design_without(tmp_path, ROOT / "examples" / "my_array12x12.yaml", "div_32b"))
    check_mappable(no_exit_unit, read_workload(ROOT / "workloads" / "vgg_small_fmnist_snn.npz"))


@pytest.mark.parametrize(("arch", "workload"), [("atsn16x16", AT_WORKLOAD),
                                                ("conventional16x16", ROOT / "workloads" / "vgg_small_fmnist_snn.npz")])
def test_a_unit_that_never_divides_needs_no_divider_in_the_table(tmp_path, capsys, arch, workload):
    """Only the DT unit divides; the AT and none units were refused a table without div_32b (its energy was priced
    for every exit unit), and --set tech.div_32b_energy_pJ on them went without the changes-nothing note."""
    from satasim_atsn.cli import main

    check_mappable(load_arch(_design_without(tmp_path, arch, "div_32b")), read_workload(workload))
    with pytest.raises(SystemExit) as done:
        main(["run", arch, str(workload), "--images", "2", "--set", "tech.div_32b_energy_pJ=3"])
    assert done.value.code in (0, None)
    assert "note: --set tech.div_32b_energy_pJ changes nothing in this design" in capsys.readouterr().err


def test_run_refuses_it_in_one_line(tmp_path, capsys):
    line = one_line_error(["run", str(_design_without(tmp_path, "dtsnn16x16", "div_32b")), str(DT_WORKLOAD),
                           "--images", "1", "-q"], capsys)
    assert "entries.div_32b_" in line and "no such entry in the technology table" in line, line


def _study(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(f"name: t\nmode: engine\nworkload: {DT_WORKLOAD}\nimages: 2\n{body}metrics: [fps]\n")
    return path


def test_a_study_of_such_a_design_is_refused_before_its_first_point(tmp_path, capsys):
    design = _design_without(tmp_path, "dtsnn16x16", "div_32b")
    with pytest.raises(StudyError, match=r"s\.yaml: arch: .*entries\.div_32b_\w+: no such entry"):
        load_study(_study(tmp_path, f"arch: {design}\nvary:\n  clock_hz: [5e8, 4e8]\n"))
    with pytest.raises(StudyError, match=r"s\.yaml: arch: .*entries\.div_32b_\w+: no such entry"):  # with a set:
        load_study(_study(tmp_path, f"arch: {design}\nset: [accelerators=2]\nvary:\n  clock_hz: [5e8]\n"))  # not its
    with pytest.raises(StudyError, match=r"s\.yaml: vary\.arch: .*entries\.div_32b_\w+: no such entry"):
        load_study(_study(tmp_path, f"vary:\n  arch: [dtsnn16x16, {design}]\n  clock_hz: [5e8]\n"))
    line = one_line_error(["sweep", str(_study(tmp_path, f"arch: {design}\nvary:\n  clock_hz: [5e8, 4e8]\n")),
                           "-o", str(tmp_path / "out"), "-q"], capsys)
    assert "no such entry in the technology table" in line and not (tmp_path / "out").exists(), line


def test_a_set_entry_that_makes_the_design_read_a_missing_entry_is_named(tmp_path):
    """The design alone needs no ADC entry; analog PEs (from the study's set) read them."""
    design = _design_without(tmp_path, "atsn16x16", "adc_")
    body = (f"arch: {design}\nset: [pe.accumulation=analog, pe.adc_bits=8, pe.adc_cycles_per_conversion=1]\n"
            "vary:\n  clock_hz: [5e8]\n")
    (tmp_path / "s.yaml").write_text(body.replace("arch:", f"name: t\nmode: engine\nworkload: {AT_WORKLOAD}\n"
                                                  "images: 2\narch:", 1) + "metrics: [fps]\n")
    with pytest.raises(StudyError, match=r"s\.yaml: set\.pe\.accumulation: value 'analog' is refused .*adc"):
        load_study(tmp_path / "s.yaml")


def test_a_skip_reason_names_the_workload_as_the_study_does(tmp_path):
    """Moving the study's folder changes no byte of its CSV (a skipped point's reason held the workload's
    absolute path)."""
    from satasim_atsn.cli import main

    rows = []
    for folder in ("here", "there"):
        base = tmp_path / folder
        (base / "wl").mkdir(parents=True)
        shutil.copy(AT_WORKLOAD, base / "wl" / "w.npz")
        (base / "s.yaml").write_text(f"name: t\nmode: engine\narch: {ROOT / 'archs' / 'atsn16x16.yaml'}\n"
                                     "workload: wl/w.npz\nimages: 2\nvary:\n  pe.vmem_bits: [16, 4]\nmetrics: [fps]\n")
        with pytest.raises(SystemExit):
            main(["sweep", str(base / "s.yaml"), "-o", str(base / "out"), "-j", "1", "-q"])
        rows.append((base / "out" / "points.csv").read_bytes())
    assert rows[0] == rows[1]
    skipped = [r for r in csv.DictReader((tmp_path / "here" / "out" / "points.csv").open()) if r["status"] != "ok"]
    assert len(skipped) == 1 and "membranes of wl/w.npz" in skipped[0]["error"], skipped


def test_a_skip_reason_from_the_designs_own_table_names_it_as_the_design_does(tmp_path):
    """A table entry read while the design is built (a DRAM part's background power) left the table's absolute path
    in the reason, so the CSV changed with the study's folder."""
    from satasim_atsn.cli import main

    table = yaml.safe_load((TECH_DIR / "28nm.yaml").read_text())
    del table["entries"]["dram_ddr4_background_power_mW"]
    rows = []
    for folder in ("here", "there"):
        base = tmp_path / folder
        base.mkdir()
        (base / "mytech.yaml").write_text(yaml.safe_dump(table, sort_keys=False))
        (base / "b.yaml").write_text((ROOT / "archs" / "atsn16x16.yaml").read_text().replace(
            "technology: 28nm", "technology: mytech.yaml", 1))
        (base / "s.yaml").write_text(f"name: t\nmode: engine\nworkload: {AT_WORKLOAD}\nimages: 1\nvary:\n"
                                     "  arch: [atsn16x16, b.yaml]\n"
                                     "  dram.energy_table_entry: [dram_lpddr4, dram_ddr4]\nmetrics: [fps]\n")
        with pytest.raises(SystemExit):
            main(["sweep", str(base / "s.yaml"), "-o", str(base / "out"), "-j", "1", "-q"])
        rows.append((base / "out" / "points.csv").read_bytes())
    assert rows[0] == rows[1]
    skipped = [r for r in csv.DictReader((tmp_path / "here" / "out" / "points.csv").open()) if r["status"] != "ok"]
    assert len(skipped) == 1
    assert skipped[0]["error"].startswith("mytech.yaml: entries.dram_ddr4_background_power_mW: a DRAM part")
