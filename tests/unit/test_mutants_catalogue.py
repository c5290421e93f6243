"""The mutant catalogue of `make mutants` still applies to the code, so it cannot silently rot."""

from __future__ import annotations

from tests.mutants.catalogue import ISSUE_EIGHT, MUTANTS, rot


def test_every_mutant_applies_exactly_once_to_the_current_code() -> None:
    assert [problem for candidate in MUTANTS for problem in rot(candidate)] == []


def test_the_catalogue_has_the_twelve_of_issue_eight_and_unique_names() -> None:
    assert len(ISSUE_EIGHT) == 12
    names = [candidate.name for candidate in MUTANTS]
    assert len(names) == len(set(names))
