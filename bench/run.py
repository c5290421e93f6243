"""`make bench`: the archiver against the obvious script, on the same data, against the quota-enforcing emulator.

For each point (N sessions listed, k of them new) the whole local AWS is started afresh, each server in its
own process (local.stack.LocalStack: the GameLift Streams emulator enforcing the quota per API and Region,
one moto for DynamoDB and one for S3, the fault proxy adding latency), then one program runs in its own
fresh process (bench.programs): the real Lambda handler, or bench.naive. The servers count the calls; the
program's process reports wall time and peak RSS.

The floor of a run is max(pages x page latency, pages / quota, k / quota) with pages = ceil(N / 100): pages
come one after another, and each API's quota caps its calls. The page latency is measured (median round
trip of one 100-item page by a bare boto3 client, nothing else running), so it includes what any client
pays to parse a page.

Results: a table on stdout, docs/PERFORMANCE.md, docs/performance.png, and optionally a JSON file.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from archiver.records import LEDGER_PARTITION_KEY
from bench import programs, report
from bench.results import PAGE_SIZE, Calibration, Results, Run, cpu_model, floor_seconds, pages_of
from local.stack import LocalStack

DEFAULT_POINTS = (
    (1_000, 0),
    (1_000, 100),
    (1_000, 1_000),
    (10_000, 0),
    (10_000, 1_000),
    (100_000, 0),
    (100_000, 5_000),
)
ROOT = Path(__file__).resolve().parent.parent
REGION = "us-east-2"
TABLE = "bench-archive"
BUCKET = "bench-archive-bucket"


@dataclass(frozen=True)
class Config:
    quota: float = 20.0  # the emulator's quota per API and Region, requests/second (AWS: 20)
    gls_latency_ms: float = 40.0
    backend_latency_ms: float = 10.0
    rate_fraction: float = 0.95  # the archiver's LIST/GET_RATE_PER_SECOND = quota x this
    concurrency: int = 16  # the archiver's MAX_CONCURRENCY
    naive_cap_s: float | None = 60.0  # stop the naive script after this long; the rest is extrapolated
    seed: int = 11

    @property
    def client_rate(self) -> float:
        return round(self.quota * self.rate_fraction, 3)


@contextlib.contextmanager
def bench_stack(config: Config, sessions: int, new: int) -> Iterator[LocalStack]:
    """The servers of one run, each in its own process so none shares the program's GIL (S3 on a moto of its
    own): N sessions listed, of which the newest `new` are not archived yet."""
    stack = LocalStack(
        config.seed,
        REGION,
        processes=True,
        separate_s3_moto=True,
        gls_quota=config.quota,
        gls_latency_ms=config.gls_latency_ms,
        backend_latency_ms=config.backend_latency_ms,
    )
    with stack:
        stack.create_archive_resources(TABLE, BUCKET)
        arns = stack.gls.seed(sessions, region=REGION, succeeded_fraction=1.0)
        if len(arns) != sessions:
            raise RuntimeError(f"emulator seeded {len(arns)} sessions, expected {sessions}")
        # Seeded oldest first; the list is newest first, so the new sessions come on the first pages.
        stack.preload_ledger(TABLE, arns[: sessions - new])
        yield stack


def program_env(stack: LocalStack, config: Config) -> dict[str, str]:
    """The environment of the program under test: only the SDK's own endpoint variables point it here."""
    return stack.env() | {
        "ARCHIVE_TABLE_NAME": TABLE,
        "ARCHIVE_BUCKET_NAME": BUCKET,
        "SOURCE_REGIONS": REGION,
        "LIST_RATE_PER_SECOND": str(config.client_rate),
        "GET_RATE_PER_SECOND": str(config.client_rate),
        "MAX_CONCURRENCY": str(config.concurrency),
        "POWERTOOLS_LOG_LEVEL": "INFO",
    }


def server_calls(stack: LocalStack) -> tuple[dict[str, int], dict[str, int]]:
    """Requests per operation as the servers saw them, and the ones the emulator's quota throttled."""
    gls = stack.gls.calls()
    counts = {**gls["counts"], **stack.faults.calls()}
    throttled = {k.split(":")[0]: v for k, v in gls["fired"].items() if k.endswith(":quota")}
    return counts, throttled


def calibrate(config: Config, samples: int = 21) -> Calibration:
    """Single-call latencies on a fresh stack, paced under the quota so none is throttled."""
    with bench_stack(config, 2_000, 1_000) as stack:
        gls, ddb, s3 = stack.client("gameliftstreams"), stack.client("dynamodb"), stack.client("s3")
        table, bucket = TABLE, BUCKET
        interval = 1.0 / (config.quota * 0.8)

        def timed(call: Callable[[], Any], paced: bool = False) -> tuple[float, Any]:
            started = time.perf_counter()
            result = call()
            took = time.perf_counter() - started
            if paced and took < interval:
                time.sleep(interval - took)
            return took, result

        list_times, items = [], []
        token: str | None = None
        for _ in range(samples):
            request: dict[str, Any] = {"ExportFilesStatus": "SUCCEEDED", "MaxResults": PAGE_SIZE}
            if token:
                request["NextToken"] = token
            took, page = timed(lambda r=request: gls.list_stream_sessions_by_account(**r), paced=True)  # type: ignore[misc]
            list_times.append(took)
            items.extend(page["Items"])
            token = page.get("NextToken")
        arns = [item["Arn"] for item in items]
        get_times = [
            timed(
                lambda a=arn: gls.get_stream_session(Identifier=a.split("/")[1], StreamSessionIdentifier=a),  # type: ignore[misc]
                paced=True,
            )[0]
            for arn in arns[:samples]
        ]
        batch_times = [
            timed(
                lambda i=i: ddb.batch_get_item(  # type: ignore[misc]
                    RequestItems={
                        table: {
                            "Keys": [
                                {LEDGER_PARTITION_KEY: {"S": a}} for a in arns[i * PAGE_SIZE : (i + 1) * PAGE_SIZE]
                            ]
                        }
                    }
                )
            )[0]
            for i in range(min(samples, len(arns) // PAGE_SIZE))
        ]
        get_item_times = [
            timed(lambda a=arn: ddb.get_item(TableName=table, Key={LEDGER_PARTITION_KEY: {"S": a}}))[0]  # type: ignore[misc]
            for arn in arns[:samples]
        ]
        body = b"{" + b'"x": "' + b"y" * 1500 + b'"}\n'
        put_object_times = [
            timed(lambda n=n: s3.put_object(Bucket=bucket, Key=f"calibration/{n}.json", Body=body))[0]  # type: ignore[misc]
            for n in range(samples)
        ]
        put_item_times = [
            timed(lambda n=n: ddb.put_item(TableName=table, Item={LEDGER_PARTITION_KEY: {"S": f"calibration-{n}"}}))[0]  # type: ignore[misc]
            for n in range(samples)
        ]
    median = statistics.median
    return Calibration(
        list_page=median(list_times[1:]),  # the first call opens the connection
        get_stream_session=median(get_times[1:]),
        batch_get_item=median(batch_times[1:]),
        get_item=median(get_item_times[1:]),
        put_object=median(put_object_times[1:]),
        put_item=median(put_item_times[1:]),
        samples=samples,
    )


def run_once(config: Config, program: str, sessions: int, new: int, log_dir: Path) -> Run:
    """Fresh servers, one program in a fresh process, counts from the servers."""
    with bench_stack(config, sessions, new) as stack:
        env = program_env(stack, config)
        name = f"{program}-{sessions}-{new}"
        load = os.getloadavg()[0]
        try:
            if program == "archiver":
                result = programs.run_archiver(env, log_dir, name)
            else:
                result = programs.run_naive(env, log_dir, name, config.naive_cap_s)
        except RuntimeError as error:
            raise RuntimeError(f"at N={sessions}, k={new}: {error}") from None
        counts, throttled = server_calls(stack)
    finished = bool(result.report.get("finished", True))
    return Run(
        program=program,
        sessions=sessions,
        new=new,
        seconds=result.seconds,
        finished=finished,
        calls={k: int(v) for k, v in sorted(counts.items())},
        throttled={k: int(v) for k, v in sorted(throttled.items())},
        peak_rss_mb=result.peak_rss_kb / 1024,
        rss_after_import_mb=result.rss_after_import_kb / 1024,
        load_average=load,
        report=result.report,
        estimated_seconds=result.seconds if finished else None,
    )


def extrapolate_naive(runs: Sequence[Run]) -> None:
    """Estimate the full time of every stopped naive run from the per-step costs the naive runs measured.

    The naive script is sequential, so its time is the sum of its steps: pages x t_page + old x t_old +
    new x t_new. Each cost comes from the run itself when it measured enough of that step, else from all
    naive runs together.
    """
    naive = [r for r in runs if r.program == "naive"]

    def pooled(seconds: str, count: str) -> float:
        total = sum(int(r.report.get(count, 0)) for r in naive)
        return sum(float(r.report.get(seconds, 0.0)) for r in naive) / total if total else 0.0

    costs = {
        "page": pooled("seconds_listing", "pages"),
        "old": pooled("seconds_old", "already_archived"),
        "new": pooled("seconds_new", "archived"),
    }
    for run in naive:
        if run.finished:
            continue
        rep = run.report

        def cost(kind: str, seconds: str, count: str, rep: dict[str, Any] = rep) -> float:
            n = int(rep.get(count, 0))
            return float(rep[seconds]) / n if n >= 20 else costs[kind]

        remaining_pages = pages_of(run.sessions) - int(rep["pages"])
        remaining_old = (run.sessions - run.new) - int(rep["already_archived"])
        remaining_new = run.new - int(rep["archived"])
        run.estimated_seconds = (
            run.seconds
            + max(0, remaining_pages) * cost("page", "seconds_listing", "pages")
            + max(0, remaining_old) * cost("old", "seconds_old", "already_archived")
            + max(0, remaining_new) * cost("new", "seconds_new", "archived")
        )


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def parse_points(text: str) -> list[tuple[int, int]]:
    points = []
    for part in text.split(","):
        sessions, new = part.split(":")
        points.append((int(sessions), int(new)))
    return points


def machine() -> dict[str, str]:
    cpu = cpu_model()
    memory = "?"
    try:
        for line in Path("/proc/meminfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("MemTotal"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    from importlib.metadata import version  # not `import moto`: seconds, for a version string

    return {
        "cpu": f"{os.cpu_count()} x {cpu}",
        "memory": memory,
        "os": platform.platform(),
        "python": platform.python_version(),
        "boto3": version("boto3"),
        "botocore": version("botocore"),
        "moto": version("moto"),
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quota", type=float, default=Config.quota, help="emulator quota, requests/s per API")
    parser.add_argument("--gls-latency-ms", type=float, default=Config.gls_latency_ms)
    parser.add_argument("--backend-latency-ms", type=float, default=Config.backend_latency_ms)
    parser.add_argument("--rate-fraction", type=float, default=Config.rate_fraction)
    parser.add_argument("--concurrency", type=int, default=Config.concurrency)
    parser.add_argument("--naive-cap", type=float, default=Config.naive_cap_s, help="seconds; 0 = no cap")
    parser.add_argument("--points", default=",".join(f"{n}:{k}" for n, k in DEFAULT_POINTS), help="N:k,...")
    parser.add_argument("--no-naive", action="store_true")
    parser.add_argument("--no-coldstart", action="store_true", help="skip import timing and package size")
    parser.add_argument("--out", default=str(ROOT / "docs" / "PERFORMANCE.md"), help="'' to write no doc")
    parser.add_argument("--chart", default=str(ROOT / "docs" / "performance.png"), help="'' for no chart")
    parser.add_argument("--json", default=str(ROOT / "docs" / "performance.json"), help="results; '' for none")
    parser.add_argument("--from-json", default="", help="no run: render the table, doc and chart of this file")
    parser.add_argument("--remeasure-coldstart", action="store_true", help="with --from-json: cold start again")
    parser.add_argument(
        "--calibration-samples",
        type=int,
        default=21,
        help="calls per kind in the calibration; 0: none, page latency = injected latency",
    )
    return parser.parse_args(argv)


def measure(args: argparse.Namespace, command: str) -> Results:
    """Calibrate, run every point with both programs, measure cold start: the Results."""
    config = Config(
        quota=args.quota,
        gls_latency_ms=args.gls_latency_ms,
        backend_latency_ms=args.backend_latency_ms,
        rate_fraction=args.rate_fraction,
        concurrency=args.concurrency,
        naive_cap_s=args.naive_cap or None,
    )
    points = parse_points(args.points)
    started = time.time()
    log(f"calibrating single-call latencies (quota {config.quota:g}/s) ...")
    if args.calibration_samples > 0:
        calibration = calibrate(config, args.calibration_samples)
    else:  # smoke runs: the injected latency stands in for the page latency; nothing else is known
        nan = float("nan")
        calibration = Calibration(config.gls_latency_ms / 1000, nan, nan, nan, nan, nan, 0)
    log(f"  list page {calibration.list_page * 1000:.1f} ms")
    runs: list[Run] = []
    programs = ["archiver"] if args.no_naive else ["archiver", "naive"]
    with tempfile.TemporaryDirectory(prefix="bench-logs-") as logs:
        for n, (sessions, new) in enumerate(points, 1):
            for program in programs:
                run = run_once(config, program, sessions, new, Path(logs))
                runs.append(run)
                floor = floor_seconds(sessions, new, config.quota, calibration.list_page)
                log(
                    f"[{n}/{len(points)}] {program:8} N={sessions:,} k={new:,}: {run.seconds:.1f} s"
                    f"{'' if run.finished else ' (stopped at the cap)'}, floor {floor:.1f} s, "
                    f"throttled {run.total_throttled}, peak RSS {run.peak_rss_mb:.0f} MB, load {run.load_average:.1f}"
                )
    extrapolate_naive(runs)
    cold = None
    package = None
    if not args.no_coldstart:
        from bench import coldstart

        log("measuring cold start (imports) and package size ...")
        cold = coldstart.measure_imports()
        package = coldstart.measure_package()
    return Results(
        config=asdict(config),
        command=command,
        machine=machine(),
        calibration=asdict(calibration),
        runs=runs,
        points=points,
        cold_start=asdict(cold) if cold else None,
        package=asdict(package) if package else None,
        started=started,
        seconds=time.time() - started,
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.from_json:  # re-render the table, doc and chart of an earlier run
        results = Results.from_dict(json.loads(Path(args.from_json).read_text(encoding="utf-8")))
        if args.remeasure_coldstart:
            from bench import coldstart

            cold, package = coldstart.measure_imports(), coldstart.measure_package()
            results.cold_start = asdict(cold)
            results.package = asdict(package) if package else None
            Path(args.from_json).write_text(json.dumps(results.as_dict(), indent=2) + "\n", encoding="utf-8")
    else:
        command = " ".join(["python -m bench.run", *(argv if argv is not None else sys.argv[1:])])
        results = measure(args, command)
    print(report.table(results))
    print()
    print(report.targets_text(results))
    if args.json and not args.from_json:
        Path(args.json).write_text(json.dumps(results.as_dict(), indent=2) + "\n", encoding="utf-8")
    if args.chart:
        report.chart(results, Path(args.chart))
    if args.out:
        Path(args.out).write_text(report.document(results, Path(args.chart) if args.chart else None), encoding="utf-8")
        print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
