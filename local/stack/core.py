"""`LocalStack`: moto server, the fault proxy in front of it (DynamoDB, S3) and the GameLift Streams
emulator, started together and stopped together, as threads of this process or as separate processes.

Tests, the demo, the benchmarks and the reliability harness run the unmodified archiver against it by
environment alone (`AWS_ENDPOINT_URL_*`), in-process or in a subprocess (`env()`), on 127.0.0.1 only.
Both modes are driven the same way, over HTTP: `.gls` (the emulator's control API) and `.faults` (the
proxy's); threads mode also hands out the server objects themselves (`.emulator`, `.proxy`).

The emulator writes export ZIPs straight to the stack's moto S3 (not through the proxy: it is GameLift
Streams writing to the studio's bucket), in both modes. With `export_locations` (or a call of
`create_event_resources`) the event path is there too: those buckets send to EventBridge, a rule with the
stack's pattern delivers to an SQS queue with a dead-letter queue, and `poller(handler)` consumes it as
Lambda's event source mapping does.
"""

from __future__ import annotations

import http.client
import json
import os
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, Self
from urllib.parse import urlsplit

from moto.server import ThreadedMotoServer

from local.fault_proxy import FaultProxy, FaultProxyClient
from local.gls import EmulatorClient, GameLiftStreamsEmulator
from local.httpserver import Service
from local.lambda_service import LambdaService, LambdaServiceClient
from local.stack.aws import DUMMY_ACCESS_KEY_ID, DUMMY_SECRET_ACCESS_KEY, SCRUBBED, aws_client, scrubbed_env
from local.stack.moto_server import start_moto, stop_moto
from local.stack.processes import ServerProcess
from local.stack.resources import (
    DEFAULT_VISIBILITY_TIMEOUT,
    EventResources,
    create_archive_resources,
    create_event_resources,
    preload_in_process,
)

if TYPE_CHECKING:
    from local.sqs_poller import Handler, SqsPoller

DEFAULT_EVENT_QUEUE = "export-events"


class _MonkeyPatch(Protocol):
    def setenv(self, name: str, value: str) -> None: ...

    def delenv(self, name: str, raising: bool = ...) -> None: ...


class LocalStack(Service):
    """moto + FaultProxy + GameLiftStreamsEmulator for one Region.

    - `processes`: each server in its own process (its own GIL: the benchmarks, the independent run);
      otherwise threads of this process (fast to start: tests, the demo).
    - `moto_url`: reuse that moto server (several stacks, each with its own proxy and emulator, on one
      moto); otherwise start one.
    - `gls_quota` (requests/second per API and Region, burst = the rate), `gls_latency_ms`: the emulator's
      quota and latency on every call; `backend_latency_ms`: the proxy's on every DynamoDB and S3 call.
    - `emulator_factory`: threads mode, build the emulator as `factory(seed=..., default_region=...)` (a
      subclass such as the reliability suites' HostileEmulator).
    - `fault_proxy=False`: no proxy, the store endpoint is moto itself (load runs without the extra hop).
    - `separate_s3_moto`: processes mode, S3 on a moto process of its own (what the benchmark measures on).
    - `export_locations` ("s3://bucket/prefix/,...", as the `export_locations` context key): at start, the
      event path for them (`create_event_resources` with its defaults; `.event_resources` tells what).
    """

    def __init__(
        self,
        seed: int = 0,
        region: str = "us-east-2",
        *,
        processes: bool = False,
        moto_url: str | None = None,
        gls_latency_ms: float = 0.0,
        backend_latency_ms: float = 0.0,
        gls_quota: float | None = None,
        emulator_factory: Callable[..., GameLiftStreamsEmulator] | None = None,
        fault_proxy: bool = True,
        separate_s3_moto: bool = False,
        export_locations: str | Sequence[str] | None = None,
        startup_timeout: float = 120.0,
    ) -> None:
        if processes and emulator_factory is not None:
            raise ValueError("emulator_factory needs threads mode: a process runs the stock emulator")
        if separate_s3_moto and (not processes or moto_url is not None):
            raise ValueError("separate_s3_moto needs processes mode and a moto of the stack's own")
        if gls_quota is not None and gls_quota <= 0:
            raise ValueError("gls_quota must be > 0")
        self.seed = seed
        self.region = region
        self.processes = processes
        self.gls_latency_ms = gls_latency_ms
        self.backend_latency_ms = backend_latency_ms
        self.gls_quota = gls_quota
        self.fault_proxy = fault_proxy
        self.separate_s3_moto = separate_s3_moto
        self.startup_timeout = startup_timeout
        self._external_moto = moto_url.rstrip("/") if moto_url else None
        self._emulator: GameLiftStreamsEmulator | None = None
        if not processes:
            factory = emulator_factory or GameLiftStreamsEmulator
            self._emulator = factory(seed=seed, default_region=region)
        self._moto: ThreadedMotoServer | None = None
        self._proxy: FaultProxy | None = None
        self._lambda: LambdaService | None = None
        self._procs: dict[str, ServerProcess] = {}
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._urls: dict[str, str] = {}
        self._gls: EmulatorClient | None = None
        self._faults: FaultProxyClient | None = None
        self._resources: list[tuple[str, str]] = []
        self._export_locations = export_locations or None
        self._event_specs: list[dict[str, Any]] = []
        self._events: EventResources | None = None
        self._saved_env: dict[str, str | None] | None = None

    # -- lifecycle -------------------------------------------------------------------------------------

    def start(self) -> Self:
        """Start every server (threads: well under a second; processes: a few seconds, moto's import)."""
        if self._urls:
            return self
        try:
            self._start_processes() if self.processes else self._start_threads()
        except BaseException:
            self.stop()
            raise
        self._gls = EmulatorClient(self._urls["gls"])
        self._faults = FaultProxyClient(self._urls["store"]) if self.fault_proxy else None
        try:
            if self.processes:  # the emulator process started before moto's URL was known
                self._gls.config(export_s3_endpoint=self._direct_url("s3"))
            if self._export_locations is not None:
                self.create_event_resources(self._export_locations)
        except BaseException:
            self.stop()
            raise
        return self

    def _start_threads(self) -> None:
        moto_url = self._external_moto
        if moto_url is None:
            self._moto, moto_url = start_moto()
        self._urls["moto"] = moto_url
        if self.fault_proxy:
            self._proxy = FaultProxy(moto_url, seed=self.seed)
            if self.backend_latency_ms:
                self._proxy.faults.base_latency["*"] = self.backend_latency_ms / 1000.0
            self._proxy.start()
        self._urls["store"] = self._proxy.endpoint_url if self._proxy else moto_url
        emulator = self.emulator
        if self.gls_quota is not None:
            emulator.faults.rate_limit("*", self.gls_quota, max(1, int(self.gls_quota)))
        if self.gls_latency_ms:
            emulator.faults.base_latency["*"] = self.gls_latency_ms / 1000.0
        emulator.export_s3_endpoint = self._direct_url("s3")
        emulator.start()
        self._urls["gls"] = emulator.endpoint_url
        # The reconciler's follow-up invocations (lambda:InvokeFunction on itself), in the sessions' account.
        self._lambda = LambdaService(seed=self.seed, region=self.region, account_id=emulator.account_id).start()
        self._urls["lambda"] = self._lambda.endpoint_url

    def _start_processes(self) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="local-stack-")
        python = sys.executable
        # All start at once (moto's import takes the longest); the proxy once it knows moto's URLs.
        if self._external_moto is None:
            self._spawn("moto", [python, "-m", "local.stack.moto_server"], stdin=True)
            if self.separate_s3_moto:
                self._spawn("moto-s3", [python, "-m", "local.stack.moto_server"], stdin=True)
        gls = [python, "-m", "local.gls", "--port", "0", "--seed", str(self.seed), "--region", self.region]
        if self.gls_quota is not None:
            gls += ["--rate", str(self.gls_quota)]
        if self.gls_latency_ms:
            gls += ["--latency-ms", str(self.gls_latency_ms)]
        self._spawn("gls", gls)
        self._spawn("lambda", [python, "-m", "local.lambda_service", "--seed", str(self.seed), "--region", self.region])
        timeout = self.startup_timeout
        self._urls["moto"] = self._external_moto or self._procs["moto"].url(timeout)
        if "moto-s3" in self._procs:
            self._urls["moto-s3"] = self._procs["moto-s3"].url(timeout)
        if self.fault_proxy:
            proxy = [python, "-m", "local.fault_proxy", "--upstream", self._urls["moto"], "--seed", str(self.seed)]
            if "moto-s3" in self._urls:
                proxy += ["--route", f"s3={self._urls['moto-s3']}"]
            if self.backend_latency_ms:
                proxy += ["--latency-ms", str(self.backend_latency_ms)]
            self._spawn("proxy", proxy)
        self._urls["gls"] = self._procs["gls"].url(timeout)
        self._urls["lambda"] = self._procs["lambda"].url(timeout)
        self._urls["store"] = self._procs["proxy"].url(timeout) if self.fault_proxy else self._urls["moto"]

    def _spawn(self, name: str, command: list[str], *, stdin: bool = False) -> None:
        assert self._tmp is not None
        self._procs[name] = ServerProcess(name, command, env=scrubbed_env(), log_dir=Path(self._tmp.name), stdin=stdin)

    def stop(self) -> None:
        """Stop everything (the Lambda service first: its running invocation still calls the others; the proxy
        before moto, so moto's keep-alive connections close), restore env."""
        if self._lambda is not None:
            self._lambda.stop()
            self._lambda = None
        if self._emulator is not None:
            self._emulator.stop()
        if self._proxy is not None:
            self._proxy.stop()
            self._proxy = None
        if self._moto is not None:
            stop_moto(self._moto)
            self._moto = None
        procs, self._procs = self._procs, {}
        for name in ("lambda", "proxy", *procs):  # SIGTERM to all (Lambda, the proxy first), then wait for each
            if name in procs:
                procs[name].terminate()
        for proc in procs.values():
            proc.stop()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
        self._urls.clear()
        self._gls = self._faults = None
        self._events = None
        self._event_specs.clear()
        self.restore_env()

    # -- parts -----------------------------------------------------------------------------------------

    def _url(self, name: str) -> str:
        url = self._urls.get(name)
        if url is None:
            raise RuntimeError("LocalStack is not started")
        return url

    @property
    def lambda_service(self) -> LambdaService:
        """Threads mode: the local Lambda service itself (register functions, run or wait for invocations)."""
        if self._lambda is None:
            raise RuntimeError("the Lambda service object exists in threads mode only: use .lambdas")
        return self._lambda

    @property
    def lambdas(self) -> LambdaServiceClient:
        """The local Lambda service's control API (both modes)."""
        return LambdaServiceClient(self._url("lambda"))

    @property
    def moto_url(self) -> str:
        """moto itself (DynamoDB, and S3 unless it has its own moto): past the proxy, faults never hit it."""
        return self._url("moto")

    @property
    def store_url(self) -> str:
        """The endpoint the archiver's DynamoDB and S3 clients use: the fault proxy (or moto, without one)."""
        return self._url("store")

    @property
    def gls_url(self) -> str:
        """The GameLift Streams emulator's endpoint (API and `/_emulator/...` control)."""
        return self._url("gls")

    @property
    def gls(self) -> EmulatorClient:
        """The emulator's control API: seed, add, set_export, set_faults, calls, ..."""
        if self._gls is None:
            raise RuntimeError("LocalStack is not started")
        return self._gls

    @property
    def faults(self) -> FaultProxyClient:
        """The fault proxy's control API: apply, inject, kill, clear, calls, fired, reset_calls."""
        if self._faults is None:
            raise RuntimeError("LocalStack is not started" if self.fault_proxy else "this stack has no fault proxy")
        return self._faults

    @property
    def emulator(self) -> GameLiftStreamsEmulator:
        """The emulator object (threads mode only)."""
        if self._emulator is None:
            raise RuntimeError("the emulator runs in another process: use .gls")
        return self._emulator

    @property
    def proxy(self) -> FaultProxy:
        """The fault proxy object (threads mode only)."""
        if self._proxy is None:
            raise RuntimeError(
                "the fault proxy runs in another process: use .faults" if self._procs else "no fault proxy running"
            )
        return self._proxy

    @property
    def pids(self) -> dict[str, int]:
        """The server processes by name (processes mode): "moto", "moto-s3", "gls", "proxy"."""
        return {name: proc.pid for name, proc in self._procs.items()}

    def _direct_url(self, service: str) -> str:
        return self._urls.get("moto-s3", self.moto_url) if service == "s3" else self.moto_url

    # -- environment -----------------------------------------------------------------------------------

    def aws_env(self) -> dict[str, str]:
        """Only the variables the stack sets: endpoints, Region, dummy credentials, no config files."""
        return {
            "AWS_ENDPOINT_URL_DYNAMODB": self.store_url,
            "AWS_ENDPOINT_URL_S3": self.store_url,
            "AWS_ENDPOINT_URL_GAMELIFTSTREAMS": self.gls_url,
            "AWS_ENDPOINT_URL_LAMBDA": self._url("lambda"),  # not moto's Lambda: it would run nothing
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
        return scrubbed_env(base) | self.aws_env()

    def apply_env(self, monkeypatch: _MonkeyPatch | None = None) -> None:
        """Point this process's boto3 at the stack: via pytest's monkeypatch (undone after the test) or,
        without one, in os.environ directly (undone by `restore_env`/`stop`)."""
        if monkeypatch is not None:
            for name in SCRUBBED:
                monkeypatch.delenv(name, raising=False)
            for name, value in self.aws_env().items():
                monkeypatch.setenv(name, value)
            return
        if self._saved_env is None:
            self._saved_env = {}
        for name in (*SCRUBBED, *self.aws_env()):
            self._saved_env.setdefault(name, os.environ.get(name))
        for name in SCRUBBED:
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

    # -- clients and data ------------------------------------------------------------------------------

    def client(self, service: str, *, direct: bool = False) -> Any:
        """A boto3 client for moto (direct=True) or through the proxy, independent of os.environ."""
        if service == "gameliftstreams":
            return aws_client(service, self.gls_url, self.region)
        return aws_client(service, self._direct_url(service) if direct else self.store_url, self.region)

    def create_archive_resources(self, table: str, bucket: str) -> None:
        """The ledger table and archive bucket as the CDK stack configures them, directly on moto (not
        through the proxy, so injected faults do not hit setup)."""
        create_archive_resources(self.moto_url, table, bucket, region=self.region, s3_url=self._direct_url("s3"))
        self._resources.append((table, bucket))

    def create_event_resources(
        self,
        locations: str | Sequence[str],
        *,
        queue_name: str = DEFAULT_EVENT_QUEUE,
        max_pending_receives: int = 5,
        visibility_timeout: int = DEFAULT_VISIBILITY_TIMEOUT,
    ) -> EventResources:
        """The event path for `locations` as the CDK stack configures it (see
        `resources.create_event_resources`), on the moto holding S3; also `.event_resources` from now on."""
        spec: dict[str, Any] = {
            "locations": locations,
            "queue_name": queue_name,
            "max_pending_receives": max_pending_receives,
            "visibility_timeout": visibility_timeout,
        }
        self._events = create_event_resources(self._direct_url("s3"), region=self.region, **spec)
        self._event_specs.append(spec)
        return self._events

    @property
    def event_resources(self) -> EventResources:
        """The event path made last (by `export_locations` or `create_event_resources`)."""
        if self._events is None:
            raise RuntimeError("no event resources: pass export_locations or call create_event_resources")
        return self._events

    def poller(self, handler: Handler, **options: Any) -> SqsPoller:
        """An SqsPoller of the event queue (`event_resources`) for `handler`, the way the stack's event source
        mapping invokes the consumer; `options` as SqsPoller takes them (batch_size, wait_time_seconds, ...)."""
        from local.lambda_context import LambdaContext  # noqa: PLC0415
        from local.sqs_poller import DEFAULT_FUNCTION_NAME, SqsPoller  # noqa: PLC0415 - it imports this package

        events = self.event_resources
        if "context_factory" not in options:  # the function's account is the sessions' (the emulator's)
            account = str(self.gls.config()["account_id"])
            name = str(options.get("function_name", DEFAULT_FUNCTION_NAME))
            arn = f"arn:aws:lambda:{self.region}:{account}:function:{name}"
            seconds = float(options.get("timeout_seconds", 60.0))
            options["context_factory"] = lambda: LambdaContext(
                timeout_seconds=seconds, function_name=name, invoked_function_arn=arn
            )
        return SqsPoller(
            handler,
            queue_url=events.queue_url,
            queue_arn=events.queue_arn,
            endpoint_url=events.endpoint_url,
            region=self.region,
            **options,
        )

    def preload_ledger(self, table: str, arns: Iterable[str], *, prefix: str = "sessions/") -> int:
        """Mark `arns` archived in the ledger `table` straight in moto's backend (fast); how many."""
        if self._moto is not None:
            return preload_in_process(self.region, table, arns, prefix)
        proc = self._procs.get("moto")
        if proc is None or self._tmp is None:
            raise RuntimeError("preload_ledger needs a moto this stack started")
        path = Path(self._tmp.name, f"preload-{table}.txt")
        path.write_text("\n".join(arns), encoding="utf-8")
        command = {"preload": {"region": self.region, "table": table, "path": str(path), "prefix": prefix}}
        reply = json.loads(proc.request(json.dumps(command), self.startup_timeout))
        if "error" in reply:
            raise RuntimeError(f"preloading {table} failed: {reply['error']}")
        return int(reply["count"])

    def reset_data(self) -> None:
        """Threads mode: fresh state between tests: empty moto (then the archive resources recreated), no
        sessions, no faults, empty call logs. A moto given as `moto_url` is emptied for everyone on it."""
        emulator = self.emulator
        parts = urlsplit(self.moto_url)
        conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=30)
        try:
            conn.request("POST", "/moto-api/reset")
            conn.getresponse().read()
        finally:
            conn.close()
        for table, bucket in self._resources:
            create_archive_resources(self.moto_url, table, bucket, region=self.region, s3_url=self._direct_url("s3"))
        for spec in self._event_specs:
            self._events = create_event_resources(self._direct_url("s3"), region=self.region, **spec)
        emulator.clear_sessions()
        emulator.shift_on_page = False
        emulator.fail_exports = False
        emulator.export_success_delay_ms = 0.0
        emulator.faults.clear()
        emulator.reset_calls()
        if self.fault_proxy:
            self.faults.clear()
            self.faults.reset_calls()
