"""`python -m local.gls`: the emulator in its own process (demo, benchmarks, the reliability harness).

The first line on stdout is the endpoint URL, printed once the server accepts requests; it then serves
until SIGTERM or SIGINT and exits 0. Export ZIPs go to `--export-s3-endpoint` (default: the environment's
`GLS_EXPORT_S3_ENDPOINT`; also settable later over the control API's config).
"""

from __future__ import annotations

import argparse
import os
import sys

from local.gls.server import GameLiftStreamsEmulator
from local.httpserver import serve_until_signalled

EXPORT_S3_ENDPOINT_ENV = "GLS_EXPORT_S3_ENDPOINT"


def main(argv: list[str] | None = None) -> int:
    """Run the emulator as its own process: prints the endpoint, serves until SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m local.gls", description=main.__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sessions", type=int, default=0, help="sessions to seed in each Region")
    parser.add_argument("--region", default="us-east-2", help="default Region (unsigned requests)")
    parser.add_argument("--regions", default="", help="comma-separated Regions to seed (default: --region)")
    parser.add_argument("--rate", type=float, default=None, help="quota: requests/second per operation+Region")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="latency added to every request")
    parser.add_argument(
        "--export-s3-endpoint",
        default=os.environ.get(EXPORT_S3_ENDPOINT_ENV, ""),
        help=f"S3 endpoint the export ZIPs are written to (default: ${EXPORT_S3_ENDPOINT_ENV}; none: exports fail)",
    )
    parser.add_argument(
        "--export-success-delay-ms", type=float, default=0.0, help="time from a ZIP landing to its SUCCEEDED"
    )
    args = parser.parse_args(argv)

    emulator = GameLiftStreamsEmulator(port=args.port, seed=args.seed, default_region=args.region)
    emulator.export_s3_endpoint = args.export_s3_endpoint or None
    emulator.export_success_delay_ms = args.export_success_delay_ms
    for region in [r for r in args.regions.split(",") if r] or [args.region]:
        if args.sessions:
            emulator.seed_sessions(args.sessions, region)
    if args.rate:
        emulator.faults.rate_limit("*", args.rate, max(1, int(args.rate)))
    if args.latency_ms:
        emulator.faults.base_latency["*"] = args.latency_ms / 1000.0
    return serve_until_signalled(emulator)


if __name__ == "__main__":
    sys.exit(main())
