"""The warnings a finished training prints: a network that learned little (near chance, or one class
predicted for all), and a last epoch far better on the test images than on the augmented training images."""


from __future__ import annotations

import math

import numpy as np


def training_warnings(history: list, accuracy: float, num_classes: int, images: int,
                      augment: bool = False, labels: np.ndarray | None = None, predicted: np.ndarray | None = None,
                      class_names: list[str] | None = None) -> list[str]:
    """What says the trained network learned little: a loss above a uniform guess's ln C (every loss here is
    a mean of cross-entropies), a loss that rose over the run, an accuracy near chance (1/C, or with ``labels``
    of unbalanced classes, the largest class's share), or ``predicted`` naming one class for every image. A
    diverging run that stays finite (too high an --lr) or one that cannot learn (too low, too narrow) finishes
    otherwise without a word. With augmentation on, a last epoch far better on the test images than on the
    (augmented) training images says the flip or crop removes what tells the classes apart."""
    warnings = []
    guess = math.log(num_classes)
    first, last = (float(history[0]["loss"]), float(history[-1]["loss"])) if history else (0.0, 0.0)
    final = history[-1] if history else {}
    # the training accuracy is a running one, taken while the weights learn: in a first epoch from scratch it lags
    # the test accuracy whatever the augmentation does, so only a later epoch is judged
    hidden = (augment and len(history) > 1 and "test_acc" in final
              and float(final["train_acc"]) + 0.25 < float(final["test_acc"]))
    lower = "try a lower --lr" + (", or --no-augment (below)" if hidden else "")
    little = _learned_little(accuracy, num_classes, images, labels, predicted, class_names)
    # a first epoch's mean holds the untrained network's first batches: alone, it tells a divergence only beside
    # a network near chance (a one-epoch run that scored 100% was told it diverged)
    if last > 2 * guess and (len(history) > 1 or little is not None):
        warnings.append(f"the final epoch's loss {last:.4g} is above twice a uniform guess's ln {num_classes} = "
                        f"{guess:.3f}: the training diverged or collapsed ({lower})")
    elif len(history) > 1 and last > 1.5 * first:
        warnings.append(f"the loss rose from {first:.4g} (epoch 1) to {last:.4g}: the training diverged ({lower})")
    if hidden:
        warnings.append(f"the last epoch scored {100 * float(final['train_acc']):.2f}% on the augmented training "
                        f"images but {100 * float(final['test_acc']):.2f}% on the test images: the augmentation "
                        "(random crop, left-right flip) may remove what tells the classes apart; try --no-augment")
    return warnings + ([little] if little else [])


def _learned_little(accuracy: float, num_classes: int, images: int, labels: np.ndarray | None,
                    predicted: np.ndarray | None, class_names: list[str] | None) -> str | None:
    """The warning of an accuracy near chance, saying which chance: one class predicted for every image, the largest
    class's share of unbalanced test images, or a uniform guess among the classes (1/C)."""
    check = "check the data and --lr, --epochs, --width"
    if images < num_classes:  # some classes unscored: no chance level to compare with (a note says so)
        return None
    labels = None if labels is None or len(labels) == 0 else np.asarray(labels)
    if predicted is not None and labels is not None and len(np.unique(predicted)) == 1 < len(np.unique(labels)):
        name = _class_label(int(predicted[0]), class_names)
        return (f"the exported network predicts class {name} for every one of the {images} test images at fixed T: "
                f"its {100 * accuracy:.2f}% is that class's share of them, and it learned nothing that tells the "
                f"classes apart ({check})")
    counts = np.bincount(labels, minlength=num_classes) if labels is not None else None
    largest = float(counts.max() / counts.sum()) if counts is not None else 1 / num_classes
    if largest > 1 / num_classes:  # unbalanced: half a guess's share of what the largest class leaves above it
        if accuracy < largest + 0.5 / num_classes * (1 - largest) / (1 - 1 / num_classes):
            name = _class_label(int(counts.argmax()), class_names)
            ties = int((counts == counts.max()).sum())  # 15 images of 10 classes: five classes of 2
            which = f"the largest class, {name}" if ties == 1 else f"one of the {ties} largest classes (e.g. {name})"
            return (f"the exported network scores {100 * accuracy:.2f}% on {images} test images at fixed T, not "
                    f"clearly above the {100 * largest:.2f}% of always predicting {which} (the test "
                    f"classes are unbalanced; a uniform guess among {num_classes} classes scores "
                    f"{100 / num_classes:.2f}%): it learned little ({check})")
    elif accuracy < 1.5 / num_classes:
        return (f"the exported network scores {100 * accuracy:.2f}% on {images} test images at fixed T, near the "
                f"{100 / num_classes:.2f}% of a guess among {num_classes} classes: it learned little ({check})")
    return None


def _class_label(cls: int, class_names: list[str] | None) -> str:
    """A class as a warning names it: its index, and its folder name when known."""
    return f"{cls} ({class_names[cls]!r})" if class_names and cls < len(class_names) else str(cls)
