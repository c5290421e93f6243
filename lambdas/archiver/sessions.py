"""GameLift Streams adapter: list the sessions whose export succeeded, and fetch one session's detail."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from archiver import telemetry
from archiver.errors import error_code, raise_if_fatal
from archiver.ratelimit import TokenBucket
from archiver.records import SessionArn

logger = Logger(service=telemetry.SERVICE, child=True)  # a child of the handler's logger, by name

PAGE_SIZE = 100  # the API's maximum; fewer pages means fewer calls to a "costly" API


class ListingFailed(RuntimeError):
    """Listing could not reach the last page (expired tokens past the restart limit, or retries exhausted)."""


class SessionSource:
    """One Region's GameLift Streams API, rate limited per operation."""

    def __init__(
        self,
        client: Any,
        region: str,
        list_limiter: TokenBucket,
        get_limiter: TokenBucket,
        max_restarts: int,
    ) -> None:
        self._client = client
        self.region = region
        self._list_limiter = list_limiter
        self._get_limiter = get_limiter
        self._max_restarts = max_restarts
        self.restarts = 0

    def pages(self, keep_going: Callable[[], bool]) -> Iterator[list[dict[str, Any]]]:
        """Yield each page's items; an expired NextToken restarts from the first page, a bounded number of times."""
        paginator = self._client.get_paginator("list_stream_sessions_by_account")
        self.restarts = 0
        while True:
            token_in_use = False
            try:
                pages = paginator.paginate(ExportFilesStatus="SUCCEEDED", PaginationConfig={"PageSize": PAGE_SIZE})
                iterator = iter(pages)
                while keep_going():
                    self._list_limiter.acquire()
                    try:
                        page = next(iterator)
                    except StopIteration:
                        return
                    token_in_use = bool(page.get("NextToken"))
                    items = page.get("Items")
                    yield [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []
                return
            except ClientError as error:
                raise_if_fatal(error, f"ListStreamSessionsByAccount in {self.region}")
                if error_code(error) != "ValidationException" or not token_in_use:
                    raise ListingFailed(f"ListStreamSessionsByAccount in {self.region}: {error}") from error
                if self.restarts >= self._max_restarts:
                    raise ListingFailed(
                        f"ListStreamSessionsByAccount in {self.region}: NextToken rejected "
                        f"{self.restarts + 1} times, giving up until the next run: {error}"
                    ) from error
                self.restarts += 1
                logger.warning(
                    "NextToken rejected; restarting the listing from the first page",
                    extra={"region": self.region, "restart": self.restarts, "error": str(error)},
                )

    def get(self, arn: SessionArn) -> dict[str, Any] | None:
        """GetStreamSession (the only call that returns the export's OutputUri); None if the session vanished."""
        self._get_limiter.acquire()
        try:
            response: dict[str, Any] = self._client.get_stream_session(
                Identifier=arn.stream_group_id, StreamSessionIdentifier=arn.arn
            )
        except ClientError as error:
            if error_code(error) == "ResourceNotFoundException":
                return None
            raise_if_fatal(error, f"GetStreamSession in {self.region}")
            raise
        response.pop("ResponseMetadata", None)
        return response
