"""The emulator's NextToken: an opaque base64 JSON cursor bound to the request's Region and filters.

A keyset cursor (the last sort key listed) or, with the shifting list, an offset; a token presented with
other filters, or one that is not ours, is a ValidationException, as AWS answers an expired or foreign one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import Any

from local.gls.exceptions import validation

SortKey = tuple[float, str, str]


def fingerprint(region: str, status: str | None, export: str | None) -> str:
    return hashlib.sha256(f"{region}|{status}|{export}".encode()).hexdigest()[:16]


def encode_token(payload: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode()


def decode_token(token: str | None, fingerprint: str) -> SortKey | int | None:
    """The cursor a token holds: the last key listed (keyset), an offset (shifting) or None (first page)."""
    if token is None:
        return None
    invalid = validation("The NextToken is not valid for this request.")
    try:
        payload = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, binascii.Error, UnicodeError):
        raise invalid from None
    if not isinstance(payload, dict) or payload.get("f") != fingerprint:
        raise invalid
    if isinstance(payload.get("o"), int) and payload["o"] >= 0:
        return int(payload["o"])
    key = payload.get("k")
    if (
        isinstance(key, list)
        and len(key) == 3
        and isinstance(key[0], int | float)
        and isinstance(key[1], str)
        and isinstance(key[2], str)
    ):
        return (float(key[0]), key[1], key[2])
    raise invalid
