"""The GameLift Streams emulator, split the way moto splits a backend.

`exceptions` (error shapes), `factory` (realistic sessions), `models` (state: sessions per Region, sort
indexes, listing), `responses` (REST-JSON wire protocol), `control` (the `/_emulator/...` API), `server`
(`GameLiftStreamsEmulator`), `client` (`EmulatorClient`, the one client of the control API), `__main__`
(the CLI: `python -m local.gls`).
"""

from local.gls.client import Calls, ControlError, EmulatorClient
from local.gls.exceptions import EmulatorError
from local.gls.server import GameLiftStreamsEmulator

__all__ = ["Calls", "ControlError", "EmulatorClient", "EmulatorError", "GameLiftStreamsEmulator"]
