"""HTTP proxy in front of a moto server that injects DynamoDB and S3 faults, latency, quotas and kills.

The archiver's real boto3 clients talk HTTP to this proxy (`AWS_ENDPOINT_URL_DYNAMODB`/`_S3`), so what
they see on failure is what AWS sends: the same status codes, error bodies and headers botocore parses
and retries on. Requests are forwarded unchanged (Host included: moto routes S3 path-style by it) over a
pool of persistent upstream connections, per signing service to its own upstream if `routes` says so.

Paths under `/_proxy/` are the proxy's own control API (faults, call counts), answered here and never
forwarded: S3 bucket names cannot start with `_`, and the endpoint is an IP address, so S3 requests are
path-style and no bucket or object path can collide with it.
"""

from __future__ import annotations

import http.client
import json
import threading
import uuid
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict
from typing import Any, Final
from urllib.parse import parse_qs, urlsplit

from local import control_api
from local.faults import ERROR_KINDS, Decision, FaultPlan
from local.httpserver import (
    BackgroundHTTPServer,
    QuietHandler,
    drop_connection,
    region_from_authorization,
    service_from_authorization,
)

CONTROL_PREFIX: Final = "/_proxy/"

# Not forwarded: they describe one hop, not the request.
_HOP_BY_HOP: Final = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "expect",  # http.server already answered 100-continue; http.client cannot wait for it
    }
)
_STREAM_CHUNK: Final = 64 * 1024
_DDB_PREFIX: Final = "com.amazonaws.dynamodb.v20120810#"

# DynamoDB (JSON 1.0): fault kind -> (status, __type, message).
_DYNAMODB_ERRORS: Final[dict[str, tuple[int, str, str]]] = {
    "throttle": (
        400,
        _DDB_PREFIX + "ProvisionedThroughputExceededException",
        "The level of configured provisioned throughput for the table was exceeded. "
        "Consider increasing your provisioning level with the UpdateTable API.",
    ),
    "internal": (500, _DDB_PREFIX + "InternalServerError", "Internal server error"),
    "access_denied": (
        400,
        "com.amazon.coral.service#AccessDeniedException",
        "User is not authorized to perform this operation on this resource.",
    ),
    "not_found": (400, _DDB_PREFIX + "ResourceNotFoundException", "Requested resource not found"),
    "validation": (
        400,
        "com.amazon.coral.validate#ValidationException",
        "The provided starting key is invalid",
    ),
}
_DYNAMODB_ERRORS["throughput"] = _DYNAMODB_ERRORS["throttle"]
_DYNAMODB_ERRORS["slowdown"] = _DYNAMODB_ERRORS["throttle"]

# S3 (REST-XML): fault kind -> (status, Code, Message).
_S3_ERRORS: Final[dict[str, tuple[int, str, str]]] = {
    "slowdown": (503, "SlowDown", "Please reduce your request rate."),
    "internal": (500, "InternalError", "We encountered an internal error. Please try again."),
    "access_denied": (403, "AccessDenied", "Access Denied"),
    "not_found": (404, "NoSuchBucket", "The specified bucket does not exist"),
    "validation": (400, "InvalidArgument", "The continuation token provided is incorrect"),
}
_S3_ERRORS["throttle"] = _S3_ERRORS["slowdown"]
_S3_ERRORS["throughput"] = _S3_ERRORS["slowdown"]

# Any other JSON service moto serves (Glue, Athena, ...): awsJson shape.
_JSON_ERRORS: Final[dict[str, tuple[int, str, str]]] = {
    "throttle": (400, "ThrottlingException", "Rate exceeded"),
    "internal": (500, "InternalFailure", "Internal failure"),
    "access_denied": (400, "AccessDeniedException", "Access denied"),
    "not_found": (400, "ResourceNotFoundException", "Resource not found"),
    "validation": (400, "ValidationException", "The provided NextToken is invalid"),
}
_JSON_ERRORS["throughput"] = _JSON_ERRORS["throttle"]
_JSON_ERRORS["slowdown"] = _JSON_ERRORS["throttle"]

# S3 bucket-level subresources (GET/PUT/DELETE /bucket?<sub>) -> operation suffix.
_S3_BUCKET_SUBRESOURCES: Final = {
    "versioning": "BucketVersioning",
    "encryption": "BucketEncryption",
    "publicAccessBlock": "PublicAccessBlock",
    "policy": "BucketPolicy",
    "tagging": "BucketTagging",
    "lifecycle": "BucketLifecycleConfiguration",
    "cors": "BucketCors",
    "acl": "BucketAcl",
    "notification": "BucketNotificationConfiguration",
    "ownershipControls": "BucketOwnershipControls",
    "object-lock": "ObjectLockConfiguration",
    "replication": "BucketReplication",
    "logging": "BucketLogging",
    "website": "BucketWebsite",
}


# (method, query parameters that must all be present, header that must be present, operation); first wins.
_Rule = tuple[str, tuple[str, ...], str | None, str]
_S3_OBJECT_RULES: Final[tuple[_Rule, ...]] = (
    ("PUT", ("partNumber", "uploadId"), "x-amz-copy-source", "UploadPartCopy"),
    ("PUT", ("partNumber", "uploadId"), None, "UploadPart"),
    ("PUT", ("tagging",), None, "PutObjectTagging"),
    ("PUT", (), "x-amz-copy-source", "CopyObject"),
    ("PUT", (), None, "PutObject"),
    ("POST", ("uploads",), None, "CreateMultipartUpload"),
    ("POST", ("uploadId",), None, "CompleteMultipartUpload"),
    ("GET", ("uploadId",), None, "ListParts"),
    ("GET", ("tagging",), None, "GetObjectTagging"),
    ("GET", (), None, "GetObject"),
    ("DELETE", ("uploadId",), None, "AbortMultipartUpload"),
    ("DELETE", ("tagging",), None, "DeleteObjectTagging"),
    ("DELETE", (), None, "DeleteObject"),
    ("HEAD", (), None, "HeadObject"),
)
_S3_BUCKET_RULES: Final[tuple[_Rule, ...]] = (
    ("GET", ("list-type",), None, "ListObjectsV2"),
    ("GET", ("versions",), None, "ListObjectVersions"),
    ("GET", ("uploads",), None, "ListMultipartUploads"),
    ("GET", ("location",), None, "GetBucketLocation"),
    ("GET", (), None, "ListObjects"),
    ("POST", ("delete",), None, "DeleteObjects"),
    ("HEAD", (), None, "HeadBucket"),
    ("PUT", (), None, "CreateBucket"),
    ("DELETE", (), None, "DeleteBucket"),
)
_VERBS: Final = {"GET": "Get", "PUT": "Put", "DELETE": "Delete"}


def s3_operation(method: str, path: str, query: Mapping[str, list[str]], headers: Mapping[str, str]) -> str:
    """S3 API operation name from a path-style request (`/bucket` or `/bucket/key`); headers lower-case."""
    bucket, _, key = path.lstrip("/").partition("/")
    if not bucket:
        return "ListBuckets" if method == "GET" else f"{method.title()}Service"
    if not key:
        for sub, suffix in _S3_BUCKET_SUBRESOURCES.items():
            if sub in query:
                return f"{_VERBS.get(method, method.title())}{suffix}"
    rules = _S3_OBJECT_RULES if key else _S3_BUCKET_RULES
    for rule_method, params, header, name in rules:
        if rule_method == method and all(p in query for p in params) and (header is None or header in headers):
            return name
    return f"{method.title()}{'Object' if key else 'Bucket'}"


def _crc32_header(body: bytes) -> str:
    return str(zlib.crc32(body) & 0xFFFFFFFF)


def split_batch_get(request: Mapping[str, Any], fraction: float) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split BatchGetItem's RequestItems into (forwarded, unprocessed).

    Per table, the last `max(1, floor(len(keys) * fraction))` keys become unprocessed, keeping the
    table's ProjectionExpression/ExpressionAttributeNames/ConsistentRead/AttributesToGet, as DynamoDB's
    UnprocessedKeys does.
    """
    forwarded: dict[str, Any] = {}
    unprocessed: dict[str, Any] = {}
    for table, spec in dict(request.get("RequestItems") or {}).items():
        keys = list(spec.get("Keys") or [])
        cut = len(keys) - max(1, int(len(keys) * fraction)) if keys else 0
        rest = {k: v for k, v in spec.items() if k != "Keys"}
        if keys[:cut]:
            forwarded[table] = {**rest, "Keys": keys[:cut]}
        if keys[cut:]:
            unprocessed[table] = {**rest, "Keys": keys[cut:]}
    return forwarded, unprocessed


class _UpstreamPool:
    """Idle persistent connections to the upstream, shared by the handler threads."""

    def __init__(self, host: str, port: int, size: int = 32, timeout: float = 120.0) -> None:
        self._host, self._port, self._size, self._timeout = host, port, size, timeout
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()
        self._closed = False

    def get(self) -> tuple[http.client.HTTPConnection, bool]:
        """A connection and whether it was reused (a reused one may have been closed by the peer)."""
        with self._lock:
            if self._idle:
                return self._idle.pop(), True
        return http.client.HTTPConnection(self._host, self._port, timeout=self._timeout), False

    def put(self, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            if not self._closed and len(self._idle) < self._size:
                self._idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def reopen(self) -> None:
        with self._lock:
            self._closed = False

    def forward(
        self, method: str, target: str, headers: Iterable[tuple[str, str]], body: bytes
    ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        """Send one request upstream; retries once on a reused connection the peer had closed."""
        header_list = [(k, v) for k, v in headers if k.lower() not in _HOP_BY_HOP and k.lower() != "content-length"]
        if body or method in ("PUT", "POST", "PATCH"):
            header_list.append(("Content-Length", str(len(body))))
        for attempt in (1, 2):
            conn, reused = self.get()
            try:
                conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
                for name, value in header_list:
                    conn.putheader(name, value)
                conn.endheaders(body or None)
                return conn, conn.getresponse()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                conn.close()
                if not reused or attempt == 2:
                    raise
            except Exception:
                conn.close()
                raise
        raise AssertionError("unreachable")


def _pool(upstream: str) -> _UpstreamPool:
    parts = urlsplit(upstream)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"upstream must be an http:// URL, not {upstream!r}")
    return _UpstreamPool(parts.hostname, parts.port or 80)


class FaultProxy(BackgroundHTTPServer):
    """Fault-injecting HTTP proxy for DynamoDB and S3 (or anything else moto serves).

    `routes` sends a signing service ("s3", "dynamodb") to its own upstream; everything else goes to
    `upstream`. The benchmark gives S3 its own moto process so that DynamoDB's work does not share its GIL.

    `clock` (monotonic seconds) drives the quotas and `sleep` does the injected latencies and held
    responses, as in the emulator: tests pass their own to check both without a wall clock.
    """

    def __init__(
        self,
        upstream: str,
        port: int = 0,
        seed: int = 0,
        *,
        routes: Mapping[str, str] | None = None,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        super().__init__(port, seed, clock=clock, sleep=sleep)
        self.upstream = upstream.rstrip("/")
        self.pool = _pool(upstream)
        self.routes = {service: url.rstrip("/") for service, url in (routes or {}).items()}
        self._pools = {service: _pool(url) for service, url in self.routes.items()}

    def pool_for(self, service: str) -> _UpstreamPool:
        """The upstream connections for requests signed for `service`."""
        return self._pools.get(service, self.pool)

    def start(self) -> FaultProxy:
        for pool in (self.pool, *self._pools.values()):
            pool.reopen()
        super().start()
        return self

    def stop(self) -> None:
        """Stop serving, then close the upstream connections (so moto's threads can end too)."""
        super().stop()
        for pool in (self.pool, *self._pools.values()):
            pool.close()

    # -- control API (out-of-process use: local.fault_proxy.FaultProxyClient) --------------------------

    def control(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        """The `/_proxy/...` endpoints: configure faults, read and reset the call counts."""
        return control_api.dispatch(_CONTROL, self, method, path, body)


def _apply(proxy: FaultProxy, body: Any) -> tuple[int, Any]:
    """A spec or a list of them, in `FaultPlan.apply_json`'s form -> {"applied": n}; all or nothing."""
    specs = body if isinstance(body, list) else [body]
    if not all(isinstance(spec, dict) for spec in specs):
        raise TypeError("a fault spec is a JSON object")
    scratch = FaultPlan(killer=lambda pid: None)
    try:
        for spec in specs:  # all or nothing: a bad spec leaves the plan as it was
            scratch.apply_json(spec)
    except KeyError as error:  # a missing field is a bad request, not a missing thing
        raise ValueError(f"missing {error}") from None
    for spec in specs:
        proxy.faults.apply_json(spec)
    return 200, {"applied": len(specs)}


def _plan(proxy: FaultProxy, body: Any) -> tuple[int, Any]:
    """-> {"rules": [the rules with their counters], "base_latency": {operation: seconds}}."""
    return 200, {"rules": [asdict(rule) for rule in proxy.faults.rules], "base_latency": proxy.faults.base_latency}


_CONTROL: Final[dict[tuple[str, str], Callable[[FaultProxy, Any], tuple[int, Any]]]] = {
    ("POST", CONTROL_PREFIX + "faults"): _apply,
    ("GET", CONTROL_PREFIX + "faults"): _plan,
    **control_api.common_routes(CONTROL_PREFIX),
}


class _Handler(QuietHandler):
    server_version = "FaultProxy/1.0"

    @property
    def proxy(self) -> FaultProxy:
        app = getattr(self.server, "app", None)
        assert isinstance(app, FaultProxy)
        return app

    def serve(self) -> None:
        proxy = self.proxy
        body = self.read_body()
        split = urlsplit(self.path)
        if split.path.startswith(CONTROL_PREFIX):
            status, payload = control_api.answer(proxy.control, self.command, split.path, split.query, body)
            self._send_bytes(status, "", [("Content-Type", "application/json")], json.dumps(payload).encode())
            return
        query = parse_qs(split.query, keep_blank_values=True)
        auth = self.headers.get("Authorization")
        target = self.headers.get("X-Amz-Target")
        service = service_from_authorization(auth) or ("dynamodb" if target else "s3")
        region = region_from_authorization(auth) or "us-east-1"
        if target:
            operation = target.rsplit(".", 1)[-1]
            has_token = b'"ExclusiveStartKey"' in body or b'"NextToken"' in body
            params: dict[str, Any] = {"target": target, "bytes": len(body)}
        else:
            operation = s3_operation(self.command, split.path, query, {k.lower(): v for k, v in self.headers.items()})
            has_token = "continuation-token" in query or "marker" in query or "key-marker" in query
            params = {"method": self.command, "path": split.path, "query": split.query}
        with self.deciding(proxy.faults, proxy.log, operation, region, params, has_token) as decision:
            self._serve(proxy, decision, service, body)

    def _serve(self, proxy: FaultProxy, decision: Decision, service: str, body: bytes) -> int | None:
        if decision.fault == "reset":
            drop_connection(self)
            return None
        proxy.sleep(decision.delay)
        if decision.fault in ERROR_KINDS:
            proxy.sleep(decision.hold)
            return self._send_fault(service, str(decision.fault))
        pool = proxy.pool_for(service)
        if decision.fault == "unprocessed" and decision.operation == "BatchGetItem":
            return self._batch_get_unprocessed(proxy, pool, decision, body)
        try:
            conn, response = pool.forward(self.command, self.path, self.headers.items(), body)
        except (OSError, http.client.HTTPException) as error:
            return self._send_bytes(502, "Bad Gateway", [("Content-Type", "text/plain")], str(error).encode())
        if decision.hold > 0:  # served upstream already; the client just does not hear back in time
            data = response.read()
            pool.put(conn)
            proxy.sleep(decision.hold)
            return self._send_bytes(response.status, response.reason, response.getheaders(), data)
        return self._stream(pool, conn, response)

    def _stream(self, pool: _UpstreamPool, conn: http.client.HTTPConnection, response: http.client.HTTPResponse) -> int:
        """Relay the upstream response, streaming bodies of known length in chunks."""
        length = response.getheader("Content-Length")
        if length is None:
            data = response.read()
            pool.put(conn)
            return self._send_bytes(response.status, response.reason, response.getheaders(), data)
        self._start_response(response.status, response.reason, response.getheaders(), int(length))
        ok = False
        try:
            while chunk := response.read(_STREAM_CHUNK):
                self.wfile.write(chunk)
            self.wfile.flush()
            ok = True
        finally:
            if ok and response.isclosed():
                pool.put(conn)
            else:
                conn.close()
        return response.status

    def _start_response(self, status: int, reason: str, headers: Iterable[tuple[str, str]], length: int) -> None:
        self.log_call(status)
        self.send_response_only(status, reason)
        for name, value in headers:
            if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length":
                self.send_header(name, value)
        self.send_header("Content-Length", str(length))
        self.end_headers()

    def _send_bytes(self, status: int, reason: str, headers: Iterable[tuple[str, str]], body: bytes) -> int:
        self._start_response(status, reason, headers, len(body))
        if self.command != "HEAD":
            self.wfile.write(body)
        self.wfile.flush()
        return status

    def _send_fault(self, service: str, kind: str) -> int:
        request_id = uuid.uuid4().hex.upper()[:16]
        if service == "s3":
            status, code, message = _S3_ERRORS[kind]
            xml = (
                '<?xml version="1.0" encoding="UTF-8"?>\n'
                f"<Error><Code>{code}</Code><Message>{message}</Message>"
                f"<RequestId>{request_id}</RequestId><HostId>faultproxy</HostId></Error>"
            ).encode()
            headers = [("Content-Type", "application/xml"), ("x-amz-request-id", request_id)]
            return self._send_bytes(status, "", headers, xml)
        table = _DYNAMODB_ERRORS if service == "dynamodb" else _JSON_ERRORS
        status, error_type, message = table[kind]
        payload = json.dumps({"__type": error_type, "message": message}).encode()
        headers = [
            ("Content-Type", "application/x-amz-json-1.0"),
            ("x-amzn-RequestId", request_id),
            ("x-amz-crc32", _crc32_header(payload)),
        ]
        return self._send_bytes(status, "", headers, payload)

    def _batch_get_unprocessed(self, proxy: FaultProxy, pool: _UpstreamPool, decision: Decision, body: bytes) -> int:
        """Forward only part of a BatchGetItem and report the rest as UnprocessedKeys, like DynamoDB."""
        try:
            request = json.loads(body)
        except ValueError:
            request = {}
        forwarded, unprocessed = split_batch_get(request, decision.fraction)
        result: dict[str, Any] = {"Responses": {table: [] for table in (request.get("RequestItems") or {})}}
        status, reason, headers = 200, "OK", [("Content-Type", "application/x-amz-json-1.0")]
        if forwarded:
            new_body = json.dumps({**request, "RequestItems": forwarded}).encode()
            try:
                conn, response = pool.forward(self.command, self.path, self.headers.items(), new_body)
            except (OSError, http.client.HTTPException) as error:
                return self._send_bytes(502, "Bad Gateway", [("Content-Type", "text/plain")], str(error).encode())
            data = response.read()
            pool.put(conn)
            if response.status != 200:  # an upstream error passes through untouched
                return self._send_bytes(response.status, response.reason, response.getheaders(), data)
            upstream = json.loads(data)
            result["Responses"].update(upstream.get("Responses") or {})
            for table, spec in (upstream.get("UnprocessedKeys") or {}).items():
                unprocessed.setdefault(table, {**spec, "Keys": []})
                unprocessed[table]["Keys"] = list(spec.get("Keys") or []) + unprocessed[table]["Keys"]
            for extra in ("ConsumedCapacity",):
                if extra in upstream:
                    result[extra] = upstream[extra]
            headers = [(k, v) for k, v in response.getheaders() if k.lower() not in ("x-amz-crc32", "content-length")]
        result["UnprocessedKeys"] = unprocessed
        payload = json.dumps(result).encode()
        headers = [*headers, ("x-amz-crc32", _crc32_header(payload))]
        proxy.sleep(decision.hold)
        return self._send_bytes(status, reason, headers, payload)


FaultProxy.handler_class = _Handler
