"""Functional traces: run the integer forward (trained workloads) or the documented draws (statistical ones)."""

from __future__ import annotations

from satasim_atsn.snn.exit_policies import ExitPolicy
from satasim_atsn.snn.forward import run_forward
from satasim_atsn.traces.statistical_draw import check_image_range, draw_trace
from satasim_atsn.workload.format import Workload, require_validated
from satasim_atsn.workload.trace import Trace


def functional_trace(workload: Workload, policy: ExitPolicy, policy_name: str, start: int, count: int,
                     prediction: str = "membrane_sum") -> Trace:
    """The trace of images [start, start+count) under ``policy`` (``policy_name`` picks a statistical histogram).

    ``prediction`` is the exit unit's prediction rule (exit_policies.PREDICTION_RULES).
    """
    require_validated(workload)
    check_image_range(workload, start, count, least=1)
    if workload.is_statistical:
        return draw_trace(workload, policy_name, start, count)
    x = workload.inputs(start, start + count)
    result = run_forward(workload, x, policy=policy, record_spikes=True, prediction=prediction)
    labels = workload.labels(start, start + count)
    return Trace(
        start=start,
        exit_t=result.exit_t,
        pred=result.pred,
        pred_hw=result.pred_hw,
        labels=labels,
        spikes=result.spikes or {},
        inputs=x,
        policy=result.policy,
    )
