"""The emulator's control API, `/_emulator/...`: what a test or benchmark in another process uses to seed
sessions, flip export statuses, arm faults and read the call counts (`EmulatorClient` is its client).

Every route takes a JSON object (GET: the query string) and answers 200 with a JSON object, 400 for a bad
payload, 404 for an unknown route or session (`local.control_api` answers and dispatches; reset-faults,
calls and reset-calls are its routes, the same as the fault proxy's).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from local import control_api
from local.gls.responses import CONTROL_PREFIX, wire

if TYPE_CHECKING:
    from local.gls.server import GameLiftStreamsEmulator

Route = Callable[["GameLiftStreamsEmulator", dict[str, Any]], tuple[int, Any]]


def dispatch(emulator: GameLiftStreamsEmulator, method: str, path: str, body: Any) -> tuple[int, Any]:
    """Run one control request: (HTTP status, JSON-ready payload)."""
    payload: dict[str, Any] = dict(body) if isinstance(body, dict) else {}
    return control_api.dispatch(ROUTES, emulator, method, path, payload)


def _sessions(emulator: GameLiftStreamsEmulator, payload: dict[str, Any]) -> tuple[int, Any]:
    """{"seed": n, "region"?, "succeeded_fraction"?} -> {"count", "arns"}; else {"region"?, **fields} -> detail."""
    region = payload.pop("region", None)
    if "seed" in payload:
        fraction = float(payload.get("succeeded_fraction", 0.6))
        made = emulator.seed_sessions(int(payload["seed"]), region, succeeded_fraction=fraction)
        return 200, {"count": len(made), "arns": [d.get("Arn") for d in made]}
    return 200, wire(emulator.add_session(region, **payload))


def _start_session(emulator: GameLiftStreamsEmulator, payload: dict[str, Any]) -> tuple[int, Any]:
    """{"region"?, **fields} -> the detail of a new live session (ACTIVE, streaming, no export yet), which
    ExportStreamSessionFiles and TerminateStreamSession then act on."""
    region = payload.pop("region", None)
    return 200, wire(emulator.start_session(region, **payload))


def _export_status(emulator: GameLiftStreamsEmulator, payload: dict[str, Any]) -> tuple[int, Any]:
    """{"arn", "status" (null removes the export), "output_uri"?} -> the session's detail. SUCCEEDED or
    FAILED end a session that has not ended (no ZIP is written: terminate an exported session for that)."""
    detail = emulator.set_export_status(payload["arn"], payload.get("status"), payload.get("output_uri"))
    return 200, wire(detail)


def _remove_session(emulator: GameLiftStreamsEmulator, payload: dict[str, Any]) -> tuple[int, Any]:
    """{"arn"} -> {}."""
    emulator.remove_session(payload["arn"])
    return 200, {}


def _config(emulator: GameLiftStreamsEmulator, payload: dict[str, Any]) -> tuple[int, Any]:
    """{"shift_on_page"?, "export_s3_endpoint"? (URL, "" or null: none), "export_success_delay_ms"? (>= 0),
    "fail_exports"?} -> the configuration after the change, with the fixed identity of the emulator's data
    (its account and the canary it writes into every session's secrets, so a harness can search for leaks)."""
    if "shift_on_page" in payload:
        emulator.shift_on_page = bool(payload["shift_on_page"])
    if "export_s3_endpoint" in payload:
        url = payload["export_s3_endpoint"]
        if url is not None and not isinstance(url, str):
            raise ValueError("export_s3_endpoint must be a URL, '' or null")
        emulator.export_s3_endpoint = url
    if "export_success_delay_ms" in payload:
        emulator.export_success_delay_ms = float(payload["export_success_delay_ms"])
    if "fail_exports" in payload:
        emulator.fail_exports = bool(payload["fail_exports"])
    return 200, {
        "shift_on_page": emulator.shift_on_page,
        "export_s3_endpoint": emulator.export_s3_endpoint,
        "export_success_delay_ms": emulator.export_success_delay_ms,
        "fail_exports": emulator.fail_exports,
        "account_id": emulator.account_id,
        "canary": emulator.canary,
    }


def _succeeded(emulator: GameLiftStreamsEmulator, payload: dict[str, Any]) -> tuple[int, Any]:
    """?region= (all Regions without it) -> {"arns": sorted ARNs whose export SUCCEEDED}."""
    return 200, {"arns": sorted(emulator.succeeded_arns(payload.get("region")))}


ROUTES: Final[dict[tuple[str, str], Route]] = {
    ("POST", CONTROL_PREFIX + "sessions"): _sessions,
    ("POST", CONTROL_PREFIX + "start-session"): _start_session,
    ("POST", CONTROL_PREFIX + "export-status"): _export_status,
    ("POST", CONTROL_PREFIX + "remove-session"): _remove_session,
    ("POST", CONTROL_PREFIX + "faults"): control_api.add_fault,
    ("POST", CONTROL_PREFIX + "config"): _config,
    ("GET", CONTROL_PREFIX + "succeeded"): _succeeded,
    **control_api.common_routes(CONTROL_PREFIX),
}
