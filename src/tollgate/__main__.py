"""`python -m tollgate` runs the command line."""

from tollgate.cli import main

raise SystemExit(main())
