"""CLI commands of the study area (registered by satasim_atsn.cli)."""

COMMANDS: list = []
