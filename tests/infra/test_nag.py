"""Security checks: cdk-nag AwsSolutions (every exception acknowledged with a reason), cfn-lint, and app.py."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import pytest
from cdk_nag import AwsSolutionsChecks
from cfnlint.api import ManualArgs, lint
from constructs import IConstruct

import app as cdk_app
from infra.nag import PACK
from tests.infra.conftest import EXPORT_LOCATIONS, SECURED, SKIP_BUNDLING, VARIANT, Built, build

ACKNOWLEDGED = "aws:cdk:acknowledged-rules"
# W3005: the CDK writes an explicit DependsOn on the function's role (and its default policy) that a GetAtt
# already implies. Harmless, CDK-generated on every Lambda; everything else must be clean.
IGNORED_LINT_RULES = ["W3005"]


def acknowledgments(construct: IConstruct) -> dict[str, str]:
    """Acknowledged rule ID -> reason, on this construct and its ancestors (as CDK's validation reads them)."""
    found: dict[str, str] = {}
    current: IConstruct | None = construct
    while current is not None:
        for entry in current.node.metadata:
            if entry.type == ACKNOWLEDGED and entry.data:
                found.update(entry.data)
        current = current.node.scope
    return found


_FINDINGS: dict[int, list[tuple[str, str, str | None]]] = {}


def nag_findings(built: Built) -> list[tuple[str, str, str | None]]:
    """(rule, construct path, reason or None) for every AwsSolutions finding in the stack (computed once)."""
    if id(built) not in _FINDINGS:
        _FINDINGS[id(built)] = _nag_findings(built)
    return _FINDINGS[id(built)]


def _nag_findings(built: Built) -> list[tuple[str, str, str | None]]:
    constructs = {construct.node.path: construct for construct in built.stack.node.find_all()}
    report = AwsSolutionsChecks().validate_scope(built.stack)
    findings = []
    for violation in report.violations:
        for resource in violation.violating_resources:
            path = resource.construct_path
            assert path is not None
            reason = acknowledgments(constructs[path]).get(f"{PACK}::{violation.rule_name}")
            findings.append((violation.rule_name, path, reason))
    return findings


# Every option on at once (issue 10's checks run on it): the variant's settings, the stack's own key (no
# kms_key_arn), named readers and break-glass roles, Object Lock (which needs data kept), an AWS Backup plan and
# the event path.
ALL_OPTIONS: dict[str, object] = {
    **{key: value for key, value in VARIANT.items() if key not in ("kms_key_arn", "data_removal_policy")},
    **SECURED,
    "stack_name": "ArchiverAllOptions",
    "backup_plan": "daily35",
}


@functools.cache
def all_options() -> Built:
    """The stack with ALL_OPTIONS, built once per test process (shared by the security checks' modules)."""
    return build(ALL_OPTIONS)


def stack_named(name: str, request: pytest.FixtureRequest) -> Built:
    """A stack by name: one of conftest's session fixtures, or 'all_options'."""
    if name == "all_options":
        return all_options()
    built: Built = request.getfixturevalue(name)
    return built


STACKS = ["default", "variant", "events", "events_variant", "secured", "all_options"]


@pytest.mark.parametrize("name", STACKS)
def test_no_unacknowledged_cdk_nag_findings(name: str, request: pytest.FixtureRequest) -> None:
    built = stack_named(name, request)
    findings = nag_findings(built)
    assert findings, "cdk-nag reported nothing, not even the acknowledged exceptions: did it check the stack?"
    unacknowledged = [(rule, path) for rule, path, reason in findings if reason is None]
    assert unacknowledged == []
    for rule, path, reason in findings:
        assert reason is not None
        assert len(reason.split()) >= 8, f"{rule} at {path}: the reason must say why"


@pytest.mark.parametrize("name", STACKS)
def test_every_acknowledgment_matches_a_finding(name: str, request: pytest.FixtureRequest) -> None:
    """A stale acknowledgment would silently cover a future finding: each one must cover a finding of its
    own construct or of one inside it."""
    built = stack_named(name, request)
    findings = {(f"{PACK}::{rule}", path) for rule, path, _ in nag_findings(built)}
    declared = []
    for construct in built.stack.node.find_all():
        for entry in construct.node.metadata:
            if entry.type == ACKNOWLEDGED and entry.data:
                declared += [(rule, construct.node.path) for rule in entry.data]
    assert declared
    stale = [
        (rule, where)
        for rule, where in declared
        if not any(rule == found and (path == where or path.startswith(where + "/")) for found, path in findings)
    ]
    assert stale == []


def _lint(template: dict[str, Any]) -> list[str]:
    matches = lint(json.dumps(template), config=ManualArgs(regions=["us-east-2"], ignore_checks=IGNORED_LINT_RULES))
    return [f"{match.rule.id}: {match.message}" for match in matches]


def test_cfn_lint_reports_a_broken_template(default: Built) -> None:
    """The clean results below mean something only if the linter finds what is there."""
    broken = json.loads(json.dumps(default.json))
    function = next(r for r in broken["Resources"].values() if r["Type"] == "AWS::Lambda::Function")
    function["Properties"]["Role"] = {"Fn::GetAtt": ["NoSuchRole", "Arn"]}
    function["Properties"]["MemorySize"] = "a lot"
    assert {message.split(":")[0] for message in _lint(broken)} >= {"E1010", "E3012"}


@pytest.mark.parametrize("name", STACKS)
def test_cfn_lint(name: str, request: pytest.FixtureRequest) -> None:
    built = stack_named(name, request)
    assert _lint(built.json) == []


@pytest.mark.parametrize("overrides", [{}, {"export_locations": EXPORT_LOCATIONS}], ids=["polling", "events"])
def test_app_synthesizes_with_nag_plugin_and_records_reasons(overrides: dict[str, object], tmp_path: Path) -> None:
    """app.py as `cdk synth` runs it: the AwsSolutions plugin passes and reports each exception with its reason."""
    cdk_app.main({**SKIP_BUNDLING, **overrides}, str(tmp_path))
    report = json.loads((tmp_path / "validation-report.json").read_text())
    (plugin,) = report["pluginReports"]
    assert plugin["pluginName"] == PACK
    assert plugin["conclusion"] == "success"
    assert plugin["violations"] == []
    assert plugin["suppressedViolations"]
    assert all(suppressed["reason"].strip() for suppressed in plugin["suppressedViolations"])
    assert (tmp_path / "GameLiftStreamsSessionArchiver.template.json").exists()


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("schedule_minutes", "often"),
        ("source_regions", "us-east-2 us-west-2"),
        ("data_removal_policy", "keep"),
        ("export_locations", "my-exports/gamelift/"),
        ("consumer_batch_size", "20"),
    ],
)
def test_app_rejects_bad_context_naming_the_key(key: str, value: str, tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as raised:
        cdk_app.main({key: value, **SKIP_BUNDLING}, str(tmp_path))
    assert f"'{key}'" in str(raised.value)
    assert "expected" in str(raised.value)


def test_app_rejects_paces_over_the_quota_naming_the_keys(tmp_path: Path) -> None:
    overrides = {"export_locations": EXPORT_LOCATIONS, "get_rate_per_second": "18", **SKIP_BUNDLING}
    with pytest.raises(SystemExit) as raised:
        cdk_app.main(overrides, str(tmp_path))
    for key in ("get_rate_per_second", "consumer_get_rate_per_second", "get_quota_per_second"):
        assert f"'{key}'" in str(raised.value)
