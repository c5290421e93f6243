"""The service's error shapes: an HTTP status, an `x-amzn-ErrorType` and a message, as the model declares."""

from __future__ import annotations

from typing import Final

# (HTTP status, x-amzn-ErrorType, message) per FaultPlan error kind.
_FAULTS: Final[dict[str, tuple[int, str, str]]] = {
    "throttle": (429, "ThrottlingException", "Rate exceeded"),
    "throughput": (429, "ThrottlingException", "Rate exceeded"),
    "slowdown": (429, "ThrottlingException", "Rate exceeded"),
    "internal": (500, "InternalServerException", "An internal error occurred. Try again."),
    "access_denied": (
        403,
        "AccessDeniedException",
        "User is not authorized to perform this action on this resource.",
    ),
    "not_found": (404, "ResourceNotFoundException", "The requested resource was not found."),
    "validation": (400, "ValidationException", "The provided NextToken has expired."),
}


class EmulatorError(Exception):
    """A modeled GameLift Streams error: HTTP status + x-amzn-ErrorType + message."""

    def __init__(self, status: int, error_type: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message


def validation(message: str) -> EmulatorError:
    """What the service answers for a request it rejects (bad parameter, bad or expired NextToken)."""
    return EmulatorError(400, "ValidationException", message)


def not_found(message: str) -> EmulatorError:
    """No such stream session (or not in that stream group, or not in that Region)."""
    return EmulatorError(404, "ResourceNotFoundException", message)


def unknown_operation(message: str) -> EmulatorError:
    """A route this emulator does not serve: a clear 404 rather than a silent empty answer."""
    return EmulatorError(404, "UnknownOperationException", message)


def from_fault(kind: str) -> EmulatorError:
    """The error an injected fault of this kind (one of `local.faults.ERROR_KINDS`) answers with."""
    status, error_type, message = _FAULTS[kind]
    return EmulatorError(status, error_type, message)
