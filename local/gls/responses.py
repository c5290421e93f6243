"""The REST-JSON wire protocol: routes, request parsing and validation, JSON encoding, error shapes.

`RestJsonHandler` turns a request into an operation on its `EmulatorApp` (the server), and a `Decision` of
the shared `FaultPlan` into what the real service would put on the wire: an error with the modeled status
and `x-amzn-ErrorType`, a held or delayed response, a dropped connection, or a process kill.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Final, NamedTuple, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from local import control_api
from local.faults import ERROR_KINDS, Decision, FaultPlan
from local.gls.exceptions import EmulatorError, from_fault, unknown_operation, validation
from local.gls.models import EXPORT_STATUSES, STATUSES, GameLiftStreamsBackend
from local.httpserver import CallLog, QuietHandler, drop_connection, region_from_authorization

LIST_OPERATION: Final = "ListStreamSessionsByAccount"
# The emulator's own control API (local.gls.control) lives under this path, beside the service's routes.
CONTROL_PREFIX: Final = "/_emulator/"
GET_OPERATION: Final = "GetStreamSession"
_LIST_PATH: Final = "/streamsessions"
_GET_ROUTE: Final = re.compile(r"^/streamgroups/([^/]+)/streamsessions/([^/]+)/?$")
_IDENTIFIER_RE: Final = re.compile(r"^[a-zA-Z0-9-]+$|^arn:aws:gameliftstreams:([^: ]*):([0-9]{12}):([^: ]*)$")


def wire(value: Any) -> Any:
    """JSON-ready copy: datetimes as epoch seconds with milliseconds, None-valued members omitted."""
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        return round(aware.timestamp(), 3)
    if isinstance(value, dict):
        return {k: wire(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [wire(v) for v in value]
    return value


# -- the two operations: parse and validate, call the backend, encode --------------------------------------


class ListQuery(NamedTuple):
    status: str | None
    export: str | None
    max_results: int
    next_token: str | None


def parse_list_query(query: Mapping[str, str]) -> ListQuery:
    """The query string of ListStreamSessionsByAccount, checked as the service checks it (in its order)."""
    status = query.get("Status")
    export = query.get("ExportFilesStatus")
    if status is not None and status not in STATUSES:
        raise validation(
            f"1 validation error detected: Value '{status}' at 'status' failed to satisfy "
            f"constraint: Member must satisfy enum value set: {list(STATUSES)}"
        )
    if export is not None and export not in EXPORT_STATUSES:
        raise validation(
            f"1 validation error detected: Value '{export}' at 'exportFilesStatus' "
            f"failed to satisfy constraint: Member must satisfy enum value set: "
            f"{list(EXPORT_STATUSES)}"
        )
    raw_max = query.get("MaxResults")
    try:
        max_results = 25 if raw_max is None else int(raw_max)
    except ValueError:
        raise validation(f"MaxResults '{raw_max}' is not an integer") from None
    if not 1 <= max_results <= 100:
        raise validation(
            f"1 validation error detected: Value '{max_results}' at 'maxResults' failed to "
            "satisfy constraint: Member must have value between 1 and 100"
        )
    return ListQuery(status, export, max_results, query.get("NextToken"))


def list_stream_sessions_by_account(
    backend: GameLiftStreamsBackend, region: str, query: Mapping[str, str]
) -> dict[str, Any]:
    """ListStreamSessionsByAccount, JSON-ready; raises EmulatorError for what the service would reject."""
    q = parse_list_query(query)
    page = backend.list_sessions(
        region, status=q.status, export=q.export, max_results=q.max_results, next_token=q.next_token
    )
    return dict(wire(page))


def get_stream_session(backend: GameLiftStreamsBackend, region: str, group: str, session: str) -> dict[str, Any]:
    """GetStreamSession with ID-or-ARN identifiers (already URL-decoded), JSON-ready."""
    for name, value in (("identifier", group), ("streamSessionIdentifier", session)):
        if not 1 <= len(value) <= 128 or not _IDENTIFIER_RE.match(value):
            raise validation(
                f"1 validation error detected: Value '{value}' at '{name}' failed to satisfy "
                "constraint: Member must satisfy regular expression pattern"
            )
    return dict(wire(backend.get_stream_session(region, group, session)))


# -- HTTP ----------------------------------------------------------------------------------------------------


class EmulatorApp(Protocol):
    """What the handler needs from the server it runs in."""

    @property
    def faults(self) -> FaultPlan: ...

    @property
    def log(self) -> CallLog: ...

    @property
    def default_region(self) -> str: ...

    def sleep(self, seconds: float) -> None: ...

    def list_sessions(self, region: str, query: Mapping[str, str]) -> dict[str, Any]: ...

    def get_stream_session(self, region: str, group: str, session: str) -> dict[str, Any]: ...

    def control(self, method: str, path: str, body: Any) -> tuple[int, Any]: ...


class RestJsonHandler(QuietHandler):
    """One request: the control API under `/_emulator/`, else one of the two operations, faults applied."""

    server_version = "GameLiftStreamsEmulator/1.0"

    @property
    def app(self) -> EmulatorApp:
        raise NotImplementedError

    def serve(self) -> None:
        app = self.app
        body = self.read_body()
        split = urlsplit(self.path)
        if split.path.startswith(CONTROL_PREFIX):
            self.send_json(*control_api.answer(app.control, self.command, split.path, split.query, body))
            return
        region = region_from_authorization(self.headers.get("Authorization")) or app.default_region
        query = {k: v[0] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        route = _GET_ROUTE.match(split.path)
        if self.command == "GET" and split.path.rstrip("/") == _LIST_PATH:
            operation, params = LIST_OPERATION, dict(query)
        elif self.command == "GET" and route:
            operation = GET_OPERATION
            params = {
                "Identifier": unquote(route.group(1)),
                "StreamSessionIdentifier": unquote(route.group(2)),
            }
        else:
            message = (
                f"No operation for {self.command} {split.path}: this emulator serves only "
                "GET /streamsessions (ListStreamSessionsByAccount) and "
                "GET /streamgroups/{Identifier}/streamsessions/{StreamSessionIdentifier} (GetStreamSession)."
            )
            self.expect_call(app.log, "Unknown", region, {"path": split.path}, None)
            self.send_error_shape(unknown_operation(message))
            return
        with self.deciding(app.faults, app.log, operation, region, params, "NextToken" in query) as decision:
            self._serve(app, decision, operation, region, params)

    def _serve(self, app: EmulatorApp, decision: Decision, operation: str, region: str, params: dict[str, str]) -> None:
        if decision.fault == "reset":
            drop_connection(self)
            return
        app.sleep(decision.delay)
        if decision.fault in ERROR_KINDS:
            error = from_fault(str(decision.fault))
            app.sleep(decision.hold)
            self.send_error_shape(error)
            return
        try:
            if operation == LIST_OPERATION:
                payload = app.list_sessions(region, params)
            else:
                payload = app.get_stream_session(region, params["Identifier"], params["StreamSessionIdentifier"])
        except EmulatorError as error:
            app.sleep(decision.hold)
            self.send_error_shape(error)
            return
        app.sleep(decision.hold)
        self.send_json(200, payload)

    def send_json(self, status: int, payload: Any, headers: Iterable[tuple[str, str]] = ()) -> None:
        """A JSON response with a request ID, logged (if it is an API call) just before it is written."""
        try:
            body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates from a fuzz override: fall back to \u escapes
            body = json.dumps(payload, separators=(",", ":")).encode("ascii")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        for name, value in headers:
            self.send_header(name, value)
        self.log_call(status)
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def send_error_shape(self, error: EmulatorError) -> None:
        """The REST-JSON error: `x-amzn-ErrorType` names it; botocore reads `message` or `Message`."""
        self.send_json(
            error.status,
            {"message": error.message, "Message": error.message},
            [("x-amzn-ErrorType", error.error_type)],
        )
