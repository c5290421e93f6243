"""Build the Lambda asset on this machine with pip, because there is no Docker engine to bundle in.

pip installs the hashed lock `lambdas/requirements.txt` (`make lock`: every transitive dependency pinned, every
file's hash listed) with --require-hashes and --no-deps, as Linux wheels for the function's platform
(`--platform manylinux2014_aarch64 --only-binary=:all:`), so the asset is exactly the lock, whatever machine
synthesizes. The SDK (boto3/botocore) is bundled at the version the tests run with, not left to the runtime's
copy. The asset's bytecode is compiled by the runtime's Python version (`infra.lambda_python`): Lambda's
/var/task is read-only, so without it every cold start would compile botocore again (docs/PERFORMANCE.md).
A failure raises instead of returning False: False would make the CDK fall back to Docker, which fails here
with a far less helpful message.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import AssetHashType, BundlingOptions, ILocalBundling
from aws_cdk import aws_lambda as lambda_

from infra import lambda_python

PACKAGE = "archiver"
REQUIREMENTS = "requirements.txt"  # the lock, compiled from requirements.in by `make lock` (infra/lock.py)
# Where Lambda unpacks the asset (LAMBDA_TASK_ROOT): the source paths compiled into the bytecode, so tracebacks
# name the real files and the bytecode does not depend on the temporary folder it was built in.
TASK_ROOT = "/var/task"
_PLATFORMS = {"arm64": "manylinux2014_aarch64", "x86_64": "manylinux2014_x86_64"}


class BundlingError(RuntimeError):
    """The Lambda asset could not be built locally."""


def python_version(runtime: lambda_.Runtime) -> str:
    """'python3.14' -> '3.14', for pip's --python-version."""
    name = runtime.name
    if not name.startswith("python"):
        raise BundlingError(f"{name} is not a Python runtime")
    return name.removeprefix("python")


def platform_tag(architecture: lambda_.Architecture) -> str:
    """pip's platform tag of the function's architecture: arm64 -> manylinux2014_aarch64."""
    try:
        return _PLATFORMS[architecture.name]
    except KeyError:
        raise BundlingError(f"no manylinux platform known for architecture {architecture.name}") from None


def pip_command(
    requirements: Path, target: Path, runtime: lambda_.Runtime, architecture: lambda_.Architecture
) -> list[str]:
    """The pip call that installs the hashed lock, and nothing else, as the Lambda platform needs it."""
    return [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--require-hashes",  # every file must match a hash of the lock (implied by the hashes; stated anyway)
        "--no-deps",  # the lock is complete: nothing is resolved at synthesis time
        "--requirement",
        str(requirements),
        "--target",
        str(target),
        "--platform",
        platform_tag(architecture),
        "--implementation",
        "cp",
        "--python-version",
        python_version(runtime),
        "--only-binary=:all:",
        "--no-compile",  # pip would compile with this machine's Python; compile_command uses the runtime's
        "--disable-pip-version-check",
        "--no-input",
        "--quiet",
    ]


def compile_command(python: str, target: Path, root: str = TASK_ROOT) -> list[str]:
    """compileall by the runtime's Python: reproducible bytecode (hash-based, never checked against the
    source, which in /var/task cannot change) whose file names are the paths under `root`."""
    folder = str(target.resolve())
    return [
        *(python, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash"),
        *("-s", folder, "-p", root, folder),
    ]


def runtime_python(runtime: lambda_.Runtime) -> str:
    """The interpreter that compiles the asset's bytecode: the runtime's version, or BundlingError saying how."""
    try:
        return lambda_python.find(python_version(runtime))
    except lambda_python.InterpreterNotFound as error:
        raise BundlingError(f"Lambda asset: cannot compile its bytecode: {error}") from error


def _run(command: list[str], what: str) -> None:
    try:
        result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    except OSError as error:
        raise BundlingError(f"Lambda asset: could not run {what} ({error}). Command: {' '.join(command)}") from error
    if result.returncode != 0:
        raise BundlingError(
            f"Lambda asset: {what} failed with exit code {result.returncode}. Docker bundling is not used. "
            f"Command: {' '.join(command)}\n{(result.stderr or result.stdout).strip()}"
        )


@jsii.implements(ILocalBundling)
class PipLocalBundling:
    """ILocalBundling that pip-installs the lock, copies the `archiver` package next to it and compiles both."""

    def __init__(self, source: Path, runtime: lambda_.Runtime, architecture: lambda_.Architecture) -> None:
        self._source = source
        self._runtime = runtime
        self._architecture = architecture

    def try_bundle(self, output_dir: str, *_args: Any, **_options: Any) -> bool:
        """Build into `output_dir`; raise (never return False, which would mean "try Docker")."""
        target = Path(output_dir)
        python = runtime_python(self._runtime)  # before pip: a missing interpreter fails at once
        command = pip_command(self._source / REQUIREMENTS, target, self._runtime, self._architecture)
        _run(
            command,
            f"pip (installing {self._source / REQUIREMENTS} for {self._runtime.name}/{self._architecture.name})",
        )
        self.complete(target, python)
        return True

    def complete(self, target: Path, python: str | None) -> None:
        """After pip: drop console scripts, add our package, compile everything with `python` (None: leave the
        asset without bytecode, as the benchmark's "before" does)."""
        shutil.rmtree(target / "bin", ignore_errors=True)  # console scripts: never run in Lambda
        shutil.copytree(
            self._source / PACKAGE,
            target / PACKAGE,
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
            dirs_exist_ok=True,
        )
        if python is not None:
            _run(compile_command(python, target), f"compiling the bytecode with {python}")


def lambda_code(source: Path, runtime: lambda_.Runtime, architecture: lambda_.Architecture) -> lambda_.Code:
    """The function's code asset: `source` (lambdas/) bundled locally; its hash covers code and requirements."""
    return lambda_.Code.from_asset(
        str(source),
        # Hash what is deployed: a new dependency release or a change of this bundler is a new asset.
        asset_hash_type=AssetHashType.OUTPUT,
        exclude=["**/__pycache__", "**/*.pyc", "**/.pytest_cache", "**/.mypy_cache", "*.egg-info", "pyproject.toml"],
        bundling=BundlingOptions(
            # Required by the API but never used: local bundling either succeeds or raises.
            image=runtime.bundling_image,
            local=PipLocalBundling(source, runtime, architecture),
        ),
    )
