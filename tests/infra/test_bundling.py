"""Local bundling: the asset is built by pip for the Lambda platform, never by Docker, or synthesis fails clearly.

Everything but the real pip run is tested offline: pip's command line, the step after pip (`complete`: the
package copied in, the bytecode compiled by the runtime's Python version, found on this machine) on a fake
install, and CDK staging the bundler's output with pip replaced by a fake. The one test that lets pip reach the
package registry is marked `network`: `make test` leaves it out, `make test-slow` runs it.
"""

from __future__ import annotations

import json
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
    TASK_ROOT,
    BundlingError,
    PipLocalBundling,
    compile_command,
    lambda_code,
    pip_command,
    python_version,
    runtime_python,
)
from infra.lambda_python import ENV_VAR
from tests.infra.test_lock import read_lock

# What a pip --target install of the lock looks like, in miniature: the SDK (bundled, nested data folders
# included), the other dependencies, and a console script.
FAKE_INSTALL: dict[str, list[str]] = {
    "boto3": ["boto3/__init__.py", "boto3/data/s3/2006-03-01/resources-1.json"],
    "botocore": ["botocore/__init__.py", "botocore/data/s3/2006-03-01/service-2.json.gz"],
    "s3transfer": ["s3transfer/__init__.py"],
    "urllib3": ["urllib3/__init__.py", "urllib3/util/retry.py"],
    "aws_lambda_powertools": ["aws_lambda_powertools/__init__.py", "aws_lambda_powertools/logging/logger.py"],
    "wrapt": ["wrapt/__init__.py", "wrapt/_wrappers.cpython-313-aarch64-linux-gnu.so"],
    "jmespath": ["jmespath/__init__.py", "bin/jp.py"],
}
SDK = ("boto3", "botocore", "s3transfer", "urllib3")  # the runtime has its own copy; the asset bundles the tested one
CACHE_TAG = f"cpython-{python_version(RUNTIME).replace('.', '')}"  # cpython-313: the runtime's bytecode
# Run by the runtime's Python on each .pyc named on the command line: its flags (1: hash-based, unchecked) and
# the file name compiled into it.
_READ_PYC = """
import json, marshal, sys
out = {}
for path in sys.argv[1:]:
    data = open(path, "rb").read()
    out[path] = [int.from_bytes(data[4:8], "little"), marshal.loads(data[16:]).co_filename]
print(json.dumps(out))
"""


def fake_pip_install(target: Path) -> None:
    """Write FAKE_INSTALL into `target` as pip would: each distribution's files and its dist-info RECORD."""
    for name, files in FAKE_INSTALL.items():
        info = f"{name}-1.0.dist-info"
        (target / info).mkdir(parents=True)
        (target / info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
        for file in files:
            (target / file).parent.mkdir(parents=True, exist_ok=True)
            (target / file).write_text(f"NAME = {file!r}\n" if file.endswith(".py") else "")
        record = [*files, f"{info}/METADATA", f"{info}/RECORD"]
        (target / info / "RECORD").write_text("".join(f"{path},,\n" for path in record))


def bytecode_of(asset: Path) -> dict[Path, tuple[int, str]]:
    """Each .py of the asset -> (flags, compiled-in file name) of its runtime-version .pyc; fails if one is missing."""
    sources = sorted(asset.rglob("*.py"))
    pycs = [source.parent / "__pycache__" / f"{source.stem}.{CACHE_TAG}.pyc" for source in sources]
    missing = [str(source.relative_to(asset)) for source, pyc in zip(sources, pycs, strict=True) if not pyc.is_file()]
    assert not missing, f"not compiled: {missing[:10]}"
    read = subprocess.run(
        [runtime_python(RUNTIME), "-c", _READ_PYC, *map(str, pycs)], capture_output=True, text=True, check=True
    )
    answers = json.loads(read.stdout)
    return {source: (answers[str(pyc)][0], answers[str(pyc)][1]) for source, pyc in zip(sources, pycs, strict=True)}


def assert_is_the_lambda_asset(asset: Path) -> None:
    """What the function needs is there, the SDK included; no console scripts; every module compiled by the
    runtime's version, hash-based and unchecked, under the task root's path."""
    assert (asset / PACKAGE / "handler.py").is_file()
    assert (asset / PACKAGE / "records.py").is_file()
    assert (asset / "aws_lambda_powertools").is_dir()
    for name in SDK:  # bundled: the SDK the tests run with, not the runtime's
        assert (asset / name / "__init__.py").is_file()
        assert list(asset.glob(f"{name}-*.dist-info"))
    assert not (asset / "bin").exists()
    assert not list(asset.rglob("*.pyc.*")) and not list(asset.glob(f"{PACKAGE}/*.pyc"))
    for source, (flags, filename) in bytecode_of(asset).items():
        assert flags == 0b01, f"{source}: not unchecked-hash bytecode (flags {flags:#b})"
        assert filename == f"{TASK_ROOT}/{source.relative_to(asset)}", (source, filename)
    stray = {p for p in asset.rglob("*.pyc") if p.parent.name != "__pycache__" or CACHE_TAG not in p.name}
    assert not stray, stray


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


def test_pip_command_installs_the_hashed_lock_alone_for_the_lambda_platform(tmp_path: Path) -> None:
    command = pip_command(LAMBDAS_DIR / REQUIREMENTS, tmp_path, RUNTIME, ARCHITECTURE)
    joined = " ".join(command)
    assert "--require-hashes" in command
    assert "--no-deps" in command  # the lock is complete (tests/infra/test_lock.py): nothing resolved here
    assert "--platform manylinux2014_aarch64" in joined
    assert "--implementation cp" in joined
    assert f"--python-version {RUNTIME.name.removeprefix('python')}" in joined
    assert "--only-binary=:all:" in command
    assert "--no-compile" in command  # pip would compile with this venv's Python; the runtime's does it after
    assert f"--target {tmp_path}" in joined
    assert f"--requirement {LAMBDAS_DIR / REQUIREMENTS}" in joined
    x86 = " ".join(pip_command(LAMBDAS_DIR / REQUIREMENTS, tmp_path, RUNTIME, lambda_.Architecture.X86_64))
    assert "--platform manylinux2014_x86_64" in x86


def test_compile_command_is_the_runtimes_compileall_with_hash_based_bytecode_named_under_the_task_root(
    tmp_path: Path,
) -> None:
    command = compile_command("/opt/python3.13", tmp_path)
    assert command[:3] == ["/opt/python3.13", "-m", "compileall"]
    joined = " ".join(command)
    assert "--invalidation-mode unchecked-hash" in joined
    assert f"-s {tmp_path.resolve()} -p {TASK_ROOT}" in joined
    assert command[-1] == str(tmp_path.resolve())


def test_failing_pip_raises_instead_of_falling_back_to_docker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # pip may not look at any index: this test is offline
    source = tmp_path / "empty-source"  # no requirements.txt: pip fails at once
    source.mkdir()
    bundler = PipLocalBundling(source, RUNTIME, ARCHITECTURE)
    with pytest.raises(BundlingError, match=r"pip \(installing .*\) failed.*Docker bundling is not used"):
        bundler.try_bundle(str(tmp_path / "out"))


def test_without_the_runtimes_python_bundling_fails_before_pip_naming_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "no-such-python"))
    ran: list[list[str]] = []
    monkeypatch.setattr("infra.bundling.subprocess", SimpleNamespace(run=lambda command, **_: ran.append(command)))
    with pytest.raises(BundlingError, match=rf"cannot compile its bytecode: {ENV_VAR}=.*no-such-python"):
        PipLocalBundling(LAMBDAS_DIR, RUNTIME, ARCHITECTURE).try_bundle(str(tmp_path / "out"))
    assert ran == []  # pip never started


def fake_source(tmp_path: Path) -> Path:
    """A lambdas/ folder in miniature, with stale bytecode that must not reach the asset."""
    source = tmp_path / "lambdas"
    (source / PACKAGE / "__pycache__").mkdir(parents=True)
    for module in ("__init__.py", "handler.py", "records.py"):
        (source / PACKAGE / module).write_text(f"# {module}\n")
    (source / PACKAGE / "__pycache__" / "handler.cpython-313.pyc").write_bytes(b"\0")
    (source / PACKAGE / "stale.pyc").write_bytes(b"\0")
    return source


def test_after_pip_the_package_is_copied_in_and_everything_is_compiled_by_the_runtimes_python(
    tmp_path: Path,
) -> None:
    source = fake_source(tmp_path)
    target = tmp_path / "asset"
    fake_pip_install(target)
    assert (target / "bin").is_dir()

    PipLocalBundling(source, RUNTIME, ARCHITECTURE).complete(target, runtime_python(RUNTIME))

    assert_is_the_lambda_asset(target)
    assert (target / PACKAGE / "handler.py").read_text() == "# handler.py\n"
    assert not (target / PACKAGE / "stale.pyc").exists()
    for name in FAKE_INSTALL:  # nothing pip installed is left out any more
        assert (target / name / "__init__.py").is_file() and (target / f"{name}-1.0.dist-info").is_dir()
    assert (target / "wrapt" / "_wrappers.cpython-313-aarch64-linux-gnu.so").is_file()


def test_without_an_interpreter_complete_leaves_no_bytecode(tmp_path: Path) -> None:
    """The benchmark's "before" layout: the same step, nothing compiled."""
    target = tmp_path / "asset"
    fake_pip_install(target)
    PipLocalBundling(fake_source(tmp_path), RUNTIME, ARCHITECTURE).complete(target, None)
    assert (target / PACKAGE / "handler.py").is_file()
    assert not list(target.rglob("*.pyc")) and not list(target.rglob("__pycache__"))


def test_the_compiled_asset_does_not_depend_on_the_folder_it_was_built_in(tmp_path: Path) -> None:
    """The asset's hash is its content (AssetHashType.OUTPUT): two builds in two folders are byte-identical,
    or every synthesis would make a new asset and every deployment update the function."""
    source = fake_source(tmp_path)
    trees = []
    for folder in ("first", "second-build"):
        target = tmp_path / folder / "asset"
        fake_pip_install(target)
        PipLocalBundling(source, RUNTIME, ARCHITECTURE).complete(target, runtime_python(RUNTIME))
        trees.append({str(p.relative_to(target)): p.read_bytes() for p in target.rglob("*") if p.is_file()})
    assert any(name.endswith(".pyc") for name in trees[0])
    assert trees[0] == trees[1]


def test_synthesis_stages_the_local_bundlers_output_as_the_asset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CDK calls the local bundler (not Docker) and stages what it built; pip is a fake here, so no network,
    and the compiler is the real one."""
    commands: list[list[str]] = []

    def fake_run(command: Sequence[str], **_: Any) -> subprocess.CompletedProcess[str]:
        commands.append(list(command))
        if list(command[1:4]) == ["-m", "pip", "install"]:
            fake_pip_install(Path(command[command.index("--target") + 1]))
            return subprocess.CompletedProcess(list(command), 0, "", "")
        return subprocess.run(command, capture_output=True, text=True, check=False)  # compileall, for real

    monkeypatch.setattr("infra.bundling.subprocess", SimpleNamespace(run=fake_run))  # in that module only
    asset = synthesize(tmp_path / "cdk.out")

    install, compile_ = commands
    target = Path(install[install.index("--target") + 1])
    assert install == pip_command(LAMBDAS_DIR / REQUIREMENTS, target, RUNTIME, ARCHITECTURE)
    assert compile_ == compile_command(runtime_python(RUNTIME), target)
    assert_is_the_lambda_asset(asset)
    assert (asset / PACKAGE / "handler.py").read_text() == (LAMBDAS_DIR / PACKAGE / "handler.py").read_text()
    assert (asset / "wrapt" / "_wrappers.cpython-313-aarch64-linux-gnu.so").is_file()


@pytest.mark.network
def test_synthesis_bundles_code_and_dependencies_with_the_real_pip(tmp_path: Path) -> None:
    """The real thing (pip reaches the package registry): exactly the lock, for the Lambda platform."""
    asset = synthesize(tmp_path / "cdk.out")
    assert_is_the_lambda_asset(asset)
    assert (asset / "aws_xray_sdk").is_dir()  # powertools[tracer]
    installed = {
        info.name.split("-")[0].lower().replace("_", "-"): info.name.removesuffix(".dist-info").split("-", 1)[1]
        for info in asset.glob("*.dist-info")
    }
    assert installed == {name: version for name, (version, _) in read_lock().items()}
    binaries = [path.name for path in asset.rglob("*.so")]
    assert binaries, "expected at least one compiled extension (wrapt)"
    assert all("aarch64" in name or "abi3" in name for name in binaries), binaries
