"""EmulatorClient, the one client of the emulator's control API, against a real emulator on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from local.gls import ControlError, EmulatorClient, GameLiftStreamsEmulator
from tests.local.support import REGION, gls_client

WEST = "us-west-2"


@pytest.fixture
def now() -> list[float]:
    """The quota clock of the emulator fixture (monotonic seconds), moved by hand."""
    return [1_000.0]


@pytest.fixture
def emulator(now: list[float]) -> Iterator[GameLiftStreamsEmulator]:
    with GameLiftStreamsEmulator(seed=21, default_region=REGION, clock=lambda: now[0]) as emu:
        yield emu


@pytest.fixture
def client(emulator: GameLiftStreamsEmulator) -> EmulatorClient:
    return EmulatorClient(emulator.endpoint_url)


def get_args(arn: str) -> dict[str, str]:
    return {"Identifier": arn.split("/")[-2], "StreamSessionIdentifier": arn}


# -- sessions ----------------------------------------------------------------------------------------------


def test_seed_returns_the_arns_of_what_seed_sessions_makes_oldest_first(
    emulator: GameLiftStreamsEmulator, client: EmulatorClient
) -> None:
    arns = client.seed(200)

    twin = GameLiftStreamsEmulator(seed=21, default_region=REGION).seed_sessions(200)
    assert arns == [s["Arn"] for s in twin]  # the same realistic mix: 0.6 succeeded by default
    assert arns == [s["Arn"] for s in reversed(emulator.sessions(REGION))]  # listing is newest first
    assert 0 < len(emulator.succeeded_arns(REGION)) < 200


def test_seed_in_a_region_with_a_succeeded_fraction(emulator: GameLiftStreamsEmulator, client: EmulatorClient) -> None:
    succeeded = client.seed(20, WEST, succeeded_fraction=1.0)
    never = client.seed(10, WEST, succeeded_fraction=0.0)

    assert len(succeeded) == 20 and len(never) == 10
    assert all(f":{WEST}:" in arn for arn in succeeded + never)
    assert emulator.succeeded_arns(WEST) == set(succeeded)
    assert {s["Arn"] for s in emulator.sessions(WEST)} == set(succeeded + never)
    assert emulator.sessions(REGION) == []


def test_add_puts_fields_on_the_wire_and_returns_the_detail(
    emulator: GameLiftStreamsEmulator, client: EmulatorClient
) -> None:
    created = datetime(2026, 3, 4, 5, 6, 7, 891_000, tzinfo=UTC)
    detail = client.add(UserId="studio/qa/u-1", Description=None, CreatedAt=created)

    arn = detail["Arn"]
    assert f":{REGION}:" in arn and detail["UserId"] == "studio/qa/u-1"
    assert "Description" not in detail and "Description" not in emulator.get_session(arn)
    assert detail["CreatedAt"] == created.timestamp()  # as on the wire: epoch seconds
    assert detail["ExportFilesMetadata"]["Status"] == "SUCCEEDED"  # the default: archivable
    answer = gls_client(emulator).get_stream_session(**get_args(arn))
    assert answer["UserId"] == "studio/qa/u-1" and answer["CreatedAt"] == created

    west = client.add(WEST, Status="ACTIVE", ExportFilesMetadata={"Status": "PENDING"})
    assert f":{WEST}:" in west["Arn"] and west["Status"] == "ACTIVE"
    assert emulator.succeeded_arns() == {arn}


def test_add_refuses_a_seed_field(emulator: GameLiftStreamsEmulator, client: EmulatorClient) -> None:
    with pytest.raises(ValueError, match="seed"):
        client.add(seed=5)
    assert emulator.sessions() == []


def test_set_export_and_remove(emulator: GameLiftStreamsEmulator, client: EmulatorClient) -> None:
    arn = client.add(ExportFilesMetadata={"Status": "PENDING"})["Arn"]
    assert client.succeeded() == set()

    done = client.set_export(arn, "SUCCEEDED")
    assert done["ExportFilesMetadata"]["OutputUri"].endswith(f"-{arn.split('/')[-2]}-{arn.split('/')[-1]}.zip")
    assert client.succeeded() == {arn}
    failed = client.set_export(arn, "FAILED", output_uri="s3://exports/x.zip")
    assert failed["ExportFilesMetadata"]["Status"] == "FAILED"
    assert failed["ExportFilesMetadata"]["OutputUri"] == "s3://exports/x.zip"
    assert failed["LastUpdatedAt"] > done["LastUpdatedAt"]
    assert "ExportFilesMetadata" not in client.set_export(arn, None)
    assert emulator.get_session(arn).get("ExportFilesMetadata") is None

    client.remove(arn)
    with pytest.raises(gls_client(emulator).exceptions.ResourceNotFoundException):
        gls_client(emulator).get_stream_session(**get_args(arn))
    for unknown in (lambda: client.remove(arn), lambda: client.set_export(arn, "SUCCEEDED")):
        with pytest.raises(ControlError) as error:
            unknown()
        assert error.value.status == 404 and arn in error.value.payload["message"]


def test_succeeded_per_region_and_in_all(client: EmulatorClient) -> None:
    east = set(client.seed(5, REGION, succeeded_fraction=1.0))
    west = set(client.seed(3, WEST, succeeded_fraction=1.0))
    client.seed(4, WEST, succeeded_fraction=0.0)

    assert client.succeeded(REGION) == east
    assert client.succeeded(WEST) == west
    assert client.succeeded() == east | west
    assert client.succeeded("eu-central-1") == set()


# -- faults and configuration ----------------------------------------------------------------------------


def test_add_fault_arms_one_rule_and_rejects_a_bad_one(
    emulator: GameLiftStreamsEmulator, client: EmulatorClient
) -> None:
    client.add()
    client.add_fault({"operation": "ListStreamSessionsByAccount", "kind": "throttle", "times": 1})
    api = gls_client(emulator)
    with pytest.raises(api.exceptions.ThrottlingException):
        api.list_stream_sessions_by_account()
    assert api.list_stream_sessions_by_account()["Items"]

    for bad, words in [({"kind": "explode"}, "unknown fault kind"), ({"kind": "rate_limit"}, "missing")]:
        with pytest.raises(ControlError) as error:
            client.add_fault(bad)
        assert error.value.status == 400 and words in error.value.payload["message"]


def test_set_faults_replaces_rules_and_quotas(emulator: GameLiftStreamsEmulator, client: EmulatorClient) -> None:
    arn = client.add()["Arn"]
    client.add_fault({"kind": "rate_limit", "operation": "*", "per_second": 1, "burst": 1})
    client.add_fault({"kind": "base_latency", "operation": "*", "seconds": 0.01})
    api = gls_client(emulator)
    api.list_stream_sessions_by_account()
    with pytest.raises(api.exceptions.ThrottlingException):
        api.list_stream_sessions_by_account()  # the quota: one a second, and the clock stands still

    client.set_faults([{"operation": "GetStreamSession", "kind": "internal", "times": 1}])

    assert emulator.faults.base_latency == {}
    assert api.list_stream_sessions_by_account()["Items"]  # no quota any more (the clock has not moved)
    with pytest.raises(api.exceptions.InternalServerException):
        api.get_stream_session(**get_args(arn))
    assert api.get_stream_session(**get_args(arn))["Arn"] == arn
    client.set_faults([])
    assert emulator.faults.rules == []


def test_reset_faults_keeps_quotas_only_when_asked(emulator: GameLiftStreamsEmulator, client: EmulatorClient) -> None:
    client.add()
    client.add_fault({"kind": "rate_limit", "operation": "ListStreamSessionsByAccount", "per_second": 1, "burst": 1})
    client.add_fault({"kind": "base_latency", "operation": "*", "seconds": 0.01})
    client.add_fault({"operation": "GetStreamSession", "kind": "internal"})
    api = gls_client(emulator)
    api.list_stream_sessions_by_account()

    client.reset_faults(limits=False)
    assert emulator.faults.rules == [] and emulator.faults.base_latency == {"*": 0.01}
    with pytest.raises(api.exceptions.ThrottlingException):
        api.list_stream_sessions_by_account()  # the quota stayed

    client.reset_faults()
    assert emulator.faults.base_latency == {}
    assert api.list_stream_sessions_by_account()["Items"]


def test_config_turns_the_shifting_list_on_and_off(emulator: GameLiftStreamsEmulator, client: EmulatorClient) -> None:
    identity = {
        "account_id": emulator.account_id,
        "canary": emulator.canary,
        "export_s3_endpoint": None,
        "export_success_delay_ms": 0.0,
        "fail_exports": False,
    }
    assert client.config() == {"shift_on_page": False, **identity}
    assert client.config(shift_on_page=True) == {"shift_on_page": True, **identity}
    assert emulator.shift_on_page is True
    client.seed(12, succeeded_fraction=1.0)
    api = gls_client(emulator)
    first = api.list_stream_sessions_by_account(MaxResults=5)
    second = api.list_stream_sessions_by_account(MaxResults=5, NextToken=first["NextToken"])
    assert second["Items"][0]["Arn"] == first["Items"][-1]["Arn"]  # the list shifted by one under the cursor

    assert client.config(shift_on_page=False) == {"shift_on_page": False, **identity}
    assert emulator.shift_on_page is False


# -- the call log ------------------------------------------------------------------------------------------


def test_calls_and_reset_calls(emulator: GameLiftStreamsEmulator, client: EmulatorClient) -> None:
    arn = client.add()["Arn"]
    assert client.calls() == {"counts": {}, "total": 0, "fired": {}}  # control requests are not counted
    client.add_fault({"kind": "rate_limit", "operation": "GetStreamSession", "per_second": 1, "burst": 1})
    api = gls_client(emulator)
    api.list_stream_sessions_by_account()
    api.list_stream_sessions_by_account()
    api.get_stream_session(**get_args(arn))
    with pytest.raises(api.exceptions.ThrottlingException):
        api.get_stream_session(**get_args(arn))

    assert client.calls() == {
        "counts": {"ListStreamSessionsByAccount": 2, "GetStreamSession": 2},
        "total": 4,
        "fired": {"GetStreamSession:quota": 1},
    }
    client.reset_calls()
    assert client.calls() == {"counts": {}, "total": 0, "fired": {"GetStreamSession:quota": 1}}
    client.reset_faults()
    assert client.calls()["fired"] == {}


# -- the client itself -----------------------------------------------------------------------------------


def test_call_is_the_raw_route_and_errors_carry_status_and_payload(
    emulator: GameLiftStreamsEmulator, client: EmulatorClient
) -> None:
    assert client.call("POST", "/_emulator/sessions", {"seed": 2})["count"] == 2
    assert client.call("GET", "/_emulator/succeeded", {"region": REGION}) == {
        "arns": sorted(emulator.succeeded_arns(REGION))
    }
    with pytest.raises(ControlError) as error:
        client.call("GET", "/_emulator/nope")
    assert error.value.status == 404
    assert error.value.payload == {"message": "unknown control endpoint GET /_emulator/nope"}
    assert isinstance(error.value, RuntimeError) and "404" in str(error.value)


def test_the_url_may_end_in_a_slash_and_must_be_http(emulator: GameLiftStreamsEmulator) -> None:
    assert EmulatorClient(emulator.endpoint_url + "/").config()["shift_on_page"] is False
    for bad in ("file:///etc/passwd", "127.0.0.1:80"):
        with pytest.raises(ValueError, match="http"):
            EmulatorClient(bad)


def test_proxy_settings_are_ignored(emulator: GameLiftStreamsEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    for name in ("HTTP_PROXY", "http_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")  # nothing listens there: a proxied request would fail
    assert EmulatorClient(emulator.endpoint_url).seed(3, succeeded_fraction=1.0)
    assert len(emulator.succeeded_arns()) == 3
