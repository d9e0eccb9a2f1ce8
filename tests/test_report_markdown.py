"""A user's text in a generated report (a study's name, description and values, an architecture's name, a workload's
file name): Markdown shows it as written (``*x*`` was rendered in italics, ``|`` split a table cell, a backtick
opened a code span), and the HTML page shows the same characters."""

from __future__ import annotations

import re
from html import escape
from pathlib import Path

import pytest
from study_helpers import engine_study

from satasim_atsn.cli import main
from satasim_atsn.report.document import Document, md_code, md_text

SPECIAL = ["*x*", "_a_", "|", "`", "a<b>c", "[l](u)", "~s~", "# h", "1. item", "- a", "a&amp;b", "C:\\d"]


@pytest.mark.parametrize("text", SPECIAL)
def test_md_text_shows_as_written_in_markdown_and_html(tmp_path, text):
    doc = Document(md_text(text))
    doc.para(md_text(text))
    doc.table(["h"], [[md_text(text)]])
    md, html = doc.to_markdown(), doc.to_html(tmp_path)
    shown = escape(text)
    assert f"<h1>{shown}</h1>" in html and f"<p>{shown}</p>" in html and f"<td>{shown}</td>" in html
    assert f"<title>{shown}</title>" in html
    title = md.splitlines()[0].removeprefix("# ")
    assert re.search(r"(?<!\\)[*`\[\]~]", title.replace("\\\\", "")) is None, title  # each mark escaped


@pytest.mark.parametrize("text", ["bandwidth_GB_per_s", "tech.add_16b_energy_pJ", "images_per_batch <= 12", "R&D",
                                  "a > b", "9.5e+08", "-1", "x=1, y=2"])
def test_md_text_leaves_plain_text_alone(text):
    """What a shipped report holds stays byte-identical: nothing is escaped that Markdown would not read."""
    assert md_text(text) == text and md_code(text) == f"`{text}`"


def test_md_code_of_a_backtick_is_escaped_text():
    assert md_code("a`b") == "a\\`b" and md_code("a*b") == "`a*b`"


def test_a_sweep_report_shows_text_values_as_written(tmp_path, workload_path, capsys):
    names = ["*x*", "_a_", "|", "`", "a<b>c"]
    study = engine_study(tmp_path, workload_path, "vary:\n  zip: [{name: [" + ", ".join(f"'{n}'" for n in names)
                         + "], accelerators: [1, 2, 3, 4, 5]}]\n")  # a name alone is refused: it changes no hardware
    study.write_text(study.read_text().replace("name: t\n", "name: '*t*'\ndescription: '*d* `e` # f'\n"))
    with pytest.raises(SystemExit) as exc:
        main(["sweep", str(study), "-o", str(tmp_path / "out"), "-q"])
    assert exc.value.code in (0, None), capsys.readouterr().err
    md = (tmp_path / "out" / "report.md").read_text()
    html = (tmp_path / "out" / "report.html").read_text()
    assert "# Study \\*t\\*\n" in md and "\\*d\\* \\`e\\` # f" in md
    for point, (shown, plain) in enumerate(zip(["\\*x\\*", "\\_a\\_", "\\|", "\\`", "a\\<b>c"],
                                               ["*x*", "_a_", "|", "`", "a&lt;b&gt;c"], strict=True)):
        assert f"| {point} | {shown} | {point + 1} | ok |" in md, md
        assert f"<tr><td>{point}</td><td>{plain}</td><td>{point + 1}</td><td>ok</td>" in html
    assert "<h1>Study *t*</h1>" in html and "<p>*d* `e` # f</p>" in html


def test_a_compare_report_shows_architecture_names_as_written(tmp_path, workload_path, capsys):
    root = Path(__file__).resolve().parents[1] / "archs"
    archs = []
    for shipped, name in (("atsn16x16", "*x* `z`"), ("conventional16x16", "_a_")):
        text = (root / f"{shipped}.yaml").read_text()
        archs.append(tmp_path / f"{shipped}.yaml")
        archs[-1].write_text(re.sub(r"(?m)^name: .*$", f"name: '{name}'", text))
    with pytest.raises(SystemExit) as exc:
        main(["compare", *map(str, archs), str(workload_path), "-o", str(tmp_path / "out"), "--images", "2"])
    out, err = capsys.readouterr()
    assert exc.value.code in (0, None), err
    header = out.splitlines()[0].split()  # the terminal is no Markdown: it showed '\\*x\\* \\`z\\`'
    assert header == ["metric", "*x*", "`z`", "_a_", "_a_", "/", "*x*", "`z`"], out
    md = (tmp_path / "out" / "report.md").read_text()
    html = (tmp_path / "out" / "report.html").read_text()
    assert "| metric | \\*x\\* \\`z\\` | \\_a\\_ | \\_a\\_ / \\*x\\* \\`z\\` |" in md, md
    assert "baseline for the ratios: **\\*x\\* \\`z\\`**" in md and "**\\_a\\_** spends" in md
    body = re.sub(r"(?s)```.*?```|\]\([^)]*\)", "", md)  # the command (a temporary path), the figures' files
    assert "*x*" not in body and "_a_" not in body and "`z`" not in body
    assert "<th>*x* `z`</th><th>_a_</th>" in html and "<b>_a_</b> spends" in html


def test_reproduce_table2_prints_the_trained_set_as_typed(tmp_path, capsys):
    """The terminal's table is no Markdown: table2 printed --trained-set '*p*' as 'ours (\\*p\\*_*.npz)'."""
    import shutil

    shipped = Path(__file__).resolve().parents[1] / "workloads"
    for algo in ("snn", "dtsnn", "atsn"):
        shutil.copy(shipped / f"vgg_small_fmnist_{algo}.npz", tmp_path / f"*p*_{algo}.npz")
    with pytest.raises(SystemExit) as exc:
        main(["reproduce", "table2", "-o", str(tmp_path / "out"), "--workloads", str(tmp_path), "--trained-set", "*p*",
              "--images", "64"])
    out, err = capsys.readouterr()
    assert exc.value.code in (0, None), err
    assert "ours (*p*_*.npz)" in out and "\\*" not in out, out
    assert "ours (\\*p\\*_*.npz)" in (tmp_path / "out" / "report.md").read_text()


def test_reproduce_table5_shows_a_workload_name_as_written(tmp_path, capsys):
    """Table 5's rows name each workload by its meta name: '*net*' was read as italics in report.md (and the
    terminal, which is no Markdown, prints it as written)."""
    from satasim_atsn.workload.format import read_workload, write_workload

    shipped = Path(__file__).resolve().parents[1] / "workloads"
    for algo in ("snn", "dtsnn", "atsn"):
        workload = read_workload(shipped / f"vgg_small_fmnist_{algo}.npz")
        workload.meta["name"] = f"*net*_{algo}"
        write_workload(tmp_path / f"mine_{algo}.npz", workload)
    with pytest.raises(SystemExit) as exc:
        main(["reproduce", "table5", "-o", str(tmp_path / "out"), "--workloads", str(tmp_path), "--trained-set", "mine",
              "--images", "64"])
    out, err = capsys.readouterr()
    assert exc.value.code in (0, None), err
    md = (tmp_path / "out" / "report.md").read_text()
    assert "| \\*net\\*\\_atsn |" in md, md
    assert "*net*_atsn " in out, out


@pytest.mark.parametrize("prefix", ["*p*", "_p_"])
def test_a_reproduce_report_shows_the_trained_set_as_written(tmp_path, capsys, prefix):
    """--trained-set PREFIX names the user's files: table1 quotes them as PREFIX_*.npz."""
    import shutil

    shipped = Path(__file__).resolve().parents[1] / "workloads"
    for algo in ("snn", "dtsnn", "atsn"):
        shutil.copy(shipped / f"vgg_small_fmnist_{algo}.npz", tmp_path / f"{prefix}_{algo}.npz")
    escaped = md_text(prefix)
    assert escaped != prefix
    with pytest.raises(SystemExit) as exc:
        main(["reproduce", "table1", "-o", str(tmp_path / "out"), "--workloads", str(tmp_path), "--trained-set", prefix,
              "--images", "64", "-q"])
    assert exc.value.code in (0, None), capsys.readouterr().err
    md = (tmp_path / "out" / "report.md").read_text()
    assert f"fashion-mnist, 64 test images (embedded in the workload), {escaped}_*.npz" in md, md
    body = re.sub(r"(?s)```.*?```", "", md)
    assert f"{prefix}_" not in body.replace(escaped, ""), body


def test_a_sweep_report_shows_numbers_of_numeric_fields_readably(tmp_path, workload_path, capsys):
    """Its tables showed Python's reprs (1000000000.0); points.csv keeps them, the journal a resume reads back."""
    study = engine_study(tmp_path, workload_path, "vary:\n  clock_hz: [5.0e+8, 1e9]\n"
                         "  tech.add_16b_energy_pJ: [1.0e-9, 0.0255]\n")
    with pytest.raises(SystemExit) as exc:
        main(["sweep", str(study), "-o", str(tmp_path / "out"), "-q"])
    assert exc.value.code in (0, None), capsys.readouterr().err
    md = (tmp_path / "out" / "report.md").read_text()
    html = (tmp_path / "out" / "report.html").read_text()
    for point, (clock, energy) in enumerate([("5e+08", "1e-09"), ("5e+08", "0.0255"), ("1e+09", "1e-09"),
                                             ("1e+09", "0.0255")]):
        assert f"| {point} | {clock} | {energy} | ok |" in md, md
        assert f"<tr><td>{point}</td><td>{clock}</td><td>{energy}</td><td>ok</td>" in html
    assert "00000000.0" not in md and "00000000.0" not in html
    assert "1000000000.0" in (tmp_path / "out" / "points.csv").read_text()


def test_heat_map_ticks_are_exact():
    from satasim_atsn.report.plots import _tick

    assert [_tick(v) for v in (0.9999999, 1.0, 1179648, 2.5e8, 123456789.0, "a", True)] == \
        ["0.9999999", "1", "1179648", "2.5e+08", "123456789", "a", "True"]
