"""The simulated day's section of docs/PERFORMANCE.md and its stdout summary, rendered from day.json alone.

The section lives between DAY_BEGIN and DAY_END at the end of PERFORMANCE.md. `make bench-day` replaces it
there (bench.day); `make bench` rewrites the rest of the file and appends this section again, rendered from
docs/day.json (bench.report calls `section_from_json`), so neither benchmark loses the other's figures.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

DAY_JSON = Path(__file__).resolve().parent.parent / "docs" / "day.json"
DAY_BEGIN = "<!-- day:begin -->"
DAY_END = "<!-- day:end -->"
MODE_NAMES = {"a": "(a) polling", "b": "(b) events"}


def replace_section(document: str, section: str, begin: str = DAY_BEGIN, end: str = DAY_END) -> str:
    """`document` with its section between `begin` and `end` replaced by `section` (which carries both
    markers), appended at the end if it has none. Also bench.overhead's section."""
    first, last = document.find(begin), document.find(end)
    if first >= 0 and last > first:
        return document[:first] + section + document[last + len(end) :]
    return document.rstrip("\n") + ("\n\n" if document.strip() else "") + section + "\n"


def section_from_json(path: Path = DAY_JSON) -> str:
    """The section rendered from a day.json, or "" if there is none (bench.report appends it)."""
    if not path.exists():
        return ""
    return section(json.loads(path.read_text(encoding="utf-8")))


# -- numbers ---------------------------------------------------------------------------------------------


def _n(value: float) -> str:
    """A count: whole above 100, else up to 3 significant figures."""
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def _usd(value: float) -> str:
    return f"${value:,.2f}" if value >= 0.01 or value == 0 else f"${value:.4f}"


def _s(seconds: float) -> str:
    if math.isnan(seconds):
        return "-"
    if seconds >= 100:
        return f"{seconds:,.0f} s"
    return f"{seconds:.3f} s" if seconds < 10 else f"{seconds:.1f} s"


def _rate(rate: int | str) -> str:
    return f"{int(rate):,}/day"


# -- tables ----------------------------------------------------------------------------------------------


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *["| " + " | ".join(row) + " |" for row in rows],
    ]


def _day_rows(data: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """One column per rate and mode; infeasible cells say what would be needed, costs and latency say none."""
    days = data["days"]
    columns = [(rate, mode, days[rate][mode]) for rate in days for mode in ("a", "b")]
    header = ["per day (derived)", *[f"{_rate(rate)} {MODE_NAMES[mode]}" for rate, mode, _ in columns]]

    def row(name: str, cell: Any, *, needed: bool = True) -> list[str]:
        out = [name]
        for _, _, day in columns:
            if day["feasible"] or needed:
                text = cell(day)
                out.append(text + (" ✗" if not day["feasible"] else ""))
            else:
                out.append("infeasible")
        return out

    def calls(api: str) -> Any:
        return lambda day: _n(day["calls"][api])

    rows = [
        row("sessions listed per run (W = 90 x R)", lambda d: _n(d["window"])),
        row("runs a day", lambda d: f"{d['runs_per_day']:g}"),
        row(
            "one run: pages, seconds (invocations, at most)",
            lambda d: f"{_n(d['pages_per_run'])}, {_s(d['run_seconds'])} ({d['links_per_run']}, {d['max_links']})",
        ),
        row("ListStreamSessionsByAccount", calls("ListStreamSessionsByAccount")),
        row("GetStreamSession", calls("GetStreamSession")),
        row("BatchGetItem", calls("BatchGetItem")),
        row("DynamoDB read units", lambda d: _n(d["read_units"])),
        row("DynamoDB write units", lambda d: _n(d["write_units"]), needed=False),
        row(
            "S3 PutObject / GetObject (records)",
            lambda d: f"{_n(d['calls']['PutObject'])} / {_n(d['calls']['GetObject'])}",
            needed=False,
        ),
        row("Lambda GB-seconds", lambda d: _n(d["lambda_gb_seconds"]), needed=False),
        row("Lambda invocations", lambda d: _n(d["lambda_requests"]), needed=False),
        row("SQS requests (not priced)", lambda d: _n(d["sqs_requests"]), needed=False),
    ]
    lines = sorted({line for _, _, d in columns for line in d["dollars"]}, key=list(columns[0][2]["dollars"]).index)
    rows += [
        row(f"{line}, $/month", lambda d, line=line: _usd(d["dollars"].get(line, 0.0)), needed=False) for line in lines
    ]
    rows.append(row("**total, $/month**", lambda d: f"**{_usd(d['dollars_total'])}**", needed=False))
    rows.append(
        row(
            "landing -> archived p50 / p95 / max",
            lambda d: " / ".join(_s(d["latency_s"][k]) for k in ("p50", "p95", "max")),
            needed=False,
        )
    )
    return header, rows


def _event_rows(data: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    header = [
        "rate",
        "sessions",
        "arrivals (compression)",
        "landing -> archived p50 / p95 / max",
        "landing -> consumer p50 / p95",
        "per event: Get / BatchGetItem / PutObject / PutItem / GetObject",
        "Lambda s per event",
        "invocations per event",
        "SQS requests per event",
        "delivered again",
        "throttled",
        "load 1m",
    ]
    rows = []
    for phase in data["measured"]["events"]:
        per = phase["calls_per_event"]
        lat, wait = phase["latency_s"], phase["queue_wait_s"]
        sqs = phase["sqs"]
        rows.append(
            [
                _rate(phase["rate"]),
                str(phase["sample"]),
                f"{phase['arrival_rate']:g}/s Poisson (x{phase['compression']:,.1f})",
                " / ".join(_s(lat[k]) for k in ("p50", "p95", "max")),
                f"{_s(wait['p50'])} / {_s(wait['p95'])}",
                " / ".join(
                    f"{per[k]:.2f}" for k in ("GetStreamSession", "BatchGetItem", "PutObject", "PutItem", "GetObject")
                ),
                f"{phase['lambda_seconds'] / phase['sample']:.3f}",
                f"{phase['invocations'] / phase['sample']:.2f}",
                f"{(sqs['receives'] + sqs['delete_calls']) / phase['sample']:.2f}",
                str(phase["redelivered"]),
                str(sum(phase["throttled"].values())),
                f"{phase['load']:.2f}",
            ]
        )
    return header, rows


def _reconcile_rows(data: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    header = [
        "mode (pace: list, get)",
        "listed",
        "pages",
        "run",
        "per page (pace)",
        "List / BatchGetItem / Get / PutObject / PutItem",
        "List, BatchGetItem per page",
        "new",
        "throttled",
        "load 1m",
    ]
    rows = []
    for mode, run in data["measured"]["reconcile"].items():
        calls = run["calls"]
        names = ("ListStreamSessionsByAccount", "BatchGetItem", "GetStreamSession", "PutObject", "PutItem")
        rows.append(
            [
                f"{MODE_NAMES[mode]} ({run['list_rate']:g}/s, {run['get_rate']:g}/s)",
                f"{run['listed']:,}",
                f"{run['pages']:,}",
                _s(run["seconds"]),
                f"{run['seconds_per_page'] * 1000:.1f} ms ({1000 / run['list_rate']:.1f} ms)",
                " / ".join(f"{calls.get(k, 0):,}" for k in names),
                f"{calls.get(names[0], 0) / run['pages']:.2f}, {calls.get(names[1], 0) / run['pages']:.2f}",
                str(run["total"].get("new", 0)),
                str(sum(run["throttled"].values())),
                f"{run['load']:.2f}",
            ]
        )
    return header, rows


def _targets(data: dict[str, Any]) -> list[str]:
    return [f"- **{'holds' if t['holds'] else 'fails'}**: {t['name']}. {t['detail']}." for t in data["targets"]]


def _infeasible(data: dict[str, Any]) -> list[str]:
    out = []
    for rate, pair in data["days"].items():
        for mode, day in pair.items():
            if not day["feasible"]:
                out.append(f"- {MODE_NAMES[mode]} at {_rate(rate)} is **infeasible**: {day['infeasible_because']}.")
    return out


def section(data: dict[str, Any]) -> str:
    """The whole section, markers included."""
    m, setup, modes, prices = data["machine"], data["setup"], data["modes"], data["prices"]
    a, b = modes["a"], modes["b"]
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(data["started"]))
    load0, load1 = data["load_at_start"], data["load_at_end"]
    queue = data["measured"]["queue"]
    per_link = a["lambda_timeout_seconds"] - a["time_budget_margin_seconds"]
    lines = [
        DAY_BEGIN,
        "## A simulated day: 15-minute polling against events + a 6-hour reconcile",
        "",
        "<!-- Generated by `make bench-day` (python -m bench.day; data in day.json). Edit bench/day_doc.py, not",
        "     this section; `python -m bench.day --from-json docs/day.json` re-renders it; `make bench` keeps it. -->",
        "",
        f"Run on {when}, {data['seconds'] / 60:.1f} minutes, on {m['cpu']}, {m['memory']} RAM, {m['os']}, Python"
        f" {m['python']}, moto {m['moto']}: `{data['command']}` (what `make bench-day` runs). Load average (1, 5,"
        f" 15 min) {', '.join(f'{v:.2f}' for v in load0)} at the start, {', '.join(f'{v:.2f}' for v in load1)} at"
        " the end (the benchmark's own servers and workers account for about 1).",
        "",
        "The steady state at R exported sessions a day: the API shows 90 days of them, so every reconcile run"
        " lists W = 90 x R (90,000, 900,000, 9,000,000). Both modes use the stack's defaults (`infra.config`):",
        "",
        f"- **(a) polling** (no `export_locations`): a run every {a['schedule_minutes']} minutes"
        f" ({24 * 60 // a['schedule_minutes']} a day), listing at {a['list_rate_per_second']:g}/s, getting at"
        f" {a['get_rate_per_second']:g}/s; {a['lambda_timeout_seconds']} s timeout, follow-ups up to"
        f" {a['max_continuations']} a period.",
        f"- **(b) events**: the consumer for every export ({b['consumer_max_concurrency']} instances at"
        f" {b['consumer_instance_rate_per_second']:g}/s each = {b['consumer_get_rate_per_second']:g}/s, batches of"
        f" up to {b['consumer_batch_size']}), and a reconcile every {b['schedule_minutes'] / 60:g} hours"
        f" ({24 * 60 // b['schedule_minutes']} a day), listing at {b['list_rate_per_second']:g}/s, getting at"
        f" {b['get_rate_per_second']:g}/s; follow-ups up to {b['max_continuations']} a period.",
        "",
        "### Targets",
        "",
        *_targets(data),
        "",
        "### Per day (derived from the measurements below and W)",
        "",
        *_table(*_day_rows(data)),
        "",
        *_infeasible(data),
        "- ✗: what that mode's runs would need; they cannot run, so it has no cost or latency figure.",
        "",
        "### Measured: the event path",
        "",
        *_table(*_event_rows(data)),
        "",
        f"Each rate's sample: live sessions (the emulator's start-session) exported to `{data.get('exports', 's3://bench-exports/exports/')}`"
        " and ended by the real boto3 client (ExportStreamSessionFiles, TerminateStreamSession), at Poisson"
        f" arrivals of {setup['arrival_rate']:g}/s (seed {setup['seed']}): below the consumers' 4/s, so the latency is"
        " not a queue the compression made. The event path does not grow with the window, so the three samples"
        " measure the same thing at the same arrival rate: they are three repetitions, and the compression only"
        " shortens the run.",
        "",
        "- **landing** = the message's SQS `SentTimestamp` (ms): moto's S3 sends the `Object Created` event to"
        " EventBridge, and the rule puts it on the queue, inside the ZIP's PutObject, so it is the instant the ZIP"
        " landed. **archived** = the instant the consumer's invocation returned with that message not in"
        " `batchItemFailures` (its ledger item written; every sampled session's item is checked afterwards).",
        "  **landing -> consumer** is the part spent before the invocation started (the queue and the poller).",
        "- **No batching window**: the poller long-polls and invokes the consumer as soon as a message is there"
        " (the stack's event source mapping sets no `MaximumBatchingWindowInSeconds`, i.e. 0), so nothing is"
        " excluded from the latency.",
        f"- Consumer: `archiver.events.handler` in {b['consumer_max_concurrency']} warm `local.worker` processes (one"
        " per event source mapping instance, imports and clients done before the measurement), each fed by its"
        " own poller (`local.sqs_poller`, batches of up to 10).",
        "- **calls** are the servers' counts (the emulator, and the proxy in front of moto) over the sample, per"
        " event; the driver's ExportStreamSessionFiles and TerminateStreamSession and the emulator's ZIP upload"
        " are the studio's, not counted here. **Lambda s** = the handler invocations' wall time over the events."
        " **SQS requests** = ReceiveMessage calls that returned messages plus DeleteMessageBatch calls (the event"
        " source mapping's empty long polls come on top, whatever the rate).",
        f"- **delivered again**: sessions whose message came back (export still PENDING, or a failure); the local"
        f" queue's visibility timeout is {queue['visibility_timeout_s']} s (the stack's: 6 x the consumer's timeout).",
        "",
        "### Measured: one reconcile run",
        "",
        *_table(*_reconcile_rows(data)),
        "",
        f"`archiver.handler.handler` in a fresh worker process, after the event phases, listing the"
        f" {setup['listed']:,} seeded sessions (all archived) and every session the events archived: nothing new"
        " (the events archived the same ledger keys the reconciler checks), one List and one BatchGetItem per page"
        " of 100.",
        "",
        "### How the day is derived",
        "",
        "- **pages per run** = W / 100, each one ListStreamSessionsByAccount and one BatchGetItem (measured"
        " above). **One run's seconds** = pages x the measured seconds per page of that mode's run (its fixed cost"
        " spread over its pages: slightly high for long runs), or the new sessions' gets at the get pace when"
        f" longer; **invocations** = one per {per_link} s of it (timeout - time budget margin: a run out of time"
        " invokes its follow-up), at most 1 + the follow-ups a period allows.",
        "- **Infeasible** when one run is longer than its period or needs more invocations than a period allows:"
        " runs could never be 96 a day, and the list would never be read to its end.",
        "- (a) archives each new session in a run: R GetStreamSession, PutObject and PutItem a day. (b)'s"
        " reconcile finds none (measured), so those are R x the consumer's measured calls per event.",
        "- **DynamoDB read units**: 0.5 per key read (BatchGetItem, eventually consistent, items under 4 KB): W a"
        " run, plus one key per event in (b) (one source Region). **Write units**: 1 per PutItem (items under 1 KB).",
        f"- **Lambda GB-seconds** = seconds x {a['lambda_memory_mb']} MB (both functions: `infra/events.py` gives the"
        " consumer `lambda_memory_mb` too); **invocations** = runs x their invocations + events x the measured"
        " invocations per event. The INIT phase is not counted.",
        f"- **$/month** = a day x {prices['hours_per_month'] / 24:.3f} days ({prices['hours_per_month']:g}-hour month)"
        f" at {prices['source']}'s prices: Lambda ${prices['lambda_gb_second']:.10f}/GB-s and"
        f" ${prices['lambda_request'] * 1e6:.2f}/million requests, DynamoDB ${prices['dynamodb_read_unit'] * 1e6:.3f}"
        f"/million read units and ${prices['dynamodb_write_unit'] * 1e6:.3f}/million write units, S3"
        f" ${prices['s3_put'] * 1000:.3f}/1,000 PUT and ${prices['s3_get'] * 1000:.4f}/1,000 GET. Storage, logs and"
        " the fixed CloudWatch lines are left out (DEPLOY.md's table has them). SQS requests are"
        + (
            " priced at DEPLOY.md's SQS price."
            if prices.get("sqs_request")
            else " counted, not priced: DEPLOY.md's table gives no SQS price (it puts SQS in the free tier)."
        )
        + " EventBridge's delivery of the S3 events is neither counted nor priced. GameLift Streams API calls have"
        " no listed charge; they count against the quota. (b)'s invocations per event were measured at the"
        " compressed arrival rate, where events sometimes share a batch: at the real rate it is closer to 1.",
        "- **Latency**: (b) the measured event path. (a) derived: a session lands at a uniformly random moment of"
        " the 15-minute period and waits for the next run (U(0, 900 s)), then for the run to reach it (U(0, run"
        " seconds): the list's order is undocumented). If the list is newest first, as the emulator lists, the"
        " second term is about 0 and (a) is p50 450 s, p95 855 s, max 900 s. A session (b)'s events miss waits for"
        f" the next reconcile: up to {b['schedule_minutes'] / 60:g} hours plus its run.",
        "",
        "### What this does not measure",
        "",
        "- AWS's own delivery from S3 through EventBridge to SQS and the event source mapping's polling: moto"
        " delivers inside the PutObject, so locally they take no time.",
        "- Listing 900,000 or 9,000,000 sessions (derived from the measured run's seconds per page and calls per"
        " page), and follow-up invocations (their fixed cost is in the run's seconds per page only).",
        "- A PENDING export coming back after the stack's visibility timeout (6 x the consumer's timeout);"
        " cold starts.",
        DAY_END,
    ]
    return "\n".join(lines)


def summary(data: dict[str, Any]) -> str:
    """What stdout shows: the targets, the derived day, and the measurements, as in the doc."""
    parts = [
        "Targets:",
        *_targets(data),
        "",
        *_table(*_day_rows(data)),
        *_infeasible(data),
        "",
        *_table(*_event_rows(data)),
        "",
        *_table(*_reconcile_rows(data)),
        "",
        f"command: {data['command']}; machine: {data['machine']['cpu']}; load at start "
        f"{data['load_at_start'][0]:.2f}, at end {data['load_at_end'][0]:.2f}; {data['seconds']:.0f} s",
    ]
    return "\n".join(parts)
