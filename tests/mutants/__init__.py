"""Deliberate one-line bugs in the archiver that the fast tests (tests/unit) must catch: `make mutants`.

`python -m tests.mutants` applies each mutant of the catalogue to a temporary copy of `lambdas/archiver`,
runs tests/unit against that copy, and fails unless every mutant is caught. Nothing here imports the
archiver: the runner's child processes must import the mutated copy, not the installed package.
"""
