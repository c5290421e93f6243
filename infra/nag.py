"""cdk-nag 3 acknowledgments in one form, so every one names its AwsSolutions rule and carries a reason.

The ID is plugin-qualified (`AwsSolutions::AwsSolutions-IAM5[...]`): CDK's validation (app.py registers the
pack with `Validations.of(app).add_plugins`) then reports the finding as suppressed, with this reason, in
`cdk.out/validation-report.json`, an audit trail of every exception. cdk-nag's own `validate_scope` does not
read qualified IDs; the tests filter its findings the way CDK does (tests/infra/test_nag.py).
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, CfnElement, Stack, Validations
from constructs import IConstruct

PACK = "AwsSolutions"


def acknowledge(construct: IConstruct, rule: str, reason: str) -> None:
    """Acknowledge one AwsSolutions finding (e.g. 'AwsSolutions-IAM5[Resource::*]') on `construct`, with why."""
    if not rule.startswith(f"{PACK}-"):
        raise ValueError(f"{rule!r} is not an {PACK} rule ID")
    if not reason.strip():
        raise ValueError(f"acknowledging {rule} needs a written reason")
    Validations.of(construct).acknowledge(Acknowledgment(id=f"{PACK}::{rule}", reason=reason))


def arn_of(element: CfnElement) -> str:
    """How cdk-nag spells `Fn::GetAtt <element>.Arn` in a finding ID: `<LogicalId.Arn>`."""
    stack = Stack.of(element)
    return f"<{stack.resolve(stack.get_logical_id(element))}.Arn>"
