"""checkov on the synthesized templates (issue 10, "Checks"): every failed check is fixed, or reviewed in
checkov_accepted (accepted with its reason, or to be fixed), and nothing else fails.

checkov pins a botocore older than the project's, so it lives in its own venv (.venv-checkov, installed from
requirements-checkov.txt with hashes) and runs as a subprocess, once for all the stacks. It must stay offline:
`--skip-download` and BC_SKIP_MAPPING keep it from the Prisma Cloud API, CKV_SKIP_PACKAGE_UPDATE_CHECK from
PyPI's version check (at import, in checkov.common.util.banner), and a Python audit hook installed before
checkov starts records and refuses every name lookup and connection to anything but loopback, so a version that
starts calling home fails this test instead of reaching the network. The hook sees what goes through Python's
socket module (asyncio's connections too); a lookup made inside a C library (c-ares, through aiodns) is not seen,
but the connection that would follow it is.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import CfnElement

from tests.infra.checkov_accepted import ACCEPTED, TITLES, TO_FIX, Finding, markdown_table
from tests.infra.conftest import ROOT, Built
from tests.infra.test_nag import stack_named

CHECKOV_PYTHON = ROOT / ".venv-checkov" / "bin" / "python"
# What `make pytest` runs to build it (the Makefile's recipe).
INSTALL = (
    "rm -rf .venv-checkov && python3 -m venv .venv-checkov && "
    ".venv-checkov/bin/python -m pip install --quiet --require-hashes -r requirements-checkov.txt"
)
# The version requirements-checkov.in pins: the one the reviewed findings below were judged on.
PINNED = re.search(r"^checkov==(\S+)$", (ROOT / "requirements-checkov.in").read_text(), re.MULTILINE)
# The default stack, the imported key with every other option (variant + events), every option with the stack's
# own key (readers, break-glass roles, Object Lock, backup).
STACKS = ("default", "events_variant", "all_options")

# Runs checkov (argv after `-c`) with an audit hook that refuses and records any lookup of, or connection to,
# a host that is not loopback. The hook fires before the call, so nothing is sent; the record is the evidence.
GUARDED_CHECKOV = r"""
import os, socket, sys

RECORD = os.environ["NETWORK_ATTEMPTS"]
LOOKUPS = {"socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyname_ex", "socket.gethostbyaddr"}
SENDS = {"socket.connect", "socket.sendto"}


def loopback(host):
    host = host.decode() if isinstance(host, bytes) else str(host)
    return host in ("localhost", "::1", "None") or host.startswith("127.")


def guard(event, args):
    if event in LOOKUPS:
        host = args[0]
    elif event in SENDS:
        if args[0].family == socket.AF_UNIX:
            return
        address = args[1]
        host = address[0] if isinstance(address, tuple) else address
    else:
        return
    if loopback(host):
        return
    with open(RECORD, "a") as record:
        record.write(f"{event} {host!r}\n")
    raise OSError(f"network access refused in this test: {event} {host!r}")


sys.addaudithook(guard)
if sys.argv[1:2] == ["--probe"]:  # the guard's own test: a lookup and a connection it must refuse
    refused = 0
    try:
        socket.getaddrinfo("example.invalid", 443)
    except OSError:
        refused += 1
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1)
        try:
            sock.connect(("192.0.2.1", 443))  # an address, so no lookup first; TEST-NET-1, routed nowhere
        except OSError as error:
            refused += "refused in this test" in str(error)
    sys.exit(0 if refused == 2 else 1)
from checkov.main import Checkov

sys.exit(Checkov().run())
"""


@dataclass(frozen=True)
class Scan:
    """One checkov run over the stacks' templates."""

    report: dict[str, Any]
    network_attempts: list[str]
    returncode: int
    stderr: str


def offline_environment(record: Path) -> dict[str, str]:
    """This process's environment without any Prisma/Bridgecrew setting, and checkov's offline switches."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("BC_", "PRISMA_", "CKV_", "CHECKOV_")) and key not in ("HTTP_PROXY", "HTTPS_PROXY")
    }
    return {
        **env,
        "BC_SKIP_MAPPING": "TRUE",
        "CKV_SKIP_PACKAGE_UPDATE_CHECK": "TRUE",
        "NETWORK_ATTEMPTS": str(record),
        "PYTHONDONTWRITEBYTECODE": "1",
    }


def run_guarded(arguments: list[str], record: Path) -> subprocess.CompletedProcess[str]:
    if not CHECKOV_PYTHON.exists():
        pytest.fail(f"checkov's venv is missing: {CHECKOV_PYTHON} (`make pytest` builds it; by hand: {INSTALL})")
    return subprocess.run(
        [str(CHECKOV_PYTHON), "-c", GUARDED_CHECKOV, *arguments],
        env=offline_environment(record),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def construct_paths(built: Built) -> dict[str, str]:
    """Logical ID -> construct path under the stack (without the stack's name), for every resource."""
    paths = {}
    for construct in built.stack.node.find_all():
        if isinstance(construct, CfnElement):
            logical = built.stack.resolve(construct.logical_id)
            paths[logical] = construct.node.path.removeprefix(built.stack.node.path + "/")
    return paths


@pytest.fixture(scope="module")
def scan(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Scan]:
    folder = tmp_path_factory.mktemp("checkov")
    files = []
    for name in STACKS:
        path = folder / f"{name}.template.json"
        path.write_text(json.dumps(stack_named(name, request).json, indent=1))
        files += ["--file", str(path)]
    record = folder / "network-attempts.txt"
    arguments = ["--framework", "cloudformation", "--skip-download", "--output", "json", "--compact", *files]
    result = run_guarded(arguments, record)
    attempts = record.read_text().splitlines() if record.exists() else []
    assert result.stdout.strip(), f"checkov printed no report (exit {result.returncode}): {result.stderr[-2000:]}"
    yield Scan(json.loads(result.stdout), attempts, result.returncode, result.stderr)


def failed_checks(scan: Scan, request: pytest.FixtureRequest) -> dict[str, set[Finding]]:
    """Stack name -> the findings of checkov's failed checks, by construct path."""
    paths = {name: construct_paths(stack_named(name, request)) for name in STACKS}
    found: dict[str, set[Finding]] = {name: set() for name in STACKS}
    for failed in scan.report["results"]["failed_checks"]:
        name = Path(failed["file_path"]).name.removesuffix(".template.json")
        logical = failed["resource"].split(".", 1)[1]
        found[name].add(Finding(failed["check_id"], paths[name].get(logical, logical)))
    return found


def test_guard_refuses_a_lookup_and_a_connection(tmp_path: Path) -> None:
    """The network guard the scan relies on refuses (and records) a name lookup and a connection before either is
    made."""
    record = tmp_path / "attempts.txt"
    result = run_guarded(["--probe"], record)
    assert result.returncode == 0, result.stderr
    assert record.read_text().splitlines() == [
        "socket.getaddrinfo 'example.invalid'",
        "socket.connect '192.0.2.1'",
    ]


def test_checkov_scans_every_stack_offline(scan: Scan) -> None:
    assert scan.network_attempts == []
    summary = scan.report["summary"]
    assert summary["parsing_errors"] == 0
    assert PINNED is not None, "requirements-checkov.in pins no checkov version"
    assert summary["checkov_version"] == PINNED.group(1)
    assert summary["passed"] > 100, summary  # it did check the templates (and found most things right)
    scanned = {Path(check["file_path"]).name for check in scan.report["results"]["passed_checks"]}
    assert scanned == {f"{name}.template.json" for name in STACKS}
    assert scan.returncode in (0, 1), scan.stderr[-2000:]  # 1: some check failed, judged below


@pytest.mark.parametrize("name", STACKS)
def test_every_failed_check_is_reviewed(name: str, scan: Scan, request: pytest.FixtureRequest) -> None:
    unreviewed = sorted(failed_checks(scan, request)[name] - ACCEPTED.keys() - TO_FIX.keys())
    assert unreviewed == [], "fix these, or add them to tests/infra/checkov_accepted.py with the reason"


def test_every_reviewed_entry_matches_a_failure(scan: Scan, request: pytest.FixtureRequest) -> None:
    """A stale entry would hide a future finding; a fixed TO_FIX entry must leave the list."""
    failing = set().union(*failed_checks(scan, request).values())
    stale = sorted((ACCEPTED.keys() | TO_FIX.keys()) - failing)
    assert stale == [], "these no longer fail: remove them from tests/infra/checkov_accepted.py"


def test_reviewed_entries_say_why() -> None:
    for finding, reason in {**ACCEPTED, **TO_FIX}.items():
        assert len(reason.split()) >= 15, finding
    for finding, change in TO_FIX.items():
        assert change.startswith("infra/"), f"{finding}: name the file to change"
    assert not ACCEPTED.keys() & TO_FIX.keys()


def test_reviewed_checks_have_checkovs_titles(scan: Scan) -> None:
    titles = {failed["check_id"]: failed["check_name"] for failed in scan.report["results"]["failed_checks"]}
    reviewed = {finding.check for finding in ACCEPTED.keys() | TO_FIX.keys()}
    assert {check: TITLES[check] for check in reviewed} == {check: titles[check] for check in reviewed}


# The security page: the file that holds the
# marker is the one checked, and exactly one may.
SECURITY_DOCS = (ROOT / "docs" / "SECURITY.md",)


def security_doc(marker: str) -> str:
    """The text of the one security page that contains `marker`."""
    holding = [path for path in SECURITY_DOCS if path.exists() and marker in path.read_text()]
    assert len(holding) == 1, f"exactly one of {[str(p) for p in SECURITY_DOCS]} must contain {marker!r}"
    return holding[0].read_text()


def test_security_doc_shows_the_reviewed_findings() -> None:
    text = security_doc("<!-- checkov-accepted -->")
    assert markdown_table(ACCEPTED, "Why it is accepted") in text
    if TO_FIX:
        assert markdown_table(TO_FIX, "The fix") in text
    else:
        assert "No checkov finding is waiting for a fix." in text


def test_security_doc_names_only_tests_that_exist() -> None:
    """Each `tests/...py::test_name` the page cites is a test of that file."""
    text = security_doc("<!-- checkov-accepted -->")
    cited = set(re.findall(r"(tests/[\w/]+\.py)::(test_\w+)", text))
    assert len(cited) > 20
    missing = sorted(
        (path, name)
        for path, name in cited
        if not (ROOT / path).exists() or f"def {name}(" not in (ROOT / path).read_text()
    )
    assert missing == []
