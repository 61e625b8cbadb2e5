"""`python -m hearth` is the `hearth` command."""

from hearth.cli import main

main()
