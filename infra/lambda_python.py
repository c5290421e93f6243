"""The interpreter of the Lambda runtime's Python version on this machine, found one way for every user.

The Lambda package's tests run on it (`make pytest-lambda`) and the bundler compiles the asset's bytecode with it
(`infra/bundling.py`), so both follow `infra.archiver.RUNTIME` and nothing else names the version. Looked for, in
order: the variable PYTHON_LAMBDA, `python3.X` on PATH, then pyenv's `versions/3.X.N` (highest N; free-threaded
builds are skipped: the runtime is not one). `python -m infra.lambda_python` prints the path, `--version` the
runtime's version (the Makefile's uses).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

ENV_VAR = "PYTHON_LAMBDA"
_PROBE = "import sys; print('%d.%d' % sys.version_info[:2], int(getattr(sys, '_is_gil_enabled', lambda: True)()))"


class InterpreterNotFound(RuntimeError):
    """No Python of the runtime's version could be found (or PYTHON_LAMBDA names something else)."""


def version_of(python: str) -> str | None:
    """'3.13' for a working CPython 3.13 with the GIL (the runtime's kind), else None."""
    try:
        probe = subprocess.run([python, "-c", _PROBE], capture_output=True, text=True, timeout=30, check=False)  # noqa: S603
    except (OSError, subprocess.TimeoutExpired):
        return None
    fields = probe.stdout.split()
    if probe.returncode != 0 or len(fields) != 2 or fields[1] != "1":
        return None
    return fields[0]


def _pyenv_candidates(version: str, environ: Mapping[str, str]) -> list[Path]:
    root = Path(environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    pattern = re.compile(rf"{re.escape(version)}\.(\d+)")
    found: list[tuple[int, Path]] = []
    for folder in root.glob(f"versions/{version}.*"):
        match = pattern.fullmatch(folder.name)
        if match and (folder / "bin" / f"python{version}").is_file():
            found.append((int(match.group(1)), folder / "bin" / f"python{version}"))
    return [path for _, path in sorted(found, reverse=True)]


def find(version: str, environ: Mapping[str, str] = os.environ) -> str:
    """The path of a Python `version` ('3.13') interpreter; InterpreterNotFound says how to name one."""
    hint = (
        f"set {ENV_VAR} to the path of a CPython {version} interpreter (the Lambda runtime's version, "
        f"infra/archiver.py RUNTIME), e.g. {ENV_VAR}=/usr/bin/python{version}"
    )
    named = environ.get(ENV_VAR, "")
    if named:
        actual = version_of(named)
        if actual != version:
            raise InterpreterNotFound(
                f"{ENV_VAR}={named} is {'not a working CPython' if actual is None else f'Python {actual}'}, "
                f"not Python {version}: {hint}"
            )
        return named
    on_path = shutil.which(f"python{version}", path=environ.get("PATH"))
    candidates = [Path(on_path)] if on_path else []
    for candidate in [*candidates, *_pyenv_candidates(version, environ)]:
        if version_of(str(candidate)) == version:  # a pyenv shim on PATH may name a version that is not installed
            return str(candidate)
    raise InterpreterNotFound(f"no Python {version} found on PATH or in pyenv: {hint}")


def main(argv: list[str]) -> int:
    """Print the interpreter of infra.archiver.RUNTIME's version (with --version: the version), or say on stderr
    how to name one (exit 1)."""
    # Here, not at the top: infra.bundling imports this module, and finding an interpreter needs no CDK.
    from infra.archiver import RUNTIME  # noqa: PLC0415
    from infra.bundling import python_version  # noqa: PLC0415

    version = python_version(RUNTIME)
    if argv == ["--version"]:
        print(version)
        return 0
    try:
        print(find(version))
    except InterpreterNotFound as error:
        print(error, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
