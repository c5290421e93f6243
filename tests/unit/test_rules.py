"""The shared rules: what each accepts, what it returns, and the form it names when it refuses."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from archiver import rules
from archiver.rules import RuleError


@pytest.mark.parametrize("text", ["sessions/", "a/b/", "x!_.'()-/", "..a/", "archive/v1/"])
def test_prefix_accepts_safe_segments_each_ending_in_a_slash(text: str) -> None:
    assert rules.prefix(text) == text


@pytest.mark.parametrize(
    "text",
    [
        *("sessions", "/sessions/", "a//", "./", "../x/", "a/./", "a/../b/", "a b/", "a%2F/", "é/"),
        *("${source_region}/", ""),
        *("*/", "a*/", "sessions/?/"),  # IAM wildcards in the s3:PutObject grant's resource
    ],
)
def test_prefix_refuses_unsafe_characters_empty_and_dot_segments(text: str) -> None:
    with pytest.raises(RuleError) as refused:
        rules.prefix(text)
    assert str(refused.value) == rules.PREFIX_FORM == refused.value.form


def test_regions_are_deduplicated_in_order() -> None:
    assert rules.regions(["us-west-2", "eu-central-1", "us-west-2"]) == ("us-west-2", "eu-central-1")
    assert rules.regions([]) == ()
    assert rules.region("ap-southeast-1") == "ap-southeast-1"


@pytest.mark.parametrize("parts", [["us-east-2", "mars"], ["US-EAST-2"], ["us-east-2", ""], ["us-east-2;us-west-2"]])
def test_regions_name_what_is_not_a_region(parts: list[str]) -> None:
    with pytest.raises(RuleError) as refused:
        rules.regions(parts)
    assert refused.value.form == rules.REGIONS_FORM
    assert refused.value.found == ", ".join(repr(p) for p in parts if p != "us-east-2")


def test_regions_name_a_repeated_bad_part_once() -> None:
    with pytest.raises(RuleError) as refused:
        rules.regions(["mars", "us-east-2", "mars", "venus"])
    assert refused.value.found == "'mars', 'venus'"


@pytest.mark.parametrize("text", ["", "mars", "us-east", "us-east-2 "])
def test_region_refuses_a_non_region(text: str) -> None:
    with pytest.raises(RuleError, match="comma-separated list of Regions"):
        rules.region(text)


@pytest.mark.parametrize(
    ("rule", "good", "bad", "form"),
    [
        (rules.bucket_name, "archive-bucket.1", "Bad_Bucket", rules.BUCKET_FORM),
        (rules.bucket_name, "abc", "ab", rules.BUCKET_FORM),
        (rules.table_name, "Archive_table.v-1", "a b", rules.TABLE_FORM),
        (rules.table_name, "a" * 255, "a" * 256, rules.TABLE_FORM),
    ],
)
def test_names(rule: Callable[[str], str], good: str, bad: str, form: str) -> None:
    assert rule(good) == good
    with pytest.raises(RuleError) as refused:
        rule(bad)
    assert str(refused.value) == form


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, True),
        (False, False),
        ("true", True),
        (" YES ", True),
        ("1", True),
        (1, True),
        ("False", False),
        ("no", False),
        ("0", False),
        (0, False),
    ],
)
def test_flag_reads_the_boolean_words(value: object, expected: bool) -> None:
    assert rules.flag(value) is expected


@pytest.mark.parametrize("value", ["", "maybe", "on", 2, None, 1.0, ["true"]])
def test_flag_refuses_anything_else(value: object) -> None:
    with pytest.raises(RuleError, match=r"^true or false$"):
        rules.flag(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("18", 18.0),
        (" 7 ", 7.0),
        ("12.5", 12.5),
        (".5", 0.5),
        ("18.", 18.0),
        ("1e3", 1000.0),
        ("1_000", 1000.0),
        ("+3", 3.0),
        ("0.1", 0.1),
        ("10000", 10_000.0),
        (40, 40.0),
        (12.5, 12.5),
        ("\u0663", 3.0),
    ],
)
def test_rate_is_any_decimal_float_reads_within_the_range(value: object, expected: float) -> None:
    assert rules.RATE_PER_SECOND.parse(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "0.09",
        "10000.01",
        "0",
        "-1",
        "nan",
        "inf",
        "-inf",
        "fast",
        "18/s",
        "0x10",
        "1,5",
        "",
        True,
        [18],
        10**400,
        float("nan"),
        None,
    ],
)
def test_rate_refuses_the_rest_naming_the_range(value: object) -> None:
    with pytest.raises(RuleError) as refused:
        rules.RATE_PER_SECOND.parse(value)
    assert str(refused.value) == "a number from 0.1 to 10000"


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1", 1), ("8", 8), ("64", 64), ("08", 8), (" 16 ", 16), (16, 16), (1.0, 1)],
)
def test_concurrency_is_a_whole_number_within_the_range(value: object, expected: int) -> None:
    assert rules.CONCURRENCY.parse(value) == expected


@pytest.mark.parametrize(
    "value",
    ["0", "65", "-1", "8.0", "8.5", "+8", "1e1", "", "²", "\u0663", "\u00a08", 8.5, 0, 65, True, None, float("inf")],
)
def test_concurrency_refuses_the_rest_naming_the_range(value: object) -> None:
    """Digits must be ASCII: '²' is a digit to str.isdigit() that int() refuses, '٣' one that int() reads."""
    with pytest.raises(RuleError) as refused:
        rules.CONCURRENCY.parse(value)
    assert str(refused.value) == "a whole number from 1 to 64"


@pytest.mark.parametrize(
    ("rule", "low", "high", "form"),
    [
        (rules.RATE_PER_SECOND, 0.1, 10_000, "a number from 0.1 to 10000"),
        (rules.MARGIN_SECONDS, 0, 900, "a number from 0 to 900"),
        (rules.READ_TIMEOUT_SECONDS, 1, 900, "a number from 1 to 900"),
        (rules.CONCURRENCY, 1, 64, "a whole number from 1 to 64"),
        (rules.LIST_RESTARTS, 0, 10, "a whole number from 0 to 10"),
        (rules.ATTEMPTS, 1, 20, "a whole number from 1 to 20"),
    ],
)
def test_ranges_include_both_ends_and_nothing_beyond(
    rule: rules.Number | rules.WholeNumber, low: float, high: float, form: str
) -> None:
    assert rule.form == form
    assert rule.parse(str(low)) == low
    assert rule.parse(str(high)) == high
    step = 0.01 if isinstance(rule, rules.Number) else 1
    for outside in (low - step, high + step):
        with pytest.raises(RuleError, match=form):
            rule.parse(str(outside))
