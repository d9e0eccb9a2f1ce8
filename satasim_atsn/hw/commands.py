"""CLI commands of the hw area (registered by satasim_atsn.cli)."""

COMMANDS: list = []
