"""One archive under test: an emulator, a fault proxy in front of moto, a table, a bucket, and a worker to
run the real handler in. Faults and kills are armed for one run at a time; what a run did is read from
outside (S3, DynamoDB, the servers' call counts, the worker's logs)."""

from __future__ import annotations

import itertools
import json
import os
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import boto3

from archiver.records import parse_session_arn
from local.fault_proxy import FaultProxy
from local.gls_emulator import GameLiftStreamsEmulator
from local.reliability.constants import (
    ACCOUNT,
    CANARIES,
    CANARY,
    ENV_CANARY,
    GLS_OPERATIONS,
    PREFIX,
    REGION,
    names,
)
from local.reliability.control import GLS
from local.reliability.hostile import HostileEmulator
from local.reliability.oracle import Audit, check_record_line, expected_record, judge, utc_date
from local.stack import DUMMY_ACCESS_KEY_ID, DUMMY_SECRET_ACCESS_KEY
from local.worker import Invocation, Worker

_sessions: dict[str, Any] = {}
_sessions_lock = threading.Lock()


def aws_client(service: str, endpoint_url: str, region: str = REGION) -> Any:
    """A client for inspection or setup, independent of os.environ (one boto3 session per Region, so the
    service models are loaded once)."""
    with _sessions_lock:
        session = _sessions.get(region)
        if session is None:
            session = _sessions[region] = boto3.session.Session(
                aws_access_key_id=DUMMY_ACCESS_KEY_ID,
                aws_secret_access_key=DUMMY_SECRET_ACCESS_KEY,
                region_name=region,
            )
        return session.client(service, endpoint_url=endpoint_url)


def create_archive_resources(moto_url: str, table: str, bucket: str, region: str = REGION) -> None:
    """The ledger table and the archive bucket as the CDK stack makes them (versioned, so overwrites show)."""
    ddb, s3 = aws_client("dynamodb", moto_url, region), aws_client("s3", moto_url, region)
    ddb.create_table(
        TableName=table,
        AttributeDefinitions=[{"AttributeName": "session_arn", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "session_arn", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})


class World:
    """One archive under test: a GameLift Streams emulator, a fault proxy in front of moto, a table, a
    bucket, and a worker to run the real handler in. Faults and kills are armed for one run at a time."""

    def __init__(
        self,
        *,
        moto_url: str,
        worker: Worker,
        gls: GLS,
        settings: Mapping[str, str] | None = None,
        name: str | None = None,
        region: str = REGION,
        seed: int = 0,
        direct: bool = False,
    ) -> None:
        self.name = name or f"w{os.getpid()}-{next(names)}"
        self.table = f"rel-{self.name}"
        self.bucket = f"rel-{self.name}".lower()
        self.region = region
        self.moto_url = moto_url
        self.worker = worker
        self.gls = gls
        create_archive_resources(moto_url, self.table, self.bucket, region)
        self.proxy = FaultProxy(moto_url, seed=seed).start()
        self.store_url = moto_url if direct else self.proxy.endpoint_url  # direct: no fault proxy hop (load)
        self.settings: dict[str, str] = {
            "MAX_ATTEMPTS": "4",
            "LIST_RATE_PER_SECOND": "1000",
            "GET_RATE_PER_SECOND": "1000",
            "MAX_CONCURRENCY": "8",
            "READ_TIMEOUT_SECONDS": "2",
            "TIME_BUDGET_MARGIN_SECONDS": "0",
            **(settings or {}),
        }
        self.faults: list[dict[str, Any]] = []  # {"on": "gls"|"proxy", ...FaultPlan.apply_json spec}
        self.on_close: list[Callable[[], None]] = []
        self.invocations: list[Invocation] = []
        self._s3 = aws_client("s3", moto_url, region)
        self._ddb = aws_client("dynamodb", moto_url, region)
        self._gls_client = aws_client("gameliftstreams", gls.endpoint_url, region)

    # -- running ------------------------------------------------------------------------------------

    def env(self, overrides: Mapping[str, str] | None = None) -> dict[str, str]:
        """The Lambda's environment: the SDK's endpoint variables, dummy credentials, ARCHIVE_* settings."""
        return {
            "AWS_ENDPOINT_URL_DYNAMODB": self.store_url,
            "AWS_ENDPOINT_URL_S3": self.store_url,
            "AWS_ENDPOINT_URL_GAMELIFTSTREAMS": self.gls.endpoint_url,
            "AWS_ENDPOINT_URL": self.moto_url,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            "AWS_ACCESS_KEY_ID": DUMMY_ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": DUMMY_SECRET_ACCESS_KEY,
            "AWS_SESSION_TOKEN": ENV_CANARY,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
            "ARCHIVE_TABLE_NAME": self.table,
            "ARCHIVE_BUCKET_NAME": self.bucket,
            "ARCHIVE_PREFIX": PREFIX,
            "SOURCE_REGIONS": self.region,
            **self.settings,
            **(overrides or {}),
        }

    def _arm(self, kill: tuple[str, int, str] | None) -> None:
        gls_specs = [{k: v for k, v in s.items() if k != "on"} for s in self.faults if s.get("on") == "gls"]
        proxy_specs = [{k: v for k, v in s.items() if k != "on"} for s in self.faults if s.get("on") != "gls"]
        if kill is not None:
            operation, nth, when = kill
            spec = {"kind": "kill", "pid": self.worker.pid, "operation": operation, "nth": nth, "when": when}
            (gls_specs if operation in GLS_OPERATIONS else proxy_specs).append(spec)
        self.gls.set_faults(gls_specs)
        self.gls.call("POST", "/_emulator/reset-calls")
        self.proxy.faults.clear()
        self.proxy.reset_calls()
        for spec in proxy_specs:
            self.proxy.faults.apply_json(spec)

    def calls(self) -> dict[str, int]:
        """Requests since the last arming, per operation (faulted ones included)."""
        calls: Counter[str] = Counter({k: int(v) for k, v in self.gls.counts().get("counts", {}).items()})
        calls.update(self.proxy.call_counts())
        return dict(calls)

    def fired(self) -> dict[str, int]:
        """Faults injected since the last arming, as "Operation:kind" -> count."""
        fired: Counter[str] = Counter({k: int(v) for k, v in self.gls.counts().get("fired", {}).items()})
        fired.update({f"{op}:{kind}": n for (op, kind), n in self.proxy.faults.fired.items()})
        return dict(fired)

    def disarm(self) -> None:
        """No faults, no kills (for inspection and clean runs)."""
        self.gls.set_faults([])
        self.proxy.faults.clear()

    def run(
        self,
        *,
        timeout: float | None = None,
        kill: tuple[str, int, str] | None = None,
        env: Mapping[str, str] | None = None,
        trace: bool = False,
    ) -> Invocation:
        """One scheduled invocation with `self.faults` armed (and a kill, if given) for its duration."""
        self._arm(kill)
        try:
            invocation = self.worker.invoke(self.env(env), timeout=timeout, trace=trace)
            invocation.fired = self.fired()
            invocation.calls = self.calls()
        finally:
            self.disarm()
        self.invocations.append(invocation)
        return invocation

    def close(self) -> None:
        """Stop the proxy and whatever else the world owns (idempotent)."""
        callbacks, self.on_close = self.on_close, []
        self.proxy.stop()
        for callback in callbacks:
            callback()

    def __enter__(self) -> World:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- inspecting ---------------------------------------------------------------------------------

    def object_versions(self) -> dict[str, list[str]]:
        """Every key in the bucket with the IDs of all its versions (an overwrite adds one)."""
        versions: dict[str, list[str]] = {}
        for page in self._s3.get_paginator("list_object_versions").paginate(Bucket=self.bucket):
            for version in page.get("Versions", []):
                versions.setdefault(version["Key"], []).append(version["VersionId"])
        return versions

    def object_keys(self) -> dict[str, int]:
        """Every key in the bucket with its number of versions."""
        return {key: len(ids) for key, ids in self.object_versions().items()}

    def items(self) -> dict[str, dict[str, str]]:
        out: dict[str, dict[str, str]] = {}
        for page in self._ddb.get_paginator("scan").paginate(TableName=self.table):
            for item in page["Items"]:
                out[item["session_arn"]["S"]] = {k: v.get("S", "") for k, v in item.items()}
        return out

    def progress(self, expected: set[str] | None = None) -> int:
        """Expected sessions that have an item whose object exists, without reading any object."""
        expected = self.gls.succeeded(self.region) if expected is None else expected
        keys = self.object_keys()
        return sum(1 for arn, item in self.items().items() if arn in expected and item.get("s3_key") in keys)

    def crash_consistent(self) -> list[str]:
        """The invariant that must hold at every instant, even right after a SIGKILL: no DynamoDB item
        without its S3 object, and no session with two object keys."""
        keys = self.object_keys()
        problems = [f"item without object: {arn}" for arn, item in self.items().items() if item["s3_key"] not in keys]
        per_session = Counter(key_session(key) for key in keys)
        problems += [f"{n} object keys for session {s}" for s, n in per_session.items() if n > 1]
        return problems

    def audit(
        self,
        expected: set[str] | None = None,
        *,
        check_records: bool = False,
        logs: bool = True,
        region: str | None = None,
    ) -> Audit:
        """Compare S3 and DynamoDB with the sessions that should be archived (default: every SUCCEEDED one).

        Checks every object's key layout and JSON (one ASCII line, the schema's columns and Athena types),
        that items point at existing objects, no canary anywhere, and with `records` that each record
        equals what GetStreamSession returns now (less redactions)."""
        self.disarm()
        expected = self.gls.succeeded(region or self.region) if expected is None else expected
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
        if check_records:
            compared = [
                (k, r, items.get(str(r["session_arn"]))) for k, r in records.items() if r["session_arn"] in expected
            ]
            with ThreadPoolExecutor(8) as pool:
                for found in pool.map(lambda args: self._compare_with_api(*args), compared):
                    audit.problems += found
        places = [(f"s3://{self.bucket}", b"".join(stored).decode("utf-8", "replace")), ("DynamoDB", json.dumps(items))]
        if logs:
            printed = self.worker.logs()
            audit.log_bytes = len(printed)
            places.append(("the logs", printed))
        audit.leaks += [f"{canary} in {where}" for where, text in places for canary in CANARIES if canary in text]
        return audit

    def _body(self, key: str, version: str | None = None) -> bytes:
        extra = {"VersionId": version} if version else {}
        body: bytes = self._s3.get_object(Bucket=self.bucket, Key=key, **extra)["Body"].read()
        return body

    def _compare_with_api(self, key: str, record: Mapping[str, Any], item: Mapping[str, str] | None) -> list[str]:
        arn = parse_session_arn(record["session_arn"])
        if arn is None:
            return [f"{key}: unparseable session_arn"]
        detail = self._gls_client.get_stream_session(Identifier=arn.stream_group_id, StreamSessionIdentifier=arn.arn)
        detail.pop("ResponseMetadata", None)
        want = expected_record(detail, arn.arn)
        problems = [
            f"{key}: {column} is {record.get(column)!r}, GetStreamSession says {value!r}"
            for column, value in want.items()
            if record.get(column) != value
        ]
        unchecked = set(record) - set(want) - {"archived_at"}
        problems += [f"{key}: column {c} has no oracle" for c in sorted(unchecked)]
        if item is not None and item.get("archived_at") != record.get("archived_at"):
            problems.append(f"{key}: item archived_at {item.get('archived_at')} != record {record.get('archived_at')}")
        created = detail.get("CreatedAt")
        if isinstance(created, datetime) and f"/created_date={utc_date(created)}/" not in key:
            problems.append(f"{key}: created_date is not the date of CreatedAt {created.isoformat()}")
        return problems


def key_session(key: str) -> str:
    return key.rsplit("/", 1)[-1]


WorldFactory = Callable[..., World]


def world_factory(moto_url: str, worker: Worker, *, seed: int = 0) -> WorldFactory:
    """Fresh worlds on one moto server, each with its own in-process emulator (hostile=True: HostileEmulator)."""
    counter = itertools.count(1)

    def make(*, settings: Mapping[str, str] | None = None, hostile: bool = False) -> World:
        n = next(counter)
        kind = HostileEmulator if hostile else GameLiftStreamsEmulator
        emulator = kind(seed=seed * 10_000 + n, default_region=REGION, account_id=ACCOUNT, canary=CANARY).start()
        world = World(moto_url=moto_url, worker=worker, gls=GLS(emulator=emulator), settings=settings, seed=n)
        world.on_close.append(emulator.stop)
        return world

    return make
