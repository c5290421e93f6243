"""Lambda entry point: wiring, run, report. Everything else lives in plain modules."""

from __future__ import annotations

import contextlib
import gc
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

from archiver import continuation, telemetry
from archiver.budget import Budget, request_reserve_seconds
from archiver.ownership import Owner
from archiver.run import RunReport, run_archive
from archiver.settings import ConfigError
from archiver.wiring import Wiring, wiring

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
# What INIT imported and built lives as long as the container: moved out of the collector's sight, a full
# collection during a run no longer walks its ~135,000 objects (~0.1 s each, GIL held, mid-listing), nor
# does the final collection of a local run's process at exit (~0.25 s). Objects made later are collected.
gc.freeze()


def _follow_up(
    wired: Wiring, context: Any, chain: continuation.Chain | None, report: RunReport
) -> dict[str, Any] | None:
    """Invoke a follow-up for the Regions this run left unfinished, within the chain's bound."""
    unfinished = report.unfinished
    if not unfinished:
        return None
    link = (chain.link if chain is not None else 0) + 1
    state: dict[str, Any] = {"link": link, "regions": sorted(unfinished), "invoked": False}
    function_arn = getattr(context, "invoked_function_arn", None)
    if link > wired.settings.max_continuations or not isinstance(function_arn, str):
        logger.warning(
            "Listing not finished and no follow-up allowed; the next scheduled run starts again",
            extra={"continuation": state, "max_continuations": wired.settings.max_continuations},
        )
        return state
    try:
        wired.invoker.invoke(function_arn, continuation.event(link, unfinished))
    except Exception as error:  # the next scheduled run covers it: report, never fail the run for it
        logger.error("Follow-up invocation failed", extra={"continuation": state, "error": repr(error)[:500]})
        return state
    state["invoked"] = True
    metrics.add_metric(name=telemetry.RUN_CONTINUED, unit=MetricUnit.Count, value=1)
    logger.info("Listing goes on in a follow-up invocation", extra={"continuation": state})
    return state


@logger.inject_lambda_context(clear_state=True)  # keys of the previous (warm) invocation must not leak
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: Any, context: Any) -> dict[str, Any]:
    """Archive every new session of this function's account whose exported files succeeded. Accepts a
    scheduled event, `{}`, or a follow-up's event (`archiver.continuation`: only the unfinished Regions, each
    from its position). Without its own ARN in the context it archives nothing (archiver.ownership)."""
    try:
        wired = wiring()
        owner = Owner.of(context, wired.settings.source_regions)
    except ConfigError as error:
        logger.error("Invalid configuration", extra={"error": str(error)})
        raise
    if isinstance(event, dict) and event.get("id"):
        logger.append_keys(event_id=str(event["id"])[:100])
    chain = continuation.parse(event)
    if chain is not None:
        logger.append_keys(continuation_link=chain.link)
    settings = wired.settings
    reserve = request_reserve_seconds(settings.read_timeout_seconds)
    budget = Budget.from_context(context, settings.safety_margin_seconds, reserve)
    wired.cutoff.budget = budget
    try:
        report = run_archive(
            settings,
            wired.sources,
            wired.ledger,
            wired.store,
            budget,
            chain.regions if chain else None,
            owner,
            exports=wired.exports,
        )
    finally:
        wired.cutoff.budget = None
    summary = report.as_dict()
    follow_up = _follow_up(wired, context, chain, report)
    if follow_up is not None or chain is not None:  # this run's place in its chain (0: scheduled), what follows
        summary["continuation"] = {"link": chain.link if chain else 0, "follow_up": follow_up}
    total = report.total
    for name, field in telemetry.COUNTER_FIELDS.items():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=getattr(total, field))
    exports = report.exports
    for name, field in telemetry.EXPORT_FIELDS.items():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=getattr(exports, field))
    metrics.add_metric(name=telemetry.RUN_DURATION, unit=MetricUnit.Milliseconds, value=report.duration_ms)
    if report.errors:
        logger.error("Run failed", extra={"summary": summary})
        raise RunFailed("; ".join(report.errors))
    metrics.add_metric(name=telemetry.RUN_COMPLETED, unit=MetricUnit.Count, value=1)
    logger.info("Run complete", extra={"summary": summary})
    return summary
