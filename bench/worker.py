"""One measured run in a fresh process: the archiver's real handler, or the naive script.

`python -m bench.worker archiver|naive RESULT.json [--cap SECONDS]`: the environment says where the servers
are (the SDK's AWS_ENDPOINT_URL_* variables) and how the archiver is configured. The result holds the wall
time of the run (imports excluded: cold start is measured on its own), the process's peak RSS, and what the
program reported.
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
    parser.add_argument("program", choices=("archiver", "naive"))
    parser.add_argument("result")
    parser.add_argument("--cap", type=float, default=None, help="stop the naive script after this many seconds")
    args = parser.parse_args(argv)

    result: dict[str, Any] = {"program": args.program}
    if args.program == "archiver":
        from archiver.handler import handler
        from local.lambda_context import LambdaContext

        result["rss_after_import_kb"] = peak_rss_kb()
        started = time.perf_counter()
        result["report"] = handler({}, LambdaContext())
    else:
        from bench.naive import archive

        result["rss_after_import_kb"] = peak_rss_kb()
        started = time.perf_counter()
        deadline = None if args.cap is None else time.monotonic() + args.cap
        result["report"] = archive(deadline)
    result["seconds"] = time.perf_counter() - started
    result["peak_rss_kb"] = peak_rss_kb()
    with open(args.result, "w", encoding="utf-8") as out:
        json.dump(result, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
