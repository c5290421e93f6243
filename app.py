#!/usr/bin/env python3
"""CDK entry point: `cdk synth`/`cdk deploy` run this (see cdk.json); configuration is CDK context."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from infra.config import ConfigError, load_config
from infra.stack import ArchiverStack

_ROOT = Path(__file__).resolve().parent


def build_app(overrides: Mapping[str, object] | None = None, outdir: str | None = None) -> cdk.App:
    """The app with its one stack and cdk-nag's AwsSolutions pack; raises ConfigError on a bad context value.

    cdk.json's context (defaults and feature flags) is the base, so `python3 app.py` builds what `cdk synth`
    builds; the CLI's context (cdk.json again, plus -c values) overrides it, and `overrides` (tests) override both.
    """
    defaults = json.loads((_ROOT / "cdk.json").read_text())["context"]
    app = cdk.App(context=defaults, post_cli_context=dict(overrides or {}), outdir=outdir)
    config = load_config(app.node.try_get_context)
    ArchiverStack(app, config.stack_name, config=config)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app


def main(overrides: Mapping[str, object] | None = None, outdir: str | None = None) -> None:
    """Synthesize; a bad context value exits with a message that names the key and the expected form."""
    try:
        app = build_app(overrides, outdir)
    except ConfigError as error:
        sys.exit(f"Invalid configuration: {error}")
    app.synth()


if __name__ == "__main__":
    main()
