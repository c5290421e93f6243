"""Whose sessions this function may archive: one rule, applied to every ARN before it is asked about or written.

A session is the function's own when its ARN names the function's account and partition and one of the source
Regions (SOURCE_REGIONS). Anything else is *foreign*: skipped, counted (`foreign`), logged once with its ARN
(not a secret), never archived, and it never stops the other sessions:
- another account's session is not this deployment's data (ListStreamSessionsByAccount lists only the
  caller's own, so such an ARN means the answer is wrong or hostile);
- a record of a Region outside SOURCE_REGIONS would be filed under a `source_region=` partition that the Glue
  table's projection does not enumerate: stored for ever, never queried;
- another partition (aws-cn, aws-us-gov) is another set of accounts altogether.
A GetStreamSession answer must be about the session asked for: an `Arn` in it that differs from the ARN asked
(hostile, or a bug upstream) makes the session foreign too, as its detail may be another session's.

The function's account and partition come from its own ARN in the Lambda context (`invoked_function_arn`,
which Lambda always sets), for the reconciler and the consumer alike. Without one the entry points refuse to
run (`UnknownAccount`, a ConfigError naming the context key) rather than guess: the consumer cannot even build
a session ARN without the account (an export's key does not name it, and the S3 event's `account` is the
bucket owner's, which need not be the session's), and the reconciler must not archive an account it cannot
name. `Owner(regions)` with account and partition None checks the Regions only: what the pipeline uses when
it is driven without an entry point (in-memory unit tests, tools); no entry point builds one.

Multi-account (configured source accounts; not built): `Owner.account` would become a set of accounts here,
the consumer would try each, and nothing else would change.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger

from archiver import telemetry
from archiver.records import SessionArn
from archiver.settings import ConfigError

logger = Logger(service=telemetry.SERVICE, child=True)

ACCOUNT = re.compile(r"[0-9]{12}")
# arn:PARTITION:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]; the partition as records' session ARNs have it.
_FUNCTION_ARN = re.compile(r"arn:(?P<partition>aws(?:-[a-z]+)*):lambda:[a-z0-9-]+:(?P<account>[0-9]{12}):function:.+")
FUNCTION_ARN_FORM = "arn:<partition>:lambda:<region>:<12-digit account>:function:<name>"
_QUOTED_LIMIT = 200  # characters of an untrusted ARN quoted in a log line


class UnknownAccount(ConfigError):
    """The Lambda context names no function ARN: the function cannot tell which sessions are its own."""


def function_identity(context: Any) -> tuple[str, str] | None:
    """The function's own (account, partition), from its ARN in the Lambda context; None without a usable one."""
    arn = getattr(context, "invoked_function_arn", None)
    match = _FUNCTION_ARN.fullmatch(arn) if isinstance(arn, str) else None
    return (match["account"], match["partition"]) if match else None


@dataclass(frozen=True)
class Owner:
    """The sessions this function archives: its account and partition (None: not checked), its source Regions."""

    regions: frozenset[str]
    account: str | None = None
    partition: str | None = None

    @classmethod
    def of(cls, context: Any, regions: Collection[str]) -> Owner:
        """The owner an entry point runs as: the function's account and partition, the source Regions."""
        identity = function_identity(context)
        if identity is None:
            found = getattr(context, "invoked_function_arn", None)
            raise UnknownAccount(
                f"the Lambda context's invoked_function_arn is {found!r:.{_QUOTED_LIMIT}}: expected "
                f"{FUNCTION_ARN_FORM}; without the function's account no session can be told to be its own."
            )
        account, partition = identity
        return cls(frozenset(regions), account, partition)

    def foreign(self, arn: SessionArn) -> str | None:
        """Why the session is not this function's ("account", "region", "partition"), or None if it is."""
        if self.partition is not None and arn.partition != self.partition:
            return "partition"
        if self.account is not None and arn.account_id != self.account:
            return "account"
        if arn.region not in self.regions:
            return "region"
        return None

    def refuses(self, arn: SessionArn, detail: Mapping[str, Any]) -> str | None:
        """Why GetStreamSession's answer for `arn` must not be archived as `arn`, or None: the session is
        foreign, or the answer names another session (an absent Arn contradicts nothing: the record's
        session_arn is always the ARN asked for)."""
        reason = self.foreign(arn)
        if reason is not None:
            return reason
        answered = detail.get("Arn")
        if answered is not None and answered != arn.arn:
            return "answer names another session"
        return None


def _quoted(value: object) -> object:
    """An ARN from the API for a log line: as is when it is a short string, else repr'd and bounded."""
    return value if isinstance(value, str) and len(value) <= _QUOTED_LIMIT else repr(value)[:_QUOTED_LIMIT]


def log_foreign(arn: object, reason: str, *, answered: object = None, **where: object) -> None:
    """The one warning a foreign session gets: its ARN (and the ARN the answer named, if any) and why."""
    extra: dict[str, object] = {"session_arn": _quoted(arn), "reason": reason, **where}
    if answered is not None and answered != arn:
        extra["answered_arn"] = _quoted(answered)
    logger.warning("Session not archived: not this function's", extra=extra)
