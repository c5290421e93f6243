"""A Lambda context for local runs: what the runtime passes, with a real countdown for the time budget."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Final

# The local function's identity: the emulator's account (local.gls, local.reliability.constants.ACCOUNT), so the
# archiver's ownership check (archiver.ownership: the context ARN's account) treats local runs like real ones.
ACCOUNT: Final = "111122223333"
REGION: Final = "us-east-2"
FUNCTION_NAME: Final = "gameliftstreams-session-archiver"
FUNCTION_ARN: Final = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{FUNCTION_NAME}"


@dataclass
class LambdaContext:
    """Mirrors the attributes of the Python runtime's context object that the archiver and Powertools read."""

    timeout_seconds: float = 900.0
    function_name: str = FUNCTION_NAME
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 512
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    invoked_function_arn: str = FUNCTION_ARN
    log_group_name: str = f"/aws/lambda/{FUNCTION_NAME}"
    log_stream_name: str = "local"
    _started: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.timeout_seconds - (time.monotonic() - self._started)) * 1000))


SCHEDULED_EVENT = {
    "version": "0",
    "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
    "detail-type": "Scheduled Event",
    "source": "aws.events",
    "account": ACCOUNT,
    "time": "2026-11-28T05:00:00Z",
    "region": REGION,
    "resources": [f"arn:aws:events:{REGION}:{ACCOUNT}:rule/gameliftstreams-archiver"],
    "detail": {},
}
