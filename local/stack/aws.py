"""What every local client needs: dummy credentials, an environment that cannot reach a real account, and
boto3 clients pointed at a local URL whatever os.environ says."""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import Any

import boto3

DUMMY_ACCESS_KEY_ID = "AKIALOCALSTACKTEST00"
DUMMY_SECRET_ACCESS_KEY = "local-stack-dummy-secret"  # noqa: S105 - moto accepts any credentials
# Variables that could point a client at a real account or another profile: removed from child envs.
SCRUBBED = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
)

_sessions: dict[str, boto3.session.Session] = {}
_sessions_lock = threading.Lock()


def scrubbed_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """`base` (default os.environ) minus any profile or session credentials."""
    return {k: v for k, v in (os.environ if base is None else base).items() if k not in SCRUBBED}


def aws_client(service: str, endpoint_url: str, region: str) -> Any:
    """A client with the dummy credentials for `endpoint_url`, independent of os.environ. One boto3 session
    per Region, so the service models are loaded once; the lock because sessions are not thread-safe."""
    with _sessions_lock:
        session = _sessions.get(region)
        if session is None:
            session = _sessions[region] = boto3.session.Session(
                aws_access_key_id=DUMMY_ACCESS_KEY_ID,
                aws_secret_access_key=DUMMY_SECRET_ACCESS_KEY,
                region_name=region,
            )
        return session.client(service, endpoint_url=endpoint_url)
