"""A run that runs out of time while listing goes on in a follow-up invocation of the same function.

The scheduled function invokes itself asynchronously (InvocationType Event) with where each unfinished Region
stands; its reserved concurrency of 1 holds the follow-up until the current run has ended, so runs never
overlap. A chain is bounded (MAX_CONTINUATIONS follow-ups per scheduled run, derived by the stack from the
schedule period and the timeout): what a chain cannot reach waits for the next scheduled run, as before.
Why not a Step Functions loop: docs/DEPLOY.md, "Listings longer than one invocation".
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from botocore.config import Config

from archiver.rules import REGION
from archiver.run import Resume

EVENT_KEY = "continuation"
MAX_TOKEN_LENGTH = 8_192  # a NextToken is opaque; anything longer is not one the API gave us
# Sent after the run, close to the deadline: short timeouts and no cut-off hook (the run's requests are done).
INVOKE_CONFIG = Config(connect_timeout=2, read_timeout=5, retries={"mode": "standard", "total_max_attempts": 2})


@dataclass(frozen=True)
class Chain:
    """A follow-up's place in its chain, and where each Region goes on."""

    link: int  # 1 for the first follow-up of a scheduled run
    regions: Mapping[str, Resume]


def parse(event: object) -> Chain | None:
    """The continuation in an invocation's event; None for a scheduled (or manual) run, or a malformed one."""
    if not isinstance(event, dict) or not isinstance(event.get(EVENT_KEY), dict):
        return None
    body = event[EVENT_KEY]
    link, regions = body.get("link"), body.get("regions")
    if isinstance(link, bool) or not isinstance(link, int) or link < 1 or not isinstance(regions, dict):
        return None
    parsed: dict[str, Resume] = {}
    for region, position in regions.items():
        if not (isinstance(region, str) and REGION.fullmatch(region) and isinstance(position, dict)):
            return None
        token = position.get("token")
        if token is not None and not (isinstance(token, str) and 0 < len(token) <= MAX_TOKEN_LENGTH):
            return None
        parsed[region] = Resume(token)
    return Chain(link, parsed) if parsed else None


def event(link: int, regions: Mapping[str, Resume]) -> dict[str, Any]:
    """The follow-up's event (what `parse` reads back)."""
    return {EVENT_KEY: {"link": link, "regions": {region: {"token": r.token} for region, r in regions.items()}}}


class Invoker:
    """Invokes this very function (by the ARN in the Lambda context) with a follow-up event. The client is built
    on first use: most runs never continue, and a client costs cold-start time."""

    def __init__(self, client_factory: Callable[[], Any]) -> None:
        self._factory = client_factory
        self._client: Any = None

    def invoke(self, function_arn: str, payload: Mapping[str, Any]) -> None:
        if self._client is None:
            self._client = self._factory()
        self._client.invoke(
            FunctionName=function_arn,
            InvocationType="Event",
            Payload=json.dumps(payload, separators=(",", ":")).encode(),
        )
