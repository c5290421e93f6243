"""The Athena named queries, in one place so the CDK app and the Athena contract test read the same SQL.

Each entry is name -> (description, SQL). The SQL is Athena (Trino) SQL with `{database}` and `{table}`
placeholders (fill them with `render`). It stays within what `sqlglot.transpile(sql, read="athena",
write="duckdb")` translates, so it can be tested locally: no from_unixtime/to_unixtime; timestamps are
compared with date_diff, percentiles use approx_percentile. Every query filters on the `created_date`
partition (yyyy-MM-dd text, compared as text) so partition projection reads only the days it needs (the
workgroup's bytes-scanned cutoff would otherwise stop a full scan of a large archive). The SQL is kept as
plain literals, exactly the text Athena stores.
"""

from __future__ import annotations

USER_ID_PLACEHOLDER = "REPLACE_WITH_USER_ID"  # in user_sessions_with_exports; analysts replace it


NAMED_QUERIES: dict[str, tuple[str, str]] = {
    "sessions_per_day_and_application": (
        "Archived sessions and distinct users per creation day and application, last 30 days.",
        """SELECT
  created_date,
  application_id,
  count(*) AS sessions,
  count(DISTINCT user_id) AS users
FROM "{database}"."{table}"
WHERE created_date >= date_format(current_date - INTERVAL '30' DAY, '%Y-%m-%d')
GROUP BY created_date, application_id
ORDER BY created_date DESC, sessions DESC""",
    ),
    "sessions_per_location_and_region": (
        "Archived sessions per API Region (source_region) and streaming location, last 30 days.",
        """SELECT
  source_region,
  location,
  count(*) AS sessions,
  count(DISTINCT application_id) AS applications,
  count(DISTINCT user_id) AS users,
  min(created_at) AS first_created_at,
  max(created_at) AS last_created_at
FROM "{database}"."{table}"
WHERE created_date >= date_format(current_date - INTERVAL '30' DAY, '%Y-%m-%d')
GROUP BY source_region, location
ORDER BY sessions DESC, source_region, location""",
    ),
    "session_duration_statistics": (
        "Streaming duration (streaming_started_at to streaming_ended_at) per application in seconds: "
        "count, average, min, median, p95 and max, last 30 days.",
        """SELECT
  application_id,
  count(*) AS sessions,
  round(avg(streamed_seconds), 1) AS avg_seconds,
  min(streamed_seconds) AS min_seconds,
  approx_percentile(streamed_seconds, 0.5) AS p50_seconds,
  approx_percentile(streamed_seconds, 0.95) AS p95_seconds,
  max(streamed_seconds) AS max_seconds
FROM (
  SELECT application_id, date_diff('second', streaming_started_at, streaming_ended_at) AS streamed_seconds
  FROM "{database}"."{table}"
  WHERE created_date >= date_format(current_date - INTERVAL '30' DAY, '%Y-%m-%d')
    AND streaming_started_at IS NOT NULL
    AND streaming_ended_at IS NOT NULL
) AS durations
GROUP BY application_id
ORDER BY sessions DESC, application_id""",
    ),
    "user_sessions_with_exports": (
        "One user's sessions of the last 90 days with the S3 URI of each exported ZIP (logs, saves, "
        "stats). Replace 'REPLACE_WITH_USER_ID' with the developer-defined user ID.",
        """SELECT
  session_arn,
  created_at,
  application_id,
  location,
  status,
  status_reason,
  date_diff('second', streaming_started_at, streaming_ended_at) AS streamed_seconds,
  export_status,
  export_output_uri
FROM "{database}"."{table}"
WHERE user_id = 'REPLACE_WITH_USER_ID'
  AND created_date >= date_format(current_date - INTERVAL '90' DAY, '%Y-%m-%d')
ORDER BY created_at DESC""",
    ),
    "archive_freshness": (
        "Is the archiver keeping up? Per API Region: newest archived_at, minutes since then, and the lag "
        "from a session's last change (last_updated_at) to its archiving, for sessions of the last 7 days.",
        """SELECT
  source_region,
  count(*) AS sessions_archived,
  max(archived_at) AS newest_archived_at,
  date_diff('minute', max(archived_at), current_timestamp AT TIME ZONE 'UTC') AS minutes_since_newest_archive,
  round(avg(lag_seconds) / 60.0, 1) AS avg_lag_minutes,
  round(approx_percentile(lag_seconds, 0.95) / 60.0, 1) AS p95_lag_minutes,
  round(max(lag_seconds) / 60.0, 1) AS max_lag_minutes
FROM (
  SELECT source_region, archived_at, date_diff('second', last_updated_at, archived_at) AS lag_seconds
  FROM "{database}"."{table}"
  WHERE created_date >= date_format(current_date - INTERVAL '7' DAY, '%Y-%m-%d')
) AS archived
GROUP BY source_region
ORDER BY source_region""",
    ),
    "session_end_reasons": (
        "Sessions per creation day, final status and status reason (idleTimeout, applicationExit, ...), last 30 days.",
        """SELECT
  created_date,
  status,
  coalesce(status_reason, '(none)') AS status_reason,
  count(*) AS sessions
FROM "{database}"."{table}"
WHERE created_date >= date_format(current_date - INTERVAL '30' DAY, '%Y-%m-%d')
GROUP BY created_date, status, coalesce(status_reason, '(none)')
ORDER BY created_date DESC, sessions DESC, status, status_reason""",
    ),
}


def render(sql: str, database: str, table: str) -> str:
    """Fill the `{database}`/`{table}` placeholders (plain replacement: SQL may hold other braces)."""
    return sql.replace("{database}", database).replace("{table}", table)
