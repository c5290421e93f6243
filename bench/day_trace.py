"""What the simulated day's consumers saw, per session: when its event entered the queue, each delivery, and
the invocation that acknowledged it. Exact instants, no polling: the pollers report to a `Recorder`, and the
benchmark waits on its condition.

- **landed**: the message's `SentTimestamp` (ms). moto's S3 sends the `Object Created` event to EventBridge,
  and the rule to SQS, inside the PutObject of the ZIP, so this is the instant the ZIP landed (to the ms,
  truncated: a latency reads up to 1 ms long). AWS's own S3 -> EventBridge -> SQS delivery time is not in it.
- **archived**: the instant the consumer's invocation returned with the message not in `batchItemFailures`
  (its ledger item written; the poller deletes it next).

The consumer is the real `archiver.events.handler` in a `local.worker` process (a warm Lambda container), one
process per event source mapping instance; the SQS client of each poller counts its own requests.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from archiver import exports
from local.sqs_poller import Handler, sqs_record
from local.stack import aws_client
from local.worker import CONSUMER, Invocation, Worker


class ConsumerInvocationFailed(RuntimeError):
    """The consumer's invocation failed as a whole: the poller deletes nothing of its batch."""


@dataclass
class Trace:
    """One session's event, as the consumers saw it (wall-clock seconds)."""

    landed_at: float | None = None
    deliveries: int = 0
    received_at: float | None = None  # when the acknowledging invocation started
    archived_at: float | None = None
    instance: int | None = None

    @property
    def latency(self) -> float:
        assert self.landed_at is not None and self.archived_at is not None
        return self.archived_at - self.landed_at


@dataclass
class Counters:
    """One phase's requests and invocations, over every consumer instance."""

    invocations: int = 0
    failed_invocations: int = 0
    lambda_seconds: float = 0.0
    receives: int = 0  # ReceiveMessage calls that returned messages
    empty_receives: int = 0  # long polls that ended with none (in AWS: 20 s polls, counted apart)
    delete_calls: int = 0
    deleted: int = 0
    acknowledged: int = 0
    foreign: int = 0  # messages naming no session of the phase (none expected)
    per_instance: dict[int, int] = field(default_factory=dict)  # invocations


def session_id(body: str) -> str | None:
    """The session an S3 Object Created event's key names (archiver.exports' reading of it)."""
    try:
        detail = json.loads(body)["detail"]
        found = exports.session_of(str(detail["bucket"]["name"]), str(detail["object"]["key"]))
    except (ValueError, KeyError, TypeError):
        return None
    return found.session_id if found else None


class Recorder:
    """Traces of the current phase's sessions and its counters, shared by every poller thread."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.traces: dict[str, Trace] = {}
        self.counters = Counters()

    def begin(self, session_ids: Iterable[str]) -> None:
        """A new phase: these sessions are expected, the counters start at zero."""
        with self._cond:
            self.traces = {sid: Trace() for sid in session_ids}
            self.counters = Counters()

    # -- what the pollers report ---------------------------------------------------------------------

    def invoked(
        self, instance: int, records: list[dict[str, Any]], run: Invocation, received: float, returned: float
    ) -> None:
        failures = {str(f.get("itemIdentifier")) for f in (run.summary or {}).get("batchItemFailures", [])}
        with self._cond:
            c = self.counters
            c.invocations += 1
            c.per_instance[instance] = c.per_instance.get(instance, 0) + 1
            c.lambda_seconds += run.seconds
            c.failed_invocations += run.failed
            for record in records:
                trace = self.traces.get(session_id(str(record.get("body", ""))) or "")
                if trace is None:
                    c.foreign += 1
                    continue
                trace.deliveries += 1
                sent = record.get("attributes", {}).get("SentTimestamp")
                if trace.landed_at is None and sent is not None:
                    trace.landed_at = int(sent) / 1000.0
                if not run.failed and record["messageId"] not in failures and trace.archived_at is None:
                    trace.received_at, trace.archived_at, trace.instance = received, returned, instance
                    c.acknowledged += 1
            self._cond.notify_all()

    def _after_receive(self, parsed: Mapping[str, Any], **_: Any) -> None:
        with self._cond:
            if parsed.get("Messages"):
                self.counters.receives += 1
            else:
                self.counters.empty_receives += 1

    def _after_delete(self, parsed: Mapping[str, Any], **_: Any) -> None:
        with self._cond:
            self.counters.delete_calls += 1
            self.counters.deleted += len(parsed.get("Successful", []))
            self._cond.notify_all()

    def sqs_client(self, endpoint_url: str, region: str) -> Any:
        """An SQS client for one poller whose requests this recorder counts."""
        client = aws_client("sqs", endpoint_url, region)
        client.meta.events.register("after-call.sqs.ReceiveMessage", self._after_receive)
        client.meta.events.register("after-call.sqs.DeleteMessageBatch", self._after_delete)
        return client

    # -- waiting -------------------------------------------------------------------------------------

    def wait(self, timeout: float) -> bool:
        """Until every expected session is archived and its message deleted; False at the timeout."""

        def done() -> bool:
            archived = all(t.archived_at is not None for t in self.traces.values())
            return archived and self.counters.deleted >= self.counters.acknowledged

        with self._cond:
            return self._cond.wait_for(done, timeout)

    def missing(self) -> list[str]:
        with self._cond:
            return sorted(sid for sid, t in self.traces.items() if t.archived_at is None)


def warm_up_event(queue_arn: str, region: str) -> dict[str, Any]:
    """One record whose body is not an event (`malformed`: acknowledged, no call): the consumer's module and
    clients are imported and built, as in a Lambda container's INIT, before anything is measured."""
    message = {
        "MessageId": str(uuid.uuid4()),
        "ReceiptHandle": "warm-up",
        "Body": "warm-up",
        "Attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": str(int(time.time() * 1000))},
    }
    return {"Records": [sqs_record(message, queue_arn, region)]}


def consumer(
    worker: Worker, env: Mapping[str, str], recorder: Recorder, instance: int, identity: Mapping[str, str]
) -> Handler:
    """The poller's handler: one invocation of `archiver.events.handler` in `worker`, timed and reported."""

    def handle(event: dict[str, Any], context: Any) -> Any:
        received = time.time()
        run = worker.invoke(
            env,
            event=event,
            handler=CONSUMER,
            timeout=context.get_remaining_time_in_millis() / 1000.0,
            context={**identity, "aws_request_id": str(uuid.uuid4())},
        )
        returned = time.time()
        recorder.invoked(instance, list(event.get("Records", [])), run, received, returned)
        if run.failed:
            raise ConsumerInvocationFailed(str(run.error))
        return run.summary

    return handle
