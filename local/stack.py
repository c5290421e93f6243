"""The whole local stack in one object: moto server, fault proxy in front of it, GameLift Streams emulator.

Tests, the demo and the benchmarks run the unmodified archiver against it by environment alone
(`AWS_ENDPOINT_URL_*`), in-process or in a subprocess (`env()`), on 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import os
import socket
import threading
from collections.abc import Mapping
from typing import Any, Protocol, Self

import boto3
from moto.server import ThreadedMotoServer

from local.fault_proxy import FaultProxy
from local.faults import Service
from local.gls_emulator import GameLiftStreamsEmulator

DUMMY_ACCESS_KEY_ID = "AKIALOCALSTACKTEST00"
DUMMY_SECRET_ACCESS_KEY = "local-stack-dummy-secret"  # noqa: S105 - moto accepts any credentials
# Variables that could point a client at a real account or another profile: removed from child envs.
_SCRUBBED = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
)


class _MonkeyPatch(Protocol):
    def setenv(self, name: str, value: str) -> None: ...

    def delenv(self, name: str, raising: bool = ...) -> None: ...


class LocalStack(Service):
    """moto + FaultProxy + GameLiftStreamsEmulator, started together, stopped together."""

    def __init__(self, seed: int = 0, region: str = "us-east-2") -> None:
        self.seed = seed
        self.region = region
        self._moto: ThreadedMotoServer | None = None
        self._proxy: FaultProxy | None = None
        self._emulator = GameLiftStreamsEmulator(seed=seed, default_region=region)
        self._moto_url = ""
        self._resources: list[tuple[str, str, str]] = []
        self._saved_env: dict[str, str | None] | None = None

    # -- lifecycle -------------------------------------------------------------------------------------

    def start(self) -> Self:
        """Start moto, the proxy and the emulator (well under a second)."""
        if self._moto is not None:
            return self
        werkzeug_logger = logging.getLogger("werkzeug")
        if werkzeug_logger.level == logging.NOTSET:
            werkzeug_logger.setLevel(logging.WARNING)  # otherwise one stderr line per moto request
        moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        moto.start()
        # Handler threads of idle keep-alive clients would block stop(): do not join them on close.
        server = getattr(moto, "_server", None)
        if server is not None:
            server.block_on_close = False
        self._moto = moto
        host, port = moto.get_host_and_port()
        self._moto_url = f"http://{host}:{port}"
        self._proxy = FaultProxy(self._moto_url, seed=self.seed).start()
        self._emulator.start()
        return self

    def stop(self) -> None:
        """Stop everything (proxy before moto so moto's keep-alive connections close) and restore env."""
        self._emulator.stop()
        if self._proxy is not None:
            self._proxy.stop()
            self._proxy = None
        if self._moto is not None:
            self._stop_moto(self._moto)
            self._moto = None
        self.restore_env()

    @staticmethod
    def _stop_moto(moto: ThreadedMotoServer) -> None:
        """moto's serve_forever polls every 0.5 s; a connection wakes it so stop takes milliseconds."""
        host, port = moto.get_host_and_port()
        stopper = threading.Thread(target=moto.stop, name="moto-stop", daemon=True)
        stopper.start()
        while stopper.is_alive():
            with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1):
                pass
            stopper.join(0.01)

    # -- parts -----------------------------------------------------------------------------------------

    @property
    def emulator(self) -> GameLiftStreamsEmulator:
        return self._emulator

    @property
    def proxy(self) -> FaultProxy:
        if self._proxy is None:
            raise RuntimeError("LocalStack is not started")
        return self._proxy

    @property
    def moto_url(self) -> str:
        if not self._moto_url or self._moto is None:
            raise RuntimeError("LocalStack is not started")
        return self._moto_url

    # -- environment -----------------------------------------------------------------------------------

    def aws_env(self) -> dict[str, str]:
        """Only the variables the stack sets: endpoints, Region, dummy credentials, no config files."""
        return {
            "AWS_ENDPOINT_URL_DYNAMODB": self.proxy.endpoint_url,
            "AWS_ENDPOINT_URL_S3": self.proxy.endpoint_url,
            "AWS_ENDPOINT_URL_GAMELIFTSTREAMS": self.emulator.endpoint_url,
            # Anything else (Glue, Athena, EventBridge, ...) goes straight to moto.
            "AWS_ENDPOINT_URL": self.moto_url,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            "AWS_ACCESS_KEY_ID": DUMMY_ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": DUMMY_SECRET_ACCESS_KEY,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """A complete environment for a subprocess: `base` (default os.environ) minus any profile or
        session credentials, plus `aws_env()`."""
        env = {k: v for k, v in (os.environ if base is None else base).items() if k not in _SCRUBBED}
        env.update(self.aws_env())
        return env

    def apply_env(self, monkeypatch: _MonkeyPatch | None = None) -> None:
        """Point this process's boto3 at the stack: via pytest's monkeypatch (undone after the test) or,
        without one, in os.environ directly (undone by `restore_env`/`stop`)."""
        if monkeypatch is not None:
            for name in _SCRUBBED:
                monkeypatch.delenv(name, raising=False)
            for name, value in self.aws_env().items():
                monkeypatch.setenv(name, value)
            return
        if self._saved_env is None:
            self._saved_env = {}
        for name in (*_SCRUBBED, *self.aws_env()):
            self._saved_env.setdefault(name, os.environ.get(name))
        for name in _SCRUBBED:
            os.environ.pop(name, None)
        os.environ.update(self.aws_env())

    def restore_env(self) -> None:
        """Undo `apply_env()` done without monkeypatch."""
        saved, self._saved_env = self._saved_env, None
        for name, value in (saved or {}).items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    # -- resources -------------------------------------------------------------------------------------

    def client(self, service: str, *, direct: bool = False) -> Any:
        """A boto3 client for moto (direct=True) or through the proxy, independent of os.environ."""
        session = boto3.session.Session(
            aws_access_key_id=DUMMY_ACCESS_KEY_ID,
            aws_secret_access_key=DUMMY_SECRET_ACCESS_KEY,
            region_name=self.region,
        )
        if service == "gameliftstreams":
            url = self.emulator.endpoint_url
        else:
            url = self.moto_url if direct else self.proxy.endpoint_url
        return session.client(service, endpoint_url=url)

    def create_archive_resources(self, table_name: str, bucket_name: str, partition_key: str = "session_arn") -> None:
        """Create the ledger table and archive bucket as the CDK stack configures them, directly on moto
        (not through the proxy, so injected faults do not hit setup)."""
        self._create(table_name, bucket_name, partition_key)
        self._resources.append((table_name, bucket_name, partition_key))

    def _create(self, table_name: str, bucket_name: str, partition_key: str) -> None:
        ddb = self.client("dynamodb", direct=True)
        s3 = self.client("s3", direct=True)
        try:
            ddb.create_table(
                TableName=table_name,
                AttributeDefinitions=[{"AttributeName": partition_key, "AttributeType": "S"}],
                KeySchema=[{"AttributeName": partition_key, "KeyType": "HASH"}],
                BillingMode="PAY_PER_REQUEST",
                SSESpecification={"Enabled": True},
            )
            if self.region == "us-east-1":
                s3.create_bucket(Bucket=bucket_name)
            else:
                s3.create_bucket(Bucket=bucket_name, CreateBucketConfiguration={"LocationConstraint": self.region})
            s3.put_bucket_versioning(Bucket=bucket_name, VersioningConfiguration={"Status": "Enabled"})
            s3.put_bucket_encryption(
                Bucket=bucket_name,
                ServerSideEncryptionConfiguration={
                    "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
                },
            )
            s3.put_public_access_block(
                Bucket=bucket_name,
                PublicAccessBlockConfiguration={
                    "BlockPublicAcls": True,
                    "IgnorePublicAcls": True,
                    "BlockPublicPolicy": True,
                    "RestrictPublicBuckets": True,
                },
            )
        finally:
            ddb.close()
            s3.close()

    def reset_data(self) -> None:
        """Fresh state between tests: empty moto (then recreate the archive resources), no sessions,
        no faults, empty call logs."""
        host, port = self._moto.get_host_and_port() if self._moto else ("", 0)
        conn = http.client.HTTPConnection(host, port, timeout=30)
        try:
            conn.request("POST", "/moto-api/reset")
            conn.getresponse().read()
        finally:
            conn.close()
        for resource in self._resources:
            self._create(*resource)
        self.emulator.clear_sessions()
        self.emulator.shift_on_page = False
        for server in (self.emulator, self.proxy):
            server.faults.clear()
            server.reset_calls()
