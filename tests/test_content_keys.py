"""Caches keyed by a file's contents (fileio.content_key), not by its size and modification time alone: a workload
or a table rewritten in place keeping both (``os.utime``, ``cp -p`` of a same-sized file) was served from the cache
of the old one (a study's workload, its full forward, its file digest, a technology table), and its rows were read
from the new bytes by a reader that had checked the old ones."""

from __future__ import annotations

import io
import json
import os

import numpy as np
import pytest

from satasim_atsn.errors import WorkloadError
from satasim_atsn.fileio import content_key
from satasim_atsn.workload.format import read_workload
from satasim_atsn.workload.synthetic import random_workload


def _stored(path, x: np.ndarray, wl) -> None:
    """The workload with inputs ``x``, saved uncompressed (np.savez): another x of the same shape is the same size."""
    buffer = io.BytesIO()
    np.savez(buffer, format=np.array("satasim-workload"), version=np.array(1), meta=np.array(json.dumps(wl.meta)),
             **dict(wl.arrays, x=x))
    path.write_bytes(buffer.getvalue())


def _rewrite_keeping_size_and_time(path, write) -> None:
    """``write(path)`` in place, then the old size (checked) and modification time put back."""
    before = os.stat(path)
    write(path)
    assert os.stat(path).st_size == before.st_size
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert os.stat(path).st_mtime_ns == before.st_mtime_ns


@pytest.fixture
def two_versions(tmp_path):
    """A workload file, and a function rewriting it with other inputs of the same size and time."""
    wl = random_workload(3, images=3, timesteps=2, output_layer=True)
    path = tmp_path / "w.npz"
    x = wl.arrays["x"]
    _stored(path, x, wl)
    other = (x + 1).astype(np.uint8)
    return path, x, other, lambda: _rewrite_keeping_size_and_time(path, lambda p: _stored(p, other, wl))


def test_the_key_changes_with_a_rewrite_keeping_size_and_time(two_versions, tmp_path):
    path, _, _, rewrite = two_versions
    before = content_key(path)
    rewrite()
    assert content_key(path) != before and content_key(path) == content_key(path)
    assert content_key(tmp_path / "missing.npz") == (None,)
    text = tmp_path / "t.yaml"  # no zip: the bytes themselves
    text.write_text("a: 1\n")
    key = content_key(text)
    _rewrite_keeping_size_and_time(text, lambda p: p.write_text("a: 2\n"))
    assert content_key(text) != key


def test_a_study_reads_the_rewritten_workload_again(two_versions):
    from satasim_atsn.study.metrics import read_cached

    path, x, other, rewrite = two_versions
    assert np.array_equal(read_cached(path).inputs(0, 3), x)
    rewrite()
    assert np.array_equal(read_cached(path).inputs(0, 3), other)


def test_a_studys_full_forward_and_file_digest_follow_the_rewrite(two_versions):
    from satasim_atsn.study.functional import full_run
    from satasim_atsn.study.spec_designs import file_digest

    path, _, other, rewrite = two_versions
    digest, run = file_digest(path), full_run(path)
    rewrite()
    assert file_digest(path) != digest
    again = full_run(path)
    assert again is not run and np.array_equal(again.workload.inputs(0, 3), other)


def test_a_reader_of_the_old_file_refuses_the_rewritten_one(two_versions):
    path, _, _, rewrite = two_versions
    wl = read_workload(path)
    rewrite()
    with pytest.raises(WorkloadError, match=r"w\.npz: x: the file changed since it was read"):
        wl.inputs(0, 1)


def test_a_technology_table_rewritten_keeping_size_and_time_is_loaded_again(tmp_path):
    from satasim_atsn.hw.tech import load_tech, resolve_tech_path

    shipped = resolve_tech_path("28nm").read_text(encoding="utf-8")
    assert "value: 0.0153\n" in shipped
    table = tmp_path / "t.yaml"
    table.write_text(shipped, encoding="utf-8")
    first = load_tech(table).value("add_8b_energy_pJ")
    _rewrite_keeping_size_and_time(table, lambda p: p.write_text(shipped.replace("value: 0.0153\n",
                                                                                  "value: 0.0154\n", 1)))
    assert (first, load_tech(table).value("add_8b_energy_pJ")) == (0.0153, 0.0154)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_the_key_of_a_pipe_does_not_open_it(tmp_path):
    """A study given a named pipe (`<(cat w.npz)`) blocked in the cache key's open, before its reader refused it."""
    from satasim_atsn.study.metrics import read_cached

    pipe = tmp_path / "w.npz"
    os.mkfifo(pipe)
    assert content_key(pipe)[-1] is None
    with pytest.raises(WorkloadError, match=r"w\.npz: is a pipe or a device"):
        read_cached(pipe)
