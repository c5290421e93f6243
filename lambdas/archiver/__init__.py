"""The archiver's package."""
