"""A simulated day in the steady state, derived from what bench.day measured (pure arithmetic, no servers).

Nobody can list 9 million sessions 96 times on a laptop, so the day is derived: the API shows `RETENTION_DAYS`
of exported sessions (W = 90 x R listed by every reconcile run), and each mode's calls, units, Lambda time
and cost per day follow from the measured costs of its two parts:

- one reconcile run's listing: seconds per page (its measured time over its pages) and calls per page;
- one event's consumption: calls per event as the servers counted them, Lambda seconds and invocations per
  event, SQS requests per event.

Mode (a) is the stack without `export_locations` (every 15 minutes, nothing else), mode (b) the stack with it
(a reconcile every 6 hours, the consumer for every export). Both come from `infra.config`'s defaults, so
the model follows the stack. What a mode cannot do is reported as infeasible with the numbers that show it,
never as a figure.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from bench.costs import Prices
from bench.results import PAGE_SIZE
from infra.config import ArchiverConfig, load_config_from_mapping

RETENTION_DAYS = 90  # the window the API shows (the console shows 90 days; no API retention is documented)
READ_UNITS_PER_KEY = 0.5  # BatchGetItem, eventually consistent, an item under 4 KB
WRITE_UNITS_PER_PUT = 1.0  # PutItem of a ledger item under 1 KB
SECONDS_PER_DAY = 86_400
LIST_RATIO_TARGET = 20.0
LATENCY_P95_TARGET_S = 5.0
TARGET_FROM_RATE = 10_000  # the ratio target applies at this many sessions a day and above
RATES = (1_000, 10_000, 100_000)
EVENT_CALLS = ("GetStreamSession", "BatchGetItem", "PutObject", "PutItem", "GetObject")


def mode_configs(export_location: str) -> dict[str, ArchiverConfig]:
    """(a) the stack's defaults without export_locations, (b) with them: schedule, paces, timeout, memory."""
    return {
        "a": load_config_from_mapping({}),
        "b": load_config_from_mapping({"export_locations": export_location}),
    }


@dataclass(frozen=True)
class ListingCost:
    """One measured reconcile run: `pages` pages in `seconds` (the handler's invocation), all archived."""

    pages: int
    seconds: float
    list_calls: int
    batch_get_calls: int

    @property
    def seconds_per_page(self) -> float:
        """The run's time over its pages: its fixed cost spread over them (a little high for long runs)."""
        return self.seconds / self.pages


@dataclass(frozen=True)
class EventCost:
    """The consumer's measured cost per event (means over a sample of `events`)."""

    events: int
    calls: dict[str, float]
    lambda_seconds: float
    invocations: float
    sqs_requests: float
    keys_per_batch_get: int  # one per source Region
    latency_p50_s: float
    latency_p95_s: float
    latency_max_s: float


def uniform_sum_quantile(a: float, b: float, q: float) -> float:
    """The q-quantile of U(0, a) + U(0, b), independent (a trapezoid distribution)."""
    a, b = max(a, b), min(a, b)
    if b <= 0:
        return q * a
    if q <= b / (2 * a):  # rising edge: F(x) = x^2 / (2ab)
        return math.sqrt(2 * a * b * q)
    if q <= 1 - b / (2 * a):  # flat middle: F(x) = (x - b/2) / a
        return q * a + b / 2
    return a + b - math.sqrt(2 * a * b * (1 - q))  # falling edge


@dataclass
class ModeDay:
    """One mode at one rate, per day (units, calls) and per month ($)."""

    mode: str
    rate: int
    window: int
    runs_per_day: float
    pages_per_run: int
    run_seconds: float
    links_per_run: int
    max_links: int
    period_seconds: float
    feasible: bool
    infeasible_because: str = ""
    calls: dict[str, float] = field(default_factory=dict)  # per day, by API
    read_units: float = 0.0
    write_units: float = 0.0
    lambda_gb_seconds: float = 0.0
    lambda_requests: float = 0.0
    sqs_requests: float = 0.0
    dollars: dict[str, float] = field(default_factory=dict)  # per month, by line
    latency_s: dict[str, float] = field(default_factory=dict)  # p50, p95, max
    latency_basis: str = ""

    @property
    def dollars_total(self) -> float:
        return sum(self.dollars.values())

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"dollars_total": self.dollars_total}


def _listing(config: ArchiverConfig, listing: ListingCost, pages: int, new_per_run: float) -> tuple[float, int, int]:
    """(the run's seconds, its invocations, the most invocations a period allows): pages at the measured
    time per page, the new sessions' gets at their pace alongside (the pipeline overlaps them)."""
    seconds = max(pages * listing.seconds_per_page, new_per_run / config.get_rate_per_second)
    per_link = config.lambda_timeout_seconds - config.time_budget_margin_seconds
    return seconds, max(1, math.ceil(seconds / per_link)), 1 + config.max_continuations


def _dollars(day: ModeDay, prices: Prices) -> dict[str, float]:
    month = prices.days_per_month
    out = {
        "Lambda duration": day.lambda_gb_seconds * prices.lambda_gb_second * month,
        "Lambda requests": day.lambda_requests * prices.lambda_request * month,
        "DynamoDB reads": day.read_units * prices.dynamodb_read_unit * month,
        "DynamoDB writes": day.write_units * prices.dynamodb_write_unit * month,
        "S3 PUT (records)": day.calls.get("PutObject", 0.0) * prices.s3_put * month,
        "S3 GET (read-backs)": day.calls.get("GetObject", 0.0) * prices.s3_get * month,
    }
    if prices.sqs_request is not None:
        out["SQS requests"] = day.sqs_requests * prices.sqs_request * month
    return out


def derive(
    mode: str,
    config: ArchiverConfig,
    rate: int,
    listing: ListingCost,
    events: EventCost | None,
    prices: Prices,
) -> ModeDay:
    """One mode's day at `rate` exported sessions a day; `events` is the consumer's cost (mode b)."""
    window = RETENTION_DAYS * rate
    pages = math.ceil(window / PAGE_SIZE)
    period = config.schedule_minutes * 60.0
    runs = SECONDS_PER_DAY / period
    # Without events every new session is found by a run; with them, the events archived it first (the
    # measured reconcile run after the events found nothing new).
    new_per_run = 0.0 if events is not None else rate / runs
    seconds, links, max_links = _listing(config, listing, pages, new_per_run)
    day = ModeDay(mode, rate, window, runs, pages, seconds, links, max_links, period, feasible=True)
    if seconds > period or links > max_links:
        needed = runs * pages / SECONDS_PER_DAY
        chain = max_links * (config.lambda_timeout_seconds - config.time_budget_margin_seconds)
        day.feasible = False
        day.infeasible_because = (
            f"one listing of {window:,} sessions is {pages:,} pages = {seconds:,.0f} s at "
            f"{listing.seconds_per_page * 1000:.1f} ms a page, against a {period:,.0f} s period (a chain of "
            f"{max_links} invocations lists for at most {chain:,} s a period); {runs:g} listings a day would need "
            f"{needed:,.0f} list calls/s, against a pace of {config.list_rate_per_second:g}/s under a quota of "
            f"{config.get_quota_per_second:g}/s per API"
        )
    lists = runs * pages
    memory_gb = config.lambda_memory_mb / 1024
    day.calls = {
        "ListStreamSessionsByAccount": lists,
        "GetStreamSession": rate if events is None else 0.0,
        "BatchGetItem": lists,
        "PutObject": rate if events is None else 0.0,
        "PutItem": rate if events is None else 0.0,
        "GetObject": 0.0,
    }
    day.read_units = runs * window * READ_UNITS_PER_KEY
    day.lambda_gb_seconds = runs * seconds * memory_gb
    day.lambda_requests = runs * links
    if events is not None:
        for name in EVENT_CALLS:
            day.calls[name] += rate * events.calls.get(name, 0.0)
        day.read_units += rate * events.calls.get("BatchGetItem", 0.0) * events.keys_per_batch_get * READ_UNITS_PER_KEY
        day.lambda_gb_seconds += rate * events.lambda_seconds * memory_gb
        day.lambda_requests += rate * events.invocations
        day.sqs_requests = rate * events.sqs_requests
        day.latency_s = {"p50": events.latency_p50_s, "p95": events.latency_p95_s, "max": events.latency_max_s}
        day.latency_basis = f"measured: {events.events} sessions through the local chain"
    elif day.feasible:
        day.latency_s = {
            "p50": uniform_sum_quantile(period, seconds, 0.50),
            "p95": uniform_sum_quantile(period, seconds, 0.95),
            "max": period + seconds,
        }
        day.latency_basis = (
            f"derived: U(0, {period:.0f} s) wait for the next run + U(0, {seconds:.0f} s) for the run to reach"
            " the session (its place in the list is undocumented)"
        )
    else:
        day.latency_basis = "none: no run reaches the end of the window"
    day.write_units = day.calls["PutItem"] * WRITE_UNITS_PER_PUT
    day.dollars = _dollars(day, prices)
    return day


@dataclass(frozen=True)
class Verdict:
    name: str
    holds: bool
    detail: str


def ratio_verdicts(days: dict[int, dict[str, ModeDay]]) -> list[Verdict]:
    """(b) uses >= 20x fewer list calls and DynamoDB reads than (a), at TARGET_FROM_RATE a day and above."""
    out = []
    for rate, pair in sorted(days.items()):
        if rate < TARGET_FROM_RATE:
            continue
        a, b = pair["a"], pair["b"]
        lists = a.calls["ListStreamSessionsByAccount"] / b.calls["ListStreamSessionsByAccount"]
        reads = a.read_units / b.read_units
        basis = "" if a.feasible else " ((a) is infeasible here: against what its runs would need)"
        out.append(
            Verdict(
                f"(b) >= {LIST_RATIO_TARGET:g}x fewer list calls and DynamoDB reads than (a) at {rate:,}/day",
                lists >= LIST_RATIO_TARGET and reads >= LIST_RATIO_TARGET,
                f"list calls {a.calls['ListStreamSessionsByAccount']:,.0f} vs "
                f"{b.calls['ListStreamSessionsByAccount']:,.0f} a day = {lists:.1f}x; read units "
                f"{a.read_units:,.0f} vs {b.read_units:,.0f} a day = {reads:.1f}x{basis}",
            )
        )
    return out


def latency_verdicts(events: dict[int, EventCost]) -> list[Verdict]:
    """p95 landing-to-archived <= 5 s locally, per rate's sample."""
    return [
        Verdict(
            f"p95 landing-to-archived <= {LATENCY_P95_TARGET_S:g} s locally at {rate:,}/day",
            cost.latency_p95_s <= LATENCY_P95_TARGET_S,
            f"p50 {cost.latency_p50_s:.3f} s, p95 {cost.latency_p95_s:.3f} s, max {cost.latency_max_s:.3f} s "
            f"over {cost.events} sessions",
        )
        for rate, cost in sorted(events.items())
    ]
