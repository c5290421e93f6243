"""`python -m tests.mutants [NAME...]`: see tests/mutants/runner.py."""

from tests.mutants.runner import main

raise SystemExit(main())
