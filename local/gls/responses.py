"""The REST-JSON wire protocol: routes, request parsing and validation, JSON encoding, error shapes.

Four operations, with the model's methods and paths (botocore's gameliftstreams service-2.json):
ListStreamSessionsByAccount `GET /streamsessions`, GetStreamSession `GET /streamgroups/{Identifier}/
streamsessions/{StreamSessionIdentifier}`, ExportStreamSessionFiles `PUT .../exportfiles` (200, `{}`) and
TerminateStreamSession `DELETE` on the session's path (204, no body).

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
EXPORT_OPERATION: Final = "ExportStreamSessionFiles"
TERMINATE_OPERATION: Final = "TerminateStreamSession"
_LIST_PATH: Final = "/streamsessions"
_GET_ROUTE: Final = re.compile(r"^/streamgroups/([^/]+)/streamsessions/([^/]+)/?$")
_EXPORT_ROUTE: Final = re.compile(r"^/streamgroups/([^/]+)/streamsessions/([^/]+)/exportfiles/?$")
# The model's OutputUri: 0-1024 characters, pattern s3://.*(/|\.zip|\.ZIP) (the whole value).
_OUTPUT_URI_RE: Final = re.compile(r"s3://.*(/|\.zip|\.ZIP)", re.DOTALL)
_OUTPUT_URI_MAX: Final = 1024
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


def _check_identifiers(group: str, session: str) -> None:
    for name, value in (("identifier", group), ("streamSessionIdentifier", session)):
        if not 1 <= len(value) <= 128 or not _IDENTIFIER_RE.match(value):
            raise validation(
                f"1 validation error detected: Value '{value}' at '{name}' failed to satisfy "
                "constraint: Member must satisfy regular expression pattern"
            )


def get_stream_session(backend: GameLiftStreamsBackend, region: str, group: str, session: str) -> dict[str, Any]:
    """GetStreamSession with ID-or-ARN identifiers (already URL-decoded), JSON-ready."""
    _check_identifiers(group, session)
    return dict(wire(backend.get_stream_session(region, group, session)))


def export_stream_session_files(
    backend: GameLiftStreamsBackend, region: str, group: str, session: str, output_uri: Any
) -> dict[str, Any]:
    """ExportStreamSessionFiles: the body's OutputUri checked against the model, then the backend's rules
    (the session must be in progress). Answers the model's empty output, `{}`."""
    _check_identifiers(group, session)
    if not isinstance(output_uri, str):
        raise validation(
            "1 validation error detected: Value null at 'outputUri' failed to satisfy constraint: "
            "Member must not be null"
        )
    if len(output_uri) > _OUTPUT_URI_MAX or not _OUTPUT_URI_RE.fullmatch(output_uri):
        raise validation(
            f"1 validation error detected: Value '{output_uri}' at 'outputUri' failed to satisfy constraint: "
            "Member must satisfy regular expression pattern: s3://.*(/|\\.zip|\\.ZIP)"
        )
    backend.export_files(region, group, session, output_uri)
    return {}


def terminate_stream_session(backend: GameLiftStreamsBackend, region: str, group: str, session: str) -> None:
    """TerminateStreamSession (204, no body)."""
    _check_identifiers(group, session)
    backend.terminate(region, group, session)


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

    def export_stream_session_files(self, region: str, group: str, session: str, output_uri: Any) -> dict[str, Any]: ...

    def terminate_stream_session(self, region: str, group: str, session: str) -> None: ...

    def control(self, method: str, path: str, body: Any) -> tuple[int, Any]: ...


class RestJsonHandler(QuietHandler):
    """One request: the control API under `/_emulator/`, else one of the four operations, faults applied."""

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
        export_route = _EXPORT_ROUTE.match(split.path)
        params: dict[str, Any]
        if self.command == "GET" and split.path.rstrip("/") == _LIST_PATH:
            operation, params = LIST_OPERATION, dict(query)
        elif self.command in ("GET", "DELETE") and route:
            operation = GET_OPERATION if self.command == "GET" else TERMINATE_OPERATION
            params = {
                "Identifier": unquote(route.group(1)),
                "StreamSessionIdentifier": unquote(route.group(2)),
            }
        elif self.command == "PUT" and export_route:
            operation = EXPORT_OPERATION
            try:
                payload = json.loads(body) if body else {}
            except ValueError:
                payload = {}
            params = {
                "Identifier": unquote(export_route.group(1)),
                "StreamSessionIdentifier": unquote(export_route.group(2)),
                "OutputUri": payload.get("OutputUri") if isinstance(payload, dict) else None,
            }
        else:
            message = (
                f"No operation for {self.command} {split.path}: this emulator serves only "
                "GET /streamsessions (ListStreamSessionsByAccount), "
                "GET /streamgroups/{Identifier}/streamsessions/{StreamSessionIdentifier} (GetStreamSession), "
                "PUT .../exportfiles (ExportStreamSessionFiles) and DELETE on a session (TerminateStreamSession)."
            )
            self.expect_call(app.log, "Unknown", region, {"path": split.path}, None)
            self.send_error_shape(unknown_operation(message))
            return
        with self.deciding(app.faults, app.log, operation, region, params, "NextToken" in query) as decision:
            self._serve(app, decision, operation, region, params)

    def _serve(self, app: EmulatorApp, decision: Decision, operation: str, region: str, params: dict[str, Any]) -> None:
        if decision.fault == "reset":
            drop_connection(self)
            return
        app.sleep(decision.delay)
        if decision.fault in ERROR_KINDS:
            error = from_fault(str(decision.fault))
            app.sleep(decision.hold)
            self.send_error_shape(error)
            return
        payload: dict[str, Any] | None
        try:
            if operation == LIST_OPERATION:
                payload = app.list_sessions(region, params)
            elif operation == GET_OPERATION:
                payload = app.get_stream_session(region, params["Identifier"], params["StreamSessionIdentifier"])
            elif operation == EXPORT_OPERATION:
                group, session = params["Identifier"], params["StreamSessionIdentifier"]
                payload = app.export_stream_session_files(region, group, session, params["OutputUri"])
            else:
                app.terminate_stream_session(region, params["Identifier"], params["StreamSessionIdentifier"])
                payload = None
        except EmulatorError as error:
            app.sleep(decision.hold)
            self.send_error_shape(error)
            return
        app.sleep(decision.hold)
        if payload is None:
            self.send_no_content()
        else:
            self.send_json(200, payload)

    def send_no_content(self) -> None:
        """204 with no body (TerminateStreamSession), logged just before it is written."""
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        self.log_call(204)
        self.end_headers()
        self.wfile.flush()

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
