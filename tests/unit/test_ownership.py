"""The one rule of whose sessions the function archives (archiver.ownership), case by case."""

from __future__ import annotations

from typing import Any

import pytest

from archiver.ownership import Owner, UnknownAccount, function_identity
from archiver.records import parse_session_arn
from archiver.settings import ConfigError
from local.lambda_context import LambdaContext

ACCOUNT = "111122223333"
OWNER = Owner(frozenset({"us-east-2", "us-west-2"}), ACCOUNT, "aws")


def arn(text: str) -> Any:
    parsed = parse_session_arn(text)
    assert parsed is not None, text
    return parsed


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (f"arn:aws:gameliftstreams:us-east-2:{ACCOUNT}:streamsession/sg-1/s1", None),
        (f"arn:aws:gameliftstreams:us-west-2:{ACCOUNT}:streamsession/sg-1/s1", None),  # another source Region
        ("arn:aws:gameliftstreams:us-east-2:999999999999:streamsession/sg-1/s1", "account"),
        (f"arn:aws:gameliftstreams:eu-central-1:{ACCOUNT}:streamsession/sg-1/s1", "region"),
        (f"arn:aws-us-gov:gameliftstreams:us-east-2:{ACCOUNT}:streamsession/sg-1/s1", "partition"),
        (f"arn:aws-cn:gameliftstreams:cn-north-1:{ACCOUNT}:streamsession/sg-1/s1", "partition"),
    ],
)
def test_a_session_is_ours_only_in_our_account_partition_and_source_regions(text: str, reason: str | None) -> None:
    assert OWNER.foreign(arn(text)) == reason


def test_without_account_and_partition_only_the_regions_are_checked() -> None:
    regions_only = Owner(frozenset({"us-east-2"}))
    assert regions_only.foreign(arn("arn:aws-cn:gameliftstreams:us-east-2:999999999999:streamsession/a/b")) is None
    assert regions_only.foreign(arn(f"arn:aws:gameliftstreams:us-west-2:{ACCOUNT}:streamsession/a/b")) == "region"


def test_an_answer_must_name_the_session_asked_for() -> None:
    asked = arn(f"arn:aws:gameliftstreams:us-east-2:{ACCOUNT}:streamsession/sg-1/s1")
    assert OWNER.refuses(asked, {"Arn": asked.arn}) is None
    assert OWNER.refuses(asked, {}) is None  # no Arn: nothing contradicts the ARN asked for
    for answered in (asked.arn.replace("s1", "s2"), asked.arn.upper(), "", 7, ["x"]):
        assert OWNER.refuses(asked, {"Arn": answered}) == "answer names another session", answered


@pytest.mark.parametrize(
    ("function_arn", "identity"),
    [
        ("arn:aws:lambda:us-east-2:111122223333:function:archiver", ("111122223333", "aws")),
        ("arn:aws:lambda:us-east-2:111122223333:function:archiver:live", ("111122223333", "aws")),  # an alias
        ("arn:aws-cn:lambda:cn-north-1:111122223333:function:archiver", ("111122223333", "aws-cn")),
        ("arn:aws:lambda:us-east-2:11112222333:function:archiver", None),  # 11 digits
        ("arn:aws:s3:us-east-2:111122223333:function:archiver", None),  # not Lambda
        ("arn:aws:lambda:us-east-2:111122223333:layer:x", None),
        ("", None),
        (None, None),
    ],
)
def test_the_functions_identity_is_read_from_its_arn_only(function_arn: object, identity: object) -> None:
    context = LambdaContext()
    context.invoked_function_arn = function_arn  # type: ignore[assignment]
    assert function_identity(context) == identity


def test_an_entry_point_without_its_arn_gets_a_config_error_naming_the_context_key() -> None:
    owner = Owner.of(LambdaContext(), ("us-east-2",))
    assert owner == Owner(frozenset({"us-east-2"}), ACCOUNT, "aws")
    with pytest.raises(
        UnknownAccount, match="invoked_function_arn is None: expected arn:<partition>:lambda:"
    ) as caught:
        Owner.of(object(), ("us-east-2",))
    assert isinstance(caught.value, ConfigError)
