"""Lambda's error shapes as botocore's `lambda` model declares them: an HTTP status, the `x-amzn-ErrorType`
botocore takes the code from, and a body with `Type` and the message under the member name the model gives
(`Message` for some errors, `message` for others: botocore reads either)."""

from __future__ import annotations

from typing import Any, Final

# (HTTP status, x-amzn-ErrorType, message) per `local.faults.ERROR_KINDS` kind, for injected faults.
_FAULTS: Final[dict[str, tuple[int, str, str]]] = {
    "throttle": (429, "TooManyRequestsException", "Rate Exceeded."),
    "throughput": (429, "TooManyRequestsException", "Rate Exceeded."),
    "slowdown": (429, "TooManyRequestsException", "Rate Exceeded."),
    "internal": (500, "ServiceException", "An internal error occurred. Try again."),
    "access_denied": (
        403,
        "AccessDeniedException",
        "User is not authorized to perform: lambda:InvokeFunction on this resource.",
    ),
    "not_found": (404, "ResourceNotFoundException", "Function not found."),
    "validation": (400, "InvalidParameterValueException", "Invalid parameter value."),
}
# The body member that carries the message, per error (the model's casing).
_CAPITALISED: Final = frozenset({"ResourceNotFoundException", "ServiceException"})

EVENT_PAYLOAD_LIMIT: Final = 1_048_576  # bytes, InvocationType=Event (Lambda's quota since 2025; was 262,144)
SYNC_PAYLOAD_LIMIT: Final = 6_291_456  # bytes, InvocationType=RequestResponse


class LambdaError(Exception):
    """A modeled Lambda error: what the service answers instead of running anything."""

    def __init__(self, status: int, error_type: str, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message
        self.reason = reason

    def body(self) -> dict[str, Any]:
        """The JSON body: `Type` (who is at fault), the message, and `Reason` where the model has one."""
        key = "Message" if self.error_type in _CAPITALISED else "message"
        out: dict[str, Any] = {"Type": "Service" if self.status >= 500 else "User", key: self.message}
        if self.reason is not None:
            out["Reason"] = self.reason
        return out


def function_not_found(arn: str) -> LambdaError:
    """No such function (or alias) in this account and Region; `arn` as Lambda prints it."""
    return LambdaError(404, "ResourceNotFoundException", f"Function not found: {arn}")


def invalid_content(detail: str) -> LambdaError:
    """The payload is not JSON: Lambda refuses it before queueing or running anything."""
    return LambdaError(400, "InvalidRequestContentException", f"Could not parse request body into json: {detail}")


def too_large(size: int, limit: int, invocation_type: str) -> LambdaError:
    """A payload over the invocation type's quota."""
    return LambdaError(
        413, "RequestTooLargeException", f"{invocation_type} payload of {size} bytes exceeds the limit of {limit} bytes"
    )


def invalid_parameter(message: str) -> LambdaError:
    return LambdaError(400, "InvalidParameterValueException", message)


def validation(message: str) -> LambdaError:
    """A request parameter outside its modeled pattern or enum."""
    return LambdaError(400, "ValidationException", f"1 validation error detected: {message}")


def too_many_requests() -> LambdaError:
    """A synchronous invocation while the function's one instance (reserved concurrency 1) is busy."""
    return LambdaError(
        429, "TooManyRequestsException", "Rate Exceeded.", reason="ReservedFunctionConcurrentInvocationLimitExceeded"
    )


def unknown_operation(message: str) -> LambdaError:
    """A route this service does not serve: a clear 404 rather than a silent empty answer."""
    return LambdaError(404, "UnknownOperationException", message)


def from_fault(kind: str) -> LambdaError:
    """The error an injected fault of this kind (one of `local.faults.ERROR_KINDS`) answers with."""
    status, error_type, message = _FAULTS[kind]
    return LambdaError(status, error_type, message)
