"""satasim-atsn: cycle-accurate simulation of SNN accelerators for the ATSN paper and beyond."""

__version__ = "0.1.0"
