"""TEMPORARY SHIM, TO BE DELETED once every caller imports `local.gls` (issue 8).

The emulator now lives in the package `local.gls`; this module only re-exports the names callers imported
from here, and `python -m local.gls_emulator` runs `python -m local.gls`. Do not add anything here.
"""

from __future__ import annotations

import sys

from local.gls import EmulatorClient, EmulatorError, GameLiftStreamsEmulator
from local.gls.__main__ import main
from local.gls.factory import DEFAULT_BASE_TIME, EXPORT_BUCKET, LOCATIONS
from local.gls.models import EXPORT_STATUSES, STATUSES, SUMMARY_FIELDS, TIMESTAMP_FIELDS

__all__ = [
    "DEFAULT_BASE_TIME",
    "EXPORT_BUCKET",
    "EXPORT_STATUSES",
    "LOCATIONS",
    "STATUSES",
    "SUMMARY_FIELDS",
    "TIMESTAMP_FIELDS",
    "EmulatorClient",
    "EmulatorError",
    "GameLiftStreamsEmulator",
    "main",
]

if __name__ == "__main__":
    sys.exit(main(prog="python -m local.gls_emulator"))
