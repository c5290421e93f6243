"""One measured archiver run in a fresh process: `python -m bench.worker RESULT.json`.

TEMPORARY: to be replaced by `local.worker.Worker(standby=False)` (one worker module for the benchmark and
the reliability runs, issue 8). The environment says where the servers are (the SDK's AWS_ENDPOINT_URL_*
variables) and how the archiver is configured. The result holds the wall time of the handler call alone
(cold start is measured on its own), the process's peak RSS, and the handler's summary.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from typing import Any

from local.memory import peak_rss_kb


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.worker", description=__doc__)
    parser.add_argument("result")
    args = parser.parse_args(argv)
    from archiver.handler import handler
    from local.lambda_context import LambdaContext

    result: dict[str, Any] = {"program": "archiver", "rss_after_import_kb": peak_rss_kb()}
    started = time.perf_counter()
    result["report"] = handler({}, LambdaContext())
    result["seconds"] = time.perf_counter() - started
    result["peak_rss_kb"] = peak_rss_kb()
    with open(args.result, "w", encoding="utf-8") as out:
        json.dump(result, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
