"""`make bench-day`: a simulated day at 1k, 10k and 100k exported sessions a day, in two modes side by side:
(a) today's 15-minute polling, (b) events + a reconcile every 6 hours.

What is MEASURED, on bench.run's stack (processes mode: the emulator with its 20/s quota per API and Region
and 40 ms per call, moto for DynamoDB and one for S3 behind the fault proxy's 10 ms, the servers counting the
calls), with the stack's own defaults (`infra.config`):

1. the event path, per rate: a sample of live sessions exported and ended by the real boto3 client at a
   compressed Poisson arrival rate; each ZIP lands in moto's S3, whose event goes through the EventBridge
   rule to the SQS queue; two pollers (the event source mapping's maximum concurrency) hand each batch to
   `archiver.events.handler` in a warm worker process of its own, at its per-instance pace. Per session:
   landing to archived (bench.day_trace); per event: the calls the servers counted, Lambda seconds and
   invocations, SQS requests.
2. one reconcile run per mode (`archiver.handler.handler` in a fresh worker process, the mode's pacing)
   listing the seeded window plus every session the events archived: all archived, nothing new, so one
   List and one BatchGetItem per 100 listed, and its seconds per page.

What is DERIVED per day from those and the 90-day window (bench.day_model): calls per API, DynamoDB units,
Lambda GB-seconds, $/month at DEPLOY.md's prices (bench.costs), and mode (a)'s latency; what a mode cannot
do is reported as infeasible with its numbers. Output: a summary on stdout, docs/day.json and the day
section of docs/PERFORMANCE.md (bench.day_doc; `make bench` keeps it).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from archiver.records import LEDGER_PARTITION_KEY, SessionArn, parse_session_arn
from bench import day_doc
from bench.costs import load_prices
from bench.day_model import (
    EVENT_CALLS,
    RATES,
    EventCost,
    ListingCost,
    derive,
    latency_verdicts,
    mode_configs,
    ratio_verdicts,
)
from bench.day_trace import Recorder, consumer, warm_up_event
from bench.results import PAGE_SIZE, pages_of
from bench.run import BUCKET, REGION, TABLE, Config, bench_stack, machine, server_calls
from infra.config import ArchiverConfig
from local.sqs_poller import SqsPoller
from local.stack import LocalStack
from local.worker import CONSUMER, Worker

ROOT = Path(__file__).resolve().parent.parent
EXPORTS = "s3://bench-exports/exports/"  # where the sessions' ZIPs land (the export_locations of mode b)
SCHEDULED_FUNCTION = "gameliftstreams-session-archiver"
CONSUMER_FUNCTION = "gameliftstreams-session-archiver-events"
DRIVER_THREADS = 4  # sessions ending at once at most (a Poisson gap can be shorter than one ending takes)
POLL_WAIT_SECONDS = 1  # the pollers' long poll; a message is handed over as it arrives, whatever this is


@dataclass(frozen=True)
class Options:
    rates: tuple[int, ...]
    sample: int  # sessions per rate through the event path
    arrival_rate: float  # sessions ending per second (compressed time), Poisson
    listed: int  # sessions seeded (archived) before the events: the reconcile run lists these + the events'
    seed: int
    bench: Config


def percentile(values: Sequence[float], q: float) -> float:
    """The q-quantile (0..1), linear between the closest ranks."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def archiver_env(stack: LocalStack, config: ArchiverConfig, get_rate: float) -> dict[str, str]:
    """The function's environment as the stack sets it (its pacing from `config`), pointed at the local stack.
    MAX_CONTINUATIONS 0: the measured run fits one invocation, and there is no Lambda service to follow up."""
    return stack.env() | {
        "ARCHIVE_TABLE_NAME": TABLE,
        "ARCHIVE_BUCKET_NAME": BUCKET,
        "ARCHIVE_PREFIX": config.record_prefix,
        "SOURCE_REGIONS": REGION,
        "TIME_BUDGET_MARGIN_SECONDS": str(config.time_budget_margin_seconds),
        "LIST_RATE_PER_SECOND": f"{config.list_rate_per_second:g}",
        "GET_RATE_PER_SECOND": f"{get_rate:g}",
        "MAX_CONCURRENCY": str(config.max_concurrency),
        "MAX_CONTINUATIONS": "0",
        "POWERTOOLS_LOG_LEVEL": config.log_level,
    }


def consumer_env(stack: LocalStack, config: ArchiverConfig) -> dict[str, str]:
    """The consumer contract's environment: the scheduled one's, EXPORT_LOCATIONS, MAX_PENDING_RECEIVES, and
    one instance's share of the consumers' GetStreamSession pace."""
    return archiver_env(stack, config, config.consumer_instance_rate_per_second) | {
        "EXPORT_LOCATIONS": config.export_locations_text,
        "MAX_PENDING_RECEIVES": str(config.max_pending_receives),
    }


def identity(function: str, account: str) -> dict[str, str]:
    return {"function_name": function, "invoked_function_arn": f"arn:aws:lambda:{REGION}:{account}:function:{function}"}


def quota_fired(stack: LocalStack) -> dict[str, int]:
    """Calls the emulator's quota refused so far, by API (its fired counters outlive reset_calls)."""
    return {k.split(":")[0]: v for k, v in stack.gls.calls()["fired"].items() if k.endswith(":quota")}


def end_sessions(stack: LocalStack, sessions: Sequence[SessionArn], rate: float, rng: random.Random) -> float:
    """Export and end each session at Poisson arrival times (`rate` a second), with the real boto3 client:
    the ZIP lands as the session ends. The seconds the arrivals took."""
    api = stack.client("gameliftstreams")

    def end(session: SessionArn) -> None:
        group, sid = session.stream_group_id, session.session_id
        api.export_stream_session_files(Identifier=group, StreamSessionIdentifier=sid, OutputUri=EXPORTS)
        api.terminate_stream_session(Identifier=group, StreamSessionIdentifier=sid)

    started = time.monotonic()
    due = 0.0
    with ThreadPoolExecutor(DRIVER_THREADS, thread_name_prefix="session-end") as pool:
        futures = []
        for session in sessions:
            due += rng.expovariate(rate)
            wait = started + due - time.monotonic()
            if wait > 0:
                time.sleep(wait)  # the arrival schedule itself, not a wait for a result
            futures.append(pool.submit(end, session))
        for future in futures:
            future.result()
    return time.monotonic() - started


def archived_in_ledger(stack: LocalStack, arns: Sequence[str]) -> int:
    """How many of `arns` have a ledger item, read from moto directly (not counted by the proxy)."""
    ddb = stack.client("dynamodb", direct=True)
    found = 0
    for start in range(0, len(arns), PAGE_SIZE):
        keys = [{LEDGER_PARTITION_KEY: {"S": arn}} for arn in arns[start : start + PAGE_SIZE]]
        projection = {"ProjectionExpression": "#k", "ExpressionAttributeNames": {"#k": LEDGER_PARTITION_KEY}}
        request: dict[str, Any] = {TABLE: {"Keys": keys, **projection}}
        while request:
            answer = ddb.batch_get_item(RequestItems=request)
            found += len(answer["Responses"].get(TABLE, []))
            request = answer.get("UnprocessedKeys") or {}
    return found


def event_phase(stack: LocalStack, recorder: Recorder, options: Options, rate: int, index: int) -> dict[str, Any]:
    """One rate's sample through the event path; its measured figures."""
    sessions = []
    for _ in range(options.sample):
        parsed = parse_session_arn(stack.gls.start(region=REGION)["Arn"])
        if parsed is None:
            raise RuntimeError("the emulator started a session without a stream-session ARN")
        sessions.append(parsed)
    recorder.begin(s.session_id for s in sessions)
    stack.gls.reset_calls()
    stack.faults.reset_calls()
    fired = quota_fired(stack)
    load = os.getloadavg()[0]
    arrivals = end_sessions(stack, sessions, options.arrival_rate, random.Random(options.seed + index))
    if not recorder.wait(timeout=120.0 + 10 * options.sample):
        raise RuntimeError(f"at {rate:,}/day, not archived in time: {recorder.missing()[:10]}")
    counts, _ = server_calls(stack)
    throttled = {k: v - fired.get(k, 0) for k, v in quota_fired(stack).items() if v - fired.get(k, 0)}
    arns = [s.arn for s in sessions]
    in_ledger = archived_in_ledger(stack, arns)
    if in_ledger != len(arns):
        raise RuntimeError(f"at {rate:,}/day, {len(arns) - in_ledger} acknowledged sessions have no ledger item")
    traces = list(recorder.traces.values())
    latencies = [t.latency for t in traces]
    waits = [(t.received_at or 0.0) - (t.landed_at or 0.0) for t in traces]
    c = recorder.counters
    n = len(traces)
    return {
        "rate": rate,
        "sample": n,
        "arrival_rate": options.arrival_rate,
        "compression": options.arrival_rate / (rate / 86_400),
        "arrivals_s": arrivals,
        "load": load,
        "latency_s": {"p50": percentile(latencies, 0.5), "p95": percentile(latencies, 0.95), "max": max(latencies)},
        "queue_wait_s": {"p50": percentile(waits, 0.5), "p95": percentile(waits, 0.95), "max": max(waits)},
        "latencies_s": [round(v, 4) for v in latencies],
        "calls": {k: int(v) for k, v in sorted(counts.items())},
        "calls_per_event": {name: counts.get(name, 0) / n for name in EVENT_CALLS},
        "throttled": throttled,
        "deliveries": sum(t.deliveries for t in traces),
        "redelivered": sum(t.deliveries > 1 for t in traces),
        "invocations": c.invocations,
        "failed_invocations": c.failed_invocations,
        "per_instance": {str(k): v for k, v in sorted(c.per_instance.items())},
        "lambda_seconds": c.lambda_seconds,
        "sqs": {"receives": c.receives, "delete_calls": c.delete_calls, "empty_receives": c.empty_receives},
        "foreign": c.foreign,
        "in_ledger": in_ledger,
    }


def reconcile_run(
    stack: LocalStack, mode: str, config: ArchiverConfig, account: str, log_dir: Path, expected: int
) -> dict[str, Any]:
    """One scheduled run with the mode's pacing in a fresh worker process; what it listed, called, took."""
    env = archiver_env(stack, config, config.get_rate_per_second)
    stack.gls.reset_calls()
    stack.faults.reset_calls()
    fired = quota_fired(stack)
    load = os.getloadavg()[0]
    with Worker(log_dir / f"reconcile-{mode}", standby=False, env=env) as worker:
        run = worker.invoke(
            env, timeout=float(config.lambda_timeout_seconds), context=identity(SCHEDULED_FUNCTION, account)
        )
        if run.failed or run.summary is None:
            raise RuntimeError(f"reconcile run ({mode}) failed: {run.error}\n{worker.logs()[-3000:]}")
    counts, _ = server_calls(stack)
    total = run.summary.get("total", {})
    if int(total.get("listed", -1)) != expected:
        raise RuntimeError(f"reconcile run ({mode}) listed {total.get('listed')}, expected {expected}")
    pages = pages_of(expected)
    return {
        "mode": mode,
        "listed": int(total["listed"]),
        "pages": pages,
        "seconds": run.seconds,
        "seconds_per_page": run.seconds / pages,
        "list_rate": config.list_rate_per_second,
        "get_rate": config.get_rate_per_second,
        "calls": {k: int(v) for k, v in sorted(counts.items())},
        "throttled": {k: v - fired.get(k, 0) for k, v in quota_fired(stack).items() if v - fired.get(k, 0)},
        "total": total,
        "load": load,
    }


def measure(options: Options) -> dict[str, Any]:
    """Both measurements on one stack: the event phases (pollers running), then the reconcile runs."""
    configs = mode_configs(EXPORTS)
    b = configs["b"]
    events: list[dict[str, Any]] = []
    log(f"stack: {options.listed:,} archived sessions seeded, quota {options.bench.quota:g}/s ...")
    with bench_stack(options.bench, options.listed, 0) as stack, tempfile.TemporaryDirectory(prefix="day-") as tmp:
        resources = stack.create_event_resources(b.export_locations_text, max_pending_receives=b.max_pending_receives)
        account = str(stack.gls.config()["account_id"])
        recorder = Recorder()
        env = consumer_env(stack, b)
        who = identity(CONSUMER_FUNCTION, account)
        workers = [
            Worker(Path(tmp) / f"consumer-{i}", standby=False, env=env) for i in range(b.consumer_max_concurrency)
        ]
        pollers: list[SqsPoller] = []
        try:
            for worker in workers:  # the container's INIT: imports and clients, before anything is measured
                event = warm_up_event(resources.queue_arn, REGION)
                warm = worker.invoke(env, event=event, handler=CONSUMER, context=who)
                if warm.failed:
                    raise RuntimeError(f"consumer warm-up failed: {warm.error}\n{worker.logs()[-3000:]}")
            for i, worker in enumerate(workers):
                handler = consumer(worker, env, recorder, i, who)
                client = recorder.sqs_client(resources.endpoint_url, REGION)
                poller = stack.poller(
                    handler, batch_size=b.consumer_batch_size, wait_time_seconds=POLL_WAIT_SECONDS, sqs_client=client
                )
                pollers.append(poller.start())
            for index, rate in enumerate(options.rates):
                phase = event_phase(stack, recorder, options, rate, index)
                events.append(phase)
                lat = phase["latency_s"]
                log(
                    f"events at {rate:,}/day: {phase['sample']} sessions at {options.arrival_rate:g}/s "
                    f"(x{phase['compression']:,.1f}), landing -> archived p50 {lat['p50']:.3f} s, "
                    f"p95 {lat['p95']:.3f} s, max {lat['max']:.3f} s; calls {phase['calls']}; load {phase['load']:.2f}"
                )
        finally:
            for poller in pollers:
                poller.stop()
            for worker in workers:
                worker.close()
        expected = options.listed + options.sample * len(options.rates)
        reconcile = {}
        for mode, config in configs.items():
            reconcile[mode] = run = reconcile_run(stack, mode, config, account, Path(tmp), expected)
            log(
                f"reconcile ({mode}): {run['listed']:,} listed in {run['seconds']:.2f} s = "
                f"{run['seconds_per_page'] * 1000:.1f} ms a page; calls {run['calls']}; load {run['load']:.2f}"
            )
    queue = {"visibility_timeout_s": resources.visibility_timeout, "max_receive_count": resources.max_receive_count}
    return {"events": events, "reconcile": reconcile, "queue": queue}


def event_cost(phase: dict[str, Any]) -> EventCost:
    n = int(phase["sample"])
    sqs = phase["sqs"]
    return EventCost(
        events=n,
        calls={k: float(v) for k, v in phase["calls_per_event"].items()},
        lambda_seconds=float(phase["lambda_seconds"]) / n,
        invocations=int(phase["invocations"]) / n,
        sqs_requests=(int(sqs["receives"]) + int(sqs["delete_calls"])) / n,
        keys_per_batch_get=1,  # one source Region
        latency_p50_s=float(phase["latency_s"]["p50"]),
        latency_p95_s=float(phase["latency_s"]["p95"]),
        latency_max_s=float(phase["latency_s"]["max"]),
    )


def listing_cost(run: dict[str, Any]) -> ListingCost:
    calls = run["calls"]
    return ListingCost(
        pages=int(run["pages"]),
        seconds=float(run["seconds"]),
        list_calls=int(calls.get("ListStreamSessionsByAccount", 0)),
        batch_get_calls=int(calls.get("BatchGetItem", 0)),
    )


def derive_all(measured: dict[str, Any], rates: Sequence[int]) -> dict[str, Any]:
    """Per rate and mode: the day; and the targets judged on it."""
    configs = mode_configs(EXPORTS)
    prices = load_prices()
    costs = {int(phase["rate"]): event_cost(phase) for phase in measured["events"]}
    days = {}
    for rate in rates:
        days[rate] = {
            "a": derive("a", configs["a"], rate, listing_cost(measured["reconcile"]["a"]), None, prices),
            "b": derive("b", configs["b"], rate, listing_cost(measured["reconcile"]["b"]), costs[rate], prices),
        }
    verdicts = ratio_verdicts(days) + latency_verdicts(costs)
    modes = {
        mode: {
            "schedule_minutes": c.schedule_minutes,
            "list_rate_per_second": c.list_rate_per_second,
            "get_rate_per_second": c.get_rate_per_second,
            "lambda_timeout_seconds": c.lambda_timeout_seconds,
            "time_budget_margin_seconds": c.time_budget_margin_seconds,
            "lambda_memory_mb": c.lambda_memory_mb,
            "max_continuations": c.max_continuations,
            "get_quota_per_second": c.get_quota_per_second,
            "events": c.events_enabled,
            "consumer_get_rate_per_second": c.consumer_get_rate_per_second,
            "consumer_max_concurrency": c.consumer_max_concurrency,
            "consumer_instance_rate_per_second": c.consumer_instance_rate_per_second,
            "consumer_batch_size": c.consumer_batch_size,
            "max_pending_receives": c.max_pending_receives,
        }
        for mode, c in configs.items()
    }
    return {
        "modes": modes,
        "prices": prices.as_dict(),
        "days": {str(rate): {m: d.as_dict() for m, d in pair.items()} for rate, pair in days.items()},
        "targets": [asdict(v) for v in verdicts],
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.day", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default=",".join(str(r) for r in RATES), help="exported sessions a day, ...")
    parser.add_argument("--sample", type=int, default=200, help="sessions through the event path per rate")
    parser.add_argument("--arrival-rate", type=float, default=1.5, help="sessions ending per second (compressed)")
    parser.add_argument("--listed", type=int, default=15_000, help="archived sessions the reconcile run lists")
    parser.add_argument("--seed", type=int, default=9)
    parser.add_argument("--quota", type=float, default=Config.quota, help="emulator quota, requests/s per API")
    parser.add_argument("--gls-latency-ms", type=float, default=Config.gls_latency_ms)
    parser.add_argument("--backend-latency-ms", type=float, default=Config.backend_latency_ms)
    parser.add_argument("--quick", action="store_true", help="a smoke run: 6 sessions a rate, 300 listed")
    parser.add_argument("--out", default=str(ROOT / "docs" / "PERFORMANCE.md"), help="'' to write no doc")
    parser.add_argument("--json", default=str(day_doc.DAY_JSON), help="results; '' for none")
    parser.add_argument("--from-json", default="", help="no run: render the section of this file")
    return parser.parse_args(argv)


def options_of(args: argparse.Namespace) -> Options:
    sample, listed = (6, 300) if args.quick else (args.sample, args.listed)
    if args.arrival_rate <= 0 or sample < 1 or listed < 0:
        raise SystemExit("--arrival-rate, --sample must be > 0 and --listed >= 0")
    bench = Config(quota=args.quota, gls_latency_ms=args.gls_latency_ms, backend_latency_ms=args.backend_latency_ms)
    rates = tuple(int(part) for part in args.rates.split(","))
    return Options(rates, sample, args.arrival_rate, listed, args.seed, bench)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.from_json:
        data = json.loads(Path(args.from_json).read_text(encoding="utf-8"))
    else:
        options = options_of(args)
        command = " ".join(["python -m bench.day", *(argv if argv is not None else sys.argv[1:])])
        started, load = time.time(), os.getloadavg()
        measured = measure(options)
        data = {
            "command": command.strip(),
            "exports": EXPORTS,
            "machine": machine(),
            "started": started,
            "seconds": time.time() - started,
            "load_at_start": list(load),
            "load_at_end": list(os.getloadavg()),
            "setup": {
                **asdict(options.bench),
                "sample": options.sample,
                "arrival_rate": options.arrival_rate,
                "listed": options.listed,
                "seed": options.seed,
                "batch_window_s": 0,
                "poll_wait_s": POLL_WAIT_SECONDS,
            },
            "measured": measured,
            **derive_all(measured, options.rates),
        }
    print(day_doc.summary(data))
    if args.json and not args.from_json:
        Path(args.json).write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    if args.out:
        path = Path(args.out)
        old = path.read_text(encoding="utf-8") if path.exists() else ""
        path.write_text(day_doc.replace_section(old, day_doc.section(data)), encoding="utf-8")
        print(f"\nwrote the day section of {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
