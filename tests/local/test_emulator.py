"""The GameLift Streams emulator and the fault engine, driven by the real boto3 client over HTTP."""

from __future__ import annotations

import collections
import http.client
import itertools
import json
import math
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError, ConnectionClosedError, ParamValidationError, ReadTimeoutError

from local.faults import Decision, FaultPlan
from local.gls import ControlError, EmulatorClient, GameLiftStreamsEmulator, models
from local.gls.models import SUMMARY_FIELDS
from tests.local.support import REGION, gls_client


@pytest.fixture
def emulator() -> Iterator[GameLiftStreamsEmulator]:
    with GameLiftStreamsEmulator(seed=7, default_region=REGION) as emu:
        yield emu


def list_all(client: Any, page_size: int = 25, **filters: str) -> list[list[dict[str, Any]]]:
    paginator = client.get_paginator("list_stream_sessions_by_account")
    pages = paginator.paginate(**filters, PaginationConfig={"PageSize": page_size})
    return [page["Items"] for page in pages]


def error_code(info: pytest.ExceptionInfo[ClientError]) -> str:
    return str(info.value.response["Error"]["Code"])


def count_work(monkeypatch: pytest.MonkeyPatch) -> collections.Counter[str]:
    """Counts of the backend's per-session work: "matched" (a session tested against a listing filter, as
    building or updating a sort index does) and "summarised" (a session turned into a list item)."""
    work: collections.Counter[str] = collections.Counter()
    matches, summary = models.StoredSession.matches, models.summary

    def counted_matches(self: models.StoredSession, status: str | None, export: str | None) -> bool:
        work["matched"] += 1
        return matches(self, status, export)

    def counted_summary(detail: Any) -> dict[str, Any]:
        work["summarised"] += 1
        return summary(detail)

    monkeypatch.setattr(models.StoredSession, "matches", counted_matches)
    monkeypatch.setattr(models, "summary", counted_summary)
    return work


# -- listing --------------------------------------------------------------------------------------------


def test_paginator_returns_every_succeeded_session_once(emulator: GameLiftStreamsEmulator) -> None:
    emulator.seed_sessions(250)
    expected = emulator.succeeded_arns()
    assert 100 < len(expected) < 250  # the mix really mixes

    pages = list_all(gls_client(emulator), ExportFilesStatus="SUCCEEDED")

    arns = [item["Arn"] for page in pages for item in page]
    assert len(pages) >= 3
    assert len(arns) == len(set(arns)) == len(expected)
    assert set(arns) == expected
    assert emulator.call_counts()["ListStreamSessionsByAccount"] == len(pages)


def test_list_items_have_the_summary_shape_only(emulator: GameLiftStreamsEmulator) -> None:
    emulator.seed_sessions(40)
    items = [i for page in list_all(gls_client(emulator), page_size=100) for i in page]

    assert len(items) == 40
    for item in items:
        assert set(item) <= set(SUMMARY_FIELDS)
        assert "StreamGroupId" not in item and "SignalRequest" not in item
        if "ExportFilesMetadata" in item:
            assert set(item["ExportFilesMetadata"]) == {"Status"}  # no OutputUri, no StatusReason
        assert isinstance(item["CreatedAt"], datetime)
    created = [(i["CreatedAt"], i["Arn"]) for i in items]
    assert [c for c, _ in created] == sorted((c for c, _ in created), reverse=True)


def test_both_filters_together_and_each_alone(emulator: GameLiftStreamsEmulator) -> None:
    emulator.seed_sessions(300)
    client = gls_client(emulator)
    sessions = emulator.sessions()

    def expected(status: str | None, export: str | None) -> set[str]:
        return {
            s["Arn"]
            for s in sessions
            if (status is None or s["Status"] == status)
            and (export is None or s.get("ExportFilesMetadata", {}).get("Status") == export)
        }

    for status, export in [
        ("TERMINATED", "FAILED"),
        ("ERROR", None),
        (None, "PENDING"),
        ("ACTIVE", "PENDING"),
    ]:
        filters = {k: v for k, v in (("Status", status), ("ExportFilesStatus", export)) if v}
        listed = [i["Arn"] for page in list_all(client, page_size=20, **filters) for i in page]
        assert expected(status, export), filters
        assert len(listed) == len(set(listed))
        assert set(listed) == expected(status, export), filters


def test_max_results_is_validated_by_the_server(emulator: GameLiftStreamsEmulator) -> None:
    client = gls_client(emulator)
    with pytest.raises(client.exceptions.ValidationException):
        client.list_stream_sessions_by_account(MaxResults=101)  # botocore does not enforce the max
    # botocore enforces the min itself; with its validation off the server must still say no.
    with pytest.raises(ParamValidationError):
        client.list_stream_sessions_by_account(MaxResults=0)
    unvalidated = gls_client(emulator, parameter_validation=False)
    with pytest.raises(unvalidated.exceptions.ValidationException):
        unvalidated.list_stream_sessions_by_account(MaxResults=0)
    with pytest.raises(client.exceptions.ValidationException):
        client.list_stream_sessions_by_account(Status="NOT_A_STATUS")
    assert client.list_stream_sessions_by_account(MaxResults=100)["Items"] == []


def test_bad_or_foreign_next_token_is_a_validation_error(emulator: GameLiftStreamsEmulator) -> None:
    emulator.seed_sessions(30, succeeded_fraction=1.0)
    client = gls_client(emulator)
    token = client.list_stream_sessions_by_account(ExportFilesStatus="SUCCEEDED", MaxResults=5)["NextToken"]

    for bad in ["garbage!!", "e30=", token[:-4]]:
        with pytest.raises(client.exceptions.ValidationException):
            client.list_stream_sessions_by_account(ExportFilesStatus="SUCCEEDED", NextToken=bad)
    with pytest.raises(client.exceptions.ValidationException):  # minted for other filters
        client.list_stream_sessions_by_account(ExportFilesStatus="FAILED", NextToken=token)
    page = client.list_stream_sessions_by_account(ExportFilesStatus="SUCCEEDED", NextToken=token, MaxResults=5)
    assert len(page["Items"]) == 5


def test_keyset_pagination_tolerates_inserts_while_paging(emulator: GameLiftStreamsEmulator) -> None:
    emulator.seed_sessions(60, succeeded_fraction=1.0)
    before = emulator.succeeded_arns()
    client = gls_client(emulator)
    seen: list[str] = []
    kwargs: dict[str, Any] = {"ExportFilesStatus": "SUCCEEDED", "MaxResults": 10}
    while True:
        page = client.list_stream_sessions_by_account(**kwargs)
        seen += [i["Arn"] for i in page["Items"]]
        emulator.add_session()  # newest of all: lands before the cursor
        if "NextToken" not in page:
            break
        kwargs["NextToken"] = page["NextToken"]
    assert len(seen) == len(set(seen))
    assert set(seen) == before


def test_shift_on_page_repeats_the_last_item_on_the_next_page(emulator: GameLiftStreamsEmulator) -> None:
    emulator.seed_sessions(45, succeeded_fraction=1.0)
    before = emulator.succeeded_arns()
    emulator.shift_on_page = True

    pages = list_all(gls_client(emulator), page_size=10, ExportFilesStatus="SUCCEEDED")

    assert len(pages) >= 5
    for previous, following in itertools.pairwise(pages):
        assert previous[-1]["Arn"] == following[0]["Arn"]
    listed = [i["Arn"] for page in pages for i in page]
    assert len(listed) > len(set(listed))
    assert before <= set(listed)


# -- GetStreamSession -----------------------------------------------------------------------------------


def test_get_stream_session_by_arn_and_by_ids(emulator: GameLiftStreamsEmulator) -> None:
    stored = emulator.add_session()
    client = gls_client(emulator)
    arn = stored["Arn"]
    group_id, session_id = arn.split("/")[-2:]
    group_arn = f"arn:aws:gameliftstreams:{REGION}:111122223333:streamgroup/{group_id}"

    answers = [
        client.get_stream_session(Identifier=group_id, StreamSessionIdentifier=session_id),
        client.get_stream_session(Identifier=group_arn, StreamSessionIdentifier=arn),
        client.get_stream_session(Identifier=group_id, StreamSessionIdentifier=arn),
    ]
    for answer in answers:
        answer.pop("ResponseMetadata")
        assert answer == stored  # every field, timestamps to the millisecond
    assert answers[0]["ExportFilesMetadata"]["OutputUri"].startswith("s3://studio-exports/sessions/")
    assert answers[0]["ExportFilesMetadata"]["OutputUri"].endswith(f"-{group_id}-{session_id}.zip")
    assert emulator.calls[-1].params == {"Identifier": group_id, "StreamSessionIdentifier": arn}


def test_get_unknown_session_is_resource_not_found(emulator: GameLiftStreamsEmulator) -> None:
    stored = emulator.add_session()
    client = gls_client(emulator)
    with pytest.raises(client.exceptions.ResourceNotFoundException) as info:
        client.get_stream_session(Identifier="sg-000000000", StreamSessionIdentifier="NoSuchSession1")
    assert "NoSuchSession1" in info.value.response["Error"]["Message"]
    with pytest.raises(client.exceptions.ResourceNotFoundException):  # right session, wrong group
        client.get_stream_session(Identifier="sg-other", StreamSessionIdentifier=stored["Arn"])
    with pytest.raises(client.exceptions.ValidationException):
        client.get_stream_session(Identifier="sg 1", StreamSessionIdentifier="x")


def test_set_export_status_and_remove_session(emulator: GameLiftStreamsEmulator) -> None:
    pending = emulator.add_session(ExportFilesMetadata={"Status": "PENDING"})
    client = gls_client(emulator)
    assert pending["Arn"] not in emulator.succeeded_arns()

    emulator.set_export_status(pending["Arn"], "SUCCEEDED")

    listed = {i["Arn"] for p in list_all(client, ExportFilesStatus="SUCCEEDED") for i in p}
    assert pending["Arn"] in listed
    group_id, session_id = pending["Arn"].split("/")[-2:]
    detail = client.get_stream_session(Identifier=group_id, StreamSessionIdentifier=session_id)
    assert detail["ExportFilesMetadata"]["OutputUri"].endswith(".zip")
    emulator.remove_session(pending["Arn"])
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.get_stream_session(Identifier=group_id, StreamSessionIdentifier=session_id)
    assert list_all(client, ExportFilesStatus="SUCCEEDED") == [[]]


def test_overrides_put_raw_values_on_the_wire(emulator: GameLiftStreamsEmulator) -> None:
    weird = emulator.add_session(
        UserId="../../etc/passwd",
        Status="HIBERNATING",  # an enum value this botocore has never heard of
        Location="ünïcødé-区域",
        Description=None,  # missing
        Description2="x" * 5000,  # unknown member: botocore must ignore it
        AdditionalEnvironmentVariables={"API_KEY": "canary-123"},
        ExportFilesMetadata={"Status": "SUCCEEDED", "OutputUri": "not-a-uri"},
    )
    bad_arn = emulator.add_session(Arn="not-an-arn", StreamGroupId=None)
    client = gls_client(emulator)

    items = {i["Arn"]: i for p in list_all(client, ExportFilesStatus="SUCCEEDED") for i in p}
    assert items[weird["Arn"]]["Status"] == "HIBERNATING"
    assert items[weird["Arn"]]["Location"] == "ünïcødé-区域"
    assert "not-an-arn" in items and "StreamGroupId" not in bad_arn
    group_id, session_id = weird["Arn"].split("/")[-2:]
    detail = client.get_stream_session(Identifier=group_id, StreamSessionIdentifier=session_id)
    assert detail["UserId"] == "../../etc/passwd"
    assert "Description" not in detail and "Description2" not in detail
    assert detail["ExportFilesMetadata"]["OutputUri"] == "not-a-uri"
    assert detail["AdditionalEnvironmentVariables"] == {"API_KEY": "canary-123"}


def test_an_emulator_without_a_canary_gives_harmless_launch_args_only() -> None:
    [session] = GameLiftStreamsEmulator(seed=11, canary="").seed_sessions(1)
    assert session["AdditionalLaunchArgs"][:2] == ["-windowed", "-map"] and len(session["AdditionalLaunchArgs"]) == 3


def test_seeded_sessions_are_deterministic_and_carry_canaries() -> None:
    one = GameLiftStreamsEmulator(seed=11).seed_sessions(50)
    two = GameLiftStreamsEmulator(seed=11).seed_sessions(50)
    other = GameLiftStreamsEmulator(seed=12).seed_sessions(50)
    assert one == two and one != other
    for session in one:
        assert "glscanary" in session["SignalRequest"] and "glscanary" in session["SignalResponse"]
        group_id, session_id = session["Arn"].split("/")[-2:]
        assert session["StreamGroupId"] == group_id
        assert 1 <= len(session_id) <= 32 and session_id.isalnum()
        export = session.get("ExportFilesMetadata", {})
        assert ("OutputUri" in export) == (export.get("Status") == "SUCCEEDED")
    assert {s["Status"] for s in one} >= {"TERMINATED", "ERROR", "ACTIVE"}
    assert {s.get("ExportFilesMetadata", {}).get("Status") for s in one} == {
        "SUCCEEDED",
        "FAILED",
        "PENDING",
        None,
    }
    assert any("glscanary" in v for s in one for v in s["AdditionalEnvironmentVariables"].values())
    for session in one:  # every place archiver.redaction must hide a value holds the canary
        args = session["AdditionalLaunchArgs"]
        end = args.index("--")
        assert args[0] == "-windowed" and "-nosound" in args[:end]
        assert any(a.startswith("--auth-token=glscanary") for a in args[:end])
        assert any(a.startswith("-ini:") and "glscanary" in a for a in args[:end])
        after_flag = args.index("-token") + 1
        assert "glscanary" in args[after_flag] and "glscanary" in args[after_flag + 1]  # then a positional
        assert args[end + 1 :] and all("glscanary" in a for a in args[end + 1 :])
        assert any(a.startswith("--glscanary") for a in args[end + 1 :])  # looks like a flag, after --
    assert len({s["Location"] for s in one}) >= 4 and len({s["ApplicationArn"] for s in one}) >= 2


def test_ten_thousand_sessions_list_without_per_page_scans(monkeypatch: pytest.MonkeyPatch) -> None:
    emulator = GameLiftStreamsEmulator(seed=3)
    work = count_work(monkeypatch)
    emulator.seed_sessions(10_000)
    assert work == {}  # seeding keeps no index up to date session by session: each is built once, later
    expected = emulator.succeeded_arns()
    assert work == {"matched": 10_000}  # the ExportFilesStatus=SUCCEEDED index: one pass over the sessions

    listed: list[str] = []
    pages = 0
    query = {"ExportFilesStatus": "SUCCEEDED", "MaxResults": "100"}
    while True:
        page = emulator.list_sessions(REGION, query)
        pages += 1
        listed += [i["Arn"] for i in page["Items"]]
        if "NextToken" not in page:
            break
        query["NextToken"] = page["NextToken"]

    assert len(listed) == len(set(listed)) == len(expected) and set(listed) == expected
    assert pages == math.ceil(len(expected) / 100) >= 50
    # Every page reuses that index and touches only its own items: a listing that scanned or re-sorted
    # the sessions per page would match them again on every page.
    assert work == {"matched": 10_000, "summarised": len(expected)}


@pytest.mark.slow
def test_hundred_thousand_sessions_in_a_thousand_pages_over_http(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    if "slow" not in (request.config.option.markexpr or ""):
        pytest.skip("~15 s: run with -m slow")
    with GameLiftStreamsEmulator(seed=4) as emulator:
        work = count_work(monkeypatch)
        emulator.seed_sessions(100_000)
        assert work == {}
        conn = http.client.HTTPConnection("127.0.0.1", emulator.port, timeout=30)
        token, listed, page_work = "", 0, []
        while True:
            before = collections.Counter(work)
            conn.request("GET", "/streamsessions?MaxResults=100" + (f"&NextToken={token}" if token else ""))
            page = json.loads(conn.getresponse().read())
            page_work.append(work - before)
            listed += len(page["Items"])
            token = page.get("NextToken", "")
            if not token:
                break
        conn.close()
    assert listed == 100_000 and len(page_work) == 1_000
    assert page_work[0] == {"matched": 100_000, "summarised": 100}  # the first page builds the index, once
    assert all(w == {"summarised": 100} for w in page_work[1:])  # no page costs more the deeper it is


# -- faults through HTTP --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "exception"),
    [
        ("throttle", "ThrottlingException"),
        ("internal", "InternalServerException"),
        ("access_denied", "AccessDeniedException"),
        ("not_found", "ResourceNotFoundException"),
    ],
)
def test_injected_faults_raise_the_modeled_exceptions(
    emulator: GameLiftStreamsEmulator, kind: str, exception: str
) -> None:
    stored = emulator.add_session()
    client = gls_client(emulator)
    emulator.faults.inject("*", kind, times=2)

    with pytest.raises(getattr(client.exceptions, exception)) as listed:
        client.list_stream_sessions_by_account()
    with pytest.raises(getattr(client.exceptions, exception)):
        client.get_stream_session(Identifier=stored["StreamGroupId"], StreamSessionIdentifier=stored["Arn"])

    assert error_code(listed) == exception
    assert listed.value.response["ResponseMetadata"]["RequestId"]
    assert client.list_stream_sessions_by_account()["Items"]  # times=2 used up
    assert emulator.faults.fired[("ListStreamSessionsByAccount", kind)] == 1
    assert [c.fault for c in emulator.calls] == [kind, kind, None]


def test_validation_fault_hits_only_requests_with_a_next_token(emulator: GameLiftStreamsEmulator) -> None:
    emulator.seed_sessions(12, succeeded_fraction=1.0)
    client = gls_client(emulator)
    emulator.faults.inject("ListStreamSessionsByAccount", "validation", times=1)

    first = client.list_stream_sessions_by_account(MaxResults=5)
    with pytest.raises(client.exceptions.ValidationException):
        client.list_stream_sessions_by_account(MaxResults=5, NextToken=first["NextToken"])
    assert client.list_stream_sessions_by_account(MaxResults=5, NextToken=first["NextToken"])["Items"]


def test_standard_retries_ride_through_transient_faults(emulator: GameLiftStreamsEmulator) -> None:
    stored = emulator.add_session()
    client = gls_client(emulator, attempts=3)
    emulator.faults.inject("ListStreamSessionsByAccount", "throttle", times=1)
    emulator.faults.inject("GetStreamSession", "internal", times=2)

    assert client.list_stream_sessions_by_account()["Items"]
    detail = client.get_stream_session(Identifier=stored["StreamGroupId"], StreamSessionIdentifier=stored["Arn"])

    assert detail["Arn"] == stored["Arn"]
    assert emulator.call_counts() == {"ListStreamSessionsByAccount": 2, "GetStreamSession": 3}


def test_reset_drops_the_connection_and_is_retried(emulator: GameLiftStreamsEmulator) -> None:
    emulator.add_session()
    emulator.faults.inject("ListStreamSessionsByAccount", "reset", times=1)
    with pytest.raises(ConnectionClosedError):
        gls_client(emulator).list_stream_sessions_by_account()
    emulator.faults.inject("ListStreamSessionsByAccount", "reset", times=1)
    assert gls_client(emulator, attempts=2).list_stream_sessions_by_account()["Items"]


def test_timeout_holds_a_response_that_still_takes_effect(emulator: GameLiftStreamsEmulator) -> None:
    emulator.add_session()
    emulator.faults.inject("ListStreamSessionsByAccount", "timeout", seconds=30, times=1)
    impatient = gls_client(emulator, read_timeout=0.3)
    with pytest.raises(ReadTimeoutError):
        impatient.list_stream_sessions_by_account()
    # Served, but held: nothing has been answered yet. Woken, the handler answers 200 to the gone client.
    assert emulator.call_counts() == {}
    emulator.faults.wake()
    assert emulator.log.wait_for("ListStreamSessionsByAccount", 1)
    assert [c.status for c in emulator.calls] == [200]
    assert emulator.faults.fired == {("ListStreamSessionsByAccount", "timeout"): 1}
    assert gls_client(emulator).list_stream_sessions_by_account()["Items"]  # times=1 used up


def test_latency_is_slept_before_serving_and_a_hold_before_answering() -> None:
    slept: list[float] = []
    with GameLiftStreamsEmulator(seed=7, default_region=REGION, sleep=slept.append) as emulator:
        stored = emulator.add_session()
        client = gls_client(emulator)
        emulator.faults.base_latency["ListStreamSessionsByAccount"] = 0.2
        emulator.faults.inject("ListStreamSessionsByAccount", "latency", seconds=0.1, times=1)
        emulator.faults.inject("ListStreamSessionsByAccount", "timeout", seconds=0.5, times=1)

        assert client.list_stream_sessions_by_account()["Items"]
        assert slept == [pytest.approx(0.3), 0.5]  # base + injected latency, then the held response
        assert client.list_stream_sessions_by_account()["Items"]
        client.get_stream_session(Identifier=stored["StreamGroupId"], StreamSessionIdentifier=stored["Arn"])

    assert slept == [pytest.approx(0.3), 0.5, pytest.approx(0.2)]  # the rules used up; GetStreamSession: none
    assert emulator.faults.fired == {
        ("ListStreamSessionsByAccount", "latency"): 1,
        ("ListStreamSessionsByAccount", "timeout"): 1,
    }


def test_quota_throttles_above_the_rate() -> None:
    now = [1_000.0]
    with GameLiftStreamsEmulator(seed=7, default_region=REGION, clock=lambda: now[0]) as emulator:
        stored = emulator.add_session()
        client = gls_client(emulator)
        emulator.faults.rate_limit("ListStreamSessionsByAccount", per_second=2, burst=2)

        def burst(n: int) -> list[str]:
            outcomes = []
            for _ in range(n):
                try:
                    client.list_stream_sessions_by_account()
                    outcomes.append("ok")
                except client.exceptions.ThrottlingException:
                    outcomes.append("throttled")
            return outcomes

        assert burst(10) == ["ok"] * 2 + ["throttled"] * 8  # the burst, then nothing until tokens come back
        now[0] += 1.0  # two tokens back, no more
        assert burst(3) == ["ok", "ok", "throttled"]
        assert emulator.faults.fired[("ListStreamSessionsByAccount", "quota")] == 9
        assert [c.fault for c in emulator.calls].count("quota") == 9
        # Other operations have their own bucket.
        client.get_stream_session(Identifier=stored["StreamGroupId"], StreamSessionIdentifier=stored["Arn"])


def test_regions_are_isolated(emulator: GameLiftStreamsEmulator) -> None:
    emulator.seed_sessions(30, REGION, succeeded_fraction=1.0)
    emulator.seed_sessions(20, "us-west-2", succeeded_fraction=1.0)
    east, west = gls_client(emulator, REGION), gls_client(emulator, "us-west-2")

    east_arns = {i["Arn"] for p in list_all(east) for i in p}
    west_arns = {i["Arn"] for p in list_all(west) for i in p}

    assert east_arns == emulator.succeeded_arns(REGION) and len(east_arns) == 30
    assert west_arns == emulator.succeeded_arns("us-west-2") and len(west_arns) == 20
    assert all(":us-west-2:" in arn for arn in west_arns)
    west_one = sorted(west_arns)[0]
    with pytest.raises(east.exceptions.ResourceNotFoundException):
        east.get_stream_session(Identifier=west_one.split("/")[-2], StreamSessionIdentifier=west_one)
    assert {c.region for c in emulator.calls} == {REGION, "us-west-2"}


@pytest.mark.parametrize("when", ["before", "after"])
def test_kill_rule_sigkills_the_process(emulator: GameLiftStreamsEmulator, when: str) -> None:
    stored = emulator.add_session()
    child = subprocess.Popen(["sleep", "60"])
    try:
        emulator.faults.kill(child.pid, "GetStreamSession", nth=2, when=when)
        client = gls_client(emulator)
        get = {"Identifier": stored["StreamGroupId"], "StreamSessionIdentifier": stored["Arn"]}
        client.list_stream_sessions_by_account()
        client.get_stream_session(**get)
        assert child.poll() is None  # not yet: nth=2

        if when == "before":
            with pytest.raises(ConnectionClosedError):  # not served at all
                client.get_stream_session(**get)
        else:
            assert client.get_stream_session(**get)["Arn"] == stored["Arn"]  # served in full, then the kill

        assert child.wait(timeout=10) == -signal.SIGKILL
        assert emulator.faults.fired[("GetStreamSession", "kill")] == 1
    finally:
        child.kill()
        child.wait()


# -- the HTTP control API and the CLI -------------------------------------------------------------------


def test_control_api(emulator: GameLiftStreamsEmulator) -> None:
    control = EmulatorClient(emulator.endpoint_url)  # its raw payloads here; its typed methods in their own tests
    seeded = control.call("POST", "/_emulator/sessions", {"seed": 20, "succeeded_fraction": 1.0})
    assert seeded["count"] == 20 and set(seeded["arns"]) == emulator.succeeded_arns()
    one = control.call("POST", "/_emulator/sessions", {"region": "eu-central-1", "UserId": "u1"})
    assert ":eu-central-1:" in one["Arn"] and isinstance(one["CreatedAt"], float)
    control.call("POST", "/_emulator/export-status", {"arn": one["Arn"], "status": "FAILED"})
    assert emulator.get_session(one["Arn"])["ExportFilesMetadata"]["Status"] == "FAILED"
    rule = {"operation": "ListStreamSessionsByAccount", "kind": "throttle", "times": 1}
    assert control.call("POST", "/_emulator/faults", rule) == {}
    with pytest.raises(ControlError) as bogus:
        control.call("POST", "/_emulator/faults", {"kind": "bogus"})
    assert bogus.value.status == 400

    client = gls_client(emulator)
    with pytest.raises(client.exceptions.ThrottlingException):
        client.list_stream_sessions_by_account()
    calls = control.call("GET", "/_emulator/calls")
    assert calls["counts"] == {"ListStreamSessionsByAccount": 1}
    assert calls["fired"] == {"ListStreamSessionsByAccount:throttle": 1}
    assert control.call("GET", "/_emulator/succeeded")["arns"] == sorted(emulator.succeeded_arns())
    with pytest.raises(ControlError) as unknown:
        control.call("POST", "/_emulator/nope", {})
    assert unknown.value.status == 404


def test_unknown_route_is_a_clear_404(emulator: GameLiftStreamsEmulator) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", emulator.port, timeout=10)
    conn.request("GET", "/applications")
    response = conn.getresponse()
    body = json.loads(response.read())
    conn.close()
    assert response.status == 404
    assert response.getheader("x-amzn-ErrorType") == "UnknownOperationException"
    assert response.getheader("x-amzn-RequestId")
    assert "ListStreamSessionsByAccount" in body["message"] and body["Message"] == body["message"]


def test_cli_serves_until_sigterm() -> None:
    args = ["--port", "0", "--seed", "42", "--sessions", "30", "--rate", "50", "--latency-ms", "5"]
    process = subprocess.Popen([sys.executable, "-m", "local.gls", *args], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        client = gls_client(url)
        assert len(client.list_stream_sessions_by_account(MaxResults=100)["Items"]) == 30
        assert EmulatorClient(url).calls()["counts"] == {"ListStreamSessionsByAccount": 1}
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        process.kill()
        process.wait()


# -- the fault engine alone -----------------------------------------------------------------------------


def test_fault_plan_counting_is_exact() -> None:
    plan = FaultPlan(seed=1)
    plan.inject("PutItem", "internal", every=3, after=2, times=2)
    fired = [plan.decide("PutItem", REGION).fault for _ in range(15)]
    # matches 3..15 are n=1..13 after `after`; every 3rd (n=3, 6) fires, then times=2 is used up.
    assert [i for i, f in enumerate(fired) if f] == [4, 7]
    assert plan.decide("GetItem", REGION).fault is None
    assert plan.fired == {("PutItem", "internal"): 2}


def test_fault_plan_probability_is_seeded() -> None:
    def run(seed: int) -> list[str | None]:
        plan = FaultPlan(seed=seed)
        plan.inject("*", "throttle", probability=0.3)
        return [plan.decide("GetStreamSession", REGION).fault for _ in range(200)]

    assert run(5) == run(5) != run(6)
    assert 30 < run(5).count("throttle") < 90


def test_fault_plan_region_latency_and_rules() -> None:
    plan = FaultPlan()
    plan.inject("*", "throttle", region="us-west-2")
    plan.inject("*", "latency", seconds=0.5)
    plan.base_latency["*"] = 0.1
    east = plan.decide("GetStreamSession", REGION)
    west = plan.decide("GetStreamSession", "us-west-2")
    assert east.fault is None and east.delay == pytest.approx(0.6)
    assert west.fault == "throttle"
    with pytest.raises(ValueError, match="unknown fault kind"):
        plan.inject("*", "explode")
    plan.clear()
    cleared = plan.decide("GetStreamSession", REGION)  # no rule, no latency; a later generation (clear bumps it)
    assert cleared == Decision("GetStreamSession", REGION, generation=cleared.generation) and cleared.generation > 0


def test_rate_limit_is_a_token_bucket_per_operation_and_region() -> None:
    now = [100.0]
    plan = FaultPlan(clock=lambda: now[0])
    plan.rate_limit("*", per_second=20, burst=20)

    def burst(operation: str, region: str, n: int) -> int:
        return sum(plan.decide(operation, region).fault == "throttle" for _ in range(n))

    assert burst("GetStreamSession", REGION, 25) == 5
    assert burst("ListStreamSessionsByAccount", REGION, 20) == 0  # its own bucket
    assert burst("GetStreamSession", "us-west-2", 20) == 0  # and per Region
    now[0] += 0.5  # 10 tokens back
    assert burst("GetStreamSession", REGION, 12) == 2


def test_kill_hook_without_http() -> None:
    killed: list[int] = []
    plan = FaultPlan(killer=killed.append)
    plan.kill(4242, "PutObject", nth=2, when="after")
    plan.kill(4343, "*", nth=3)
    first = plan.decide("PutObject", REGION)
    second = plan.decide("PutObject", REGION)
    assert first.kill_after == () and second.kill_after == (4242,)
    assert killed == []  # "after" waits for the server's after_response
    plan.after_response(second)
    assert killed == [4242]
    third = plan.decide("GetObject", REGION)
    assert third.killed_before and third.fault == "reset" and killed == [4242, 4343]


def test_an_after_kill_whose_response_outlives_the_plan_kills_no_one() -> None:
    """A response held past its run (a "timeout" the client gave up on) is flushed after the plan was cleared
    for the next run: its "after" kill must not kill the worker in that next run."""
    killed: list[int] = []
    plan = FaultPlan(killer=killed.append)
    plan.kill(4242, "PutItem", when="after")
    held = plan.decide("PutItem", REGION)
    assert held.kill_after == (4242,)
    plan.clear()  # the run ended; the next one starts with a clean plan
    plan.after_response(held)
    assert killed == [] and plan.fired[("PutItem", "kill")] == 0
    plan.kill(4242, "PutItem", when="after")  # armed again: a response decided now still kills
    current = plan.decide("PutItem", REGION)
    plan.after_response(current)
    assert killed == [4242]


def test_now_is_not_used_for_seeded_timestamps() -> None:
    session = GameLiftStreamsEmulator(seed=1).seed_sessions(1)[0]
    assert session["CreatedAt"] < datetime(2026, 11, 27, 18, 4, 5, tzinfo=UTC)
