"""Every service principal the stacks trust is bound to this account's own resources (issue 10, "Least
privilege, tightened"): the confused-deputy conditions `aws:SourceAccount` and `aws:SourceArn`.

Checked over the WHOLE template of each stack, not resource by resource: every policy document anywhere in any
resource's properties (trust policies, key policies, bucket, topic and queue policies, and any other; also a
policy given as a JSON string) is walked, every Allow statement naming a service principal is a grant, and so is
every `AWS::Lambda::Permission` for a service (its `SourceArn`/`SourceAccount` properties are the conditions).
A grant needs both keys under a condition operator that binds them (`StringEquals`/`ArnLike`/...; not
`...IfExists`, a negation or `Null`, which a request without the key passes), `aws:SourceAccount` naming this
stack's account and `aws:SourceArn` naming a resource of this stack or of this account. Where a service does not
send the keys, EXCEPTIONS says which keys that place needs instead (maybe none), why, and where AWS documents it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.infra.test_checkov import security_doc
from tests.infra.test_nag import STACKS, stack_named

SOURCE_ACCOUNT = "aws:sourceaccount"  # condition keys are case-insensitive: kept lower-cased here
SOURCE_ARN = "aws:sourcearn"
LOGS_ARN = "kms:encryptioncontext:aws:logs:arn"
BOTH = frozenset({SOURCE_ACCOUNT, SOURCE_ARN})
ARN_KEYS = frozenset({SOURCE_ARN, LOGS_ARN})
# Operators that a request without the key fails: only these bind a grant to its source.
BINDING_OPERATORS = frozenset({"stringequals", "stringequalsignorecase", "stringlike", "arnequals", "arnlike"})
THIS_ACCOUNT = "<account>"
# Pseudo parameters without their colons, so that an ARN splits into its fields.
PSEUDO = {"${AWS::AccountId}": THIS_ACCOUNT, "${AWS::Region}": "<region>", "${AWS::Partition}": "<partition>"}


@dataclass(frozen=True)
class Allowance:
    """A place where a service principal needs other keys than both source keys."""

    required: frozenset[str]
    reason: str
    source: str  # the AWS documentation it rests on
    sid: str | None = None  # when set, the exception holds for this statement only


# Also permissions-source-function-arn.html, on lambda:SourceFunctionArn.
LAMBDA_EXECUTION_ROLE = "https://docs.aws.amazon.com/lambda/latest/dg/lambda-intro-execution-role.html"
EXCEPTIONS: dict[tuple[str, str], Allowance] = {
    ("lambda.amazonaws.com", "AWS::IAM::Role AssumeRolePolicyDocument"): Allowance(
        frozenset(),
        "Lambda assumes a function's execution role for the function that names it; naming a role needs "
        "iam:PassRole in this account, which is what binds the role to this stack's functions. Lambda documents the "
        "execution role's trust policy without conditions and documents aws:SourceArn only for policies whose "
        "resource is the function (invocation), not for the role it assumes; the key that identifies the function "
        "on the role's credentials is lambda:SourceFunctionArn, usable only in identity policies and SCPs. A "
        "positive condition on a key the service does not send never matches, so it would stop every function.",
        LAMBDA_EXECUTION_ROLE,
    ),
    ("backup.amazonaws.com", "AWS::IAM::Role AssumeRolePolicyDocument"): Allowance(
        frozenset(),
        "AWS Backup documents source conditions for the resource policies it is granted (aws:SourceArn naming a "
        "backup vault, in the policy of an SNS topic it publishes to), not for the service role it assumes, whose "
        "documented trust policy has no condition. It assumes the role for backup and restore jobs and, long "
        "after, to manage the recovery points' lifecycle, so no one source ARN covers its uses. What binds the "
        "role is iam:PassRole in this account: a backup selection, or any StartBackupJob (which takes a role "
        "ARN) by a principal allowed to pass it, can name it; so the role itself is bounded: an inline Deny lets "
        "it use no KMS key but the archive key, and the archive bucket's policy lets it read records, no more.",
        "https://docs.aws.amazon.com/aws-backup/latest/devguide/cross-service-confused-deputy-prevention.html",
    ),
    ("events.amazonaws.com", "AWS::SQS::QueuePolicy PolicyDocument"): Allowance(
        frozenset({SOURCE_ARN}),
        "EventBridge documents aws:SourceArn (the rule's ARN) as the condition of the queue policy statement that "
        "lets a rule send to an SQS queue, and no aws:SourceAccount. The rule's ARN names the rule's account and "
        "Region, and the value is this stack's own rule (a GetAtt), so no other account's or stack's rule matches.",
        "https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-resource-based.html#eb-sqs-permissions",
    ),
    ("events.amazonaws.com", "AWS::KMS::Key KeyPolicy"): Allowance(
        frozenset(),
        "EventBridge delivers to the encrypted export queue as its service principal, and the KMS request made "
        "for that delivery does not carry aws:SourceArn or aws:SourceAccount (infra/events.py): a condition on "
        "them would drop every event. The statement allows only data-key use for SQS; what may send to the queue "
        "is bounded by the queue policy (this stack's rule only), and the key use cannot read S3 or DynamoDB data.",
        "https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-resource-based.html#eb-sqs-permissions",
        sid="EventBridgeDeliversExportEventsToTheQueue",
    ),
    ("logs.${AWS::Region}.amazonaws.com", "AWS::KMS::Key KeyPolicy"): Allowance(
        frozenset({LOGS_ARN}),
        "CloudWatch Logs' documented condition for a key that encrypts a log group is the encryption context "
        "kms:EncryptionContext:aws:logs:arn, the log group's ARN: it names this account, this Region and the one "
        "group, which binds the grant more tightly than aws:SourceAccount with aws:SourceArn would.",
        "https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/encrypt-log-data-kms.html",
    ),
}


@dataclass(frozen=True)
class Grant:
    """A service principal allowed something somewhere in a template."""

    service: str  # rendered: pseudo parameters as ${AWS::Region}
    place: str  # "<resource type> <property path>", e.g. "AWS::S3::BucketPolicy PolicyDocument"
    resource: str  # logical ID
    sid: str | None
    conditions: tuple[tuple[str, str, Any], ...]  # (operator, key, value), as written (keys lower-cased)


def render(value: Any) -> str:
    """A template value as text: `Ref` -> ${Name}, `Fn::GetAtt` -> ${Name.Attribute}, `Fn::Join`/`Fn::Sub`
    as written; anything else -> ${?} (so an unknown form never passes an ARN check)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and len(value) == 1:
        ((name, argument),) = value.items()
        if name == "Ref" and isinstance(argument, str):
            return f"${{{argument}}}"
        if name == "Fn::GetAtt" and isinstance(argument, list):
            return f"${{{'.'.join(map(str, argument))}}}"
        if name == "Fn::Join" and isinstance(argument, list) and len(argument) == 2:
            return str(argument[0]).join(render(part) for part in argument[1])
        if name == "Fn::Sub" and isinstance(argument, str):
            return argument
    return "${?}"


def _values(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _policy_documents(value: Any, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], dict[str, Any]]]:
    """Every policy document under `value`, with its property path (list indices left out)."""
    if isinstance(value, str) and '"Statement"' in value:
        try:
            value = json.loads(value)
        except ValueError:
            return
    if isinstance(value, dict):
        if "Statement" in value:
            yield path, value
        for key, item in value.items():
            yield from _policy_documents(item, (*path, key))
    elif isinstance(value, list):
        for item in value:
            yield from _policy_documents(item, path)


def grants(template: dict[str, Any]) -> list[Grant]:
    """Every grant to a service principal in the template."""
    found = []
    for logical, resource in template.get("Resources", {}).items():
        kind = resource.get("Type", "?")
        properties = resource.get("Properties", {})
        if kind == "AWS::Lambda::Permission":
            principal = render(properties.get("Principal"))
            if principal.endswith(".amazonaws.com") or "amazonaws.com" in principal:
                conditions = tuple(
                    ("ArnLike" if key == SOURCE_ARN else "StringEquals", key, properties[field])
                    for key, field in ((SOURCE_ARN, "SourceArn"), (SOURCE_ACCOUNT, "SourceAccount"))
                    if field in properties
                )
                found.append(Grant(principal, kind, logical, None, conditions))
            continue
        for path, document in _policy_documents(properties, ()):
            for statement in _values(document["Statement"]):
                if not isinstance(statement, dict) or statement.get("Effect") != "Allow":
                    continue
                principals = statement.get("Principal")
                if not isinstance(principals, dict) or "Service" not in principals:
                    continue
                conditions = tuple(
                    (operator, key.lower(), expected)
                    for operator, keys in (statement.get("Condition") or {}).items()
                    for key, expected in keys.items()
                )
                for service in _values(principals["Service"]):
                    found.append(
                        Grant(render(service), f"{kind} {'.'.join(path)}", logical, statement.get("Sid"), conditions)
                    )
    return found


def _names_this_account_or_stack(value: Any, resources: dict[str, Any]) -> bool:
    """An ARN value that only this account's (or this stack's) resources match."""
    if isinstance(value, dict) and set(value) == {"Fn::GetAtt"}:
        return bool(value["Fn::GetAtt"][0] in resources)
    if isinstance(value, dict) and set(value) == {"Ref"}:
        return bool(value["Ref"] in resources)
    text = render(value)
    for pseudo, token in PSEUDO.items():
        text = text.replace(pseudo, token)
    parts = text.split(":", 5)
    return len(parts) == 6 and parts[0] == "arn" and parts[4] == THIS_ACCOUNT and parts[5] not in ("", "*")


def _bound(grant: Grant, key: str, resources: dict[str, Any]) -> str | None:
    """None if `key` binds the grant to this account's resources, else what is wrong."""
    binding = [
        value for operator, name, value in grant.conditions if name == key and operator.lower() in BINDING_OPERATORS
    ]
    if not binding:
        loose = [operator for operator, name, _ in grant.conditions if name == key]
        return f"{key} missing" + (
            f" (only under {', '.join(loose)}, which a request without it passes)" if loose else ""
        )
    values = [item for value in binding for item in _values(value)]
    if key == SOURCE_ACCOUNT:
        wrong = [value for value in values if value != {"Ref": "AWS::AccountId"}]
    else:
        wrong = [value for value in values if not _names_this_account_or_stack(value, resources)]
    return f"{key} allows {wrong!r}, not only this account's own resources" if wrong else None


def violations(template: dict[str, Any]) -> list[str]:
    """What is wrong with each grant, one line per missing or loose key."""
    resources = template.get("Resources", {})
    found = []
    for grant in grants(template):
        allowance = EXCEPTIONS.get((grant.service, grant.place))
        if allowance is not None and allowance.sid not in (None, grant.sid):
            allowance = None
        required = BOTH if allowance is None else allowance.required
        for key in sorted(required):
            problem = _bound(grant, key, resources)
            if problem:
                found.append(f"{grant.resource} ({grant.place}, Sid {grant.sid}): {grant.service}: {problem}")
    return found


@pytest.mark.parametrize("name", STACKS)
def test_every_service_principal_is_bound_to_this_accounts_resources(name: str, request: pytest.FixtureRequest) -> None:
    assert violations(stack_named(name, request).json) == []


# What the walk must find (so that a walk that finds nothing cannot pass): the service principals each stack has.
EXPECTED = {
    "default": {
        ("lambda.amazonaws.com", "AWS::IAM::Role AssumeRolePolicyDocument"),
        ("scheduler.amazonaws.com", "AWS::IAM::Role AssumeRolePolicyDocument"),
        ("logging.s3.amazonaws.com", "AWS::S3::BucketPolicy PolicyDocument"),
        ("cloudwatch.amazonaws.com", "AWS::SNS::TopicPolicy PolicyDocument"),
        ("cloudwatch.amazonaws.com", "AWS::KMS::Key KeyPolicy"),
        ("logs.${AWS::Region}.amazonaws.com", "AWS::KMS::Key KeyPolicy"),
    },
    "events_variant": {("events.amazonaws.com", "AWS::SQS::QueuePolicy PolicyDocument")},
    "all_options": {
        ("events.amazonaws.com", "AWS::SQS::QueuePolicy PolicyDocument"),
        ("events.amazonaws.com", "AWS::KMS::Key KeyPolicy"),
    },
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_the_walk_finds_every_kind_of_grant(name: str, request: pytest.FixtureRequest) -> None:
    found = {(grant.service, grant.place) for grant in grants(stack_named(name, request).json)}
    assert EXPECTED[name] <= found


def test_every_exception_is_used_and_says_why(request: pytest.FixtureRequest) -> None:
    """A stale exception would let a future grant through unreviewed."""
    used = {(grant.service, grant.place) for name in STACKS for grant in grants(stack_named(name, request).json)}
    assert set(EXCEPTIONS) <= used
    for place, allowance in EXCEPTIONS.items():
        assert len(allowance.reason.split()) >= 25, place
        assert allowance.source.startswith("https://docs.aws.amazon.com/"), place
        assert allowance.required < BOTH or allowance.required == {LOGS_ARN}, place


def exceptions_table() -> str:
    """EXCEPTIONS as the Markdown table docs/SECURITY.md shows."""
    rows = ["| Service principal | Where | Keys required instead | Why | AWS documentation |", "|---|---|---|---|---|"]
    for (service, place), allowance in sorted(EXCEPTIONS.items()):
        keys = ", ".join(f"`{key}`" for key in sorted(allowance.required)) or "none"
        where = f"`{place}`" + (f", statement `{allowance.sid}`" if allowance.sid else "")
        rows.append(f"| `{service}` | {where} | {keys} | {allowance.reason} | <{allowance.source}> |")
    return "\n".join(rows)


def test_security_doc_shows_the_exceptions() -> None:
    assert exceptions_table() in security_doc("<!-- source-condition-exceptions -->")


# The checker against grants it must refuse, and the shapes it must accept.
ROLE_DOC = "AWS::IAM::Role AssumeRolePolicyDocument"
RULE_ARN = {"Fn::GetAtt": ["Rule", "Arn"]}
ACCOUNT = {"Ref": "AWS::AccountId"}
BOUND = {"StringEquals": {"aws:SourceAccount": ACCOUNT}, "ArnLike": {"aws:SourceArn": RULE_ARN}}


def _role(service: Any, condition: Any, effect: str = "Allow") -> dict[str, Any]:
    statement = {"Effect": effect, "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
    if condition is not None:
        statement["Condition"] = condition
    return {
        "Resources": {
            "Rule": {"Type": "AWS::Events::Rule", "Properties": {}},
            "Role": {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": {"Statement": [statement]}}},
        }
    }


def _permission(**properties: Any) -> dict[str, Any]:
    resources = _role("scheduler.amazonaws.com", BOUND)["Resources"]
    return {"Resources": {**resources, "Permission": {"Type": "AWS::Lambda::Permission", "Properties": properties}}}


REFUSED = {
    "no condition": _role("scheduler.amazonaws.com", None),
    "only the account": _role("scheduler.amazonaws.com", {"StringEquals": {"aws:SourceAccount": ACCOUNT}}),
    "only the ARN": _role("scheduler.amazonaws.com", {"ArnLike": {"aws:SourceArn": RULE_ARN}}),
    "IfExists passes without the key": _role(
        "scheduler.amazonaws.com",
        {"StringEqualsIfExists": {"aws:SourceAccount": ACCOUNT}, "ArnLikeIfExists": {"aws:SourceArn": RULE_ARN}},
    ),
    "another account": _role(
        "scheduler.amazonaws.com", {**BOUND, "StringEquals": {"aws:SourceAccount": "444455556666"}}
    ),
    "any ARN": _role("scheduler.amazonaws.com", {**BOUND, "ArnLike": {"aws:SourceArn": "*"}}),
    "any account's ARN": _role(
        "scheduler.amazonaws.com", {**BOUND, "ArnLike": {"aws:SourceArn": "arn:aws:scheduler:*:*:schedule-group/x"}}
    ),
    "a second service in the list": _role(["lambda.amazonaws.com", "states.amazonaws.com"], None),
    "a queue policy as a JSON string": {
        "Resources": {
            "Policy": {
                "Type": "AWS::SQS::QueuePolicy",
                "Properties": {
                    "PolicyDocument": json.dumps(
                        {"Statement": [{"Effect": "Allow", "Principal": {"Service": "sns.amazonaws.com"}}]}
                    )
                },
            }
        }
    },
    "a Lambda permission without SourceAccount": _permission(
        Principal="s3.amazonaws.com", Action="lambda:InvokeFunction", SourceArn=RULE_ARN
    ),
    "an exception's service in another statement": {
        "Resources": {
            "Key": {
                "Type": "AWS::KMS::Key",
                "Properties": {
                    "KeyPolicy": {
                        "Statement": [
                            {"Sid": "Other", "Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"}}
                        ]
                    }
                },
            }
        }
    },
    "a Lambda permission without SourceArn": _permission(Principal="sns.amazonaws.com", SourceAccount=ACCOUNT),
}
ACCEPTED = {
    "both keys": _role("scheduler.amazonaws.com", BOUND),
    "an ARN built for this account": _role(
        "scheduler.amazonaws.com",
        {
            **BOUND,
            "ArnEquals": {
                "aws:SourceArn": {
                    "Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":scheduler:us-east-2:", ACCOUNT, ":x/y"]]
                }
            },
        },
    ),
    "keys in any case": _role(
        "scheduler.amazonaws.com",
        {"StringEquals": {"AWS:SourceAccount": ACCOUNT}, "ArnLike": {"AWS:SOURCEARN": RULE_ARN}},
    ),
    "a deny needs nothing": _role("scheduler.amazonaws.com", None, effect="Deny"),
    "the Lambda execution role (an exception)": _role("lambda.amazonaws.com", None),
    "a Lambda permission with both": _permission(
        Principal="s3.amazonaws.com", SourceArn=RULE_ARN, SourceAccount=ACCOUNT
    ),
    "a Lambda permission for an account": _permission(Principal={"Ref": "AWS::AccountId"}),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_the_check_refuses(case: str) -> None:
    assert violations(REFUSED[case]) != []


@pytest.mark.parametrize("case", sorted(ACCEPTED))
def test_the_check_accepts(case: str) -> None:
    assert violations(ACCEPTED[case]) == []


def test_rendering() -> None:
    joined = {"Fn::Join": ["", ["logs.", {"Ref": "AWS::Region"}, ".amazonaws.com"]]}
    assert render(joined) == "logs.${AWS::Region}.amazonaws.com"
    assert render(RULE_ARN) == "${Rule.Arn}"
    assert render({"Fn::If": ["C", "a", "b"]}) == "${?}"
    assert grants(_role("scheduler.amazonaws.com", BOUND))[0].place == ROLE_DOC
