"""The benchmark's local AWS: each server in its own process, so none of them shares the archiver's GIL.

`Backends` starts, for one benchmark run:

- the GameLift Streams emulator (`python -m local.gls_emulator`) with the quota enforced per API and Region
  (token bucket, excess gets `ThrottlingException`) and a fixed latency on every call;
- one moto server for DynamoDB and one for S3 (`python -m bench.servers moto`), the table and bucket created
  as the CDK stack configures them, the already-archived sessions loaded straight into moto's backend;
- the fault proxy (`python -m bench.servers proxy`) in front of both moto servers, adding the DynamoDB/S3
  latency with the project's FaultPlan and counting every request per operation.

Everything listens on 127.0.0.1 only. Counts come from the servers, not from the program under test.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Self

from local.faults import Service

ACCESS_KEY_ID = "AKIALOCALSTACKTEST00"  # moto accepts any credentials; these never leave 127.0.0.1
SECRET_ACCESS_KEY = "local-bench-dummy-secret"  # a dummy: moto accepts anything
PARTITION_KEY = "session_arn"
_STARTUP_TIMEOUT = 120.0


# -- the server processes ----------------------------------------------------------------------------------


def _client(service: str, url: str, region: str) -> Any:
    import boto3

    return boto3.session.Session(
        aws_access_key_id=ACCESS_KEY_ID, aws_secret_access_key=SECRET_ACCESS_KEY, region_name=region
    ).client(service, endpoint_url=url)


def _create_table(url: str, region: str, table: str) -> None:
    ddb = _client("dynamodb", url, region)
    ddb.create_table(
        TableName=table,
        AttributeDefinitions=[{"AttributeName": PARTITION_KEY, "AttributeType": "S"}],
        KeySchema=[{"AttributeName": PARTITION_KEY, "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
        SSESpecification={"Enabled": True},
    )


def _create_bucket(url: str, region: str, bucket: str) -> None:
    s3 = _client("s3", url, region)
    if region == "us-east-1":
        s3.create_bucket(Bucket=bucket)
    else:
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}],
        },
    )


def _preload(region: str, table: str, path: str) -> int:
    """Put one ledger item per ARN in `path` straight into moto's backend (100k in seconds, not minutes)."""
    from moto.core.models import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    backend = dynamodb_backends[DEFAULT_ACCOUNT_ID][region]
    count = 0
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            arn = line.strip()
            if not arn:
                continue
            group, session = arn.rsplit("/", 2)[-2:]
            item = {
                PARTITION_KEY: {"S": arn},
                "s3_key": {"S": f"sessions/source_region={region}/created_date=2026-01-01/{group}_{session}.json"},
                "schema_version": {"S": "1"},
            }
            backend.put_item(table, item)
            count += 1
    return count


def _wait_for_signal() -> None:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    while not stop.wait(3600):
        pass


def _serve_moto(args: argparse.Namespace) -> int:
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    if args.table:
        _create_table(url, args.region, args.table)
        # "-": the file's path comes on stdin, so this process imports moto while the sessions are seeded.
        preload = sys.stdin.readline().strip() if args.preload == "-" else args.preload
        if preload:
            _preload(args.region, args.table, preload)
    if args.bucket:
        _create_bucket(url, args.region, args.bucket)
    print(url, flush=True)
    _wait_for_signal()
    return 0


def _serve_proxy(args: argparse.Namespace) -> int:
    """Fault proxies in front of moto; stdin takes `counts` (answers one JSON line) and `reset`."""
    from local.fault_proxy import FaultProxy

    proxies = [FaultProxy(upstream).start() for upstream in args.upstream]
    for proxy in proxies:
        if args.latency_ms:
            proxy.faults.base_latency["*"] = args.latency_ms / 1000.0
    print(" ".join(proxy.endpoint_url for proxy in proxies), flush=True)
    for line in sys.stdin:
        command = line.strip()
        if command == "counts":
            counts: dict[str, int] = {}
            fired: dict[str, int] = {}
            for proxy in proxies:
                for operation, n in proxy.call_counts().items():
                    counts[operation] = counts.get(operation, 0) + n
                for (operation, kind), n in proxy.faults.fired.items():
                    fired[f"{operation}:{kind}"] = fired.get(f"{operation}:{kind}", 0) + n
            print(json.dumps({"counts": counts, "fired": fired}), flush=True)
        elif command == "reset":
            for proxy in proxies:
                proxy.reset_calls()
                proxy.faults.fired.clear()
            print("{}", flush=True)
    for proxy in proxies:
        proxy.stop()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.servers", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    moto = commands.add_parser("moto", help="a moto server with the archive table and/or bucket")
    moto.add_argument("--region", default="us-east-2")
    moto.add_argument("--table", default="")
    moto.add_argument("--bucket", default="")
    moto.add_argument("--preload", default="", help="file of session ARNs to put in the table ('-': path on stdin)")
    proxy = commands.add_parser("proxy", help="fault proxies (latency, call counts) in front of moto servers")
    proxy.add_argument("--upstream", action="append", required=True)
    proxy.add_argument("--latency-ms", type=float, default=0.0)
    args = parser.parse_args(argv)
    return _serve_moto(args) if args.command == "moto" else _serve_proxy(args)


# -- the orchestrator's side ---------------------------------------------------------------------------------


@dataclass
class Topology:
    """What one benchmark run talks to; the same for the archiver and the naive script."""

    quota: float  # GameLift Streams requests/second per API and Region (the emulator enforces it)
    gls_latency_ms: float
    backend_latency_ms: float
    region: str = "us-east-2"
    seed: int = 11
    table: str = "bench-archive"
    bucket: str = "bench-archive-bucket"


@dataclass
class Backends(Service):
    """The servers of one run: N sessions listed, of which the newest `new` are not archived yet."""

    topology: Topology
    sessions: int
    new: int
    gls_url: str = ""
    ddb_url: str = ""
    s3_url: str = ""
    _procs: list[subprocess.Popen[str]] = field(default_factory=list)
    _proxy: subprocess.Popen[str] | None = None
    _tmp: tempfile.TemporaryDirectory[str] | None = None

    def start(self) -> Self:
        t = self.topology
        python = sys.executable
        env = server_env()
        try:
            # All three start at once; the ledger's server learns which sessions to preload once they exist.
            emulator = self._spawn(
                [python, "-m", "local.gls_emulator", "--region", t.region, "--seed", str(t.seed),
                 "--rate", str(t.quota), "--latency-ms", str(t.gls_latency_ms)],
                env,
            )  # fmt: skip
            moto_ddb = self._spawn(
                [python, "-m", "bench.servers", "moto", "--region", t.region, "--table", t.table, "--preload", "-"],
                env,
                stdin=True,
            )
            moto_s3 = self._spawn(
                [python, "-m", "bench.servers", "moto", "--region", t.region, "--bucket", t.bucket], env
            )
            self.gls_url = _first_line(emulator)
            arns = self._seed_sessions()
            self._tmp = tempfile.TemporaryDirectory(prefix="bench-")
            preload = Path(self._tmp.name, "archived.txt")
            # Seeded oldest first; the list is newest first, so the new sessions come on the first pages.
            preload.write_text("\n".join(arns[: self.sessions - self.new]), encoding="utf-8")
            if moto_ddb.stdin is None:
                raise RuntimeError("moto server started without a stdin pipe")
            moto_ddb.stdin.write(f"{preload}\n")
            moto_ddb.stdin.flush()
            ddb_upstream, s3_upstream = _first_line(moto_ddb), _first_line(moto_s3)
            self._proxy = self._spawn(
                [
                    python,
                    "-m",
                    "bench.servers",
                    "proxy",
                    "--upstream",
                    ddb_upstream,
                    "--upstream",
                    s3_upstream,
                    "--latency-ms",
                    str(t.backend_latency_ms),
                ],
                env,
                stdin=True,
            )
            self.ddb_url, self.s3_url = _first_line(self._proxy).split()
        except BaseException:
            self.stop()
            raise
        return self

    def _spawn(self, command: list[str], env: dict[str, str], stdin: bool = False) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            command,
            preexec_fn=die_with_parent,  # noqa: PLW1509 - the orchestrator starts servers from one thread
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        self._procs.append(proc)
        return proc

    def _seed_sessions(self) -> list[str]:
        reply = _post(
            self.gls_url + "/_emulator/sessions",
            {"seed": self.sessions, "succeeded_fraction": 1.0, "region": self.topology.region},
        )
        arns = [str(arn) for arn in reply["arns"]]
        if len(arns) != self.sessions:
            raise RuntimeError(f"emulator seeded {len(arns)} sessions, expected {self.sessions}")
        return arns

    def env(self) -> dict[str, str]:
        """The environment of the program under test: only the SDK's own endpoint variables point it here."""
        t = self.topology
        return {
            "AWS_ENDPOINT_URL_GAMELIFTSTREAMS": self.gls_url,
            "AWS_ENDPOINT_URL_DYNAMODB": self.ddb_url,
            "AWS_ENDPOINT_URL_S3": self.s3_url,
            "AWS_DEFAULT_REGION": t.region,
            "AWS_REGION": t.region,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
            "ARCHIVE_TABLE_NAME": t.table,
            "ARCHIVE_BUCKET_NAME": t.bucket,
            "SOURCE_REGIONS": t.region,
        }

    def calls(self) -> dict[str, Any]:
        """Requests per operation as the servers saw them, and the ones the quota throttled."""
        with urllib.request.urlopen(self.gls_url + "/_emulator/calls", timeout=30) as response:
            gls = json.loads(response.read())
        backend = self._proxy_command("counts")
        counts = {**gls["counts"], **backend["counts"]}
        throttled = {k.split(":")[0]: v for k, v in gls["fired"].items() if k.endswith(":quota")}
        return {"counts": counts, "throttled": throttled}

    def _proxy_command(self, command: str) -> dict[str, Any]:
        proxy = self._proxy
        if proxy is None or proxy.stdin is None or proxy.stdout is None:
            raise RuntimeError("the proxy is not running")
        proxy.stdin.write(command + "\n")
        proxy.stdin.flush()
        reply: dict[str, Any] = json.loads(proxy.stdout.readline())
        return reply

    def stop(self) -> None:
        procs, self._procs = self._procs, []
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            for stream in (proc.stdin, proc.stdout):
                if stream is not None:
                    stream.close()
        self._proxy = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


def server_env() -> dict[str, str]:
    """This environment plus the project on PYTHONPATH, minus any profile or session credentials."""
    env = dict(os.environ)
    root = Path(__file__).resolve().parent.parent
    env["PYTHONPATH"] = os.pathsep.join([str(root), str(root / "lambdas")])
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN"):
        env.pop(name, None)
    return env


def die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the orchestrator dies, so no server outlives a killed benchmark."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG (Linux)
    except (OSError, AttributeError):
        pass


def _first_line(proc: subprocess.Popen[str]) -> str:
    """The URL a server prints once it is ready (or an error if it died first)."""
    stdout: IO[str] | None = proc.stdout
    if stdout is None:
        raise RuntimeError("server started without a stdout pipe")
    deadline = time.monotonic() + _STARTUP_TIMEOUT
    line = stdout.readline().strip()
    if not line or time.monotonic() > deadline:
        raise RuntimeError(f"server {proc.args!r} did not start (exit code {proc.poll()})")
    return line


def _post(url: str, payload: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=300) as response:
        reply: dict[str, Any] = json.loads(response.read())
        return reply


if __name__ == "__main__":
    sys.exit(main())
