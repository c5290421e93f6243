"""Timestamps as the archive stores them: aware UTC datetimes, and Hive/Athena `timestamp` text.

Its own module (standard library only) because both the record (`archiver.records`) and the performance stats
(`archiver.perfstats`) format timestamps the same way, and the record imports the stats' column definitions.
"""

from __future__ import annotations

from datetime import UTC, datetime


def to_utc(value: object) -> datetime | None:
    """A timestamp from boto3 (datetime) or raw JSON (epoch seconds) as an aware UTC datetime."""
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    return None


def athena_timestamp(value: object) -> str | None:
    """Format as Hive/Athena `timestamp` text (UTC, milliseconds): reads without casts."""
    moment = to_utc(value)
    if moment is None:
        return None
    # isoformat, not strftime: strftime("%Y") drops the zero padding of years before 1000 on Linux.
    return moment.replace(tzinfo=None).isoformat(sep=" ", timespec="milliseconds")
