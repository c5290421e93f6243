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
RUN_DURATION = "RunDurationMilliseconds"
RUN_COMPLETED = "RunCompleted"  # 1 for each run that reached its summary; the "no successful run" alarm watches it

# The summary's counter (run.Counts field) behind each metric; `repeated` is in the summary only.
COUNTER_FIELDS = {
    LISTED: "listed",
    ALREADY_ARCHIVED: "already_archived",
    NEW: "new",
    ARCHIVED: "archived",
    FAILED: "failed",
    SKIPPED: "skipped",
    DEFERRED: "deferred",
}
COUNTERS = tuple(COUNTER_FIELDS)
