"""Fuzzing: generated bad inputs must end in the project's own error, never a traceback.

Every case runs a real command through click's CliRunner in standalone mode (as the installed
``satasim`` runs it) and must give exit code 2, exactly one line on stderr, no traceback and no
output file (``--json``, ``-o``) left behind. Families: mutated architecture, technology, study and
rate-table YAML (seeded by the shipped files), corrupted workload .npz files (seeded by shipped and
tiny generated workloads) and absurd command-line values. Runs are derandomised, so the cases are
the same on every machine; ``test_total_generated_cases`` prints how many were generated.
"""

from __future__ import annotations

import io
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import yaml
from cli_helpers import cli_runner
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from satasim_atsn.cli import cli
from satasim_atsn.hw.arch_fields import ADC_FIELDS, DRAM_UNITS, REQUIRED, SCHEMA
from satasim_atsn.hw.exit_units import EXIT_UNITS
from satasim_atsn.workload.format import _npz_bytes, write_workload
from satasim_atsn.workload.synthetic import random_workload

ROOT = Path(__file__).resolve().parents[1]
ARCHS = sorted((ROOT / "archs").glob("*.yaml"))
STUDIES = sorted((ROOT / "studies").glob("*.yaml"))
RATES = sorted((ROOT / "workloads" / "rates").glob("*.yaml"))
TECH = ROOT / "satasim_atsn" / "data" / "tech" / "28nm.yaml"
SMALL = sorted((ROOT / "workloads").glob("vgg_small_fmnist_*.npz"))
CASES: Counter = Counter()
RUNNER = cli_runner()


def fuzz_settings(examples: int):
    """Reproducible, CI-stable hypothesis settings: derandomised, no example database, no deadline."""
    return settings(max_examples=examples, derandomize=True, database=None, deadline=None,
                    phases=(Phase.explicit, Phase.generate), suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def scratch():
    """A directory of shared inputs: a tiny workload (direct images) and one of spike frames."""
    with tempfile.TemporaryDirectory(prefix="satasim-fuzz-") as tmp:
        base = Path(tmp)
        write_workload(base / "tiny.npz", random_workload(1, images=3, timesteps=2, encoding="direct"))
        write_workload(base / "frames.npz", random_workload(2, images=3, timesteps=3, encoding="spike_frames"))
        yield base


def expect_user_error(family: str, args: list[str], outputs: list[Path] = ()) -> str:
    """Run ``satasim ARGS`` in-process; assert the one-line user error and no leftovers."""
    CASES[family] += 1
    result = RUNNER.invoke(cli, args, prog_name="satasim")
    err = result.stderr
    context = f"{family}: satasim {' '.join(map(str, args))}\nstdout={result.stdout!r}\nstderr={err!r}"
    assert result.exc_info is None or result.exc_info[0] is SystemExit, \
        context + "\n" + "".join(__import__("traceback").format_exception(*result.exc_info))
    assert result.exit_code == 2, context
    assert err.count("\n") == 1 and err.startswith("satasim: error: ") and "Traceback" not in err, context
    for out in outputs:
        assert not Path(out).exists(), f"{context}\nleft {out}"
        leftovers = [p.name for p in Path(out).parent.glob(f".{Path(out).name}.*")] if Path(out).parent.is_dir() else []
        assert not leftovers, f"{context}\nleft temporary files {leftovers}"
    return err


# ------------------------------------------------------------------------------------------
# YAML mutations
# ------------------------------------------------------------------------------------------
def _leaves(tree, prefix=()):
    """(path, value) of every leaf of a nested mapping."""
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            yield from _leaves(value, prefix + (key,))
        else:
            yield prefix + (key,), value


def _set(tree, path, value):
    node = tree
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value


def _delete(tree, path):
    node = tree
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]


def _deep(depth: int, leaf=1):
    value = leaf
    for _ in range(depth):
        value = {"a": value}
    return value


NOT_A_NUMBER = ["abc", "128 KB", "500MHz", "1e3 bytes", "12_B", [1, 2], {"value": 1}, True, "", "0x"]
NON_FINITE = [math.nan, math.inf, -math.inf, ".nan", "inf", "-inf"]
NEGATIVE = [-1, -1e9, -0.5, "-3"]
HUGE = [10**30, 1e300, 2**64, "1e40"]
NOT_TEXT = [[1], {"a": 1}, 17, True, "", "   "]
UNKNOWN_KEYS = ["bogus_key", "clockhz", "Rows", "pe ", "dataflows", "ünïcode", "1"]


def _text_mutation(text: bytes, choice: int, depth: int) -> bytes:
    """Whole-document damage that no loader may accept."""
    if choice == 0:  # non-UTF-8 bytes inside a value
        cut = text.find(b"\n", len(text) // 2)
        return text[:cut] + b" \xff\xfe\xc3\x28" + text[cut:]
    if choice == 1:  # not a mapping
        return [b"- a\n- b\n", b"42\n", b"just text\n", b"", b"~\n", b"[1, 2, 3]\n", b"!!binary AAAA\n"][depth % 7]
    if choice == 2:  # very deep nesting
        return b"[" * (200 + 97 * depth) + b"]" * (200 + 97 * depth) + b"\n"
    if choice == 3:  # an alias bomb ("billion laughs") as the whole document's only key
        lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
        for i in range(1, 9):
            lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
        return ("\n".join(lines) + "\n").encode()
    if choice == 4:  # a syntax error
        return text + b"\n  bad: [unclosed\n"
    if choice == 5:  # a tab indentation and a duplicate anchor reference to nothing
        return text + b"\nextra: *nowhere\n"
    return text[: max(1, len(text) // (depth + 2))] + b"\n: : :\n"


def _arch_field_specs():
    """(path, spec) of every schema leaf."""
    def walk(node, prefix):
        for key, spec in node.items():
            if isinstance(spec, dict):
                yield from walk(spec, prefix + (key,))
            else:
                yield prefix + (key,), spec
    return list(walk(SCHEMA, ()))


ARCH_FIELDS = _arch_field_specs()


def _bad_arch_value(spec, draw_index: int, depth: int):
    """A value that the field's schema must refuse."""
    kind, _, bounds = spec
    if kind in ("int", "float"):
        pools = [NOT_A_NUMBER, NON_FINITE, NEGATIVE, HUGE, [_deep(depth + 1)]]
        if bounds and bounds[0] is not None and bounds[0] >= 1:
            pools.append([0, 0.0, "0"])
        if kind == "int":
            pools.append([1.5, "2.5"])
        pool = pools[draw_index % len(pools)]
        return pool[(draw_index // len(pools)) % len(pool)]
    if kind == "str":
        return NOT_TEXT[draw_index % len(NOT_TEXT)]
    return [f"{kind[0]}_typo", kind[0].upper(), 3, [kind[0]], {"kind": kind[0]}, "",
            _deep(depth + 1)][draw_index % 7]


@st.composite
def arch_cases(draw):
    """A mutated architecture: (file bytes, extra CLI args, note)."""
    seed = draw(st.sampled_from(ARCHS))
    raw = yaml.safe_load(seed.read_text())
    raw["technology"] = str(TECH)
    op = draw(st.integers(0, 5))
    index = draw(st.integers(0, 10_000))
    depth = draw(st.integers(0, 60))
    if op == 0:  # a bad value in one field (wrong type, unit, sign, size, NaN, nesting)
        present = [(p, s) for p, s in ARCH_FIELDS if _has(raw, p)]
        path, spec = present[index % len(present)]
        if path == ("technology",):
            value = NOT_TEXT[index % len(NOT_TEXT)]
        else:
            value = _bad_arch_value(spec, draw(st.integers(0, 200)), depth)
        _set(raw, path, value)
        note = f"{'.'.join(path)}={value!r}"[:200]
    elif op == 1:  # a required field or section missing
        required = [p for p, s in ARCH_FIELDS if s[1] is REQUIRED and _has(raw, p)]
        required += [(k,) for k, s in SCHEMA.items() if isinstance(s, dict)]
        # a DRAM rate is required in one of its two units; the shipped files give the per-cycle one (the exit
        # unit's kind fields all have defaults: deleting one is no error)
        required += [("dram", f) for f in DRAM_UNITS if _has(raw, ("dram", f))]
        if raw["pe"].get("accumulation") == "analog":
            required += [("pe", f) for f in ADC_FIELDS]
        path = required[index % len(required)]
        _delete(raw, path)
        note = f"missing {'.'.join(path)}"
    elif op == 2:  # an unknown key at some level
        sections = [()] + [(k,) for k, s in SCHEMA.items() if isinstance(s, dict)] + [
            ("global_buffers", b) for b in ("weight", "input", "output")]
        where = sections[index % len(sections)]
        key = draw(st.sampled_from(UNKNOWN_KEYS))
        node = raw
        for part in where:
            node = node[part]
        node[key] = draw(st.sampled_from([1, "x", _deep(depth)]))
        note = f"unknown {'.'.join(where + (key,))}"
    elif op == 3:  # a section replaced by a scalar / list / nothing
        section = [k for k, s in SCHEMA.items() if isinstance(s, dict)][index % 7 if index % 7 < 6 else 0]
        raw[section] = draw(st.sampled_from([None, 3, "pe", [1, 2], [{"rows": 16}]]))
        note = f"{section} not a mapping"
    elif op == 4:  # a field that belongs to another exit-unit kind or to analog PEs
        kind = raw["exit_unit"]["kind"]
        other = [f for k, unit in EXIT_UNITS.items() if k != kind for f in unit.fields]
        if raw["pe"].get("accumulation", "digital") == "digital" and index % 3 == 0:
            raw["pe"]["adc_bits"] = 8
            note = "adc_bits on digital PEs"
        else:
            field = other[index % len(other)]
            raw["exit_unit"][field] = 0.5 if field in ("cl_init", "tau_cl", "theta") else 64
            note = f"exit_unit.{field} on kind {kind}"
    else:  # whole-document damage
        text = yaml.safe_dump(raw, sort_keys=False).encode()
        return _text_mutation(text, index % 7, depth), f"text damage {index % 7}"
    return yaml.safe_dump(raw, sort_keys=False, allow_unicode=True).encode(), note


def _has(tree, path) -> bool:
    node = tree
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return False
        node = node[key]
    return True


@fuzz_settings(260)
@given(case=arch_cases(), command=st.sampled_from(["run", "bench", "compare"]))
def test_fuzz_architecture_yaml(scratch, case, command):
    data, note = case
    with tempfile.TemporaryDirectory(dir=scratch) as tmp:
        arch, out = Path(tmp) / "arch.yaml", Path(tmp) / "out.json"
        arch.write_bytes(data)
        wl = str(scratch / "tiny.npz")
        args = {"run": ["run", str(arch), wl, "--images", "1", "--json", str(out)],
                "bench": ["bench", wl, "--arch", str(arch), "--images", "1", "--json", str(out)],
                "compare": ["compare", "--no-plots", str(ARCHS[0]), str(arch), wl, "--images", "1", "-o",
                            str(out.with_suffix("")),
                            "--json", str(out), "--jobs", "1", "--quiet"]}[command]
        expect_user_error("architecture YAML", args, [out, out.with_suffix("")])


@st.composite
def tech_cases(draw):
    """A mutated technology table (the architecture points at it by path)."""
    raw = yaml.safe_load(TECH.read_text())
    index = draw(st.integers(0, 10_000))
    names = sorted(raw["entries"])
    entry = names[index % len(names)]
    op = draw(st.integers(0, 6))
    if op == 0:
        raw["entries"][entry]["value"] = draw(st.sampled_from(NON_FINITE + NEGATIVE + ["12 pJ", [1], None]))
    elif op == 1:
        del raw["entries"][entry][draw(st.sampled_from(["value", "source", "node_nm", "scaling"]))]
    elif op == 2:
        raw["entries"][entry + "_x" if index % 2 else "energy_of_a_thing"] = raw["entries"][entry]
        if index % 2:  # a key without a unit suffix
            raw["entries"]["no_unit_here"] = raw["entries"].pop(entry + "_x")
    elif op == 3:
        key = draw(st.sampled_from(["format", "version", "node_nm", "entries"]))
        # 2 is a wrong format or version, but `node_nm: 2` is a valid table (a 2 nm node): 0 there
        raw[key] = draw(st.sampled_from([None, "satasim-tek", 0 if key == "node_nm" else 2, -28, [], {}, math.nan]))
    elif op == 4:
        raw["entries"][entry][draw(st.sampled_from(["unit", "valu", "notes"]))] = 1
    elif op == 5:
        raw["entries"][entry]["node_nm"] = draw(st.sampled_from([0, -45, "45nm", None, True]))
    else:
        return _text_mutation(yaml.safe_dump(raw).encode(), index % 7, index % 50)
    return yaml.safe_dump(raw, sort_keys=False).encode()


@fuzz_settings(80)
@given(data=tech_cases())
def test_fuzz_technology_yaml(scratch, data):
    with tempfile.TemporaryDirectory(dir=scratch) as tmp:
        tech, arch, out = Path(tmp) / "tech.yaml", Path(tmp) / "arch.yaml", Path(tmp) / "out.json"
        tech.write_bytes(data)
        raw = yaml.safe_load(ARCHS[0].read_text())
        raw["technology"] = "tech.yaml"
        arch.write_text(yaml.safe_dump(raw))
        expect_user_error("technology YAML", ["run", str(arch), str(scratch / "tiny.npz"), "--json", str(out)], [out])


# ------------------------------------------------------------------------------------------
# studies
# ------------------------------------------------------------------------------------------
def _study_seed(path: Path, scratch: Path) -> dict:
    raw = yaml.safe_load(path.read_text())
    if raw.get("arch"):
        raw["arch"] = str((path.parent / raw["arch"]).resolve())
    if isinstance(raw.get("vary"), dict) and "arch" in raw["vary"]:  # several architectures (vary.arch)
        raw["vary"]["arch"] = [str((path.parent / a).resolve()) for a in raw["vary"]["arch"]]
    raw["workload"] = str(scratch / "tiny.npz")
    raw["images"] = 2
    raw.pop("set", None)
    if raw.get("mode", "engine") == "functional":
        raw["metrics"] = [m for m in raw["metrics"] if m != "complexity"] or ["accuracy"]
    return raw


@st.composite
def study_cases(draw, scratch: Path):
    raw = _study_seed(draw(st.sampled_from(STUDIES)), scratch)
    functional = raw.get("mode", "engine") == "functional"
    index = draw(st.integers(0, 10_000))
    depth = draw(st.integers(0, 60))
    fields = list(raw["vary"])
    op = draw(st.integers(0, 8))
    if op == 0:  # a varied value the field must refuse
        field = fields[index % len(fields)]
        bad = draw(st.sampled_from(NOT_A_NUMBER[:5] + NON_FINITE[:3] + NEGATIVE[:2] + HUGE[:2] + [0]))
        raw["vary"][field] = [bad] if index % 2 else [raw_first(raw["vary"][field]), bad]
        if functional and field.endswith("kind"):
            raw["vary"][field] = ["magic"]
    elif op == 1:  # a missing required key
        raw.pop(draw(st.sampled_from(["name", "workload", "vary", "metrics"] + (["arch"] if "arch" in raw else []))))
    elif op == 2:  # an unknown key, at the top or as a varied field
        if index % 2:
            raw[draw(st.sampled_from(["varry", "metric", "image", "output"]))] = 1
        else:
            raw["vary"]["pe.no_such_field" if not functional else "exit_unit.cl_int"] = [1]
    elif op == 3:  # wrong types at the top level
        key = draw(st.sampled_from(["name", "mode", "images", "start", "set", "vary", "metrics", "plots"]))
        raw[key] = draw(st.sampled_from([{"a": 1}, [], -4, "many", 10**30, math.nan, _deep(depth)]
                                        if key in ("images", "start") else
                                        [{"a": 1}, 7, "", [[1]], None, _deep(depth + 1)]
                                        if key != "set" else [["x"], "pe.adders", {"a": 1}, [3]]))
        if key in ("plots", "metrics") and raw[key] is None:
            raw[key] = 7
    elif op == 4:  # bad ranges
        field = fields[index % len(fields)]
        raw["vary"][field] = draw(st.sampled_from([
            {"start": 2, "stop": 1, "step": 1}, {"start": 1, "stop": 2}, {"start": 1, "stop": 2, "step": 0},
            {"start": 1, "stop": 2, "step": 1, "factor": 2}, {"start": 0, "stop": 4, "factor": 2},
            {"start": "a", "stop": 2, "step": 1}, {"start": 1, "stop": math.inf, "step": 1},
            {"start": 1, "stop": 10**9, "step": 1}, {"start": 1, "stop": 2, "step": math.nan}, []]))
    elif op == 5:  # metrics and plots that do not exist
        raw["metrics"] = draw(st.sampled_from([["fsp"], ["accuracy", "accuracy"], ["energy_nothing_uJ"], []]))
    elif op == 6:  # paths that lead nowhere, to directories, to bad files
        key = "workload" if functional or index % 2 else "arch"
        raw[key] = draw(st.sampled_from(["nope.npz", str(scratch), str(ROOT / "README.md"), "", 5]))
    elif op == 7:  # too many images for the workload
        raw[draw(st.sampled_from(["images", "start"]))] = draw(st.sampled_from([4, 1000, 10**12]))
    else:
        text = yaml.safe_dump(raw, sort_keys=False).encode()
        return _text_mutation(text, index % 7, depth)
    return yaml.safe_dump(raw, sort_keys=False).encode()


def raw_first(values):
    return values[0] if isinstance(values, list) else values.get("start", 1)


@fuzz_settings(180)
@given(data=st.data())
def test_fuzz_study_yaml(scratch, data):
    content = data.draw(study_cases(scratch))
    with tempfile.TemporaryDirectory(dir=scratch) as tmp:
        study, out = Path(tmp) / "study.yaml", Path(tmp) / "out"
        study.write_bytes(content)
        expect_user_error("study YAML", ["sweep", str(study), "-o", str(out), "--jobs", "1", "--quiet"], [out])


# ------------------------------------------------------------------------------------------
# rate tables
# ------------------------------------------------------------------------------------------
@st.composite
def rate_cases(draw):
    seed = draw(st.sampled_from(RATES))
    raw = yaml.safe_load(seed.read_text())
    index = draw(st.integers(0, 10_000))
    op = draw(st.integers(0, 8))
    dataset = sorted(raw["datasets"])[index % len(raw["datasets"])]
    if op == 0:
        raw["default_rate"] = draw(st.sampled_from(NON_FINITE + NEGATIVE + [1.5, "10%", [0.1, 0.2], None]))
        raw["rates"] = {}
    elif op == 1:
        raw.pop(draw(st.sampled_from(["network", "timesteps", "datasets"])))
    elif op == 2:
        raw[draw(st.sampled_from(["rate", "timestep", "sources2"]))] = 1
    elif op == 3:
        raw["timesteps"] = draw(st.sampled_from([0, -4, 2.5, "four", 10**9, None, math.nan]))
    elif op == 4:
        raw["datasets"][dataset]["exit_mean_timesteps"] = draw(st.sampled_from(
            [{"dtsnn": 9, "atsn": 2}, {"dtsnn": 0.5, "atsn": 2}, {"atsn": 2}, {"dtsnn": "x", "atsn": 2},
             {"dtsnn": math.nan, "atsn": 2}, [], "fast"]))
    elif op == 5:
        raw["datasets"][dataset][draw(st.sampled_from(["seed", "seeds"]))] = draw(
            st.sampled_from([-1, "s", 1.5, [1]]))
    elif op == 6:
        raw["rates"] = draw(st.sampled_from([{"conv99": 0.1}, {"conv1_1": [0.1] * 3}, {"conv1_1": math.inf},
                                             {"conv1_1": [[0.1, 0.2]] * 4}, {"conv1_1": "hot"}, [0.1], 5]))
    elif op == 7:
        raw[draw(st.sampled_from(["num_images", "input_bit_density", "pool_rate_ratio", "network"]))] = draw(
            st.sampled_from([0, -3, 10**30, [0.5] * 7, [2.0] * 8, 0.5, "resnet", math.nan]))
    else:
        return _text_mutation(yaml.safe_dump(raw).encode(), index % 7, index % 40), dataset
    return yaml.safe_dump(raw, sort_keys=False).encode(), dataset


@fuzz_settings(120)
@given(case=rate_cases())
def test_fuzz_rate_tables(scratch, case):
    data, dataset = case
    with tempfile.TemporaryDirectory(dir=scratch) as tmp:
        rates, out = Path(tmp) / "rates.yaml", Path(tmp) / "w.npz"
        rates.write_bytes(data)
        network = "resnet19" if b"resnet19" in data else "vgg16"
        args = ["workload", "build", "--network", network, "--dataset", dataset, "--rates", str(rates), "-o",
                str(out), "--num-images", "2"]
        if b"num_images: 0" in data or b"num_images: -3" in data or b"num_images: 1000000" in data:
            args = args[:-2]
        expect_user_error("rate table YAML", args, [out])


# ------------------------------------------------------------------------------------------
# corrupted workloads
# ------------------------------------------------------------------------------------------
def _arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


@st.composite
def npz_cases(draw, scratch: Path, command: str = "run"):
    """A corrupted workload file (bytes)."""
    seeds = SMALL[:1] + [scratch / "tiny.npz", scratch / "frames.npz", ROOT / "workloads" / "vgg16_cifar10.npz"]
    seed = draw(st.sampled_from(seeds))
    original = seed.read_bytes()
    payload = _arrays(seed)
    meta = json.loads(str(payload["meta"]))
    index = draw(st.integers(0, 10_000))
    keys = sorted(k for k in payload if "/" in k or k in ("x",))
    key = keys[index % len(keys)]
    op = draw(st.integers(0, 10))
    if op == 0:  # truncated
        return original[: draw(st.integers(0, len(original) - 1))]
    if op == 1:  # wrong dtype
        target = draw(st.sampled_from([np.float32, np.int64, np.uint8, np.int16, np.bool_, np.complex64]))
        if payload[key].dtype == target or (key.startswith(("rate/", "exit_hist/")) and target == np.float32):
            target = np.complex64
        payload[key] = payload[key].astype(target)
    elif op == 2:  # wrong shape
        value = payload[key]
        payload[key] = draw(st.sampled_from([value.reshape(-1)[:-1] if value.size > 1 else value.reshape(1, 1, 1),
                                             value[..., None], np.concatenate([value.reshape(-1)] * 2),
                                             value.reshape(-1)[:0]]))
        if payload[key].shape == value.shape:
            payload[key] = value[..., None]
    elif op == 3:  # NaN / inf
        value = payload[key].astype(np.float64)
        value.reshape(-1)[index % max(value.size, 1)] = draw(st.sampled_from([math.nan, math.inf, -math.inf]))
        payload[key] = value
    elif op == 4:  # a missing array
        spiking = {ly["name"] for ly in meta["layers"]  # layers whose bias is required (add's is optional)
                   if (ly["type"] in ("conv", "linear") and ly.get("spiking", True)) or ly["type"] == "output"}
        # exit histograms are data (a file has those of the policies it uses): only the one the
        # ATSN architecture the fuzz runs on needs is required, and `workload info` needs none
        # a max-pool's rate is optional (docs/workload-format.md, format.py: `rate/<maxpool>`)
        pools = {f"rate/{ly['name']}" for ly in meta["layers"] if ly["type"] == "maxpool"}
        required = [k for k in payload if k.split("/")[0] in ("w", "vth", "rate") and k not in pools
                    or k == "exit_hist/atsn" and command != "info"
                    or (k.startswith("b/") and k[2:] in spiking) or k in ("x", "seed", "format", "version", "meta")]
        del payload[required[index % len(required)]]
    elif op == 5:  # packbits width mismatch (spike frames) / image bytes dropped
        if "x" not in payload:
            payload["exit_hist/atsn"] = payload["exit_hist/atsn"][:-1]
        else:
            payload["x"] = payload["x"][..., :-1] if payload["x"].shape[-1] > 1 else payload["x"][..., :0]
    elif op == 6:  # meta that lies about shapes
        lie = draw(st.integers(0, 5))
        layers = meta["layers"]
        layer = layers[index % len(layers)]
        if lie == 0:
            layer["out_shape"] = [int(v) + 1 for v in layer["out_shape"]]
        elif lie == 1:
            layer["in_shape"] = [int(v) * 2 for v in layer["in_shape"]] + [1]
        elif lie == 2:
            meta["input_shape"] = [int(v) + 3 for v in meta["input_shape"]]
        elif lie == 3:
            meta["timesteps"] = int(meta["timesteps"]) + draw(st.sampled_from([1, -10, 10**6]))
        elif lie == 4:
            meta["num_classes"] = int(meta["num_classes"]) + 1
        else:
            layer["inputs"] = ["nowhere"]
        payload["meta"] = np.array(json.dumps(meta, sort_keys=True))
    elif op == 7:  # meta that is not JSON, or not an object, or of the wrong kind
        payload["meta"] = draw(st.sampled_from([np.array("{not json"), np.array("[1, 2]"), np.array(3.5),
                                                np.array(b"\xff\xfe", dtype="S2"), np.array(["{}", "{}"]),
                                                np.array('{"layers": 5}')]))
    elif op == 8:  # wrong version / format
        field = draw(st.sampled_from(["version", "format"]))
        payload[field] = draw(st.sampled_from([np.array(2), np.array(-1), np.array("1"), np.array([1, 1]),
                                               np.array("satasim-workload2"), np.array(1.5), np.array(10**18)]))
    elif op == 9:  # a member that is not an npy array, or an object array
        buffer = io.BytesIO(_npz_bytes(payload))
        with zipfile.ZipFile(buffer, "a") as archive:
            if index % 2:
                archive.writestr("extra.npy", b"\x93NUMPY garbage")
            else:
                member = io.BytesIO()
                np.lib.format.write_array(member, np.array([{"a": 1}], dtype=object), allow_pickle=True)
                archive.writestr("w/evil.npy", member.getvalue())
        return buffer.getvalue()
    else:  # values out of range: labels beyond the classes, thresholds <= 0, histograms that do not sum to 1
        if "y" in payload:
            choice = index % 3
            if choice == 0:
                payload["y"] = payload["y"].copy()
                payload["y"][0] = 255 if payload["y"].dtype.kind == "u" else -1
            elif choice == 1:
                vth = [k for k in payload if k.startswith("vth/")][index % 2 if index % 2 < 1 else 0]
                payload[vth] = np.zeros_like(payload[vth])
            else:
                payload["x"] = payload["x"][:0]
        else:
            payload["exit_hist/dtsnn"] = payload["exit_hist/dtsnn"] * 2
    return _npz_bytes(payload)


@fuzz_settings(300)
@given(data=st.data(), command=st.sampled_from(["info", "run", "evaluate"]))
def test_fuzz_corrupted_workloads(scratch, data, command):
    content = data.draw(npz_cases(scratch, command))
    with tempfile.TemporaryDirectory(dir=scratch) as tmp:
        wl, out = Path(tmp) / "bad.npz", Path(tmp) / "out.json"
        wl.write_bytes(content)
        args = {"info": ["workload", "info", str(wl), "--json", str(out)],
                "run": ["run", str(ARCHS[0]), str(wl), "--images", "1", "--json", str(out), "--quiet"],
                "evaluate": ["evaluate", str(wl), "--json", str(out)]}[command]
        expect_user_error("workload .npz", args, [out])


# ------------------------------------------------------------------------------------------
# absurd command-line values
# ------------------------------------------------------------------------------------------
ABSURD_IMAGES = ["-1", "0", "-99999999999", "99999999999999999999", "4", "1e3", "nan", "ten", "", "3.5"]
ABSURD_START = ["-1", "3", "-99999999999", "99999999999999999999", "1e3", "nan", "ten", "", "3.5"]
BAD_SETS = ["pe.nope=1", "=1", "pe=1", "pe.adders=abc", "pe.adders=-1", "pe.adders=[1]", "pe.adders",
            "..=3", "pe.adders=1e40", "clock_hz=.nan", "array.rows=0", "pe.decay=magic", "pe.adders={a: 1}",
            "pe.adders=: :", "exit_unit.cl_init=2", "global_buffers.weight=5"]


@st.composite
def cli_cases(draw, scratch: Path):
    arch, wl = str(ARCHS[0]), str(scratch / "tiny.npz")
    tmp = Path(draw(st.just("{tmp}")))
    out = str(tmp / "out.json")
    index = draw(st.integers(0, 10_000))
    op = draw(st.integers(0, 9))
    nowhere = ["does/not/exist.yaml", str(scratch), "/dev/null/x", str(ROOT / "README.md"), ""]
    unwritable = ["/proc/satasim.json", str(scratch), "/dev/null/out.json", str(ROOT / "README.md") + "/x.json",
                  str(ROOT / "README.md") + "/sub/out.json"]
    if op == 0:
        option = draw(st.sampled_from(["--images", "--start"]))
        return ["run", arch, wl, option, draw(st.sampled_from(ABSURD_IMAGES if option == "--images" else ABSURD_START)),
                "--json", out]
    if op == 1:
        return ["run", arch, wl, "--images", "1", "--set", draw(st.sampled_from(BAD_SETS)), "--json", out]
    if op == 2:
        return ["run", draw(st.sampled_from(nowhere)), wl, "--json", out] if index % 2 else \
            ["run", arch, draw(st.sampled_from(nowhere)), "--json", out]
    if op == 3:
        return ["run", arch, wl, "--images", "1", "--json", draw(st.sampled_from(unwritable))]
    if op == 4:
        return ["run", arch, wl, "--images", "1", "--csv", draw(st.sampled_from([str(ROOT / "README.md"),
                                                                                 "/proc/csvdir"])), "--json", out]
    if op == 5:
        return ["bench", wl, "--arch", arch, "--images", draw(st.sampled_from(["0", "-5", "x"])), "--json", out]
    if op == 6:
        return ["workload", draw(st.sampled_from(["info", "stats"])), draw(st.sampled_from(nowhere[1:] + [wl])),
                "--json" if index % 3 == 0 else "-o", draw(st.sampled_from(unwritable))] + (
                    ["--images", draw(st.sampled_from(["0", "-1", "x"]))] if index % 3 == 1 else [])
    if op == 7:
        return ["workload", "build", "--network", draw(st.sampled_from(["vgg16", "vgg17"])), "--dataset",
                draw(st.sampled_from(["cifar10", "imagenet"])), "--rates", str(RATES[-1]), "-o", out,
                *draw(st.sampled_from([("--num-images", "0"), ("--num-images", "1.5"), ("--seed", "-1"),
                                       ("--seed", "x"), ("--seed", "1.5")]))]  # "--seed 0" is valid
    if op == 8:
        return ["sweep", str(STUDIES[index % len(STUDIES)]), "-o", str(tmp / "out"),
                draw(st.sampled_from(["--jobs", "-j"])), draw(st.sampled_from(["0", "-2", "x"]))]
    return ["evaluate", draw(st.sampled_from([wl, str(SMALL[0])])), "--json", out,
            draw(st.sampled_from(["--policy", "--images", "--start"])), draw(st.sampled_from(["magic", "-3", "0"]))]


@fuzz_settings(220)
@given(data=st.data())
def test_fuzz_absurd_cli_values(scratch, data):
    template = data.draw(cli_cases(scratch))
    with tempfile.TemporaryDirectory(dir=scratch) as tmp:
        args = [a.replace("{tmp}", tmp) for a in template]
        outputs = [Path(tmp) / "out.json", Path(tmp) / "out"]
        expect_user_error("command-line values", args, outputs)


# ------------------------------------------------------------------------------------------
# a few cases through the real executable, and the count
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", range(4))
def test_real_subprocess_cases(scratch, tmp_path, case):
    bad_arch = tmp_path / "a.yaml"
    bad_arch.write_bytes(b"name: x\nkind: \xff\xfe\n")
    bad_npz = tmp_path / "w.npz"
    bad_npz.write_bytes((scratch / "tiny.npz").read_bytes()[:700])
    out = tmp_path / "out.json"
    args = [["run", str(bad_arch), str(scratch / "tiny.npz"), "--json", str(out)],
            ["workload", "info", str(bad_npz), "--json", str(out)],
            ["run", str(ARCHS[0]), str(scratch / "tiny.npz"), "--images", "-3", "--json", str(out)],
            ["sweep", str(tmp_path), "-o", str(tmp_path / "out"), "--jobs", "0"]][case]
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-m", "satasim_atsn", *args], capture_output=True, text=True, env=env,
                          timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("satasim: error: ") and proc.stdout == ""
    assert not out.exists() and not (tmp_path / "out").exists()
    CASES["real subprocess"] += 1


# ------------------------------------------------------------------------------------------
# regression cases: one per bug the fuzzer found (each was a traceback, a hang or a silent accept)
# ------------------------------------------------------------------------------------------
def _arch_text(**changes) -> str:
    raw = yaml.safe_load(ARCHS[0].read_text())
    raw["technology"] = str(TECH)
    for path, value in changes.items():
        _set(raw, tuple(path.split("__")), value)
    return yaml.safe_dump(raw)


def _fixed_t_arch_text(**changes) -> str:
    raw = yaml.safe_load((ROOT / "archs" / "conventional16x16.yaml").read_text())
    raw["technology"] = str(TECH)
    for path, value in changes.items():
        _set(raw, tuple(path.split("__")), value)
    return yaml.safe_dump(raw)


def _study_text(scratch: Path, **changes) -> str:
    raw = {"name": "r", "mode": "functional", "workload": str(scratch / "tiny.npz"), "images": 2,
           "vary": {"exit_unit.cl_init": [0.5]}, "metrics": ["accuracy"]}
    raw.update(changes)
    return yaml.safe_dump(raw)


def _rates_text(**changes) -> str:
    raw = yaml.safe_load(RATES[-1].read_text())
    for path, value in changes.items():
        _set(raw, tuple(path.split("__")), value)
    return yaml.safe_dump(raw)


def _npz_with(scratch: Path, name: str, change) -> bytes:
    payload = _arrays(scratch / name if not name.startswith("/") else Path(name))
    change(payload)
    return _npz_bytes(payload)


def _set_layer_field(payload: dict, field: str, value) -> None:
    """Set meta.layers[0][field] in a workload payload (a stored layer shape of the wrong type)."""
    meta = json.loads(str(payload["meta"]))
    meta["layers"][0][field] = value
    payload["meta"] = np.array(json.dumps(meta))


REGRESSIONS = {
    # YAML nested thousands deep: PyYAML's recursive composer raised RecursionError (arch, study, rates, tech)
    "deep-arch": ("arch", lambda s: b"[" * 3000 + b"]" * 3000),
    "deep-study": ("study", lambda s: b"a: " + b"[" * 3000 + b"]" * 3000),
    "deep-rates": ("rates", lambda s: b"{a: " * 3000 + b"1" + b"}" * 3000),
    "deep-tech": ("tech", lambda s: b"[" * 3000 + b"]" * 3000),
    # non-UTF-8 bytes: UnicodeDecodeError from the study and technology readers
    "utf8-study": ("study", lambda s: _study_text(s).encode() + b"# \xff\xfe\n"),
    "utf8-tech": ("tech", lambda s: TECH.read_bytes() + b"# \xff\xfe\n"),
    # technology node NaN passed `node <= 0` and broke the JSON writer
    "tech-node-nan": ("tech", lambda s: TECH.read_text().replace("node_nm: 28\n", "node_nm: .nan\n", 1).encode()),
    # huge numbers were accepted (10^30 rows would allocate per PE; 10^400 overflowed math.isfinite)
    "arch-huge-rows": ("arch", lambda s: _arch_text(array__rows=10**30).encode()),
    "arch-int-beyond-float": ("arch", lambda s: _arch_text(pe__adders=10**400).encode()),
    "arch-huge-clock": ("arch", lambda s: _arch_text(clock_hz=1e300).encode()),
    # an alias bomb in a field: the error message's repr() would expand it exponentially
    "arch-alias-bomb": ("arch", lambda s: _arch_text().replace(
        "name: atsn16x16", "name: [&a0 [x, x, x, x, x, x, x, x], "
        + ", ".join(f"&a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)) + "]").encode()),
    # a study whose varied values the architecture refuses ran every point into an error row, then the
    # report crashed (KeyError); now refused before anything runs
    "study-bad-value-functional": ("study", lambda s: _study_text(s, vary={"exit_unit.cl_init": ["abc"]}).encode()),
    "study-bad-value-engine": ("study", lambda s: _study_text(
        s, mode="engine", arch=str(ARCHS[0]), vary={"pe.input_spike_buffer_bytes": [128, -64]},
        metrics=["fps"]).encode()),
    "study-too-many-images": ("study", lambda s: _study_text(s, images=4).encode()),
    # section 12 of docs/microarchitecture.md: an unknown dataflow, layer_major with a deciding exit unit, a batch
    # whose output membranes the exit unit cannot hold, layer_major with a weight buffer smaller than a fold
    "arch-unknown-dataflow": ("arch", lambda s: _arch_text(dataflow="weight_stationary").encode()),
    "arch-layer-major-deciding-exit": ("arch", lambda s: _arch_text(dataflow="layer_major").encode()),
    "arch-batch-beyond-exit-memory": ("arch", lambda s: _arch_text(images_per_batch=4096, batch_refill=True).encode()),
    # layer_major keeps each fold's weights in the PE weight memories: one that cannot hold a neuron's fan-in
    "arch-layer-major-weight-memory": ("arch", lambda s: _fixed_t_arch_text(
        dataflow="layer_major", pe__weight_memory_bytes=1).encode()),
    # ranges with NaN/inf raised ValueError/OverflowError
    "study-range-nan": ("study", lambda s: _study_text(
        s, vary={"exit_unit.cl_init": {"start": 0.1, "stop": 0.5, "step": math.nan}}).encode()),
    "study-range-inf": ("study", lambda s: _study_text(
        s, vary={"exit_unit.cl_init": {"start": 0.1, "stop": math.inf, "step": 0.1}}).encode()),
    # rate tables: `rates: 5` raised TypeError; bad table values hidden by a command-line override
    "rates-not-a-mapping": ("rates", lambda s: _rates_text(rates=5).encode()),
    "rates-bad-num-images-overridden": ("rates", lambda s: _rates_text(num_images="many").encode()),
    "rates-other-dataset-seed": ("rates", lambda s: _rates_text(datasets__cifar100__seed=-1).encode()),
    "rates-huge-pool-ratio": ("rates", lambda s: _rates_text(pool_rate_ratio=10**30).encode()),
    # workloads: a non-spiking conv's bias of the wrong shape crashed the forward; integer rates, a
    # float version 1.5 and integer exit histograms were accepted
    "npz-shortcut-bias-shape": ("npz", lambda s: _npz_with(s, "frames.npz", lambda p: p.update(
        {"b/blk_b": np.zeros(10, np.int32)}))),
    "npz-rate-int": ("npz", lambda s: _npz_with(s, str(ROOT / "workloads" / "vgg16_cifar10.npz"), lambda p: p.update(
        {"rate/conv6": np.zeros(4, np.int64)}))),
    "npz-version-float": ("npz", lambda s: _npz_with(s, "tiny.npz", lambda p: p.update({"version": np.array(1.5)}))),
    "npz-version-vector": ("npz", lambda s: _npz_with(s, "tiny.npz", lambda p: p.update(
        {"version": np.array([1, 1])}))),
    "npz-meta-bytes": ("npz", lambda s: _npz_with(s, "tiny.npz", lambda p: p.update(
        {"meta": np.array(b"{}", dtype="S2")}))),
    # a layer's stored shape that is not a list (null, a number, a boolean) crashed list() in validate_layers
    "npz-in-shape-null": ("npz", lambda s: _npz_with(s, "tiny.npz", lambda p: _set_layer_field(p, "in_shape", None))),
    "npz-in-shape-int": ("npz", lambda s: _npz_with(s, "tiny.npz", lambda p: _set_layer_field(p, "in_shape", 3))),
    "npz-out-shape-float": ("npz", lambda s: _npz_with(s, "tiny.npz", lambda p: _set_layer_field(
        p, "out_shape", 2.5))),
    "npz-out-shape-bool": ("npz", lambda s: _npz_with(s, "tiny.npz", lambda p: _set_layer_field(
        p, "out_shape", True))),
    "npz-in-shape-bools": ("npz", lambda s: _npz_with(s, "tiny.npz", lambda p: _set_layer_field(
        p, "in_shape", [True, True, True]))),
}


@pytest.mark.parametrize("name", sorted(REGRESSIONS))
def test_regressions_found_by_fuzzing(scratch, name):
    kind, make = REGRESSIONS[name]
    with tempfile.TemporaryDirectory(dir=scratch) as tmp:
        base = Path(tmp)
        wl, out = str(scratch / "tiny.npz"), base / "out.json"
        target = base / {"arch": "a.yaml", "study": "s.yaml", "rates": "r.yaml", "tech": "t.yaml",
                         "npz": "w.npz"}[kind]
        target.write_bytes(make(scratch))
        if kind == "tech":
            (base / "a.yaml").write_text(_arch_text(technology="t.yaml"))
        args = {"arch": ["run", str(target), wl, "--json", str(out)],
                "tech": ["run", str(base / "a.yaml"), wl, "--json", str(out)],
                "study": ["sweep", str(target), "-o", str(base / "out"), "--jobs", "1"],
                "rates": ["workload", "build", "--network", "vgg16", "--dataset", "cifar10", "--rates", str(target),
                          "-o", str(out), "--num-images", "2"],
                "npz": ["run", str(ARCHS[0]), str(target), "--images", "1", "--json", str(out)]}[kind]
        expect_user_error("regression", args, [out, base / "out"])


def _arch_named(name: str, **changes) -> str:
    raw = yaml.safe_load((ROOT / "archs" / f"{name}.yaml").read_text())
    raw["technology"] = str(TECH)
    for path, value in changes.items():
        _set(raw, tuple(path.split("__")), value)
    return yaml.safe_dump(raw)


# arrays without an exit tile and networks without an output layer (docs/microarchitecture.md section 11)
ANY_ARRAY = {
    "no-exit-tile-with-at-unit": ("atsn16x16", {"array__exit_unit_tiles": 0}, "tiny.npz",
                                  "array.exit_unit_tiles: 0 leaves no tile for the at unit"),
    "no-exit-tile-with-dt-unit": ("dtsnn16x16", {"array__exit_unit_tiles": 0}, "tiny.npz",
                                  "array.exit_unit_tiles: 0 leaves no tile for the dt unit"),
    "two-exit-tiles": ("conventional16x16", {"array__exit_unit_tiles": 2}, "tiny.npz",
                       "array.exit_unit_tiles: 2 exit units per accelerator are not modelled"),
    "spiking-output-on-at-unit": ("atsn16x16", {}, "spiking_out.npz", "exit_unit.kind: the at exit rule needs an "
                                  "output layer"),
    "spiking-output-on-dt-unit": ("dtsnn16x16", {"array__exit_unit_tiles": 1}, "spiking_out.npz",
                                  "exit_unit.kind: the dt exit rule needs an output layer"),
}


@pytest.mark.parametrize("name", sorted(ANY_ARRAY))
def test_any_array_bad_inputs(scratch, tmp_path, name):
    arch, changes, workload, needle = ANY_ARRAY[name]
    if not (scratch / "spiking_out.npz").exists():
        write_workload(scratch / "spiking_out.npz", random_workload(3, images=2, timesteps=2, output_layer=False))
    target = tmp_path / "a.yaml"
    target.write_text(_arch_named(arch, **changes))
    out = tmp_path / "out.json"
    err = expect_user_error("regression", ["run", str(target), str(scratch / workload), "--images", "1", "--json",
                                           str(out)], [out])
    assert needle in err, err


def test_regression_csv_failure_leaves_no_json(scratch, tmp_path):
    """--csv into a file path failed after --json had been written, leaving a partial output."""
    blocker = tmp_path / "file"
    blocker.write_text("x")
    out = tmp_path / "r.json"
    expect_user_error("regression", ["run", str(ARCHS[0]), str(scratch / "tiny.npz"), "--images", "1", "--json",
                                     str(out), "--csv", str(blocker / "sub")], [out])


def test_total_generated_cases():
    """The families above generated at least 1,000 bad inputs (when run together)."""
    families = {"architecture YAML", "technology YAML", "study YAML", "rate table YAML", "workload .npz",
                "command-line values"}
    if not families <= set(CASES):
        pytest.skip("run the whole module to count the cases")
    generated = sum(CASES[f] for f in families)
    print(f"\nfuzz: {generated} generated bad inputs (" + ", ".join(f"{f} {CASES[f]}" for f in sorted(families))
          + f"), plus {CASES['regression']} regression and {CASES['real subprocess']} subprocess cases")
    assert generated >= 1000


def test_copy_of_seed_files_is_valid(scratch, tmp_path):
    """The seeds themselves are accepted, so every failure above comes from the mutation."""
    raw = yaml.safe_load(ARCHS[0].read_text())
    raw["technology"] = str(TECH)
    arch = tmp_path / "a.yaml"
    arch.write_text(yaml.safe_dump(raw))
    result = RUNNER.invoke(cli, ["run", str(arch), str(scratch / "tiny.npz"), "--images", "1", "--quiet"])
    assert result.exit_code == 0, result.stderr
    shutil.copy(scratch / "tiny.npz", tmp_path / "t.npz")
    assert RUNNER.invoke(cli, ["workload", "info", str(tmp_path / "t.npz")]).exit_code == 0
