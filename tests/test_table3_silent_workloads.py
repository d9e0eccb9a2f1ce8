"""`reproduce table3 --workloads DIR` with statistical workloads that do no synaptic operation (no input bits, no
spikes) wrote "ResNet19 does nanx the synaptic operations of VGG16" and "the cost per op falls nanx" into its
report; a VGG16 row without SOPs beside a ResNet19 row with them would have ended in a TypeError (None / float)."""

from __future__ import annotations

from satasim_atsn.hw.arch import load_arch
from satasim_atsn.study.table3 import _table3_analysis


def _row(network: str, dataset: str, sops: float) -> dict:
    pj = 10.0 if sops else None
    return {"network": network, "dataset": dataset, "sops_per_image": sops, "paper_energy_J": 500.0,
            "paper_fps": 200.0, "energy_J": 150.0, "fps": 120.0, "pJ_per_sop": pj, "paper_pJ_per_sop": pj}


def test_the_analysis_of_rows_without_synaptic_operations_says_n_a():
    arch = load_arch("atsn16x16")
    silent = [_row(n, d, 0.0) for n in ("VGG16", "ResNet19") for d in ("CIFAR10", "CIFAR100")]
    text = " ".join(_table3_analysis(silent, arch))
    assert "nan" not in text.replace("nano", "")
    assert "ResNet19 does n/a the synaptic operations" in text and "falls n/a in the paper's rows and n/a" in text
    mixed = [_row("VGG16", "CIFAR10", 0.0), _row("VGG16", "CIFAR100", 0.0),
             _row("ResNet19", "CIFAR10", 1e6), _row("ResNet19", "CIFAR100", 1e6)]
    assert "falls n/a in the paper's rows and n/a in ours" in " ".join(_table3_analysis(mixed, arch))
    busy = [_row(n, d, 2e6 if n == "ResNet19" else 1e6) for n in ("VGG16", "ResNet19") for d in ("CIFAR10", "CIFAR100")]
    assert "ResNet19 does 2.0x the synaptic operations" in " ".join(_table3_analysis(busy, arch))


def test_the_paper_column_shows_the_papers_printed_share_of_the_gpu():
    """The 'paper J (% of GPU)' cell showed 7.89% for VGG16/CIFAR10, its joules' quotient, where the paper prints
    7.88%: the paper's column now says what the paper says; a row the paper does not print is computed."""
    from satasim_atsn.study.table3 import _table3_cells

    row = {"network": "VGG16", "dataset": "CIFAR10", "statistics": "measured", "gpu_fps": 215, "gpu_energy_J": 6814.0,
           "paper_fps": 248, "paper_energy_J": 537.6, "fps": 126.2, "energy_J": 203.4, "gpu_ratio": 0.0299,
           "fps_dev": -0.49, "energy_dev": -0.62}
    assert _table3_cells(row)[6] == "537.6 (7.88%)"
    assert _table3_cells({**row, "dataset": "MNIST"})[6] == "537.6 (7.89%)"
