"""Lambda entry point: wiring, run, report. Everything else lives in plain modules."""

from __future__ import annotations

import contextlib
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

from archiver import telemetry
from archiver.budget import Budget, request_reserve_seconds
from archiver.run import run_archive
from archiver.settings import ConfigError
from archiver.wiring import wiring

logger = Logger(service=telemetry.SERVICE)
metrics = Metrics(namespace=telemetry.NAMESPACE, service=telemetry.SERVICE)
tracer = Tracer(service=telemetry.SERVICE, patch_modules=("botocore",))


class RunFailed(RuntimeError):
    """The run could not finish a Region (fatal error or listing failure): fail the invocation so alarms fire."""


def _prewarm() -> None:
    """Build the clients at import, i.e. in the Lambda INIT phase, so the invocation spends its time archiving.

    A bad environment is not an import error: the invocation reports it as before (ConfigError naming the
    variable), and builds the clients then (a failed call is not cached).
    """
    with contextlib.suppress(Exception):  # the first invocation raises the same error, with its message
        wiring()


_prewarm()


@logger.inject_lambda_context(clear_state=True)  # keys of the previous (warm) invocation must not leak
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: Any, context: Any) -> dict[str, Any]:
    """Archive every new session whose exported files succeeded. Accepts a scheduled event or `{}`."""
    try:
        wired = wiring()
    except ConfigError as error:
        logger.error("Invalid configuration", extra={"error": str(error)})
        raise
    if isinstance(event, dict) and event.get("id"):
        logger.append_keys(event_id=str(event["id"])[:100])
    settings = wired.settings
    reserve = request_reserve_seconds(settings.read_timeout_seconds)
    budget = Budget.from_context(context, settings.safety_margin_seconds, reserve)
    wired.cutoff.budget = budget
    try:
        report = run_archive(settings, wired.sources, wired.ledger, wired.store, budget)
    finally:
        wired.cutoff.budget = None
    summary = report.as_dict()
    total = report.total
    for name, field in telemetry.COUNTER_FIELDS.items():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=getattr(total, field))
    metrics.add_metric(name=telemetry.RUN_DURATION, unit=MetricUnit.Milliseconds, value=report.duration_ms)
    if report.errors:
        logger.error("Run failed", extra={"summary": summary})
        raise RunFailed("; ".join(report.errors))
    metrics.add_metric(name=telemetry.RUN_COMPLETED, unit=MetricUnit.Count, value=1)
    logger.info("Run complete", extra={"summary": summary})
    return summary
