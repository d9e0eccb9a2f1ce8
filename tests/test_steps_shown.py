"""Per-timestep lists on the terminal (workload/steps.py): `workload info` of a T = 1024 workload printed lines of
7,218 characters and `evaluate` of a T = 256 one lines of 12,184; --json keeps every value."""

from __future__ import annotations

import json

import pytest

from satasim_atsn.cli import main
from satasim_atsn.workload.format import write_workload
from satasim_atsn.workload.steps import steps_shown
from satasim_atsn.workload.synthetic import random_workload


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    out, err = capsys.readouterr()
    return int(exc.value.code or 0), out, err


def test_steps_shown_keeps_short_lists_and_elides_the_middle_of_long_ones():
    items = [str(i) for i in range(40)]
    assert steps_shown(items[:16]) == " ".join(items[:16])
    assert steps_shown(items[:17]) == " ".join(items[:17])  # never "... 1 more ..."
    assert steps_shown(items) == "0 1 2 3 4 5 6 7 ... 24 more ... 32 33 34 35 36 37 38 39"
    assert steps_shown(items, "  ", show=4) == "0  1  ... 36 more ...  38  39"
    assert steps_shown(items, keep=[20, 30]) == ("0 1 2 3 4 5 6 7 ... 12 more ... 20 ... 9 more ... 30 ... 1 more "
                                                 "... 32 33 34 35 36 37 38 39").replace(" ... 1 more ... ", " 31 ")


def test_info_of_a_long_statistical_workload_prints_short_lines_and_json_keeps_all(tmp_path, capsys):
    target = tmp_path / "big.npz"
    code, _, err = run(["workload", "build", "--network", "vgg16", "--rate", "0.05", "--timesteps", "1024",
                        "--num-images", "2", "--exit-mean", "atsn=300", "-o", str(target)], capsys)
    assert code == 0, err
    code, out, err = run(["workload", "info", str(target), "--json", str(tmp_path / "i.json")], capsys)
    assert code == 0, err
    assert max(map(len, out.splitlines())) <= 250, max(out.splitlines(), key=len)[:300]
    assert "... 1008 more ..." in out
    data = json.loads((tmp_path / "i.json").read_text())
    assert len(data["rates"]["conv1"]) == 1024 and all(len(h) == 1024 for h in data["exit_hist"].values())


def test_evaluate_and_stats_of_a_long_trained_workload_print_short_lines(tmp_path, capsys):
    wl = random_workload(3, images=3, timesteps=64, size=6)
    write_workload(tmp_path / "w.npz", wl)
    code, out, err = run(["evaluate", str(tmp_path / "w.npz"), "--quiet", "--json", str(tmp_path / "e.json")],
                         capsys)
    assert code == 0, err
    assert max(map(len, out.splitlines())) <= 400, max(out.splitlines(), key=len)[:500]
    assert "fixed T: T=1 " in out and "... 48 more ...  T=57 " in out and "T=64 " in out
    table = json.loads((tmp_path / "e.json").read_text())
    assert len(table["fixed_t"]) == 64 and len(table["calibration"]) == 64
    code, out, err = run(["workload", "stats", str(tmp_path / "w.npz"), "-o", str(tmp_path / "t.npz")], capsys)
    assert code == 0, err
    assert max(map(len, out.splitlines())) <= 250, max(out.splitlines(), key=len)[:300]


def test_the_ceiling_line_keeps_every_step_that_cannot_clear_cl_t():
    from satasim_atsn.snn.confidence_bound import ceiling_line

    rows = [{"t": t, "bound": 0.5 if t in (10, 11) else 1.0, "can_clear_cl_t": t not in (10, 11), "cl_t": 0.99}
            for t in range(1, 41)]
    line = ceiling_line(rows, "membrane")
    assert "t=10 0.500000 (cannot clear CL_t = 0.99)  t=11 0.500000 (cannot clear CL_t = 0.99)" in line
    assert "... 5 more ..." in line and "... 25 more ..." in line and line.endswith("t=40 1.000000")


def test_a_long_run_of_steps_out_of_reach_is_kept_by_its_ends_and_named_whole():
    """T = 20 with every t < T out of reach printed all 20 steps (each kept as out of reach): the run is now kept by
    its ends, the steps between left out as any others, and named whole at the line's end."""
    from satasim_atsn.snn.confidence_bound import ceiling_line

    rows = [{"t": t, "bound": 0.9, "can_clear_cl_t": t in (7, 20), "cl_t": 0.99} for t in range(1, 21)]
    line = ceiling_line(rows, "membrane")
    assert line.count("(cannot clear") <= 10 and "... " in line  # of 18 out of reach
    assert "t=1 0.900000 (cannot clear" in line and "t=19 0.900000 (cannot clear" in line
    assert line.endswith("t=20 0.900000; out of reach: t = 1..6, 8..19")


def test_table_step_columns_show_every_step_up_to_nine_then_a_range_in_between():
    from satasim_atsn.workload.steps import step_cells, step_columns, step_headers

    assert step_columns(9) == [(t, t) for t in range(1, 10)]
    assert step_headers(10) == ["T1", "T2", "T3", "T4", "T5", "T6", "T7-T8 (range)", "T9", "T10"]
    values = [0.5, None, 3.0, 1.0, 1.0, 1.0, 7.0, None, 2.0, 9.0, 4.0, 4.0]
    assert step_cells(values, 12, "{:.1f}".format, "n/a") == ["0.5", "n/a", "3.0", "1.0", "1.0", "1.0",
                                                            "2.0 to 9.0", "4.0", "4.0"]
    assert step_cells([1.0, 2.0], 12, "{:.1f}".format) == ["1.0", "2.0"] + [""] * 7  # a row of fewer steps


def test_a_summarised_run_of_one_value_shows_it_once_and_the_caption_counts_its_steps():
    """'smallest to largest' of a run whose values are all equal is that value; the caption of T = 64's T7-T62 column
    counts the 56 timesteps it summarises (T7 to T62 inclusive); a table that shows every step has no caption."""
    from satasim_atsn.workload.steps import step_cells, steps_note

    values = [1.0] * 6 + [3.0] * 4 + [1.0, 2.0]
    assert step_cells(values, 12, "{:.1f}".format)[6] == "3.0"
    assert "T7-T62 (range): the smallest to the largest of those 56 timesteps' values" in steps_note(64)
    assert "of those 3 timesteps'" in steps_note(11) and steps_note(9) == ""


def test_the_kept_steps_of_a_long_list_are_at_most_most_of_them():
    """keep names the steps a line must show, at most ``most`` of them (the first ones): a line keeping every one of
    40 steps printed all 40 again."""
    items = [str(i) for i in range(40)]
    assert steps_shown(items, keep=range(40)) == " ".join(items[:16]) + " ... 16 more ... " + " ".join(items[32:])


def _trained_set(wdir, timesteps: int) -> None:
    for i, (algo, loss, out) in enumerate([("snn", "ce", "accumulate"), ("dtsnn", "dtsnn", "accumulate"),
                                           ("atsn", "imp", "membrane")]):
        w = random_workload(10 + i, images=6, timesteps=timesteps, num_classes=4, output_mode=out, encoding="direct")
        w.meta["provenance"]["config"] = {"loss": loss, "output": out}
        write_workload(wdir / f"vgg_small_fmnist_{algo}.npz", w)


def test_reproduce_tables_of_a_long_network_print_short_lines_and_results_keep_every_step(tmp_path, capsys):
    """`reproduce table2` and `table5` gave one column per timestep: T = 64 printed lines of 521 characters."""
    _trained_set(tmp_path, 40)
    for part in ("table2", "table5"):
        code, out, err = run(["reproduce", part, "-o", str(tmp_path / part), "--workloads", str(tmp_path)], capsys)
        assert code == 0, err
        assert max(map(len, out.splitlines())) <= 200, max(out.splitlines(), key=len)[:300]
        assert "T7-T38 (range)" in out and "T39" in out and "T40" in out and "T8 " not in out
        md = (tmp_path / part / "report.md").read_text()
        assert "| T7-T38 (range) |" in md and "(results.json holds each)" in md and "| T20 |" not in md
    t2 = json.loads((tmp_path / "table2" / "results.json").read_text())
    assert len(t2["relative_complexity"]) == 40 and len(t2["atsn"]["ops_per_timestep"]) == 40
    shown = [r for r in t2["relative_complexity"][6:38] if r is not None]
    assert f"{min(shown):.3f} to {max(shown):.3f}" in (tmp_path / "table2" / "report.md").read_text()
    t5 = json.loads((tmp_path / "table5" / "results.json").read_text())
    assert all(len(row["fixed_t"]) == 40 for row in t5["rows"])
