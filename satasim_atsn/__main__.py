"""`python -m satasim_atsn` runs the `satasim` command line."""

from satasim_atsn.cli import main

main()
