"""Section 3 (hardware model 10): every output channel's bias and threshold sit beside its int8 weights in the PE
weight memory and are streamed with them; a layer reading only the image streams its thresholds alone at t > 1
(section 5). Counted by hand on a small statistical network, whose file holds no weight, bias or threshold."""

from __future__ import annotations

from pathlib import Path

import pytest

from satasim_atsn.cli import main
from satasim_atsn.errors import MappingError
from satasim_atsn.hw.arch import load_arch
from satasim_atsn.hw.engine import simulate
from satasim_atsn.hw.mapping import build_mapping
from satasim_atsn.hw.reference import derive_mapping, simulate_reference
from satasim_atsn.workload.format import read_workload, write_workload

ROOT = Path(__file__).resolve().parents[1]
CONVENTIONAL = ROOT / "archs" / "conventional16x16.yaml"  # pe.vmem_bits 16, exit_unit.vmem_bits 32

# A direct-encoded [2, 4, 4] image -> conv1 (4 channels, 3x3) -> a residual join of blk_b (3x3) and blk_sc (1x1), both
# non-spiking convs of conv1's spikes -> flatten -> an output layer of 3 classes. By hand, 2 B bias and threshold
# words (pe.vmem_bits 16), a 4 B bias on the exit unit (exit_unit.vmem_bits 32):
#   conv1:   4 channels x (2 x 3 x 3 = 18 weights + 2 + 2) = 88 B; its thresholds alone 4 x 2 = 8 B
#   blk_add: 4 channels x (4 x 3 x 3 + 4 x 1 x 1 = 40 weights + one summed bias 2 + a threshold 2) = 176 B
#   out:     3 classes x (64 weights + a 4 B bias) = 204 B on the exit unit; on the PEs, 3 x (64 + 2) = 198 B
NETWORK = """name: params
input_shape: [2, 4, 4]
num_classes: 3
layers:
  - {name: conv1, type: conv, out_channels: 4, kernel: 3, padding: 1}
  - {name: blk_b, type: conv, out_channels: 4, kernel: 3, padding: 1, spiking: false}
  - {name: blk_sc, type: conv, inputs: [conv1], out_channels: 4, kernel: 1, spiking: false}
  - {name: blk_add, type: add, inputs: [blk_b, blk_sc]}
  - {name: flat, type: flatten}
  - {name: out, type: output, output_mode: membrane}
"""


@pytest.fixture(scope="module")
def workload(tmp_path_factory):
    """The network above as a statistical workload of T = 3, every image running all 3 steps."""
    folder = tmp_path_factory.mktemp("params")
    (folder / "net.yaml").write_text(NETWORK)
    with pytest.raises(SystemExit) as done:
        main(["workload", "build", "--network", str(folder / "net.yaml"), "--rate", "0.2", "--timesteps", "3",
              "-o", str(folder / "wl.npz")])
    assert done.value.code == 0
    wl = read_workload(folder / "wl.npz")
    assert wl.kind == "statistical" and not any(k.split("/")[0] in ("w", "b", "vth") for k in wl.arrays)
    return wl


def _arch(tiles: int, *extra: str):
    """A 2 x 2 array: 3 PEs and the exit tile, or 4 PEs without one."""
    return load_arch(CONVENTIONAL, ["array.rows=2", "array.cols=2", f"array.exit_unit_tiles={tiles}",
                                    "accelerators=1", *extra])


@pytest.mark.parametrize("tiles, out_bytes", [(1, 204), (0, 198)])
def test_every_channel_keeps_its_bias_and_threshold_beside_its_weights(workload, tiles, out_bytes):
    mapping = build_mapping(_arch(tiles), workload)
    groups = {g.name: g for g in mapping.groups}
    assert [g.weight_bytes for g in groups.values()] == [88, 176, out_bytes]
    assert mapping.total_weight_bytes == 88 + 176 + out_bytes == derive_mapping(_arch(tiles), workload) \
        .total_weight_bytes
    assert [(f.weight_bytes, f.threshold_bytes) for f in groups["conv1"].folds] == [(88, 8)]
    # conv1's 64 neurons: 3 PEs of ceil(64 / 3) = 22 ([0, 22), [22, 44), [44, 64)), each spanning two 16-neuron
    # channels; 4 PEs of 16, one channel each
    pairs = 6 if tiles else 4
    fold = groups["conv1"].folds[0]
    assert int(fold.pe_weight_bytes.sum()) == pairs * 22 and int(fold.pe_threshold_bytes.sum()) == pairs * 2


@pytest.mark.parametrize("tiles, out_bytes", [(1, 204), (0, 198)])
def test_the_image_layer_streams_its_thresholds_alone_after_t_1(workload, tiles, out_bytes):
    """Weights not resident (a 64 B weight buffer): 2 images, one per batch, 3 steps each: 6 passes. conv1 streams
    88 B at t = 1 and 8 B at t = 2 and 3; blk_add 176 B and the output layer its bytes at every step. Buffer-fulls
    of 64 B per pass: 2 + 3 + 4 (204 or 198 B) at t = 1, 1 + 3 + 4 after. Both models agree on every counter."""
    arch = _arch(tiles, "global_buffers.weight.bytes=64")
    mapping = build_mapping(arch, workload)
    assert not mapping.weights_resident
    assert (mapping.weight_fetch_reads, mapping.weight_fetch_reads_after_first_step) == (2 + 3 + 4, 1 + 3 + 4)
    result = simulate(arch, workload, 2)
    reference = simulate_reference(arch, workload, 2)
    assert result.counters() == {k: v for k, v in reference.items() if k != "pe_output_spikes"}
    layers = {row["name"]: row["counts"] for row in result.layers}
    assert layers["conv1"]["weight_glb_read_bytes"] == 2 * 88 + 4 * 8
    assert layers["conv1"]["weight_glb_write_bytes"] == 2 * 88 + 4 * 8  # each fetched from DRAM
    pairs = 6 if tiles else 4  # (PE, channel) pairs of conv1, above
    assert layers["conv1"]["pe_weight_write_bytes"] == 2 * pairs * 22 + 4 * pairs * 2
    assert layers["blk_add"]["weight_glb_read_bytes"] == 6 * 176
    assert layers["out"]["weight_glb_read_bytes"] == 6 * out_bytes
    assert layers["out"]["exit_weight_write_bytes"] == (6 * out_bytes if tiles else 0)
    assert result.totals["weight_glb_read_bytes"] == 2 * 88 + 4 * 8 + 6 * 176 + 6 * out_bytes


def test_a_weight_memory_without_room_for_the_bias_and_threshold_is_refused(workload, tmp_path, capsys):
    """blk_add's channel needs 40 + 2 + 2 = 44 B: a 43 B weight memory is one line naming the field and the fix."""
    with pytest.raises(MappingError, match=r"pe.weight_memory_bytes: 43 B cannot hold the 44 B of weights, bias and "
                                           r"threshold of one neuron of layer 'blk_add'; raise it to at least 44"):
        build_mapping(_arch(1, "pe.weight_memory_bytes=43"), workload)
    build_mapping(_arch(1, "pe.weight_memory_bytes=44"), workload)
    path = tmp_path / "wl.npz"
    write_workload(path, workload)
    with pytest.raises(SystemExit) as stop:
        main(["run", str(CONVENTIONAL), str(path), "--set", "pe.weight_memory_bytes=43", "--images", "1", "-q"])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.count("\n") == 1 and "at least 44" in err and "Traceback" not in err
