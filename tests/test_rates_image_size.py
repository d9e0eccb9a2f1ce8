"""`workload rates --test-dataset imagefolder --image-size S`: a workload trained with --image-size (a folder of
photos of several sizes) is measured on its folder's test split resized as it was trained; without the option the
refusal names the size, and `rates` has the option it names."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from cli_helpers import one_line_error

from satasim_atsn.cli import main
from satasim_atsn.train.config import TrainConfig
from satasim_atsn.train.trainer import train_model

Image = pytest.importorskip("PIL.Image")

NETWORK = """name: small8
input_shape: [3, 8, 8]
num_classes: 3
layers:
  - {name: conv1, type: conv, out_channels: 4, kernel: 3, padding: 1}
  - {name: pool1, type: maxpool, kernel: 2, stride: 2}
  - {name: conv2, type: conv, out_channels: 8, kernel: 3, padding: 1}
  - {name: flat, type: flatten}
  - {name: out, type: output}
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A network trained at --image-size 8 on a folder of 12x12, 10x14 and 9x9 images (three sizes)."""
    root = tmp_path_factory.mktemp("rates_size")
    rng = np.random.default_rng(0)
    sizes = [(12, 12), (10, 14), (9, 9)]
    for split, count in (("train", 6), ("test", 4)):
        for cls in ("a", "b", "c"):
            (root / "data" / split / cls).mkdir(parents=True)
            for i in range(count):
                w, h = sizes[i % 3]
                Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "RGB").save(
                    root / "data" / split / cls / f"{i}.png")
    (root / "small8.yaml").write_text(NETWORK)
    cfg = TrainConfig(model=str(root / "small8.yaml"), dataset="imagefolder", data_dir=str(root / "data"),
                      method="atsn", epochs=1, batch_size=8, image_size=8, test_images=12, seed=1)
    train_model(cfg, root / "w.npz", quiet=True)
    return root


def _rates(root, *extra: str) -> list[str]:
    return ["workload", "rates", str(root / "w.npz"), "--network", str(root / "small8.yaml"), "--dataset", "mine",
            *extra]


def test_rates_resizes_the_test_split_as_the_workload_was_trained(trained, tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(_rates(trained, "--test-dataset", "imagefolder", "--data-dir", str(trained / "data"),
                    "--image-size", "8", "-o", str(tmp_path / "r.yaml")))
    assert info.value.code == 0, capsys.readouterr().err
    table = yaml.safe_load((tmp_path / "r.yaml").read_text())
    assert sorted(table["rates"]) == ["conv1", "conv2", "pool1"]
    assert "the whole imagefolder test split" in yaml.safe_dump(table["sources"])


def test_without_the_option_the_refusal_names_the_trained_size_and_rates_takes_it(trained, tmp_path, capsys):
    line = one_line_error(_rates(trained, "--test-dataset", "imagefolder", "--data-dir", str(trained / "data"),
                                 "-o", str(tmp_path / "r.yaml")), capsys)
    assert "the split mixes image sizes" in line and ", and 1 other size;" in line, line
    assert line.endswith("pass --image-size 8 (the size the workload was trained at) to resize every image to 8 x 8")
    assert not (tmp_path / "r.yaml").exists()


@pytest.mark.parametrize(("extra", "needle"), [
    ([], "no --test-dataset: the embedded images keep their size); drop --image-size, or add --test-dataset"),
    (["--test-dataset", "synthetic"], "synthetic images keep their size); drop --image-size"),
])
def test_image_size_without_an_image_folder_is_refused(trained, tmp_path, capsys, extra, needle):
    line = one_line_error(_rates(trained, *extra, "--image-size", "8", "-o", str(tmp_path / "r.yaml")), capsys)
    assert "--image-size: resizes an image folder's test split only" in line and needle in line, line
