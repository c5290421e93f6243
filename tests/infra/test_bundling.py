"""Local bundling: the asset is built by pip for the Lambda platform, never by Docker, or synthesis fails clearly.

Everything but the real pip run is tested offline: pip's command line, the step after pip (`complete`) on a
fake install, and CDK staging the bundler's output with pip replaced by a fake. The one test that lets pip
reach the package registry is marked `network`: `make test` leaves it out, `make test-slow` runs it.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_lambda as lambda_

from infra.archiver import ARCHITECTURE, HANDLER, LAMBDAS_DIR, RUNTIME
from infra.bundling import (
    PACKAGE,
    REQUIREMENTS,
    RUNTIME_PROVIDED,
    BundlingError,
    PipLocalBundling,
    lambda_code,
    pip_command,
)

# What a pip --target install of the requirements looks like, in miniature: the SDK that the runtime provides
# (nested data folders included), what must stay, and a console script.
FAKE_INSTALL: dict[str, list[str]] = {
    "boto3": ["boto3/__init__.py", "boto3/data/s3/2006-03-01/resources-1.json"],
    "botocore": ["botocore/__init__.py", "botocore/data/s3/2006-03-01/service-2.json.gz"],
    "s3transfer": ["s3transfer/__init__.py"],
    "urllib3": ["urllib3/__init__.py", "urllib3/util/retry.py"],
    "aws_lambda_powertools": ["aws_lambda_powertools/__init__.py", "aws_lambda_powertools/logging/logger.py"],
    "wrapt": ["wrapt/__init__.py", "wrapt/_wrappers.cpython-313-aarch64-linux-gnu.so"],
    "jmespath": ["jmespath/__init__.py", "bin/jp.py"],
}
KEPT = ("aws_lambda_powertools", "wrapt", "jmespath")


def fake_pip_install(target: Path) -> None:
    """Write FAKE_INSTALL into `target` as pip would: each distribution's files and its dist-info RECORD."""
    for name, files in FAKE_INSTALL.items():
        info = f"{name}-1.0.dist-info"
        (target / info).mkdir(parents=True)
        (target / info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
        for file in files:
            (target / file).parent.mkdir(parents=True, exist_ok=True)
            (target / file).write_text("")
        record = [*files, f"{info}/METADATA", f"{info}/RECORD"]
        (target / info / "RECORD").write_text("".join(f"{path},,\n" for path in record))


def assert_is_the_lambda_asset(asset: Path) -> None:
    """What the function needs is there; the runtime's SDK, console scripts and bytecode are not."""
    assert (asset / PACKAGE / "handler.py").is_file()
    assert (asset / PACKAGE / "records.py").is_file()
    assert (asset / "aws_lambda_powertools").is_dir()
    for name in RUNTIME_PROVIDED:  # the runtime's SDK is used, not a bundled copy
        assert not (asset / name).exists()
        assert not list(asset.glob(f"{name}-*.dist-info"))
    assert not (asset / "bin").exists()
    assert not list(asset.rglob("__pycache__"))
    assert not list(asset.rglob("*.pyc"))


def synthesize(outdir: Path) -> Path:
    """Synthesize a stack with the archiver's code asset; returns the staged asset folder."""
    app = cdk.App(outdir=str(outdir))
    stack = cdk.Stack(app, "BundlingProbe")
    function = lambda_.Function(
        stack,
        "Function",
        runtime=RUNTIME,
        architecture=ARCHITECTURE,
        handler=HANDLER,
        code=lambda_code(LAMBDAS_DIR, RUNTIME, ARCHITECTURE),
    )
    assembly = app.synth()
    key = stack.resolve((function.node.default_child).code)["s3Key"]  # type: ignore[union-attr]
    return Path(assembly.directory) / f"asset.{key.removesuffix('.zip')}"


def test_pip_command_targets_the_lambda_platform(tmp_path: Path) -> None:
    command = pip_command(LAMBDAS_DIR / REQUIREMENTS, tmp_path, RUNTIME, ARCHITECTURE)
    joined = " ".join(command)
    assert "--platform manylinux2014_aarch64" in joined
    assert "--implementation cp" in joined
    assert f"--python-version {RUNTIME.name.removeprefix('python')}" in joined
    assert "--only-binary=:all:" in command
    assert "--no-compile" in command
    assert f"--target {tmp_path}" in joined
    assert f"--requirement {LAMBDAS_DIR / REQUIREMENTS}" in joined
    x86 = " ".join(pip_command(LAMBDAS_DIR / REQUIREMENTS, tmp_path, RUNTIME, lambda_.Architecture.X86_64))
    assert "--platform manylinux2014_x86_64" in x86


def test_failing_pip_raises_instead_of_falling_back_to_docker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # pip may not look at any index: this test is offline
    source = tmp_path / "empty-source"  # no requirements.txt: pip fails at once
    source.mkdir()
    bundler = PipLocalBundling(source, RUNTIME, ARCHITECTURE)
    with pytest.raises(BundlingError, match=r"pip failed.*Docker bundling is not used"):
        bundler.try_bundle(str(tmp_path / "out"))


def test_after_pip_the_runtime_sdk_and_scripts_go_and_the_package_is_copied_without_bytecode(tmp_path: Path) -> None:
    source = tmp_path / "lambdas"
    (source / PACKAGE / "__pycache__").mkdir(parents=True)
    for module in ("__init__.py", "handler.py", "records.py"):
        (source / PACKAGE / module).write_text(f"# {module}\n")
    (source / PACKAGE / "__pycache__" / "handler.cpython-313.pyc").write_bytes(b"\0")
    (source / PACKAGE / "stale.pyc").write_bytes(b"\0")
    target = tmp_path / "asset"
    fake_pip_install(target)
    assert all((target / name).is_dir() for name in RUNTIME_PROVIDED) and (target / "bin").is_dir()

    PipLocalBundling(source, RUNTIME, ARCHITECTURE).complete(target)

    assert_is_the_lambda_asset(target)
    assert (target / PACKAGE / "handler.py").read_text() == "# handler.py\n"
    for name in KEPT:  # only what the runtime provides is left out
        assert (target / name / "__init__.py").is_file() and (target / f"{name}-1.0.dist-info").is_dir()


def test_synthesis_stages_the_local_bundlers_output_as_the_asset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CDK calls the local bundler (not Docker) and stages what it built; pip is a fake here, so no network."""
    commands: list[list[str]] = []

    def fake_run(command: Sequence[str], **_: Any) -> subprocess.CompletedProcess[str]:
        commands.append(list(command))
        fake_pip_install(Path(command[command.index("--target") + 1]))
        return subprocess.CompletedProcess(list(command), 0, "", "")

    monkeypatch.setattr("infra.bundling.subprocess", SimpleNamespace(run=fake_run))  # in that module only
    asset = synthesize(tmp_path / "cdk.out")

    (command,) = commands
    target = Path(command[command.index("--target") + 1])
    assert command == pip_command(LAMBDAS_DIR / REQUIREMENTS, target, RUNTIME, ARCHITECTURE)
    assert_is_the_lambda_asset(asset)
    assert (asset / PACKAGE / "handler.py").read_text() == (LAMBDAS_DIR / PACKAGE / "handler.py").read_text()
    assert (asset / "wrapt" / "_wrappers.cpython-313-aarch64-linux-gnu.so").is_file()


@pytest.mark.network
def test_synthesis_bundles_code_and_dependencies_with_the_real_pip(tmp_path: Path) -> None:
    """The real thing (pip reaches the package registry): the pinned requirements for the Lambda platform."""
    asset = synthesize(tmp_path / "cdk.out")
    assert_is_the_lambda_asset(asset)
    assert (asset / "aws_xray_sdk").is_dir()  # powertools[tracer]
    binaries = [path.name for path in asset.rglob("*.so")]
    assert binaries, "expected at least one compiled extension (wrapt)"
    assert all("aarch64" in name or "abi3" in name for name in binaries), binaries
