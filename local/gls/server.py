"""`GameLiftStreamsEmulator`: the backend (models), the wire protocol (responses) and the control API
(control) behind one HTTP server on 127.0.0.1, for the unmodified boto3 `gameliftstreams` client.

moto has no gameliftstreams backend, so this serves `ListStreamSessionsByAccount`, `GetStreamSession`,
`ExportStreamSessionFiles` and `TerminateStreamSession` (point `AWS_ENDPOINT_URL_GAMELIFTSTREAMS` at
`endpoint_url`). Sessions live per Region (taken from the SigV4 credential scope) and the shared
`FaultPlan` injects errors, latency, quotas and process kills. Export ZIPs go to the S3 endpoint set as
`export_s3_endpoint` (the local stack sets its moto).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from local.gls import control, responses
from local.gls.factory import DEFAULT_BASE_TIME
from local.gls.models import GameLiftStreamsBackend
from local.gls.uploads import S3Uploader
from local.httpserver import BackgroundHTTPServer


class GameLiftStreamsEmulator(BackgroundHTTPServer):
    """In-process GameLift Streams endpoint for the real boto3 `gameliftstreams` client.

    `shift_on_page=True` switches listing to offset pagination and inserts a new matching session at the
    top after every page that has a NextToken, so the last item of a page is the first of the next: the
    "list shifts while paging" case an archiver must de-duplicate.

    `clock` (monotonic seconds) drives the quotas and `sleep` does the injected latencies and held
    responses: tests pass their own to check both without a wall clock. By default the quotas use
    `time.monotonic` and sleeps are `FaultPlan.sleep`, which `stop()` cuts short. The same clock times
    `export_success_delay_ms`.

    `export_s3_endpoint`: where export ZIPs are written (None: nowhere, so exports end FAILED), with
    `export_s3_region` as the client's Region (default: the default Region).
    """

    def __init__(
        self,
        port: int = 0,
        seed: int = 0,
        default_region: str = "us-east-2",
        account_id: str = "111122223333",
        *,
        canary: str = "glscanary",
        base_time: datetime = DEFAULT_BASE_TIME,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        super().__init__(port, seed, clock=clock, sleep=sleep)
        self.backend = GameLiftStreamsBackend(
            seed, default_region, account_id, canary=canary, base_time=base_time, clock=clock or time.monotonic
        )
        self._export_s3_endpoint: str | None = None
        self.export_s3_region = default_region

    @property
    def default_region(self) -> str:
        """The Region of requests without a SigV4 Authorization header, and of data calls without one."""
        return self.backend.default_region

    @property
    def account_id(self) -> str:
        return self.backend.factory.account_id

    @property
    def canary(self) -> str:
        """The marker planted in every secret field of generated sessions (leak checks look for it)."""
        return self.backend.factory.canary

    @property
    def shift_on_page(self) -> bool:
        return self.backend.shift_on_page

    @shift_on_page.setter
    def shift_on_page(self, on: bool) -> None:
        self.backend.shift_on_page = on

    @property
    def export_s3_endpoint(self) -> str | None:
        """The S3 endpoint export ZIPs are written to (None: not configured; uploads fail)."""
        return self._export_s3_endpoint

    @export_s3_endpoint.setter
    def export_s3_endpoint(self, url: str | None) -> None:
        self._export_s3_endpoint = url or None
        self.backend.uploader = S3Uploader(url, self.export_s3_region) if url else None

    @property
    def export_success_delay_ms(self) -> float:
        """Milliseconds between an export's ZIP landing and its SUCCEEDED (0: at once)."""
        return self.backend.export_success_delay * 1000.0

    @export_success_delay_ms.setter
    def export_success_delay_ms(self, ms: float) -> None:
        if not ms >= 0:
            raise ValueError(f"export_success_delay_ms must be >= 0, not {ms!r}")
        self.backend.export_success_delay = float(ms) / 1000.0

    @property
    def fail_exports(self) -> bool:
        """True: every export that settles from now on is FAILED, with no ZIP."""
        return self.backend.fail_exports

    @fail_exports.setter
    def fail_exports(self, on: bool) -> None:
        self.backend.fail_exports = bool(on)

    # -- data API (see GameLiftStreamsBackend) ---------------------------------------------------------

    def add_session(self, region: str | None = None, **overrides: Any) -> dict[str, Any]:
        """Store one session (export SUCCEEDED and TERMINATED unless overridden) and return its detail.

        Overrides replace fields verbatim, so a test can put anything on the wire; None removes a field.
        """
        return self.backend.add_session(region, **overrides)

    def seed_sessions(
        self, n: int, region: str | None = None, *, succeeded_fraction: float = 0.6
    ) -> list[dict[str, Any]]:
        """Add `n` sessions with a deterministic, realistic mix of statuses; returns their details."""
        return self.backend.seed_sessions(n, region, succeeded_fraction=succeeded_fraction)

    def start_session(self, region: str | None = None, **overrides: Any) -> dict[str, Any]:
        """Store one live session (ACTIVE, no export yet) and return its detail; overrides as in add_session."""
        return self.backend.start_session(region, **overrides)

    def set_export_status(self, arn: str, status: str | None, output_uri: str | None = None) -> dict[str, Any]:
        """Change a session's export status (None removes ExportFilesMetadata); bumps LastUpdatedAt."""
        return self.backend.set_export_status(arn, status, output_uri)

    def remove_session(self, arn: str) -> None:
        """Forget a session (as if it aged out of the API); KeyError if unknown."""
        self.backend.remove_session(arn)

    def get_session(self, arn: str) -> dict[str, Any]:
        """A copy of one stored session's detail; KeyError if unknown."""
        return self.backend.get_session(arn)

    def sessions(self, region: str | None = None) -> list[dict[str, Any]]:
        """Copies of the stored sessions (all Regions unless given), in listing order."""
        return self.backend.sessions(region)

    def succeeded_arns(self, region: str | None = None) -> set[str]:
        """ARNs whose export SUCCEEDED: what a complete archive run must end up holding."""
        return self.backend.succeeded_arns(region)

    def clear_sessions(self) -> None:
        """Remove every session in every Region."""
        self.backend.clear_sessions()

    # -- what the HTTP handler calls (a subclass may override these to put odd values on the wire) -------

    def list_sessions(self, region: str, query: Mapping[str, str]) -> dict[str, Any]:
        """ListStreamSessionsByAccount from its query string, JSON-ready; raises EmulatorError."""
        return responses.list_stream_sessions_by_account(self.backend, region, query)

    def get_stream_session(self, region: str, group: str, session: str) -> dict[str, Any]:
        """GetStreamSession with ID-or-ARN identifiers (already URL-decoded), JSON-ready; raises EmulatorError."""
        return responses.get_stream_session(self.backend, region, group, session)

    def export_stream_session_files(self, region: str, group: str, session: str, output_uri: Any) -> dict[str, Any]:
        """ExportStreamSessionFiles (the body's OutputUri, unchecked); raises EmulatorError."""
        return responses.export_stream_session_files(self.backend, region, group, session, output_uri)

    def terminate_stream_session(self, region: str, group: str, session: str) -> None:
        """TerminateStreamSession; writes a pending export's ZIP before it returns; raises EmulatorError."""
        responses.terminate_stream_session(self.backend, region, group, session)

    def control(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        """The `/_emulator/...` control API, in-process: (HTTP status, JSON-ready payload)."""
        return control.dispatch(self, method, path, body)


class _Handler(responses.RestJsonHandler):
    @property
    def app(self) -> GameLiftStreamsEmulator:
        app = getattr(self.server, "app", None)
        assert isinstance(app, GameLiftStreamsEmulator)
        return app


GameLiftStreamsEmulator.handler_class = _Handler
