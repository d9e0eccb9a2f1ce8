"""Session-wide hooks: report how many engine-versus-reference cases really ran (README quotes the counts)."""

from __future__ import annotations

import sys


def pytest_terminal_summary(terminalreporter) -> None:
    """One line with the engine-versus-reference cases compared in this session, default and slow."""
    module = next((m for name, m in list(sys.modules.items()) if name.endswith("test_engine_vs_reference")), None)
    run = getattr(module, "RUN", None)
    if run and (run["default"] or run["slow"]):
        terminalreporter.write_line(
            f"engine-vs-reference cases compared: {run['default']} default + {run['slow']} slow "
            f"= {run['default'] + run['slow']} (README: {module.DEFAULT_CASES} + {module.SLOW_CASES}); default cases "
            f"without an exit tile {run.get('no_exit_tile', 0)}, "
            f"without an output layer {run.get('no_output_layer', 0)}"
        )
