"""One archive under test: a local stack (emulator, fault proxy in front of moto), a table, a bucket, and a
worker to run the real handler in. Faults and kills are armed for one run at a time; every run is judged
(`accounting`) and what it did is read from outside (S3, DynamoDB, the servers' counts, the worker's logs)."""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import os
import re
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from archiver.records import LEDGER_PARTITION_KEY, parse_session_arn
from archiver.rules import TRUE_WORDS
from local.fault_proxy import FaultProxyClient
from local.gls import EmulatorClient, GameLiftStreamsEmulator
from local.reliability.accounting import Snapshot, consistency, judge_run
from local.reliability.constants import (
    ACCOUNT,
    CANARIES,
    CANARY,
    ENV_CANARY,
    GLS_OPERATIONS,
    PREFIX,
    REGION,
    STATS_PREFIX,
    names,
)
from local.reliability.hostile import HostileEmulator
from local.reliability.oracle import (
    EXPORT_COLUMNS,
    Audit,
    check_record_line,
    expected_export,
    expected_launch_args,
    expected_record,
    item_problems,
    judge,
    stats_problems,
    utc_date,
    zip_name_matches,
)
from local.stack import LocalStack
from local.worker import Invocation, Worker

# The harness's Lambda configuration: fast (no pacing), few attempts, short read timeout, no margin.
DEFAULT_SETTINGS = {
    "MAX_ATTEMPTS": "4",
    "LIST_RATE_PER_SECOND": "1000",
    "GET_RATE_PER_SECOND": "1000",
    "MAX_CONCURRENCY": "8",
    "READ_TIMEOUT_SECONDS": "2",
    "TIME_BUDGET_MARGIN_SECONDS": "0",
}


class World:
    """A table and a bucket on `stack`, and the worker that runs the handler against them.

    `judge` (default): every run is judged against the archive before and after it (`World.violations`);
    off for load runs, whose archives are too large to read after every run.
    """

    def __init__(
        self,
        stack: LocalStack,
        worker: Worker,
        *,
        settings: Mapping[str, str] | None = None,
        name: str | None = None,
        judge: bool = True,
    ) -> None:
        self.stack = stack
        self.name = name or f"w{os.getpid()}-{next(names)}"
        self.table = f"rel-{self.name}"
        self.bucket = f"rel-{self.name}".lower()
        self.region = stack.region
        self.worker = worker
        self.log_workers: list[Worker] = [worker]  # whose output the audit searches for canaries
        self.gls: EmulatorClient = stack.gls
        self._proxy: FaultProxyClient | None = stack.faults if stack.fault_proxy else None
        stack.create_archive_resources(self.table, self.bucket)
        self.settings: dict[str, str] = {**DEFAULT_SETTINGS, **(settings or {})}
        self.faults: list[dict[str, Any]] = []  # {"on": "gls"|"proxy", ...FaultPlan.apply_json spec}
        self.on_close: list[Callable[[], None]] = []
        self.invocations: list[Invocation] = []
        self.judge = judge
        self.violations: list[str] = []  # what the judged runs got wrong, "run N: ..."
        self._last: Snapshot | None = None  # the archive after the last run, if nothing can have changed since
        self._s3 = stack.client("s3", direct=True)
        self._ddb = stack.client("dynamodb", direct=True)
        self._gls_client = stack.client("gameliftstreams")
        served = self.gls.config().get("canary")  # the emulator's own canary, where it says which
        self.canaries = (*CANARIES, *([str(served)] if served and served not in CANARIES else []))

    # -- sessions -----------------------------------------------------------------------------------

    def seed(self, n: int, *, succeeded_fraction: float = 1.0) -> list[str]:
        """`n` sessions in this world's Region; by default all to be archived (the emulator's mix is 60%)."""
        return self.gls.seed(n, self.region, succeeded_fraction=succeeded_fraction)

    def succeeded(self) -> set[str]:
        """The sessions that should be archived: those whose export SUCCEEDED."""
        return self.gls.succeeded(self.region)

    def shift(self, on: bool) -> None:
        """Whether the list shifts by one (a new session on top) after every page it serves."""
        self.gls.config(shift_on_page=on)

    # -- running ------------------------------------------------------------------------------------

    def env(self, overrides: Mapping[str, str] | None = None) -> dict[str, str]:
        """The Lambda's environment: the stack's endpoints and dummy credentials, a session token that is a
        canary, the ARCHIVE_* settings."""
        return {
            **self.stack.aws_env(),
            "AWS_SESSION_TOKEN": ENV_CANARY,
            "ARCHIVE_TABLE_NAME": self.table,
            "ARCHIVE_BUCKET_NAME": self.bucket,
            "ARCHIVE_PREFIX": PREFIX,
            "STATS_PREFIX": STATS_PREFIX,
            "SOURCE_REGIONS": self.region,
            **self.settings,
            **(overrides or {}),
        }

    def arm(self, kill: tuple[str, int, str] | None = None, *, pid: int | None = None) -> None:
        """Arm `self.faults` (and a kill of `pid`, default this world's worker) and zero the servers' call
        counts, for whatever runs next until `disarm` (runs of other workers, e.g. the event consumer's)."""
        self._last = None  # what runs now is not `run`: the archive is read again before the next run
        self._arm(kill, pid)

    def counts(self) -> tuple[dict[str, int], dict[str, int]]:
        """Requests per operation since the last arming, and the faults injected since then."""
        return self._counts()

    def touched(self) -> None:
        """Something other than `run` changed the archive: read it again before the next judged run."""
        self._last = None

    def _arm(self, kill: tuple[str, int, str] | None, pid: int | None = None) -> None:
        gls_specs = [{k: v for k, v in s.items() if k != "on"} for s in self.faults if s.get("on") == "gls"]
        proxy_specs = [{k: v for k, v in s.items() if k != "on"} for s in self.faults if s.get("on") != "gls"]
        if kill is not None:
            operation, nth, when = kill
            target = self.worker.pid if pid is None else pid
            spec = {"kind": "kill", "pid": target, "operation": operation, "nth": nth, "when": when}
            (gls_specs if operation in GLS_OPERATIONS else proxy_specs).append(spec)
        self.gls.set_faults(gls_specs)
        self.gls.reset_calls()
        if self._proxy is None:
            if proxy_specs:
                raise ValueError(f"faults on the store need the fault proxy: {proxy_specs}")
            return
        self._proxy.set_faults(proxy_specs)
        self._proxy.reset_calls()

    def _counts(self) -> tuple[dict[str, int], dict[str, int]]:
        """Requests per operation since the last arming (faulted ones included), and the faults injected
        since then as "Operation:kind" -> count."""
        gls = self.gls.calls()
        calls, fired = Counter(gls["counts"]), Counter(gls["fired"])
        if self._proxy is not None:
            proxy = self._proxy.counts()
            calls.update({str(k): int(v) for k, v in proxy["counts"].items()})
            fired.update({str(k): int(v) for k, v in proxy["fired"].items()})
        return dict(calls), dict(fired)

    def disarm(self) -> None:
        """No faults, no kills (for inspection and clean runs)."""
        self.gls.reset_faults()
        if self._proxy is not None:
            self._proxy.clear()

    def run(
        self,
        *,
        timeout: float | None = None,
        kill: tuple[str, int, str] | None = None,
        env: Mapping[str, str] | None = None,
        trace: bool = False,
        event: Any = None,
        context: Mapping[str, str] | None = None,
    ) -> Invocation:
        """One scheduled invocation with `self.faults` armed (and a kill, if given) for its duration; judged.
        `event` (default `{}`: a scheduled run) and `context` (the Lambda context's identity) as the worker
        takes them, e.g. a follow-up's event and the ARN it was invoked by."""
        before = self._before() if self.judge else None
        self._arm(kill)
        try:
            invocation = self.worker.invoke(self.env(env), timeout=timeout, trace=trace, event=event, context=context)
            invocation.calls, invocation.fired = self._counts()
        finally:
            self.disarm()
        self.invocations.append(invocation)
        if before is not None:
            after = self.snapshot()
            found = judge_run(invocation.summary, before, after)
            self.violations += [f"run {len(self.invocations)}: {problem}" for problem in found]
            # A killed worker's last requests may still land: read the archive again before the next run.
            self._last = None if invocation.killed else after
        return invocation

    def _before(self) -> Snapshot:
        if self._last is None:
            return self.snapshot()
        return Snapshot(frozenset(self.succeeded()), self._last.items, self._last.keys)

    def close(self) -> None:
        """Stop whatever the world owns (idempotent)."""
        callbacks, self.on_close = self.on_close, []
        for callback in callbacks:
            callback()

    def __enter__(self) -> World:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- inspecting ---------------------------------------------------------------------------------

    def object_versions(self, suffix: str = ".json") -> dict[str, list[str]]:
        """Every key in the bucket ending with `suffix` (the records; ".json.gz": the stats objects; "": all)
        with the IDs of all its versions (an overwrite adds one)."""
        versions: dict[str, list[str]] = {}
        for page in self._s3.get_paginator("list_object_versions").paginate(Bucket=self.bucket):
            for version in page.get("Versions", []):
                if version["Key"].endswith(suffix):
                    versions.setdefault(version["Key"], []).append(version["VersionId"])
        return versions

    def object_keys(self) -> dict[str, int]:
        """Every key in the bucket with its number of versions."""
        return {key: len(ids) for key, ids in self.object_versions().items()}

    def records(self) -> dict[str, Any]:
        """Every object in the bucket, by key, as the JSON it holds (no checks: `audit` does those)."""
        return {key: json.loads(self._body(key)) for key in self.object_versions()}

    def items(self) -> dict[str, dict[str, str]]:
        out: dict[str, dict[str, str]] = {}
        for page in self._ddb.get_paginator("scan").paginate(TableName=self.table):
            for item in page["Items"]:
                out[item[LEDGER_PARTITION_KEY]["S"]] = {k: v.get("S", "") for k, v in item.items()}
        return out

    def snapshot(self) -> Snapshot:
        """The archive and the sessions to archive, now."""
        items = {arn: item.get("s3_key", "") for arn, item in self.items().items()}
        return Snapshot(frozenset(self.succeeded()), items, frozenset(self.object_keys()))

    def progress(self, expected: set[str] | None = None) -> int:
        """Expected sessions that have an item whose object exists, without reading any object."""
        expected = self.succeeded() if expected is None else expected
        keys = self.object_keys()
        return sum(1 for arn, item in self.items().items() if arn in expected and item.get("s3_key") in keys)

    def crash_consistent(self) -> list[str]:
        """The invariant that must hold at every instant, even right after a SIGKILL (`consistency`)."""
        return consistency(self.snapshot())

    def audit(self, expected: set[str] | None = None, *, check_records: bool = False, logs: bool = True) -> Audit:
        """Compare S3 and DynamoDB with the sessions that should be archived (default: every SUCCEEDED one).

        Checks every object's key layout and JSON (one ASCII line, the schema's columns and Athena types),
        that items point at existing objects, no canary anywhere, and with `check_records` that each record
        equals what GetStreamSession returns now (less redactions). A search that had nothing to search
        (no logs; no compared session that carried the canary) is a problem, not a pass."""
        self.disarm()
        expected = self.succeeded() if expected is None else expected
        versions = self.object_versions()
        with ThreadPoolExecutor(8) as pool:
            current = dict(zip(versions, pool.map(self._body, versions), strict=True))
            older = [(k, v) for k, ids in versions.items() for v in ids if len(ids) > 1]
            stored = list(current.values()) + list(pool.map(lambda kv: self._body(*kv), older))
        records: dict[str, dict[str, Any]] = {}
        problems: list[str] = []
        for key, body in current.items():
            record, found = check_record_line(key, body)
            problems += found
            if record is not None:
                records[key] = record
        items = self.items()
        audit = judge(expected, {k: len(v) for k, v in versions.items()}, records, items)
        audit.problems += problems
        for item in items.values():  # every item must be made from the record it points at
            key = item.get("s3_key", "")
            if key in records:
                audit.unequal += item_problems(key, records[key], item)
        audit.problems += self._stats_audit(records)
        if check_records:
            compared = [
                (k, r, items.get(str(r["session_arn"]))) for k, r in records.items() if r["session_arn"] in expected
            ]
            with ThreadPoolExecutor(8) as pool:
                answers = list(pool.map(lambda args: self._compare_with_api(*args), compared))
            for found, _ in answers:
                audit.problems += found
            if compared and not any(served for _, served in answers):
                audit.problems.append(f"no compared session carried the canary {CANARY}: the leak check is vacuous")
        places = [(f"s3://{self.bucket}", b"".join(stored).decode("utf-8", "replace")), ("DynamoDB", json.dumps(items))]
        if logs:
            printed = "".join(worker.logs() for worker in self.log_workers)
            audit.log_bytes = len(printed)
            places.append(("the logs", printed))
            if not printed:
                audit.problems.append("the worker printed nothing: no logs to search for canaries")
        audit.leaks += [f"{canary} in {where}" for where, text in places for canary in self.canaries if canary in text]
        return audit

    def _stats_audit(self, records: Mapping[str, Mapping[str, Any]]) -> list[str]:
        """Every record's stats_key names a stored stats object (and only when its stats_status stores rows),
        whose rows are the record's stats_rows, each of its session; no stats object is anyone else's."""
        stats = self.object_versions(".json.gz")
        problems: list[str] = []
        claimed: set[str] = set()
        for key, record in records.items():
            stats_key, status = record.get("stats_key"), record.get("stats_status")
            if (stats_key is not None) != (status in ("stored", "truncated")):
                problems.append(f"{key}: stats_key {stats_key!r} with stats_status {status!r}")
            if not isinstance(stats_key, str):
                continue
            claimed.add(stats_key)
            if stats_key not in stats:
                problems.append(f"{key}: its stats object {stats_key} does not exist")
                continue
            rows = record.get("stats_rows")
            body = self._body(stats_key)
            problems += stats_problems(
                stats_key, body, str(record["session_arn"]), rows if isinstance(rows, int) else None
            )
        archived = {str(record["session_arn"]).rsplit("/", 1)[-1] for record in records.values()}
        for key in set(stats) - claimed:  # a crash between the stats object and the record leaves one until retried
            if key.rsplit("_", 1)[-1].removesuffix(".json.gz") in archived:
                problems.append(f"stats object {key} is not its archived session's stats_key")
        return problems

    def _export_zip(self, detail: Mapping[str, Any]) -> tuple[bytes | None, str | None, str]:
        """The session's export ZIP found as docs/EXPORTS.md says (bytes, ETag), or None and the status the
        record must then say."""
        metadata = detail.get("ExportFilesMetadata") or {}
        uri = metadata.get("OutputUri") if isinstance(metadata, Mapping) else None
        arn = parse_session_arn(detail.get("Arn"))
        if not isinstance(uri, str) or not uri.startswith("s3://") or arn is None:
            return None, None, "not_s3"
        bucket, _, path = uri[len("s3://") :].partition("/")
        if not S3_BUCKET.fullmatch(bucket) or not _utf8(path) or len(path.encode("utf-8")) > 1024:
            return None, None, "not_s3"  # no request can name it
        if path.lower().endswith(".zip"):
            key: str | None = path
        else:
            folder = path if not path or path.endswith("/") else path + "/"
            try:
                listed = self._s3.list_objects_v2(Bucket=bucket, Prefix=folder, Delimiter="/").get("Contents", [])
            except self._s3.exceptions.NoSuchBucket:
                return None, None, "no_bucket"
            mine = [o for o in listed if zip_name_matches(o["Key"], arn.stream_group_id, arn.session_id)]
            key = max(mine, key=lambda o: (o["LastModified"], o["Key"]))["Key"] if mine else None
        if key is None:
            return None, None, "not_found"
        try:
            answer = self._s3.get_object(Bucket=bucket, Key=key)
        except self._s3.exceptions.ClientError:
            return None, None, "not_found"
        return answer["Body"].read(), answer.get("ETag"), "read"

    def _body(self, key: str, version: str | None = None) -> bytes:
        extra = {"VersionId": version} if version else {}
        body: bytes = self._s3.get_object(Bucket=self.bucket, Key=key, **extra)["Body"].read()
        return body

    def _compare_with_api(
        self, key: str, record: Mapping[str, Any], item: Mapping[str, str] | None
    ) -> tuple[list[str], bool]:
        """What differs between the record and GetStreamSession's answer now, and whether that answer
        carried the canary (so that the leak search had a secret to look for)."""
        arn = parse_session_arn(record["session_arn"])
        if arn is None:
            return [f"{key}: unparseable session_arn"], False
        detail = self._gls_client.get_stream_session(Identifier=arn.stream_group_id, StreamSessionIdentifier=arn.arn)
        detail.pop("ResponseMetadata", None)
        served = any(canary in json.dumps(detail, default=str) for canary in (CANARY, *self.canaries[len(CANARIES) :]))
        want = expected_record(detail, arn.arn)
        keep = self.settings.get("KEEP_LAUNCH_ARGUMENT_VALUES", "").strip().lower() in TRUE_WORDS
        want["additional_launch_args"] = expected_launch_args(detail.get("AdditionalLaunchArgs"), keep=keep)
        created_at = detail.get("CreatedAt")
        stats_key = (
            f"{STATS_PREFIX}source_region={arn.region}/created_date={utc_date(created_at)}/"
            f"{arn.stream_group_id}_{arn.session_id}.json.gz"
            if isinstance(created_at, datetime)
            else None
        )
        zip_bytes, etag, missing = self._export_zip(detail)
        export = expected_export(zip_bytes, etag, stats_key, missing)
        if zip_bytes is not None and record.get("zip_etag") not in (None, etag):
            # The ZIP was written again after the session was archived (a bucket owner may overwrite it): the
            # record, written once, describes the ZIP it read; the one there now cannot judge its values.
            export, zip_bytes = None, None
        checked = set(EXPORT_COLUMNS)  # by type always (check_record_line); by value where `export` knows
        want.update(export or {})
        bytes_read = record.get("export_bytes_read")
        if zip_bytes is not None and not (isinstance(bytes_read, int) and 0 < bytes_read <= len(zip_bytes)):
            want["export_bytes_read"] = f"between 1 and {len(zip_bytes)}"
        problems = [
            f"{key}: {column} is {record.get(column)!r}, GetStreamSession says {value!r}"
            for column, value in want.items()
            if record.get(column) != value
        ]
        unchecked = set(record) - set(want) - checked - {"archived_at"}
        problems += [f"{key}: column {c} has no oracle" for c in sorted(unchecked)]
        if item is not None and item.get("archived_at") != record.get("archived_at"):
            problems.append(f"{key}: item archived_at {item.get('archived_at')} != record {record.get('archived_at')}")
        created = detail.get("CreatedAt")
        if isinstance(created, datetime) and f"/created_date={utc_date(created)}/" not in key:
            problems.append(f"{key}: created_date is not the date of CreatedAt {created.isoformat()}")
        return problems, served


S3_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


WorldFactory = Callable[..., World]


@contextlib.contextmanager
def shared_moto() -> Iterator[str]:
    """One moto server in a process of its own (its own GIL) for many worlds, each a `LocalStack` on it."""
    with LocalStack(processes=True, fault_proxy=False) as stack:
        yield stack.moto_url


def world_factory(moto_url: str, worker: Worker, *, seed: int = 0) -> WorldFactory:
    """Fresh worlds on one moto server, each with its own stack in this process: fault proxy and emulator
    (hostile=True: a HostileEmulator), the emulator writing CANARY into every session's secrets."""
    counter = itertools.count(1)

    def make(*, settings: Mapping[str, str] | None = None, hostile: bool = False) -> World:
        kind = HostileEmulator if hostile else GameLiftStreamsEmulator
        emulator = functools.partial(kind, account_id=ACCOUNT, canary=CANARY)
        stack = LocalStack(seed * 10_000 + next(counter), REGION, moto_url=moto_url, emulator_factory=emulator)
        stack.start()
        try:
            world = World(stack, worker, settings=settings)
        except BaseException:
            stack.stop()
            raise
        world.on_close.append(stack.stop)
        return world

    return make
