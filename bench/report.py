"""The benchmark's table, target checks, chart and docs/PERFORMANCE.md, all from one set of results (rendering only)."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from pathlib import Path

from bench import day_doc
from bench.results import ARCHIVER_CALLS, NAIVE_CALLS, Results, Run, pages_of, targets


def _s(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds:,.0f} s" if seconds >= 100 else f"{seconds:.2f} s" if seconds < 10 else f"{seconds:.1f} s"


def _calls(run: Run | None, names: Sequence[str]) -> str:
    if run is None:
        return "-"
    return " / ".join(f"{run.calls.get(name, 0):,}" for name in names)


def _naive_time(run: Run | None) -> str:
    if run is None:
        return "-"
    if run.finished:
        return _s(run.seconds)
    return f"~{_s(run.estimated_seconds)} (extrapolated; stopped at {run.seconds:.0f} s)"


def table(results: Results) -> str:
    """One row per point: the archiver and the naive script on the same data."""
    header = (
        "| N listed | k new | floor | archiver | archiver / floor | naive | naive / archiver "
        "| archiver calls: List / BatchGet / Get / PutObject / PutItem "
        "| naive calls: List / GetItem / Get / PutObject / PutItem "
        "| throttled: archiver / naive | peak RSS MB: archiver / naive | load 1m |"
    )
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    for sessions, new in results.points:
        archiver = results.run("archiver", sessions, new)
        naive = results.run("naive", sessions, new)
        floor = results.floor(sessions, new)
        ratio = f"{archiver.seconds / floor:.3f}" if archiver else "-"
        speedup = "-"
        if archiver and naive and naive.estimated_seconds:
            speedup = f"{'~' if not naive.finished else ''}{naive.estimated_seconds / archiver.seconds:,.1f}x"
        throttled = " / ".join(
            "-" if r is None else f"{r.total_throttled} ({r.total_throttled / max(1, r.total_calls):.2%})"
            for r in (archiver, naive)
        )
        rss = " / ".join("-" if r is None else f"{r.peak_rss_mb:.1f}" for r in (archiver, naive))
        naive_calls = _calls(naive, NAIVE_CALLS) + ("" if naive is None or naive.finished else " (to the stop)")
        load = " / ".join(f"{r.load_average:.1f}" for r in (archiver, naive) if r is not None)
        lines.append(
            f"| {sessions:,} | {new:,} | {_s(floor)} | {_s(archiver.seconds if archiver else None)} | {ratio} "
            f"| {_naive_time(naive)} | {speedup} | {_calls(archiver, ARCHIVER_CALLS)} | {naive_calls} "
            f"| {throttled} | {rss} | {load} |"
        )
    return "\n".join(lines)


def targets_text(results: Results) -> str:
    return "\n".join(f"- [{'x' if t.holds else ' '}] {t.name}: {t.detail}" for t in targets(results))


def chart(results: Results, path: Path) -> None:
    """Wall time vs N (log-log): archiver, naive (hollow where extrapolated) and the floor, per new fraction."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover - matplotlib is in requirements-dev.txt
        print("no chart: matplotlib is not installed")
        return
    series: dict[str, list[tuple[int, int]]] = {"k = 0": [], "k = 10% of N (max 5,000)": []}
    for sessions, new in results.points:
        if new == 0:
            series["k = 0"].append((sessions, new))
        elif new == min(5_000, sessions // 10):
            series["k = 10% of N (max 5,000)"].append((sessions, new))
    series = {title: points for title, points in series.items() if points}
    if not series:
        print("no chart: no point with k = 0 or k = 10% of N")
        return
    figure, axes_array = plt.subplots(1, len(series), figsize=(5.5 * len(series), 4.2), sharey=True, squeeze=False)
    axes = list(axes_array[0])
    for ax, (title, points) in zip(axes, series.items(), strict=True):
        xs = [n for n, _ in points]
        ax.plot(xs, [results.floor(n, k) for n, k in points], "k--", label="floor", linewidth=1)
        archiver = [(n, results.run("archiver", n, k)) for n, k in points]
        ax.plot([n for n, r in archiver if r], [r.seconds for _, r in archiver if r], "o-", label="archiver")
        naive = [(n, results.run("naive", n, k)) for n, k in points]
        measured = [(n, r) for n, r in naive if r and r.finished]
        estimated = [(n, r) for n, r in naive if r and not r.finished and r.estimated_seconds]
        line = ax.plot(
            [n for n, r in naive if r and r.estimated_seconds],
            [r.estimated_seconds for _, r in naive if r and r.estimated_seconds],
            "-",
            color="tab:red",
            label="naive script",
        )[0]
        ax.plot([n for n, _ in measured], [r.seconds for _, r in measured], "o", color=line.get_color())
        if estimated:
            ax.plot(
                [n for n, _ in estimated],
                [r.estimated_seconds for _, r in estimated],
                "o",
                markerfacecolor="white",
                color=line.get_color(),
                label="naive, extrapolated",
            )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(title)
        ax.set_xlabel("sessions listed (N)")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("wall time (s)")
    axes[0].legend()
    figure.suptitle(
        f"Archiver vs naive script, GameLift Streams quota {results.config['quota']:g}/s per API, "
        f"{results.config['gls_latency_ms']:g} ms GameLift Streams / {results.config['backend_latency_ms']:g} ms "
        "DynamoDB+S3 latency"
    )
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def _ms(seconds: float) -> str:
    return "n/a" if math.isnan(seconds) else f"{seconds * 1000:.1f}"  # NaN: not calibrated


def document(results: Results, chart_path: Path | None) -> str:
    """docs/PERFORMANCE.md: what was run, on what, the table, the targets, and what the numbers mean."""
    c = results.config
    cal = results.calibration
    m = results.machine
    quota = float(c["quota"])
    rate = round(quota * float(c["rate_fraction"]), 3)
    per_session = cal["get_stream_session"] + cal["put_object"] + cal["put_item"]
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(results.started))
    lines = [
        "# Performance",
        "",
        "<!-- Generated by `make bench` (python -m bench.run; data in performance.json). Edit bench/report.py,",
        "     not this file; `python -m bench.run --from-json docs/performance.json` re-renders it. -->",
        "",
        "How fast the archiver archives, against the floor the GameLift Streams quota allows and against the",
        "obvious script, on the same data, with the quota enforced and latency injected.",
        "",
        f"Run on {when}, {results.seconds / 60:.0f} minutes: `{results.command.strip()}` (what `make bench` runs).",
        "",
        "## Targets",
        "",
        *[f"- {'**holds**' if t.holds else '**does not hold**'}: {t.name}. {t.detail}." for t in targets(results)],
        "",
        "## Results",
        "",
        table(results),
        "",
        "- **floor** = max(pages x page latency, pages / quota, k / quota) with pages = ceil(N / 100): pages come",
        "  one after another (each needs the previous `NextToken`), and each API's quota caps its own calls.",
        f"  Page latency = {_ms(cal['list_page'])} ms, the measured median round trip of one 100-item page by a",
        f"  bare boto3 client ({c['gls_latency_ms']:g} ms injected + the emulator's work + parsing the page);",
        f"  quota = {quota:g}/s. The emulator's bucket would allow a burst of {max(1, int(quota))} calls; the floor",
        "  ignores that burst and so does the archiver.",
        "- **archiver** = wall time of the real handler's invocation, `archiver.handler.handler({}, context)`, in",
        "  a fresh process; its imports and clients (the Lambda INIT phase) are measured under Cold start.",
        "  **naive** = the same for `bench/naive.py`, after its imports and clients.",
        "- **calls** are counted by the servers (the emulator, and the proxy in front of moto), retries included.",
        "  **throttled** = calls the emulator's quota answered with `ThrottlingException`, and their share of all",
        "  calls of the run. **peak RSS** = the program's own peak resident memory (`VmHWM`).",
        "- **load 1m** = the machine's 1-minute load average as each run started (archiver / naive). The",
        "  benchmark's own servers account for about 1; more means other work was sharing the 2 cores.",
    ]
    if any(r.program == "naive" and not r.finished for r in results.runs):
        lines += [
            f"- **naive, extrapolated (`~`)**: the naive script was stopped after {c['naive_cap_s']:g} s. Its",
            "  total is the time measured + remaining pages x its measured time per page + remaining archived",
            "  sessions x its measured time per `GetItem` + remaining new sessions x its measured time per new",
            "  session (GetItem + GetStreamSession + PutObject + PutItem); each cost is the run's own, or pooled over",
            "  all naive runs where the run measured fewer than 20. The script is sequential, so the sum is what",
            "  it would take. Its calls are those made until it was stopped.",
        ]
    zero = [r for r in results.runs if r.program == "archiver" and r.new == 0]
    if zero:
        per_page = ", ".join(
            f"N={r.sessions:,}: {r.seconds / pages_of(r.sessions) * 1000:.0f} ms (load {r.load_average:.1f})"
            for r in zero
        )
        lines += [
            "- **k = 0** (not among the targets): listing is the critical path, so what counts is the archiver's",
            f"  time per page against the {_ms(cal['list_page'])} ms page latency: {per_page}.",
            "  The difference is a fixed ~0.3 s per run (threads, first connections, the last page's",
            "  `BatchGetItem`, the summary: most of N = 1,000) and CPU: each page's `BatchGetItem` is served by",
            "  moto on the same two cores as the emulator, and other work shared them (load column), so these",
            "  points vary from run to run. In AWS, DynamoDB does not take the emulator's CPU.",
        ]
    lines += [
        "",
        "![wall time vs N: archiver, naive script and floor](performance.png)" if chart_path else "",
        "",
        "## How the archiver gets there",
        "",
        "- **Pipeline** (`lambdas/archiver/run.py`): per Region, one thread only lists (the critical path),",
        "  one thread asks DynamoDB which ARNs of each page are archived (`BatchGetItem`, 100 keys, key only),",
        "  and a fixed pool of `MAX_CONCURRENCY` workers does GetStreamSession, PutObject, PutItem for each new",
        "  session. New sessions wait for a worker in a queue of compact entries (ARN and listed CreatedAt, up",
        "  to 10,000): the new sessions are the newest, listed first, and the listing must not wait for their",
        "  quota-paced gets while the remaining pages can be listed and checked. Regions run in parallel, each",
        "  with its own pipeline and token buckets.",
        "- **Client-side rate limit** (`ratelimit.py`): a token bucket per API and Region, one token deep, at",
        "  `LIST_RATE_PER_SECOND` / `GET_RATE_PER_SECOND` (default 18, under the 20/s quota). Calls are spaced,",
        "  not burst, so the quota is not hit and nothing is retried into throttling.",
        "- **Minimal calls**: one list call per page of 100, one `BatchGetItem` per page, and per new session one",
        "  GetStreamSession, one PutObject, one PutItem (`tests/integration/test_call_counts.py` counts them).",
        "- **Cold start**: the three clients are built at import, in the Lambda INIT phase.",
        "",
        "## Setup",
        "",
        f"- Machine: {m['cpu']}, {m['memory']} RAM, {m['os']}, Python {m['python']}, boto3 {m['boto3']},",
        f"  moto {m['moto']}. Loopback only. The machine is shared with other work: see the load column.",
        "- Every run gets fresh servers, each in its own process so none shares the program's GIL (the local",
        "  stack in processes mode, `local.stack.LocalStack(processes=True)`):",
        f"  `python -m local.gls --rate {quota:g} --latency-ms {c['gls_latency_ms']:g}` (a token bucket of",
        f"  {quota:g}/s, burst {max(1, int(quota))}, per API and Region; excess calls get HTTP 429",
        "  `ThrottlingException`); one moto server for DynamoDB and one for S3 (an on-demand table with SSE, a",
        "  versioned bucket with default encryption, as the CDK stack makes them); and the project's fault proxy",
        f"  (`python -m local.fault_proxy`) in front of both, adding {c['backend_latency_ms']:g} ms to every",
        "  DynamoDB and S3 call.",
        "- Data: N sessions whose export SUCCEEDED; the N - k oldest are in the ledger already, so the k new",
        "  ones are the newest and come first in the list, as in a scheduled run. That is the hard case for a",
        "  bounded pipeline: the gets of the first pages must not hold up the listing of the rest.",
        f"- Archiver: `LIST_RATE_PER_SECOND` = `GET_RATE_PER_SECOND` = {rate:g} ({float(c['rate_fraction']):.0%} of",
        f"  the quota), `MAX_CONCURRENCY` = {c['concurrency']}, everything else default. Little's law: at {rate:g}",
        f"  sessions/s and {_ms(per_session)} ms per session (Get + PutObject + PutItem, below) about"
        f" {rate * per_session:.1f} sessions are",
        "  in flight; the rest of the pool waits for tokens, which keeps a worker ready for every token when",
        "  the shared machine slows calls down. In AWS (~100-200 ms per session at 18/s, 2-4 in flight) the",
        "  default of 8 suffices.",
        "- Naive script (`bench/naive.py`): pages of 100 one after another, one `GetItem` per listed session,",
        "  then for each new one GetStreamSession, PutObject, PutItem; default boto3 clients, no rate limit. It",
        "  writes the same record under the same key (it reuses `archiver.records`).",
        "",
    ]
    if cal.get("samples"):
        lines += [
            f"Single-call latencies on this stack (median of {cal['samples'] - 1} sequential calls by a bare boto3"
            " client, injected latency included):",
            "",
            "| call | ms |",
            "|---|---|",
            *[
                f"| {name} | {_ms(cal[key])} |"
                for name, key in (
                    ("ListStreamSessionsByAccount (100 items)", "list_page"),
                    ("GetStreamSession", "get_stream_session"),
                    ("BatchGetItem (100 keys)", "batch_get_item"),
                    ("GetItem", "get_item"),
                    ("PutObject (~1.5 KB)", "put_object"),
                    ("PutItem", "put_item"),
                )
            ],
            "",
        ]
    lines += [
        f"### Why the quota is {quota:g}/s here",
        "",
        "The issue allows raising the emulator's quota to keep runs short, with the floor and the archiver's",
        "rates following it (`--quota` does both). On this 2-core machine a higher quota measures moto rather",
        "than the archiver: each new session costs moto several ms of CPU for PutObject and PutItem (see the",
        "latencies above, 10 ms of each injected), and the emulator, both moto servers, the proxy and the",
        "archiver share the two cores. At the real quota of 20/s per API the GameLift Streams quota is what",
        "binds, which is what the floor assumes.",
        "",
    ]
    lines += _memory_section(results)
    lines += _cold_start_section(results)
    lines += [
        "## What this does not measure",
        "",
        "- Real AWS: latencies and the quota's burst differ. The archiver does not rely on a burst.",
        "- X-Ray: Powertools Tracer disables itself outside Lambda, so the per-call subsegments that active",
        "  tracing adds in AWS cost nothing here.",
        "- Several Regions: each has its own pipeline and token buckets and runs in parallel; this benchmark",
        "  uses one.",
        "",
    ]
    # The sections of `make bench-day` and `make bench-overhead`, kept: rendered again from their JSON.
    from bench import overhead  # here: bench.overhead imports bench.run, which imports this module

    for kept in (day_doc.section_from_json(), overhead.section_from_json()):
        if kept:
            lines += [kept, ""]
    return "\n".join(lines)


def _memory_section(results: Results) -> list[str]:
    runs = sorted((r for r in results.runs if r.program == "archiver"), key=lambda r: (r.new, r.sessions))
    if not runs:
        return []
    lines = [
        "## Memory",
        "",
        "Peak resident memory of the archiver's process (`VmHWM`), and after its imports and clients:",
        "",
        "| N listed | k new | after import MB | peak MB |",
        "|---|---|---|---|",
        *[f"| {r.sessions:,} | {r.new:,} | {r.rss_after_import_mb:.1f} | {r.peak_rss_mb:.1f} |" for r in runs],
        "",
        "Nothing holds all N listed sessions: at most 4 pages wait for the dedup stage, and at most 10,000 new",
        "sessions (an ARN and a timestamp each) wait for a worker; the set of new ARNs taken this run (to skip a",
        "session the list repeats) grows with k, not N.",
        "",
    ]
    return lines


def _cold_start_section(results: Results) -> list[str]:
    cold, package = results.cold_start, results.package
    if not cold and not package:
        return []
    lines = ["## Cold start", ""]
    if cold:
        after = cold["import_handler_s"]
        before = cold["import_handler_runtime_sdk_s"]
        uncompiled = cold["import_handler_no_bytecode_s"]
        clients = after - cold["import_handler_no_clients_s"]
        lines += [
            f"Measured {cold['measured']} by `{cold['command']}`, with {cold['python']}, the runtime's version,",
            f"on {cold['machine']}: 2 cores, shared with other work (1-minute load {cold['load_average']:.1f} as it",
            "started), so the figures are noisy; compare them with each other, not with another run. Each is the",
            f"median of {cold['runs']} fresh processes, taken in rounds (one of each figure per round, shuffled) so",
            "that the load weighs on all alike, importing the handler from an asset built by the stack's own bundler",
            "(`infra/bundling.py`; for x86_64, which this machine runs: the deployed arm64 asset differs only in",
            "wrapt's compiled extension) with `PYTHONDONTWRITEBYTECODE=1`, as in Lambda, whose `/var/task` is",
            "read-only: what the asset does not hold compiled is compiled again at every cold start. Before the",
            "timings, a verbose import of each layout checks where botocore and Powertools come from and which",
            "folders bytecode is loaded from.",
            "",
            "| `import archiver.handler` (modules + clients: the INIT phase) | ms |",
            "|---|---|",
            "| **after** (issue 10): the SDK bundled, the asset's bytecode compiled by the runtime's version "
            f"(as deployed) | {after * 1000:.0f} |",
            "| **before**: the SDK left to the runtime, the asset without bytecode (the runtime's SDK stood in for by "
            f"the same boto3/botocore, compiled, on `sys.path` behind the asset) | {before * 1000:.0f} |",
            f"| the SDK bundled, without bytecode (bundling alone) | {uncompiled * 1000:.0f} |",
            "",
            f"Bundling the SDK without bytecode would cost {(uncompiled - before) * 1000:.0f} ms per cold start here"
            f" (botocore compiled at every start); with the bytecode the handler imports in {after * 1000:.0f} ms, "
            f"{abs(before - after) * 1000:.0f} ms {'less' if after < before else 'more'} than before"
            + (
                ": Powertools and the X-Ray SDK, which the earlier asset shipped as source only, are compiled too."
                if after < before
                else "."
            ),
            "",
            "The asset as deployed, in detail:",
            "",
            "| what | ms |",
            "|---|---|",
            f"| `import archiver.handler` with a valid environment (modules + clients) | {after * 1000:.0f} |",
            f"| of which the three clients (same import with an invalid environment: {clients * 1000:.0f} ms less) "
            f"| {clients * 1000:.0f} |",
            f"| `import aws_xray_sdk.core` after boto3, i.e. its own cost (Powertools Tracer imports it) "
            f"| {cold['import_xray_s'] * 1000:.0f} |",
            f"| `import boto3` alone | {cold['import_boto3_s'] * 1000:.0f} |",
            f"| whole `python -c 'import archiver.handler'` process | {cold['process_s'] * 1000:.0f} |",
            "",
            "The clients are built at import (INIT), not in the first invocation. After boto3, the X-Ray SDK",
            "is the heaviest import: at import its default sampler builds its own botocore session and X-Ray",
            "client. It is kept because the function runs with active tracing (`infra/`, `powertools[tracer]`);",
            "dropping `Tracer` would save about that much per cold start, at the price of the per-call",
            "subsegments. Everything else the handler imports is needed by every run.",
            "",
            "Not measured here: Lambda fetching and unpacking the larger package (below) before INIT, its arm64",
            "CPUs, and the runtime's own SDK (its version, and whether its bytecode is compiled: assumed so above,",
            "which favours the earlier layout).",
            "",
        ]
    if package:
        lines += [
            "Deployment package (arm64, as deployed), built by the stack's own bundler: the hashed lock",
            "(`lambdas/requirements.txt`), `archiver/`, the bytecode; zipped here with deflate (the CDK zips it",
            "itself, which may differ by a little):",
            "",
            "| package | unzipped | zipped | files |",
            "|---|---|---|---|",
            f"| **after**: SDK bundled, bytecode compiled | {_mb(package['unzipped_bytes'])} "
            f"| {_mb(package['zipped_bytes'])} | {package['files']:,} |",
            f"| **before**: SDK left to the runtime, no bytecode | {_mb(package['before_unzipped_bytes'])} "
            f"| {_mb(package['before_zipped_bytes'])} | {package['before_files']:,} |",
            "",
            f"Of the {_mb(package['unzipped_bytes'])}, the SDK (boto3, botocore, s3transfer, urllib3) is "
            f"{_mb(package['sdk_bytes'])}, most of it botocore's service models ({_mb(package['botocore_data_bytes'])},"
            " every AWS service's; the archiver calls five, but trimming botocore's data would make the asset",
            f"differ from the SDK the tests ran with), and the bytecode {_mb(package['bytecode_bytes'])}. Lambda's",
            "quotas are 50 MB zipped for a direct upload (the CDK uploads through S3) and 250 MB unzipped.",
            "",
        ]
    return lines
