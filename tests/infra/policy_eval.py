"""A small evaluator of the synthesized policies (key policies, bucket and table policies, role policies).

Templates are made concrete first: the pseudo parameters get fixed values, and `Fn::GetAtt <X>.Arn` / `Ref <X>`
become ARNs and names built from the logical ID (`arn:aws:iam::<account>:role/<logical id>` for a role, the
logical ID, lower-cased, as a bucket's name). A request is then judged the way IAM judges one policy: an
explicit Deny whose action, resource, principal and every condition match wins; otherwise an Allow that matches
allows. Condition operators the policies here use are implemented (negated ones hold when the key is absent, as
IAM's do); any other operator fails the test instead of being guessed.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from typing import Any

REGION, ACCOUNT, PARTITION = "us-east-2", "111122223333", "aws"
ROOT = f"arn:aws:iam::{ACCOUNT}:root"
PSEUDO = {"AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "AWS::Partition": PARTITION}
# Context keys every request here carries unless a test says otherwise (HTTPS, TLS 1.3).
SECURE = {"aws:SecureTransport": "true", "s3:TlsVersion": "1.3"}


def _sub(text: str) -> str:
    for name, filled in PSEUDO.items():
        text = text.replace(f"${{{name}}}", filled)
    return text


def arn_of(logical: str, kind: str | None) -> str:
    """The concrete ARN of a resource of the template by its type (a role when the type is not known)."""
    if kind == "AWS::S3::Bucket":
        return f"arn:aws:s3:::{logical.lower()}"
    if kind == "AWS::KMS::Key":
        return f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{logical}"
    if kind == "AWS::DynamoDB::Table":
        return f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{logical}"
    if kind == "AWS::Backup::BackupVault":
        return f"arn:aws:backup:{REGION}:{ACCOUNT}:backup-vault:{logical}"
    return f"arn:aws:iam::{ACCOUNT}:role/{logical}"


def concrete(value: Any, resources: Mapping[str, Any] | None = None) -> Any:
    """A template fragment with pseudo parameters filled in and references made concrete. `resources` (the
    template's) says what each logical ID is; without it, `Fn::GetAtt <X>.Arn` is `role/<X>`."""
    if isinstance(value, list):
        return [concrete(item, resources) for item in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1 and next(iter(value)) in ("Ref", "Fn::GetAtt", "Fn::Join", "Fn::Sub"):
        ((name, argument),) = value.items()
        return _intrinsic(name, argument, resources)
    return {key: concrete(item, resources) for key, item in value.items()}


def _intrinsic(name: str, argument: Any, resources: Mapping[str, Any] | None) -> Any:
    if name == "Ref":
        if argument in PSEUDO:
            return PSEUDO[argument]
        return argument.lower() if _kind(resources, argument) == "AWS::S3::Bucket" else argument
    if name == "Fn::GetAtt":
        assert argument[1] == "Arn", argument
        return arn_of(argument[0], _kind(resources, argument[0]))
    if name == "Fn::Join":
        return argument[0].join(str(concrete(part, resources)) for part in argument[1])
    assert isinstance(argument, str), argument
    return _sub(argument)


def _kind(resources: Mapping[str, Any] | None, logical: str) -> str | None:
    if resources is None or logical not in resources:
        return None
    kind: str = resources[logical]["Type"]
    return kind


def listed(value: Any) -> list[Any]:
    """A policy field that may be one value or a list, as a list."""
    return [value] if isinstance(value, str | int | float | bool) else list(value)


def principal_matches(statement: Mapping[str, Any], principal: str) -> bool:
    """Whether the statement's Principal covers `principal` (an ARN, or 'service:<name>'). The account root
    stands for any principal of the account whose IAM policies allow the request (modelled: all of them)."""
    named = statement.get("Principal")
    if named is None:  # an identity policy: the principal is its holder
        return True
    # "*" and {"AWS": "*"} are the same: every principal, services and anonymous callers included (IAM guide).
    if named == "*" or "*" in listed(named.get("AWS", [])):
        return True
    if principal.startswith("service:"):
        return principal.removeprefix("service:") in listed(named.get("Service", []))
    aws = listed(named.get("AWS", []))
    return principal in aws or (ROOT in aws and f":{ACCOUNT}:" in principal)


def condition_holds(operator: str, key: str, expected: Any, context: Mapping[str, str]) -> bool:
    """One condition key of one operator, as IAM evaluates it."""
    values = [str(value) for value in listed(expected)]
    if operator == "Null":
        return (key not in context) == (values[0].lower() == "true")
    if_exists = operator.endswith("IfExists")
    base = operator.removesuffix("IfExists")
    negated = "Not" in base
    if key not in context:
        return negated or if_exists
    actual = context[key]
    if base in ("StringEquals", "ArnEquals", "StringNotEquals", "ArnNotEquals"):
        found = actual in values
    elif base in ("StringLike", "ArnLike", "StringNotLike", "ArnNotLike"):
        found = any(fnmatch.fnmatchcase(actual, value) for value in values)
    elif base == "Bool":
        found = actual.lower() in [value.lower() for value in values]
    elif base == "NumericLessThan":
        return any(float(actual) < float(value) for value in values)
    else:
        raise AssertionError(f"the evaluator does not know {operator}")
    return not found if negated else found


def _action_matches(statement: Mapping[str, Any], action: str) -> bool:
    patterns = listed(statement.get("Action", []))
    if any(fnmatch.fnmatchcase(action.lower(), pattern.lower()) for pattern in patterns):
        return True
    return "NotAction" in statement and not any(
        fnmatch.fnmatchcase(action.lower(), pattern.lower()) for pattern in listed(statement["NotAction"])
    )


def _resource_matches(statement: Mapping[str, Any], resource: str | None) -> bool:
    """Resource (default "*") or NotResource (every resource but these); a request without a resource matches."""
    if resource is None:
        return True
    if "NotResource" in statement:
        return not any(fnmatch.fnmatchcase(resource, pattern) for pattern in listed(statement["NotResource"]))
    return any(fnmatch.fnmatchcase(resource, pattern) for pattern in listed(statement.get("Resource", "*")))


def matching(
    statements: list[dict[str, Any]],
    effect: str,
    principal: str,
    action: str,
    resource: str | None,
    request: Mapping[str, str],
) -> list[dict[str, Any]]:
    """The statements of that effect that apply to the request."""
    found = []
    for statement in statements:
        if statement["Effect"] != effect or not _action_matches(statement, action):
            continue
        if not _resource_matches(statement, resource) or not principal_matches(statement, principal):
            continue
        conditions = statement.get("Condition", {})
        if all(
            condition_holds(operator, key, expected, request)
            for operator, keys in conditions.items()
            for key, expected in keys.items()
        ):
            found.append(statement)
    return found


def request_context(principal: str, service: str | None, context: Mapping[str, str]) -> dict[str, str]:
    """The request context: the caller's ARN (aws:PrincipalArn, for a role or user) and the service it calls
    through (kms:ViaService), plus the given keys."""
    request = dict(context)
    if service is not None:
        request["kms:ViaService"] = f"{service}.{REGION}.amazonaws.com"
    if not principal.startswith("service:"):
        request["aws:PrincipalArn"] = principal
    return request


def denies(
    statements: list[dict[str, Any]],
    principal: str,
    action: str,
    resource: str | None = None,
    *,
    service: str | None = None,
    **context: str,
) -> bool:
    """Whether an explicit Deny of these statements applies to the request."""
    request = request_context(principal, service, context)
    return bool(matching(statements, "Deny", principal, action, resource, request))


def allows(
    statements: list[dict[str, Any]],
    principal: str,
    action: str,
    resource: str | None = None,
    *,
    service: str | None = None,
    **context: str,
) -> bool:
    """Whether these statements allow the request: a matching Allow and no matching Deny. `service` ('s3', ...
    or None: directly) is the service the request goes through."""
    request = request_context(principal, service, context)
    if matching(statements, "Deny", principal, action, resource, request):
        return False
    return bool(matching(statements, "Allow", principal, action, resource, request))
