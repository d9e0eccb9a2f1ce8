"""Traces: functional spikes from the trained forward or drawn from statistical workloads (floor 4)."""
