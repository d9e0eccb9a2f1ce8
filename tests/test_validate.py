"""`satasim validate`: docs/validation.md is exactly what the command writes; its published figures are sourced."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from satasim_atsn.cli import main
from satasim_atsn.report.document import fmt
from satasim_atsn.study import published
from satasim_atsn.study.commands import command_line
from satasim_atsn.study.validate import DEFAULT_IMAGES, validate

REPO = Path(__file__).resolve().parent.parent


def run(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    out = capsys.readouterr()
    return info.value.code, out.out, out.err


@pytest.mark.slow
def test_validation_doc_is_what_the_command_writes(tmp_path):
    """The shipped document is regenerated with the default image count and must match byte for byte."""
    path, data = validate(tmp_path, images=DEFAULT_IMAGES, workload_dir=REPO / "workloads",
                          json_path=tmp_path / "v.json", command=command_line(["validate", "-o", "docs"]))
    shipped = (REPO / "docs" / "validation.md").read_text()
    assert path.read_text() == shipped, "docs/validation.md is stale: rerun `satasim validate -o docs`"
    # the JSON carries the same numbers the tables show, with the simulated configurations
    saved = json.loads((tmp_path / "v.json").read_text())
    assert saved["images"] == DEFAULT_IMAGES and len(saved["table3"]) == 4
    assert set(saved["configurations"]) >= {"small", "vgg16/atsn16x16", "vgg16/conventional16x16"}
    for chip in saved["chips"]:  # every chip row is compared with the simulator's computed figure
        assert chip["ours_small"]["on_chip"] > chip["ours_small"]["on_chip_dynamic"] > 0
    # pJ/SOP = total energy / synaptic operations, with the scopes ordered system >= on chip >= dynamic
    sop = data["configurations"]["vgg16/atsn16x16"]["pJ_per_sop"]
    assert sop["system"] > sop["on_chip"] > sop["on_chip_dynamic"] > 0


def test_published_figures_carry_sources():
    names = [c["chip"] for c in published.SNN_CHIPS]
    assert names == ["ANP-I", "Tianjic", "ReckOn", "ODIN", "TrueNorth"]
    for chip in published.SNN_CHIPS:
        assert chip["pJ_per_sop"] > 0 and chip["source"] and chip["verified"] and chip["why"], chip["chip"]
        assert chip["verified"].split(":")[0] in ("yes", "no", "partly"), chip["chip"]
        # a ratio is printed only for a figure found in its source, in the scope the figure counts
        assert chip["figure_checked"] == chip["verified"].startswith("yes"), chip["chip"]
        assert chip["scope"] == ("on_chip_dynamic" if "active power only" in chip["counts"] else "on_chip")
    assert set(published.PROSPERITY_POWER_MW) == {"Eyeriss", "PTB", "SATO", "MINT", "Stellar", "Prosperity"}
    for row in published.DRAM_PUBLISHED:
        assert row["part"].startswith("dram_") and row["source"], row


def test_horowitz_rows_match_the_technology_table():
    """Adders and multipliers are Horowitz x 0.51 by construction; the rows must say so exactly."""
    from satasim_atsn.study.validate import _horowitz_rows

    for row in _horowitz_rows():
        if row["op"].endswith(("add", "multiply")):
            assert row["ours"] == pytest.approx(row["scaled_28nm"]), row["op"]


@pytest.mark.parametrize("argv, pattern", [
    (["validate", "--images", "0"], "--images: must be >= 1"),
    (["validate", "--workloads", "no/such/dir"], "no such workload directory"),
    (["validate", "--workloads", str(REPO / "workloads" / "vgg16_cifar10.npz")], "--workloads: is a file, not a "
     "directory"),  # it said 'no such workload directory' of a file that exists
])
def test_bad_input_one_line(argv, pattern, tmp_path, capsys):
    code, _, err = run([*argv, "-o", str(tmp_path / "out")], capsys)
    assert code == 2 and pattern in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_bad_outputs_fail_before_simulating(tmp_path, capsys):
    a_file = tmp_path / "f.txt"
    a_file.write_text("x")
    code, _, err = run(["validate", "-o", str(a_file / "sub")], capsys)
    assert code == 2 and f"-o: cannot be written ({a_file} is a file)" in err and len(err.strip().splitlines()) == 1
    # a missing parent of --json is made, as by every other command's outputs (validate alone refused it)
    code, _, err = run(["validate", "-o", str(tmp_path / "o"), "--json", str(a_file / "v.json")], capsys)
    assert code == 2 and "--json" in err and len(err.strip().splitlines()) == 1
    # --json naming -o itself or the validation.md it writes; an empty path: refused before anything is made
    for json_path, needle in ((tmp_path / "o", "is the -o directory"), (tmp_path / "o" / "validation.md",
                                                                   "is a file that -o writes"), ("", "empty")):
        code, _, err = run(["validate", "-o", str(tmp_path / "o"), "--json", str(json_path)], capsys)
        assert code == 2 and needle in err and len(err.strip().splitlines()) == 1, err
        assert not (tmp_path / "o").exists()


def test_validate_and_reproduce_find_the_checkouts_workloads_from_another_directory(tmp_path, monkeypatch):
    """Run from outside the checkout (an editable install), validate failed: it looked for ./workloads only."""
    from satasim_atsn.study.reproduce import default_workload_dir

    monkeypatch.chdir(tmp_path)
    assert default_workload_dir() == Path(__file__).resolve().parents[1] / "workloads"
    (tmp_path / "workloads").mkdir()
    assert default_workload_dir() == Path("workloads")  # the working directory's first


def test_a_small_network_with_no_synaptic_operations_gives_n_a_not_a_traceback():
    """`validate --workloads DIR` whose vgg_small_fmnist_atsn.npz never fires on its images (no SOPs) ended in a
    ZeroDivisionError traceback; its pJ/SOP are now null (n/a in the table), as `run --json`'s are."""
    from satasim_atsn.report.document import Document
    from satasim_atsn.study.validate import _chips_section, _per_sop

    silent = {"sops_per_image": 0.0, "energy_per_image_uJ": 5.0, "energy_by_component_uJ": {"dram": 1.0},
              "dynamic_by_component_uJ": {"pe_compute": 0.5, "dram": 0.25}}
    busy = dict(silent, sops_per_image=1e5)
    assert _per_sop(silent) == {"system": None, "on_chip": None, "on_chip_dynamic": None}
    assert _per_sop(busy)["system"] == pytest.approx(50.0)
    config = {"sops_per_image": 0.0, "leakage_share": 0.9, "pJ_per_sop": _per_sop(silent)}
    data = {"configurations": {"small": config, "vgg16/atsn16x16": dict(config, pJ_per_sop=_per_sop(busy))},
            "chips": [{**c, "ours_small": _per_sop(silent)} for c in published.SNN_CHIPS]}
    doc = Document("v")
    _chips_section(doc, data)
    checked = next(c["chip"] for c in published.SNN_CHIPS if c["figure_checked"])
    row = next(line for line in doc.to_markdown().splitlines() if line.startswith(f"| {checked} |"))
    assert "| n/a | n/a | n/a (" in row


def test_more_images_than_a_workload_holds_fails_before_simulating(tmp_path, monkeypatch, capsys):
    """`validate --images 1001`: the trained small network holds 1000 test images; the refusal came only after the
    three VGG16 runs of 1001 images each (tens of minutes), now before any simulation and without making -o."""
    import satasim_atsn.study.validate as validate_module

    def no_simulation(tasks):
        raise AssertionError("simulated before checking the image counts")

    monkeypatch.setattr(validate_module, "_simulate_many", no_simulation)
    code, _, err = run(["validate", "--images", "1001", "--workloads", str(REPO / "workloads"), "-o",
                        str(tmp_path / "out"), "--json", str(tmp_path / "v.json")], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "vgg_small_fmnist_atsn.npz" in err and "--images: 1001 images from 0 exceed the 1000" in err
    assert "use at most 1000" in err
    assert not (tmp_path / "out").exists() and not (tmp_path / "v.json").exists()


def test_json_inside_the_validation_md_it_writes_fails_before_simulating(tmp_path, capsys):
    """`validate -o out --json out/validation.md/v.json` simulated for minutes, wrote out/validation.md, then failed
    on --json with 'cannot be written (File exists)'; now refused first, naming the file in the way."""
    out = tmp_path / "out"
    code, _, err = run(["validate", "-o", str(out), "--json", str(out / "validation.md" / "v.json")], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "--json: goes through" in err and "a file that -o writes" in err and "give another path" in err
    assert not out.exists()


def test_published_figures_are_printed_as_published():
    """The DDR4 row printed 'published 12.4' beside its source's '12.45 pJ/bit', Eyeriss 1410 for 1410.5 mW and
    Horowitz's 1.3-2.6 nJ as '1.30e+03-2.60e+03': a cited figure is now printed with all the digits it has."""
    from satasim_atsn.report.document import Document
    from satasim_atsn.study.validate import _dram_section, _horowitz_rows, _horowitz_section, _prosperity_section

    dram = [dict(row, ours_access=1.0, ours_background_mW=1.0, ours_effective=2.0)
            for row in published.DRAM_PUBLISHED]
    data = {"configurations": {"vgg16/atsn16x16": {"leakage_share": 0.5}}, "dram": dram,
            "prosperity_mW": dict(published.PROSPERITY_POWER_MW), "ours_mW": {"atsn16x16": 500.0},
            "horowitz": _horowitz_rows()}
    doc = Document("v")
    _prosperity_section(doc, data)
    _horowitz_section(doc, data)
    _dram_section(doc, data)
    lines = doc.to_markdown().splitlines()

    def cells(first):
        return next(line for line in lines if line.startswith(f"| {first} |")).split(" | ")

    for row in published.DRAM_PUBLISHED:
        assert cells(row["label"])[1] == f"{row['pJ_per_bit']:g}", row["label"]
    for name, mw in published.PROSPERITY_POWER_MW.items():
        assert cells(name)[1] == f"{mw:g}", name
    h = published.HOROWITZ_45NM_PJ
    assert cells("DRAM 64-bit access (dram_lpddr4)")[1] == f"{h['dram_64b_low']:g}-{h['dram_64b_high']:g}"
    assert cells("8-bit add")[1] == f"{h['add_8b']:g}" and cells("32-bit multiply")[1] == f"{h['mult_32b']:g}"


def test_too_few_images_for_the_accelerators_is_noted(tmp_path, monkeypatch, capsys):
    """`validate --images 2` leaves 2 of the 4 accelerators idle: its FPS, powers and pJ/SOP describe that short run
    (`run` says so in a note), yet the document, the JSON and the terminal said nothing."""
    import satasim_atsn.study.validate as validate_module
    from satasim_atsn.study.metrics import run_summary

    summary = run_summary("atsn16x16", [], str(REPO / "workloads" / validate_module.SMALL), 2)
    monkeypatch.setattr(validate_module, "_simulate_many", lambda tasks: [summary] * len(tasks))
    args = ["validate", "--workloads", str(REPO / "workloads"), "-o", str(tmp_path / "out"), "--json",
            str(tmp_path / "v.json")]
    code, out, err = run([*args, "--images", "2"], capsys)
    needle = "2 images in batches of 1 keep 2 of the 4 accelerators busy"
    assert code == 0 and needle in err and out.strip().startswith("wrote"), err
    assert needle in (tmp_path / "out" / "validation.md").read_text()
    assert any(needle in note for note in json.loads((tmp_path / "v.json").read_text())["notes"])
    code, out, err = run([*args, "--images", "2", "-q"], capsys)
    assert code == 0 and not out and not err
    code, _, err = run([*args, "--images", "4"], capsys)  # every accelerator busy: no note
    assert code == 0 and "note" not in err and json.loads((tmp_path / "v.json").read_text())["notes"] == []


def test_the_shipped_designs_are_used_whatever_the_working_directory_holds(tmp_path, monkeypatch, capsys):
    """validate named its designs by bare name, which an entry of the working directory wins over: run beside a
    folder `atsn16x16` (a sweep's -o, say) it failed ('atsn16x16: cannot read (Is a directory)'), and beside a file
    `dtsnn16x16` it would have simulated that file. It now reads the shipped files themselves."""
    import satasim_atsn.study.validate as validate_module
    from satasim_atsn.hw.arch_files import ARCH_DIR
    from satasim_atsn.study.metrics import run_summary

    summary = run_summary(str(ARCH_DIR / "atsn16x16.yaml"), [], str(REPO / "workloads" / validate_module.SMALL), 4)
    seen = []

    def fake(tasks):
        seen.extend(tasks)
        return [summary] * len(tasks)

    monkeypatch.setattr(validate_module, "_simulate_many", fake)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "atsn16x16").mkdir()
    (tmp_path / "dtsnn16x16").write_text("name: not the shipped one\n")
    code, _, err = run(["validate", "--images", "4", "--workloads", str(REPO / "workloads"), "-o", "out"], capsys)
    assert code == 0, err
    assert seen and all(Path(task[0]).parent == ARCH_DIR and Path(task[0]).is_file() for task in seen)


def test_the_section_cited_for_the_weight_read_defines_it():
    """validation.md sent the reader to docs/microarchitecture.md section 3 (mapping) for `pe_weight_reads`, which
    section 4.1 (a PE's compute phase) defines."""
    import re

    text = (REPO / "docs" / "validation.md").read_text()
    section = re.search(r"`pe_weight_reads`, docs/microarchitecture\.md section ([\d.]+)", text).group(1)
    micro = (REPO / "docs" / "microarchitecture.md").read_text()
    level = "#" * (section.count(".") + 2)
    body = re.search(rf"^{level} {re.escape(section)}[. ].*?(?=^#{{2,{len(level)}}} )", micro, re.M | re.S).group(0)
    assert "`pe_weight_reads`" in body, section


def test_every_horowitz_ratio_names_its_divisor():
    """The DRAM rows' 'ours / scaled' (0.263 for 512 pJ) divide by the midpoint of Horowitz's 1300-2600 pJ, which
    no cell showed ('(off chip)'): each row now shows the number its ratio divides by."""
    from satasim_atsn.report.document import Document
    from satasim_atsn.study.validate import _horowitz_rows, _horowitz_section

    doc = Document("v")
    rows = _horowitz_rows()
    _horowitz_section(doc, {"horowitz": rows})
    lines = doc.to_markdown().splitlines()
    for row in rows:
        cells = next(line for line in lines if line.startswith(f"| {row['op']} |")).split(" | ")
        divisor = row["scaled_28nm"] if row["scaled_28nm"] is not None else \
            (row["horowitz_45nm"] + row["horowitz_high"]) / 2
        shown = fmt(divisor, 3) if row["scaled_28nm"] is not None else f"{divisor:g}"
        assert shown in cells[2], (row["op"], cells[2])
        assert cells[4] == fmt(row["ours"] / divisor, 3)


def test_validate_without_an_output_directory_writes_nothing(tmp_path, capsys, monkeypatch):
    """`-o` defaulted to docs: run in a checkout, `satasim validate` replaced the shipped docs/validation.md (with
    whatever --images it was given); it must be named, as compare, sweep and reproduce name theirs."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "docs").mkdir()
    code, _, err = run(["validate", "--images", "1"], capsys)
    assert code == 2 and "Missing option '-o' / '--out'" in err and len(err.strip().splitlines()) == 1
    assert list((tmp_path / "docs").iterdir()) == []
