"""`make lock`: compile lambdas/requirements.in into lambdas/requirements.txt, the Lambda asset's lock.

uv resolves for the function's platform and Python (`infra.archiver.ARCHITECTURE` and `RUNTIME`, not this
machine's), pins every transitive dependency and lists the hash of every file of each pinned version, so the
same lock installs with --require-hashes into the asset (aarch64, the runtime's Python) and into the local venvs
(x86_64, 3.11 and 3.13) alike. uv writes the command into the lock's header; a test compares it with
`compile_command`, so the lock on disk is known to be compiled for the function's platform.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from aws_cdk import aws_lambda as lambda_

from infra.archiver import ARCHITECTURE, RUNTIME
from infra.bundling import platform_tag, python_version

ROOT = Path(__file__).resolve().parent.parent
SOURCE = "lambdas/requirements.in"  # relative to ROOT, as they appear in the lock's header
LOCK = "lambdas/requirements.txt"


def uv_platform(architecture: lambda_.Architecture) -> str:
    """uv's name of pip's platform tag: manylinux2014_aarch64 -> aarch64-manylinux2014."""
    policy, machine = platform_tag(architecture).split("_", 1)
    return f"{machine}-{policy}"


def compile_arguments(runtime: lambda_.Runtime, architecture: lambda_.Architecture) -> list[str]:
    """The arguments of `uv pip compile` (what the lock's header shows after `uv pip compile`)."""
    return [
        SOURCE,
        "--python-platform",
        uv_platform(architecture),
        "--python-version",
        python_version(runtime),
        "--generate-hashes",
        "--no-config",  # no uv.toml of this machine or user changes the result
        "--no-python-downloads",  # every pin is a wheel: no interpreter of the target version is needed
        "--output-file",
        LOCK,
    ]


def compile_command(runtime: lambda_.Runtime, architecture: lambda_.Architecture) -> list[str]:
    """uv from this venv (requirements-dev.txt pins it), run from the repository's root."""
    return [sys.executable, "-m", "uv", "pip", "compile", *compile_arguments(runtime, architecture)]


def main() -> int:
    command = compile_command(RUNTIME, ARCHITECTURE)
    # uv also prints the lock on stdout; the file is what counts. Its warnings and errors stay on stderr.
    return subprocess.run(command, cwd=ROOT, stdout=subprocess.DEVNULL, check=False).returncode  # noqa: S603


if __name__ == "__main__":
    sys.exit(main())
