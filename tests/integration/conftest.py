"""The local-stack fixtures live in tests/stack_fixtures.py (shared with tests/infra); re-exported here."""

from tests.stack_fixtures import REGION, Archive

__all__ = ["REGION", "Archive"]
