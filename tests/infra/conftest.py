"""Build each app variant once per session: jsii start-up costs seconds, later stacks a fraction of one."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from infra.config import load_config
from infra.stack import ArchiverStack

ROOT = Path(__file__).resolve().parents[2]
CDK_JSON = json.loads((ROOT / "cdk.json").read_text())
SKIP_BUNDLING: dict[str, object] = {"aws:cdk:bundling-stacks": []}

# Every optional feature switched on, and every default changed where it shows in the template.
VARIANT: dict[str, object] = {
    "stack_name": "ArchiverVariant",
    "source_regions": "us-east-2,us-west-2",
    "kms_key_arn": "arn:aws:kms:us-east-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    "alarm_email": "ops@example.com",
    "data_removal_policy": "destroy",
    "schedule_minutes": "30",
    "record_prefix": "archive/sessions/",
    "log_retention_days": "365",
    "lambda_memory_mb": "1024",
    "lambda_timeout_seconds": "600",
    "log_level": "debug",
    "list_rate_per_second": "40",
    "get_rate_per_second": "12.5",
    "max_concurrency": "16",
}
# The event-driven path on: two buckets, one with two prefixes, one whole.
EXPORT_LOCATIONS = "s3://my-exports/gamelift/,s3://my-exports/more/,s3://other-exports/"
EVENTS: dict[str, object] = {"stack_name": "ArchiverEvents", "export_locations": EXPORT_LOCATIONS}
# ... and with the variant's options (KMS, Regions, destroy, ...).
EVENTS_VARIANT: dict[str, object] = {
    **VARIANT,
    "stack_name": "ArchiverEventsVariant",
    "export_locations": EXPORT_LOCATIONS,
}

# The security options on (issue 10): named readers and break-glass roles, Object Lock, the event path.
READERS = ("arn:aws:iam::111122223333:role/Analyst", "arn:aws:iam::111122223333:role/team/Analyst2")
ADMINS = ("arn:aws:iam::111122223333:role/BreakGlass",)
SECURED: dict[str, object] = {
    "stack_name": "ArchiverSecured",
    "export_locations": EXPORT_LOCATIONS,
    "reader_role_arns": ",".join(READERS),
    "admin_role_arns": ",".join(ADMINS),
    "object_lock_days": "30",
}


@dataclass
class Built:
    """A synthesized stack and its template."""

    app: cdk.App
    stack: ArchiverStack
    template: Template

    @property
    def json(self) -> dict[str, Any]:
        """The template as a dict."""
        return dict(self.template.to_json())


def build(overrides: dict[str, object] | None = None, *, outdir: str | None = None) -> Built:
    """The app as `cdk synth` builds it from cdk.json (plus overrides), bundling skipped."""
    context = {**CDK_JSON["context"], **SKIP_BUNDLING, **(overrides or {})}
    app = cdk.App(context=context, outdir=outdir)
    config = load_config(app.node.try_get_context)
    stack = ArchiverStack(app, config.stack_name, config=config)
    return Built(app, stack, Template.from_stack(stack))


@pytest.fixture(scope="session")
def default() -> Built:
    """The stack with cdk.json's defaults."""
    return build()


@pytest.fixture(scope="session")
def variant() -> Built:
    """The stack with every option set (KMS, Regions, e-mail, destroy, ...)."""
    return build(VARIANT)


@pytest.fixture(scope="session")
def events() -> Built:
    """The stack with export_locations set (the event-driven path) and every other key at its default."""
    return build(EVENTS)


@pytest.fixture(scope="session")
def events_variant() -> Built:
    """The event-driven path with every option set (KMS-encrypted queues, Regions, ...)."""
    return build(EVENTS_VARIANT)


@pytest.fixture(scope="session")
def secured() -> Built:
    """The stack's own key with readers, break-glass roles, Object Lock and the event path."""
    return build(SECURED)


@pytest.fixture(scope="session")
def template(default: Built) -> Template:
    """The default stack's template."""
    return default.template
