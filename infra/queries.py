"""The Athena named queries, in one place so the CDK app and the Athena contract test read the same SQL.

Each entry is name -> (description, SQL). The SQL is Athena (Trino) SQL with `{database}`, `{table}` (the
records) and `{stats_table}` (the sessions' performance stats, `<table>_perf_stats`) placeholders (fill them
with `render`). It stays within what `sqlglot.transpile(sql, read="athena",
write="duckdb")` translates, so it can be tested locally: no from_unixtime/to_unixtime; timestamps are
compared with date_diff, percentiles use approx_percentile. Every query filters on the `created_date`
partition (yyyy-MM-dd text, compared as text) so partition projection reads only the days it needs (the
workgroup's bytes-scanned cutoff would otherwise stop a full scan of a large archive). The SQL is kept as
plain literals, exactly the text Athena stores.
"""

from __future__ import annotations

USER_ID_PLACEHOLDER = "REPLACE_WITH_USER_ID"  # in user_sessions_with_exports; analysts replace it
STATS_TABLE_SUFFIX = "_perf_stats"


def stats_table_name(table: str) -> str:
    """The stats table's name: the records table's with STATS_TABLE_SUFFIX (one rule for the stack and docs)."""
    return table + STATS_TABLE_SUFFIX


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
    "stats_peak_and_p95_per_session": (
        "Per session of the last 7 days with performance stats: samples, first and last sample, and the peak "
        "and p95 of GPU use (%), VRAM (MB), CPU use (%) and the application's memory (MB).",
        """SELECT
  session_arn,
  count(*) AS samples,
  min("timestamp") AS first_sample_at,
  max("timestamp") AS last_sample_at,
  max(shared_sys_gpu_pct) AS peak_gpu_pct,
  approx_percentile(shared_sys_gpu_pct, 0.95) AS p95_gpu_pct,
  max(shared_sys_vram_mb) AS peak_vram_mb,
  approx_percentile(shared_sys_vram_mb, 0.95) AS p95_vram_mb,
  max(shared_sys_cpu_pct) AS peak_cpu_pct,
  approx_percentile(shared_sys_cpu_pct, 0.95) AS p95_cpu_pct,
  max(app_mem_mb) AS peak_app_mem_mb,
  approx_percentile(app_mem_mb, 0.95) AS p95_app_mem_mb
FROM "{database}"."{stats_table}"
WHERE created_date >= date_format(current_date - INTERVAL '7' DAY, '%Y-%m-%d')
GROUP BY session_arn
ORDER BY peak_gpu_pct DESC, session_arn""",
    ),
    "stats_sustained_gpu": (
        "Sessions of the last 7 days whose GPU use stayed at 95% or more for 60 consecutive seconds or longer "
        "(one sample a second; a gap of more than 2 s between samples ends a stretch), with their application: "
        "the number of such stretches, the longest in seconds and when the first began.",
        """WITH samples AS (
  SELECT
    session_arn,
    created_date,
    "timestamp" AS sampled_at,
    shared_sys_gpu_pct >= 95 AS hot,
    lag("timestamp") OVER (PARTITION BY session_arn ORDER BY "timestamp") AS previous_at,
    lag(shared_sys_gpu_pct >= 95) OVER (PARTITION BY session_arn ORDER BY "timestamp") AS previous_hot
  FROM "{database}"."{stats_table}"
  WHERE created_date >= date_format(current_date - INTERVAL '7' DAY, '%Y-%m-%d')
    AND "timestamp" IS NOT NULL
    AND shared_sys_gpu_pct IS NOT NULL
),
numbered AS (
  SELECT
    session_arn,
    created_date,
    sampled_at,
    sum(
      CASE
        WHEN previous_hot IS NULL OR NOT previous_hot THEN 1
        WHEN date_diff('second', previous_at, sampled_at) > 2 THEN 1
        ELSE 0
      END
    ) OVER (PARTITION BY session_arn ORDER BY sampled_at ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
      AS stretch
  FROM samples
  WHERE hot
),
stretches AS (
  SELECT
    session_arn,
    min(created_date) AS created_date,
    min(sampled_at) AS started_at,
    date_diff('second', min(sampled_at), max(sampled_at)) + 1 AS seconds
  FROM numbered
  GROUP BY session_arn, stretch
)
SELECT
  s.session_arn,
  r.application_id,
  count(*) AS sustained_stretches,
  max(s.seconds) AS longest_stretch_seconds,
  min(s.started_at) AS first_started_at
FROM stretches AS s
LEFT JOIN "{database}"."{table}" AS r
  ON r.session_arn = s.session_arn
  AND r.created_date = s.created_date
  AND r.created_date >= date_format(current_date - INTERVAL '7' DAY, '%Y-%m-%d')
WHERE s.seconds >= 60
GROUP BY s.session_arn, r.application_id
ORDER BY longest_stretch_seconds DESC, s.session_arn""",
    ),
    "stats_app_memory_growth": (
        "The application's memory growth per session of the last 7 days: the least-squares slope of app_mem_mb "
        "over the seconds since the session's first sample, in MB per second and per hour, with the first and "
        "last sample's memory (a steady positive slope over a long session suggests a leak).",
        """WITH samples AS (
  SELECT
    session_arn,
    app_mem_mb,
    date_diff('second', min("timestamp") OVER (PARTITION BY session_arn), "timestamp") AS elapsed_seconds,
    row_number() OVER (PARTITION BY session_arn ORDER BY "timestamp") AS from_first,
    row_number() OVER (PARTITION BY session_arn ORDER BY "timestamp" DESC) AS from_last
  FROM "{database}"."{stats_table}"
  WHERE created_date >= date_format(current_date - INTERVAL '7' DAY, '%Y-%m-%d')
    AND "timestamp" IS NOT NULL
    AND app_mem_mb IS NOT NULL
)
SELECT
  session_arn,
  count(*) AS samples,
  max(elapsed_seconds) AS seconds,
  max(CASE WHEN from_first = 1 THEN app_mem_mb END) AS first_app_mem_mb,
  max(CASE WHEN from_last = 1 THEN app_mem_mb END) AS last_app_mem_mb,
  regr_slope(app_mem_mb, elapsed_seconds) AS mb_per_second,
  regr_slope(app_mem_mb, elapsed_seconds) * 3600 AS mb_per_hour
FROM samples
GROUP BY session_arn
HAVING count(*) >= 2
ORDER BY mb_per_second DESC, session_arn""",
    ),
    "stats_p95_per_application_and_location": (
        "p95 of GPU use (%), VRAM (MB), CPU use (%) and the application's memory (MB) per creation day, "
        "application and streaming location, over every sample of the sessions of the last 30 days (stats "
        "joined with the records on session_arn).",
        """SELECT
  s.created_date,
  r.application_id,
  r.location,
  count(DISTINCT s.session_arn) AS sessions,
  count(*) AS samples,
  approx_percentile(s.shared_sys_gpu_pct, 0.95) AS p95_gpu_pct,
  approx_percentile(s.shared_sys_vram_mb, 0.95) AS p95_vram_mb,
  approx_percentile(s.shared_sys_cpu_pct, 0.95) AS p95_cpu_pct,
  approx_percentile(s.app_mem_mb, 0.95) AS p95_app_mem_mb
FROM "{database}"."{stats_table}" AS s
JOIN "{database}"."{table}" AS r
  ON r.session_arn = s.session_arn
  AND r.source_region = s.source_region
  AND r.created_date = s.created_date
WHERE s.created_date >= date_format(current_date - INTERVAL '30' DAY, '%Y-%m-%d')
  AND r.created_date >= date_format(current_date - INTERVAL '30' DAY, '%Y-%m-%d')
GROUP BY s.created_date, r.application_id, r.location
ORDER BY s.created_date DESC, r.application_id, r.location""",
    ),
}


def render(sql: str, database: str, table: str) -> str:
    """Fill the `{database}`/`{table}`/`{stats_table}` placeholders (plain replacement: SQL may hold other
    braces); the stats table is `stats_table_name(table)`."""
    return (
        sql.replace("{database}", database).replace("{stats_table}", stats_table_name(table)).replace("{table}", table)
    )
