"""Lambda's Invoke on the wire, as botocore's `lambda` client sends it (REST-JSON):
`POST /2015-03-31/functions/{FunctionName}/invocations[?Qualifier=]`, the invocation type in
`X-Amz-Invocation-Type` (RequestResponse when absent), the payload as the body.

- Event: the payload is queued, 202 with an empty body; the function runs later (`models`).
- DryRun: the function exists and may be invoked: 204, nothing queued or run.
- RequestResponse: run now, in the request's thread; 200 with the result as JSON, or with
  `X-Amz-Function-Error: Unhandled` and the runtime's error body when the function raised; 429
  TooManyRequestsException while the function is busy (reserved concurrency 1).

An empty payload is taken as `{}`. `X-Amz-Log-Type`, `X-Amz-Client-Context` and the other headers are
ignored. Faults of the shared `FaultPlan` apply to the operation "Invoke"; one that errs queues nothing.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable
from typing import Any, Final, NamedTuple, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from local import control_api
from local.faults import ERROR_KINDS, Decision, FaultPlan
from local.httpserver import CallLog, QuietHandler, drop_connection, region_from_authorization
from local.lambda_service.exceptions import (
    SYNC_PAYLOAD_LIMIT,
    LambdaError,
    from_fault,
    invalid_content,
    too_large,
    unknown_operation,
    validation,
)
from local.lambda_service.models import DRY_RUN, EVENT, INVOCATION_TYPES, REQUEST_RESPONSE, LambdaBackend

INVOKE_OPERATION: Final = "Invoke"
CONTROL_PREFIX: Final = "/_lambda/"
_INVOKE_ROUTE: Final = re.compile(r"^/2015-03-31/functions/([^/]+)/invocations/?$")


class Answer(NamedTuple):
    """What to put on the wire for one Invoke: status, body, extra headers, the request ID to answer."""

    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    request_id: str | None = None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_payload(body: bytes) -> Any:
    """The event: the body as strict JSON (UTF-8, no NaN or Infinity); `{}` for an empty body."""
    if not body.strip():
        return {}
    try:
        return json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError) as error:
        raise invalid_content(str(error)) from None


def invoke(
    backend: LambdaBackend,
    *,
    function_name: str,
    qualifier: str | None,
    invocation_type: str,
    body: bytes,
    region: str,
    event_payload_limit: int,
) -> Answer:
    """One Invoke, checked in the order: invocation type, function, payload size, payload JSON."""
    if invocation_type not in INVOCATION_TYPES:
        raise validation(
            f"Value '{invocation_type}' at 'invocationType' failed to satisfy constraint: "
            f"Member must satisfy enum value set: [{', '.join(INVOCATION_TYPES)}]"
        )
    function, invoked_arn = backend.resolve(function_name, qualifier, region)
    if invocation_type == DRY_RUN:
        return Answer(204)
    limit = event_payload_limit if invocation_type == EVENT else SYNC_PAYLOAD_LIMIT
    if len(body) > limit:
        raise too_large(len(body), limit, invocation_type)
    payload = parse_payload(body)
    if invocation_type == EVENT:
        return Answer(202, request_id=backend.enqueue(function, invoked_arn, payload).request_id)
    ended = backend.invoke(function, invoked_arn, payload)
    headers: tuple[tuple[str, str], ...] = (("X-Amz-Executed-Version", "$LATEST"),)
    error: dict[str, Any] | None = None
    if ended.error_type is not None:
        error = {"errorMessage": ended.error, "errorType": ended.error_type}
    else:
        try:
            result = json.dumps(ended.result).encode("utf-8")
        except (TypeError, ValueError) as exc:
            error = {"errorMessage": f"Unable to marshal response: {exc}", "errorType": "Runtime.MarshalError"}
    if error is not None:
        result = json.dumps({**error, "requestId": ended.request_id, "stackTrace": []}).encode("utf-8")
        headers += (("X-Amz-Function-Error", "Unhandled"),)
    return Answer(200, result, headers, ended.request_id)


class LambdaApp(Protocol):
    """What the handler needs from the server it runs in."""

    @property
    def backend(self) -> LambdaBackend: ...

    @property
    def faults(self) -> FaultPlan: ...

    @property
    def log(self) -> CallLog: ...

    @property
    def event_payload_limit(self) -> int: ...

    def sleep(self, seconds: float) -> None: ...

    def control(self, method: str, path: str, body: Any) -> tuple[int, Any]: ...


class LambdaHandler(QuietHandler):
    """One request: the control API under `/_lambda/`, else Invoke, faults applied."""

    server_version = "LocalLambda/1.0"

    @property
    def app(self) -> LambdaApp:
        raise NotImplementedError

    def serve(self) -> None:
        app = self.app
        body = self.read_body()
        split = urlsplit(self.path)
        if split.path.startswith(CONTROL_PREFIX):
            status, payload = control_api.answer(app.control, self.command, split.path, split.query, body)
            self.send(status, json.dumps(payload).encode("utf-8"))
            return
        region = region_from_authorization(self.headers.get("Authorization")) or app.backend.region
        route = _INVOKE_ROUTE.match(split.path)
        if self.command != "POST" or route is None:
            self.expect_call(app.log, "Unknown", region, {"path": split.path}, None)
            self.send_error_shape(
                unknown_operation(f"No operation for {self.command} {split.path}: this service serves only Invoke")
            )
            return
        qualifier = parse_qs(split.query).get("Qualifier", [None])[0]
        params = {
            "FunctionName": unquote(route.group(1)),
            "InvocationType": self.headers.get("X-Amz-Invocation-Type") or REQUEST_RESPONSE,
            "Qualifier": qualifier,
        }
        with self.deciding(app.faults, app.log, INVOKE_OPERATION, region, params, False) as decision:
            self._serve(app, decision, params, body, region)

    def _serve(self, app: LambdaApp, decision: Decision, params: dict[str, Any], body: bytes, region: str) -> None:
        if decision.fault == "reset":
            drop_connection(self)
            return
        app.sleep(decision.delay)
        try:
            if decision.fault in ERROR_KINDS:
                raise from_fault(str(decision.fault))
            answer = invoke(
                app.backend,
                function_name=params["FunctionName"],
                qualifier=params["Qualifier"],
                invocation_type=params["InvocationType"],
                body=body,
                region=region,
                event_payload_limit=app.event_payload_limit,
            )
        except LambdaError as error:
            app.sleep(decision.hold)
            self.send_error_shape(error)
            return
        app.sleep(decision.hold)  # a "timeout" fault: the client may give up and send it again
        self.send(answer.status, answer.body, answer.headers, answer.request_id)

    def send(
        self, status: int, body: bytes, headers: Iterable[tuple[str, str]] = (), request_id: str | None = None
    ) -> None:
        """A response with a request ID (the invocation's, if there is one), logged just before it is written."""
        self.send_response(status)
        if body:
            self.send_header("Content-Type", "application/json")
        if status != 204:  # a 204 carries no Content-Length (RFC 9110)
            self.send_header("Content-Length", str(len(body)))
        self.send_header("x-amzn-RequestId", request_id or str(uuid.uuid4()))
        for name, value in headers:
            self.send_header(name, value)
        self.log_call(status)
        self.end_headers()
        if body:
            self.wfile.write(body)
        self.wfile.flush()

    def send_error_shape(self, error: LambdaError) -> None:
        """Lambda's error: `x-amzn-ErrorType` names it, the body carries Type and the message."""
        self.send(error.status, json.dumps(error.body()).encode("utf-8"), [("x-amzn-ErrorType", error.error_type)])
