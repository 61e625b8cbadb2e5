"""`python -m hearth` is the `hearth` command."""

from hearth.cli import main

raise SystemExit(main())
