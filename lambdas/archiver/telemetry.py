"""Names of the run's metrics, shared by the Lambda (EMF) and the CDK alarms and dashboard."""

NAMESPACE = "GameLiftStreamsArchiver"
SERVICE = "session-archiver"

# One datapoint per run and counter; summed by the alarms and dashboard.
LISTED = "SessionsListed"
ALREADY_ARCHIVED = "SessionsAlreadyArchived"
NEW = "SessionsNew"
ARCHIVED = "SessionsArchived"
FAILED = "SessionsFailed"
SKIPPED = "SessionsSkipped"
DEFERRED = "SessionsDeferred"  # new sessions left for the next run because the time budget ran out
FOREIGN = "SessionsForeign"  # not this function's (another account or partition, a Region not a source): never archived
RUN_DURATION = "RunDurationMilliseconds"
RUN_COMPLETED = "RunCompleted"  # 1 for each run that reached its summary; the "no successful run" alarm watches it

# The export ZIPs (archiver.exportfiles, docs/EXPORTS.md), per run and per consumer batch.
EXPORTS_READ = "ExportsRead"  # ZIPs whose central directory was reached (export_read_status read)
EXPORTS_UNREADABLE = "ExportsUnreadable"  # OutputUri not S3, ZIP or bucket missing, access denied: recorded
EXPORT_BYTES_READ = "ExportBytesRead"  # bytes of ZIPs read by ranged GETs
STATS_STORED = "StatsObjectsStored"  # stats objects this function wrote (status stored or truncated)
STATS_TRUNCATED = "StatsTruncated"  # a cap (rows, inflated bytes) cut the stats: the rows before it are stored
STATS_ABSENT = "StatsAbsent"  # the ZIP has no stats/perf_stats_v1.csv
STATS_FAILED = "StatsFailed"  # the ZIP or CSV could not be read: bad_header, unsupported, malformed, too_large

# The export tally's field (archive.ExportTally) behind each metric, in the run summary and the batch's.
EXPORT_FIELDS = {
    EXPORTS_READ: "exports_read",
    EXPORTS_UNREADABLE: "exports_unreadable",
    EXPORT_BYTES_READ: "export_bytes_read",
    STATS_STORED: "stats_stored",
    STATS_TRUNCATED: "stats_truncated",
    STATS_ABSENT: "stats_absent",
    STATS_FAILED: "stats_failed",
}

# The summary's counter (run.Counts field) behind each metric; `repeated` is in the summary only.
COUNTER_FIELDS = {
    LISTED: "listed",
    ALREADY_ARCHIVED: "already_archived",
    NEW: "new",
    ARCHIVED: "archived",
    FAILED: "failed",
    SKIPPED: "skipped",
    DEFERRED: "deferred",
    FOREIGN: "foreign",
}
COUNTERS = tuple(COUNTER_FIELDS)

# The event consumer (archiver.events): one datapoint per batch and outcome.
EVENTS_ARCHIVED = "ExportEventsArchived"
EVENTS_ALREADY_ARCHIVED = "ExportEventsAlreadyArchived"
EVENTS_PENDING = "ExportEventsPending"  # export not yet SUCCEEDED: redelivered later
EVENTS_LEFT_TO_RECONCILE = "ExportEventsLeftToReconcile"  # still PENDING after the bounded receives
EVENTS_UNMATCHED = "ExportEventsUnmatched"  # outside EXPORT_LOCATIONS, or a key naming no session / another file
EVENTS_SKIPPED = "ExportEventsSkipped"  # the session is in no source Region (404), or its export FAILED
EVENTS_MALFORMED = "ExportEventsMalformed"  # not an S3 Object Created event
EVENTS_FOREIGN = "ExportEventsForeign"  # GetStreamSession's answer names another session (archiver.ownership)
EVENTS_FAILED = "ExportEventsFailed"  # throttling or 5xx after retries: redelivered
RUN_CONTINUED = "RunContinued"  # the run ran out of time while listing and invoked a follow-up

# The consumer's outcome (events.Outcome value) behind each metric.
EVENT_OUTCOMES = {
    EVENTS_ARCHIVED: "archived",
    EVENTS_ALREADY_ARCHIVED: "already_archived",
    EVENTS_PENDING: "pending",
    EVENTS_LEFT_TO_RECONCILE: "left_to_reconcile",
    EVENTS_UNMATCHED: "unmatched",
    EVENTS_SKIPPED: "skipped",
    EVENTS_MALFORMED: "malformed",
    EVENTS_FOREIGN: "foreign",
    EVENTS_FAILED: "failed",
}
