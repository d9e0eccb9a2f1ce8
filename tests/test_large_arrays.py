"""Arrays of 10^5 PEs and more: the static model's kernels stay exact, and an array whose per-fold coverage matrix
would not fit in memory is refused in one line naming the array (a 1024x1024 array took 14 GB and a minute)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from satasim_atsn.errors import SatasimError
from satasim_atsn.hw.arch import load_arch
from satasim_atsn.hw.kernels import channel_multicast_links, conv_coverage, equal_rows
from satasim_atsn.hw.mapping import build_mapping, multicast_links
from satasim_atsn.workload.format import read_workload

ROOT = Path(__file__).resolve().parents[1]


def _equal_rows_by_bytes(full: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The plain rule: rows keyed by their bytes, classes in order of first appearance."""
    first: dict[bytes, int] = {}
    index = np.array([first.setdefault(row.tobytes(), len(first)) for row in np.ascontiguousarray(full)],
                     dtype=np.int64)
    return full[np.unique(index, return_index=True)[1]], index


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_equal_rows_is_exact_and_keeps_first_appearance(dtype):
    rng = np.random.default_rng(3)
    for trial in range(300):
        n, m = int(rng.integers(1, 50)), int(rng.integers(1, 6))
        full = rng.integers(-2, 3, size=(n, m)).astype(dtype)
        if trial % 2:
            full = full[rng.integers(0, n, size=n)]  # many repeated rows
        reps, index = equal_rows(full)
        want_reps, want_index = _equal_rows_by_bytes(full)
        assert (reps == want_reps).all() and (index == want_index).all()
    # values that differ only in the high 32 bits are different rows
    wide = np.array([[2**40, -1], [2**41, -1], [2**40, -1]], dtype=np.int64)
    assert equal_rows(wide)[1].tolist() == [0, 1, 0]


def test_channel_multicast_links_equal_the_tree_rule():
    """The per-channel walk gives mapping.multicast_links's sum over a PEs x channels holder matrix."""
    rng = np.random.default_rng(5)
    for trial in range(500):
        num_pes, cols = int(rng.integers(1, 40)), int(rng.integers(1, 9))
        sizes = rng.integers(0, 12, size=num_pes)
        if trial % 3 == 0:
            sizes[rng.random(num_pes) < 0.4] = 0  # empty PEs between holders
        start = int(rng.integers(0, 30))
        offsets = np.concatenate([[start], start + np.cumsum(sizes)]).astype(np.int64)
        lo, hi = offsets[:-1], offsets[1:]
        held = hi > lo
        if not held.any():
            continue
        per_channel = int(rng.integers(1, 15))
        first, last = int(lo[held].min()) // per_channel, int(hi[held].max() - 1) // per_channel
        channels = np.arange(first, last + 1)
        holds = held[:, None] & (lo[:, None] < (channels[None, :] + 1) * per_channel) \
            & (hi[:, None] > channels[None, :] * per_channel)
        assert channel_multicast_links(lo, hi, per_channel, first, last, cols) == multicast_links(holds, cols).sum()


def test_conv_coverage_is_narrow_when_it_can_be():
    offsets = np.array([0, 5, 9], dtype=np.int64)
    cov = conv_coverage(offsets, (1, 3, 3), (3, 3), 3, 1, 1)
    assert cov.dtype == np.int32 and cov.sum() == 49  # 9 neurons of a 3x3 map, each a clipped 3x3 window


def test_an_array_too_large_for_the_coverage_matrix_is_refused_naming_it():
    workload = read_workload(ROOT / "workloads" / "vgg16_cifar10.npz")
    arch = load_arch("atsn16x16", ["array.rows=1024", "array.cols=1024"])
    with pytest.raises(SatasimError) as info:
        build_mapping(arch, workload)
    message = str(info.value)
    assert message.startswith("atsn16x16: array: 1024x1024 tiles (1,048,575 PEs) need a coverage matrix")
    assert "layer 'conv1' (1,024 positions)" in message and "use at most" in message and "\n" not in message
    most = int(message.split("use at most ")[1].split(" PEs")[0].replace(",", ""))
    side = int(np.sqrt(most))
    build_mapping(load_arch("atsn16x16", [f"array.rows={side}", f"array.cols={side // 4}"]), workload)


def test_an_input_too_large_for_any_array_says_so_not_zero_pes(tmp_path):
    """A 10^10-position input needs more than the limit on any array: the fix was 'use at most 0 PEs (0x0)'."""
    from satasim_atsn.cli import main

    network = tmp_path / "huge.yaml"
    network.write_text("input_shape: [3, 100000, 100000]\nnum_classes: 10\nlayers:\n"
                       "  - {name: conv1, type: conv, out_channels: 4, kernel: 3, stride: 1000}\n"
                       "  - {name: flat, type: flatten}\n  - {name: fc, type: output}\n", encoding="utf-8")
    workload = tmp_path / "huge.npz"
    with pytest.raises(SystemExit) as done:
        main(["workload", "build", "--network", str(network), "--rate", "0.2", "--timesteps", "2", "--num-images",
              "1", "-o", str(workload)])
    assert done.value.code == 0
    with pytest.raises(SatasimError) as info:
        build_mapping(load_arch("conventional16x16"), read_workload(workload))
    message = str(info.value)
    assert "layer 'conv1' (10,000,000,000 positions)" in message and "0 PEs" not in message
    assert message.endswith("give layer 'conv1' a smaller input (at most 71,582,787 positions, for a 2x2 array): "
                            "no array can simulate this network")
