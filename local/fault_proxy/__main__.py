"""`python -m local.fault_proxy --upstream URL`: the fault proxy as its own process (the local stack's
processes mode). Prints its URL as the first stdout line, then serves until SIGTERM or SIGINT; it is
controlled over HTTP (`local.fault_proxy.FaultProxyClient`)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from local.fault_proxy.server import FaultProxy
from local.httpserver import serve_until_signalled


def _route(text: str) -> tuple[str, str]:
    service, sep, url = text.partition("=")
    if not sep or not service or not url:
        raise argparse.ArgumentTypeError(f"expected SERVICE=URL, not {text!r}")
    return service, url


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.fault_proxy", description=__doc__)
    parser.add_argument("--upstream", required=True, help="moto server URL")
    parser.add_argument("--route", type=_route, action="append", default=[], help="SERVICE=URL, e.g. s3=URL")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--latency-ms", type=float, default=0.0, help="latency added to every request")
    args = parser.parse_args(argv)

    proxy = FaultProxy(args.upstream, port=args.port, seed=args.seed, routes=dict(args.route))
    if args.latency_ms:
        proxy.faults.base_latency["*"] = args.latency_ms / 1000.0
    return serve_until_signalled(proxy)


if __name__ == "__main__":
    sys.exit(main())
