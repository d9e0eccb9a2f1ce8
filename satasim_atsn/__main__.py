"""`python -m satasim_atsn` runs the `satasim` command line."""

from satasim_atsn.entry import main

main()
