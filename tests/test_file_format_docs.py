"""The file-format pages name what the code reads and writes, key by key, parsed from the code (not a copy of it):
docs/architecture.md's field table against ``hw/arch_fields.py``'s SCHEMA (every field, its default and its lower
bound), and docs/studies.md against a study's ``study.json``, ``MODEL_VERSION``'s list and the metrics Pareto fronts
maximise. The page had left out study.json's `study_file` and `mode`, hardware models 9 and 10, and
`accuracy_hardware` among the maximised metrics."""

from __future__ import annotations

import re
from pathlib import Path

from study_helpers import engine_study

from satasim_atsn.hw import MODEL_VERSION, arch_fields
from satasim_atsn.hw.arch import load_arch
from satasim_atsn.hw.exit_units import EXIT_UNITS
from satasim_atsn.study.spec import MAXIMISE, load_study

ROOT = Path(__file__).resolve().parents[1]


def _schema_fields(node: dict, prefix: str = "") -> dict[str, tuple]:
    out: dict[str, tuple] = {}
    for key, spec in node.items():
        if isinstance(spec, dict):
            out.update(_schema_fields(spec, f"{prefix}{key}."))
        else:
            out[prefix + key] = spec
    return out


def _doc_fields() -> dict[str, list[str]]:
    """docs/architecture.md's 'Fields' table: dotted field -> its cells (field, type, default, meaning). A row may
    name several fields: `a.b`, `c` (c in a's section), `x.{p,q}.r`, `x.*.r` (every global buffer)."""
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    table = text.split("\n## Fields\n", 1)[1].split("\n### ", 1)[0]
    out: dict[str, list[str]] = {}
    for line in table.splitlines():
        if not line.startswith("| `"):
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        previous = None
        for name in re.findall(r"`([^`]+)`", cells[0]):
            if "." not in name and previous is not None:
                name = previous.rsplit(".", 1)[0] + "." + name
            brace = re.fullmatch(r"(.*)\{(.*)\}(.*)", name)
            parts = brace.group(2).split(",") if brace else ["weight", "input", "output"] if "*" in name else [None]
            for part in parts:
                full = name if part is None else (f"{brace.group(1)}{part}{brace.group(3)}" if brace
                                                  else name.replace("*", part))
                out[full] = cells
            previous = name
    return out


def test_the_architecture_fields_table_names_every_schema_field_and_nothing_else():
    code, doc = set(_schema_fields(arch_fields.SCHEMA)), set(_doc_fields())
    assert code - doc == set(), "fields the loader reads but docs/architecture.md does not list"
    assert doc - code == set(), "fields docs/architecture.md lists but the loader refuses"


def test_the_architecture_fields_table_gives_the_loaders_defaults_and_lower_bounds():
    doc = _doc_fields()
    kind_defaults = {f: v for unit in EXIT_UNITS.values() for f, v in unit.defaults.items()}
    for path, (_kind, default, bounds) in _schema_fields(arch_fields.SCHEMA).items():
        type_cell, default_cell = doc[path][1], doc[path][2]
        default = kind_defaults.get(path.rsplit(".", 1)[-1], default)
        if default is arch_fields.REQUIRED:
            assert "required" in default_cell, (path, default_cell)
        elif default is arch_fields.SAME_AS_PE:
            assert "the PE's" in default_cell, (path, default_cell)
        elif default is not None:
            shown = str(default).lower() if isinstance(default, bool) else f"{default:g}" if isinstance(
                default, float) else str(default)
            assert re.search(rf"(?<![\w.]){re.escape(shown)}(?![\w.])", default_cell), (path, shown, default_cell)
        low = re.search(r">= (\d+)\b|^([\d.e]+) ?\.\.|^\((\d+),|^(\d+) or", type_cell)
        if bounds and low:
            written = float(next(g for g in low.groups() if g is not None))
            assert written == float(bounds[0]), (path, type_cell, bounds)


def test_the_studies_page_names_every_key_of_study_json(tmp_path, workload_path):
    study = load_study(engine_study(tmp_path, workload_path, "vary: {pe.adders: [1, 2]}\n"))
    text = (ROOT / "docs" / "studies.md").read_text(encoding="utf-8")
    section = text.split("- `study.json`:", 1)[1].split("\n- `points.csv`", 1)[0]
    missing = [key for key in study.identity() if f"`{key}`" not in section]
    assert missing == [], "study.json keys docs/studies.md does not name"


def test_the_studies_page_lists_every_hardware_model_version():
    listed = re.findall(r"\b(\d+): session (\d+)\b", (ROOT / "satasim_atsn" / "hw" / "__init__.py").read_text())
    assert max(int(v) for v, _ in listed) == MODEL_VERSION
    text = " ".join((ROOT / "docs" / "studies.md").read_text(encoding="utf-8").split())
    missing = [(v, s) for v, s in listed if int(v) > 1 and f"{v} since session {s}'s" not in text]
    assert missing == [], "MODEL_VERSION entries docs/studies.md does not list"


def test_the_studies_page_names_every_metric_a_pareto_front_maximises():
    text = " ".join((ROOT / "docs" / "studies.md").read_text(encoding="utf-8").split())
    sentence = text.split("are maximised, everything else minimised", 1)[0].rsplit("; ", 1)[-1]
    assert [m for m in MAXIMISE if f"`{m}`" not in sentence] == []


def test_the_workload_page_names_every_key_the_reader_accepts():
    """Every key of meta, meta.neuron, meta.quant, meta.exit_policy and each layer type, and the policy names
    exit_policy.default takes (the page gave `default` no allowed values)."""
    from satasim_atsn.workload import schema

    text = (ROOT / "docs" / "workload-format.md").read_text(encoding="utf-8")
    keys = {*schema.META_KEYS, *schema.NEURON_KEYS, *schema.QUANT_KEYS, *schema.LAYER_COMMON_KEYS,
            *schema.EXIT_PARAMETERS, *schema.LAYER_TYPES, *schema.OUTPUT_MODES, *schema.INPUT_ENCODINGS, *schema.KINDS,
            *schema.POLICY_NAMES,
            *(key for fields in schema.LAYER_FIELDS.values() for key in fields)}
    assert sorted(key for key in keys if f"`{key}`" not in text) == []


def test_the_interfaces_pages_architecture_block_loads_as_the_shipped_atsn_design(tmp_path):
    """docs/interfaces.md's YAML block is the shipped ATSN design, loadable as written (it held the ADC and DT-unit
    fields uncommented, which this digital ATSN design refuses), and it names every field of the schema."""
    block = re.search(r"```yaml\n(.*?)```", (ROOT / "docs" / "interfaces.md").read_text(encoding="utf-8"), re.S)
    path = tmp_path / "copied.yaml"
    path.write_text(block.group(1), encoding="utf-8")
    shipped = load_arch(ROOT / "archs" / "atsn16x16.yaml").to_dict()
    assert load_arch(path).to_dict() == shipped
    named = set(re.findall(r"(\w+):", block.group(1)))
    assert sorted(p for p in _schema_fields(arch_fields.SCHEMA) if p.rsplit(".", 1)[-1] not in named) == []


def test_the_networks_page_names_every_key_of_a_network_file_with_its_default():
    """docs/networks.md's layer table gives each type's keys (its default in parentheses); the output layer's
    optional out_features was accepted but not named."""
    from satasim_atsn.workload import network_file as nf

    text = (ROOT / "docs" / "networks.md").read_text(encoding="utf-8")
    rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| `(\w+)` \| (.*?) \|", text, re.M)}
    for kind, keys in nf.LAYER_KEYS.items():
        for key, default in keys.items():
            assert f"`{key}`" in rows[kind], (kind, key, rows[kind])
            if isinstance(default, (int, float)) and not isinstance(default, bool):
                assert f"`{key}` ({default})" in rows[kind], (kind, key, default)
    section = text.split("## Network files", 1)[1].split("\n## ", 1)[0]
    assert [key for key in (*nf.FILE_KEYS, *nf.COMMON_KEYS) if f"{key}:" not in section and f"`{key}`" not in section] \
        == []


def test_the_networks_page_names_every_key_of_a_rate_table():
    """A rate table's keys (workload build --rates) had no list: `datasets`' `exit_histograms` was named nowhere."""
    from satasim_atsn.traces import rate_table
    from satasim_atsn.workload.schema import EXIT_PARAMETERS

    text = (ROOT / "docs" / "networks.md").read_text(encoding="utf-8")
    section = text.split("**The rate table's keys**", 1)[1].split("\n- ", 1)[0]
    keys = (*rate_table.SPEC_KEYS, *rate_table.DATASET_KEYS, *EXIT_PARAMETERS)
    assert [key for key in keys if f"`{key}`" not in section] == []


def test_the_networks_page_names_every_key_of_workload_build_and_info_json(tmp_path, capsys):
    """`workload build --json` and `workload info --json` keys are named where the page lists them (`notes` and the
    whole of info's were not)."""
    import json

    from satasim_atsn.cli import main

    def written(*argv: str) -> dict:
        try:
            main(list(argv))
        except SystemExit as exc:
            assert int(exc.code or 0) == 0, capsys.readouterr().err
        return json.loads(Path(argv[-1]).read_text())

    net = tmp_path / "n.yaml"
    net.write_text("input_shape: [1, 4, 4]\nnum_classes: 3\nlayers:\n  - {name: flat, type: flatten}\n"
                   "  - {name: fc1, type: linear, out_features: 8}\n  - {name: fc, type: output}\n")
    built = tmp_path / "n.npz"
    keys = set(written("workload", "build", "--network", str(net), "--rate", "0.1", "--timesteps", "3",
                       "--exit-mean", "atsn=2", "-o", str(built), "--json", str(tmp_path / "b.json")))
    keys |= set(written("workload", "info", str(built), "--json", str(tmp_path / "i.json")))
    keys |= set(written("workload", "info", str(ROOT / "workloads" / "vgg_small_fmnist_atsn.npz"), "--json",
                        str(tmp_path / "t.json")))
    text = (ROOT / "docs" / "networks.md").read_text(encoding="utf-8")
    section = text.split("take `--json FILE`", 1)[1].split("\n\n", 1)[0]
    assert sorted(key for key in keys if f"`{key}`" not in section) == []


def test_the_pages_name_every_key_of_a_technology_table_and_each_units_bounds():
    """A table of your own: docs/energy.md names the top-level keys, the entry fields and the unit suffixes
    (the format was described nowhere), and docs/architecture.md gives every unit's range (`_exponent` was left
    out)."""
    from satasim_atsn.hw import tech

    energy = (ROOT / "docs" / "energy.md").read_text(encoding="utf-8")
    section = energy.split("## A table of your own", 1)[1].split("\n## ", 1)[0]
    named = [*tech.TOP_FIELDS, *tech.ENTRY_FIELDS, *(f"_{unit}" for unit in tech.UNIT_SUFFIXES)]
    assert sorted(key for key in named if f"`{key}`" not in section) == []
    bounds = " ".join((ROOT / "docs" / "architecture.md").read_text(encoding="utf-8").split("**Bounds on table",
                                                                                             1)[1].split())
    for unit, most in tech.UNIT_MAXIMA.items():
        least = tech.UNIT_MINIMA.get(unit, 0)
        entry = re.search(rf"`_{unit}`[^;]*?: ([\d.e-]+)\.\.([\d.e]+)", bounds)
        assert entry is not None, unit
        assert (float(entry.group(1)), float(entry.group(2))) == (least, most), (unit, entry.group(0))


def test_the_studies_page_names_every_key_of_a_compare_record(workload_path):
    """Each architecture's record in compare's results.json (study.metrics.run_summary): every key is named in the
    compare section or among the engine metrics (energy_<component>_uJ and energy_group_<group>_uJ by pattern)."""
    from satasim_atsn.hw.energy import COMPONENTS, ENERGY_GROUPS
    from satasim_atsn.study.metrics import run_summary

    record = run_summary(str(ROOT / "archs" / "atsn16x16.yaml"), [], str(workload_path), 2)
    text = (ROOT / "docs" / "studies.md").read_text(encoding="utf-8")
    compare = text.split("## `satasim compare", 1)[1].split("\n## ", 1)[0]
    engine = text.split("Engine metrics:", 1)[1].split("\n\n", 1)[0]
    patterned = {f"energy_{c}_uJ" for c in COMPONENTS} | {f"energy_group_{g}_uJ" for g in ENERGY_GROUPS}
    assert all(f"`{c}`" in engine for c in (*COMPONENTS, *ENERGY_GROUPS))
    missing = [key for key in record if key not in patterned and f"`{key}`" not in compare and f"`{key}`" not in engine]
    assert missing == []


def test_every_shipped_report_is_listed_with_its_command():
    """docs/studies.md's table of shipped reports left out four of them (the warm restarts' compares and twins)."""
    text = (ROOT / "docs" / "studies.md").read_text(encoding="utf-8")
    table = text.split("| report | command |", 1)[1].split("\n\n", 1)[0]
    listed = {name for cell in re.findall(r"^\| ([^|]+) \|", table, flags=re.M)
              for name in re.findall(r"`(?:reports/)?([\w.-]+)/`", cell)}
    shipped = {path.name for path in (ROOT / "reports").iterdir() if path.is_dir()}
    assert sorted(shipped - listed) == []
