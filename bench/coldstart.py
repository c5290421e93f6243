"""Cold start: the handler's import time (fresh processes, median) and the deployment package's size."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

from local.stack import DUMMY_ACCESS_KEY_ID, DUMMY_SECRET_ACCESS_KEY

ROOT = Path(__file__).resolve().parent.parent
LAMBDAS = ROOT / "lambdas"

# Seconds to import `module` (after `before`, untimed), printed on one line.
_IMPORT_PROBE = "{before}; import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"


@dataclass
class ColdStart:
    runs: int
    import_handler_s: float  # `import archiver.handler` with a valid environment: modules + clients (INIT)
    import_handler_no_clients_s: float  # the same with an invalid environment: modules only
    import_xray_s: float  # `import aws_xray_sdk.core` after boto3 (Powertools Tracer needs it): its own cost
    import_boto3_s: float  # `import boto3` alone
    process_s: float  # whole `python -c "import archiver.handler"` process, interpreter start included


def _env(valid: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ARCHIVE_", "SOURCE_"))}
    env.update(
        PYTHONDONTWRITEBYTECODE="1",
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


def _import_seconds(module: str, valid: bool, runs: int, before: str = "pass") -> float:
    samples = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", _IMPORT_PROBE.format(module=module, before=before)],
            env=_env(valid),
            capture_output=True,
            text=True,
            check=True,
        )
        samples.append(float(out.stdout.strip().splitlines()[-1]))
    return statistics.median(samples)


def _process_seconds(runs: int) -> float:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import archiver.handler"], env=_env(True), check=True)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def measure_imports(runs: int = 7) -> ColdStart:
    """Median over `runs` fresh processes each (bytecode caches warm, as in a deployed function)."""
    _import_seconds("archiver.handler", True, 1)  # compile .pyc files once, outside the samples
    return ColdStart(
        runs=runs,
        import_handler_s=_import_seconds("archiver.handler", True, runs),
        import_handler_no_clients_s=_import_seconds("archiver.handler", False, runs),
        import_xray_s=_import_seconds("aws_xray_sdk.core", True, runs, before="import boto3"),
        import_boto3_s=_import_seconds("boto3", True, runs),
        process_s=_process_seconds(runs),
    )


@dataclass
class PackageSize:
    unzipped_bytes: int
    zipped_bytes: int
    files: int
    runtime_provided_bytes: int  # what pip pulls in and the asset leaves out (the runtime's SDK, console scripts)
    left_out: tuple[str, ...] = ()  # the distributions the bundler leaves to the runtime
    note: str = ""


def _tree_size(path: Path) -> tuple[int, int]:
    files = [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files), len(files)


def measure_package() -> PackageSize | None:
    """Build the asset with the stack's own bundler (infra/bundling.py, for the function's runtime and
    architecture), measuring on the way what pip alone installs (the SDK included)."""
    # Imported here: CDK is heavy, and only this measurement needs it.
    from infra.archiver import ARCHITECTURE, RUNTIME
    from infra.bundling import RUNTIME_PROVIDED, PipLocalBundling, pip_command

    with tempfile.TemporaryDirectory(prefix="bench-asset-") as tmp:
        asset = Path(tmp, "asset")
        command = pip_command(LAMBDAS / "requirements.txt", asset, RUNTIME, ARCHITECTURE)
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            print(f"package size not measured: pip failed: {result.stderr.strip()[-500:]}", file=sys.stderr)
            return None
        installed, _ = _tree_size(asset)
        PipLocalBundling(LAMBDAS, RUNTIME, ARCHITECTURE).complete(asset)
        unzipped, files = _tree_size(asset)
        provided = installed - (unzipped - _tree_size(asset / "archiver")[0])
        archive = Path(tmp, "asset.zip")
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
            for path in sorted(p for p in asset.rglob("*") if p.is_file()):
                zf.write(path, path.relative_to(asset))
        return PackageSize(unzipped, archive.stat().st_size, files, provided, RUNTIME_PROVIDED)
