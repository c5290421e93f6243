"""A world with the event path: the export bucket sending to EventBridge, the stack's rule and queue (with its
dead-letter queue), and the consumer (`archiver.events.handler`) run in worker processes by local event
source mappings (`SqsPoller`), every invocation judged.

Exports land as they do in AWS: a live session is exported and terminated through the real API and the
emulator writes its ZIP into the bucket (or, for a burst, the harness writes small objects where the API says
the exports are); moto's S3 sends `Object Created` to EventBridge, whose rule (`archiver.exports.event_pattern`)
puts it on the queue. The consumer's outcomes are read from its own log ("Batch processed", by request ID),
its return value judged as Lambda judges it, and, when it runs alone, the archive before and after each
invocation (`accounting.judge_batch`); the contract's oracle (`event_oracle`) says what each batch may count.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from local.reliability.accounting import judge_batch
from local.reliability.constants import ACCOUNT
from local.reliability.event_oracle import Facts, announced, batch_expectation, describe, emulator_facts, feasible
from local.reliability.world import World
from local.sqs_poller import PollResult, SqsPoller
from local.stack.aws import aws_client
from local.worker import CONSUMER, Worker

EXPORT_PREFIX: Final = "exports/"
CONSUMER_FUNCTION: Final = "gameliftstreams-session-archiver-events"
EMPTY_ZIP: Final = b"PK\x05\x06" + b"\x00" * 18  # what the harness writes where a burst's exports land
WAIT: Final = 120.0  # seconds any one drain may take before the case fails (a bound, not a pace)
# The poller logs every batch a killed consumer failed, with a traceback; each is judged here instead.
logging.getLogger("local.sqs_poller").addHandler(logging.NullHandler())


class InvocationFailed(RuntimeError):
    """The consumer invocation was killed or raised: the event source mapping redelivers the whole batch."""


@dataclass
class Batch:
    """One consumer invocation as the harness saw it."""

    messages: int
    outcomes: dict[str, int] | None  # None: killed, or failed before it counted
    redelivered: int
    killed: bool = False
    error: str | None = None
    problems: list[str] = field(default_factory=list)


class LogTail:
    """What a worker printed since the last read: each of its processes' log files, read on from where the
    last read stopped (whole lines only), so a long run is not read again at every invocation."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self._offsets: dict[Path, int] = {}

    def lines(self) -> list[str]:
        out: list[str] = []
        for path in list(self.worker.log_paths):
            if not path.exists():
                continue
            with path.open("rb") as log:
                log.seek(self._offsets.get(path, 0))
                data = log.read()
            whole = data[: data.rfind(b"\n") + 1]
            self._offsets[path] = self._offsets.get(path, 0) + len(whole)
            out += whole.decode("utf-8", "replace").splitlines()
        return out

    def outcomes(self, request_id: str) -> dict[str, int] | None:
        """The outcomes the invocation `request_id` logged ("Batch processed" or "Batch failed"), if any."""
        found: dict[str, int] | None = None
        for line in self.lines():
            if request_id not in line or not line.startswith("{"):
                continue
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if entry.get("function_request_id") == request_id and entry.get("message") in (
                    "Batch processed",
                    "Batch failed",
                ):
                    found = {str(k): int(v) for k, v in dict(entry.get("outcomes") or {}).items()}
        return found


class ConsumerDriver:
    """The consumer function as its event source mapping invokes it: a handler for `SqsPoller` that runs
    `archiver.events.handler` in a worker process (which the fault servers may SIGKILL), reads what it
    counted and judges the invocation. Killed or raising, it fails the whole batch, as Lambda does."""

    def __init__(self, events: EventWorld, worker: Worker, *, timeout: float = 60.0) -> None:
        self.events = events
        self.worker = worker
        self.timeout = timeout
        self.batches: list[Batch] = []
        self.tally: Counter[str] = Counter()
        self.kills = 0
        self.on_kill: Callable[[], None] | None = None  # called right after a killed invocation
        self._log = LogTail(worker)
        self._log.lines()  # what the worker printed before this world is not this world's

    def __call__(self, event: dict[str, Any], _context: Any) -> Any:
        events, world = self.events, self.events.world
        records = event["Records"]
        ids = [str(r["messageId"]) for r in records]
        bodies = [(str(r["body"]), int(r.get("attributes", {}).get("ApproximateReceiveCount", 1))) for r in records]
        before = world.snapshot() if events.judge else None
        if events.racing or before is None:
            archived: Callable[[str], bool | None] = lambda _arn: None  # noqa: E731 - another writer may be at it
        else:
            archived = before.items.__contains__
        allowed, named = batch_expectation(
            bodies, events.locations, events.facts, archived, max_pending_receives=events.max_pending_receives
        )
        request_id = str(uuid.uuid4())
        invocation = self.worker.invoke(
            events.env(), handler=CONSUMER, event=event, timeout=self.timeout, context=events.context(request_id)
        )
        world.touched()
        outcomes = None if invocation.killed else self._log.outcomes(request_id)
        after = world.snapshot() if events.judge else None
        response = invocation.summary if invocation.error is None else None  # raised: no response
        problems = judge_batch(ids, outcomes, response, before, after, named)
        if not invocation.killed and outcomes is None:
            problems.append(f"the invocation logged no outcomes ({invocation.error or 'no error'})")
        if outcomes is not None and not feasible(allowed, outcomes):
            wanted = [sorted(a) for a in allowed]
            problems.append(f"counted {describe(outcomes)}, but the contract allows per message {wanted}")
        redelivered = len((invocation.summary or {}).get("batchItemFailures") or [])
        batch = Batch(len(ids), outcomes, redelivered, invocation.killed, invocation.error, problems)
        with events.lock:
            self.batches.append(batch)
            self.tally.update(outcomes or {})
            self.kills += invocation.killed
            world.violations += [f"consumer batch {len(self.batches)}: {p}" for p in problems]
            events.progressed.notify_all()
        if invocation.killed:
            if self.on_kill is not None:
                self.on_kill()
            raise InvocationFailed("the consumer was killed")
        if invocation.error is not None:
            raise InvocationFailed(invocation.error)
        return invocation.summary


class EventWorld:
    """`world` plus the event path for its own export bucket (`exp-<name>`, prefix EXPORT_PREFIX) and one
    consumer driver per worker (one per event source mapping instance). `judge`: each invocation is judged
    against the archive before and after it (off for bursts and races: other writers run meanwhile)."""

    def __init__(
        self,
        world: World,
        consumers: Sequence[Worker],
        *,
        max_pending_receives: int = 3,
        judge: bool = True,
        settings: Mapping[str, str] | None = None,
    ) -> None:
        self.world = world
        self.bucket = f"exp-{world.name}".lower()
        self.prefix = EXPORT_PREFIX
        self.location = f"s3://{self.bucket}/{self.prefix}"
        self.locations = [(self.bucket, self.prefix)]
        self.max_pending_receives = max_pending_receives
        self.judge = judge
        self.racing = False  # another writer runs meanwhile: whether a session is archived is unknown
        self.settings = dict(settings or {})
        self.lock = threading.Lock()
        self.progressed = threading.Condition(self.lock)  # notified after every consumer invocation
        self.resources = world.stack.create_event_resources(
            self.location, queue_name=f"q-{world.name}", max_pending_receives=max_pending_receives
        )
        world.log_workers += [w for w in consumers if w not in world.log_workers]
        self.drivers = [ConsumerDriver(self, worker) for worker in consumers]
        self.facts: Facts = emulator_facts(world.stack.emulator.get_session)
        self._sqs = aws_client("sqs", self.resources.endpoint_url, world.region)
        self._s3 = world.stack.client("s3", direct=True)
        self._api = world.stack.client("gameliftstreams")

    # -- the consumer's configuration ----------------------------------------------------------------

    def env(self) -> dict[str, str]:
        """The scheduled function's environment plus the consumer's (docs/EVENTS.md)."""
        return self.world.env(
            {"EXPORT_LOCATIONS": self.location, "MAX_PENDING_RECEIVES": str(self.max_pending_receives)} | self.settings
        )

    def context(self, request_id: str) -> dict[str, str]:
        region = self.world.region
        return {
            "function_name": CONSUMER_FUNCTION,
            "invoked_function_arn": f"arn:aws:lambda:{region}:{ACCOUNT}:function:{CONSUMER_FUNCTION}",
            "aws_request_id": request_id,
        }

    # -- sessions and their exports ------------------------------------------------------------------

    def export(self, n: int) -> list[str]:
        """`n` live sessions exported to the folder and terminated through the real API: each ZIP lands in
        the bucket (one Object Created on the queue); the API shows SUCCEEDED then, or once the emulator's
        export_success_delay_ms has passed. Their ARNs."""
        arns = []
        for _ in range(n):
            arn = str(self.world.gls.start()["Arn"])
            group, session = arn.rsplit("/", 2)[-2:]
            self._api.export_stream_session_files(
                Identifier=group, StreamSessionIdentifier=session, OutputUri=self.location
            )
            self._api.terminate_stream_session(Identifier=group, StreamSessionIdentifier=session)
            arns.append(arn)
        return arns

    def bulk_exports(self, n: int) -> dict[str, str]:
        """`n` ended sessions whose exports SUCCEEDED into this folder (the API's OutputUri names each ZIP),
        made in bulk; no object is written yet (`land`). ARN -> key."""
        emulator = self.world.stack.emulator
        keys: dict[str, str] = {}
        for arn in self.world.seed(n):
            group, session = arn.rsplit("/", 2)[-2:]
            key = f"{self.prefix}20261201-000000-a-burst-{group}-{session}.zip"
            emulator.set_export_status(arn, "SUCCEEDED", f"s3://{self.bucket}/{key}")
            keys[arn] = key
        return keys

    def land(self, keys: Iterable[str], *, threads: int = 8, backlog: int | None = None) -> None:
        """Write an object at each key: each sends its Object Created through moto's S3 -> EventBridge -> SQS.
        `backlog`: hold the writers while that many messages wait for the consumers (see `run_burst`)."""
        sent = [0]

        def put(key: str) -> None:
            if backlog is not None:
                with self.progressed:
                    if not self.progressed.wait_for(lambda: sent[0] - self._handled() < backlog, WAIT):
                        raise TimeoutError(f"the consumers took nothing for {WAIT:g} s")
                    sent[0] += 1
            self._s3.put_object(Bucket=self.bucket, Key=key, Body=EMPTY_ZIP)

        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(put, keys))

    def put(self, key: str, body: bytes = EMPTY_ZIP, bucket: str | None = None) -> None:
        self._s3.put_object(Bucket=bucket or self.bucket, Key=key, Body=body)

    def zip_name(self, arn: str) -> str:
        """The file name of a session's export ZIP, as GetStreamSession's OutputUri names it."""
        export = self.facts(arn)
        assert export is not None and export.output_uri, arn
        return export.output_uri.rsplit("/", 1)[-1]

    # -- the queue -----------------------------------------------------------------------------------

    def send(self, bodies: Sequence[str]) -> None:
        """Put these bodies on the queue, in this order (as EventBridge would deliver them)."""
        for start in range(0, len(bodies), 10):
            chunk = bodies[start : start + 10]
            entries = [{"Id": str(i), "MessageBody": body} for i, body in enumerate(chunk)]
            answer = self._sqs.send_message_batch(QueueUrl=self.resources.queue_url, Entries=entries)
            if answer.get("Failed"):
                raise RuntimeError(f"SQS refused messages: {answer['Failed'][:2]}")

    def take(self, count: int, timeout: float = WAIT) -> list[str]:
        """Take `count` messages off the queue (received and deleted): the chain's own, to deliver again in
        an order and number of the caller's choosing."""
        deadline = time.monotonic() + timeout
        bodies: list[str] = []
        while len(bodies) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {len(bodies)} of {count} messages arrived within {timeout:g} s")
            answer = self._sqs.receive_message(
                QueueUrl=self.resources.queue_url,
                MaxNumberOfMessages=min(10, count - len(bodies)),
                WaitTimeSeconds=1,
            )
            messages = answer.get("Messages", [])
            if messages:
                entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
                self._sqs.delete_message_batch(QueueUrl=self.resources.queue_url, Entries=entries)
                bodies += [str(m["Body"]) for m in messages]
        return bodies

    def depth(self, dead_letters: bool = False) -> int:
        """Messages on the queue (or its dead-letter queue): visible, in flight and delayed."""
        url = self.resources.dlq_url if dead_letters else self.resources.queue_url
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        names.append("ApproximateNumberOfMessagesDelayed")
        attributes = self._sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
        return sum(int(attributes.get(name, 0)) for name in names)

    def poller(self, driver: ConsumerDriver, *, visibility_timeout: int | None = None) -> SqsPoller:
        """An event source mapping instance of the queue invoking `driver` (batches of up to 10)."""
        return SqsPoller(
            driver,
            queue_url=self.resources.queue_url,
            queue_arn=self.resources.queue_arn,
            endpoint_url=self.resources.endpoint_url,
            region=self.world.region,
            wait_time_seconds=1,
            visibility_timeout=visibility_timeout,
            function_name=CONSUMER_FUNCTION,
        )

    def drain(
        self,
        until: Callable[[], bool],
        *,
        timeout: float = WAIT,
        drivers: Sequence[ConsumerDriver] | None = None,
        visibility_timeout: int | None = None,
    ) -> PollResult:
        """Poll with one event source mapping instance per driver (each in a thread) until `until()` holds;
        TimeoutError if it does not within `timeout`."""
        chosen = list(drivers or self.drivers)
        pollers = [self.poller(d, visibility_timeout=visibility_timeout) for d in chosen]
        if len(pollers) == 1:
            return pollers[0].drain(until, timeout)
        with ThreadPoolExecutor(len(pollers)) as pool:
            results = list(pool.map(lambda p: p.drain(until, timeout), pollers))
        total = PollResult()
        for result in results:
            total = total + result
        return total

    # -- what the consumers did ----------------------------------------------------------------------

    def tally(self) -> Counter[str]:
        with self.lock:
            total: Counter[str] = Counter()
            for driver in self.drivers:
                total.update(driver.tally)
            return total

    def handled(self) -> int:
        """Messages the consumers counted an outcome for."""
        with self.lock:
            return self._handled()

    def _handled(self) -> int:  # with the lock held
        return sum(sum(d.tally.values()) for d in self.drivers)

    def batches(self) -> list[Batch]:
        with self.lock:
            return [b for d in self.drivers for b in d.batches]

    def kills(self) -> int:
        return sum(d.kills for d in self.drivers)

    def named(self, bodies: Iterable[str]) -> set[str]:
        """The sessions these bodies name."""
        return {n.session_arn for n in map(announced, bodies) if n is not None and n.session_arn is not None}

    def object_body(self, key: str) -> bytes:
        """A record's bytes in the archive bucket (read past the fault proxy)."""
        body: bytes = self._s3.get_object(Bucket=self.world.bucket, Key=key)["Body"].read()
        return body
