"""Accuracy and average timestep of a network under each exit policy, float (trainer) or quantised (workload).

Both tables have the same keys so provenance can set them side by side:
``fixed_t`` {t: accuracy} for t = 1..T, and per policy ``accuracy``, ``avg_timestep``.
The quantised table adds the hardware ATSN rule (eq. 17-18), how often it disagrees with the
float rule, how often the hardware prediction argmax(membrane) differs from argmax y_t, and
complexity E (eq. 19) normalised to the fixed-T SNN: over all layers (the first layer's dense
image MACs, counted once per image as ``snn/complexity.py`` does) and over the spiking layers only
(the layers whose inputs are spikes, which is what eq. 19's firing rates describe).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from satasim_atsn.errors import shown_number
from satasim_atsn.snn.calibration import calibration, calibration_line
from satasim_atsn.snn.complexity import ops_until_exit
from satasim_atsn.snn.confidence_bound import ceiling_line, ceiling_table
from satasim_atsn.snn.exit_policies import (
    ATSN_FRAC_BITS,
    CL_INIT_DEFAULT,
    LUT_ENTRIES_DEFAULT,
    TAU_CL_DEFAULT,
    THETA_DEFAULT,
    AtsnPolicy,
    DtsnnPolicy,
    FixedPolicy,
    hardware_predictions,
    max_softmax_above,
    mean_softmax_argmax,
)
from satasim_atsn.snn.forward import run_forward
from satasim_atsn.train.losses import exit_logits
from satasim_atsn.train.network import Network
from satasim_atsn.workload.format import Workload
from satasim_atsn.workload.steps import steps_shown


def predictions(logits: np.ndarray, exit_t: np.ndarray, output_mode: str) -> np.ndarray:
    """Software predictions at each image's exit step: eq. 10 (membrane) or eq. 5 (accumulate)."""
    if output_mode == "membrane":
        return mean_softmax_argmax(logits, np.asarray(exit_t))  # near-ties decided exactly: same on any CPU
    return logits[np.arange(logits.shape[0]), exit_t - 1].argmax(axis=-1)


def _r(value: float) -> float:
    return round(float(value), 6)


def policy_table(logits: np.ndarray, labels: np.ndarray, output_mode: str, cl_init: float = CL_INIT_DEFAULT,
                 tau_cl: float = TAU_CL_DEFAULT, theta: float = THETA_DEFAULT) -> dict:
    """Accuracy at each fixed T and with the float ATSN and DTSNN rules, from logits [N, T, C]."""
    n, T, _ = logits.shape
    table: dict = {"images": int(n), "fixed_t": {}}
    for t in range(1, T + 1):
        pred = predictions(logits, np.full(n, t), output_mode)
        table["fixed_t"][str(t)] = _r((pred == labels).mean())
    for key, policy in (("atsn", AtsnPolicy(cl_init, tau_cl)), ("dtsnn", DtsnnPolicy(theta))):
        steps = policy.exit_steps(logits)
        pred = predictions(logits, steps, output_mode)
        table[key] = {"accuracy": _r((pred == labels).mean()), "avg_timestep": _r(steps.mean())}
    return table


SWEEP_CL = (0.9, 0.95, 0.99, 0.995, 0.999, 0.9995)


def atsn_sweep(logits: np.ndarray, labels: np.ndarray, output_mode: str, values: tuple = SWEEP_CL) -> list[dict]:
    """Accuracy and avg timestep of the float ATSN rule with CL_init = tau_CL = v (the paper's Fig. 5-6 axes)."""
    rows = []
    for v in values:
        steps = AtsnPolicy(v, v).exit_steps(logits)
        pred = predictions(logits, steps, output_mode)
        rows.append({"cl_init": v, "tau_cl": v, "accuracy": _r((pred == labels).mean()),
                     "avg_timestep": _r(steps.mean())})
    return rows


#: output gains k of :func:`gain_sweep` (a softmax temperature 1/k)
SWEEP_GAIN = (1.0, 1.25, 1.5, 2.0, 3.0)


def gain_sweep(logits: np.ndarray, labels: np.ndarray, output_mode: str, cl_init: float = CL_INIT_DEFAULT,
               tau_cl: float = TAU_CL_DEFAULT, gains: tuple = SWEEP_GAIN) -> list[dict]:
    """The float ATSN rule at the run's thresholds on the output sharpened by k (logits x k: a softmax temperature
    1/k), per k: accuracy and avg timestep. A what-if of a network with the same ranking of its classes but a more
    confident output (a wider or longer-trained one grows its logits): whether CL_t, or the output's scale, keeps
    the exits late. k = 1 is the network as it is."""
    rows = []
    policy = AtsnPolicy(cl_init, tau_cl)
    for k in gains:
        sharpened = logits * np.float64(k)
        steps = policy.exit_steps(sharpened)
        pred = predictions(sharpened, steps, output_mode)
        rows.append({"gain": k, "accuracy": _r((pred == labels).mean()), "avg_timestep": _r(steps.mean())})
    return rows


PROFILE_LEVELS = (0.9, 0.99, 0.999)


def confidence_profile(logits: np.ndarray, labels: np.ndarray | None, output_mode: str,
                       cl_init: float = CL_INIT_DEFAULT, tau_cl: float = TAU_CL_DEFAULT,
                       levels: tuple = PROFILE_LEVELS) -> list[dict]:
    """Per timestep t: the share of images whose max o^t clears CL_t (the exit test of eq. 16) and fixed levels.

    This is why an exit fires early or not: the ATSN rule stops an image at the first t < T whose
    max softmax of the output is above CL_t. Each decision is taken exactly (``max_softmax_above``),
    so the shares are the same on every CPU. ``accuracy_above_cl_t`` is the eq. 10 accuracy at t of
    the images that clear CL_t (None when none does); t = T is listed although the rule never tests it.
    """
    n, T, _ = logits.shape
    policy = AtsnPolicy(cl_init, tau_cl)
    rows = []
    for t in range(1, T + 1):
        z = logits[:, t - 1]
        level = policy.confidence(t)
        above = max_softmax_above(z, level)
        row: dict = {"t": t, "cl_t": round(level, 9), "share_above_cl_t": _r(above.mean()),
                     "share_above": {str(v): _r(max_softmax_above(z, v).mean()) for v in levels}}
        if labels is not None:
            pred = predictions(logits, np.full(n, t), output_mode)
            row["accuracy_above_cl_t"] = _r((pred[above] == labels[above]).mean()) if above.any() else None
        rows.append(row)
    return rows


def float_logits(net: Network, x: np.ndarray, normalise: Callable[[np.ndarray], np.ndarray],
                 batch_size: int = 256, on_batch: Callable[[int], object] | None = None) -> np.ndarray:
    """The float network's exit logits [N, T, C] (eval mode) for raw inputs ``x``; ``on_batch(n)`` after each
    batch of n images (a progress bar)."""
    chunks = []
    for lo in range(0, x.shape[0], batch_size):
        f = net.forward(normalise(x[lo:lo + batch_size]), training=False)
        chunks.append(np.transpose(exit_logits(f, net.output_mode), (1, 0, 2)))
        if on_batch is not None:
            on_batch(chunks[-1].shape[0])
    return np.concatenate(chunks, axis=0)


def _policy_entry(full, exit_t: np.ndarray, labels: np.ndarray | None, mode: str) -> dict:
    """What a run stopping each image at ``exit_t`` gives, taken from the full-T run ``full``.

    Images do not interact, so an image's outputs and synaptic operations up to its exit are those
    of the full run; predictions read only t <= exit. The ratios are formed as ``snn/complexity.py``
    forms them (per image, then divided), so the numbers are those of a separate early-exit forward.
    """
    n = max(full.num_images, 1)
    total_full = int(full.sops_per_image.sum())
    first_full = int(full.first_layer_sops_per_image.sum())
    total = ops_until_exit(full.sops_per_image, exit_t)
    first = ops_until_exit(full.first_layer_sops_per_image, exit_t)

    def ratio(ops: int, base_ops: int) -> float | None:
        return _r((ops / n) / (base_ops / n)) if base_ops else None  # no operations at all: no ratio

    pred = predictions(full.logits, exit_t, mode)
    pred_hw = hardware_predictions(full.out_membrane, exit_t, mode, "membrane_sum")
    entry = {"avg_timestep": _r(exit_t.mean()), "complexity": ratio(total, total_full),
             "complexity_spiking_layers": ratio(total - first, total_full - first_full),
             "sops_per_image": _r(total / n)}
    if labels is not None:
        entry["accuracy"] = _r((pred == labels).mean())
        entry["accuracy_hw_pred"] = _r((pred_hw == labels).mean())
    entry["hw_pred_differs"] = _r((pred_hw != pred).mean())
    # the alternative rule, argmax of the membrane at the exit step alone (exit_unit.prediction: membrane)
    alone = hardware_predictions(full.out_membrane, exit_t, mode, "membrane")
    entry["hw_pred_membrane_differs"] = _r((alone != pred).mean())
    if labels is not None:
        entry["accuracy_hw_pred_membrane"] = _r((alone == labels).mean())
    return entry


def evaluate_workload(workload: Workload, cl_init: float = CL_INIT_DEFAULT, tau_cl: float = TAU_CL_DEFAULT,
                      theta: float = THETA_DEFAULT, batch_size: int = 256, lut_entries: int = LUT_ENTRIES_DEFAULT,
                      frac_bits: int = ATSN_FRAC_BITS) -> dict:
    """One full-T integer forward, then every policy after the fact: accuracies, avg timesteps, LUT agreement, E.

    Each policy's exits are decided on the full run's outputs (``ExitPolicy.exit_steps``), which are
    the outputs an early-exit forward sees (tests/test_evaluation.py checks this against one). The hardware
    rule is an AT unit's with ``lut_entries`` exp-table words and ``frac_bits`` fraction bits (its
    exit_unit.exp_lut_entries and exp_frac_bits).
    """
    return evaluate_with_predictions(workload, cl_init, tau_cl, theta, batch_size, lut_entries, frac_bits)[0]


def evaluate_with_predictions(workload: Workload, cl_init: float = CL_INIT_DEFAULT, tau_cl: float = TAU_CL_DEFAULT,
                              theta: float = THETA_DEFAULT, batch_size: int = 256,
                              lut_entries: int = LUT_ENTRIES_DEFAULT,
                              frac_bits: int = ATSN_FRAC_BITS) -> tuple[dict, np.ndarray]:
    """:func:`evaluate_workload`'s table and each image's prediction at fixed T (the rule of its accuracy)."""
    full = run_forward(workload, batch_size=batch_size)
    at_t = fixed_t_predictions(workload, full)
    if not workload.has_output:
        return _spike_count_table(workload, full, workload.labels()), at_t
    hardware = AtsnPolicy(cl_init, tau_cl, hardware=True, lut_entries=lut_entries, frac_bits=frac_bits)
    return _output_table(workload, full, cl_init, tau_cl, theta, hardware), at_t


def fixed_t_predictions(workload: Workload, full) -> np.ndarray:
    """Each image's prediction after all T timesteps of the run ``full``, by the rule of `evaluate`'s fixed-T
    accuracy (eq. 10 for a membrane output, eq. 5 for an accumulating one, the most spikes without an output)."""
    mode = workload.layers[-1]["output_mode"] if workload.has_output else "spike_count"
    return predictions(full.logits, np.full(full.num_images, full.logits.shape[1]), mode)


def _output_table(workload: Workload, full, cl_init: float, tau_cl: float, theta: float,
                  hardware: AtsnPolicy) -> dict:
    """The evaluation table of a network with an output layer, from its full-T run ``full`` (``hardware``: the AT
    unit's rule at the same thresholds)."""
    labels = workload.labels()
    mode = workload.layers[-1]["output_mode"]
    policies = {"fixed": FixedPolicy(), "atsn": AtsnPolicy(cl_init, tau_cl), "atsn_hw": hardware,
                "dtsnn": DtsnnPolicy(theta)}
    if labels is not None:
        labels = labels[: full.num_images]
    exits = {key: policy.exit_steps(full.logits, full.out_membrane, full.scale_per_t)
             for key, policy in policies.items()}
    table = policy_table(full.logits, labels, mode, cl_init, tau_cl, theta) if labels is not None else {"fixed_t": {}}
    table["images"] = int(full.num_images)
    for key in policies:
        table[key] = _policy_entry(full, exits[key], labels, mode)
    table["atsn_hw"]["exit_agrees_with_float"] = _r((exits["atsn_hw"] == exits["atsn"]).mean())
    table["atsn_hw"]["lut_entries"] = hardware.lut_entries  # the AT unit the agreement is measured for
    table["atsn_hw"]["frac_bits"] = hardware.frac_bits
    if labels is not None:
        table["atsn_sweep"] = atsn_sweep(full.logits, labels, mode)
        table["gain_sweep"] = gain_sweep(full.logits, labels, mode, cl_init, tau_cl)
    table["confidence_profile"] = confidence_profile(full.logits, labels, mode, cl_init, tau_cl)
    if labels is not None:
        table["calibration"] = calibration(full.logits, labels)
    table["confidence_ceiling"] = ceiling_table(workload, cl_init, tau_cl)
    table["sops_per_image_fixed"] = _r(int(full.sops_per_image.sum()) / max(full.num_images, 1))
    table["policy_params"] = {"cl_init": cl_init, "tau_cl": tau_cl, "theta": theta}
    table["output_mode"] = mode  # which software prediction the hardware one is compared with: eq. 10 or eq. 5
    return table


def _spike_count_table(workload: Workload, full, labels: np.ndarray | None) -> dict:
    """A network that ends in a spiking layer (no output layer) runs fixed T and predicts the class with the most
    spikes so far: its accuracy at each T; no exit rule has an output to read (docs/workload-format.md)."""
    n, T = full.num_images, workload.timesteps
    table: dict = {"images": int(n), "fixed_t": {}, "output_mode": "spike_count"}
    if labels is not None:
        labels = labels[:n]
        for t in range(1, T + 1):
            pred = predictions(full.logits, np.full(n, t), "spike_count")
            table["fixed_t"][str(t)] = _r((pred == labels).mean())
    counts = full.logits[:, -1]
    table["fixed"] = {"avg_timestep": _r(float(T)),
                      "accuracy": None if labels is None else table["fixed_t"][str(T)],
                      "top_class_ties": _r(((counts == counts.max(axis=1, keepdims=True)).sum(axis=1) > 1).mean())}
    table["sops_per_image_fixed"] = _r(int(full.sops_per_image.sum()) / max(n, 1))
    table["note"] = (f"the network ends in the spiking layer {workload.layers[-1]['name']!r}: its spike counts over "
                     "T are the output (fixed T, the most spikes wins, ties to the lowest class); exit rules need an "
                     "output layer")
    return table


def format_table(table: dict, title: str = "") -> str:
    """Human-readable lines of an evaluation table."""
    lines = [title] if title else []
    fixed = table.get("fixed_t", {})
    # the software prediction: eq. 10's mean softmax for a membrane output, eq. 5's mean output for an accumulating one
    software = "eq. 5" if table.get("output_mode") == "accumulate" else "eq. 10"
    if fixed:
        lines.append("fixed T: " + steps_shown([f"T={t} {100 * a:.2f}%" for t, a in fixed.items()], "  "))
    params = table.get("policy_params")
    settings = ([f"ATSN CL_init {shown_number(params['cl_init'])}, tau_CL {shown_number(params['tau_cl'])}"]
                if params and "cl_init" in params else []) + (
                   [f"DTSNN theta {shown_number(params['theta'])}"] if params and "theta" in params else [])
    if settings:
        lines.append("exit settings: " + "; ".join(settings))
    for key, label in (("fixed", "SNN fixed T"), ("atsn", "ATSN (float rule)"), ("atsn_hw", "ATSN (hardware LUT)"),
                       ("dtsnn", "DTSNN")):
        entry = table.get(key)
        if not isinstance(entry, dict) or "avg_timestep" not in entry:
            continue
        acc = entry.get("accuracy")
        text = f"{label:22s} acc {100 * acc:6.2f}%" if acc is not None else f"{label:22s} acc   n/a "
        text += f"  avg timestep {entry['avg_timestep']:.3f}"
        if entry.get("complexity") is not None:
            spiking = entry["complexity_spiking_layers"]
            text += f"  E/E_snn {entry['complexity']:.3f} (spiking layers " + (
                "no operations" if spiking is None else f"{spiking:.3f}") + ")"
        if "hw_pred_differs" in entry:
            text += (f"  hw prediction != {software}: {100 * entry['hw_pred_differs']:.2f}% (running sum), "
                     f"{100 * entry.get('hw_pred_membrane_differs', 0.0):.2f}% (membrane alone)")
        lines.append(text)
    if "atsn_hw" in table and "exit_agrees_with_float" in table["atsn_hw"]:
        unit = table["atsn_hw"]
        built = (f" ({unit['lut_entries']} entries, {unit['frac_bits']} fraction bits)"
                 if "frac_bits" in unit else "")  # a table stored in a workload before session 42 has neither
        lines.append(f"hardware LUT exit{built} == float rule on {100 * unit['exit_agrees_with_float']:.2f}% "
                     "of images")
    sweep = table.get("atsn_sweep")
    if sweep:
        lines.append("ATSN sweep (CL_init = tau_CL): " + "  ".join(
            f"{row['cl_init']}: {100 * row['accuracy']:.2f}% @ {row['avg_timestep']:.2f}" for row in sweep))
    gained = table.get("gain_sweep")
    if gained:
        lines.append("ATSN on the output sharpened (logits x k, temperature 1/k): " + "  ".join(
            f"x{shown_number(row['gain'])}: {100 * row['accuracy']:.2f}% @ {row['avg_timestep']:.2f}"
            for row in gained))
    profile = table.get("confidence_profile")
    if profile:
        lines.append(_profile_line(profile))
    calibrated = table.get("calibration")
    if calibrated:
        lines.append(calibration_line(calibrated))
    ceiling = table.get("confidence_ceiling")
    if ceiling:
        lines.append(ceiling_line(ceiling, table.get("output_mode", "membrane")))
    if table.get("output_mode") == "spike_count":
        ties = (table.get("fixed") or {}).get("top_class_ties")
        lines.append(table["note"] + ("" if ties is None else f"; at T the top spike count is a tie on "
                                                               f"{100 * ties:.2f}% of images"))
    return "\n".join(lines)


def _profile_line(profile: list[dict]) -> str:
    """One line: per t, the share of images whose max o^t clears CL_t (and their accuracy), then fixed levels."""
    parts = []
    for row in profile:
        text = f"t={row['t']} {100 * row['share_above_cl_t']:.2f}%"
        if row.get("accuracy_above_cl_t") is not None:
            text += f" (acc {100 * row['accuracy_above_cl_t']:.2f}%)"
        parts.append(text)
    levels = profile[0]["share_above"].keys()
    fixed = "  ".join(f"> {v}: " + steps_shown([f"{100 * row['share_above'][v]:.1f}%" for row in profile], show=4)
                      for v in levels)
    return "max o^t > CL_t (the exit test): " + steps_shown(parts, "  ", show=4) + "  |  per t " + fixed
