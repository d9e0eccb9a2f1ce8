"""Results name files by file name, never by the path as typed: the same inputs give the same bytes from any
directory (DESIGN section 10). Each case runs a command twice, from two directories with two spellings."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from satasim_atsn.cli import main

ROOT = Path(__file__).resolve().parent.parent
WORKLOAD = ROOT / "workloads" / "vgg_small_fmnist_atsn.npz"


def _cli(args: list[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main(args)
    assert stop.value.code == 0


@pytest.fixture
def user_table(tmp_path):
    """A user's technology table (the shipped 28 nm one under another name) in tmp/tech/, a copy of the ATSN
    design in tmp/archs/, a link tmp/link -> tmp/tech, and two places to run from: tmp/a and tmp/b/deeper."""
    (tmp_path / "tech").mkdir()
    text = (ROOT / "satasim_atsn" / "data" / "tech" / "28nm.yaml").read_text()
    (tmp_path / "tech" / "mine.yaml").write_text(text.replace("name: 28nm", "name: mine", 1))
    (tmp_path / "link").symlink_to(tmp_path / "tech")
    (tmp_path / "archs").mkdir()
    shutil.copy(ROOT / "archs" / "atsn16x16.yaml", tmp_path / "archs" / "at.yaml")
    shutil.copy(ROOT / "archs" / "dtsnn16x16.yaml", tmp_path / "archs" / "dt.yaml")
    for sub in ("a", "b/deeper"):
        (tmp_path / sub).mkdir(parents=True)
    return tmp_path


# the same table spelt three ways: relative to the architecture file's folder (how --set resolves a relative
# table), absolute, and through a link; each run from another directory
SPELLINGS = [("a", "../tech/mine.yaml"), ("b/deeper", "{tmp}/tech/mine.yaml"), ("a", "{tmp}/link/mine.yaml")]


def test_run_json_names_a_users_technology_table_by_file_name(user_table, monkeypatch):
    tmp, outputs = user_table, []
    for i, (cwd, table) in enumerate(SPELLINGS):
        monkeypatch.chdir(tmp / cwd)
        _cli(["run", str(tmp / "archs" / "at.yaml"), str(WORKLOAD), "--images", "2", "--quiet",
              "--set", f"technology={table.format(tmp=tmp)}", "--json", f"run{i}.json"])
        outputs.append((tmp / cwd / f"run{i}.json").read_bytes())
    assert outputs[0] == outputs[1] == outputs[2]
    arch = json.loads(outputs[0])["arch"]
    assert (arch["technology"], arch["technology_table"]["table"], arch["technology_table"]["name"]) == \
        ("mine.yaml", "mine.yaml", "mine")


def test_two_tables_of_one_file_name_are_told_apart_by_their_digest(user_table, monkeypatch):
    """d1/my.yaml and d2/my.yaml (other contents) were both recorded as 'my.yaml', and a copy of the shipped table
    keeping name: 28nm was named '28nm' in notes and errors: the record carries the table's digest, and messages
    name the table as the design does."""
    import hashlib

    tmp = user_table
    text = (tmp / "tech" / "mine.yaml").read_text()
    for sub, ddr4_pJ in (("d1", "8.18"), ("d2", "9.0")):  # copies keeping the shipped name, one of other numbers
        (tmp / sub).mkdir()
        copy = text.replace("name: mine", "name: 28nm", 1).replace("value: 8.18", f"value: {ddr4_pJ}", 1)
        (tmp / sub / "my.yaml").write_text(copy)
    monkeypatch.chdir(tmp / "a")
    records = []
    for sub in ("d1", "d2"):
        _cli(["run", str(tmp / "archs" / "at.yaml"), str(WORKLOAD), "--images", "2", "--quiet",
              "--set", f"technology={tmp / sub / 'my.yaml'}", "--json", f"{sub}.json"])
        records.append(json.loads((tmp / "a" / f"{sub}.json").read_text())["arch"]["technology_table"])
    assert records[0]["table"] == records[1]["table"] == "my.yaml" and records[0]["name"] == "28nm"
    assert [r["sha256"] for r in records] == [hashlib.sha256((tmp / sub / "my.yaml").read_bytes()).hexdigest()[:16]
                                              for sub in ("d1", "d2")]
    assert records[0]["sha256"] != records[1]["sha256"]
    from satasim_atsn.errors import ArchError
    from satasim_atsn.hw.arch import load_arch

    with pytest.raises(ArchError, match=r"no such entry in the technology table 'my\.yaml'"):
        load_arch(tmp / "archs" / "at.yaml", [f"technology={tmp / 'd1' / 'my.yaml'}", "tech.no_such_pJ=1"])


def test_compare_records_a_technology_override_by_file_name(user_table, monkeypatch):
    tmp, outputs = user_table, []
    for i, (cwd, table) in enumerate(SPELLINGS):
        monkeypatch.chdir(tmp / cwd)
        _cli(["compare", "--no-plots", str(tmp / "archs" / "at.yaml"), str(tmp / "archs" / "dt.yaml"), str(WORKLOAD),
              "--images", "2", "-j", "1", "-q", "--set", f"technology={table.format(tmp=tmp)}",
              "-o", f"out{i}", "--json", f"c{i}.json"])
        outputs.append(((tmp / cwd / f"c{i}.json").read_bytes(), (tmp / cwd / f"out{i}" / "results.json").read_bytes()))
    assert outputs[0] == outputs[1] == outputs[2]
    assert json.loads(outputs[0][0])["overrides"] == ["technology=mine.yaml"]


def test_twin_names_a_shipped_architecture_by_its_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    results = []
    for arch in ("atsn16x16", str(ROOT / "archs" / "atsn16x16.yaml")):
        out = tmp_path / ("n" if "/" not in arch else "p")
        _cli(["reproduce", "twin", "-o", str(out), "--trained", str(WORKLOAD), "--arch", arch, "--images", "2",
              "--quiet"])
        results.append(json.loads((out / "results.json").read_text()))
    assert results[0] == results[1] and results[0]["arch"] == "atsn16x16.yaml"


def test_table3_and_claims_find_the_shipped_design_from_any_directory(tmp_path, monkeypatch):
    """No --arch outside the checkout took `archs/atsn16x16.yaml` relative to the directory and failed;
    claims refused a shipped name that table3 accepted."""
    from satasim_atsn.hw.arch_files import ARCH_DIR
    from satasim_atsn.study.table3 import _atsn_arch

    monkeypatch.chdir(tmp_path)
    assert _atsn_arch(None) == ARCH_DIR / "atsn16x16.yaml"
    assert _atsn_arch("atsn16x16") == ARCH_DIR / "atsn16x16.yaml"
    mine = tmp_path / "designs" / "at.yaml"
    mine.parent.mkdir()
    shutil.copy(ARCH_DIR / "atsn16x16.yaml", mine)
    assert _atsn_arch("designs/at.yaml") == Path("designs/at.yaml")
