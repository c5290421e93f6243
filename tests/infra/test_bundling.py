"""Local bundling: the asset is built by pip for the Lambda platform, never by Docker, or synthesis fails clearly."""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import aws_lambda as lambda_

from infra.archiver import ARCHITECTURE, HANDLER, LAMBDAS_DIR, RUNTIME
from infra.bundling import RUNTIME_PROVIDED, BundlingError, PipLocalBundling, lambda_code, pip_command


def test_pip_command_targets_the_lambda_platform(tmp_path: Path) -> None:
    command = pip_command(LAMBDAS_DIR / "requirements.txt", tmp_path, RUNTIME, ARCHITECTURE)
    joined = " ".join(command)
    assert "--platform manylinux2014_aarch64" in joined
    assert "--implementation cp" in joined
    assert f"--python-version {RUNTIME.name.removeprefix('python')}" in joined
    assert "--only-binary=:all:" in command
    assert f"--target {tmp_path}" in joined
    assert f"--requirement {LAMBDAS_DIR / 'requirements.txt'}" in joined


def test_failing_pip_raises_instead_of_falling_back_to_docker(tmp_path: Path) -> None:
    source = tmp_path / "empty-source"  # no requirements.txt: pip fails at once, without the network
    source.mkdir()
    bundler = PipLocalBundling(source, RUNTIME, ARCHITECTURE)
    with pytest.raises(BundlingError, match=r"pip failed.*Docker bundling is not used"):
        bundler.try_bundle(str(tmp_path / "out"))


def test_synthesis_bundles_code_and_dependencies_locally(tmp_path: Path) -> None:
    """The real thing (pip reaches PyPI): CDK calls the local bundler and stages its output as the asset."""
    app = cdk.App(outdir=str(tmp_path / "cdk.out"))
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
    asset = Path(assembly.directory) / f"asset.{key.removesuffix('.zip')}"
    assert (asset / "archiver" / "handler.py").is_file()
    assert (asset / "archiver" / "records.py").is_file()
    assert (asset / "aws_lambda_powertools").is_dir()
    assert (asset / "aws_xray_sdk").is_dir()  # powertools[tracer]
    for name in RUNTIME_PROVIDED:  # the runtime's SDK is used, not a bundled copy
        assert not (asset / name).exists()
        assert not list(asset.glob(f"{name}-*.dist-info"))
    assert not list(asset.rglob("__pycache__"))
    assert not list(asset.rglob("*.pyc"))
    binaries = [path.name for path in asset.rglob("*.so")]
    assert binaries, "expected at least one compiled extension (wrapt)"
    assert all("aarch64" in name or "abi3" in name for name in binaries), binaries
