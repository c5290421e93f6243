"""A Lambda context for local runs: what the runtime passes, with a real countdown for the time budget."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field


@dataclass
class LambdaContext:
    """Mirrors the attributes of the Python runtime's context object that the archiver and Powertools read."""

    timeout_seconds: float = 900.0
    function_name: str = "gameliftstreams-session-archiver"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 512
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    invoked_function_arn: str = "arn:aws:lambda:us-east-2:111122223333:function:gameliftstreams-session-archiver"
    log_group_name: str = "/aws/lambda/gameliftstreams-session-archiver"
    log_stream_name: str = "local"
    _started: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.timeout_seconds - (time.monotonic() - self._started)) * 1000))


SCHEDULED_EVENT = {
    "version": "0",
    "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
    "detail-type": "Scheduled Event",
    "source": "aws.events",
    "account": "111122223333",
    "time": "2026-11-28T05:00:00Z",
    "region": "us-east-2",
    "resources": ["arn:aws:events:us-east-2:111122223333:rule/gameliftstreams-archiver"],
    "detail": {},
}
