"""The JSON control API of the local servers (`/_emulator/...`, `/_proxy/...`): how a server answers it,
the routes both servers have (their fault plan and call log), and the one HTTP client under both clients.

Every route takes a JSON value (GET: the query string) and answers 200 with a JSON object, 400 for a bad
payload, 404 for an unknown route (or, in the emulator, an unknown session). Standard library only.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeVar
from urllib.parse import parse_qs, urlencode, urlsplit

from local.httpserver import BackgroundHTTPServer

S = TypeVar("S")
Answer = tuple[int, Any]  # (HTTP status, JSON-ready payload)


# -- the server side -----------------------------------------------------------------------------------


def answer(control: Callable[[str, str, Any], Answer], method: str, path: str, query: str, body: bytes) -> Answer:
    """One control request as it came off the wire: its payload parsed, then handed to `control`."""
    try:
        payload = json.loads(body) if body else {}
    except ValueError:
        return 400, {"message": "control body must be JSON"}
    if method == "GET":
        payload = {k: v[0] for k, v in parse_qs(query).items()}
    return control(method, path, payload)


def dispatch(
    routes: Mapping[tuple[str, str], Callable[[S, Any], Answer]], server: S, method: str, path: str, payload: Any
) -> Answer:
    """Run the route for (method, path): a KeyError it raises is a 404 (something named is not there), a
    ValueError or TypeError a 400 (the payload is wrong)."""
    route = routes.get((method, path))
    if route is None:
        return 404, {"message": f"unknown control endpoint {method} {path}"}
    try:
        return route(server, payload)
    except KeyError as error:
        return 404, {"message": f"not found: {error}"}
    except (ValueError, TypeError) as error:
        return 400, {"message": f"bad request: {error}"}


def add_fault(server: BackgroundHTTPServer, payload: Any) -> Answer:
    """One rule, in `FaultPlan.apply_json`'s form -> {} (the emulator's and the Lambda service's "faults")."""
    try:
        server.faults.apply_json(payload)
    except KeyError as error:
        raise ValueError(f"fault rule is missing {error}") from None
    return 200, {}


def _reset_faults(server: BackgroundHTTPServer, payload: Any) -> Answer:
    """{"limits"?: true} -> {}: drop every rule (and quotas and base latency unless limits is false)."""
    limits = payload.get("limits", True) if isinstance(payload, dict) else True
    server.faults.clear(limits=bool(limits))
    return 200, {}


def _calls(server: BackgroundHTTPServer, payload: Any) -> Answer:
    """-> {"counts": {operation: n}, "total": n, "fired": {"operation:kind": n}}."""
    counts = server.call_counts()
    fired = {f"{operation}:{kind}": n for (operation, kind), n in server.faults.fired.items()}
    return 200, {"counts": dict(counts), "total": sum(counts.values()), "fired": fired}


def _reset_calls(server: BackgroundHTTPServer, payload: Any) -> Answer:
    """{} -> {}: zero the call log (fault counters stay)."""
    server.reset_calls()
    return 200, {}


def common_routes(prefix: str) -> dict[tuple[str, str], Callable[[BackgroundHTTPServer, Any], Answer]]:
    """The routes every server has under `prefix`: reset-faults, calls, reset-calls."""
    return {
        ("POST", prefix + "reset-faults"): _reset_faults,
        ("GET", prefix + "calls"): _calls,
        ("POST", prefix + "reset-calls"): _reset_calls,
    }


# -- the client side -----------------------------------------------------------------------------------


class ControlError(RuntimeError):
    """A control API answered something other than 200 (a bad payload: 400, an unknown route: 404)."""

    def __init__(self, method: str, path: str, status: int, payload: Any, message: str | None = None) -> None:
        super().__init__(message or f"control {method} {path} answered {status}: {payload}")
        self.method = method
        self.path = path
        self.status = status
        self.payload = payload


def _json_default(value: Any) -> Any:
    """Datetimes (in session fields) go as the wire carries them: epoch seconds with milliseconds."""
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        return round(aware.timestamp(), 3)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


class ControlClient:
    """JSON over HTTP to the control API of the server at `url`, never through an HTTP proxy (the servers
    are on 127.0.0.1, whatever HTTP_PROXY says). Subclasses add one typed method per route."""

    server_name: ClassVar[str] = "server"
    error: ClassVar[type[ControlError]] = ControlError

    def __init__(self, url: str, *, timeout: float) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"the {self.server_name}'s URL must be http(s)://host:port, not {url!r}")
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def call(self, method: str, path: str, body: Any = None) -> Any:
        """One control request (`path` like "/_emulator/calls"); GET sends `body` (a mapping) as the query
        string. The JSON answer; any status but 200 raises `error`."""
        data: bytes | None = None
        url = self.url + path
        if method == "GET":
            query = {k: v for k, v in (body or {}).items() if v is not None}
            url += f"?{urlencode(query)}" if query else ""
        else:
            value = {} if body is None else dict(body) if isinstance(body, Mapping) else body
            data = json.dumps(value, default=_json_default).encode("utf-8")
        headers = {"Content-Type": "application/json"}
        request = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310 - http(s) only
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                status, raw = int(response.status), response.read()
        except urllib.error.HTTPError as error:
            status, raw = error.code, error.read()
        try:
            payload = json.loads(raw) if raw else {}
        except ValueError:
            payload = raw.decode("utf-8", "replace")
        if status != 200:
            raise self.error(method, path, status, payload)
        return payload
