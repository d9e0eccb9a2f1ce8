"""Report documents: Markdown and self-contained HTML rendering, number formatting."""

from __future__ import annotations

import numpy as np

from satasim_atsn.report import plots
from satasim_atsn.report.document import Document, fmt, md_text, sub_report_links, text_table


def test_markdown_and_html(tmp_path):
    plots.lines(tmp_path / "f.png", {"a": ([1, 2], [3, 4])}, "x", "y", "t")
    doc = Document("Title", notice="Statistical workload: note")
    doc.para("a **bold** `code` <tag>")
    doc.table(["h1", "h2"], [["a|b", 1.5]])
    doc.figure("f.png", "cap")
    md = doc.to_markdown()
    assert md.splitlines()[0] == "**Statistical workload: note**"
    assert "| a\\|b | 1.5 |" in md and "![cap](f.png)" in md
    html = doc.to_html(tmp_path)
    assert "<b>bold</b>" in html and "<code>code</code>" in html and "&lt;tag&gt;" in html
    assert 'src="data:image/png;base64,' in html and 'src="f.png"' not in html


def test_a_sub_report_is_a_link_in_both_formats(tmp_path):
    """`reproduce claims` named its sub-reports as plain text ('see table3/'): in the HTML page a reader had to find
    the folder by hand. A sub-report that exists is linked (report.md from Markdown, report.html from HTML); a name
    with no report stays text, and a user's escaped brackets stay brackets."""
    (tmp_path / "table3").mkdir()
    (tmp_path / "table3" / "report.md").write_text("x")
    cell = sub_report_links("ours lower: see table3/ for why; see figs/", tmp_path)
    assert cell == "ours lower: see [table3/](table3/report.md) for why; see figs/"
    assert sub_report_links("see table3/report.md, see table3x/", tmp_path) == "see table3/report.md, see table3x/"
    doc = Document("T")
    doc.table(["claim", "measured"], [["c", cell]])
    doc.para(md_text("a [name](x.md) typed by a user"))
    assert "| c | ours lower: see [table3/](table3/report.md) for why; see figs/ |" in doc.to_markdown()
    html = doc.to_html(tmp_path)
    assert '<td>ours lower: see <a href="table3/report.html">table3/</a> for why; see figs/</td>' in html
    assert "<p>a [name](x.md) typed by a user</p>" in html


def test_a_list_item_of_several_lines_stays_one_item(tmp_path):
    """A sweep point's error can span lines; it broke the report's list into loose paragraphs."""
    doc = Document("T")
    doc.bullets(["point 3 (x=1): first line\n  second line\n\nthird", "point 4: ok"])
    md = doc.to_markdown().splitlines()
    start = md.index("- point 3 (x=1): first line")
    assert md[start:start + 4] == ["- point 3 (x=1): first line", "    second line", "  third", "- point 4: ok"]
    html = doc.to_html(tmp_path)
    assert "<li>point 3 (x=1): first line<br>  second line<br>third</li><li>point 4: ok</li>" in html


def test_names_no_font_draws_are_spelled_not_boxed(tmp_path):
    """Two designs named in a script no installed font draws (CJK on most servers) were drawn as the same boxes."""
    import matplotlib.pyplot as plt
    import pytest

    fig, ax = plt.subplots()
    ax.set_title("自适应 a\tb é ≤ τ\nnext")
    if ord("自") in plots._drawable_chars(ax.title.get_fontproperties()):
        plt.close(fig)
        pytest.skip("a font here draws CJK: nothing to spell")
    plots._spell_undrawable(fig)
    assert ax.get_title() == "\\u81ea\\u9002\\u5e94 a b é ≤ τ\nnext"  # what the font has stays as it is
    plt.close(fig)
    for name, label in (("a.png", "自适应"), ("b.png", "时间步")):  # as boxes, the same picture
        plots.metric_bars(tmp_path / name, [label, "base"], [("fps", [1.0, 2.0])], baseline=1)
    assert (tmp_path / "a.png").read_bytes() != (tmp_path / "b.png").read_bytes()


def test_png_bytes_are_deterministic(tmp_path):
    for name in ("a.png", "b.png"):
        plots.pareto_scatter(tmp_path / name, np.array([1.0, 2.0, 3.0]), np.array([3.0, 1.0, 2.0]),
                             np.array([True, True, False]), "x", "y", "t", annotations=["p0", "p1", "p2"])
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()


def test_fmt_and_text_table():
    assert fmt(None) == "n/a" and fmt(float("nan")) == "n/a" and fmt(3) == "3"
    assert fmt(537.64) == "537.6" and fmt(123456.0) == "1.235e+05"
    table = text_table(["a", "b"], [["x", "1"], ["yy", "22"]])
    assert table.splitlines()[1] == "--  --"


def test_a_text_table_of_cjk_names_stays_aligned_on_screen():
    """A CJK design name takes two terminal columns a character: padded by characters, compare's columns drifted."""
    table = text_table(["metric", "设计一", "b"], [["FPS", "1.5", "2"], ["energy / image (uJ)", "33.25", "4"]])
    ends = {sum(2 if "\u4e00" <= c <= "\u9fff" else 1 for c in line) for line in table.splitlines()}
    assert len(ends) == 1, table


def test_a_timeline_of_many_timesteps_draws_without_warnings(tmp_path):
    """A T = 40 network's timeline put 40 legend rows inside the axes, and matplotlib printed 'Tight layout not
    applied' on the terminal of every compare (even with -q); the legend now goes beside the axes."""
    import warnings


    segments = [(f"layer{k}", t * 1.0 + k * 0.1, 0.05, f"t={t + 1}") for t in range(40) for k in range(7)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        path = plots.timeline(tmp_path / "t.png", segments, "one image through layers and timesteps", "time (us)")
    assert path.is_file() and path.stat().st_size > 0


def test_dollar_signs_in_user_names_are_text_not_maths(tmp_path):
    """A design named 'v$\\qqq$' crashed compare's report after every simulation (matplotlib parsed it as maths)."""
    from satasim_atsn.report import plots

    name = "v$\\qqq$"
    plots.metric_bars(tmp_path / "m.png", [name, "b"], [("FPS", [1.0, 2.0])], 0)
    plots.lines(tmp_path / "l.png", {name: ([1.0, 2.0], [3.0, 4.0])}, "x $\\nope$", "y", "cost $\\qqq$ study")
    assert (tmp_path / "m.png").stat().st_size > 0 and (tmp_path / "l.png").stat().st_size > 0
