"""`satasim sweep` with a tiny, logged point function: the kill-and-resume tests run this script.

It is the real command line (satasim_atsn.cli.main) with one change: each point sleeps a few
tens of milliseconds and appends its index to $SATASIM_POINT_LOG when it finishes, so that a
test can count how often every point was computed. The change is made at import, so the
spawned worker processes (which import this file as their main module) get it too.
"""

from __future__ import annotations

import faulthandler
import os
import signal
import sys
import time

from satasim_atsn.study import runner


def logged_point(task: dict) -> dict:
    """Deterministic metrics from the point's values, after a short deterministic delay."""
    cl = float(task["params"]["exit_unit.cl_init"])
    tau = float(task["params"]["exit_unit.tau_cl"])
    time.sleep(0.03 + 0.1 * ((cl * 7 + tau * 13) % 1.0))
    line = f"{cl!r},{tau!r}\n".encode()
    fd = os.open(os.environ["SATASIM_POINT_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)
    return {"accuracy": round(cl * tau, 6), "avg_timestep": 1.0 + cl + tau}


runner.run_point = logged_point

if __name__ == "__main__":
    from satasim_atsn.cli import main

    faulthandler.register(signal.SIGUSR1, all_threads=True)  # a test that finds the sweep hung asks for its stacks

    main(sys.argv[1:])
