"""CLI commands of the train area (registered by satasim_atsn.cli)."""

COMMANDS: list = []
