"""`python -m local.lambda_service`: the local Lambda service in its own process (the local stack's processes
mode). Prints its URL as the first stdout line, then serves until SIGTERM or SIGINT; functions are
registered and invocations read over HTTP (`local.lambda_service.LambdaServiceClient`)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from local.httpserver import serve_until_signalled
from local.lambda_service.server import LambdaService


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.lambda_service", description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--region", default="us-east-2")
    parser.add_argument("--account", default="111122223333", help="the account of the functions' ARNs")
    parser.add_argument(
        "--no-background",
        dest="background",
        action="store_false",
        help="queue Event invocations until the control API's run-pending (default: run them as they arrive)",
    )
    args = parser.parse_args(argv)
    service = LambdaService(args.port, args.seed, args.region, args.account, background=args.background)
    return serve_until_signalled(service)


if __name__ == "__main__":
    sys.exit(main())
