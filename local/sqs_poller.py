"""`SqsPoller`: what Lambda's SQS event source mapping does, for a handler run locally against a real queue.

Receive a batch (long polling, the batch size, the visibility timeout, every attribute), build the event
exactly as Lambda builds it ("Using Lambda with Amazon SQS": `Records[]` of messageId, receiptHandle, body,
attributes, messageAttributes, md5OfBody, eventSource `aws:sqs`, eventSourceARN, awsRegion), call
`handler(event, context)`, then delete what succeeded. With ReportBatchItemFailures (on by default, as the
stack configures it) that is every message not in the response's `batchItemFailures`; the response is
judged as Lambda judges it: an empty or missing list is complete success, and an item without a usable
`itemIdentifier` (missing, empty, not a string, not a message of the batch) fails the whole batch. A handler
that raises fails the whole batch too. Nothing failed is deleted: SQS delivers it again after the visibility
timeout, and its redrive policy moves it to the dead-letter queue after maxReceiveCount receives.

No sleeps: the wait between polls is the long poll itself (`wait_time_seconds`).
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Self

from local.lambda_context import LambdaContext
from local.stack.aws import aws_client

Handler = Callable[[dict[str, Any], Any], Any]

# The system attributes Lambda passes on in `attributes` (its event examples and Powertools' SqsEvent model).
RECORD_ATTRIBUTES: Final = (
    "ApproximateReceiveCount",
    "SentTimestamp",
    "SenderId",
    "ApproximateFirstReceiveTimestamp",
    "AWSTraceHeader",
    "SequenceNumber",
    "MessageGroupId",
    "MessageDeduplicationId",
    "DeadLetterQueueSourceArn",
)
MAX_BATCH_SIZE: Final = 10  # ReceiveMessage and DeleteMessageBatch take at most 10
DEFAULT_FUNCTION_NAME: Final = "gameliftstreams-session-archiver-events"

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PollResult:
    """One poll (or the sum of several): messages received, deleted, left for redelivery (`failed`: reported
    in batchItemFailures, or their whole batch failed), and handler invocations that failed as a whole
    (`batch_errors`: the handler raised or answered what Lambda counts as a batch failure)."""

    received: int = 0
    deleted: int = 0
    failed: int = 0
    invocations: int = 0
    batch_errors: int = 0

    def __add__(self, other: PollResult) -> PollResult:
        return PollResult(
            self.received + other.received,
            self.deleted + other.deleted,
            self.failed + other.failed,
            self.invocations + other.invocations,
            self.batch_errors + other.batch_errors,
        )


def message_attributes(raw: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """SQS's MessageAttributes as Lambda writes them: camelCase, binary values base64, the list members."""
    out: dict[str, dict[str, Any]] = {}
    for name, value in raw.items():
        item: dict[str, Any] = {
            "stringListValues": list(value.get("StringListValues", [])),
            "binaryListValues": [base64.b64encode(v).decode("ascii") for v in value.get("BinaryListValues", [])],
            "dataType": value.get("DataType", "String"),
        }
        if "StringValue" in value:
            item["stringValue"] = value["StringValue"]
        if "BinaryValue" in value:
            item["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode("ascii")
        out[name] = item
    return out


def sqs_record(message: Mapping[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """One record of Lambda's SQS event from one ReceiveMessage message."""
    attributes = message.get("Attributes", {})
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message.get("Body", ""),
        "attributes": {name: attributes[name] for name in RECORD_ATTRIBUTES if name in attributes},
        "messageAttributes": message_attributes(message.get("MessageAttributes", {})),
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }
    if "MD5OfMessageAttributes" in message:
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return record


def failed_ids(response: Any, batch: Sequence[str]) -> set[str] | None:
    """The message IDs a ReportBatchItemFailures response leaves for redelivery; None if Lambda would count
    the whole batch failed (an item whose itemIdentifier is missing, empty, not a string or not in the batch)."""
    if not isinstance(response, Mapping):
        return set()  # no response, or not an object: complete success
    failures = response.get("batchItemFailures")
    if failures is None:
        return set()
    if not isinstance(failures, list):
        return None
    ids: set[str] = set()
    for item in failures:
        identifier = item.get("itemIdentifier") if isinstance(item, Mapping) else None
        if not isinstance(identifier, str) or not identifier or identifier not in batch:
            return None
        ids.add(identifier)
    return ids


class SqsPoller:
    """Lambda's SQS event source mapping for one queue and one handler, run by this process.

    `visibility_timeout` None: the queue's own. `context_factory` makes each invocation's context (default:
    a LambdaContext with `function_name` and `timeout_seconds`). `sqs_client`: a boto3 SQS client to use
    (default: one for `endpoint_url` with the local stack's dummy credentials).
    """

    def __init__(
        self,
        handler: Handler,
        *,
        queue_url: str,
        endpoint_url: str,
        region: str = "us-east-2",
        queue_arn: str | None = None,
        batch_size: int = MAX_BATCH_SIZE,
        wait_time_seconds: int = 1,
        visibility_timeout: int | None = None,
        report_batch_item_failures: bool = True,
        function_name: str = DEFAULT_FUNCTION_NAME,
        timeout_seconds: float = 60.0,
        context_factory: Callable[[], Any] | None = None,
        sqs_client: Any = None,
    ) -> None:
        if not 1 <= batch_size <= MAX_BATCH_SIZE:
            raise ValueError(f"batch_size must be 1 to {MAX_BATCH_SIZE}, not {batch_size}")
        if not 0 <= wait_time_seconds <= 20:
            raise ValueError(f"wait_time_seconds must be 0 to 20, not {wait_time_seconds}")
        self.handler = handler
        self.queue_url = queue_url
        self.region = region
        self.batch_size = batch_size
        self.wait_time_seconds = wait_time_seconds
        self.visibility_timeout = visibility_timeout
        self.report_batch_item_failures = report_batch_item_failures
        self.sqs = sqs_client if sqs_client is not None else aws_client("sqs", endpoint_url, region)
        self.queue_arn = queue_arn or str(
            self.sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        )
        account = self.queue_arn.split(":")[4] if self.queue_arn.count(":") >= 5 else "123456789012"
        function_arn = f"arn:aws:lambda:{region}:{account}:function:{function_name}"
        self.context_factory = context_factory or (
            lambda: LambdaContext(
                timeout_seconds=timeout_seconds,
                function_name=function_name,
                invoked_function_arn=function_arn,
                log_group_name=f"/aws/lambda/{function_name}",
            )
        )
        self.totals = PollResult()
        self.last_error: BaseException | None = None
        self._totals_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- one poll --------------------------------------------------------------------------------------

    def receive(self) -> list[dict[str, Any]]:
        """One ReceiveMessage as the event source mapping asks it (long polling: returns when messages come)."""
        request: dict[str, Any] = {
            "QueueUrl": self.queue_url,
            "MaxNumberOfMessages": self.batch_size,
            "WaitTimeSeconds": self.wait_time_seconds,
            "AttributeNames": ["All"],
            "MessageSystemAttributeNames": ["All"],
            "MessageAttributeNames": ["All"],
        }
        if self.visibility_timeout is not None:
            request["VisibilityTimeout"] = self.visibility_timeout
        return list(self.sqs.receive_message(**request).get("Messages", []))

    def event(self, messages: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """Lambda's SQS event for a batch."""
        return {"Records": [sqs_record(m, self.queue_arn, self.region) for m in messages]}

    def poll_once(self) -> PollResult:
        """Receive one batch, invoke the handler once with it (nothing received: no invocation), delete what
        succeeded. The handler's exception fails the batch (logged, not raised), as in Lambda."""
        messages = self.receive()
        if not messages:
            return PollResult()
        event = self.event(messages)
        batch = [str(m["MessageId"]) for m in messages]
        try:
            response = self.handler(event, self.context_factory())
        except Exception:
            _log.exception("the handler failed the whole batch of %d message(s)", len(messages))
            return self._count(PollResult(len(messages), 0, len(messages), 1, 1))
        failed = failed_ids(response, batch) if self.report_batch_item_failures else set()
        if failed is None:
            _log.error("the handler's batchItemFailures are invalid, so the whole batch failed: %r", response)
            return self._count(PollResult(len(messages), 0, len(messages), 1, 1))
        done = [m for m in messages if m["MessageId"] not in failed]
        deleted = self._delete(done)
        return self._count(PollResult(len(messages), deleted, len(failed), 1, 0))

    def _delete(self, messages: Sequence[Mapping[str, Any]]) -> int:
        """DeleteMessageBatch for these (at most 10: one batch); how many SQS deleted."""
        if not messages:
            return 0
        entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
        answer = self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=entries)
        for failure in answer.get("Failed", []):
            _log.warning("SQS did not delete a message: %s", failure)
        return len(answer.get("Successful", []))

    def _count(self, result: PollResult) -> PollResult:
        with self._totals_lock:
            self.totals = self.totals + result
        return result

    # -- many polls ----------------------------------------------------------------------------------

    def drain(self, until: Callable[[], bool], timeout: float) -> PollResult:
        """Poll until `until()` is true (checked before each poll); the sum of the polls. TimeoutError if it is
        still false after `timeout` seconds (a poll in flight then ends first: at most a long poll more)."""
        deadline = time.monotonic() + timeout
        total = PollResult()
        while not until():
            if time.monotonic() >= deadline:
                raise TimeoutError(f"the condition did not hold within {timeout:g} s (polled: {total})")
            total = total + self.poll_once()
        return total

    def start(self) -> Self:
        """Poll in a background thread until stop() (what a deployed mapping does all the time)."""
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="sqs-poller", daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except Exception as error:  # SQS unreachable, say: remember it, wait a moment, go on
                self.last_error = error
                _log.warning("polling %s failed: %s", self.queue_url, error)
                self._stop.wait(1.0)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the background thread: it ends after the poll in flight (at most one long poll and a batch)."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                raise RuntimeError(f"the SQS poller did not stop within {timeout:g} s")

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
