"""The local Lambda service's state: functions, the asynchronous queue and the log of every invocation.

Lambda puts an `Event` invocation on the function's queue and answers 202 before anything runs; with
reserved concurrency 1 the function runs one invocation at a time and the rest wait. Here one FIFO queue
holds the Event invocations of every function and a function never runs two invocations at once (a
synchronous one included: Lambda throttles it while the function is busy). What runs the queue is the
owner's choice: the dispatcher thread (`start`), as invocations arrive, or `run_pending()` in the caller's
thread, for tests that want every step deterministic. Either runs one invocation at a time across all
functions, which is stricter than Lambda (functions are independent) and all the reconciler needs.

Not modeled: versions (only `$LATEST` and named aliases of it), the timeout of an in-process runner (a run
takes as long as it takes), and the delay before a retry (Lambda waits a minute or more; here a failed
attempt is retried at once, in place)."""

from __future__ import annotations

import collections
import itertools
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Final

from local.lambda_context import LambdaContext
from local.lambda_service.exceptions import function_not_found, invalid_parameter, too_many_requests, validation

Runner = Callable[[Any], Any]  # event -> result: what runs one invocation
Handler = Callable[[Any, Any], Any]  # (event, context) -> result: a Lambda handler such as archiver.handler.handler
Call = Callable[[Any, "Invocation"], Any]  # what the backend calls: the event and the invocation it belongs to

EVENT: Final = "Event"
REQUEST_RESPONSE: Final = "RequestResponse"
DRY_RUN: Final = "DryRun"
INVOCATION_TYPES: Final = (EVENT, REQUEST_RESPONSE, DRY_RUN)

QUEUED: Final = "queued"
RUNNING: Final = "running"
SUCCEEDED: Final = "succeeded"
FAILED: Final = "failed"
LATEST: Final = "$LATEST"

# The FunctionName forms Lambda accepts (its model's pattern): name, NAME:qualifier, ACCOUNT:function:NAME,
# arn:aws:lambda:REGION:ACCOUNT:function:NAME, each with an optional :qualifier.
_FUNCTION_NAME: Final = re.compile(
    r"^(?:arn:aws[a-zA-Z-]*:lambda:)?"
    r"(?:(?P<region>[a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-\d):)?"
    r"(?:(?P<account>\d{12}):)?"
    r"(?:function:)?"
    r"(?P<name>[a-zA-Z0-9_.-]+)"
    r"(?::(?P<qualifier>\$LATEST(?:\.PUBLISHED)?|[a-zA-Z0-9_-]+))?$"
)
_NAME: Final = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


@dataclass(frozen=True)
class Invocation:
    """One invocation as received and, once run, as it ended. Snapshots: the backend replaces, never mutates."""

    id: int  # the order of receipt, from 1
    request_id: str  # the x-amzn-RequestId answered, and the context's aws_request_id
    function: str
    invoked_arn: str  # the function's ARN, with the qualifier it was invoked with (the context's ARN)
    invocation_type: str
    payload: Any
    received_at: float  # epoch seconds
    status: str = QUEUED
    attempts: int = 0
    started_at: float | None = None
    ended_at: float | None = None
    result: Any = None
    error: str | None = None
    error_type: str | None = None

    @property
    def done(self) -> bool:
        return self.status in (SUCCEEDED, FAILED)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready (a result that JSON cannot carry is given as its repr)."""
        out = asdict(self)
        out["result"] = json.loads(json.dumps(self.result, default=repr))
        return out

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> Invocation:
        return cls(**value)


@dataclass(frozen=True)
class Function:
    """A registered function: its name, ARN, what runs it and its asynchronous retry setting."""

    name: str
    arn: str
    call: Call = field(repr=False, compare=False)
    retry_attempts: int = 0  # Lambda's default is 2; the stack sets 1 for the scheduled function
    aliases: frozenset[str] = frozenset()
    close: Callable[[], None] | None = field(default=None, repr=False, compare=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "arn": self.arn,
            "retry_attempts": self.retry_attempts,
            "aliases": sorted(self.aliases),
        }


def _runner_call(runner: Runner | None) -> Call:
    if runner is None:
        return lambda event, invocation: None  # accepted and recorded, nothing run
    return lambda event, invocation: runner(event)


def _handler_call(handler: Handler, name: str, timeout_seconds: float, memory_limit_in_mb: int) -> Call:
    """A fresh context per invocation, as the runtime gives: the request ID, the invoked ARN, a countdown."""

    def call(event: Any, invocation: Invocation) -> Any:
        context = LambdaContext(
            timeout_seconds=timeout_seconds,
            function_name=name,
            memory_limit_in_mb=memory_limit_in_mb,
            aws_request_id=invocation.request_id,
            invoked_function_arn=invocation.invoked_arn,
            log_group_name=f"/aws/lambda/{name}",
        )
        return handler(event, context)

    return call


class LambdaBackend:
    """Functions of one account and Region, their queue, and every invocation received (thread-safe)."""

    def __init__(
        self, region: str = "us-east-2", account_id: str = "111122223333", *, clock: Callable[[], float] = time.time
    ) -> None:
        self.region = region
        self.account_id = account_id
        self._clock = clock
        self._cond = threading.Condition()
        self._functions: dict[str, Function] = {}
        self._records: dict[int, Invocation] = {}  # by id, in order of receipt
        self._queue: collections.deque[int] = collections.deque()
        self._running: set[str] = set()  # functions with an invocation in progress
        self._ids = itertools.count(1)
        self._dispatcher: threading.Thread | None = None
        self._stopping = False

    # -- functions -------------------------------------------------------------------------------------

    def function_arn(self, name: str) -> str:
        return f"arn:aws:lambda:{self.region}:{self.account_id}:function:{name}"

    def add_function(
        self,
        name: str,
        runner: Runner | None = None,
        *,
        handler: Handler | None = None,
        timeout_seconds: float = 900.0,
        memory_limit_in_mb: int = 512,
        retry_attempts: int = 0,
        aliases: Iterable[str] = (),
        close: Callable[[], None] | None = None,
    ) -> Function:
        """Register (or replace) `name`, run by `runner(event)`, or by `handler(event, context)` with a
        `local.lambda_context.LambdaContext` of `timeout_seconds` whose `invoked_function_arn` is the ARN it
        was invoked by; with neither, its invocations are only recorded. `close` runs when it is removed."""
        if not _NAME.match(name):
            raise ValueError(f"function name must be 1-64 of [a-zA-Z0-9_-], not {name!r}")
        if runner is not None and handler is not None:
            raise ValueError("give a runner or a handler, not both")
        if not 0 <= retry_attempts <= 2:
            raise ValueError("retry_attempts must be 0, 1 or 2 (Lambda's range)")
        if handler is not None:
            call = _handler_call(handler, name, timeout_seconds, memory_limit_in_mb)
        else:
            call = _runner_call(runner)
        function = Function(name, self.function_arn(name), call, retry_attempts, frozenset(aliases), close)
        with self._cond:
            previous, self._functions[name] = self._functions.get(name), function
        if previous is not None and previous.close is not None:
            previous.close()
        return function

    def remove_function(self, name: str) -> None:
        """Forget `name` (KeyError if unknown); invocations of it still queued fail when their turn comes."""
        with self._cond:
            function = self._functions.pop(name)
        if function.close is not None:
            function.close()

    def functions(self) -> list[Function]:
        with self._cond:
            return list(self._functions.values())

    def resolve(self, identifier: str, qualifier: str | None = None, region: str | None = None) -> tuple[Function, str]:
        """The function a FunctionName (name, partial or full ARN, optional :qualifier) and Qualifier name,
        and the ARN it was invoked by; LambdaError as Lambda answers: the pattern, a qualifier that
        disagrees with the name's, a function (or alias) not in this account and Region."""
        match = _FUNCTION_NAME.match(identifier)
        if match is None or len(identifier) > 170:
            raise validation(
                f"Value '{identifier}' at 'functionName' failed to satisfy constraint: "
                "Member must satisfy regular expression pattern"
            )
        derived = match["qualifier"]
        if qualifier and derived and qualifier != derived:
            raise invalid_parameter(
                "The derived qualifier from the function name does not match the specified qualifier."
            )
        qualifier = qualifier or derived
        name, region, account = match["name"], match["region"] or region or self.region, match["account"]
        invoked = f"arn:aws:lambda:{region}:{account or self.account_id}:function:{name}"
        invoked += f":{qualifier}" if qualifier else ""
        with self._cond:
            function = self._functions.get(name)
        elsewhere = region != self.region or account not in (None, self.account_id)
        if function is None or elsewhere or qualifier not in (None, LATEST, *function.aliases):
            raise function_not_found(invoked)
        return function, invoked

    # -- invoking --------------------------------------------------------------------------------------

    def _new(self, function: Function, invoked_arn: str, invocation_type: str, payload: Any) -> Invocation:
        return Invocation(
            id=next(self._ids),
            request_id=str(uuid.uuid4()),
            function=function.name,
            invoked_arn=invoked_arn,
            invocation_type=invocation_type,
            payload=payload,
            received_at=self._clock(),
        )

    def enqueue(self, function: Function, invoked_arn: str, payload: Any) -> Invocation:
        """Queue an Event invocation (it runs later, after those queued before it); the queued record."""
        with self._cond:
            invocation = self._new(function, invoked_arn, EVENT, payload)
            self._records[invocation.id] = invocation
            self._queue.append(invocation.id)
            self._cond.notify_all()
        return invocation

    def invoke(self, function: Function, invoked_arn: str, payload: Any) -> Invocation:
        """Run a RequestResponse invocation now, in the caller's thread; TooManyRequestsException (429)
        while the function is running another invocation (reserved concurrency 1). The ended record."""
        with self._cond:
            if function.name in self._running:
                raise too_many_requests()
            invocation = self._started(self._new(function, invoked_arn, REQUEST_RESPONSE, payload))
            self._records[invocation.id] = invocation
        return self._run(invocation, function, retries=0)

    def _started(self, invocation: Invocation) -> Invocation:
        self._running.add(invocation.function)
        return replace(invocation, status=RUNNING, started_at=self._clock())

    def _take(self) -> tuple[Invocation, Function | None] | None:
        """The first queued invocation whose function is idle, marked running (lock held)."""
        for position, ident in enumerate(self._queue):
            invocation = self._records[ident]
            if invocation.function not in self._running:
                del self._queue[position]
                self._records[ident] = started = self._started(invocation)
                return started, self._functions.get(invocation.function)
        return None

    def _run(self, invocation: Invocation, function: Function | None, retries: int) -> Invocation:
        """Run a started invocation (retrying a failed Event attempt `retries` times) and record how it ended,
        whatever happens: a runner that raises past `Exception` still frees the function."""
        attempts = 0
        outcome: tuple[Any, str | None, str | None] = (None, "the run was interrupted", "Interrupted")
        if function is None:  # removed while the invocation waited
            outcome = (None, f"Function not found: {invocation.invoked_arn}", "ResourceNotFoundException")
        try:
            while function is not None and attempts <= retries:
                attempts += 1
                try:
                    outcome = (function.call(invocation.payload, invocation), None, None)
                    break
                except Exception as exc:  # the function's error, as the runtime reports it
                    outcome = (None, str(exc), type(exc).__name__)
        finally:
            result, error, error_type = outcome
            ended = replace(
                invocation,
                status=FAILED if error_type else SUCCEEDED,
                attempts=attempts,
                ended_at=self._clock(),
                result=result,
                error=error,
                error_type=error_type,
            )
            with self._cond:
                self._records[ended.id] = ended
                self._running.discard(ended.function)
                self._cond.notify_all()
        return ended

    def run_next(self) -> Invocation | None:
        """Run the next queued invocation that can run now, in this thread; None if there is none."""
        with self._cond:
            taken = self._take()
        if taken is None:
            return None
        invocation, function = taken
        return self._run(invocation, function, function.retry_attempts if function else 0)

    def run_pending(self, limit: int | None = None) -> list[Invocation]:
        """Run queued invocations in order, in this thread, until none is left (those the runs queue
        themselves included) or `limit` ran; what ran. Not while the dispatcher thread runs."""
        if self._dispatcher is not None:
            raise RuntimeError("the dispatcher thread runs the queue: use wait_idle, not run_pending")
        ran: list[Invocation] = []
        while limit is None or len(ran) < limit:
            invocation = self.run_next()
            if invocation is None:
                break
            ran.append(invocation)
        return ran

    # -- the dispatcher thread -------------------------------------------------------------------------

    def start(self) -> None:
        """Run queued invocations as they arrive, one at a time, in a daemon thread."""
        with self._cond:
            if self._dispatcher is not None:
                return
            self._stopping = False
            self._dispatcher = threading.Thread(target=self._dispatch, name="lambda-dispatcher", daemon=True)
        self._dispatcher.start()

    def stop(self) -> None:
        """Stop the dispatcher once its current invocation ends; what is queued stays queued."""
        with self._cond:
            thread, self._dispatcher = self._dispatcher, None
            self._stopping = True
            self._cond.notify_all()
        if thread is not None:
            thread.join()

    def _dispatch(self) -> None:
        while True:
            with self._cond:
                taken = None
                while not self._stopping and (taken := self._take()) is None:
                    self._cond.wait()
                if taken is None:
                    return
            invocation, function = taken
            self._run(invocation, function, function.retry_attempts if function else 0)

    def close(self) -> None:
        """Stop the dispatcher and close every function's runner."""
        self.stop()
        for function in self.functions():
            if function.close is not None:
                function.close()

    # -- what was received -----------------------------------------------------------------------------

    def invocations(self, function: str | None = None) -> list[Invocation]:
        """Every invocation received (of `function`, if given), in order of receipt, as it is now."""
        with self._cond:
            return [i for i in self._records.values() if function is None or i.function == function]

    def idle(self) -> bool:
        with self._cond:
            return not self._queue and not self._running

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until nothing is queued or running (False if `timeout` seconds pass first)."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._queue and not self._running, timeout)

    def wait_for_invocations(self, count: int, timeout: float = 10.0, *, done: bool = False) -> bool:
        """Block until `count` invocations were received (with `done`: have ended); False on timeout."""
        with self._cond:
            return self._cond.wait_for(
                lambda: sum(1 for i in self._records.values() if not done or i.done) >= count, timeout
            )

    def reset_invocations(self) -> None:
        """Forget the invocations that ended (queued and running ones stay)."""
        with self._cond:
            self._records = {k: v for k, v in self._records.items() if not v.done}
