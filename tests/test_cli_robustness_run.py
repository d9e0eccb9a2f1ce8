"""User mistakes around `satasim run` / `bench`, the YAML files, workload fields and NIR inputs: each one is
one line on stderr and exit code 2 (a SatasimError), never a traceback, and no number printed is nan/inf."""

from __future__ import annotations

import copy
import glob
import json
import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from satasim_atsn.cli import main
from satasim_atsn.errors import ArchError, MappingError, SatasimError, WorkloadError
from satasim_atsn.fileio import load_yaml
from satasim_atsn.hw.arch import load_arch
from satasim_atsn.hw.mapping import check_membrane_widths
from satasim_atsn.hw.tech import TECH_DIR, load_tech
from satasim_atsn.interchange.nir_io import write_nir
from satasim_atsn.traces.rate_table import load_rate_spec
from satasim_atsn.workload.format import Workload, read_workload, validate
from satasim_atsn.workload.network_file import load_network

ROOT = Path(__file__).resolve().parent.parent
ARCH = str(ROOT / "archs" / "atsn16x16.yaml")
WL = str(ROOT / "workloads" / "vgg_small_fmnist_atsn.npz")
STATISTICAL = ROOT / "workloads" / "vgg16_cifar10.npz"


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of one CLI call."""
    with pytest.raises(SystemExit) as info:
        main(argv)
    out = capsys.readouterr()
    return info.value.code, out.out, out.err


def one_line_error(code: int, err: str) -> str:
    """The single error line of a refused command (asserting exit 2, one line, no traceback)."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("satasim: error:"), err
    assert "Traceback" not in err
    return lines[0]


# ------------------------------------------------------------------------------------------
# 1. technology-table values beyond any real technology
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("override", "needle"), [
    ("tech.add_16b_energy_pJ=1e300", "0..1e+09"),
    ("tech.add_16b_energy_pJ=1e200", "0..1e+09"),
    ("tech.glb_144KB_leakage_mW=1e306", "0..1e+09"),
    ("tech.mult_16b_area_um2=1e13", "0..1e+12"),
    ("tech.dram_lpddr4_channel_bandwidth_GB_per_s=0", "1e-06..1e+09"),
])
def test_absurd_tech_override_is_one_line(tmp_path, capsys, override, needle):
    out_json = tmp_path / "r.json"
    code, out, err = run(["run", ARCH, WL, "--images", "8", "--set", override, "--json", str(out_json)], capsys)
    line = one_line_error(code, err)
    entry = override.split("=")[0]
    assert ARCH in line and f"{entry}:" in line and needle in line and "typo" in line, line
    assert not out_json.exists() and "inf" not in out


def test_largest_believable_override_runs_with_finite_numbers(tmp_path, capsys):
    out_json = tmp_path / "r.json"
    code, out, err = run(["run", ARCH, WL, "--images", "4", "--set", "tech.add_16b_energy_pJ=1e9", "--json",
                          str(out_json)], capsys)
    assert code == 0, err
    assert "inf" not in out.lower() and "nan" not in out.lower()
    assert json.loads(out_json.read_text())["metrics"]["energy_total_pJ"] > 1e9


def test_absurd_table_value_is_refused_at_load(tmp_path):
    data = yaml.safe_load((TECH_DIR / "28nm.yaml").read_text())
    data["entries"]["add_16b_energy_pJ"]["value"] = 1e300
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ArchError, match=r"entries.add_16b_energy_pJ.value: 1e\+300 energy_pJ is outside 0..1e\+09"):
        load_tech(path)


def test_shipped_tables_are_within_the_bounds():
    for name in ("28nm", "45nm"):
        assert load_tech(name).entries


# ------------------------------------------------------------------------------------------
# 2. --json that cannot be written: nothing of the user's is deleted
# ------------------------------------------------------------------------------------------
def test_json_at_an_unwritable_place_is_one_line(capsys):
    code, _, err = run(["run", ARCH, WL, "--images", "4", "--json", "/proc/version"], capsys)
    one_line_error(code, err)
    assert Path("/proc/version").read_text()


def test_failed_json_write_keeps_the_users_file(tmp_path, capsys, monkeypatch):
    from satasim_atsn.hw.results import SimResult

    out_json = tmp_path / "r.json"
    out_json.write_text("precious")

    def fail(self, path, timing=False):
        raise SatasimError.at(str(path), None, "cannot be written (disk full)", "choose a writable location")

    monkeypatch.setattr(SimResult, "write_json", fail)
    code, _, err = run(["run", ARCH, WL, "--images", "4", "--json", str(out_json)], capsys)
    assert "disk full" in one_line_error(code, err)
    assert out_json.read_text() == "precious"


def test_a_failed_csv_write_leaves_the_json_the_user_had(tmp_path, capsys, monkeypatch):
    """A CSV failure used to delete the --json target after writing it: a result the user already had, a symlink,
    or a device node. The CSVs now come first, and a failure touches nothing already there."""
    from satasim_atsn.hw import commands

    out_json, out_csv = tmp_path / "r.json", tmp_path / "csv"
    out_json.write_text('{"old": 1}')
    real = commands.atomic_write_text

    def fail_on_images(path, text):
        if Path(path).name == "images.csv":
            raise OSError(28, "No space left on device", str(path))
        real(path, text)

    monkeypatch.setattr(commands, "atomic_write_text", fail_on_images)
    code, _, err = run(["run", ARCH, WL, "--images", "4", "--json", str(out_json), "--csv", str(out_csv)], capsys)
    line = one_line_error(code, err)
    assert "No space left" in line and f"(written before it: {out_csv / 'layers.csv'})" in line
    assert out_json.read_text() == '{"old": 1}'


def test_a_directory_named_as_a_csv_is_refused_before_the_run(tmp_path, capsys):
    out_json, out_csv = tmp_path / "r.json", tmp_path / "csv"
    (out_csv / "neurobench.csv").mkdir(parents=True)
    out_json.write_text('{"old": 1}')
    code, _, err = run(["run", ARCH, WL, "--images", "4", "--json", str(out_json), "--csv", str(out_csv)], capsys)
    assert "neurobench.csv: --csv: is a directory, where --csv writes the file neurobench.csv" in \
        one_line_error(code, err)
    assert out_json.read_text() == '{"old": 1}' and sorted(p.name for p in out_csv.iterdir()) == ["neurobench.csv"]


def test_a_long_legal_output_name_is_written(tmp_path, capsys):
    """A 250-character name is legal, but the temp file's affixes made it pass NAME_MAX after the simulation."""
    name = tmp_path / ("a" * 245 + ".json")
    code, _, err = run(["run", ARCH, WL, "--images", "2", "--json", str(name), "-q"], capsys)
    assert code == 0, err
    assert name.is_file()


# ------------------------------------------------------------------------------------------
# 3. --images below 1 or past the end, the same in run and bench
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("command", ["run", "bench"])
@pytest.mark.parametrize(("images", "needle"), [
    ("0", "--images: must be >= 1, got 0"),
    ("-3", "--images: must be >= 1, got -3"),
    ("100000", "--images: 100000 images from 0 exceed the 1000 available; use at most 1000"),
])
def test_bad_image_counts(tmp_path, capsys, command, images, needle):
    out_json = tmp_path / "r.json"
    argv = (["run", ARCH, WL] if command == "run" else ["bench", WL, "--arch", ARCH]) + [
        "--images", images, "--json", str(out_json)]
    code, _, err = run(argv, capsys)
    assert needle in one_line_error(code, err)
    assert not out_json.exists()


def test_bench_default_takes_all_images_of_a_small_workload(tmp_path, capsys):
    from satasim_atsn.workload.format import write_workload
    from satasim_atsn.workload.synthetic import random_workload

    path, out_json = tmp_path / "wl.npz", tmp_path / "b.json"
    write_workload(path, random_workload(21, images=3))
    code, _, err = run(["bench", str(path), "--arch", ARCH, "--repeat", "1", "--json", str(out_json)], capsys)
    assert code == 0, err
    assert json.loads(out_json.read_text())["images"] == 3


# ------------------------------------------------------------------------------------------
# 4. duplicate keys in any YAML file
# ------------------------------------------------------------------------------------------
def test_duplicate_key_in_an_arch_file(tmp_path, capsys):
    text = Path(ARCH).read_text()
    assert "clock_hz:" in text
    path = tmp_path / "dup.yaml"
    path.write_text(text.replace("clock_hz:", "clock_hz: 400e6\nclock_hz:", 1).replace(
        "technology: 28nm", f"technology: {TECH_DIR / '28nm.yaml'}"))
    first = path.read_text().splitlines().index("clock_hz: 400e6") + 1
    with pytest.raises(ArchError, match=rf"dup.yaml: line {first + 1}: key 'clock_hz' is given twice \(first at "
                                        rf"line {first}\)"):
        load_arch(path)
    code, _, err = run(["run", str(path), WL, "--images", "4"], capsys)
    assert "clock_hz" in one_line_error(code, err)


def test_duplicate_nested_key_and_merge_keys():
    with pytest.raises(SatasimError, match=r"f.yaml: line 3: key 'adders' is given twice \(first at line 2\)"):
        load_yaml("pe:\n  adders: 1\n  adders: 2\n", "f.yaml")
    with pytest.raises(SatasimError, match="key 'a' is given twice"):
        load_yaml("x: {a: 1, a: 2}\n", "f.yaml")
    # a key overriding a merged one (<<) is not a duplicate
    assert load_yaml("b: &b {x: 1, y: 2}\nd:\n  <<: *b\n  x: 3\n", "f.yaml")["d"] == {"x": 3, "y": 2}


def test_a_leading_zero_integer_is_refused_not_read_as_octal(tmp_path, capsys):
    with pytest.raises(SatasimError, match=r"f.yaml: line 2: 010 has a leading zero, which YAML reads as an octal "
                                           r"number \(8\); write 10 for decimal, or quote it"):
        load_yaml("a: 1\naccelerators: 010\n", "f.yaml")
    assert load_yaml("a: 0\nb: 10\nc: '010'\nd: 0x10\ne: 1_000\n", "f.yaml") == \
        {"a": 0, "b": 10, "c": "010", "d": 16, "e": 1000}
    code, _, err = run(["run", ARCH, WL, "--images", "1", "--set", "accelerators=010"], capsys)
    assert "write 10 for decimal" in one_line_error(code, err)
    arch = tmp_path / "a.yaml"
    arch.write_text(Path(ARCH).read_text().replace("accelerators: 4", "accelerators: 04"))
    code, _, err = run(["run", str(arch), WL, "--images", "1"], capsys)
    assert "04 has a leading zero" in one_line_error(code, err)


def test_a_base_60_number_is_refused_not_read_as_minutes(capsys):
    """YAML 1.1 reads 1:30 as 90 and 1:30.5 as 90.5; text with a colon and a quoted value stay text."""
    with pytest.raises(SatasimError, match=r"f.yaml: line 2: 1:30 is a base-60 number in YAML 1.1 \(90\); write 90 "
                                           r"if that is meant, or quote it if it is text"):
        load_yaml("a: 1\nadders: 1:30\n", "f.yaml")
    with pytest.raises(SatasimError, match=r"1:30.5 is a base-60 number in YAML 1.1 \(90.5\)"):
        load_yaml("clock_hz: 1:30.5\n", "f.yaml")
    assert load_yaml("a: '1:30'\nb: 10:30am\nc: 1.5e+3\n", "f.yaml") == {"a": "1:30", "b": "10:30am", "c": 1500.0}
    code, _, err = run(["run", ARCH, WL, "--images", "1", "--set", "accelerators=1:0"], capsys)
    assert "1:0 is a base-60 number" in one_line_error(code, err)


def test_duplicate_key_in_a_tech_table(tmp_path):
    text = (TECH_DIR / "28nm.yaml").read_text()
    path = tmp_path / "t.yaml"
    path.write_text(text.replace("node_nm:", "node_nm: 45\nnode_nm:", 1))
    with pytest.raises(ArchError, match=r"t.yaml: line \d+: key 'node_nm' is given twice"):
        load_tech(path)


def test_duplicate_key_in_a_network_file_and_a_rate_table(tmp_path):
    net = tmp_path / "net.yaml"
    net.write_text((ROOT / "satasim_atsn" / "data" / "networks" / "vgg16.yaml").read_text().replace(
        "num_classes:", "num_classes: 100\nnum_classes:", 1))
    with pytest.raises(WorkloadError, match=r"net.yaml: line \d+: key 'num_classes' is given twice"):
        load_network(net)
    rates = tmp_path / "rates.yaml"
    rates.write_text((ROOT / "workloads" / "rates" / "vgg16.yaml").read_text().replace(
        "timesteps:", "timesteps: 8\ntimesteps:", 1))
    with pytest.raises(WorkloadError, match=r"rates.yaml: line \d+: key 'timesteps' is given twice"):
        load_rate_spec(rates)


# ------------------------------------------------------------------------------------------
# 5. membranes narrower than the workload's
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("override", "needle"), [
    ("pe.vmem_bits=4", "pe.vmem_bits: 4-bit membranes cannot hold the 16-bit membranes"),
    ("pe.vmem_bits=8", "use pe.vmem_bits >= 16"),
    ("exit_unit.vmem_bits=16", "exit_unit.vmem_bits: 16-bit output membranes cannot hold the 32-bit output"),
])
def test_narrow_membranes_are_refused(capsys, override, needle):
    code, _, err = run(["run", ARCH, WL, "--images", "4", "--set", override], capsys)
    line = one_line_error(code, err)
    assert ARCH in line and needle in line and WL in line, line


def test_output_layer_on_the_pes_keeps_running():
    """Without an exit tile the output layer's membranes are charged at pe.vmem_bits (documented)."""
    arch = load_arch(ROOT / "archs" / "conventional16x16.yaml", ["array.exit_unit_tiles=0"])
    check_membrane_widths(arch, read_workload(ROOT / "workloads" / "vgg_small_fmnist_snn.npz"))
    assert arch.pe.vmem_bits < 32


def test_shipped_archs_and_workloads_are_never_refused():
    archs = sorted(glob.glob(str(ROOT / "archs" / "*.yaml")) + glob.glob(str(ROOT / "satasim_atsn" / "data" /
                                                                                "archs" / "*.yaml")))
    workloads = [p for p in sorted(glob.glob(str(ROOT / "workloads" / "**" / "*.npz"), recursive=True))
                 if not p.endswith(".ckpt.npz")]
    assert archs and workloads
    loaded = [read_workload(p) for p in workloads]
    for path in archs:
        arch = load_arch(path)
        for wl in loaded:
            check_membrane_widths(arch, wl)


def test_narrow_membranes_raise_mapping_error():
    with pytest.raises(MappingError, match="pe.vmem_bits"):
        check_membrane_widths(load_arch(ARCH, ["pe.vmem_bits=12"]), read_workload(WL))


@pytest.mark.parametrize(("override", "field"), [("pe.vmem_bits=12", "pe.vmem_bits"),
                                                 ("exit_unit.vmem_bits=24", "exit_unit.vmem_bits")])
def test_simulate_itself_refuses_narrow_membranes(override, field):
    """The check lives in ``simulate``, so a program calling the API (and every command) gets it."""
    from satasim_atsn.hw.engine import simulate

    with pytest.raises(MappingError, match=field):
        simulate(load_arch(ARCH, [override]), read_workload(WL), images=1)


def test_sweep_summary_refuses_narrow_membranes():
    from satasim_atsn.study.metrics import run_summary

    with pytest.raises(MappingError, match="use pe.vmem_bits >= 16"):
        run_summary(ARCH, ["pe.vmem_bits=8"], WL, images=1)


# ------------------------------------------------------------------------------------------
# 6. corrupt workload fields
# ------------------------------------------------------------------------------------------
def _with_meta(path: Path | str, change) -> Workload:
    wl = read_workload(path)
    meta = copy.deepcopy(wl.meta)
    change(meta)
    return Workload(meta=meta, arrays=dict(wl.arrays), source="w.npz")


@pytest.mark.parametrize(("change", "pattern"), [
    (lambda m: m["quant"].update(input_shift=-3), r"meta.quant.input_shift: must be an integer in 0..63"),
    (lambda m: m["quant"].update(input_shift=100), r"meta.quant.input_shift: .*got 100"),
    (lambda m: m["quant"].update(input_shift=2.5), r"meta.quant.input_shift"),
    (lambda m: m["quant"].update(output_vmem_bits=0), r"meta.quant.output_vmem_bits: must be an integer in 8..64"),
    (lambda m: m["exit_policy"].update(cl_init=5), r"meta.exit_policy.cl_init: must be a number in \(0, 1\], got 5"),
    (lambda m: m["exit_policy"].update(tau_cl=0), r"meta.exit_policy.tau_cl: must be a number in \(0, 1\]"),
    (lambda m: m["exit_policy"].update(theta=float("nan")), r"meta.exit_policy.theta"),
    (lambda m: m["exit_policy"].update(theta="low"), r"meta.exit_policy.theta"),
    (lambda m: m.update(exit_policy=[0.5]), r"meta.exit_policy: must be a mapping"),
])
def test_corrupt_trained_fields(change, pattern):
    with pytest.raises(WorkloadError, match=pattern):
        validate(_with_meta(WL, change))


@pytest.mark.parametrize("num", [0, -1, True, 1.5])
def test_statistical_workload_without_images(num):
    with pytest.raises(WorkloadError, match=r"w.npz: meta.num_images: must be an integer in 1..10\^9"):
        validate(_with_meta(STATISTICAL, lambda m: m.update(num_images=num)))


def test_shipped_workloads_stay_valid():
    assert validate(_with_meta(WL, lambda m: None)).input_shift == read_workload(WL).input_shift
    assert validate(_with_meta(STATISTICAL, lambda m: None)).num_images == read_workload(STATISTICAL).num_images


# ------------------------------------------------------------------------------------------
# 7. NIR import of flat [N, features] inputs
# ------------------------------------------------------------------------------------------
DT = 1e-4


def _mlp_graph(features: int = 20, hidden: int = 12, classes: int = 4):
    """A NIR MLP on flat inputs (skips the test where the optional nir extra is not installed)."""
    nir = pytest.importorskip("nir")
    rng = np.random.default_rng(0)
    tau = DT / 0.5
    shape = (hidden,)
    nodes = {
        "input": nir.Input(input_type={"input": np.array([features])}),
        "fc1": nir.Affine(weight=rng.normal(0, 0.3, (hidden, features)), bias=rng.normal(0, 0.1, hidden)),
        "lif1": nir.LIF(tau=np.full(shape, tau), r=np.full(shape, tau / DT), v_leak=np.zeros(shape),
                        v_threshold=np.ones(shape), v_reset=np.zeros(shape)),
        "fc2": nir.Linear(weight=rng.normal(0, 0.5, (classes, hidden))),
        "output": nir.Output(output_type={"output": np.array([classes])}),
    }
    edges = [("input", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


def test_flat_inputs_import_and_simulate(tmp_path, capsys):
    model, inputs, out = tmp_path / "mlp.nir", tmp_path / "x.npz", tmp_path / "mlp.npz"
    write_nir(model, _mlp_graph())
    rng = np.random.default_rng(1)
    np.savez(inputs, x=rng.integers(0, 256, (8, 20)).astype(np.uint8), y=rng.integers(0, 4, 8))
    code, stdout, err = run(["workload", "import", str(model), "--inputs", str(inputs), "-o", str(out),
                             "--timesteps", "4"], capsys)
    assert code == 0, err
    assert "top-1" in stdout
    wl = read_workload(out)
    assert wl.input_shape == (20, 1, 1) and wl.layers[0]["type"] == "flatten"
    assert wl.layers[1]["inputs"] == [wl.layers[0]["name"]]
    code, stdout, err = run(["run", ARCH, str(out), "--images", "4"], capsys)
    assert code == 0, err
    assert "4 images" in stdout and "nan" not in stdout.lower() and "inf" not in stdout.lower()
    # and its export imports back (a Flatten of the image Input)
    back = tmp_path / "back.nir"
    code, _, err = run(["workload", "export", str(out), "--nir", str(back)], capsys)
    assert code == 0, err
    code, _, err = run(["workload", "import", str(back), "--inputs", str(out), "-o", str(tmp_path / "b.npz")], capsys)
    assert code == 0, err


@pytest.mark.parametrize(("x", "y", "needle"), [
    (np.zeros((4, 2, 8, 8), np.uint8), None, "--inputs: x has per-image shape [2, 8, 8], the graph's Input"),
    (np.zeros((4, 20), np.uint8), np.array([0, 1, 2, 9]), "--inputs: y holds labels 0..9"),
    (np.zeros((4, 20), np.uint8), np.array([0.0, 1.5, 2.0, 1.0]), "y: has shape [4] and dtype float64 for 4 inputs"),
    (np.zeros((0, 20), np.uint8), None, "x: holds no inputs"),
])
def test_bad_flat_inputs_are_one_line(tmp_path, capsys, x, y, needle):
    model, inputs = tmp_path / "mlp.nir", tmp_path / "x.npz"
    write_nir(model, _mlp_graph())
    np.savez(inputs, **({"x": x} if y is None else {"x": x, "y": y}))
    code, _, err = run(["workload", "import", str(model), "--inputs", str(inputs), "-o", str(tmp_path / "o.npz"),
                        "--timesteps", "4"], capsys)
    line = one_line_error(code, err)
    assert needle in line, line
    assert not (tmp_path / "o.npz").exists()


# ------------------------------------------------------------------------------------------
# an output path that is one of the command's inputs is refused before any work
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("args", [
    ["run", "{arch}", "{wl}", "--images", "1", "--json", "{wl}"],
    ["run", "{arch}", "{wl}", "--images", "1", "--json", "{arch}"],
    ["bench", "{wl}", "--images", "1", "--json", "{tmp}/./w.npz"],
    ["workload", "info", "{wl}", "--json", "{wl}"],
    ["workload", "stats", "{wl}", "-o", "{wl}", "--images", "1"],
    ["evaluate", "{wl}", "--json", "{wl}"],
    ["compare", "{arch}", "atsn16x16", "{wl}", "-o", "{tmp}/out", "--json", "{wl}"],
    ["workload", "export", "{wl}", "--nir", "{wl}"],
    ["workload", "export", "{wl}", "--nir", "{tmp}/link.nir"],  # a link to the input
])
def test_an_output_that_is_an_input_is_refused(tmp_path, capsys, args):
    wl, arch = tmp_path / "w.npz", tmp_path / "a.yaml"
    wl.write_bytes(Path(WL).read_bytes())
    arch.write_text(Path(ARCH).read_text())
    (tmp_path / "link.nir").symlink_to(wl)
    before = wl.read_bytes(), arch.read_text()
    code, _, err = run([a.format(wl=wl, arch=arch, tmp=tmp_path) for a in args], capsys)
    assert "writing it would destroy that input" in one_line_error(code, err)
    assert (wl.read_bytes(), arch.read_text()) == before


@pytest.mark.parametrize("args", [
    ["run", "{arch}", "{wl}", "--images", "1", "--json", "{tech}"],
    ["bench", "{wl}", "--arch", "{arch}", "--images", "1", "--json", "{tmp}/./t.yaml"],
    ["verify", "{arch}", "--random", "1", "--json", "{tech}"],
    ["compare", "{arch}", "atsn16x16", "{wl}", "--images", "1", "-o", "{tmp}/out", "--json", "{tech}"],
    ["run", "{arch}", "{wl}", "--images", "1", "--set", "technology=45nm", "--json", "{shipped}"],
])
def test_an_output_that_is_the_technology_table_is_refused(tmp_path, capsys, args):
    """The architecture's technology table is an input too: `--json` naming it replaced the user's table (or the
    package's own 45nm.yaml) with the run's JSON, silently, and the next run failed on it."""
    tech, arch = tmp_path / "t.yaml", tmp_path / "a.yaml"
    tech.write_text((TECH_DIR / "28nm.yaml").read_text())
    arch.write_text(Path(ARCH).read_text().replace("technology: 28nm", "technology: t.yaml")
                    .replace("name: atsn16x16", "name: mine"))
    shipped = TECH_DIR / "45nm.yaml"
    before = tech.read_text(), shipped.read_text()
    try:
        code, _, err = run([a.format(wl=WL, arch=arch, tech=tech, tmp=tmp_path, shipped=shipped) for a in args],
                           capsys)
        after = tech.read_text(), shipped.read_text()
    finally:  # a regression must not leave the package's own table destroyed for the rest of the suite (restored
        # only then: rewriting it every run touched the checkout, and would fail on a read-only one)
        if shipped.read_text() != before[1]:
            shipped.write_text(before[1])
    assert "writing it would destroy that input" in one_line_error(code, err)
    assert after == before
    assert not (tmp_path / "out").exists()


def test_evaluate_refuses_dataset_options_without_a_dataset(capsys):
    code, _, err = run(["evaluate", WL, "--data-dir", "/tmp"], capsys)
    assert "--data-dir/--image-size: apply only to a --dataset" in one_line_error(code, err)


def test_a_network_file_mistake_names_the_network_file(tmp_path, capsys):
    """The direct-input rule is checked on the built workload; the error names the YAML it came from."""
    net = tmp_path / "poolpx.yaml"
    net.write_text("name: poolpx\ninput_shape: [1, 8, 8]\nnum_classes: 4\nlayers:\n"
                   "  - {name: pool1, type: maxpool, kernel: 2}\n  - {name: fc, type: flatten}\n"
                   "  - {name: out, type: output}\n")
    code, _, err = run(["workload", "build", "--network", str(net), "--rate", "0.1", "--timesteps", "2",
                        "-o", str(tmp_path / "w.npz")], capsys)
    line = one_line_error(code, err)
    assert line.startswith(f"satasim: error: {net}: layers[0] (pool1).inputs: maxpool layer 'pool1'")
    assert not (tmp_path / "w.npz").exists()


def test_a_file_output_on_standard_output_keeps_the_text_off_it(tmp_path):
    """`workload rates ... -o - > table.yaml` ended the table with 'wrote -: ...', which build then refused."""
    import subprocess
    import sys

    table = tmp_path / "t.yaml"
    with open(table, "wb") as handle:
        done = subprocess.run([sys.executable, "-m", "satasim_atsn", "workload", "rates",
                               str(ROOT / "workloads" / "vgg16w025_cifar10_atsn.npz"), "--network", "vgg16",
                               "--dataset", "cifar10", "--images", "2", "-o", "-"], stdout=handle,
                              stderr=subprocess.PIPE, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "wrote -:" in done.stderr and "wrote" not in table.read_text()
    assert load_rate_spec(table)["network"] == "vgg16"
    from satasim_atsn.cli import _json_on_stdout

    # `-o-` (the value attached, as click reads it) appended the text to a binary workload on standard output
    assert _json_on_stdout(["workload", "build", "--network", "n.yaml", "-o-"])
    assert _json_on_stdout(["run", "a", "w", "--json=-"]) and not _json_on_stdout(["run", "a", "w", "-ox"])


@pytest.mark.parametrize(("argv", "needle"), [
    (["train", "--dataset", "synthetic", "--epochs", "1", "-o", "-"], "-: -o: names standard output"),
    (["run", ARCH, WL, "--images", "2", "--csv", "-"], "-: --csv: names standard output (or a descriptor), which "
     "cannot hold a directory"),
])
def test_standard_output_where_files_or_a_directory_go_is_refused(tmp_path, capsys, monkeypatch, argv, needle):
    monkeypatch.chdir(tmp_path)
    code, _, err = run(argv, capsys)
    assert needle in one_line_error(code, err)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("variable", "value", "needle"), [
    ("NUMBA_THREADING_LAYER", "bogus", "NUMBA_THREADING_LAYER: is 'bogus', not one of numba's threading layers"),
])
def test_an_environment_numba_refuses_is_one_line(capsys, monkeypatch, variable, value, needle):
    monkeypatch.setenv(variable, value)
    code, _, err = run(["run", ARCH, WL, "--images", "2", "-q"], capsys)
    assert needle in one_line_error(code, err)


def test_a_bad_matplotlib_backend_in_the_environment_is_no_traceback(tmp_path):
    """MPLBACKEND=nonsense failed matplotlib's import in a ValueError traceback: satasim only writes files (Agg)."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, MPLBACKEND="nonsense")
    done = subprocess.run([sys.executable, "-m", "satasim_atsn", "compare", ARCH, WL, "--images", "2", "-o",
                           str(tmp_path / "o"), "-q"], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "o" / "metrics.png").is_file()


def test_a_group_without_a_command_prints_its_help(capsys):
    code, out, err = run([], capsys)
    assert code == 2 and err.startswith("Usage: satasim [OPTIONS] COMMAND") and "\n  run " in err
    code, out, err = run(["workload"], capsys)
    assert code == 2 and err.startswith("Usage: satasim workload [OPTIONS] COMMAND")


def test_a_group_without_a_command_is_exit_2_under_click_8_1_too(capsys, monkeypatch):
    """setup.cfg admits click 8.1, whose groups printed their help on stdout and exited 0 when called without a
    command (click >= 8.2 raises NoArgsIsHelpError): with click's group parsing made 8.1's, `satasim` and
    `satasim workload` still give the help on stderr and exit code 2."""
    import click

    click_parse_args = click.Group.parse_args

    def parse_args_of_click_8_1(self, ctx, args):
        if not args and self.no_args_is_help and not ctx.resilient_parsing:
            click.echo(ctx.get_help(), color=ctx.color)
            ctx.exit()
        return click_parse_args(self, ctx, args)

    monkeypatch.setattr(click.Group, "parse_args", parse_args_of_click_8_1)
    for argv, usage in (([], "Usage: satasim [OPTIONS] COMMAND"), (["workload"], "Usage: satasim workload [OPTIONS]")):
        code, out, err = run(argv, capsys)
        assert (code, out) == (2, "") and err.startswith(usage), (argv, code, out[:80], err[:80])
    code, out, err = run(["workload", "--help"], capsys)  # asked for: on stdout, exit 0, as before
    assert code == 0 and out.startswith("Usage: satasim workload [OPTIONS] COMMAND") and err == ""


@pytest.mark.parametrize("kind", ["arch", "tech", "study", "network"])
def test_a_tab_indented_line_is_named_as_a_tab(tmp_path, capsys, kind):
    """A tab where YAML wants spaces was told "fix the syntax (is the file truncated?)": the fix now names the tab
    and its line, in every YAML the tool reads; a truncated file keeps its own fix."""
    arch_text = Path(ARCH).read_text()
    if kind == "arch":
        (tmp_path / "a.yaml").write_text(arch_text.replace("\n  input_spike_buffer_bytes",
                                                           "\n\tinput_spike_buffer_bytes"))
        argv = ["run", str(tmp_path / "a.yaml"), WL, "--images", "1"]
    elif kind == "tech":
        (tmp_path / "t.yaml").write_text((TECH_DIR / "28nm.yaml").read_text().replace("\n  add_8b_energy_pJ:",
                                                                                       "\n\tadd_8b_energy_pJ:"))
        (tmp_path / "a.yaml").write_text(arch_text.replace("technology: 28nm", "technology: t.yaml"))
        argv = ["run", str(tmp_path / "a.yaml"), WL, "--images", "1"]
    elif kind == "study":
        (tmp_path / "s.yaml").write_text((ROOT / "studies" / "dram_energy.yaml").read_text()
                                         .replace("\n  images_per_batch", "\n\timages_per_batch"))
        argv = ["sweep", str(tmp_path / "s.yaml"), "-o", str(tmp_path / "out")]
    else:
        (tmp_path / "n.yaml").write_text((ROOT / "examples" / "my_net.yaml").read_text()
                                         .replace("\n  - {name: pool1", "\n\t- {name: pool1"))
        argv = ["workload", "build", "--network", str(tmp_path / "n.yaml"), "--rate", "0.1", "--timesteps", "2",
                "-o", str(tmp_path / "n.npz")]
    code, _, err = run(argv, capsys)
    line = one_line_error(code, err)
    assert re.search(r"replace the tab on line \d+ with spaces \(YAML indents with spaces only\)$", line), line
    assert "truncated" not in line and not (tmp_path / "out").exists() and not (tmp_path / "n.npz").exists()


def test_a_truncated_architecture_keeps_its_fix(tmp_path, capsys):
    (tmp_path / "a.yaml").write_text(Path(ARCH).read_text()[:700] + "\n  x: [1,")
    code, _, err = run(["run", str(tmp_path / "a.yaml"), WL, "--images", "1"], capsys)
    assert "not valid YAML" in one_line_error(code, err) and "is the file truncated?" in err


@pytest.mark.parametrize("where", ["arch", "workload", "technology"])
def test_a_path_too_long_for_the_file_system_is_one_line(where, tmp_path, capsys):
    """A 300-character file name (no file system takes a name over 255 bytes) in any input is refused in one line
    naming it, exit 2; Path.exists and open raised OSError(ENAMETOOLONG), a traceback."""
    long_name = str(tmp_path / ("a" * 300))
    argv = {"arch": ["run", long_name + ".yaml", WL],
            "workload": ["run", ARCH, long_name + ".npz"],
            "technology": ["run", ARCH, WL, "--set", f"technology={long_name}.yaml"]}[where]
    code, out, err = run(argv + ["--images", "1", "-q"], capsys)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("satasim: error:")
    assert "a" * 300 in err and "shorter" in err
