"""The emulator's control API (`/_emulator/...`), in this process or over HTTP for a separate one."""

from __future__ import annotations

import http.client
import json
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlencode, urlsplit

from local.gls_emulator import GameLiftStreamsEmulator
from local.reliability.constants import REGION


class GLS:
    """The emulator's control API (`/_emulator/...`), called in-process or over HTTP for a separate process."""

    def __init__(self, *, emulator: GameLiftStreamsEmulator | None = None, url: str | None = None) -> None:
        if (emulator is None) == (url is None):
            raise ValueError("give an in-process emulator or the URL of one")
        self.emulator = emulator
        self._url = url

    @property
    def endpoint_url(self) -> str:
        return self.emulator.endpoint_url if self.emulator is not None else str(self._url)

    def call(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
        if self.emulator is not None:
            status, payload = self.emulator.control(method, path, dict(body or {}))
        else:
            parts = urlsplit(str(self._url))
            conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=120)
            try:
                if method == "GET":
                    query = f"?{urlencode(dict(body or {}))}" if body else ""
                    conn.request("GET", path + query)
                else:
                    conn.request(method, path, json.dumps(dict(body or {})), {"Content-Type": "application/json"})
                response = conn.getresponse()
                status, payload = response.status, json.loads(response.read() or b"{}")
            finally:
                conn.close()
        if status != 200:
            raise RuntimeError(f"emulator control {method} {path} answered {status}: {payload}")
        return payload

    def seed(self, n: int, region: str = REGION, succeeded_fraction: float = 1.0) -> list[str]:
        body = {"seed": n, "region": region, "succeeded_fraction": succeeded_fraction}
        return [str(a) for a in self.call("POST", "/_emulator/sessions", body)["arns"]]

    def add(self, region: str = REGION, **fields: Any) -> dict[str, Any]:
        return dict(self.call("POST", "/_emulator/sessions", {"region": region, **fields}))

    def set_export(self, arn: str, status: str) -> None:
        self.call("POST", "/_emulator/export-status", {"arn": arn, "status": status})

    def succeeded(self, region: str = REGION) -> set[str]:
        return set(self.call("GET", "/_emulator/succeeded", {"region": region})["arns"])

    def set_faults(self, specs: Sequence[Mapping[str, Any]]) -> None:
        self.call("POST", "/_emulator/reset-faults", {"limits": True})
        for spec in specs:
            self.call("POST", "/_emulator/faults", spec)

    def shift(self, on: bool) -> None:
        self.call("POST", "/_emulator/config", {"shift_on_page": on})

    def counts(self) -> dict[str, Any]:
        return dict(self.call("GET", "/_emulator/calls"))
