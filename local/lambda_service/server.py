"""`LambdaService`: the backend (models), the Invoke wire protocol (responses) and the `/_lambda/...` control
API behind one HTTP server on 127.0.0.1, for the unmodified boto3 `lambda` client
(`AWS_ENDPOINT_URL_LAMBDA` = `endpoint_url`).

It exists for the reconciler's asynchronous self-invocations: a run that runs out of time while listing
invokes its own function (InvocationType=Event, its position as the payload) and the follow-up continues.
moto's Lambda would need Docker to run anything; this runs what its owner registers, one at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Final, Self

from local import control_api
from local.httpserver import BackgroundHTTPServer
from local.lambda_service.exceptions import EVENT_PAYLOAD_LIMIT
from local.lambda_service.models import Function, Handler, Invocation, LambdaBackend, Runner
from local.lambda_service.responses import CONTROL_PREFIX, LambdaHandler
from local.lambda_service.worker_runner import WorkerRunner


class LambdaService(BackgroundHTTPServer):
    """In-process Lambda endpoint for one account and Region.

    `background` (the default): a dispatcher thread runs queued Event invocations as they arrive;
    otherwise they wait for `run_pending()` (or the control API's run-pending). `stop()` lets the running
    invocation end, then stops the server and closes every function's runner (worker processes end).
    """

    def __init__(
        self,
        port: int = 0,
        seed: int = 0,
        region: str = "us-east-2",
        account_id: str = "111122223333",
        *,
        background: bool = True,
        event_payload_limit: int = EVENT_PAYLOAD_LIMIT,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        super().__init__(port, seed, clock=clock, sleep=sleep)
        self.backend = LambdaBackend(region, account_id)
        self.background = background
        self.event_payload_limit = event_payload_limit

    def start(self) -> Self:
        super().start()
        if self.background:
            self.backend.start()
        return self

    def stop(self) -> None:
        self.backend.stop()  # first: the running invocation may still call this server
        super().stop()
        self.backend.close()

    # -- the backend, for in-process owners (see LambdaBackend) ----------------------------------------

    @property
    def region(self) -> str:
        return self.backend.region

    @property
    def account_id(self) -> str:
        return self.backend.account_id

    def function_arn(self, name: str) -> str:
        return self.backend.function_arn(name)

    def add_function(
        self,
        name: str,
        runner: Runner | None = None,
        *,
        handler: Handler | None = None,
        timeout_seconds: float = 900.0,
        retry_attempts: int = 0,
        aliases: Iterable[str] = (),
    ) -> Function:
        """Register `name`: run by `runner(event)`, or by the Lambda handler `handler(event, context)` with a
        fresh `LambdaContext` (its `invoked_function_arn` the ARN it was invoked by); neither: only recorded."""
        return self.backend.add_function(
            name,
            runner,
            handler=handler,
            timeout_seconds=timeout_seconds,
            retry_attempts=retry_attempts,
            aliases=aliases,
        )

    def remove_function(self, name: str) -> None:
        self.backend.remove_function(name)

    def invocations(self, function: str | None = None) -> list[Invocation]:
        """Every invocation received (of `function`), in order of receipt, with its status and result or error."""
        return self.backend.invocations(function)

    def run_pending(self, limit: int | None = None) -> list[Invocation]:
        """Run what is queued in this thread, in order, until nothing is (needs `background=False`)."""
        return self.backend.run_pending(limit)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until nothing is queued or running; False if `timeout` seconds pass first."""
        return self.backend.wait_idle(timeout)

    def wait_for_invocations(self, count: int, timeout: float = 10.0, *, done: bool = False) -> bool:
        """Block until `count` invocations were received (with `done`: have ended); False on timeout."""
        return self.backend.wait_for_invocations(count, timeout, done=done)

    def reset_invocations(self) -> None:
        self.backend.reset_invocations()

    def control(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        """The `/_lambda/...` control API, in-process: (HTTP status, JSON-ready payload)."""
        payload: dict[str, Any] = dict(body) if isinstance(body, dict) else {}
        return control_api.dispatch(_ROUTES, self, method, path, payload)


# -- the control API (out-of-process owners: local.lambda_service.LambdaServiceClient) --------------------


def _add_function(service: LambdaService, payload: dict[str, Any]) -> tuple[int, Any]:
    """{"name", "retry_attempts"?, "aliases"?, "worker"?: {"env", "timeout_seconds"?, "log_dir"?}} -> the
    function. With "worker", `archiver.handler.handler` runs in a warm subprocess with that environment
    (on the service's own, minus its AWS_*, ARCHIVE_* and POWERTOOLS_* variables); without, invocations
    are only recorded (the owner reads them and runs them itself)."""
    worker = payload.get("worker")
    runner: WorkerRunner | None = None
    timeout = 900.0
    if worker is not None:
        timeout = float(worker.get("timeout_seconds", timeout))
        env = {str(k): str(v) for k, v in dict(worker["env"]).items()}
        runner = WorkerRunner(env, timeout_seconds=timeout, log_dir=worker.get("log_dir"))
    try:
        function = service.backend.add_function(
            str(payload["name"]),
            runner,
            timeout_seconds=timeout,
            retry_attempts=int(payload.get("retry_attempts", 0)),
            aliases=[str(a) for a in payload.get("aliases", ())],
            close=runner.close if runner is not None else None,
        )
    except BaseException:
        if runner is not None:
            runner.close()
        raise
    return 200, function.to_json()


def _remove_function(service: LambdaService, payload: dict[str, Any]) -> tuple[int, Any]:
    """{"name"} -> {}; 404 if there is no such function."""
    service.remove_function(str(payload["name"]))
    return 200, {}


def _functions(service: LambdaService, payload: dict[str, Any]) -> tuple[int, Any]:
    """-> {"functions": [{"name", "arn", "retry_attempts", "aliases"}]}."""
    return 200, {"functions": [f.to_json() for f in service.backend.functions()]}


def _invocations(service: LambdaService, payload: dict[str, Any]) -> tuple[int, Any]:
    """?function= -> {"invocations": [...]}, in order of receipt."""
    return 200, {"invocations": [i.to_json() for i in service.invocations(payload.get("function"))]}


def _reset_invocations(service: LambdaService, payload: dict[str, Any]) -> tuple[int, Any]:
    """{} -> {}: forget the invocations that ended."""
    service.reset_invocations()
    return 200, {}


def _run_pending(service: LambdaService, payload: dict[str, Any]) -> tuple[int, Any]:
    """{"limit"?} -> {"invocations": what ran}; 409 while the dispatcher thread runs the queue."""
    limit = payload.get("limit")
    try:
        ran = service.run_pending(None if limit is None else int(limit))
    except RuntimeError as error:
        return 409, {"message": str(error)}
    return 200, {"invocations": [i.to_json() for i in ran]}


def _wait_idle(service: LambdaService, payload: dict[str, Any]) -> tuple[int, Any]:
    """{"timeout"?} -> {"idle": whether nothing was queued or running before the timeout}."""
    return 200, {"idle": service.wait_idle(float(payload.get("timeout", 10.0)))}


_ROUTES: Final[dict[tuple[str, str], Callable[[LambdaService, dict[str, Any]], tuple[int, Any]]]] = {
    ("POST", CONTROL_PREFIX + "functions"): _add_function,
    ("POST", CONTROL_PREFIX + "remove-function"): _remove_function,
    ("GET", CONTROL_PREFIX + "functions"): _functions,
    ("GET", CONTROL_PREFIX + "invocations"): _invocations,
    ("POST", CONTROL_PREFIX + "reset-invocations"): _reset_invocations,
    ("POST", CONTROL_PREFIX + "run-pending"): _run_pending,
    ("POST", CONTROL_PREFIX + "wait-idle"): _wait_idle,
    ("POST", CONTROL_PREFIX + "faults"): control_api.add_fault,  # rules for the operation "Invoke"
    **control_api.common_routes(CONTROL_PREFIX),
}


class _Handler(LambdaHandler):
    @property
    def app(self) -> LambdaService:
        app = getattr(self.server, "app", None)
        assert isinstance(app, LambdaService)
        return app


LambdaService.handler_class = _Handler
