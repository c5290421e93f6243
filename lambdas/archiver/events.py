"""Lambda entry point of the event consumer: an SQS batch of S3 `Object Created` events of export ZIPs.

Contract (docs/DEPLOY.md, "Event-driven archiving"): `archiver.events.handler(event, context)` takes Lambda's
SQS event (each body an EventBridge event: source `aws.s3`, detail-type `Object Created`,
`detail.bucket.name`, `detail.object.key`), runs with the scheduled function's environment plus
`EXPORT_LOCATIONS`, and returns `{"batchItemFailures": [{"itemIdentifier": <messageId>}, ...]}`: the messages
to deliver again (export still PENDING, throttling or 5xx after retries, out of time). Every other message is
acknowledged, whatever it holds. Powertools' batch processor runs the records; `archiver.consumer` decides.
"""

from __future__ import annotations

import contextlib
import gc
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from archiver import telemetry
from archiver.archive import Archivist
from archiver.budget import Budget, OutOfTime, request_reserve_seconds
from archiver.consumer import Consumer, Outcome
from archiver.errors import TRANSIENT_ERRORS, FatalError, error_code
from archiver.ledger import LedgerUnavailable
from archiver.ownership import Owner
from archiver.settings import ConfigError
from archiver.wiring import Wiring, wiring

logger = Logger(service=telemetry.SERVICE)
metrics = Metrics(namespace=telemetry.NAMESPACE, service=telemetry.SERVICE)
tracer = Tracer(service=telemetry.SERVICE, patch_modules=("botocore",))
# Lambda's SQS event: an entirely failed batch is returned as failures (not raised), so a batch of PENDING
# exports is redelivered without counting as a function error.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


class ConsumerFailed(RuntimeError):
    """A fatal error (no permission, missing table or bucket): fail the invocation so the alarms fire."""


class Redeliver(Exception):
    """Tells the batch processor to report the message in batchItemFailures."""


def _prewarm() -> None:
    """Clients built in the INIT phase; a bad environment is reported by the invocation instead."""
    with contextlib.suppress(Exception):
        wiring()


_prewarm()
gc.freeze()  # as in archiver.handler: what INIT built lives as long as the container, out of the collector's sight


class _Batch:
    """One invocation: the consumer (for the function's own account: archiver.ownership), the budget and the
    tally of outcomes. Raises ConfigError without EXPORT_LOCATIONS or the function's ARN in the context."""

    def __init__(self, wired: Wiring, context: Any) -> None:
        settings = wired.settings
        locations = settings.require_export_locations()
        owner = Owner.of(context, settings.source_regions)
        self.consumer = Consumer(
            locations,
            {source.region: source for source in wired.sources},
            wired.ledger,
            Archivist(settings, wired.ledger, wired.store, lambda: datetime.now(UTC), owner, exports=wired.exports),
            max_pending_receives=settings.max_pending_receives,
        )
        reserve = request_reserve_seconds(settings.read_timeout_seconds)
        self.budget = Budget.from_context(context, settings.safety_margin_seconds, reserve)
        self.outcomes: Counter[Outcome] = Counter()
        self.fatal: str | None = None

    def handle(self, record: SQSRecord) -> str:
        outcome = self._outcome(record)
        self.outcomes[outcome] += 1
        if outcome.redeliver:
            raise Redeliver(outcome.value)
        return outcome.value

    def _outcome(self, record: SQSRecord) -> Outcome:
        if self.fatal is not None or self.budget.expired():
            return Outcome.FAILED  # delivered again, to an invocation that can do it
        try:
            receives = int(record.attributes.approximate_receive_count or 1)
        except (TypeError, ValueError):
            receives = 1
        try:
            return self.consumer.consume(record.body, receives)
        except FatalError as fatal:
            self.fatal = str(fatal)
            logger.error("Consumer stopped: cannot continue", extra={"error": self.fatal})
        except OutOfTime:
            logger.info("Message cut off by the time budget; delivered again", extra={"message_id": record.message_id})
        except (LedgerUnavailable, *TRANSIENT_ERRORS) as failure:
            logger.error(
                "Message not processed; delivered again",
                extra={"message_id": record.message_id, "error": error_code(failure)},
            )
        except Exception:  # a bug or an input nobody foresaw must not stop the other messages
            logger.exception("Message not processed (unexpected error)", extra={"message_id": record.message_id})
        return Outcome.FAILED


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: Any, context: Any) -> dict[str, Any]:
    """Archive the sessions whose export ZIPs the batch announces; return the messages to deliver again."""
    try:
        wired = wiring()
        batch = _Batch(wired, context)
    except ConfigError as error:
        logger.error("Invalid configuration", extra={"error": str(error)})
        raise
    wired.cutoff.budget = batch.budget
    try:
        if not isinstance(event, dict) or not isinstance(event.get("Records"), list):
            logger.error("Not an SQS event: nothing to process", extra={"event_type": type(event).__name__})
            response: dict[str, Any] = {"batchItemFailures": []}
        else:
            response = dict(process_partial_response(event, batch.handle, processor, context))
    finally:
        wired.cutoff.budget = None
    for name, outcome in telemetry.EVENT_OUTCOMES.items():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=batch.outcomes[Outcome(outcome)])
    exports = batch.consumer.archivist.take()
    for name, field in telemetry.EXPORT_FIELDS.items():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=getattr(exports, field))
    summary = {outcome.value: count for outcome, count in sorted(batch.outcomes.items())}
    if batch.fatal is not None:
        logger.error("Batch failed", extra={"outcomes": summary, "error": batch.fatal})
        raise ConsumerFailed(batch.fatal)
    logger.info(
        "Batch processed",
        extra={
            "outcomes": summary,
            "exports": exports.as_dict(),
            "redelivered": len(response["batchItemFailures"]),
        },
    )
    return response
