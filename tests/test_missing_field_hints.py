"""A missing field's fix is self-contained: an installed package has no docs/, so the hint itself says what the
field holds and gives an example, and that example, written back as the hint shows it, makes the file load."""
from __future__ import annotations

import copy
import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from satasim_atsn.errors import ArchError, StudyError, WorkloadError
from satasim_atsn.hw.arch import load_arch
from satasim_atsn.hw.arch_fields import REQUIRED, SCHEMA
from satasim_atsn.hw.arch_files import ARCH_DIR
from satasim_atsn.study.spec import ENGINE_METRICS_ALL, load_study
from satasim_atsn.workload.network_file import NETWORKS_DIR, load_network

SHIPPED_ARCH = ARCH_DIR / "atsn16x16.yaml"
ROOT = Path(__file__).resolve().parent.parent


def _required_fields(schema: dict, prefix: str = "") -> list[str]:
    """Dotted paths of the schema's fields that have no default."""
    out: list[str] = []
    for key, spec in schema.items():
        if isinstance(spec, dict):
            out += _required_fields(spec, f"{prefix}{key}.")
        elif spec[1] is REQUIRED:
            out.append(prefix + key)
    return out


def _without(raw: dict, path: str) -> tuple[dict, dict]:
    """A deep copy of ``raw`` without the field at ``path``, and the mapping that held it."""
    out = copy.deepcopy(raw)
    *parents, key = path.split(".")
    node = out
    for part in parents:
        node = node[part]
    del node[key]
    return out, node


def _refusal(error_type: type, load, path: Path) -> str:
    with pytest.raises(error_type) as caught:
        load(path)
    return str(caught.value)


REQUIRED_ARCH_FIELDS = _required_fields(SCHEMA)


def test_the_schema_has_required_fields_in_sections_and_at_the_top():
    assert "clock_hz" in REQUIRED_ARCH_FIELDS and "array.rows" in REQUIRED_ARCH_FIELDS


@pytest.mark.parametrize("field", REQUIRED_ARCH_FIELDS)
def test_a_missing_arch_field_names_its_kind_and_a_shipped_example_that_loads(tmp_path, field):
    raw = yaml.safe_load(SHIPPED_ARCH.read_text(encoding="utf-8"))
    broken, holder = _without(raw, field)
    path = tmp_path / "design.yaml"
    path.write_text(yaml.safe_dump(broken), encoding="utf-8")
    message = _refusal(ArchError, load_arch, path)
    assert f"{field}: missing; add it: " in message
    assert "docs/" not in message
    example = re.search(r"has '([^']+)'$", message)
    assert example, message
    holder.update(yaml.safe_load(example.group(1)))  # the example, written back as shown
    path.write_text(yaml.safe_dump(broken), encoding="utf-8")
    assert load_arch(path).to_dict() == load_arch(SHIPPED_ARCH).to_dict()


@pytest.mark.parametrize("field,kind", [("array.rows", "an integer from 1 to 1024"),
                                        ("clock_hz", "a number from 1000 to 1e+10"),
                                        ("kind", "one of atsn, dtsnn, conventional"), ("name", "a one-line text")])
def test_a_missing_arch_field_says_what_it_holds(tmp_path, field, kind):
    broken, _ = _without(yaml.safe_load(SHIPPED_ARCH.read_text(encoding="utf-8")), field)
    path = tmp_path / "design.yaml"
    path.write_text(yaml.safe_dump(broken), encoding="utf-8")
    assert f"add it: {kind}; e.g. the shipped design {SHIPPED_ARCH} has " in _refusal(ArchError, load_arch, path)


@pytest.mark.parametrize("section", [k for k, v in SCHEMA.items() if isinstance(v, dict)])
def test_a_missing_arch_section_lists_its_fields_and_a_design_to_copy_it_from(tmp_path, section):
    broken, _ = _without(yaml.safe_load(SHIPPED_ARCH.read_text(encoding="utf-8")), section)
    path = tmp_path / "design.yaml"
    path.write_text(yaml.safe_dump(broken), encoding="utf-8")
    message = _refusal(ArchError, load_arch, path)
    assert message == (f"{path}: {section}: missing section; add a '{section}:' section with "
                       f"{', '.join(SCHEMA[section])} (copy it from the shipped design {SHIPPED_ARCH})")
    assert section in yaml.safe_load(SHIPPED_ARCH.read_text(encoding="utf-8"))  # the design named has one


def _network_doc() -> dict:
    return yaml.safe_load((NETWORKS_DIR / "vgg16.yaml").read_text(encoding="utf-8"))


def test_a_network_without_an_input_shape_gets_an_example_that_loads(tmp_path):
    doc = _network_doc()
    del doc["input_shape"]
    path = tmp_path / "net.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    message = _refusal(WorkloadError, load_network, path)
    assert "docs/" not in message
    doc.update(yaml.safe_load(re.search(r"e\.g\. (input_shape: \[[^]]+\])", message).group(1)))
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    assert list(load_network(path).input_shape) == [3, 32, 32]


@pytest.mark.parametrize("layers", ["absent", "empty"])
def test_a_network_without_layers_gets_example_layers_that_load(tmp_path, layers):
    doc = _network_doc()
    if layers == "absent":
        del doc["layers"]
    else:
        doc["layers"] = []
    path = tmp_path / "net.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    message = _refusal(WorkloadError, load_network, path)
    assert "docs/" not in message and str(NETWORKS_DIR / "vgg16.yaml") in message
    doc["layers"] = [yaml.safe_load(item) for item in re.findall(r"'- (\{[^}]+\})'", message)]
    assert [ly["type"] for ly in doc["layers"]] == ["conv", "flatten", "output"]
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    assert [ly["name"] for ly in load_network(path).layers] == ["conv1", "flatten", "fc"]


def test_a_network_file_that_is_no_mapping_points_to_a_shipped_network(tmp_path):
    path = tmp_path / "net.yaml"
    path.write_text("- conv\n- fc\n", encoding="utf-8")
    message = _refusal(WorkloadError, load_network, path)
    assert "write 'input_shape:' and 'layers:' keys" in message and (NETWORKS_DIR / "vgg16.yaml").is_file()


def _study(tmp_path: Path) -> tuple[Path, dict]:
    """A study in tmp/studies/ whose workload is the checkout's, reached as ../workloads/ like a shipped study's."""
    (tmp_path / "studies").mkdir()
    (tmp_path / "workloads").symlink_to(ROOT / "workloads")
    doc = {"name": "s", "arch": "atsn16x16", "workload": "../workloads/vgg16_cifar10.npz", "images": 2,
           "vary": {"pe.adders": [1, 2]}, "metrics": ["fps"]}
    return tmp_path / "studies" / "s.yaml", doc


@pytest.mark.parametrize("field", ["name", "workload", "vary", "metrics"])
def test_a_study_missing_a_field_gets_an_example_that_loads(tmp_path, field):
    path, doc = _study(tmp_path)
    del doc[field]
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    message = _refusal(StudyError, load_study, path)
    assert f"{field}: missing; add it: " in message and "docs/" not in message
    example = re.search(rf"e\.g\. '?({field}: .+?)'?$", message).group(1)
    doc.update(yaml.safe_load(example))
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    study = load_study(path)
    assert all(metric in ENGINE_METRICS_ALL for metric in study.metrics)


def test_a_study_that_is_no_mapping_names_the_fields_a_study_has(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("- a\n", encoding="utf-8")
    message = _refusal(StudyError, load_study, path)
    assert "write 'name:', 'arch:', 'workload:', 'vary:' and 'metrics:' lines" in message


def _in_memory(workload_path: str, drop_meta: str | None = None, drop_array: str | None = None):
    from satasim_atsn.workload.format import Workload, read_workload

    source = read_workload(workload_path)
    meta = copy.deepcopy(source.meta)
    meta.pop(drop_meta, None)
    arrays = {k: np.asarray(v) for k, v in source.arrays.items() if k != drop_array}
    return source, Workload(meta, arrays)


@pytest.mark.parametrize("key", ["w/conv1", "b/conv1", "vth/conv1"])
def test_a_missing_layer_array_names_its_dtype_and_shape_and_one_of_them_loads(workload_path, key):
    from satasim_atsn.workload.format import validate

    source, broken = _in_memory(workload_path, drop_array=key)
    with pytest.raises(WorkloadError) as caught:
        validate(broken)
    found = re.search(r"add it: a (\w+) array of shape \(([\d, ]+)\)", str(caught.value))
    assert found and "docs/" not in str(caught.value)
    shape = tuple(int(v) for v in found.group(2).split(",") if v.strip())
    assert (found.group(1), shape) == (source.arrays[key].dtype.name, source.arrays[key].shape)
    broken.arrays[key] = np.ones(shape, dtype=found.group(1))  # an array as described is taken
    assert validate(broken).validated


@pytest.mark.parametrize("key", ["name", "kind", "num_classes", "timesteps", "input_shape"])
def test_a_missing_meta_key_gets_an_example(workload_path, key):
    from satasim_atsn.workload.format import validate

    source, broken = _in_memory(workload_path, drop_meta=key)
    with pytest.raises(WorkloadError, match=rf"meta\.{key}: missing; add it, e\.g\. \"{key}\": ") as caught:
        validate(broken)
    if key in ("num_classes", "timesteps", "input_shape"):  # the example is JSON of the key's type
        value = yaml.safe_load(re.search(rf'"{key}": (\S+(?:, \S+)*?)(?: \(|, or)', str(caught.value)).group(1))
        assert isinstance(value, type(source.meta[key]))
