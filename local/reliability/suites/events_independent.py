"""The independent black-box run of the consumer: a fresh emulator and moto, each in a process of its own and
controlled over HTTP only, and a driver that knows nothing of the consumer but its contract (docs/EVENTS.md).

The driver builds Lambda's SQS event itself from ReceiveMessage (not the harness's `SqsPoller`), gives the
consumer only the documented environment, and does with the return value what Lambda does: deletes the
messages not in batchItemFailures, nothing if the invocation died. For every invocation it predicts, from
the contract's table (`event_oracle`) and what it can see (GetStreamSession before the faults, the ledger
before the invocation), exactly which messages must come back, and compares. No log line is read: the
outcome of a message shows only as acknowledged or delivered again, and in S3 and DynamoDB.
"""

from __future__ import annotations

import random
import time
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from local.gls.models import GameLiftStreamsBackend
from local.reliability.constants import ACCOUNT, ENV_CANARY, PREFIX, REGION, STATS_PREFIX
from local.reliability.event_oracle import REDELIVER, Export, Hostile, announced, expected_outcomes, hostile_messages
from local.reliability.suites.events import OTHER_ACCOUNT, EventCase
from local.reliability.world import World
from local.stack import LocalStack
from local.stack.aws import aws_client
from local.worker import CONSUMER, Worker

BUCKET: Final = "independent-exports"
LOCATION: Final = f"s3://{BUCKET}/exports/"
MAX_PENDING_RECEIVES: Final = 3
FUNCTION_ARN: Final = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:session-archiver-events"
ACKNOWLEDGED, AGAIN = "acknowledged", "delivered again"


class BlackBox:
    """Lambda's SQS event source mapping and the consumer's configuration, from the contract alone."""

    def __init__(self, stack: LocalStack, world: World, worker: Worker) -> None:
        self.stack, self.world, self.worker = stack, world, worker
        resources = stack.event_resources
        self.queue_url, self.queue_arn = resources.queue_url, resources.queue_arn
        self.sqs = aws_client("sqs", resources.endpoint_url, REGION)
        self.api = stack.client("gameliftstreams")
        self.ddb = stack.client("dynamodb", direct=True)
        self.facts: dict[str, Export] = {}  # what GetStreamSession said, when nothing was faulted
        self.api_down = False
        self.counted: Counter[str] = Counter()
        self.invocations = 0
        self.messages = 0
        self.kills = 0
        self.disagreements: list[str] = []

    def env(self) -> dict[str, str]:
        """The scheduled function's variables (README, "Configuration") plus the consumer's (docs/EVENTS.md)."""
        return {
            **self.stack.aws_env(),
            "AWS_SESSION_TOKEN": ENV_CANARY,
            "ARCHIVE_TABLE_NAME": self.world.table,
            "ARCHIVE_BUCKET_NAME": self.world.bucket,
            "ARCHIVE_PREFIX": PREFIX,
            "STATS_PREFIX": STATS_PREFIX,
            "SOURCE_REGIONS": REGION,
            "MAX_ATTEMPTS": "2",
            "READ_TIMEOUT_SECONDS": "2",
            "GET_RATE_PER_SECOND": "100",
            "TIME_BUDGET_MARGIN_SECONDS": "0",
            "EXPORT_LOCATIONS": LOCATION,
            "MAX_PENDING_RECEIVES": str(MAX_PENDING_RECEIVES),
        }

    def learn(self, arns: Sequence[str]) -> None:
        """What GetStreamSession says about these sessions' exports now (call with nothing faulted)."""
        for arn in arns:
            group = arn.rsplit("/", 2)[-2]
            meta = self.api.get_stream_session(Identifier=group, StreamSessionIdentifier=arn).get(
                "ExportFilesMetadata", {}
            )
            self.facts[arn] = Export(meta.get("Status"), meta.get("OutputUri"))

    def archived(self, arn: str) -> bool:
        item = self.ddb.get_item(TableName=self.world.table, Key={"session_arn": {"S": arn}}, ConsistentRead=True)
        return "Item" in item

    def send(self, bodies: Sequence[str]) -> None:
        for start in range(0, len(bodies), 10):
            entries = [{"Id": str(i), "MessageBody": b} for i, b in enumerate(bodies[start : start + 10])]
            self.sqs.send_message_batch(QueueUrl=self.queue_url, Entries=entries)

    def record(self, message: Mapping[str, Any]) -> dict[str, Any]:
        """One record of Lambda's SQS event ("Using Lambda with Amazon SQS")."""
        attributes = message.get("Attributes", {})
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": {
                name: attributes[name]
                for name in ("ApproximateReceiveCount", "SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp")
                if name in attributes
            },
            "messageAttributes": {},
            "md5OfBody": message.get("MD5OfBody", ""),
            "eventSource": "aws:sqs",
            "eventSourceARN": self.queue_arn,
            "awsRegion": REGION,
        }

    def poll(self) -> int:
        """One receive (up to 10, visibility 1 s), one invocation, the acknowledged messages deleted; how many
        messages were received."""
        messages = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=1,
            VisibilityTimeout=1,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            return 0
        records = [self.record(m) for m in messages]
        predicted = self.predict(records)
        invocation = self.worker.invoke(
            self.env(),
            handler=CONSUMER,
            event={"Records": records},
            timeout=60.0,
            context={"invoked_function_arn": FUNCTION_ARN, "aws_request_id": str(uuid.uuid4())},
        )
        self.world.touched()
        self.invocations += 1
        self.messages += len(records)
        ids = [r["messageId"] for r in records]
        if invocation.killed:  # Lambda: the batch failed, nothing deleted, all delivered again
            self.kills += 1
            self.counted[AGAIN] += len(ids)
            return len(messages)
        again = self.judge(ids, predicted, invocation.summary, invocation.error)
        self.counted.update({ACKNOWLEDGED: len(ids) - len(again), AGAIN: len(again)})
        done = [m for m in messages if m["MessageId"] not in again]
        if done:
            entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)]
            self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=entries)
        return len(messages)

    def predict(self, records: Sequence[Mapping[str, Any]]) -> list[frozenset[bool] | None]:
        """Per record, whether it must come back (True), must not (False), either (both), from the contract."""
        out: list[frozenset[bool] | None] = []
        taken: set[str] = set()
        for r in records:
            named = announced(str(r["body"]))
            arn = named.session_arn if named else None
            state = arn is not None and (arn in taken or self.archived(arn))
            allowed = expected_outcomes(
                str(r["body"]),
                [(BUCKET, "exports/")],
                self.facts.get,
                receives=int(r["attributes"].get("ApproximateReceiveCount", 1)),
                max_pending_receives=MAX_PENDING_RECEIVES,
                archived=state,
                api_down=self.api_down,
            )
            if arn is not None and allowed == frozenset({"archived"}):
                taken.add(arn)
            out.append(frozenset(outcome in REDELIVER for outcome in allowed))
        return out

    def judge(
        self, ids: Sequence[str], predicted: Sequence[frozenset[bool] | None], summary: Any, error: str | None
    ) -> set[str]:
        """The messages the return value leaves for redelivery; disagreements with the contract recorded."""
        if error is not None or not isinstance(summary, dict) or not isinstance(summary.get("batchItemFailures"), list):
            self.disagreements.append(
                f"invocation {self.invocations}: no batchItemFailures ({error or summary!r:.200})"
            )
            return set(ids)
        again = {f.get("itemIdentifier") for f in summary["batchItemFailures"] if isinstance(f, dict)}
        if not again <= set(ids) or len(again) != len(summary["batchItemFailures"]):
            self.disagreements.append(f"invocation {self.invocations}: batchItemFailures {summary} not of the batch")
        for message, allowed in zip(ids, predicted, strict=True):
            if allowed is not None and (message in again) not in allowed:
                want = "delivered again" if True in allowed else "acknowledged"
                self.disagreements.append(f"invocation {self.invocations}: message {message} should be {want}")
        return {str(i) for i in again}

    def drain(self, count: int, timeout: float = 120.0) -> None:
        """Poll until `count` more deliveries have been acknowledged, or the queue is empty (what was never
        acknowledged went to the dead-letter queue: a disagreement)."""
        goal = self.counted[ACKNOWLEDGED] + count
        deadline = time.monotonic() + timeout
        while self.counted[ACKNOWLEDGED] < goal:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{goal - self.counted[ACKNOWLEDGED]} messages not acknowledged in {timeout:g} s")
            if not self.poll() and not self.depth():
                self.disagreements.append(f"{goal - self.counted[ACKNOWLEDGED]} messages never acknowledged")
                return

    def depth(self) -> int:
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        attributes = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=names)["Attributes"]
        return sum(int(attributes.get(name, 0)) for name in names)

    def take(self, count: int) -> list[str]:
        """Take the chain's own messages off the queue, to deliver them again as the case says."""
        bodies: list[str] = []
        while len(bodies) < count:
            messages = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
            for m in messages.get("Messages", []):
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=m["ReceiptHandle"])
                bodies.append(str(m["Body"]))
        return bodies


def run_events_independent(log_dir: Path, *, seed: int, sessions: int = 20, nested: bool = True) -> EventCase:
    """Four phases on one archive, every invocation predicted from the contract: exports delivered 1-3 times,
    shuffled with hostile bodies; exports still PENDING (delivered again until MAX_PENDING_RECEIVES, then left
    to a reconcile run); GetStreamSession failing on every attempt (exactly the messages that need it come
    back); a SIGKILL between S3 and DynamoDB (the whole batch comes back and completes). Then the audit."""
    started = time.monotonic()
    case = EventCase("independent black-box run (separate emulator and moto)")
    with (
        LocalStack(seed, REGION, processes=True, export_locations=LOCATION, gls_latency_ms=2) as stack,
        Worker(log_dir) as worker,
        World(stack, worker, name=f"evind{seed}") as world,
    ):
        box = BlackBox(stack, world, worker)
        ours, bodies, hostile = _deliveries(box, sessions, random.Random(seed), seed, nested)
        late = _pending(box, case, max(2, sessions // 5))
        down = _api_down(box, max(2, sessions // 5), bodies[:3] + [h.body for h in hostile[:6]])
        killed = _export(box, 5)
        box.stack.faults.kill(worker.pid, "PutItem", nth=2, when="before")
        box.drain(len(killed))  # the whole batch comes back and completes from the stored record
        stack.faults.clear()
        if box.kills != 1:
            case.violations.append(f"{box.kills} kills, expected 1")
        final = world.run()
        if final.failed or final.total("archived"):
            case.violations.append(f"the last reconcile run archived {final.total('archived')}: {final.error}")
        expected = set(ours) | set(late) | set(down) | set(killed)
        case.audit = world.audit(expected, check_records=True)
        case.violations += box.disagreements + world.violations
        if case.audit.overwrites:
            case.violations.append(f"{case.audit.overwrites} records written twice")
        if box.depth():
            case.violations.append(f"{box.depth()} messages left on the queue")
        case.sessions = len(expected)
        case.messages, case.invocations, case.kills = box.messages, box.invocations, box.kills
        case.outcomes = box.counted
        case.notes.append(f"{len(hostile)} hostile messages; every message's acknowledgment predicted")
    case.seconds = time.monotonic() - started
    return case


def _export(box: BlackBox, n: int) -> list[str]:
    """`n` sessions exported to LOCATION and ended through the real API (each ZIP lands: one event), learnt."""
    arns = []
    for _ in range(n):
        arn = str(box.stack.gls.start()["Arn"])
        group, session = arn.rsplit("/", 2)[-2:]
        box.api.export_stream_session_files(Identifier=group, StreamSessionIdentifier=session, OutputUri=LOCATION)
        box.api.terminate_stream_session(Identifier=group, StreamSessionIdentifier=session)
        arns.append(arn)
    box.learn(arns)
    return arns


def _deliveries(
    box: BlackBox, n: int, rng: random.Random, seed: int, nested: bool
) -> tuple[list[str], list[str], list[Hostile]]:
    """Each export event delivered 1-3 times, shuffled with hostile bodies (other accounts' sessions among
    them); our sessions, their events, the hostile messages."""
    ours = _export(box, n)
    bodies = box.take(len(ours))
    other = GameLiftStreamsBackend(seed + 2, REGION, account_id=OTHER_ACCOUNT).seed_sessions(2, succeeded_fraction=1.0)
    names = [str(d["ExportFilesMetadata"]["OutputUri"]).rsplit("/", 1)[-1] for d in other]
    zip_name = str(box.facts[ours[0]].output_uri).rsplit("/", 1)[-1]
    hostile = hostile_messages(
        BUCKET, "exports/", zip_name, names, ours[1].rsplit("/", 1)[-1], "not-ours", nested=nested
    )
    mixed = [b for b in bodies for _ in range(rng.randint(1, 3))] + [h.body for h in hostile]
    rng.shuffle(mixed)
    box.send(mixed)
    box.drain(len(mixed))
    return ours, bodies, hostile


def _pending(box: BlackBox, case: EventCase, n: int) -> list[str]:
    """Exports whose ZIPs landed while the API says PENDING: delivered again until the MAX_PENDING_RECEIVESth
    receive, then acknowledged; a reconcile run archives them once the API says SUCCEEDED."""
    box.stack.gls.config(export_success_delay_ms=600_000)
    late = _export(box, n)
    box.drain(len(late))
    box.stack.gls.config(export_success_delay_ms=0)
    run = box.world.run()
    case.reconciled += run.total("archived")
    if run.failed or run.total("archived") != len(late):
        case.violations.append(f"the reconcile run archived {run.total('archived')} of {len(late)}: {run.error}")
    return late


def _api_down(box: BlackBox, n: int, others: Sequence[str]) -> list[str]:
    """New exports and `others` (messages that need no GetStreamSession) while GetStreamSession fails on
    every attempt: the new ones come back, the others are acknowledged; then the API recovers."""
    down = _export(box, n)
    box.send(box.take(len(down)) + list(others))
    box.stack.gls.set_faults([{"operation": "GetStreamSession", "kind": "internal"}])
    box.api_down = True
    box.drain(len(others))
    box.stack.gls.set_faults([])
    box.api_down = False
    box.drain(len(down))
    return down
