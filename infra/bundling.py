"""Build the Lambda asset on this machine with pip, because there is no Docker engine to bundle in.

pip downloads the Linux wheels of the pinned `lambdas/requirements.txt` for the function's platform
(`--platform manylinux2014_aarch64 --only-binary=:all:`), so the asset matches the runtime regardless of
the machine that synthesizes. A failure raises instead of returning False: False would make the CDK fall
back to Docker, which fails here with a far less helpful message.
"""

from __future__ import annotations

import importlib.metadata
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import AssetHashType, BundlingOptions, ILocalBundling
from aws_cdk import aws_lambda as lambda_

PACKAGE = "archiver"
REQUIREMENTS = "requirements.txt"
# The Lambda Python runtime ships the AWS SDK. aws-xray-sdk (powertools[tracer]) still pulls botocore in;
# a bundled copy would shadow the runtime's and could mismatch its boto3, and it is most of the asset's size.
# urllib3 goes too: botocore pins the urllib3 versions it supports, and a bundled one would shadow the runtime's.
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer", "urllib3")
_PLATFORMS = {"arm64": "manylinux2014_aarch64", "x86_64": "manylinux2014_x86_64"}


class BundlingError(RuntimeError):
    """The Lambda asset could not be built locally."""


def python_version(runtime: lambda_.Runtime) -> str:
    """'python3.14' -> '3.14', for pip's --python-version."""
    name = runtime.name
    if not name.startswith("python"):
        raise BundlingError(f"{name} is not a Python runtime")
    return name.removeprefix("python")


def pip_command(
    requirements: Path, target: Path, runtime: lambda_.Runtime, architecture: lambda_.Architecture
) -> list[str]:
    """The pip call that installs the pinned requirements as the Lambda platform needs them."""
    try:
        platform = _PLATFORMS[architecture.name]
    except KeyError:
        raise BundlingError(f"no manylinux platform known for architecture {architecture.name}") from None
    return [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--requirement",
        str(requirements),
        "--target",
        str(target),
        "--platform",
        platform,
        "--implementation",
        "cp",
        "--python-version",
        python_version(runtime),
        "--only-binary=:all:",
        "--no-compile",  # the runtime compiles on import; .pyc files would only make the asset non-reproducible
        "--disable-pip-version-check",
        "--no-input",
        "--quiet",
    ]


def remove_distribution(target: Path, name: str) -> None:
    """Delete an installed distribution (its files per RECORD, then the folders left empty) from a --target dir."""
    root = target.resolve()
    for dist in importlib.metadata.distributions(name=name, path=[str(root)]):
        folders: set[Path] = set()
        for file in dist.files or ():
            path = (root / file).resolve()
            if path.is_relative_to(root) and path != root:
                path.unlink(missing_ok=True)
                folders.update(parent for parent in path.parents if parent.is_relative_to(root) and parent != root)
        for folder in sorted(folders, key=lambda folder: len(folder.parts), reverse=True):
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()


@jsii.implements(ILocalBundling)
class PipLocalBundling:
    """ILocalBundling that pip-installs the requirements and copies the `archiver` package next to them."""

    def __init__(self, source: Path, runtime: lambda_.Runtime, architecture: lambda_.Architecture) -> None:
        self._source = source
        self._runtime = runtime
        self._architecture = architecture

    def try_bundle(self, output_dir: str, *_args: Any, **_options: Any) -> bool:
        """Build into `output_dir`; raise (never return False, which would mean "try Docker")."""
        target = Path(output_dir)
        command = pip_command(self._source / REQUIREMENTS, target, self._runtime, self._architecture)
        try:
            result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
        except OSError as error:
            raise BundlingError(f"Lambda asset: could not run pip ({error}). Command: {' '.join(command)}") from error
        if result.returncode != 0:
            raise BundlingError(
                f"Lambda asset: pip failed with exit code {result.returncode} while installing "
                f"{self._source / REQUIREMENTS} for {self._runtime.name}/{self._architecture.name}. "
                f"Docker bundling is not used. Command: {' '.join(command)}\n{result.stderr.strip()}"
            )
        self.complete(target)
        return True

    def complete(self, target: Path) -> None:
        """After pip: leave out what the runtime provides, add our package."""
        for name in RUNTIME_PROVIDED:
            remove_distribution(target, name)
        shutil.rmtree(target / "bin", ignore_errors=True)  # console scripts: never run in Lambda
        shutil.copytree(
            self._source / PACKAGE,
            target / PACKAGE,
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
            dirs_exist_ok=True,
        )


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
