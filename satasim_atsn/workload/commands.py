"""CLI commands of the workload area (registered by satasim_atsn.cli)."""

COMMANDS: list = []
