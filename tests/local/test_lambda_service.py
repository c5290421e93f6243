"""The local Lambda service against the real boto3 `lambda` client: Event invocations queued and run one at a
time in order of receipt, the FunctionName forms, Lambda's errors as botocore parses them, DryRun and
RequestResponse, the waits, the control API over HTTP and the service as its own process."""

from __future__ import annotations

import json
import os
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from local.lambda_context import LambdaContext
from local.lambda_service import LambdaControlError, LambdaService, LambdaServiceClient
from local.lambda_service.exceptions import EVENT_PAYLOAD_LIMIT
from local.stack.aws import DUMMY_ACCESS_KEY_ID, DUMMY_SECRET_ACCESS_KEY, SCRUBBED
from local.stack.processes import ServerProcess
from tests.local.support import REGION, boto_client

ACCOUNT = "111122223333"
WAIT = 10.0  # seconds a wait may take before the test fails; never a pace


@pytest.fixture
def service() -> Iterator[LambdaService]:
    """Queued invocations run only when the test says (`run_pending`)."""
    with LambdaService(region=REGION, account_id=ACCOUNT, background=False) as svc:
        yield svc


@pytest.fixture
def background() -> Iterator[LambdaService]:
    """Queued invocations run as they arrive, on the service's dispatcher thread."""
    with LambdaService(region=REGION, account_id=ACCOUNT) as svc:
        yield svc


def lambda_client(svc: LambdaService | str, region: str = REGION) -> Any:
    return boto_client("lambda", svc if isinstance(svc, str) else svc.endpoint_url, region=region)


def event(client: Any, function: str, payload: Any, **kwargs: Any) -> dict[str, Any]:
    answer: dict[str, Any] = client.invoke(
        FunctionName=function, InvocationType="Event", Payload=json.dumps(payload), **kwargs
    )
    return answer


def error_of(call: Any) -> ClientError:
    with pytest.raises(ClientError) as caught:
        call()
    return caught.value


# -- Event: queued, answered 202, run in order ---------------------------------------------------------------


def test_an_event_invocation_is_answered_202_before_it_runs_and_runs_when_the_queue_is_run(
    service: LambdaService,
) -> None:
    seen: list[Any] = []

    def runner(payload: dict[str, str]) -> dict[str, str]:
        seen.append(payload)
        return {"done": payload["position"]}

    service.add_function("archiver", runner)

    answer = event(lambda_client(service), "archiver", {"position": "page-7"})

    assert answer["StatusCode"] == 202 and answer["Payload"].read() == b""
    [queued] = service.invocations()
    assert seen == [] and queued.status == "queued" and queued.payload == {"position": "page-7"}
    assert queued.request_id == answer["ResponseMetadata"]["RequestId"]
    assert queued.invoked_arn == f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:archiver"
    assert not service.wait_idle(timeout=0)  # queued is not idle

    [ran] = service.run_pending()

    assert seen == [{"position": "page-7"}]
    assert ran.status == "succeeded" and ran.result == {"done": "page-7"} and ran.attempts == 1
    assert ran.received_at <= ran.started_at <= ran.ended_at  # type: ignore[operator]
    assert service.invocations() == [ran] and service.wait_idle(timeout=0)


def test_concurrent_event_invocations_run_one_at_a_time_in_order_of_receipt(background: LambdaService) -> None:
    n = 8
    lock = threading.Lock()
    active: list[int] = []
    ran: list[int] = []
    peak = [0]
    first_running, release = threading.Event(), threading.Event()

    def runner(payload: dict[str, int]) -> int:
        with lock:
            active.append(payload["n"])
            peak[0] = max(peak[0], len(active))
            ran.append(payload["n"])
        first_running.set()
        release.wait(WAIT)  # the first holds the function while the others arrive
        with lock:
            active.remove(payload["n"])
        return payload["n"]

    background.add_function("archiver", runner)
    client = lambda_client(background)
    senders = [threading.Thread(target=event, args=(client, "archiver", {"n": i})) for i in range(n)]
    for sender in senders:
        sender.start()
    assert background.wait_for_invocations(n, WAIT) and first_running.wait(WAIT)
    statuses = [i.status for i in background.invocations()]
    release.set()
    for sender in senders:
        sender.join(WAIT)

    assert sorted(statuses) == ["queued"] * (n - 1) + ["running"]  # all received while the first ran
    assert background.wait_idle(WAIT)
    received = [i.payload["n"] for i in background.invocations()]
    assert sorted(received) == list(range(n))
    assert ran == received  # in order of receipt
    assert peak[0] == 1  # never two at once
    assert [i.result for i in background.invocations()] == received
    assert all(i.status == "succeeded" for i in background.invocations())


def test_wait_idle_waits_for_the_running_invocation_and_what_it_queued(background: LambdaService) -> None:
    running, release = threading.Event(), threading.Event()

    def runner(payload: dict[str, Any]) -> None:
        running.set()
        release.wait(WAIT)

    background.add_function("archiver", runner)
    event(lambda_client(background), "archiver", {})
    assert running.wait(WAIT)

    assert not background.wait_idle(timeout=0.05)  # a timeout, not a pace: it is still running
    release.set()
    assert background.wait_idle(WAIT)
    assert [i.status for i in background.invocations()] == ["succeeded"]


# -- the reconciler's pattern: a handler invoking its own ARN with its position --------------------------------


def test_a_handler_that_invokes_its_own_arn_continues_in_follow_ups_through_aws_endpoint_url_lambda(
    service: LambdaService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the reconciler does when its time runs out: boto3's default client, endpoint from the SDK's own
    variable, FunctionName = context.invoked_function_arn, the position as the payload."""
    for name in SCRUBBED:
        monkeypatch.delenv(name, raising=False)
    for name, value in {
        "AWS_ENDPOINT_URL_LAMBDA": service.endpoint_url,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": DUMMY_ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": DUMMY_SECRET_ACCESS_KEY,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }.items():
        monkeypatch.setenv(name, value)
    contexts: list[LambdaContext] = []

    def handler(payload: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        contexts.append(context)
        position = int(payload.get("position", 0))
        if position < 3:
            boto3.client("lambda").invoke(
                FunctionName=context.invoked_function_arn,
                InvocationType="Event",
                Payload=json.dumps({"position": position + 1}),
            )
        return {"position": position}

    arn = service.add_function("archiver", handler=handler, timeout_seconds=300).arn
    first = event(boto3.client("lambda"), "archiver", {})

    ran = service.run_pending()

    assert [i.payload for i in ran] == [{}, {"position": 1}, {"position": 2}, {"position": 3}]
    assert [i.result for i in ran] == [{"position": p} for p in range(4)]
    assert all(i.status == "succeeded" and i.invoked_arn == arn for i in ran)
    assert all(c.invoked_function_arn == arn and c.function_name == "archiver" for c in contexts)
    assert [c.aws_request_id for c in contexts] == [i.request_id for i in ran]
    assert ran[0].request_id == first["ResponseMetadata"]["RequestId"]
    assert 0 < contexts[0].get_remaining_time_in_millis() <= 300_000
    assert service.invocations() == ran and service.wait_idle(timeout=0)


def test_a_failed_event_invocation_is_retried_retry_attempts_times(service: LambdaService) -> None:
    attempts: list[Any] = []

    def flaky(payload: Any) -> str:
        attempts.append(payload)
        if len(attempts) < 2:
            raise RuntimeError("transient")
        return "ok"

    service.add_function("flaky", flaky, retry_attempts=1)
    service.add_function("broken", lambda e: 1 / 0, retry_attempts=2)
    client = lambda_client(service)
    event(client, "flaky", {"p": 1})
    event(client, "broken", {"p": 2})

    flaky_run, broken_run = service.run_pending()

    assert attempts == [{"p": 1}, {"p": 1}]
    assert (flaky_run.status, flaky_run.attempts, flaky_run.result, flaky_run.error) == ("succeeded", 2, "ok", None)
    assert (broken_run.status, broken_run.attempts) == ("failed", 3)
    assert (broken_run.error_type, broken_run.error) == ("ZeroDivisionError", "division by zero")


# -- FunctionName forms and the errors botocore parses ----------------------------------------------------------

ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:archiver"


@pytest.mark.parametrize(
    ("function_name", "qualifier", "invoked"),
    [
        ("archiver", None, ARN),
        (ARN, None, ARN),
        (f"{ACCOUNT}:function:archiver", None, ARN),
        (f"{ARN}:$LATEST", None, f"{ARN}:$LATEST"),
        ("archiver:live", None, f"{ARN}:live"),
        ("archiver", "live", f"{ARN}:live"),
        (f"{ARN}:live", "live", f"{ARN}:live"),
    ],
)
def test_the_function_name_may_be_a_name_a_partial_or_full_arn_with_a_qualifier(
    service: LambdaService, function_name: str, qualifier: str | None, invoked: str
) -> None:
    service.add_function("archiver", aliases=["live"])
    extra = {} if qualifier is None else {"Qualifier": qualifier}

    assert event(lambda_client(service), function_name, {"k": 1}, **extra)["StatusCode"] == 202

    [received] = service.invocations()
    assert (received.function, received.invoked_arn, received.payload) == ("archiver", invoked, {"k": 1})


@pytest.mark.parametrize(
    ("function_name", "qualifier", "region", "named"),
    [
        ("nope", None, REGION, f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:nope"),
        (f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:nope", None, REGION, "function:nope"),
        ("archiver:prod", None, REGION, f"{ARN}:prod"),  # no such alias
        ("archiver", "7", REGION, f"{ARN}:7"),  # no published versions
        (f"arn:aws:lambda:us-west-2:{ACCOUNT}:function:archiver", None, REGION, "us-west-2"),
        (f"arn:aws:lambda:{REGION}:444455556666:function:archiver", None, REGION, "444455556666"),
        ("archiver", None, "us-west-2", f"arn:aws:lambda:us-west-2:{ACCOUNT}:function:archiver"),
    ],
)
def test_a_function_not_in_this_account_and_region_is_resource_not_found(
    service: LambdaService, function_name: str, qualifier: str | None, region: str, named: str
) -> None:
    service.add_function("archiver")
    client = lambda_client(service, region)
    extra = {} if qualifier is None else {"Qualifier": qualifier}

    for invocation_type in ("Event", "DryRun", "RequestResponse"):
        with pytest.raises(client.exceptions.ResourceNotFoundException) as caught:
            client.invoke(FunctionName=function_name, InvocationType=invocation_type, Payload=b"{}", **extra)
        response = caught.value.response
        assert response["ResponseMetadata"]["HTTPStatusCode"] == 404
        assert response["Error"]["Message"].startswith("Function not found: arn:aws:lambda:")
        assert named in response["Error"]["Message"] and response["Type"] == "User"
    assert service.invocations() == []


def test_a_qualifier_that_disagrees_with_the_names_and_a_malformed_name_are_refused(service: LambdaService) -> None:
    service.add_function("archiver", aliases=["live", "next"])
    client = lambda_client(service)

    mismatch = error_of(lambda: event(client, "archiver:live", {}, Qualifier="next"))
    malformed = error_of(lambda: event(client, "archiver/../x", {}))

    assert mismatch.response["Error"]["Code"] == "InvalidParameterValueException"
    assert (malformed.response["Error"]["Code"], malformed.response["ResponseMetadata"]["HTTPStatusCode"]) == (
        "ValidationException",
        400,
    )
    assert service.invocations() == []


@pytest.mark.parametrize("payload", [b"not json", b'{"position": ', b"NaN", b'{"x": Infinity}', b"\xff\xfe{}"])
def test_a_payload_that_is_not_json_is_invalid_request_content(service: LambdaService, payload: bytes) -> None:
    service.add_function("archiver")
    client = lambda_client(service)

    for invocation_type in ("Event", "RequestResponse"):
        with pytest.raises(client.exceptions.InvalidRequestContentException) as caught:
            client.invoke(FunctionName="archiver", InvocationType=invocation_type, Payload=payload)
        assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        assert "Could not parse request body into json" in caught.value.response["Error"]["Message"]
    assert service.invocations() == []


def test_an_empty_payload_is_the_empty_object(service: LambdaService) -> None:
    service.add_function("archiver", lambda e: e)

    answer = lambda_client(service).invoke(FunctionName="archiver", InvocationType="Event")

    assert answer["StatusCode"] == 202
    assert [i.result for i in service.run_pending()] == [{}]


def test_an_event_payload_over_the_limit_is_request_too_large(service: LambdaService) -> None:
    service.add_function("archiver")
    client = lambda_client(service)
    at_limit = json.dumps("x" * (EVENT_PAYLOAD_LIMIT - 2)).encode()  # a JSON string of exactly the limit
    assert len(at_limit) == EVENT_PAYLOAD_LIMIT

    assert client.invoke(FunctionName="archiver", InvocationType="Event", Payload=at_limit)["StatusCode"] == 202
    with pytest.raises(client.exceptions.RequestTooLargeException) as caught:
        client.invoke(FunctionName="archiver", InvocationType="Event", Payload=at_limit[:-1] + b' "')
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413
    assert [len(json.dumps(i.payload)) for i in service.invocations()] == [EVENT_PAYLOAD_LIMIT]


def test_the_event_payload_limit_is_a_setting() -> None:
    with LambdaService(region=REGION, background=False, event_payload_limit=262_144) as svc:
        svc.add_function("archiver")
        client = lambda_client(svc)
        with pytest.raises(client.exceptions.RequestTooLargeException):
            event(client, "archiver", "x" * 262_144)
        assert svc.invocations() == []


def test_dry_run_is_204_and_neither_queues_nor_runs(service: LambdaService) -> None:
    ran: list[Any] = []
    service.add_function("archiver", ran.append)

    answer = lambda_client(service).invoke(FunctionName=ARN, InvocationType="DryRun", Payload=b"{}")

    assert answer["StatusCode"] == 204 and answer["Payload"].read() == b""
    assert service.invocations() == [] and service.run_pending() == [] and ran == []
    assert [(c.operation, c.status) for c in service.calls] == [("Invoke", 204)]


def test_an_unknown_invocation_type_is_a_validation_error(service: LambdaService) -> None:
    service.add_function("archiver")

    refused = error_of(
        lambda: lambda_client(service).invoke(FunctionName="archiver", InvocationType="Later", Payload=b"{}")
    )

    assert refused.response["Error"]["Code"] == "ValidationException"
    assert service.invocations() == []


# -- RequestResponse: run now, or throttled while the function is busy -------------------------------------------


def test_request_response_runs_now_and_answers_the_result_or_the_function_error(service: LambdaService) -> None:
    service.add_function("echo", lambda e: {"echo": e})
    service.add_function("fails", lambda e: {"present": 1}["missing"])
    client = lambda_client(service)

    ok = client.invoke(FunctionName="echo", Payload=b'{"a": [1, 2]}')
    failed = client.invoke(FunctionName="fails", InvocationType="RequestResponse", Payload=b"{}")

    assert ok["StatusCode"] == 200 and "FunctionError" not in ok and ok["ExecutedVersion"] == "$LATEST"
    assert json.loads(ok["Payload"].read()) == {"echo": {"a": [1, 2]}}
    assert failed["StatusCode"] == 200 and failed["FunctionError"] == "Unhandled"
    body = json.loads(failed["Payload"].read())
    assert (body["errorType"], body["errorMessage"]) == ("KeyError", "'missing'")
    assert body["requestId"] == failed["ResponseMetadata"]["RequestId"]
    kinds = [(i.function, i.invocation_type, i.status) for i in service.invocations()]
    assert kinds == [("echo", "RequestResponse", "succeeded"), ("fails", "RequestResponse", "failed")]


def test_request_response_while_the_function_runs_is_throttled(background: LambdaService) -> None:
    running, release = threading.Event(), threading.Event()

    def runner(payload: Any) -> None:
        running.set()
        release.wait(WAIT)

    background.add_function("archiver", runner)
    client = lambda_client(background)
    event(client, "archiver", {})
    assert running.wait(WAIT)

    with pytest.raises(client.exceptions.TooManyRequestsException) as caught:
        client.invoke(FunctionName="archiver", Payload=b"{}")
    release.set()

    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert caught.value.response["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"
    assert background.wait_idle(WAIT)
    assert [i.invocation_type for i in background.invocations()] == ["Event"]


# -- faults ------------------------------------------------------------------------------------------------------


def test_an_injected_fault_answers_lambdas_error_and_queues_nothing(service: LambdaService) -> None:
    service.add_function("archiver")
    service.faults.inject("Invoke", "throttle", times=1)
    service.faults.inject("Invoke", "internal", times=1)  # once the throttle has fired
    client = lambda_client(service)

    throttled = error_of(lambda: event(client, "archiver", {}))
    internal = error_of(lambda: event(client, "archiver", {}))
    event(client, "archiver", {"third": True})

    assert throttled.response["Error"]["Code"] == "TooManyRequestsException"
    assert throttled.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert internal.response["Error"]["Code"] == "ServiceException"
    assert [i.payload for i in service.invocations()] == [{"third": True}]
    assert [c.fault for c in service.calls] == ["throttle", "internal", None]


# -- the control API over HTTP, and the service as its own process --------------------------------------------------


def test_the_control_client_registers_functions_and_reads_the_invocations(background: LambdaService) -> None:
    control = LambdaServiceClient(background.endpoint_url, timeout=WAIT * 2)
    info = control.add_function("recorded", retry_attempts=1, aliases=["live"])
    client = lambda_client(background)

    event(client, info["arn"], {"position": 1})
    event(client, "recorded:live", {"position": 2})

    assert info == {
        "name": "recorded",
        "arn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:recorded",
        "retry_attempts": 1,
        "aliases": ["live"],
    }
    assert control.functions() == [info]
    assert control.wait_idle(WAIT)
    received = control.invocations("recorded")
    assert [(i.payload, i.status, i.result) for i in received] == [
        ({"position": 1}, "succeeded", None),
        ({"position": 2}, "succeeded", None),
    ]
    assert received == background.invocations()
    assert control.calls()["counts"] == {"Invoke": 2}
    with pytest.raises(LambdaControlError) as busy:
        control.run_pending()
    assert busy.value.status == 409

    control.reset_invocations()
    control.remove_function("recorded")
    assert control.invocations() == [] and control.functions() == []
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        event(client, "recorded", {})
    with pytest.raises(LambdaControlError) as unknown:
        control.remove_function("recorded")
    assert unknown.value.status == 404


def test_the_control_client_arms_faults(service: LambdaService) -> None:
    control = LambdaServiceClient(service.endpoint_url, timeout=WAIT * 2)
    control.add_function("archiver")
    control.add_fault({"operation": "Invoke", "kind": "access_denied", "times": 1})
    client = lambda_client(service)

    denied = error_of(lambda: event(client, "archiver", {}))
    event(client, "archiver", {})

    assert (denied.response["Error"]["Code"], denied.response["ResponseMetadata"]["HTTPStatusCode"]) == (
        "AccessDeniedException",
        403,
    )
    assert control.calls()["fired"] == {"Invoke:access_denied": 1}
    assert len(control.run_pending()) == 1
    control.reset_faults()
    control.reset_calls()
    assert control.calls()["total"] == 0


def test_python_m_local_lambda_service_runs_the_real_handler_in_a_worker() -> None:
    """The processes mode: the CLI's URL, a function registered over HTTP whose invocations run
    `archiver.handler.handler` in a warm subprocess (here without its settings: it fails as the Lambda would,
    with the ConfigError naming the variable), run on request with --no-background."""
    with tempfile.TemporaryDirectory() as tmp:
        process = ServerProcess(
            "lambda",
            [sys.executable, "-m", "local.lambda_service", "--region", REGION, "--no-background"],
            env={k: v for k, v in os.environ.items() if k not in SCRUBBED},
            log_dir=Path(tmp),
        )
        try:
            url = process.url(60)
            control = LambdaServiceClient(url, timeout=120)
            logs = Path(tmp) / "worker"
            control.add_function("archiver", worker_env={"AWS_DEFAULT_REGION": REGION}, log_dir=str(logs))
            assert event(lambda_client(url), "archiver", {"position": 0})["StatusCode"] == 202

            [ran] = control.run_pending()

            assert (ran.status, ran.error_type, ran.attempts) == ("failed", "FunctionError", 1)
            assert ran.error is not None and "ARCHIVE_TABLE_NAME" in ran.error
            assert "ARCHIVE_TABLE_NAME" in "".join(p.read_text() for p in logs.glob("*.log"))
            assert control.invocations() == [ran]
        finally:
            process.stop()
