"""The launch-argument rule (archiver.redaction): flags kept, every value redacted, whatever the input."""

from __future__ import annotations

import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from archiver.redaction import END_OF_OPTIONS, REDACTED, redact_argument, redact_launch_args

R = REDACTED


@pytest.mark.parametrize(
    ("arguments", "stored"),
    [
        ([], []),
        (["-windowed"], ["-windowed"]),  # a value-less flag stays as is
        (["--no-sound", "-Dgame.mode", "-ResX", "-a_b.c-d"], ["--no-sound", "-Dgame.mode", "-ResX", "-a_b.c-d"]),
        (["-token", "s3cr3t"], ["-token", R]),  # the argument after a flag is a value
        (["-map", "harbor", "positional"], ["-map", R, R]),  # so is a positional
        (["--auth-token=s3cr3t"], [f"--auth-token={R}"]),
        (["-AuthToken=s3cr3t"], [f"-AuthToken={R}"]),  # Unreal's -Name=Value
        (["-ini:Engine:[Core.Log]:LogNet=Verbose"], [f"-ini:{R}"]),  # -name:value
        (['--token="a b"'], [f"--token={R}"]),  # quotes are part of the value
        (["-token="], [f"-token={R}"]),  # an empty value: its emptiness is not told either
        (["--url=https://x.example/?a=b"], [f"--url={R}"]),  # the first separator ends the name
        (["-t=a\nb"], [f"-t={R}"]),  # a newline in the value
        (["-1", "-0.5", "-.5", "-1e5"], [R, R, R, R]),  # negative numbers are values
        (["-", "+map", "/fullscreen", "/home/me/key.pem", "C:\\keys"], [R, R, R, R, R]),
        (["", " ", "secret"], [R, R, R]),
        (["---triple", "--=x", "-=", "-é", "-a b", '-"x"', "-tok\x00en"], [R, R, R, R, R, R, R]),
        (["-" + "a" * 64, "-" + "a" * 65, "--" + "a" * 65 + "=v"], ["-" + "a" * 64, R, R]),  # names end at 64
        (["-a\ud800", "\ud800"], [R, R]),  # lone surrogates
        (["-v", "--", "-token", "--x=y", "--", "secret"], ["-v", "--", R, R, R, R]),  # after --: all values
        (["--", "--auth-token=s3cr3t"], ["--", R]),
        (["ok", 5, None, b"bytes", ["-x"], "-x"], [R, "-x"]),  # non-strings are dropped
    ],
)
def test_flags_are_kept_and_values_redacted(arguments: list[object], stored: list[str]) -> None:
    assert redact_launch_args(arguments) == stored


def test_a_huge_argument_is_redacted_at_once() -> None:
    assert redact_launch_args(["x" * 1_000_000, "-" + "a" * 1_000_000, "-k=" + "v" * 1_000_000]) == [R, R, f"-k={R}"]


def test_what_no_rule_can_help_is_kept_as_a_flag() -> None:
    """Documented limits: a secret spelled as a flag's name, or a value that looks like a flag."""
    assert redact_launch_args(["--sk_live_123", "-token", "-Xy7secret"]) == ["--sk_live_123", "-token", "-Xy7secret"]


def test_the_rule_reads_each_argument_alone() -> None:
    assert redact_argument("-token") == "-token"
    assert redact_argument("--") == R  # alone, `--` is no flag: only the list knows it ends the options
    assert redact_launch_args([END_OF_OPTIONS]) == [END_OF_OPTIONS]


# Values that cannot be mistaken for anything the rule keeps: they never start with '-'.
_values = st.text(min_size=0, max_size=40).filter(lambda text: not text.startswith("-"))
_names = st.text(string.ascii_letters + string.digits + "_.-", max_size=20).map(lambda rest: "q" + rest)
_flags = st.tuples(st.sampled_from(["-", "--"]), _names).map("".join)
_attached = st.tuples(_flags, st.sampled_from("=:"), _values).map(lambda parts: (parts[0] + parts[1], parts[2]))
_argument = st.one_of(
    _flags.map(lambda flag: (flag, None)),  # (what the rule keeps, the value it must hide)
    _attached,
    _values.map(lambda value: ("", value)),
)
_secret = "S3CRET~z"  # "~" is in no flag name, separator or REDACTED


@settings(max_examples=300, derandomize=True, database=None, deadline=None)
@given(st.lists(_argument, max_size=12), st.integers(0, 12))
def test_no_value_survives_flags_are_kept_and_the_length_is_the_same(
    arguments: list[tuple[str, str | None]], end: int
) -> None:
    """Each value carries the secret: none is stored, every flag is, one output per input, `--` honoured."""
    given_args = [kept + (_secret + value if value is not None else "") for kept, value in arguments]
    end = min(end, len(given_args))
    with_end = [*given_args[:end], END_OF_OPTIONS, *given_args[end:]]

    stored = redact_launch_args(with_end)

    assert len(stored) == len(with_end)
    assert _secret not in "".join(stored)
    assert stored[end] == END_OF_OPTIONS and stored[end + 1 :] == [R] * (len(with_end) - end - 1)
    for (kept, value), out in zip(arguments[:end], stored[:end], strict=True):
        assert out == (kept if value is None else kept + R)


@settings(max_examples=300, derandomize=True, database=None, deadline=None)
@given(st.lists(st.one_of(st.text(), st.integers(), st.none(), st.binary()), max_size=12))
def test_any_input_gives_strings_of_a_flag_or_a_redaction_and_never_raises(arguments: list[object]) -> None:
    stored = redact_launch_args(arguments)
    strings = [a for a in arguments if isinstance(a, str)]
    assert len(stored) == len(strings)
    for given_arg, out in zip(strings, stored, strict=True):
        assert out in (given_arg, R) or (out.endswith(R) and given_arg.startswith(out[: -len(R)]))
