"""Domain errors the adapters raise, so the pipeline never has to read SDK error codes."""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError

# Errors that retrying cannot fix and that concern every session alike: stop the run at once.
FATAL_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "AllAccessDisabled",
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidAccessKeyId",
        "InvalidClientTokenId",
        "KMS.AccessDeniedException",
        "KMS.DisabledException",
        "KMS.NotFoundException",
        "NoSuchBucket",
        "SignatureDoesNotMatch",
        "UnrecognizedClientException",
    }
)


class FatalError(RuntimeError):
    """The run cannot go on (no permission, missing table or bucket); raised once, fails the invocation."""


def error_code(error: BaseException) -> str:
    """The AWS error code of an SDK exception, or its class name."""
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code", "ClientError"))
    return type(error).__name__


def raise_if_fatal(error: ClientError, what: str, also: frozenset[str] = frozenset()) -> None:
    """Turn an unfixable SDK error (FATAL_CODES, or `also` for this call) into FatalError naming what failed."""
    if error_code(error) in FATAL_CODES or error_code(error) in also:
        raise FatalError(f"{what} failed with {error_code(error)}: {error}") from error


# What a per-session step may raise that is worth retrying on the next run (after botocore's own retries).
TRANSIENT_ERRORS = (ClientError, BotoCoreError)
