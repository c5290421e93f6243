"""The local stack in both modes: what it starts, the resources it creates, the clients and environment it
hands out, and that stopping it leaves no thread, port or process behind."""

from __future__ import annotations

import functools
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from archiver.records import LEDGER_PARTITION_KEY, SCHEMA_VERSION, object_key, parse_session_arn
from local.gls import GameLiftStreamsEmulator
from local.stack import LocalStack, archived_item, create_archive_resources
from local.stack.resources import PRELOAD_CREATED_AT
from tests.local.support import REGION, boto_client, gls_client

TABLE = "stack-ledger"
BUCKET = "stack-archive-bucket"


@pytest.fixture(scope="module")
def processes() -> Iterator[LocalStack]:
    """Every server in its own process, S3 on a moto of its own: what the benchmark runs on."""
    with LocalStack(seed=6, region=REGION, processes=True, separate_s3_moto=True, backend_latency_ms=10) as local:
        local.create_archive_resources(TABLE, BUCKET)
        yield local


def _closed(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return True
    return False


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def assert_archive_resources(stack: LocalStack, table: str = TABLE, bucket: str = BUCKET) -> None:
    """Configured as the CDK stack configures them (read straight from moto)."""
    ddb, s3 = stack.client("dynamodb", direct=True), stack.client("s3", direct=True)
    described = ddb.describe_table(TableName=table)["Table"]
    assert described["KeySchema"] == [{"AttributeName": LEDGER_PARTITION_KEY, "KeyType": "HASH"}]
    assert described["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert described["SSEDescription"]["Status"] == "ENABLED"
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert all(s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"].values())
    assert s3.get_bucket_location(Bucket=bucket)["LocationConstraint"] == REGION


def assert_preloads_only_what_it_is_given(stack: LocalStack, *, seeded: int, preloaded: int) -> list[str]:
    """`preload_ledger` of the first `preloaded` of `seeded` sessions: the archiver's item for each, none
    for the next one (read straight from moto). The seeded ARNs."""
    arns = stack.gls.seed(seeded, succeeded_fraction=1.0)

    assert stack.preload_ledger(TABLE, arns[:preloaded]) == preloaded

    ddb = stack.client("dynamodb", direct=True)
    for arn in arns[:preloaded]:
        assert ddb.get_item(TableName=TABLE, Key={LEDGER_PARTITION_KEY: {"S": arn}})["Item"] == archived_item(arn)
    assert "Item" not in ddb.get_item(TableName=TABLE, Key={LEDGER_PARTITION_KEY: {"S": arns[preloaded]}})
    return arns


# -- create_archive_resources ------------------------------------------------------------------------


def test_create_archive_resources_on_a_bare_moto(threads: LocalStack) -> None:
    create_archive_resources(threads.moto_url, "bare-ledger", "bare-archive-bucket", region=REGION)
    assert_archive_resources(threads, "bare-ledger", "bare-archive-bucket")
    assert threads.faults.calls() == {}  # setup goes straight to moto, past the proxy


def test_create_archive_resources_in_us_east_1_has_no_location_constraint(threads: LocalStack) -> None:
    create_archive_resources(threads.moto_url, "east-ledger", "east-archive-bucket", region="us-east-1")
    s3 = boto_client("s3", threads.moto_url, region="us-east-1")
    assert s3.get_bucket_location(Bucket="east-archive-bucket")["LocationConstraint"] is None


def test_archived_items_are_what_the_archiver_writes(threads: LocalStack) -> None:
    arn = "arn:aws:gameliftstreams:us-east-2:111122223333:streamsession/sg-abc123/s-xyz789"
    parsed = parse_session_arn(arn)
    assert parsed is not None
    assert archived_item(arn) == {
        LEDGER_PARTITION_KEY: {"S": arn},
        "s3_key": {"S": object_key("sessions/", parsed, PRELOAD_CREATED_AT)},
        "schema_version": {"S": str(SCHEMA_VERSION)},
    }
    with pytest.raises(ValueError, match="not a stream-session ARN"):
        archived_item("arn:aws:s3:::bucket")


# -- threads mode ------------------------------------------------------------------------------------


def test_threads_mode_hands_out_the_servers_and_their_control_clients(fresh: LocalStack) -> None:
    fresh.gls.seed(4, succeeded_fraction=1.0)
    fresh.faults.inject("PutItem", "internal", times=1)

    assert len(fresh.emulator.succeeded_arns()) == 4  # the same emulator, by object and over HTTP
    assert [r.kind for r in fresh.proxy.faults.rules] == ["internal"]
    assert fresh.store_url == fresh.proxy.endpoint_url and fresh.gls_url == fresh.emulator.endpoint_url


def test_options_reach_the_servers_in_threads_mode() -> None:
    slept: list[float] = []
    frozen = functools.partial(GameLiftStreamsEmulator, clock=lambda: 0.0, sleep=slept.append)
    with LocalStack(
        seed=1, gls_quota=20.0, gls_latency_ms=40.0, backend_latency_ms=10.0, emulator_factory=frozen
    ) as local:
        gls = gls_client(local.gls_url)
        for _ in range(20):  # the quota's burst is its rate: 20 calls at one instant pass, the 21st does not
            gls.list_stream_sessions_by_account()
        with pytest.raises(ClientError) as error:
            gls.list_stream_sessions_by_account()

        assert error.value.response["Error"]["Code"] == "ThrottlingException"
        assert slept == [0.04] * 21  # the latency, on every call
        assert local.faults.plan()["base_latency"] == {"*": 0.01}


def test_preload_puts_archived_items_into_the_ledger(fresh: LocalStack) -> None:
    assert_preloads_only_what_it_is_given(fresh, seeded=5, preloaded=3)


def test_a_stack_on_a_given_moto_shares_its_data_but_not_its_faults(fresh: LocalStack) -> None:
    with LocalStack(seed=2, region=REGION, moto_url=fresh.moto_url) as other:
        other.faults.inject("*", "internal")
        fresh.client("s3").put_object(Bucket=BUCKET, Key="shared", Body=b"1")

        assert other.moto_url == fresh.moto_url and other.store_url != fresh.store_url
        assert other.client("s3", direct=True).get_object(Bucket=BUCKET, Key="shared")["Body"].read() == b"1"
        with pytest.raises(ClientError):
            other.client("s3").get_object(Bucket=BUCKET, Key="shared")
        with pytest.raises(RuntimeError, match="moto this stack started"):
            other.preload_ledger(TABLE, [])
    # Stopping it left the shared moto serving.
    assert fresh.client("s3").get_object(Bucket=BUCKET, Key="shared")["Body"].read() == b"1"


def test_a_stack_without_a_proxy_stores_straight_into_moto() -> None:
    with LocalStack(seed=3, fault_proxy=False) as local:
        assert local.store_url == local.moto_url
        assert local.aws_env()["AWS_ENDPOINT_URL_S3"] == local.moto_url
        with pytest.raises(RuntimeError, match="no fault proxy"):
            local.faults  # noqa: B018 - the property raises


def test_emulator_factory_builds_the_emulator(fresh: LocalStack) -> None:
    built: list[dict[str, Any]] = []

    class Recording(GameLiftStreamsEmulator):
        def __init__(self, **kwargs: Any) -> None:
            built.append(kwargs)
            super().__init__(**kwargs)

    with LocalStack(seed=8, region=REGION, moto_url=fresh.moto_url, emulator_factory=Recording) as local:
        assert isinstance(local.emulator, Recording)
        assert built == [{"seed": 8, "default_region": REGION}]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"processes": True, "emulator_factory": GameLiftStreamsEmulator}, "threads mode"),
        ({"separate_s3_moto": True}, "processes mode"),
        ({"gls_quota": 0.0}, "gls_quota"),
    ],
)
def test_impossible_options_are_refused(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LocalStack(**options)


def test_env_points_plain_boto3_at_the_stack(fresh: LocalStack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_PROFILE", "production")
    env = fresh.env()
    assert "AWS_PROFILE" not in env
    assert env["AWS_ENDPOINT_URL_S3"] == env["AWS_ENDPOINT_URL_DYNAMODB"] == fresh.store_url
    assert env["AWS_ENDPOINT_URL_GAMELIFTSTREAMS"] == fresh.gls_url
    assert env["AWS_DEFAULT_REGION"] == env["AWS_REGION"] == REGION

    fresh.apply_env(monkeypatch)
    fresh.gls.add()
    assert "AWS_PROFILE" not in os.environ
    boto3.client("s3").head_bucket(Bucket=BUCKET)  # no endpoint, no credentials given: all from env
    boto3.client("dynamodb").describe_table(TableName=TABLE)
    assert boto3.client("gameliftstreams").list_stream_sessions_by_account()["Items"]
    assert fresh.faults.calls() == {"HeadBucket": 1, "DescribeTable": 1}
    assert fresh.gls.calls()["counts"] == {"ListStreamSessionsByAccount": 1}


def test_apply_env_in_os_environ_is_undone_by_restore_env(fresh: LocalStack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_PROFILE", "production")
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)

    fresh.apply_env()
    assert os.environ["AWS_ENDPOINT_URL_S3"] == fresh.store_url and "AWS_PROFILE" not in os.environ
    fresh.restore_env()

    assert "AWS_ENDPOINT_URL_S3" not in os.environ and os.environ["AWS_PROFILE"] == "production"


def test_env_works_for_a_subprocess(fresh: LocalStack) -> None:
    fresh.gls.add()
    script = (
        "import boto3; "
        "print(len(boto3.client('gameliftstreams').list_stream_sessions_by_account()['Items'])); "
        f"boto3.client('s3').put_object(Bucket='{BUCKET}', Key='from-child', Body=b'1')"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], env=fresh.env(), capture_output=True, text=True, timeout=60, check=True
    )
    assert int(out.stdout.strip()) >= 1
    assert fresh.faults.calls() == {"PutObject": 1}


def test_threads_mode_resets_and_stops_clean() -> None:
    before = {t.ident for t in threading.enumerate()}
    with LocalStack(seed=9) as local:
        ports = [local.proxy.port, local.emulator.port, _port(local.moto_url)]
        local.create_archive_resources("table-one", "bucket-one")
        local.client("s3").put_object(Bucket="bucket-one", Key="x", Body=b"1")
        local.emulator.seed_sessions(5)
        local.faults.inject("*", "internal")

        local.reset_data()

        s3 = local.client("s3")
        assert s3.list_objects_v2(Bucket="bucket-one").get("KeyCount") == 0  # recreated, empty
        assert local.emulator.sessions() == []
        assert local.faults.calls() == {"ListObjectsV2": 1}
    # A request thread of moto's (a wake-up connection of its stop) may still be finishing: it must end, soon.
    leftover = [thread for thread in threading.enumerate() if thread.ident not in before]
    for thread in leftover:
        thread.join(timeout=10)
    assert [thread.name for thread in leftover if thread.is_alive()] == []
    assert all(_closed(port) for port in ports)
    with pytest.raises(RuntimeError, match="not started"):
        local.store_url  # noqa: B018 - the property raises


# -- processes mode ----------------------------------------------------------------------------------


def test_processes_mode_runs_each_server_in_its_own_process(processes: LocalStack) -> None:
    pids = processes.pids
    assert set(pids) == {"moto", "moto-s3", "gls", "proxy", "lambda"}
    assert len(set(pids.values())) == 5 and os.getpid() not in pids.values()
    with pytest.raises(RuntimeError, match=r"use \.gls"):
        processes.emulator  # noqa: B018 - the property raises
    with pytest.raises(RuntimeError, match=r"use \.faults"):
        processes.proxy  # noqa: B018 - the property raises
    with pytest.raises(RuntimeError, match=r"use \.lambdas"):
        processes.lambda_service  # noqa: B018 - the property raises
    assert processes.lambdas.functions() == []


def test_processes_mode_creates_the_resources_on_its_motos(processes: LocalStack) -> None:
    assert_archive_resources(processes)
    # The bucket lives on the S3 moto, the table on the other one.
    ddb_moto = boto_client("s3", processes.moto_url)
    assert BUCKET not in [b["Name"] for b in ddb_moto.list_buckets()["Buckets"]]


def test_processes_mode_is_driven_over_http(processes: LocalStack) -> None:
    processes.faults.reset_calls()
    processes.gls.reset_calls()
    arns = processes.gls.seed(3, succeeded_fraction=1.0)
    processes.faults.inject("PutItem", "internal", times=1)
    ddb = processes.client("dynamodb")

    with pytest.raises(ClientError) as error:
        boto_client("dynamodb", processes.store_url).put_item(
            TableName=TABLE, Item={LEDGER_PARTITION_KEY: {"S": arns[0]}}
        )
    listed = processes.client("gameliftstreams").list_stream_sessions_by_account()["Items"]

    assert error.value.response["Error"]["Code"] == "InternalServerError"
    assert "Item" not in ddb.get_item(TableName=TABLE, Key={LEDGER_PARTITION_KEY: {"S": arns[0]}})
    assert {item["Arn"] for item in listed} >= set(arns)
    assert processes.faults.calls() == {"PutItem": 1, "GetItem": 1}
    assert processes.faults.fired() == {("PutItem", "internal"): 1}
    assert processes.gls.calls()["counts"] == {"ListStreamSessionsByAccount": 1}
    assert processes.faults.plan()["base_latency"] == {"*": 0.01}  # backend_latency_ms reached the proxy


def test_processes_mode_preloads_the_ledger_in_the_moto_process(processes: LocalStack) -> None:
    arns = assert_preloads_only_what_it_is_given(processes, seeded=6, preloaded=4)
    with pytest.raises(RuntimeError, match="preloading no-such-table failed: ResourceNotFoundException"):
        processes.preload_ledger("no-such-table", arns[:1])


def test_processes_mode_env_points_a_subprocess_at_it(processes: LocalStack) -> None:
    processes.faults.reset_calls()
    script = f"import boto3; boto3.client('s3').put_object(Bucket='{BUCKET}', Key='child', Body=b'1')"
    subprocess.run([sys.executable, "-c", script], env=processes.env(), timeout=60, check=True)
    direct = processes.client("s3", direct=True)  # the S3 moto, past the proxy
    assert direct.get_object(Bucket=BUCKET, Key="child")["Body"].read() == b"1"
    assert processes.faults.calls() == {"PutObject": 1}


def test_processes_mode_quota_and_stop_leaves_no_process_behind() -> None:
    # A quota of one call per 1,000 s with a burst of 1: the second call is throttled whatever the timing.
    with LocalStack(seed=4, region=REGION, processes=True, gls_quota=0.001) as local:
        pids = list(local.pids.values())
        ports = [_port(local.moto_url), _port(local.gls_url), _port(local.store_url)]
        gls = gls_client(local.gls_url)
        gls.list_stream_sessions_by_account()
        with pytest.raises(ClientError) as error:
            gls.list_stream_sessions_by_account()
        assert error.value.response["Error"]["Code"] == "ThrottlingException"
        assert local.gls.calls()["fired"] == {"ListStreamSessionsByAccount:quota": 1}
    assert len(pids) == 4 and all(_gone(pid) for pid in pids)
    assert all(_closed(port) for port in ports)
    assert local.pids == {}
