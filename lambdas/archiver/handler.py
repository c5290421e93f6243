"""Lambda entry point: settings, clients, run, report. Everything else lives in plain modules."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from botocore.config import Config

from archiver import telemetry
from archiver.budget import CONNECT_TIMEOUT_SECONDS, Budget, RequestCutoff, request_reserve_seconds
from archiver.ledger import Ledger
from archiver.ratelimit import TokenBucket
from archiver.run import run_archive
from archiver.sessions import SessionSource
from archiver.settings import ConfigError, Settings, load_settings
from archiver.store import RecordStore

logger = Logger(service=telemetry.SERVICE)
metrics = Metrics(namespace=telemetry.NAMESPACE, service=telemetry.SERVICE)
tracer = Tracer(service=telemetry.SERVICE, patch_modules=("botocore",))


class RunFailed(RuntimeError):
    """The run could not finish a Region (fatal error or listing failure): fail the invocation so alarms fire."""


@dataclass(frozen=True)
class Wiring:
    settings: Settings
    sources: tuple[SessionSource, ...]
    ledger: Ledger
    store: RecordStore
    cutoff: RequestCutoff


_wiring: tuple[tuple[str, ...], Wiring] | None = None


def _environment_fingerprint() -> tuple[str, ...]:
    return tuple(f"{k}={v}" for k, v in sorted(os.environ.items()) if k.startswith(("ARCHIVE_", "AWS_", "SOURCE_")))


def _wire(settings: Settings) -> Wiring:
    """Clients are built once per cold start; endpoints come only from the SDK's AWS_ENDPOINT_URL* variables."""
    session = boto3.session.Session()
    cutoff = RequestCutoff()
    config = Config(
        retries={"mode": "standard", "total_max_attempts": settings.max_attempts},
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        read_timeout=settings.read_timeout_seconds,
        max_pool_connections=settings.max_concurrency + 4,
        user_agent_extra="gameliftstreams-session-archiver",
    )

    def client(service: str, region: str | None = None) -> Any:
        built = session.client(service, region_name=region, config=config)
        cutoff.install(built)
        return built

    sources = tuple(
        SessionSource(
            client=client("gameliftstreams", region),
            region=region,
            list_limiter=TokenBucket(settings.list_rate_per_second),
            get_limiter=TokenBucket(settings.get_rate_per_second),
            max_restarts=settings.max_list_restarts,
        )
        for region in settings.source_regions
    )
    return Wiring(
        settings=settings,
        sources=sources,
        ledger=Ledger(client("dynamodb"), settings.table_name),
        store=RecordStore(client("s3"), settings.bucket_name),
        cutoff=cutoff,
    )


def _current_wiring() -> Wiring:
    """Validate the environment and build clients once; again only if the environment changed (tests)."""
    global _wiring  # noqa: PLW0603 - the cold-start cache is module state by design
    fingerprint = _environment_fingerprint()
    if _wiring is None or _wiring[0] != fingerprint:
        _wiring = (fingerprint, _wire(load_settings()))
    return _wiring[1]


def _prewarm() -> None:
    """Build the clients at import, i.e. in the Lambda INIT phase, so the invocation spends its time archiving.

    A bad environment is not an import error: the invocation reports it as before (ConfigError naming the
    variable), and builds the clients then.
    """
    with contextlib.suppress(Exception):  # the first invocation raises the same error, with its message
        _current_wiring()


_prewarm()


@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: Any, context: Any) -> dict[str, Any]:
    """Archive every new session whose exported files succeeded. Accepts a scheduled event or `{}`."""
    try:
        wiring = _current_wiring()
    except ConfigError as error:
        logger.error("Invalid configuration", extra={"error": str(error)})
        raise
    logger.clear_state()  # keys of the previous (warm) invocation must not leak into this one
    if isinstance(event, dict) and event.get("id"):
        logger.append_keys(event_id=str(event["id"])[:100])
    request_id = getattr(context, "aws_request_id", None)
    if isinstance(request_id, str):
        logger.append_keys(request_id=request_id)
    settings = wiring.settings
    reserve = request_reserve_seconds(settings.read_timeout_seconds)
    budget = Budget.from_context(context, settings.safety_margin_seconds, reserve)
    wiring.cutoff.budget = budget
    try:
        report = run_archive(settings, wiring.sources, wiring.ledger, wiring.store, budget)
    finally:
        wiring.cutoff.budget = None
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
