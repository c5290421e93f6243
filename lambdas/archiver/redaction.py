"""What the archive keeps of a session's launch arguments: the flags' names, never a value.

`AdditionalLaunchArgs`, like `AdditionalEnvironmentVariables`, is how a studio passes data to its game, so a
token given as `--auth-token=...` or `-token ...` would otherwise stay in S3 and Athena for ever. Which flags
take a value is the game's secret, so the rule reads each argument on its own (and `--`), and every doubt
redacts (a value lost is a column less useful; a value kept may be a credential):

- A flag is `-` or `--` and a name: an ASCII letter, then at most 63 ASCII letters, digits, `_`, `.` or `-`
  (`-windowed`, `--no-sound`, `-Dgame.mode`, `-ResX`). It is kept as given.
- A flag with its value attached, `--name=value` or `-name:value` (GNU long options, Unreal's `-Name=Value`,
  `-ini:...`), keeps its name and separator and the value becomes REDACTED: `--token="a b"` gives
  `--token=<redacted>`; so does `--token=` (whether a value was empty is not told either).
- Every other argument is a value and becomes REDACTED: the one after a flag (`-token SECRET`: whether it is
  the flag's value or a positional, it is redacted either way), positionals, negative numbers (`-1`, `-0.5`:
  a digit starts no name), `-` alone, `+map` (console commands), Windows-style `/switch` (it cannot be told
  from a path, and a path is a value: the switch's name is lost, the safe way round), and any argument whose
  name holds a space, a quote, a control or non-ASCII character, or runs past 64 characters (no real flag's
  does; such a "name" is more likely data).
- `--` (end of options) is kept, and every argument after it is a value, whatever it looks like.
- Items that are not strings are dropped (the API's model is a list of strings; only a hostile wire sends
  anything else), so the output is one string per input string, in order.

The output depends on the values only through their positions: no character, length or emptiness of a value
is stored. What no rule can help: a secret spelled as a flag's name (`--sk_live_123`), or a value that looks
like a flag (`-token -Xy7secret`). A studio that passes secrets that way must not opt in, and should move
them out of launch arguments; the opt-in (`KEEP_LAUNCH_ARGUMENT_VALUES=true`) stores every argument as given.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

REDACTED: Final = "<redacted>"
END_OF_OPTIONS: Final = "--"
# A flag's name and, when a value is attached, the separator. DOTALL: a newline in the value keeps the name.
_FLAG: Final = re.compile(r"(?P<flag>--?[A-Za-z][A-Za-z0-9_.\-]{0,63})(?:(?P<separator>[=:]).*)?", re.DOTALL)


def redact_argument(argument: str) -> str:
    """One argument before any `--`: a flag as given, `-name=` + REDACTED, or REDACTED."""
    match = _FLAG.fullmatch(argument)
    if match is None:
        return REDACTED
    if match["separator"] is None:
        return argument
    return match["flag"] + match["separator"] + REDACTED


def redact_launch_args(arguments: Iterable[object]) -> list[str]:
    """The arguments with every value redacted (the rule in this module's docstring); never raises."""
    redacted: list[str] = []
    options_ended = False
    for argument in arguments:
        if not isinstance(argument, str):
            continue
        if options_ended:
            redacted.append(REDACTED)
        elif argument == END_OF_OPTIONS:
            options_ended = True
            redacted.append(argument)
        else:
            redacted.append(redact_argument(argument))
    return redacted
