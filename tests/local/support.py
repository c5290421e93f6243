"""What the tests of the local stack share besides fixtures (those are in conftest.py): the Region and real
boto3 clients for a local endpoint."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

from local.httpserver import BackgroundHTTPServer

REGION = "us-east-2"


def boto_client(service: str, endpoint_url: str, *, region: str = REGION, attempts: int = 1, **config: Any) -> Any:
    """A real boto3 client for a local endpoint with dummy credentials; `attempts` 1 (the default): each call
    is one request. `total_max_attempts` counts the first try; botocore's `max_attempts` counts retries only."""
    return boto3.client(
        service,
        region_name=region,
        endpoint_url=endpoint_url,
        aws_access_key_id="AKIDTEST",
        aws_secret_access_key="secret",
        config=Config(retries={"mode": "standard", "total_max_attempts": attempts}, **config),
    )


def gls_client(server: BackgroundHTTPServer | str, region: str = REGION, attempts: int = 1, **config: Any) -> Any:
    """The real boto3 `gameliftstreams` client for an emulator (the object or its URL)."""
    url = server if isinstance(server, str) else server.endpoint_url
    return boto_client("gameliftstreams", url, region=region, attempts=attempts, **config)
