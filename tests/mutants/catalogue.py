"""The mutants: deliberate small bugs in `lambdas/archiver`, each an exact text and its replacement.

The first twelve are the bugs of issue 8 (ten that the HTTP tests caught late, two that nothing caught);
the others are bugs worth catching that the issue did not try. Each original text must occur exactly once
in the current code (`rot` says where it does not), so the catalogue cannot silently stop applying.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

ARCHIVER = Path(__file__).resolve().parents[2] / "lambdas" / "archiver"


@dataclass(frozen=True)
class Edit:
    file: str  # relative to lambdas/archiver
    original: str
    replacement: str


@dataclass(frozen=True)
class Mutant:
    name: str
    description: str
    edits: tuple[Edit, ...]


def mutant(name: str, file: str, original: str, replacement: str, description: str) -> Mutant:
    return Mutant(name, description, (Edit(file, original, replacement),))


MUTANTS: tuple[Mutant, ...] = (
    # --- The twelve of issue 8 ---------------------------------------------------------------------
    mutant(
        "unconditional-ledger-put",
        "ledger.py",
        '                ConditionExpression="attribute_not_exists(#k)",\n',
        "",
        "PutItem overwrites whatever another writer put",
    ),
    mutant(
        "unconditional-record-put",
        "store.py",
        '                IfNoneMatch="*",\n',
        "",
        "PutObject overwrites the record another writer stored first",
    ),
    mutant(
        "item-from-own-record-after-412",
        "archive.py",
        "            record = self._stored_record(arn, key, stored)\n",
        "            self._stored_record(arn, key, stored)\n",
        "after a 412 the ledger item is made from this writer's record, not the stored one",
    ),
    mutant(
        "equal-item-always-ours",
        "ledger.py",
        '                return retried and error.response.get("Item") == attributes',
        '                return error.response.get("Item") == attributes',
        "a writer that loses the race counts the session archived too",
    ),
    mutant(
        "record-drops-output-uri",
        "records.py",
        '_api("ExportFilesMetadata", "OutputUri")',
        '_api("ExportFilesMetadata", "Uri")',
        "the record's export_output_uri is always null",
    ),
    mutant(
        "environment-values-kept",
        "records.py",
        "(value if ctx.keep_environment_values and isinstance(value, str) else REDACTED)",
        "(value if isinstance(value, str) else REDACTED)",
        "AdditionalEnvironmentVariables values stored without the operator opting in",
    ),
    mutant(
        "key-varies-per-write",
        "archive.py",
        "key = object_key(self.settings.prefix, arn, created)",
        "key = object_key(self.settings.prefix, arn, self.now())",
        "the S3 key from the archive time: a retry writes a second object",
    ),
    mutant(
        "listing-without-succeeded-filter",
        "sessions.py",
        'paginator.paginate(ExportFilesStatus="SUCCEEDED", PaginationConfig=',
        "paginator.paginate(PaginationConfig=",
        "sessions whose export failed or is pending are archived",
    ),
    mutant(
        "ledger-before-s3",
        "archive.py",
        "        stored = self.store.put_once(key, body)\n"
        "        if stored != body:\n"
        "            record = self._stored_record(arn, key, stored)\n"
        "        if self.ledger.mark_archived(arn.arn, ledger_item(record, key)):\n",
        "        marked = self.ledger.mark_archived(arn.arn, ledger_item(record, key))\n"
        "        self.store.put_once(key, body)\n"
        "        if marked:\n",
        "the DynamoDB item is written before the S3 object",
    ),
    mutant(
        "unprocessed-keys-ignored",
        "ledger.py",
        'request = response.get("UnprocessedKeys") or {}',
        "request = {}",
        "keys DynamoDB left unprocessed are taken as not archived",
    ),
    mutant(
        "only-the-first-page",
        "sessions.py",
        'config: dict[str, Any] = {"PageSize": PAGE_SIZE}',
        'config: dict[str, Any] = {"PageSize": PAGE_SIZE, "MaxItems": PAGE_SIZE}',
        "the listing stops after its first page",
    ),
    mutant(
        "run-completed-on-failed-run",
        "handler.py",
        "    if report.errors:\n"
        '        logger.error("Run failed", extra={"summary": summary})\n'
        '        raise RunFailed("; ".join(report.errors))\n'
        "    metrics.add_metric(name=telemetry.RUN_COMPLETED, unit=MetricUnit.Count, value=1)\n",
        "    metrics.add_metric(name=telemetry.RUN_COMPLETED, unit=MetricUnit.Count, value=1)\n"
        "    if report.errors:\n"
        '        logger.error("Run failed", extra={"summary": summary})\n'
        '        raise RunFailed("; ".join(report.errors))\n',
        "RunCompleted is emitted by a run that failed (the no-successful-run alarm stays quiet)",
    ),
    mutant(
        "transient-failure-counted-archived",
        "run.py",
        "        except TRANSIENT_ERRORS as failure:\n            self._count(failed=1)\n",
        "        except TRANSIENT_ERRORS as failure:\n            self._count(archived=1)\n",
        "a session whose write failed after retries is counted archived",
    ),
    Mutant(
        "no-client-side-pacing",
        "both rate limiter acquire() calls removed: the archiver no longer paces itself under the quota",
        (
            Edit("sessions.py", "                    self._list_limiter.acquire()\n", ""),
            Edit("sessions.py", "        self._get_limiter.acquire()\n", ""),
        ),
    ),
    mutant(
        "restarts-not-reset",
        "sessions.py",
        "        self.restarts = 0\n        while True:\n",
        "        while True:\n",
        "a warm invocation inherits the previous listing's NextToken restarts",
    ),
    # --- More of the same kind ---------------------------------------------------------------------
    mutant(
        "list-not-paced",
        "sessions.py",
        "                    self._list_limiter.acquire()\n",
        "",
        "list pages sent without waiting for a token",
    ),
    mutant(
        "get-not-paced",
        "sessions.py",
        "        self._get_limiter.acquire()\n",
        "",
        "GetStreamSession sent without waiting for a token",
    ),
    mutant(
        "budget-never-expires",
        "budget.py",
        "return self._deadline is not None and self._clock() >= self._deadline",
        "return False",
        "the run takes new work until Lambda kills it",
    ),
    mutant(
        "repeated-not-counted",
        "run.py",
        "self._count(repeated=1)",
        "pass",
        "a session listed twice is not counted repeated",
    ),
    mutant(
        "environment-opt-in-ignored",
        "archive.py",
        "keep_environment_values=self.settings.keep_environment_values,",
        "keep_environment_values=False,",
        "KEEP_ENVIRONMENT_VARIABLE_VALUES=true has no effect",
    ),
    mutant(
        "launch-arg-opt-in-ignored",
        "archive.py",
        "keep_launch_argument_values=self.settings.keep_launch_argument_values,",
        "keep_launch_argument_values=False,",
        "KEEP_LAUNCH_ARGUMENT_VALUES=true has no effect",
    ),
    mutant(
        "launch-arg-values-kept",
        "records.py",
        "    return redact_launch_args(arguments)\n",
        "    return arguments\n",
        "AdditionalLaunchArgs values stored without the operator opting in",
    ),
    mutant(
        "attached-launch-arg-value-kept",
        "redaction.py",
        'return match["flag"] + match["separator"] + REDACTED',
        "return argument",
        "the value of --name=value is stored",
    ),
    mutant(
        "end-of-options-ignored",
        "redaction.py",
        "            options_ended = True\n",
        "            options_ended = False\n",
        "arguments after -- that look like flags are stored",
    ),
    mutant(
        "negative-number-taken-for-a-flag",
        "redaction.py",
        r"--?[A-Za-z][A-Za-z0-9_.\-]{0,63}",
        r"--?[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}",
        "a value such as -1 (or -4f2a...) is stored as a flag",
    ),
    mutant(
        "item-drops-output-uri",
        "records.py",
        '        _column("export_output_uri"),\n',
        "        lambda _r, _k: None,\n",
        "the DynamoDB item lacks export_output_uri",
    ),
    mutant(
        "oversized-value-in-item",
        "records.py",
        "if len(value) > ITEM_VALUE_LIMIT:",
        "if len(value) > 10 * ITEM_VALUE_LIMIT:",
        "values DynamoDB may refuse are copied into the item",
    ),
    mutant(
        "undated-keyed-by-archive-day",
        "archive.py",
        "            created = UNDATED_CREATED_AT\n",
        "            created = self.now()\n",
        "a session without CreatedAt gets a new key on every retry",
    ),
    mutant(
        "vanished-session-counted-failed",
        "sessions.py",
        '            if error_code(error) == "ResourceNotFoundException":\n                return None\n',
        "",
        "a 404 on GetStreamSession is a failure retried forever, not a skip",
    ),
    mutant(
        "get-access-denied-not-fatal",
        "sessions.py",
        '            raise_if_fatal(error, f"GetStreamSession in {self.region}")\n',
        "",
        "AccessDenied on GetStreamSession fails each session instead of the run",
    ),
    mutant(
        "listing-ignores-budget",
        "sessions.py",
        "                while keep_going():\n",
        "                while True:\n",
        "the listing goes on after the budget ran out",
    ),
    mutant(
        "first-page-validation-error-restarts",
        "sessions.py",
        'if error_code(error) != "ValidationException" or self.position is None:',
        'if error_code(error) != "ValidationException":',
        "a ValidationException on the first page is taken for an expired NextToken",
    ),
    mutant(
        "one-restart-too-many",
        "sessions.py",
        "if self.restarts >= self._max_restarts:",
        "if self.restarts > self._max_restarts:",
        "MAX_LIST_RESTARTS + 1 restarts",
    ),
    mutant(
        "unprocessed-after-retries-taken-as-new",
        "ledger.py",
        "            if request:\n                raise LedgerUnavailable(",
        "            if False:\n                raise LedgerUnavailable(",
        "keys still unprocessed after every retry are taken as not archived",
    ),
    mutant(
        "no-backoff-between-unprocessed-retries",
        "ledger.py",
        "                    self._sleep(min(2.0, 0.05 * 2**attempt) * random.uniform(0.5, 1.0))\n",
        "                    pass\n",
        "unprocessed keys are asked again at once, with no backoff",
    ),
    mutant(
        "batch-over-the-limit",
        "ledger.py",
        "BATCH_GET_LIMIT = 100",
        "BATCH_GET_LIMIT = 101",
        "BatchGetItem asked for more keys than DynamoDB accepts",
    ),
    mutant(
        "fatal-error-not-reported",
        "run.py",
        "error=self._fatal or error,",
        "error=error,",
        "AccessDenied or a missing table or bucket ends the Region silently",
    ),
    mutant(
        "listing-transport-error-swallowed",
        "run.py",
        'error = f"ListStreamSessionsByAccount in {self.region} failed after retries: {failure}"',
        "error = None",
        "a listing that failed after retries reports success",
    ),
    mutant(
        "request-cutoff-not-installed",
        "budget.py",
        '        client.meta.events.register("before-send", self._before_send)\n',
        "",
        "requests are still sent after the cut-off",
    ),
    mutant(
        "retry-after-cutoff",
        "budget.py",
        "if caught_exception is not None or status >= 300:",
        "if caught_exception is not None:",
        "an error response is retried after the cut-off",
    ),
    mutant(
        "metric-from-the-wrong-counter",
        "telemetry.py",
        '    ARCHIVED: "archived",',
        '    ARCHIVED: "new",',
        "SessionsArchived reports the new count",
    ),
    mutant(
        "logger-keys-leak",
        "handler.py",
        "@logger.inject_lambda_context(clear_state=True)",
        "@logger.inject_lambda_context",
        "keys of a warm invocation's logs leak into the next",
    ),
    mutant(
        "clients-built-per-invocation",
        "wiring.py",
        "@functools.cache\n",
        "@functools.lru_cache(maxsize=0)\n",
        "every invocation builds new clients",
    ),
    # --- Issue 11: the export ZIP --------------------------------------------------------------------
    mutant(
        "zip-ranges-without-if-match",
        "exportfiles.py",
        '        extra = {"IfMatch": self._etag} if self._etag else {}\n',
        "        extra: dict[str, str] = {}\n",
        "the ranges of one ZIP may come from two versions of it when it is replaced mid-read",
    ),
    mutant(
        "export-access-denied-is-transient",
        "exportfiles.py",
        '    "AccessDenied": ACCESS_DENIED,\n',
        "",
        "an export the role may not read fails the session every run instead of being recorded",
    ),
    mutant(
        "stats-never-stored",
        "archive.py",
        "            key = stats_key(self.settings.stats_prefix, arn, created) if read.has_rows_object else None\n",
        "            key = None\n",
        "the record is archived without its stats object",
    ),
)

ISSUE_EIGHT = MUTANTS[:12]


def rot(candidate: Mutant, root: Path = ARCHIVER) -> list[str]:
    """Why this mutant no longer applies to the code under `root` (empty if it applies)."""
    problems = []
    for edit in candidate.edits:
        path = root / edit.file
        text = path.read_text() if path.is_file() else ""
        found = text.count(edit.original)
        if found != 1:
            problems.append(f"{candidate.name}: {edit.file} has its original text {found} times, not once")
        if edit.original == edit.replacement:
            problems.append(f"{candidate.name}: the replacement in {edit.file} changes nothing")
    return problems


def apply(candidate: Mutant, root: Path) -> None:
    """Mutate the copy of the package under `root` (never the real one: the runner checks)."""
    if root.resolve() == ARCHIVER.resolve():
        raise ValueError("refusing to mutate the real archiver package")
    for edit in candidate.edits:
        path = root / edit.file
        text = path.read_text()
        mutated = text.replace(edit.original, edit.replacement, 1)
        compile(mutated, str(path), "exec")  # a mutant is a bug, not a syntax error
        path.write_text(mutated)
