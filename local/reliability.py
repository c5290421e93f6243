"""Reliability harness: faults, kills, fuzzing, property runs and load against the local stack, and their figures.

`python -m local.reliability` (`make reliability`) runs the whole fault matrix, the kill matrix, the
property-based sequences, the hostile-input fuzzing, the load case and an independent check against a
separately started emulator and moto server, prints the tables and writes docs/RELIABILITY.md.
`tests/reliability/` runs a small, fast subset of the same checks in `make test`.

How a run is made: the real handler runs in a *worker* subprocess (a warm "Lambda container") that reads
one request per line and imports the handler once; the emulator and fault proxy can SIGKILL it at any
request (`FaultPlan.kill`), after which a standby worker takes over, as a fresh Lambda container would.
What a run did is judged only from outside: the objects in S3, the items in DynamoDB, the calls the
servers saw and the lines the worker printed (`World.audit`).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import itertools
import json
import os
import platform
import random
import re
import select
import signal
import subprocess
import sys
import threading
import time
import traceback
import tracemalloc
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Final
from urllib.parse import urlencode, urlsplit

import boto3

from archiver.records import SCHEMA, parse_session_arn
from local.fault_proxy import FaultProxy
from local.gls_emulator import GameLiftStreamsEmulator
from local.memory import peak_rss_kb
from local.stack import DUMMY_ACCESS_KEY_ID, DUMMY_SECRET_ACCESS_KEY

REGION: Final = "us-east-2"
ACCOUNT: Final = "111122223333"
PREFIX: Final = "sessions/"
GLS_OPERATIONS: Final = ("ListStreamSessionsByAccount", "GetStreamSession")
STORE_OPERATIONS: Final = ("BatchGetItem", "PutObject", "PutItem")
OPERATIONS: Final = GLS_OPERATIONS + STORE_OPERATIONS

# Secrets that must never reach S3, DynamoDB or a log line. The emulator writes CANARY into every session's
# SignalRequest, SignalResponse and AdditionalEnvironmentVariables values; ROLE_CANARY is in its RoleArn;
# the worker's own environment holds the other two (a Lambda's environment variable values).
CANARY: Final = "CANARYq7Zx"
ROLE_CANARY: Final = "GameLiftStreamsAppRole"
ENV_CANARY: Final = "CANARY-session-token-4b1e"
CANARIES: Final = (CANARY, ROLE_CANARY, ENV_CANARY, DUMMY_SECRET_ACCESS_KEY)

DEFAULT_LOG_DIR: Final = Path(".cache/reliability")
_names = itertools.count(1)

if TYPE_CHECKING:
    import hypothesis


# ==== The worker: one warm "Lambda container" in a subprocess =====================================


@dataclass
class Invocation:
    """What one invocation of the handler returned, as its caller (the Lambda service) would see it."""

    summary: dict[str, Any] | None = None
    error: str | None = None
    killed: bool = False
    returncode: int | None = None
    seconds: float = 0.0
    maxrss_kb: int = 0
    traced_peak_bytes: int | None = None
    fired: dict[str, int] = field(default_factory=dict)  # "Operation:kind" -> faults the servers injected
    calls: dict[str, int] = field(default_factory=dict)  # operation -> requests the servers saw

    @property
    def failed(self) -> bool:
        return self.error is not None or self.killed

    def total(self, name: str) -> int:
        return int((self.summary or {}).get("total", {}).get(name, 0))

    def region(self, region: str = REGION) -> dict[str, Any]:
        regions: dict[str, Any] = (self.summary or {}).get("regions", {})
        return dict(regions.get(region, {}))


class _Process:
    """A started worker: its Popen, the pipe it answers on and the file its stdout/stderr go to."""

    def __init__(self, log_path: Path, env: Mapping[str, str]) -> None:
        self.log_path = log_path
        read_fd, write_fd = os.pipe()
        with open(log_path, "wb") as log:
            self.popen = subprocess.Popen(
                [sys.executable, "-m", "local.reliability", "worker", str(write_fd)],
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=subprocess.STDOUT,
                pass_fds=(write_fd,),
                env=dict(env),
            )
        os.close(write_fd)
        self.results = os.fdopen(read_fd, "rb")

    @property
    def pid(self) -> int:
        return self.popen.pid

    def request(self, payload: Mapping[str, Any], deadline: float) -> dict[str, Any] | None:
        """Send one request and read its answer; None if the process died first."""
        assert self.popen.stdin is not None
        try:
            self.popen.stdin.write(json.dumps(payload).encode() + b"\n")
            self.popen.stdin.flush()
        except (BrokenPipeError, OSError):
            return None
        ready, _, _ = select.select([self.results], [], [], deadline)
        if not ready:
            self.popen.kill()
            self.stop()
            raise TimeoutError(f"worker {self.pid} gave no answer within {deadline:.0f} s (see {self.log_path})")
        line = self.results.readline()
        return json.loads(line) if line else None

    def stop(self) -> int:
        """End the process: closing its stdin ends its loop; a hung one is killed. Returns its exit code."""
        if self.popen.stdin is not None:
            with contextlib.suppress(OSError):
                self.popen.stdin.close()
        try:
            code = self.popen.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            code = self.popen.wait()
        with contextlib.suppress(OSError):
            self.results.close()
        return code


class Worker:
    """Runs the real handler in a subprocess that stays warm between invocations.

    With `standby`, a second process is started ahead of need (it imports the handler while the current
    one works), so a killed worker is replaced without paying the import again.
    """

    def __init__(
        self,
        log_dir: Path = DEFAULT_LOG_DIR,
        *,
        standby: bool = True,
        deadline: float = 900.0,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.log_dir = log_dir
        self.env = dict(env or {})  # fixed for the process's life, like a function's configuration (log level)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.standby = standby
        self.deadline = deadline
        self.spawned = 0
        self.kills = 0
        self.log_paths: list[Path] = []
        self._current: _Process | None = None
        self._spare: _Process | None = None
        self._tag = f"{os.getpid()}-{next(_names)}"

    def _spawn(self) -> _Process:
        self.spawned += 1
        path = self.log_dir / f"worker-{self._tag}-{self.spawned}.log"
        self.log_paths.append(path)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ARCHIVE_", "POWERTOOLS_"))}
        root = Path(__file__).resolve().parent.parent
        env["PYTHONPATH"] = os.pathsep.join([str(root), str(root / "lambdas")])
        env["PYTHONUNBUFFERED"] = "1"  # a line printed before a SIGKILL is still in the log, as in CloudWatch
        env.update(self.env)
        return _Process(path, env)

    def _process(self) -> _Process:
        if self._current is None:
            self._current, self._spare = (self._spare or self._spawn()), None
        if self.standby and self._spare is None:
            self._spare = self._spawn()
        return self._current

    @property
    def pid(self) -> int:
        """The pid that the next invocation runs in (a kill rule targets it)."""
        return self._process().pid

    def invoke(
        self, env: Mapping[str, str], *, timeout: float | None = None, trace: bool = False, event: Any = None
    ) -> Invocation:
        """One handler invocation with exactly `env` (ARCHIVE_*, AWS_*, ...) and a context of `timeout` s."""
        process = self._process()
        started = time.monotonic()
        answer = process.request(
            {"env": dict(env), "timeout": timeout, "trace": trace, "event": event or {}}, self.deadline
        )
        seconds = time.monotonic() - started
        if answer is None:
            self._current = None
            code = process.stop()
            killed = code == -signal.SIGKILL
            self.kills += killed
            return Invocation(killed=killed, returncode=code, seconds=seconds, error=f"worker exited with {code}")
        return Invocation(
            summary=answer.get("summary"),
            error=answer.get("error"),
            seconds=seconds,
            maxrss_kb=int(answer.get("maxrss_kb", 0)),
            traced_peak_bytes=answer.get("traced_peak_bytes"),
        )

    def logs(self) -> str:
        """Everything every process of this worker printed (Powertools logs, EMF, runtime errors)."""
        return "".join(p.read_text(errors="replace") for p in self.log_paths if p.exists())

    def close(self) -> None:
        for process in (self._current, self._spare):
            if process is not None:
                process.stop()
        self._current = self._spare = None

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _worker_main(result_fd: int) -> int:
    """The worker process: import the handler once, then run it for every request line on stdin."""
    # Imported here, not at the top: the orchestrator never runs the handler in its own process.
    from archiver.handler import handler  # noqa: PLC0415
    from local.lambda_context import LambdaContext  # noqa: PLC0415

    results = os.fdopen(result_fd, "w", encoding="utf-8")
    applied: set[str] = set()
    for line in sys.stdin:
        request = json.loads(line)
        env: dict[str, str] = request["env"]
        for name in applied - env.keys():
            os.environ.pop(name, None)
        os.environ.update(env)
        applied = set(env)
        if request.get("trace"):
            tracemalloc.start()
        context = LambdaContext(timeout_seconds=float(request.get("timeout") or 900.0))
        answer: dict[str, Any] = {}
        try:
            answer["summary"] = handler(request.get("event") or {}, context)
        except Exception as error:  # what the Lambda runtime prints for a failed invocation
            print(
                json.dumps(
                    {
                        "errorMessage": str(error),
                        "errorType": type(error).__name__,
                        "stackTrace": traceback.format_exception(error),
                    }
                ),
                flush=True,
            )
            answer["error"] = f"{type(error).__name__}: {error}"
        if request.get("trace"):
            answer["traced_peak_bytes"] = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        answer["maxrss_kb"] = peak_rss_kb()
        results.write(json.dumps(answer) + "\n")
        results.flush()
    return 0


# ==== GameLift Streams emulator control (in this process or another one) ===========================


class GLS:
    """The emulator's control API (`/_emulator/...`), called in-process or over HTTP for a separate process."""

    def __init__(self, *, emulator: GameLiftStreamsEmulator | None = None, url: str | None = None) -> None:
        if (emulator is None) == (url is None):
            raise ValueError("give an in-process emulator or the URL of one")
        self.emulator = emulator
        self._url = url

    @property
    def endpoint_url(self) -> str:
        return self.emulator.endpoint_url if self.emulator is not None else str(self._url)

    def call(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
        if self.emulator is not None:
            status, payload = self.emulator.control(method, path, dict(body or {}))
        else:
            parts = urlsplit(str(self._url))
            conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=120)
            try:
                if method == "GET":
                    query = f"?{urlencode(dict(body or {}))}" if body else ""
                    conn.request("GET", path + query)
                else:
                    conn.request(method, path, json.dumps(dict(body or {})), {"Content-Type": "application/json"})
                response = conn.getresponse()
                status, payload = response.status, json.loads(response.read() or b"{}")
            finally:
                conn.close()
        if status != 200:
            raise RuntimeError(f"emulator control {method} {path} answered {status}: {payload}")
        return payload

    def seed(self, n: int, region: str = REGION, succeeded_fraction: float = 1.0) -> list[str]:
        body = {"seed": n, "region": region, "succeeded_fraction": succeeded_fraction}
        return [str(a) for a in self.call("POST", "/_emulator/sessions", body)["arns"]]

    def add(self, region: str = REGION, **fields: Any) -> dict[str, Any]:
        return dict(self.call("POST", "/_emulator/sessions", {"region": region, **fields}))

    def set_export(self, arn: str, status: str) -> None:
        self.call("POST", "/_emulator/export-status", {"arn": arn, "status": status})

    def succeeded(self, region: str = REGION) -> set[str]:
        return set(self.call("GET", "/_emulator/succeeded", {"region": region})["arns"])

    def set_faults(self, specs: Sequence[Mapping[str, Any]]) -> None:
        self.call("POST", "/_emulator/reset-faults", {"limits": True})
        for spec in specs:
            self.call("POST", "/_emulator/faults", spec)

    def shift(self, on: bool) -> None:
        self.call("POST", "/_emulator/config", {"shift_on_page": on})

    def counts(self) -> dict[str, Any]:
        return dict(self.call("GET", "/_emulator/calls"))


class HostileEmulator(GameLiftStreamsEmulator):
    """The emulator, plus raw values put on the wire as given: JSON nulls, wrong types, list items that
    differ from GetStreamSession. Keyed by the stored session's Arn."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.get_wire: dict[str, dict[str, Any]] = {}
        self.list_wire: dict[str, dict[str, Any]] = {}

    def list_sessions(self, region: str, query: Mapping[str, str]) -> dict[str, Any]:
        out = super().list_sessions(region, query)
        for item in out["Items"]:
            item.update(self.list_wire.get(str(item.get("Arn")), {}))
        return out

    def get_stream_session(self, region: str, group: str, session: str) -> dict[str, Any]:
        out = super().get_stream_session(region, group, session)
        out.update(self.get_wire.get(str(out.get("Arn")), {}))
        return out


# ==== Archive resources and a world to run in =====================================================


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


@dataclass
class Audit:
    """The archive judged from outside against the sessions whose export SUCCEEDED."""

    expected: int = 0
    archived: int = 0  # expected sessions with exactly one object and one item that points at it
    lost: list[str] = field(default_factory=list)  # expected sessions lacking an object or an item
    duplicated: list[str] = field(default_factory=list)  # >1 object key for a session, or item without object
    extra: list[str] = field(default_factory=list)  # objects or items of sessions that should not be archived
    overwrites: int = 0  # object versions beyond one per key (a retried write; harmless)
    problems: list[str] = field(default_factory=list)  # bad key, bad JSON, record != GetStreamSession
    leaks: list[str] = field(default_factory=list)  # a canary found in S3, DynamoDB or the logs
    objects: int = 0
    items: int = 0
    log_bytes: int = 0

    @property
    def clean(self) -> bool:
        return not (self.lost or self.duplicated or self.extra or self.problems or self.leaks)

    def describe(self) -> str:
        parts = [f"expected {self.expected}", f"archived {self.archived}"]
        for name in ("lost", "duplicated", "extra", "problems", "leaks"):
            values: list[str] = getattr(self, name)
            if values:
                parts.append(f"{name} {len(values)}: {values[:3]}")
        return ", ".join(parts)


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
        self.name = name or f"w{os.getpid()}-{next(_names)}"
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
        per_session = Counter(_key_session(key) for key in keys)
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
        if isinstance(created, datetime) and f"/created_date={_date(created)}/" not in key:
            problems.append(f"{key}: created_date is not the date of CreatedAt {created.isoformat()}")
        return problems


def judge(
    expected: set[str], versions: Mapping[str, int], records: Mapping[str, Mapping[str, Any]], items: Mapping[str, Any]
) -> Audit:
    """Lost, duplicated and extra sessions from what S3 (key -> versions, key -> record) and DynamoDB hold."""
    audit = Audit(expected=len(expected), objects=len(versions), items=len(items))
    audit.overwrites = sum(n - 1 for n in versions.values())
    by_session: dict[str, list[str]] = {}
    for key in versions:
        record = records.get(key)
        by_session.setdefault(str(record["session_arn"]) if record else f"<unreadable {key}>", []).append(key)
    for arn in expected:
        objects, item = by_session.get(arn, []), items.get(arn)
        if not objects or item is None:
            audit.lost.append(arn)
        elif len(objects) > 1:
            audit.duplicated.append(arn)
        elif item.get("s3_key") != objects[0]:
            audit.problems.append(f"item of {arn} points at {item.get('s3_key')}, its object is {objects[0]}")
        else:
            audit.archived += 1
    for arn, objects in by_session.items():
        if arn not in expected:
            audit.extra.append(arn)
            if len(objects) > 1:
                audit.duplicated.append(arn)
    for arn, item in items.items():
        if item.get("s3_key") not in versions:
            audit.duplicated.append(f"item without object: {arn}")
        if arn not in expected:
            audit.extra.append(f"item: {arn}")
    return audit


def _key_session(key: str) -> str:
    return key.rsplit("/", 1)[-1]


# ==== The oracle: what a record must be, written independently of archiver.records ==================

KEY_PATTERN: Final = re.compile(
    re.escape(PREFIX) + r"source_region=(?P<region>[a-z]{2}(?:-[a-z]+)+-[0-9]{1,2})/"
    r"created_date=(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})/(?P<group>[A-Za-z0-9-]{1,32})_(?P<session>[A-Za-z0-9-]{1,32})"
    r"\.json"
)
SESSION_ARN: Final = re.compile(
    r"arn:aws:gameliftstreams:(?P<region>[a-z]{2}(?:-[a-z]+)+-[0-9]{1,2}):(?P<account>[0-9]{12}):"
    r"streamsession/(?P<group>[A-Za-z0-9-]{1,32})/(?P<session>[A-Za-z0-9-]{1,32})"
)
TIMESTAMP: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}")
INT32: Final = (-(2**31), 2**31 - 1)
# column -> (Athena type, path in GetStreamSession's answer)
API_COLUMNS: Final[dict[str, tuple[str, tuple[str, ...]]]] = {
    "description": ("string", ("Description",)),
    "user_id": ("string", ("UserId",)),
    "status": ("string", ("Status",)),
    "status_reason": ("string", ("StatusReason",)),
    "protocol": ("string", ("Protocol",)),
    "location": ("string", ("Location",)),
    "application_arn": ("string", ("ApplicationArn",)),
    "created_at": ("timestamp", ("CreatedAt",)),
    "last_updated_at": ("timestamp", ("LastUpdatedAt",)),
    "application_started_at": ("timestamp", ("ApplicationStartedAt",)),
    "streaming_started_at": ("timestamp", ("StreamingStartedAt",)),
    "streaming_ended_at": ("timestamp", ("StreamingEndedAt",)),
    "connection_timeout_seconds": ("int", ("ConnectionTimeoutSeconds",)),
    "session_length_seconds": ("int", ("SessionLengthSeconds",)),
    "additional_launch_args": ("array<string>", ("AdditionalLaunchArgs",)),
    "performance_stats_shared_with_client": ("boolean", ("PerformanceStatsConfiguration", "SharedWithClient")),
    "display_resolution_width": ("int", ("DisplayConfiguration", "Resolution", "Width")),
    "display_resolution_height": ("int", ("DisplayConfiguration", "Resolution", "Height")),
    "log_file_location_uri": ("string", ("LogFileLocationUri",)),
    "web_sdk_protocol_url": ("string", ("WebSdkProtocolUrl",)),
    "export_status": ("string", ("ExportFilesMetadata", "Status")),
    "export_status_reason": ("string", ("ExportFilesMetadata", "StatusReason")),
    "export_output_uri": ("string", ("ExportFilesMetadata", "OutputUri")),
}


def _date(moment: datetime) -> str:
    utc = moment.astimezone(UTC)
    return f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}"


def _timestamp(value: object) -> str | None:
    if not isinstance(value, datetime):
        return None
    utc = (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)
    return f"{_date(utc)} {utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}.{utc.microsecond // 1000:03d}"


def _convert(kind: str, value: object) -> object:
    if kind == "string":
        return value if isinstance(value, str) else None
    if kind == "timestamp":
        return _timestamp(value)
    if kind == "int":
        return value if _is_int32(value) else None
    if kind == "boolean":
        return value if isinstance(value, bool) else None
    if kind == "array<string>":
        return [v for v in value if isinstance(v, str)] if isinstance(value, list) else None
    raise ValueError(kind)


def expected_record(detail: Mapping[str, Any], listed_arn: str) -> dict[str, object]:
    """The record the archiver must write for this GetStreamSession answer (except `archived_at`)."""
    match = SESSION_ARN.fullmatch(listed_arn)
    assert match is not None, listed_arn
    want: dict[str, object] = {
        "schema_version": 1,
        "session_arn": listed_arn,
        "session_id": match["session"],
        "stream_group_id": match["group"],
        "region": match["region"],
        "account_id": match["account"],
    }
    for column, (kind, path) in API_COLUMNS.items():
        value: object = detail
        for name in path:
            value = value.get(name) if isinstance(value, Mapping) else None
        want[column] = _convert(kind, value)
    app = detail.get("ApplicationArn")
    app_match = (
        re.fullmatch(r"arn:aws(?:-[a-z]+)*:gameliftstreams:[^:]*:[0-9]{12}:application/([a-zA-Z0-9-]{1,32})", app)
        if isinstance(app, str)
        else None
    )
    want["application_id"] = app_match[1] if app_match else None
    env = detail.get("AdditionalEnvironmentVariables")
    want["additional_environment_variables"] = (
        {str(name): "<redacted>" for name in env} if isinstance(env, Mapping) else None
    )
    return want


def check_record_line(key: str, body: bytes) -> tuple[dict[str, Any] | None, list[str]]:
    """A stored object as Athena's JSON SerDe reads it: one ASCII line, the schema's columns, each value of
    its column's type. Returns the record (if readable) and what is wrong."""
    problems: list[str] = []
    match = KEY_PATTERN.fullmatch(key)
    if match is None:
        problems.append(f"key outside the record layout: {key!r}")
    if not body.endswith(b"\n") or body.count(b"\n") != 1 or not body.isascii():
        problems.append(f"{key}: not one ASCII line")

    def no_constants(name: str) -> object:
        raise ValueError(f"non-JSON constant {name}")

    try:
        record = json.loads(body, parse_constant=no_constants)
    except ValueError as error:
        return None, [*problems, f"{key}: invalid JSON ({error})"]
    if not isinstance(record, dict):
        return None, [*problems, f"{key}: not a JSON object"]
    types = {f.name: f.athena_type for f in SCHEMA}
    if list(record) != list(types):
        problems.append(f"{key}: columns {list(record)} != schema {list(types)}")
    for column, kind in types.items():
        if not _athena_ok(kind, record.get(column)):
            problems.append(f"{key}: {column}={record.get(column)!r:.80} is not a valid {kind}")
    arn = SESSION_ARN.fullmatch(str(record.get("session_arn")))
    if match is not None and arn is not None:
        for part in ("region", "group", "session"):
            if match[part] != arn[part]:
                problems.append(f"{key}: {part} segment {match[part]!r} is not the ARN's {arn[part]!r}")
        created = record.get("created_at")
        if isinstance(created, str) and not created.startswith(match["date"]):
            problems.append(f"{key}: created_date {match['date']} is not the date of created_at {created}")
    elif arn is None:
        problems.append(f"{key}: session_arn {record.get('session_arn')!r:.80} is not a session ARN")
    return record, problems


def _is_int32(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and INT32[0] <= value <= INT32[1]


_ATHENA_TYPES: Final[dict[str, Callable[[object], bool]]] = {
    "string": lambda v: isinstance(v, str),
    "int": _is_int32,
    "boolean": lambda v: isinstance(v, bool),
    "timestamp": lambda v: isinstance(v, str) and TIMESTAMP.fullmatch(v) is not None,
    "array<string>": lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
    "map<string,string>": lambda v: isinstance(v, dict) and all(isinstance(x, str) for x in v.values()),
}


def _athena_ok(kind: str, value: object) -> bool:
    """Whether Athena's JSON SerDe reads `value` as a `kind` column (null always reads)."""
    return value is None or _ATHENA_TYPES[kind](value)


# ==== The fault matrix ===============================================================================


def fault(operation: str, kind: str, **rule: Any) -> dict[str, Any]:
    """A fault rule for the server that answers `operation` (FaultPlan.apply_json form, plus "on")."""
    return {"on": "gls" if operation in GLS_OPERATIONS else "proxy", "operation": operation, "kind": kind, **rule}


def _throttle_kind(operation: str) -> str:
    """How each service says "slow down": 429 ThrottlingException, ProvisionedThroughputExceeded, 503 SlowDown."""
    return {"PutObject": "slowdown", "BatchGetItem": "throughput", "PutItem": "throughput"}.get(operation, "throttle")


def everywhere(kind: str | Callable[[str], str], **rule: Any) -> tuple[dict[str, Any], ...]:
    return tuple(fault(op, kind(op) if callable(kind) else kind, **rule) for op in OPERATIONS)


@dataclass(frozen=True)
class Scenario:
    """One row of the fault matrix: faults armed for `runs` runs (new sessions before each after the
    first), then one clean run that must leave the archive complete."""

    name: str
    faults: tuple[dict[str, Any], ...] = ()
    runs: int = 3
    sessions: int = 200
    new_per_run: int = 20
    settings: tuple[tuple[str, str], ...] = ()
    shift: bool = False
    fatal: str | None = None  # every faulted run must fail at once, with an error matching this
    restarts: bool = False  # the listing must have restarted (expired NextToken)
    min_sessions: int = 5  # when scaled down: the listing cases need several pages

    def scaled(self, factor: float, runs: int | None = None) -> Scenario:
        return Scenario(
            self.name,
            self.faults,
            runs if runs is not None else self.runs,
            max(self.min_sessions, int(self.sessions * factor)),
            max(2, int(self.new_per_run * factor)),
            self.settings,
            self.shift,
            self.fatal,
            self.restarts,
            self.min_sessions,
        )


MATRIX: Final[tuple[Scenario, ...]] = (
    Scenario("none"),
    Scenario("throttling, steady 15% (429 / PTE / SlowDown)", everywhere(_throttle_kind, probability=0.15)),
    Scenario(
        "throttling, bursts",
        (
            fault("ListStreamSessionsByAccount", "throttle", after=1, times=5),
            fault("GetStreamSession", "throttle", after=15, times=14),
            fault("BatchGetItem", "throughput", after=1, times=5),
            fault("PutObject", "slowdown", after=10, times=12),
            fault("PutItem", "throughput", after=25, times=12),
        ),
    ),
    Scenario(
        "quota 20/s enforced, client paced at 18/s",
        ({"on": "gls", "kind": "rate_limit", "operation": "*", "per_second": 20, "burst": 20},),
        sessions=100,
        new_per_run=10,
        settings=(("LIST_RATE_PER_SECOND", "18"), ("GET_RATE_PER_SECOND", "18")),
    ),
    Scenario("5xx, 10% everywhere", everywhere("internal", probability=0.10)),
    Scenario("latency spikes, 5% +0.3 s", everywhere("latency", probability=0.05, seconds=0.3)),
    Scenario("connection resets, 5%", everywhere("reset", probability=0.05)),
    Scenario(
        "read timeouts, 2% (request took effect)",
        everywhere("timeout", probability=0.02, seconds=1.3),
        settings=(("READ_TIMEOUT_SECONDS", "1"),),
    ),
    Scenario(
        "expired NextToken, twice a run",
        (fault("ListStreamSessionsByAccount", "validation", times=2),),
        sessions=350,
        min_sessions=210,
        restarts=True,
    ),
    Scenario(
        "expired NextToken, every time",
        (fault("ListStreamSessionsByAccount", "validation"),),
        sessions=250,
        min_sessions=210,
        fatal="NextToken rejected 4 times",
    ),
    Scenario("list shifts while paging", shift=True, sessions=350, min_sessions=210),
    Scenario("vanished between list and get (404), 10%", (fault("GetStreamSession", "not_found", probability=0.1),)),
    Scenario("DynamoDB UnprocessedKeys, 50%", (fault("BatchGetItem", "unprocessed", probability=0.5, fraction=0.5),)),
    Scenario(
        "DynamoDB UnprocessedKeys, never processed",
        (fault("BatchGetItem", "unprocessed", fraction=1.0),),
        runs=1,
        sessions=60,
        new_per_run=0,
    ),
    Scenario(
        "DynamoDB ProvisionedThroughputExceeded, 20%",
        (fault("BatchGetItem", "throughput", probability=0.2), fault("PutItem", "throughput", probability=0.2)),
    ),
    Scenario(
        "S3 SlowDown 15% + 500 5%",
        (fault("PutObject", "slowdown", probability=0.15), fault("PutObject", "internal", probability=0.05)),
    ),
    *(
        Scenario(f"AccessDenied on {op}", (fault(op, "access_denied"),), runs=2, fatal="AccessDenied")
        for op in OPERATIONS
    ),
    Scenario(
        "missing table", (fault("BatchGetItem", "not_found"),), runs=2, fatal="BatchGetItem.*ResourceNotFoundException"
    ),
    Scenario("missing bucket", (fault("PutObject", "not_found"),), runs=2, fatal="NoSuchBucket"),
    Scenario(
        "all of the above at 3%, list shifting",
        (
            *everywhere(_throttle_kind, probability=0.03),
            *everywhere("internal", probability=0.03),
            *everywhere("reset", probability=0.03),
            *everywhere("latency", probability=0.03, seconds=0.2),
            *everywhere("timeout", probability=0.01, seconds=1.3),
            fault("ListStreamSessionsByAccount", "validation", probability=0.2),
            fault("GetStreamSession", "not_found", probability=0.03),
            fault("BatchGetItem", "unprocessed", probability=0.2),
        ),
        shift=True,
        settings=(("READ_TIMEOUT_SECONDS", "1"),),
        min_sessions=110,
    ),
)


@dataclass
class ScenarioResult:
    scenario: Scenario
    runs_failed: int = 0
    archived_during: int = 0  # archived (object + item) when the faulted runs were over
    audit: Audit = field(default_factory=Audit)
    restarts: int = 0
    repeated: int = 0
    failed_sessions: int = 0
    skipped: int = 0
    faults_fired: int = 0
    violations: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.audit.clean and not self.violations


WorldFactory = Callable[..., World]


def run_scenario(make_world: WorldFactory, scenario: Scenario, *, records: bool = True) -> ScenarioResult:
    started = time.monotonic()
    result = ScenarioResult(scenario)
    world = make_world(settings=dict(scenario.settings))
    try:
        world.gls.seed(scenario.sessions)
        world.gls.seed(max(1, scenario.sessions // 4), succeeded_fraction=0.0)  # never to be archived
        concurrency = int(world.settings["MAX_CONCURRENCY"])
        for number in range(scenario.runs):
            if number:
                world.gls.seed(scenario.new_per_run)
            world.faults = list(scenario.faults)
            world.gls.shift(scenario.shift)
            invocation = world.run()
            world.gls.shift(False)
            result.runs_failed += invocation.failed
            result.restarts += int(invocation.region(world.region).get("list_restarts", 0))
            result.repeated += invocation.total("repeated")
            result.failed_sessions += invocation.total("failed")
            result.skipped += invocation.total("skipped")
            result.faults_fired += sum(invocation.fired.values())
            result.violations += world.crash_consistent()
            if invocation.killed:
                result.violations.append(f"run {number + 1} died: {invocation.error}")
            if scenario.fatal is not None:
                result.violations += _fatal_violations(scenario, invocation, number, concurrency)
        if scenario.restarts and result.restarts == 0:
            result.violations.append("the listing never restarted")
        if scenario.fatal is None and scenario.shift and result.repeated == 0:
            result.violations.append("no session was seen twice although the list shifted")
        world.faults = []
        result.archived_during = world.progress()
        final = world.run()
        if final.failed or final.total("failed"):
            result.violations.append(f"the clean run did not finish cleanly: {final.error or final.summary}")
        result.audit = world.audit(check_records=records)
    finally:
        world.close()
    result.seconds = time.monotonic() - started
    return result


def _fatal_violations(scenario: Scenario, invocation: Invocation, number: int, concurrency: int) -> list[str]:
    """A fatal fault must fail the run with one clear error and no retry storm."""
    out: list[str] = []
    if invocation.error is None or not re.search(str(scenario.fatal), invocation.error):
        out.append(f"run {number + 1}: expected a failure matching {scenario.fatal!r}, got {invocation.error!r}")
    kinds = {str(f["kind"]) for f in scenario.faults}
    answered = sum(n for name, n in invocation.fired.items() if name.split(":")[1] in kinds)
    operations = {str(f["operation"]) for f in scenario.faults}
    limit = 1 if operations <= {"ListStreamSessionsByAccount", "BatchGetItem"} else concurrency + 2
    if "NextToken" in str(scenario.fatal):
        limit = 4  # MAX_LIST_RESTARTS (3) restarts, then give up
    if answered > limit:
        out.append(f"run {number + 1}: {answered} requests got the fatal fault (at most {limit} expected)")
    return out


# ==== Kills ==========================================================================================

# (operation, nth request, before/after): a SIGKILL between list, get, S3 put and DynamoDB put.
KILL_POINTS_FAST: Final = tuple(
    (op, nth, when)
    for op, nth in (
        ("ListStreamSessionsByAccount", 2),
        ("BatchGetItem", 2),
        ("GetStreamSession", 5),
        ("PutObject", 5),
        ("PutItem", 5),
    )
    for when in ("before", "after")
)
KILL_POINTS_FULL: Final = tuple(
    (op, nth, when)
    for op, nths in (
        ("ListStreamSessionsByAccount", (1, 2, 3)),
        ("BatchGetItem", (1, 2, 3)),
        ("GetStreamSession", (1, 10, 60)),
        ("PutObject", (1, 10, 60)),
        ("PutItem", (1, 10, 60)),
    )
    for nth in nths
    for when in ("before", "after")
)


@dataclass
class KillResult:
    operation: str
    nth: int
    when: str
    killed: bool = False
    done_before_kill: int = 0  # sessions archived by the killed run
    audit: Audit = field(default_factory=Audit)
    violations: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.operation} #{self.nth} {self.when}"

    @property
    def ok(self) -> bool:
        return self.killed and self.audit.clean and not self.violations


def run_kill(
    make_world: WorldFactory, operation: str, nth: int, when: str, *, archived: int = 60, new: int = 90
) -> KillResult:
    """Archive `archived` sessions, add `new` more, SIGKILL the next run at the point, then one clean run
    must leave exactly one object and one item per SUCCEEDED session."""
    result = KillResult(operation, nth, when)
    if operation in ("ListStreamSessionsByAccount", "BatchGetItem"):  # one of each per page of 100: make pages
        new = max(new, 100 * (nth - 1) - archived + 10)
    world = make_world()
    try:
        world.gls.seed(archived)
        first = world.run()
        if first.failed:
            result.violations.append(f"setup run failed: {first.error}")
        world.gls.seed(new)
        world.gls.seed(max(1, new // 5), succeeded_fraction=0.0)
        before = world.progress()
        killed = world.run(kill=(operation, nth, when))
        result.killed = killed.killed
        if not killed.killed:
            result.violations.append(f"the kill did not happen ({killed.error or 'run completed'})")
        result.done_before_kill = world.progress() - before
        result.violations += [f"right after the kill: {p}" for p in world.crash_consistent()]
        final = world.run()
        if final.failed or final.total("failed"):
            result.violations.append(f"the next run did not finish cleanly: {final.error or final.summary}")
        result.audit = world.audit(check_records=True)
    finally:
        world.close()
    return result


# ==== Property-based sequences (hypothesis) ==========================================================

Step = tuple[Any, ...]
_FAULT_KINDS: Final[dict[str, tuple[str, ...]]] = {
    "ListStreamSessionsByAccount": ("throttle", "internal", "reset", "validation", "latency", "access_denied"),
    "GetStreamSession": ("throttle", "internal", "reset", "timeout", "not_found", "access_denied"),
    "BatchGetItem": ("throughput", "internal", "reset", "unprocessed", "not_found"),
    "PutObject": ("slowdown", "internal", "reset", "timeout", "access_denied"),
    "PutItem": ("throughput", "internal", "reset", "timeout"),
}


# The nth request a kill step may target: a run makes a few list/BatchGetItem calls and many of the others.
_KILL_NTH: Final = {
    "ListStreamSessionsByAccount": 3,
    "BatchGetItem": 3,
    "GetStreamSession": 12,
    "PutObject": 12,
    "PutItem": 12,
}


def sequence_strategy(max_steps: int = 10) -> Any:
    """Random sequences of: new sessions, sessions whose export is pending then succeeds, faults and kills
    armed for the next run, runs with or without a short time budget, the list shifting while paging."""
    from hypothesis import strategies as st  # noqa: PLC0415 - the worker process never loads hypothesis

    faults = st.one_of(
        *(
            st.tuples(st.just("fault"), st.just(op), st.sampled_from(kinds), st.integers(1, 4))
            for op, kinds in _FAULT_KINDS.items()
        )
    )
    kills = st.sampled_from(OPERATIONS).flatmap(
        lambda op: st.tuples(
            st.just("kill"), st.just(op), st.integers(1, _KILL_NTH[op]), st.sampled_from(("before", "after"))
        )
    )
    step = st.one_of(
        st.tuples(st.just("new"), st.integers(1, 40)),
        st.tuples(st.just("pending"), st.integers(1, 4)),
        st.tuples(st.just("succeed"), st.integers(0, 99)),
        faults,
        kills,
        kills,  # twice the weight: a kill is what this property is most about
        st.tuples(st.just("run"), st.sampled_from((0.0, 0.0, 0.3, 1.0))),
        st.tuples(st.just("shift"), st.booleans()),
    )
    return st.lists(step, min_size=2, max_size=max_steps)


def random_sequence(rng: random.Random, steps: int) -> list[Step]:
    """The same kind of sequence from a plain seeded RNG (the independent run draws its own)."""
    out: list[Step] = []
    for _ in range(steps):
        kind = rng.choice(("new", "new", "pending", "succeed", "fault", "fault", "kill", "kill", "run", "run", "shift"))
        if kind == "new":
            out.append(("new", rng.randint(1, 40)))
        elif kind == "pending":
            out.append(("pending", rng.randint(1, 4)))
        elif kind == "succeed":
            out.append(("succeed", rng.randint(0, 99)))
        elif kind == "fault":
            op = rng.choice(OPERATIONS)
            out.append(("fault", op, rng.choice(_FAULT_KINDS[op]), rng.randint(1, 4)))
        elif kind == "kill":
            op = rng.choice(OPERATIONS)
            out.append(("kill", op, rng.randint(1, _KILL_NTH[op]), rng.choice(("before", "after"))))
        elif kind == "run":
            out.append(("run", rng.choice((0.0, 0.0, 0.3, 1.0))))
        else:
            out.append(("shift", rng.random() < 0.5))
    return out


@dataclass
class SequenceResult:
    steps: int = 0
    runs: int = 0
    kills: int = 0
    faults: int = 0
    sessions: int = 0
    audit: Audit = field(default_factory=Audit)
    violations: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.audit.clean and not self.violations


def run_sequence(world: World, steps: Sequence[Step], *, initial: int = 25) -> SequenceResult:
    """Seed `initial` sessions, play the steps (faults and kills armed last fire in one more run), then clear
    every fault and run once more: the archive must then be exactly the SUCCEEDED sessions, each record
    equal to GetStreamSession (less redactions)."""
    result = SequenceResult(steps=len(steps))
    world.gls.seed(initial)
    pending: list[str] = []
    armed: list[dict[str, Any]] = []
    kill: tuple[str, int, str] | None = None
    for step in steps:
        kind = step[0]
        if kind == "new":
            world.gls.seed(int(step[1]))
        elif kind == "pending":
            pending += [world.gls.add(ExportFilesMetadata={"Status": "PENDING"})["Arn"] for _ in range(int(step[1]))]
        elif kind == "succeed" and pending:
            world.gls.set_export(pending.pop(int(step[1]) % len(pending)), "SUCCEEDED")
        elif kind == "fault":
            _, operation, fault_kind, times = step
            seconds = {"timeout": 1.3, "latency": 0.2}.get(fault_kind, 0.0)
            armed.append(fault(operation, fault_kind, times=times, seconds=seconds))
        elif kind == "kill":
            kill = (str(step[1]), int(step[2]), str(step[3]))
        elif kind == "shift":
            world.gls.shift(bool(step[1]))
        if kind == "run" or (step is steps[-1] and (armed or kill)):  # what is armed last still fires
            world.faults = armed
            invocation = world.run(timeout=float(step[1]) or None if kind == "run" else None, kill=kill)
            result.runs += 1
            result.kills += invocation.killed
            result.faults += sum(invocation.fired.values())
            armed, kill = [], None
            result.violations += [f"after run {result.runs}: {p}" for p in world.crash_consistent()]
    world.faults = []
    world.gls.shift(False)
    final = world.run()
    result.runs += 1
    if final.failed or final.total("failed"):
        result.violations.append(f"the final clean run did not finish cleanly: {final.error or final.summary}")
    result.audit = world.audit(check_records=True)
    result.sessions = result.audit.expected
    return result


def property_check(
    make_world: WorldFactory,
    *,
    examples: int,
    derandomize: bool = True,
    max_steps: int = 10,
    shrink: bool = True,
    seed: int | None = None,
) -> list[SequenceResult]:
    """Run `examples` hypothesis-drawn sequences (each in a fresh world); raise on the first failure."""
    from hypothesis import given  # noqa: PLC0415 - see sequence_strategy
    from hypothesis import seed as with_seed  # noqa: PLC0415

    results: list[SequenceResult] = []

    @_hypothesis_settings(examples, derandomize=derandomize, shrink=shrink)
    @given(steps=sequence_strategy(max_steps))
    def sequences(steps: list[Step]) -> None:
        world = make_world(settings={"READ_TIMEOUT_SECONDS": "1"})  # a "timeout" step (1.3 s) times out
        try:
            result = run_sequence(world, steps)
        finally:
            world.close()
        results.append(result)
        assert result.ok, f"{result.audit.describe()}; {result.violations}"

    (with_seed(seed)(sequences) if seed is not None else sequences)()
    return results


def _hypothesis_settings(examples: int, *, derandomize: bool, shrink: bool) -> hypothesis.settings:
    """The settings of every hypothesis run here: no deadline (runs cross processes), no example database."""
    from hypothesis import HealthCheck, settings  # noqa: PLC0415 - see sequence_strategy

    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=derandomize,
        database=None,
        suppress_health_check=list(HealthCheck),
        print_blob=True,
        phases=_phases(shrink),
    )


def _phases(shrink: bool) -> list[Any]:
    from hypothesis import Phase  # noqa: PLC0415 - see sequence_strategy

    return [p for p in Phase if shrink or p not in (Phase.shrink, Phase.explain)]


# ==== Hostile and malformed input (hypothesis) =======================================================

NASTY: Final = (
    "",
    " ",
    "..",
    "../",
    "../../etc/passwd",
    "..%2F..%2Fescape",
    "%2F",
    "a/b",
    "a\\b",
    "line\nbreak",
    "cr\rlf\r\n",
    "nul\x00byte",
    "bell\x07esc\x1b[31m",
    "\u2028\u2029",
    "\ufeffbom",
    "zero\u200bwidth",
    "rtl\u202eevil",
    "🎮🕹️",
    "ünïcödé",
    "lone\ud800surrogate",
    "${source_region}",
    "source_region=us-east-1/created_date=1970-01-01/",
    "s3://other-bucket/../x",
    '"quoted",{"json":true}',
    "<script>alert(1)</script>",
    "' OR 1=1 --",
)
_LONG: Final = (1_000, 70_000)


def _hostile_text(*, long: bool = True) -> Any:
    from hypothesis import strategies as st  # noqa: PLC0415 - the worker process never loads hypothesis

    odd = st.text(st.characters(categories=["Cc", "Cs", "Zl", "Zp", "So", "Lo", "Mn"]), max_size=20)
    short = st.one_of(st.sampled_from(NASTY), st.text(max_size=30), odd)
    if not long:
        return short
    repeated = st.builds(lambda c, n: c * n, st.sampled_from(["a", "é", "/", "🎮", "\n"]), st.sampled_from(_LONG))
    return st.one_of(short, repeated)


def _hostile_arn(seq: int) -> Any:
    """ARNs a list may carry that must never be archived (or reach a key)."""
    from hypothesis import strategies as st  # noqa: PLC0415 - the worker process never loads hypothesis

    base = f"arn:aws:gameliftstreams:{REGION}:{ACCOUNT}:streamsession"
    return st.sampled_from(
        [
            f"{base}/sg-fuzz/../{seq}x",
            f"{base}/../../{seq}x",
            f"{base}/sg%2Ffuzz/{seq}x",
            f"{base}/sg-fuzz/{seq}x%2F..",
            f"{base}/sg-fuzz/{seq}x\n",
            f"{base}/sg-fuzz/{seq}x/extra",
            f"{base}/sg-fuzz/{seq}x\x00",
            f"{base}/sg fuzz/{seq}x",
            f"{base}/sg-fuzz/{seq}" + "x" * 40,
            f"arn:aws:gameliftstreams:us-west-2:{ACCOUNT}:streamsession/sg-fuzz/{seq}x",
            f"arn:aws:gameliftstreams:{REGION}:{ACCOUNT}:streamgroup/sg-fuzz/{seq}x",
            f"{base}/\u0455g-fuzz/{seq}x",  # Cyrillic dze, not "s"
            f"{seq}x",
        ]
    )


_STRING_FIELDS: Final = (
    "Description",
    "UserId",
    "Status",
    "StatusReason",
    "Protocol",
    "Location",
    "ApplicationArn",
    "LogFileLocationUri",
    "WebSdkProtocolUrl",
)
_INT_FIELDS: Final = ("ConnectionTimeoutSeconds", "SessionLengthSeconds")
_TIME_FIELDS: Final = ("CreatedAt", "LastUpdatedAt", "ApplicationStartedAt", "StreamingStartedAt", "StreamingEndedAt")


@dataclass
class HostileSession:
    """One fuzzed session: stored fields (None: missing), raw wire values for GetStreamSession and for
    its list item (None: JSON null), and a hostile ARN for the list (None: its own, valid one)."""

    fields: dict[str, Any]
    get_wire: dict[str, Any]
    list_wire: dict[str, Any]
    list_arn: str | None = None


def hostile_sessions(max_sessions: int = 4) -> Any:
    from hypothesis import strategies as st  # noqa: PLC0415 - the worker process never loads hypothesis

    text, maybe = _hostile_text(), st.none()
    timestamps = st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 30), timezones=st.just(UTC))

    @st.composite
    def one(draw: Any, seq: int) -> HostileSession:
        fields: dict[str, Any] = {}
        for name in draw(st.sets(st.sampled_from(_STRING_FIELDS))):
            fields[name] = draw(st.one_of(text, maybe))
        for name in draw(st.sets(st.sampled_from(_INT_FIELDS))):
            fields[name] = draw(st.one_of(st.integers(-(2**70), 2**70), st.integers(-5, 5), maybe))
        for name in draw(st.sets(st.sampled_from(_TIME_FIELDS))):
            fields[name] = draw(st.one_of(timestamps, maybe))
        if draw(st.booleans()):
            size = draw(st.sampled_from((0, 3, 150)))
            fields["AdditionalLaunchArgs"] = draw(st.lists(_hostile_text(long=False), min_size=size, max_size=size))
        if draw(st.booleans()):
            names = draw(st.lists(_hostile_text(long=False), max_size=6, unique=True))
            fields["AdditionalEnvironmentVariables"] = {n: f"{CANARY}-{i}" for i, n in enumerate(names)}
        if draw(st.booleans()):
            width, height = draw(st.tuples(st.integers(-(2**40), 2**40), st.integers(-(2**40), 2**40)))
            fields["DisplayConfiguration"] = {"Resolution": {"Width": width, "Height": height}}
        export: dict[str, Any] = {"Status": "SUCCEEDED"}  # listed by the SUCCEEDED filter, whatever else
        if draw(st.booleans()):
            export["OutputUri"] = draw(st.one_of(text, st.just("s3://" + "u" * 450_000), maybe))
            export["StatusReason"] = draw(text)
        fields["ExportFilesMetadata"] = export
        get_wire: dict[str, Any] = {}
        for name in draw(st.sets(st.sampled_from((*_STRING_FIELDS, *_TIME_FIELDS, "ExportFilesMetadata")))):
            get_wire[name] = None  # present on the wire as JSON null
        if draw(st.integers(0, 9)) == 0:
            get_wire["CreatedAt"] = "not-a-date"  # unparseable: botocore cannot read this answer
        if draw(st.integers(0, 9)) == 0:
            get_wire["Arn"] = draw(_hostile_arn(seq))  # GetStreamSession naming another "ARN"
        list_wire: dict[str, Any] = {n: None for n in draw(st.sets(st.sampled_from(("CreatedAt", "UserId", "Status"))))}
        if draw(st.integers(0, 19)) == 0:
            list_wire["CreatedAt"] = "not-a-date"  # one unreadable item makes its whole page unreadable
        list_arn = draw(st.one_of(st.none(), st.none(), _hostile_arn(seq)))
        return HostileSession(fields, get_wire, list_wire, list_arn)

    return st.integers(1, max_sessions).flatmap(lambda n: st.tuples(*(one(i) for i in range(n))))


def should_archive(session: HostileSession, stored: Mapping[str, Any]) -> bool:
    """Oracle: a listed session whose export SUCCEEDED, with a well-formed session ARN (of any Region: it is
    filed under the ARN's) and a GetStreamSession answer botocore can read, is archived; nothing else is.
    (Without any CreatedAt it is still archived, under the fixed undated day.)"""
    export = stored.get("ExportFilesMetadata")
    if not isinstance(export, Mapping) or export.get("Status") != "SUCCEEDED":
        return False
    if session.list_arn is not None:
        return False  # listed under an ARN that is malformed or names no session (404)
    arn = stored.get("Arn")
    if not isinstance(arn, str) or len(arn) > 128 or SESSION_ARN.fullmatch(arn) is None:
        return False
    return session.get_wire.get("CreatedAt") != "not-a-date"


@dataclass
class FuzzResult:
    sessions: int = 0
    expected: int = 0
    hostile_values: int = 0
    audit: Audit = field(default_factory=Audit)
    violations: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.audit.clean and not self.violations


def run_fuzz_case(world: World, sessions: Sequence[HostileSession]) -> FuzzResult:
    """Store the sessions, run twice, and judge: no crash, nothing outside the record layout, every record
    valid for Athena and equal to GetStreamSession, exactly the well-formed sessions archived, no leak."""
    emulator = world.gls.emulator
    assert isinstance(emulator, HostileEmulator), "fuzzing needs an in-process HostileEmulator"
    result = FuzzResult(sessions=len(sessions))
    expected: set[str] = set()
    for session in sessions:
        stored = emulator.add_session(**session.fields)
        arn = str(stored["Arn"])
        emulator.get_wire[arn] = dict(session.get_wire)
        emulator.list_wire[arn] = dict(session.list_wire)
        if session.list_arn is not None:
            emulator.list_wire[arn]["Arn"] = session.list_arn
        result.hostile_values += len(session.fields) + len(session.get_wire) + len(session.list_wire)
        if should_archive(session, stored):
            expected.add(arn)
    unreadable_page = any(s.list_wire.get("CreatedAt") == "not-a-date" for s in sessions)
    if unreadable_page:
        expected = set()  # one page, and nothing can be read from it
    result.expected = len(expected)
    for number in (1, 2):
        run = world.run()
        if unreadable_page:
            if not (run.error or "").startswith("RunFailed: ") or "unreadable page" not in str(run.error):
                result.violations.append(f"run {number}: expected one clear listing error, got {run.error!r}")
        elif run.failed:
            result.violations.append(f"run {number} failed: {run.error}")
        elif number == 1 and run.total("archived") != len(expected):
            result.violations.append(f"archived {run.total('archived')} of {len(expected)}: {run.summary}")
        if number == 2 and (run.total("archived") or run.calls.get("PutObject") or run.calls.get("PutItem")):
            result.violations.append(f"the second run wrote again: {run.summary} {run.calls}")
    result.audit = world.audit(expected, check_records=True)
    return result


def fuzz_check(
    make_world: WorldFactory, *, examples: int, derandomize: bool = True, shrink: bool = True, seed: int | None = None
) -> list[FuzzResult]:
    """Run `examples` hypothesis-drawn hostile inputs (each in a fresh world); raise on the first failure."""
    from hypothesis import given  # noqa: PLC0415 - see sequence_strategy
    from hypothesis import seed as with_seed  # noqa: PLC0415

    results: list[FuzzResult] = []

    @_hypothesis_settings(examples, derandomize=derandomize, shrink=shrink)
    @given(sessions=hostile_sessions())
    def hostile(sessions: tuple[HostileSession, ...]) -> None:
        world = make_world(hostile=True)
        try:
            result = run_fuzz_case(world, sessions)
        finally:
            world.close()
        results.append(result)
        assert result.ok, f"{result.audit.describe()}; {result.violations}"

    (with_seed(seed)(hostile) if seed is not None else hostile)()
    return results


# ==== Load: memory must not grow with the number listed =============================================


@dataclass
class LoadResult:
    listed: int
    new: int
    runs: int = 0
    archived: int = 0
    lost: int = 0
    duplicated: int = 0
    extra: int = 0
    deferred_runs: int = 0  # runs that hit the time budget and left work to the next one
    failed_runs: int = 0
    seconds: float = 0.0
    maxrss_kb: int = 0  # peak RSS of the worker over the untraced runs
    traced_listed: int = 0  # the follow-up run under tracemalloc (which inflates RSS, so it runs last)
    traced_new: int = 0
    traced_peak_bytes: int = 0
    violations: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.lost or self.duplicated or self.extra or self.violations)


def prepopulate(moto_url: str, table: str, arns: Sequence[str], region: str = REGION, threads: int = 8) -> None:
    """Mark sessions archived directly in DynamoDB (BatchWriteItem, 25 a call), as earlier runs would have."""
    ddb = aws_client("dynamodb", moto_url, region)

    def write(chunk: Sequence[str]) -> None:
        request: dict[str, Any] = {
            table: [{"PutRequest": {"Item": {"session_arn": {"S": a}, "s3_key": {"S": "earlier-run"}}}} for a in chunk]
        }
        while request:
            request = ddb.batch_write_item(RequestItems=request).get("UnprocessedItems") or {}

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(write, [arns[i : i + 25] for i in range(0, len(arns), 25)]))
    ddb.close()


def run_load(
    *,
    moto_url: str,
    gls: GLS,
    log_dir: Path,
    listed: Sequence[str],
    new: Sequence[str],
    region: str = REGION,
    timeout: float = 300.0,
    max_runs: int = 10,
    settings: Mapping[str, str] | None = None,
    follow_up: int = 0,
) -> LoadResult:
    """`listed` sessions are listed, of which `new` are not archived yet: run (in one fresh, then warm, worker)
    until a run defers nothing; exactly the new ones must then have been added. Peak RSS is that of these
    runs. With `follow_up`, that many more sessions are then added and archived in one run under tracemalloc,
    for the peak Python heap (tracemalloc's own bookkeeping inflates RSS, so it never runs before)."""
    result = LoadResult(listed=len(listed), new=len(new))
    started = time.monotonic()
    new_set = set(new)
    with Worker(log_dir, standby=False) as worker:  # a process of its own: its peak RSS is this case's
        world = World(moto_url=moto_url, worker=worker, gls=gls, settings=settings, region=region, direct=True)
        try:
            prepopulate(moto_url, world.table, [a for a in listed if a not in new_set], region)
            for _ in range(max_runs):
                invocation = world.run(timeout=timeout)
                result.runs += 1
                result.failed_runs += invocation.failed
                result.maxrss_kb = max(result.maxrss_kb, invocation.maxrss_kb)
                deferred = invocation.total("deferred") or invocation.total("listed") < len(listed)
                result.deferred_runs += bool(deferred)
                if not invocation.failed and not deferred and not invocation.total("failed"):
                    break
            if follow_up:
                new_set.update(gls.seed(follow_up, region=region))
                traced = world.run(timeout=timeout, trace=True)
                result.traced_listed, result.traced_new = traced.total("listed"), traced.total("new")
                result.traced_peak_bytes = traced.traced_peak_bytes or 0
                if traced.failed or traced.total("deferred"):
                    result.violations.append(f"the traced run did not finish: {traced.error or traced.summary}")
            result.seconds = time.monotonic() - started
            _judge_load(world, new_set, result)
        finally:
            world.close()
    return result


def _judge_load(world: World, new: set[str], result: LoadResult) -> None:
    """Exactly one object per new session, each with its item; no object for any other session."""
    keys = world.object_keys()
    items = world.items()
    names = {arn: f"{m['group']}_{m['session']}.json" for arn in new if (m := SESSION_ARN.fullmatch(arn))}
    per_name = Counter(_key_session(k) for k in keys)
    result.archived = sum(1 for a in new if a in items and items[a]["s3_key"] in keys)
    result.lost = len(new) - result.archived
    result.duplicated = sum(1 for name in names.values() if per_name[name] > 1)
    result.extra = len(set(per_name) - set(names.values()))
    if world.invocations[-1].failed:
        result.violations.append(f"the last run failed: {world.invocations[-1].error}")


# ==== Separate processes: moto server and emulator ==================================================


def _read_until(stream: IO[str], pattern: re.Pattern[str], what: str) -> str:
    for line in stream:
        match = pattern.search(line)
        if match:
            return match.group(1)
    raise RuntimeError(f"{what} exited before it was ready")


@contextlib.contextmanager
def separate_moto() -> Iterator[str]:
    """A moto server in its own process (its own GIL): faster under load than the in-process one."""
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", "0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        url = _read_until(process.stderr, re.compile(r"Running on (http://\S+)"), "moto server")
        stderr = process.stderr
        threading.Thread(target=lambda: all(True for _ in stderr), name="moto-log-drain", daemon=True).start()
        yield url
    finally:
        _end(process)


def _end(process: subprocess.Popen[str]) -> None:
    """SIGTERM a server we started, SIGKILL it if it does not go."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextlib.contextmanager
def separate_emulator(seed: int, *, latency_ms: float = 0.0) -> Iterator[str]:
    """`python -m local.gls_emulator` in its own process, controlled only over its HTTP control API."""
    command = [sys.executable, "-m", "local.gls_emulator", "--port", "0", "--seed", str(seed), "--region", REGION]
    if latency_ms:
        command += ["--latency-ms", str(latency_ms)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        yield _read_until(process.stdout, re.compile(r"(http://\S+)"), "emulator")
    finally:
        _end(process)


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


@dataclass
class IndependentResult:
    kills: list[KillResult] = field(default_factory=list)
    sequence: SequenceResult = field(default_factory=SequenceResult)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(k.ok for k in self.kills) and self.sequence.ok


def run_independent(log_dir: Path, *, seed: int, steps: int = 30) -> IndependentResult:
    """Against a separately started moto server and emulator (controlled over HTTP), one long world: each
    fast kill point with a random fault armed too, each followed by a clean run and an audit; then a random
    sequence of faults, kills and runs (drawn with `random`, not hypothesis)."""
    started = time.monotonic()
    result = IndependentResult()
    rng = random.Random(seed)
    with (
        separate_moto() as moto_url,
        separate_emulator(seed, latency_ms=2) as emulator_url,
        Worker(log_dir) as worker,
        World(
            moto_url=moto_url,
            worker=worker,
            gls=GLS(url=emulator_url),
            name=f"ind{seed}",
            settings={"READ_TIMEOUT_SECONDS": "1"},
        ) as world,
    ):
        world.gls.seed(150)  # several pages from the start, so every kill point is reached
        for operation, nth, when in KILL_POINTS_FAST:
            kill = KillResult(operation, nth, when)
            world.gls.seed(rng.randint(40, 90))
            world.gls.seed(5, succeeded_fraction=0.0)
            op = rng.choice(OPERATIONS)
            world.faults = [fault(op, rng.choice(_FAULT_KINDS[op][:4]), times=rng.randint(1, 3), seconds=1.3)]
            killed = world.run(kill=(operation, nth, when))
            kill.killed = killed.killed
            if not killed.killed:
                kill.violations.append(f"the kill did not happen ({killed.error or 'run completed'})")
            kill.violations += [f"right after the kill: {p}" for p in world.crash_consistent()]
            world.faults = []
            final = world.run()
            if final.failed or final.total("failed"):
                kill.violations.append(f"the next run did not finish cleanly: {final.error or final.summary}")
            kill.audit = world.audit(check_records=True)
            result.kills.append(kill)
        result.sequence = run_sequence(world, random_sequence(rng, steps))
    result.seconds = time.monotonic() - started
    return result


# ==== Figures ========================================================================================

FIGURES_START: Final = "<!-- figures:start (generated by `make reliability`) -->"
FIGURES_END: Final = "<!-- figures:end -->"


@dataclass
class Figures:
    """Everything one `make reliability` ran, for the tables."""

    command: str
    started: datetime
    seconds: float = 0.0
    machine: dict[str, str] = field(default_factory=dict)
    matrix: list[ScenarioResult] = field(default_factory=list)
    kills: list[KillResult] = field(default_factory=list)
    properties: list[SequenceResult] = field(default_factory=list)
    property_error: str | None = None
    fuzz: list[FuzzResult] = field(default_factory=list)
    fuzz_error: str | None = None
    load: list[LoadResult] = field(default_factory=list)
    independent: IndependentResult | None = None
    independent_error: str | None = None
    settings: dict[str, str] = field(default_factory=dict)

    @property
    def audits(self) -> list[Audit]:
        audits = [r.audit for r in self.matrix] + [k.audit for k in self.kills]
        audits += [r.audit for r in self.properties] + [f.audit for f in self.fuzz]
        if self.independent is not None:
            audits += [k.audit for k in self.independent.kills] + [self.independent.sequence.audit]
        return audits

    @property
    def ok(self) -> bool:
        parts: list[Any] = [*self.matrix, *self.kills, *self.properties, *self.fuzz, *self.load]
        errors = (self.property_error, self.fuzz_error, self.independent_error)
        independent_ok = self.independent is None or self.independent.ok
        return all(p.ok for p in parts) and not any(errors) and independent_ok


def machine() -> dict[str, str]:
    from importlib.metadata import version  # noqa: PLC0415 - only for the report

    memory = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    return {
        "uname -a": " ".join(platform.uname()),
        "nproc": str(os.cpu_count()),
        "memory": memory,
        "python": platform.python_version(),
        "packages": ", ".join(f"{p} {version(p)}" for p in ("boto3", "moto", "hypothesis", "aws-lambda-powertools")),
    }


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table; columns of numbers (and n/m, 12 s, 3.4 MB) are right-aligned."""
    numeric = [
        bool(rows) and all(re.fullmatch(r"[0-9.,/+]+( s| MB)?( \([0-9,]+\))?", str(row[i])) for row in rows)
        for i in range(len(headers))
    ]
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---:" if n else "---" for n in numeric) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _matrix_notes(result: ScenarioResult) -> str:
    notes = []
    if result.restarts:
        notes.append(f"{result.restarts} list restarts")
    if result.repeated:
        notes.append(f"{result.repeated} seen twice")
    if result.failed_sessions:
        notes.append(f"{result.failed_sessions} session failures retried")
    if result.skipped:
        notes.append(f"{result.skipped} skipped (404)")
    if result.audit.overwrites:
        notes.append(f"{result.audit.overwrites} objects overwritten")
    notes += result.violations[:2] + result.audit.problems[:2]
    return "; ".join(notes)


def render(figures: Figures) -> str:
    """The figures as Markdown: printed by `make reliability` and written into docs/RELIABILITY.md."""
    out = [
        f"Run {figures.started:%Y-%m-%d %H:%M} UTC, {figures.seconds / 60:.1f} min, all checks "
        + ("passed." if figures.ok else "**did not pass**."),
        "",
        f"Command: `{figures.command}`",
        "",
        *(f"- {name}: `{value}`" for name, value in figures.machine.items()),
        "",
        "### Fault matrix",
        "",
        "Each row: sessions seeded (plus a quarter as many whose export did not succeed), the faults armed for "
        "every run but the last, new sessions before each run, then one clean run. *archived while faulted*: "
        "sessions with object and item when the faulted runs were over.",
        "",
    ]
    rows = [
        (
            r.scenario.name,
            f"{r.scenario.runs}+1",
            r.audit.expected,
            r.archived_during,
            r.audit.archived,
            len(r.audit.lost),
            len(r.audit.duplicated),
            len(r.audit.extra),
            f"{r.runs_failed}/{r.scenario.runs}",
            r.faults_fired,
            _matrix_notes(r) or "",
        )
        for r in figures.matrix
    ]
    headers = (
        "fault",
        "runs",
        "sessions",
        "archived while faulted",
        "archived",
        "lost",
        "duplicated",
        "extra",
        "runs failed",
        "faults injected",
        "notes",
    )
    out += [_table(headers, rows), ""]
    total_kills = [*figures.kills, *(figures.independent.kills if figures.independent else [])]
    property_kills = sum(r.kills for r in figures.properties)
    independent_kills = figures.independent.sequence.kills if figures.independent else 0
    survived = sum(k.ok for k in total_kills)
    out += [
        "### Kills (SIGKILL of the worker at the nth request, before it is served or after its answer)",
        "",
        "Each: archive some sessions, add new ones, kill the next run at the point, check that no item is "
        "without its object, then one clean run must leave exactly one object and one item per session.",
        "",
        _table(
            (
                "kill point",
                "killed",
                "archived by the killed run",
                "archived after",
                "lost",
                "duplicated",
                "overwrites",
            ),
            [
                (
                    k.label,
                    "yes" if k.killed else "**no**",
                    k.done_before_kill,
                    f"{k.audit.archived}/{k.audit.expected}",
                    len(k.audit.lost),
                    len(k.audit.duplicated),
                    k.audit.overwrites,
                )
                for k in figures.kills
            ],
        ),
        "",
        f"Kills survived: {survived} of {len(total_kills)} kill points (matrix and independent run), plus "
        f"{property_kills} kills in the property runs and {independent_kills} in the independent random sequence.",
        "",
        "### Property-based runs (hypothesis)",
        "",
    ]
    props = figures.properties
    out += [
        _table(
            ("examples", "steps", "runs", "kills", "faults injected", "sessions", "lost", "duplicated", "extra"),
            [
                (
                    len(props),
                    sum(r.steps for r in props),
                    sum(r.runs for r in props),
                    property_kills,
                    sum(r.faults for r in props),
                    sum(r.sessions for r in props),
                    sum(len(r.audit.lost) for r in props),
                    sum(len(r.audit.duplicated) for r in props),
                    sum(len(r.audit.extra) for r in props),
                )
            ],
        ),
        "",
        *([f"**Failed:** {figures.property_error}", ""] if figures.property_error else []),
        "### Hostile input (hypothesis)",
        "",
        _table(
            ("fuzz cases tried", "sessions", "hostile values", "archived (expected)", "failures"),
            [
                (
                    len(figures.fuzz),
                    sum(f.sessions for f in figures.fuzz),
                    sum(f.hostile_values for f in figures.fuzz),
                    f"{sum(f.audit.archived for f in figures.fuzz)} ({sum(f.expected for f in figures.fuzz)})",
                    sum(not f.ok for f in figures.fuzz) + bool(figures.fuzz_error),
                )
            ],
        ),
        "",
        *([f"**Failed:** {figures.fuzz_error}", ""] if figures.fuzz_error else []),
        "### Load (moto server in its own process, emulator without quota, archiver in its own process)",
        "",
        "Runs until one is not cut by the time budget; peak RSS of the worker over those runs (no tracing). "
        "Then one follow-up run with a few more new sessions, traced: the peak Python heap at the same "
        "number new for a small and a large listing. *archived* counts both.",
        "",
        _table(
            (
                "listed",
                "new",
                "runs",
                "cut by the time budget",
                "archived",
                "lost",
                "duplicated",
                "time",
                "peak RSS",
                "traced run: listed / new",
                "peak Python heap",
            ),
            [
                (
                    f"{r.listed:,}",
                    f"{r.new:,} + {r.traced_new:,}",
                    f"{r.runs} + 1",
                    r.deferred_runs,
                    f"{r.archived:,}",
                    r.lost,
                    r.duplicated + r.extra,
                    f"{r.seconds:.0f} s",
                    f"{r.maxrss_kb / 1024:.0f} MB",
                    f"{r.traced_listed:,} / {r.traced_new:,}",
                    f"{r.traced_peak_bytes / 2**20:.1f} MB",
                )
                for r in figures.load
            ],
        ),
        "",
    ]
    if figures.load:
        out += [f"Load settings: `{json.dumps(figures.settings)}`", ""]
    ind = figures.independent
    out += ["### Independent run (separate emulator and moto processes, controlled over HTTP)", ""]
    if ind is not None:
        seq = ind.sequence
        out += [
            f"{sum(k.ok for k in ind.kills)} of {len(ind.kills)} kill points survived (each with a random fault "
            f"armed), then a random sequence of {seq.steps} steps: {seq.runs} runs, {seq.kills} kills, "
            f"{seq.faults} faults injected, {seq.sessions} sessions: {len(seq.audit.lost)} lost, "
            f"{len(seq.audit.duplicated)} duplicated, {len(seq.audit.extra)} extra. "
            + ("Agrees with the runs above." if ind.ok else "**Disagrees.**"),
            "",
        ]
    if figures.independent_error:
        out += [f"**Failed:** {figures.independent_error}", ""]
    audits = figures.audits
    out += [
        "### Secrets",
        "",
        f"Canaries ({len(CANARIES)}: SignalRequest/SignalResponse and environment-variable values of every "
        f"session, its RoleArn, the Lambda's own secret key and session token) searched in {len(audits)} audits: "
        f"{sum(a.objects for a in audits):,} objects (every version), {sum(a.items for a in audits):,} items, "
        f"{max((a.log_bytes for a in audits), default=0) / 2**20:.1f} MB of worker logs: "
        f"{sum(len(a.leaks) for a in audits)} found.",
    ]
    return "\n".join(out) + "\n"


def write_figures(path: Path, text: str) -> None:
    """Replace the generated section of docs/RELIABILITY.md (the prose around it is kept)."""
    doc = path.read_text() if path.exists() else f"# Reliability\n\n{FIGURES_START}\n{FIGURES_END}\n"
    if FIGURES_START not in doc or FIGURES_END not in doc:
        doc += f"\n{FIGURES_START}\n{FIGURES_END}\n"
    head, rest = doc.split(FIGURES_START, 1)
    _, tail = rest.split(FIGURES_END, 1)
    path.write_text(f"{head}{FIGURES_START}\n{text}{FIGURES_END}{tail}")


# ==== Command line ===================================================================================


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["worker"]:
        return _worker_main(int(args[1]))
    return _report_main(args)


def _progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m local.reliability", description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run in a few minutes")
    parser.add_argument("--examples", type=int, default=60, help="property-based sequences")
    parser.add_argument("--fuzz-examples", type=int, default=200, help="hostile-input cases")
    parser.add_argument("--listed", type=int, default=100_000, help="load: sessions listed")
    parser.add_argument("--new", type=int, default=10_000, help="load: of which new")
    parser.add_argument(
        "--load-timeout", type=float, default=300.0, help="load: Lambda timeout per run (s; the stack's default)"
    )
    parser.add_argument("--no-load", action="store_true")
    parser.add_argument("--no-independent", action="store_true")
    parser.add_argument("--seed", type=int, default=None, help="hypothesis and random seed (default: random)")
    parser.add_argument("--output", type=Path, default=Path("docs/RELIABILITY.md"))
    parser.add_argument("--no-write", action="store_true", help="print only")
    return parser


def _report_main(argv: Sequence[str]) -> int:
    args = _parser().parse_args(argv)
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    command = "python -m local.reliability " + " ".join(argv) if argv else "make reliability"
    figures = Figures(command=f"{command}  (seed {seed})", started=datetime.now(UTC), machine=machine())
    started = time.monotonic()
    log_dir = DEFAULT_LOG_DIR / f"run-{figures.started:%Y%m%d-%H%M%S}"
    _progress(f"reliability: seed {seed}, logs in {log_dir}")
    with separate_moto() as moto_url, Worker(log_dir) as worker:
        _run_suites(figures, args, world_factory(moto_url, worker, seed=seed), seed)
        if not args.no_load:
            listed, new = (2_000, 500) if args.quick else (args.listed, args.new)
            figures.settings, figures.load = _load(moto_url, log_dir, listed, new, args.load_timeout, seed)
    if not args.no_independent:
        _progress("[independent] separate emulator and moto processes ...")
        try:
            figures.independent = run_independent(log_dir / "independent", seed=seed + 1)
        except Exception as error:
            figures.independent_error = _first_line(error)
    figures.seconds = time.monotonic() - started
    text = render(figures)
    print(text)
    if not args.no_write:
        write_figures(args.output, text)
        _progress(f"written to {args.output}")
    return 0 if figures.ok else 1


def _run_suites(figures: Figures, args: argparse.Namespace, make: WorldFactory, seed: int) -> None:
    """Fault matrix, kill matrix, property-based sequences and hostile input, in that order."""
    scale, runs = (0.25, 2) if args.quick else (1.0, None)
    kill_points = KILL_POINTS_FAST if args.quick else KILL_POINTS_FULL
    examples, fuzz_examples = (5, 10) if args.quick else (args.examples, args.fuzz_examples)
    for n, scenario in enumerate(MATRIX, 1):
        result = run_scenario(make, scenario.scaled(scale, runs))
        figures.matrix.append(result)
        _progress(f"[matrix {n}/{len(MATRIX)}] {scenario.name}: {_verdict(result.ok, result.audit)}")
    for n, (operation, nth, when) in enumerate(kill_points, 1):
        kill = run_kill(make, operation, nth, when)
        figures.kills.append(kill)
        _progress(f"[kill {n}/{len(kill_points)}] {kill.label}: {_verdict(kill.ok, kill.audit)}")
    _progress(f"[property] {examples} hypothesis sequences ...")
    try:
        figures.properties = property_check(make, examples=examples, derandomize=False, seed=seed)
    except Exception as error:  # reported with the others; hypothesis printed the failing example
        figures.property_error = _first_line(error)
    _progress(f"[fuzz] {fuzz_examples} hypothesis hostile inputs ...")
    try:
        figures.fuzz = fuzz_check(make, examples=fuzz_examples, derandomize=False, seed=seed)
    except Exception as error:
        figures.fuzz_error = _first_line(error)


def _load(
    moto_url: str, log_dir: Path, listed: int, new: int, timeout: float, seed: int
) -> tuple[dict[str, str], list[LoadResult]]:
    """A small listing (`new` // 10, all new) and the large one (`listed`, `new` of them new), each followed
    by a traced run of `new` // 10 more: the peak Python heap at the same number new, N small and large."""
    settings = {
        "MAX_CONCURRENCY": "16",
        "LIST_RATE_PER_SECOND": "2000",
        "GET_RATE_PER_SECOND": "2000",
        "TIME_BUDGET_MARGIN_SECONDS": "30",  # the stack's default
    }
    small = max(1, new // 10)
    results: list[LoadResult] = []
    emulator = GameLiftStreamsEmulator(seed=seed, default_region=REGION, account_id=ACCOUNT, canary=CANARY).start()
    try:
        gls = GLS(emulator=emulator)
        for region, n_listed, n_new in (("us-west-2", small, small), (REGION, listed, new)):
            _progress(f"[load] {n_listed:,} listed, {n_new:,} new, then {small:,} more traced ...")
            arns = gls.seed(n_listed, region=region)
            chosen = random.Random(seed + n_listed).sample(arns, n_new)
            result = run_load(
                moto_url=moto_url,
                gls=gls,
                log_dir=log_dir / "load",
                listed=arns,
                new=chosen,
                region=region,
                timeout=timeout,
                settings=settings,
                follow_up=small,
            )
            results.append(result)
            _progress(f"[load] {result.archived:,} archived in {result.runs}+1 runs, {result.seconds:.0f} s")
    finally:
        emulator.stop()
    return settings, results


def _verdict(ok: bool, audit: Audit) -> str:
    return ("ok: " if ok else "FAILED: ") + audit.describe()


def _first_line(error: BaseException) -> str:
    """One line for the table; the whole failure (hypothesis's falsifying example) goes to stderr."""
    _progress("".join(traceback.format_exception(error)) + "\n".join(getattr(error, "__notes__", [])))
    notes = "; ".join(str(n).splitlines()[0] for n in getattr(error, "__notes__", [])[:1])
    return f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''} {notes}"[:1000]


if __name__ == "__main__":
    sys.exit(main())
