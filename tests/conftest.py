"""Fixtures shared by every test folder: the local stack (see tests/stack_fixtures.py)."""

pytest_plugins = ["tests.stack_fixtures"]
