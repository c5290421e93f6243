"""The mutant catalogue of `make mutants` still applies to the code, so it cannot silently rot."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.mutants.catalogue import ARCHIVER, ISSUE_EIGHT, MUTANTS, apply, rot


def test_every_mutant_applies_exactly_once_to_the_current_code() -> None:
    assert [problem for candidate in MUTANTS for problem in rot(candidate)] == []


def test_every_mutant_still_compiles(tmp_path: Path) -> None:
    for candidate in MUTANTS:
        copy = tmp_path / candidate.name
        shutil.copytree(ARCHIVER, copy, ignore=shutil.ignore_patterns("__pycache__"))
        apply(candidate, copy)  # raises SyntaxError if a mutant stopped being a plain bug


def test_the_catalogue_has_the_twelve_of_issue_eight_and_unique_names() -> None:
    assert len(ISSUE_EIGHT) == 12
    names = [candidate.name for candidate in MUTANTS]
    assert len(names) == len(set(names))
