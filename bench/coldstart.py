"""Cold start: importing the handler from the built asset with the runtime's Python, and the package's size.

The asset is built by the stack's own bundler (infra/bundling.py): pip installs the hashed lock, the `archiver`
package is copied in, the runtime's Python version compiles the bytecode. Timing needs an asset this machine can
run, so it is built for x86_64 (the deployed one is arm64; only the compiled extension, wrapt's, differs) and
imported in fresh processes of the runtime's Python version with PYTHONDONTWRITEBYTECODE=1, as in Lambda, whose
/var/task is read-only. Three layouts are timed: the asset as deployed (SDK bundled, bytecode compiled); the same
without bytecode; and the layout before the SDK was bundled, the asset without the SDK and without bytecode,
with the SDK on sys.path behind it and compiled, as the runtime's own copy is. The size is the deployed (arm64)
asset's, and the earlier layout's for comparison.
"""

from __future__ import annotations

import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.results import cpu_model
from local.stack import DUMMY_ACCESS_KEY_ID, DUMMY_SECRET_ACCESS_KEY

ROOT = Path(__file__).resolve().parent.parent
LAMBDAS = ROOT / "lambdas"
# The distributions the Lambda runtime provides and the asset left to it before it bundled the SDK.
SDK = ("boto3", "botocore", "s3transfer", "urllib3")
RUNTIME_ROOT = "/var/runtime"  # where the runtime's SDK lives in Lambda: the "before" layout's bytecode paths
COMMAND = "python -m bench.run --from-json docs/performance.json --remeasure-coldstart"

# Seconds to import `module` (after `before`, untimed), printed on one line.
_IMPORT_PROBE = "{before}; import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"


@dataclass
class ColdStart:
    runs: int
    python: str  # the interpreter that imported the asset: the runtime's version
    machine: str
    command: str
    measured: str  # when (UTC)
    load_average: float  # the machine's 1-minute load average as the measurement started (others' work too)
    import_handler_s: float  # `import archiver.handler`, valid environment: modules + clients (INIT), as deployed
    import_handler_no_clients_s: float  # the same with an invalid environment: modules only
    import_xray_s: float  # `import aws_xray_sdk.core` after boto3 (Powertools Tracer needs it): its own cost
    import_boto3_s: float  # `import boto3` alone
    process_s: float  # whole `python -c "import archiver.handler"` process, interpreter start included
    import_handler_no_bytecode_s: float  # the asset as deployed, but without its compiled bytecode
    import_handler_runtime_sdk_s: float  # before: no SDK and no bytecode in the asset; the SDK beside it, compiled


def _env(valid: bool, path: list[Path]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ARCHIVE_", "SOURCE_", "PYTHON"))}
    env.update(
        PYTHONDONTWRITEBYTECODE="1",  # /var/task is read-only: nothing compiled at import is kept
        PYTHONPATH=os.pathsep.join(str(p) for p in path),  # the task root first, then the runtime's folder
        AWS_DEFAULT_REGION="us-east-2",
        AWS_REGION="us-east-2",
        AWS_ACCESS_KEY_ID=DUMMY_ACCESS_KEY_ID,
        AWS_SECRET_ACCESS_KEY=DUMMY_SECRET_ACCESS_KEY,
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
    )
    if valid:
        env.update(ARCHIVE_TABLE_NAME="bench-archive", ARCHIVE_BUCKET_NAME="bench-archive-bucket")
    return env


def _python_command(python: str, code: str) -> list[str]:
    return [python, "-s", "-c", code]  # -s: no user site-packages; the asset is all there is


def _import_once(python: str, path: list[Path], module: str, valid: bool, before: str = "pass") -> float:
    out = subprocess.run(
        _python_command(python, _IMPORT_PROBE.format(module=module, before=before)),
        env=_env(valid, path),
        cwd=path[0],
        capture_output=True,
        text=True,
        check=True,
    )
    return float(out.stdout.strip().splitlines()[-1])


def _process_once(python: str, path: list[Path]) -> float:
    started = time.perf_counter()
    subprocess.run(_python_command(python, "import archiver.handler"), env=_env(True, path), cwd=path[0], check=True)
    return time.perf_counter() - started


def interleaved_medians(probes: dict[str, Callable[[], float]], runs: int) -> dict[str, float]:
    """The median of `runs` samples of each probe, taken in rounds (one sample of each per round, in a shuffled
    order): on a shared machine the load drifts, and it then weighs on every figure alike."""
    order = random.Random(0).sample  # a fixed seed: the same order on every run of the benchmark
    samples: dict[str, list[float]] = {name: [] for name in probes}
    for _ in range(runs):
        for name in order(list(probes), len(probes)):
            samples[name].append(probes[name]())
    return {name: statistics.median(values) for name, values in samples.items()}


@dataclass
class Layouts:
    """One pip install of the lock, laid out three ways (folders under one temporary directory)."""

    deployed: Path  # the bundler's output: SDK bundled, bytecode compiled
    no_bytecode: Path  # the same without bytecode
    before: Path  # the earlier asset: no SDK, no bytecode
    runtime_sdk: Path  # the SDK the earlier asset left to the runtime, compiled under RUNTIME_ROOT


def build_layouts(tmp: Path, architecture_name: str, python: str) -> Layouts:
    """Build the asset for `architecture_name` ('x86_64', 'arm64') with the stack's bundler, and its variants."""
    # Imported here: CDK is heavy, and only these measurements need it.
    from aws_cdk import aws_lambda as lambda_

    from infra.archiver import RUNTIME
    from infra.bundling import PipLocalBundling, compile_command, pip_command

    architecture = {"x86_64": lambda_.Architecture.X86_64, "arm64": lambda_.Architecture.ARM_64}[architecture_name]
    bundler = PipLocalBundling(LAMBDAS, RUNTIME, architecture)
    installed = tmp / f"pip-{architecture_name}"
    subprocess.run(pip_command(LAMBDAS / "requirements.txt", installed, RUNTIME, architecture), check=True)
    layouts = Layouts(*(tmp / f"{name}-{architecture_name}" for name in ("deployed", "nobytecode", "before", "sdk")))
    shutil.copytree(installed, layouts.deployed)
    bundler.complete(layouts.deployed, python)
    shutil.copytree(installed, layouts.no_bytecode)
    bundler.complete(layouts.no_bytecode, None)
    shutil.copytree(layouts.no_bytecode, layouts.before)
    layouts.runtime_sdk.mkdir()
    for name in SDK:  # each is one top-level package and its dist-info
        for entry in [layouts.before / name, *layouts.before.glob(f"{name}-*.dist-info")]:
            shutil.move(entry, layouts.runtime_sdk / entry.name)
    subprocess.run(compile_command(python, layouts.runtime_sdk, RUNTIME_ROOT), check=True, capture_output=True)
    return layouts


def _runtime_python() -> str:
    from infra.archiver import RUNTIME
    from infra.bundling import runtime_python

    return runtime_python(RUNTIME)


def _describe(python: str) -> str:
    code = "import platform; print(platform.python_version())"
    out = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True)
    return f"CPython {out.stdout.strip()} ({python})"


def _machine() -> str:
    return f"{os.cpu_count()} x {cpu_model()}, {platform.machine()}, {platform.platform(terse=True)}"


# Imports the handler verbosely: importlib names on stderr every bytecode file it loads ("# code object from").
_WHERE_PROBE = (
    "import archiver.handler, botocore, aws_lambda_powertools as p; print(botocore.__file__); print(p.__file__)"
)


def check_layout(python: str, path: list[Path], sdk: Path, compiled: set[Path]) -> None:
    """Before timing a layout: botocore comes from `sdk`, Powertools from the task root (path[0]), and bytecode
    is loaded from exactly the folders in `compiled`, so each figure is of the layout it names."""
    out = subprocess.run(
        [python, "-s", "-v", "-c", _WHERE_PROBE],
        env=_env(True, path),
        cwd=path[0],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"cold start: the handler does not import from {path}: {out.stderr[-2000:]}")
    botocore, powertools = (Path(line) for line in out.stdout.split())
    loaded = {Path(line.split("'")[1]) for line in out.stderr.splitlines() if line.startswith("# code object from '")}
    from_bytecode = {folder for folder in path if any(pyc.is_relative_to(folder) for pyc in loaded)}
    if not botocore.is_relative_to(sdk) or not powertools.is_relative_to(path[0]) or from_bytecode != compiled:
        raise RuntimeError(
            f"cold start: layout {path} is not what it should be: botocore {botocore} (expected under {sdk}), "
            f"Powertools {powertools}, bytecode loaded from {sorted(from_bytecode)} (expected {sorted(compiled)})"
        )


def measure_imports(runs: int = 15) -> ColdStart:
    """Median over `runs` fresh processes each, from the x86_64 asset with the runtime's Python version."""
    python = _runtime_python()
    load_average = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-coldstart-") as tmp:
        layouts = build_layouts(Path(tmp), "x86_64", python)
        deployed = [layouts.deployed]
        check_layout(python, deployed, layouts.deployed, {layouts.deployed})
        check_layout(python, [layouts.no_bytecode], layouts.no_bytecode, set())
        check_layout(python, [layouts.before, layouts.runtime_sdk], layouts.runtime_sdk, {layouts.runtime_sdk})
        before = [layouts.before, layouts.runtime_sdk]
        medians = interleaved_medians(
            {
                "import_handler_s": lambda: _import_once(python, deployed, "archiver.handler", True),
                "import_handler_no_clients_s": lambda: _import_once(python, deployed, "archiver.handler", False),
                "import_xray_s": lambda: _import_once(python, deployed, "aws_xray_sdk.core", True, "import boto3"),
                "import_boto3_s": lambda: _import_once(python, deployed, "boto3", True),
                "process_s": lambda: _process_once(python, deployed),
                "import_handler_no_bytecode_s": lambda: _import_once(
                    python, [layouts.no_bytecode], "archiver.handler", True
                ),
                "import_handler_runtime_sdk_s": lambda: _import_once(python, before, "archiver.handler", True),
            },
            runs,
        )
        return ColdStart(
            runs=runs,
            python=_describe(python),
            machine=_machine(),
            command=COMMAND,
            measured=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            load_average=load_average,
            **medians,
        )


@dataclass
class PackageSize:
    unzipped_bytes: int
    zipped_bytes: int
    files: int
    sdk_bytes: int  # boto3/botocore/s3transfer/urllib3 in the asset (bundled since issue 10)
    botocore_data_bytes: int  # of which botocore's service models (every service; the archiver calls five)
    bytecode_bytes: int  # the compiled __pycache__ files
    before_unzipped_bytes: int  # the earlier asset: without the SDK (left to the runtime) and without bytecode
    before_zipped_bytes: int
    before_files: int
    note: str = ""


def _tree_size(path: Path) -> tuple[int, int]:
    files = [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files), len(files)


def _zipped_size(folder: Path, archive: Path) -> int:
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            zf.write(path, path.relative_to(folder))
    return archive.stat().st_size


def measure_package() -> PackageSize | None:
    """The deployed (arm64) asset as the stack's bundler builds it, and the earlier layout's size."""
    python = _runtime_python()
    with tempfile.TemporaryDirectory(prefix="bench-asset-") as tmp:
        try:
            layouts = build_layouts(Path(tmp), "arm64", python)
        except subprocess.CalledProcessError as error:
            print(f"package size not measured: {error}", file=sys.stderr)
            return None
        unzipped, files = _tree_size(layouts.deployed)
        before_unzipped, before_files = _tree_size(layouts.before)
        sdk = sum(_tree_size(layouts.deployed / name)[0] for name in SDK)
        bytecode = sum(p.stat().st_size for p in layouts.deployed.rglob("*.pyc"))
        return PackageSize(
            unzipped_bytes=unzipped,
            zipped_bytes=_zipped_size(layouts.deployed, Path(tmp, "deployed.zip")),
            files=files,
            sdk_bytes=sdk,
            botocore_data_bytes=_tree_size(layouts.deployed / "botocore" / "data")[0],
            bytecode_bytes=bytecode,
            before_unzipped_bytes=before_unzipped,
            before_zipped_bytes=_zipped_size(layouts.before, Path(tmp, "before.zip")),
            before_files=before_files,
        )
