"""Names every part of the harness shares: the Region and account of the worlds, the operations that can be
faulted, and the canary secrets that must never reach S3, DynamoDB or a log line."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Final

from local.stack import DUMMY_SECRET_ACCESS_KEY

REGION: Final = "us-east-2"
ACCOUNT: Final = "111122223333"
PREFIX: Final = "sessions/"
STATS_PREFIX: Final = "perf-stats/"  # the archiver's default, set explicitly in the worlds' environment
GLS_OPERATIONS: Final = ("ListStreamSessionsByAccount", "GetStreamSession")
STORE_OPERATIONS: Final = ("BatchGetItem", "PutObject", "PutItem")
OPERATIONS: Final = GLS_OPERATIONS + STORE_OPERATIONS

# Secrets that must never reach S3, DynamoDB or a log line. The emulator writes CANARY into every session's
# SignalRequest, SignalResponse, AdditionalEnvironmentVariables values and AdditionalLaunchArgs values (in
# every place a value can be: local.gls.factory.SessionFactory.secret_launch_args); ROLE_CANARY is in its
# RoleArn; the worker's own environment holds the other two (a Lambda's environment variable values).
CANARY: Final = "CANARYq7Zx"
ROLE_CANARY: Final = "GameLiftStreamsAppRole"
ENV_CANARY: Final = "CANARY-session-token-4b1e"
CANARIES: Final = (CANARY, ROLE_CANARY, ENV_CANARY, DUMMY_SECRET_ACCESS_KEY)

DEFAULT_LOG_DIR: Final = Path(".cache/reliability")

names = itertools.count(1)  # unique world names within this process
