"""moto's server, in this process (threads) or as its own (`python -m local.stack.moto_server`).

The process prints its URL as the first stdout line, then reads one JSON command per stdin line and
answers each with one JSON line on stdout; it exits when stdin closes (its parent is gone) or on SIGTERM.
The one command: {"preload": {"region", "table", "path", "prefix"}} puts a ledger item for each ARN in
the file at `path` straight into its backend, answered {"count": n} (or {"error": "..."}).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import socket
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from moto.server import ThreadedMotoServer

from local.stack.resources import preload_in_process


def start_moto(port: int = 0) -> tuple[ThreadedMotoServer, str]:
    """A moto server on 127.0.0.1 in a thread of this process, and its URL."""
    werkzeug_logger = logging.getLogger("werkzeug")
    if werkzeug_logger.level == logging.NOTSET:
        werkzeug_logger.setLevel(logging.WARNING)  # otherwise one stderr line per request
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    moto.start()
    # Handler threads of idle keep-alive clients would block stop(): do not join them on close.
    server = getattr(moto, "_server", None)
    if server is not None:
        server.block_on_close = False
    host, bound = moto.get_host_and_port()
    return moto, f"http://{host}:{bound}"


def stop_moto(moto: ThreadedMotoServer) -> None:
    """moto's serve_forever polls every 0.5 s; a connection wakes it, so stopping takes milliseconds."""
    host, port = moto.get_host_and_port()
    stopper = threading.Thread(target=moto.stop, name="moto-stop", daemon=True)
    stopper.start()
    while stopper.is_alive():
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1):
            pass
        stopper.join(0.01)


def _answer(command: dict[str, Any]) -> dict[str, Any]:
    preload = command.get("preload")
    if not isinstance(preload, dict):
        return {"error": f"unknown command {sorted(command)}"}
    arns = Path(str(preload["path"])).read_text(encoding="utf-8").splitlines()
    count = preload_in_process(str(preload["region"]), str(preload["table"]), arns, str(preload["prefix"]))
    return {"count": count}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.stack.moto_server", description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    moto, url = start_moto(args.port)
    print(url, flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            reply = _answer(json.loads(line))
        except Exception as error:  # any failure is the caller's answer, not this server's end
            reply = {"error": f"{type(error).__name__}: {error}"}
        print(json.dumps(reply), flush=True)
    stop_moto(moto)
    return 0


if __name__ == "__main__":
    sys.exit(main())
