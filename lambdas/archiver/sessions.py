"""GameLift Streams adapter: list the sessions whose export succeeded, and fetch one session's detail."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError
from botocore.paginate import TokenEncoder

from archiver import telemetry
from archiver.errors import error_code, raise_if_fatal
from archiver.ratelimit import TokenBucket
from archiver.records import SessionArn

logger = Logger(service=telemetry.SERVICE, child=True)  # a child of the handler's logger, by name

PAGE_SIZE = 100  # the API's maximum; fewer pages means fewer calls to a "costly" API


def _starting_token(next_token: str) -> str:
    """The paginator's StartingToken for a raw NextToken. Passed as is, a token that happens to be base64
    JSON (the emulator's are, AWS's may be) would be decoded by botocore into request parameters."""
    encoded: str = TokenEncoder().encode({"NextToken": next_token})
    return encoded


class ListingFailed(RuntimeError):
    """Listing could not reach the last page (expired tokens past the restart limit, or retries exhausted)."""


class SessionSource:
    """One Region's GameLift Streams API, rate limited per operation.

    `position` is where a stopped listing would go on: the NextToken of the first page not yet listed
    (None once the listing reached its end, or before it received any token). A follow-up invocation
    passes it back as `start_token`. `page_token` is the token that fetched the page last yielded (None for
    a first page, also after a restart): where a follow-up goes on to finish that page's sessions.
    """

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
        self.position: str | None = None
        self.page_token: str | None = None  # the token that fetched the page last yielded (None: the first)

    def pages(self, keep_going: Callable[[], bool], start_token: str | None = None) -> Iterator[list[dict[str, Any]]]:
        """Yield each page's items, from the page of `start_token` (the first page without one).

        An expired NextToken (or an expired `start_token`) restarts from the first page, a bounded number of
        times. A token is taken from the list limiter only for a request that will be sent: none after the
        last page.
        """
        paginator = self._client.get_paginator("list_stream_sessions_by_account")
        self.position = start_token
        self.restarts = 0
        while True:
            config: dict[str, Any] = {"PageSize": PAGE_SIZE}
            if self.position is not None:
                config["StartingToken"] = _starting_token(self.position)
            try:
                iterator = iter(paginator.paginate(ExportFilesStatus="SUCCEEDED", PaginationConfig=config))
                while keep_going():
                    self._list_limiter.acquire()
                    requested = self.position
                    page = next(iterator, None)
                    if page is None:  # never after a page without a NextToken (returned below)
                        self.position = None
                        return
                    token = page.get("NextToken")
                    self.page_token = requested
                    self.position = token if isinstance(token, str) and token else None
                    items = page.get("Items")
                    yield [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []
                    if self.position is None:
                        return
                return
            except ClientError as error:
                raise_if_fatal(error, f"ListStreamSessionsByAccount in {self.region}")
                if error_code(error) != "ValidationException" or self.position is None:
                    raise ListingFailed(f"ListStreamSessionsByAccount in {self.region}: {error}") from error
                if self.restarts >= self._max_restarts:
                    raise ListingFailed(
                        f"ListStreamSessionsByAccount in {self.region}: NextToken rejected "
                        f"{self.restarts + 1} times, giving up until the next run: {error}"
                    ) from error
                self.restarts += 1
                self.position = None
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
