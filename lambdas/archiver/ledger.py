"""DynamoDB adapter: which sessions are archived already, and marking one archived (after its S3 object)."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from typing import Any

from botocore.exceptions import ClientError

from archiver.errors import error_code, raise_if_fatal
from archiver.records import LEDGER_PARTITION_KEY

BATCH_GET_LIMIT = 100  # DynamoDB's BatchGetItem maximum
_MISSING_TABLE = frozenset({"ResourceNotFoundException"})  # for DynamoDB it means the table itself is gone


class LedgerUnavailable(RuntimeError):
    """Some keys stayed unprocessed after every retry: their state is unknown this run."""


class Ledger:
    """The archive table. An item exists only once the session's S3 record is written."""

    def __init__(
        self,
        client: Any,
        table_name: str,
        max_unprocessed_retries: int = 8,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = client
        self.table_name = table_name
        self._max_retries = max_unprocessed_retries
        self._sleep = sleep

    def archived(self, arns: Sequence[str]) -> set[str]:
        """The subset of `arns` already archived: BatchGetItem in 100s, key-only, unprocessed keys retried."""
        found: set[str] = set()
        unique = list(dict.fromkeys(arns))
        for start in range(0, len(unique), BATCH_GET_LIMIT):
            request: dict[str, Any] = {
                self.table_name: {
                    "Keys": [{LEDGER_PARTITION_KEY: {"S": arn}} for arn in unique[start : start + BATCH_GET_LIMIT]],
                    "ProjectionExpression": "#k",
                    "ExpressionAttributeNames": {"#k": LEDGER_PARTITION_KEY},
                }
            }
            for attempt in range(self._max_retries + 1):
                try:
                    response = self._client.batch_get_item(RequestItems=request)
                except ClientError as error:
                    raise_if_fatal(error, f"BatchGetItem on table {self.table_name}", _MISSING_TABLE)
                    raise
                for item in response.get("Responses", {}).get(self.table_name, []):
                    found.add(item[LEDGER_PARTITION_KEY]["S"])
                request = response.get("UnprocessedKeys") or {}
                if not request:
                    break
                if attempt < self._max_retries:
                    self._sleep(min(2.0, 0.05 * 2**attempt) * random.uniform(0.5, 1.0))
            if request:
                raise LedgerUnavailable(f"BatchGetItem left keys unprocessed after {self._max_retries} retries")
        return found

    def mark_archived(self, arn: str, item: dict[str, str]) -> bool:
        """Put the item unless it exists; False means another writer archived it first.

        When botocore retries a PutItem whose first attempt took effect (its answer was lost), the retry finds
        the item this very call wrote: DynamoDB returns it (ReturnValuesOnConditionCheckFailure), and an item
        equal to ours, found by a retry, counts as ours. Found by a first attempt, it is another writer's
        (writers that read the same stored record make equal items): False, so each session counts
        `archived` once however many writers race.
        """
        attributes = {name: {"S": value} for name, value in item.items()}
        attributes[LEDGER_PARTITION_KEY] = {"S": arn}
        try:
            self._client.put_item(
                TableName=self.table_name,
                Item=attributes,
                ConditionExpression="attribute_not_exists(#k)",
                ExpressionAttributeNames={"#k": LEDGER_PARTITION_KEY},
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            if error_code(error) == "ConditionalCheckFailedException":
                retried = int(error.response.get("ResponseMetadata", {}).get("RetryAttempts") or 0) > 0
                return retried and error.response.get("Item") == attributes
            raise_if_fatal(error, f"PutItem on table {self.table_name}", _MISSING_TABLE)
            raise
        return True
