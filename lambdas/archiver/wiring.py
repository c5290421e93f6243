"""The cold-start wiring: settings validated and SDK clients built once per Lambda container.

`wiring()` is cached for the life of the process, as a container's environment never changes. Whatever
changes the environment between invocations (tests, local harnesses) calls `wiring.cache_clear()`. A failed
call (a bad environment) is not cached: every invocation raises the same ConfigError until it is fixed.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config

from archiver.budget import CONNECT_TIMEOUT_SECONDS, RequestCutoff
from archiver.continuation import INVOKE_CONFIG, Invoker
from archiver.exportfiles import ExportFiles
from archiver.ledger import Ledger
from archiver.ratelimit import TokenBucket
from archiver.sessions import SessionSource
from archiver.settings import Settings, load_settings
from archiver.store import RecordStore

# The SDK's loggers write whole response bodies (SignalRequest, SignalResponse, RoleArn, environment and launch
# argument values) and the signed request's headers (the session token) at DEBUG, and Lambda sets the root logger
# to DEBUG when the function's application log level is DEBUG (JSON log format). They stay at WARNING, whatever
# the root logger's level: the function's own DEBUG lines (POWERTOOLS_LOG_LEVEL) never carry a secret.
SDK_LOGGERS = ("boto3", "botocore", "s3transfer", "urllib3")


def quiet_sdk_loggers() -> None:
    """Keep the SDK's loggers at WARNING (run at import: before any client exists)."""
    for name in SDK_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


quiet_sdk_loggers()


@dataclass(frozen=True)
class Wiring:
    """What every invocation of this container shares: the settings and the adapters around their clients."""

    settings: Settings
    sources: tuple[SessionSource, ...]
    ledger: Ledger
    store: RecordStore
    cutoff: RequestCutoff
    invoker: Invoker  # follow-up invocations of the scheduled function (its client built on first use)
    exports: ExportFiles  # the export ZIPs, read by ranges with their own S3 client (the studio's buckets)


def wire(settings: Settings) -> Wiring:
    """Build the clients; endpoints come only from the SDK's AWS_ENDPOINT_URL* variables."""
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
        invoker=Invoker(lambda: session.client("lambda", config=INVOKE_CONFIG)),
        exports=ExportFiles(client("s3")),
    )


@functools.cache
def wiring() -> Wiring:
    """This container's wiring, from the environment: built on the first call, then reused."""
    return wire(load_settings())
