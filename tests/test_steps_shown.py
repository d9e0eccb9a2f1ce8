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
