"""A listing longer than one invocation's budget completes across follow-up invocations, over HTTP: the
reconciler invokes its own function through the Lambda Invoke API (the local Lambda service, reached by
AWS_ENDPOINT_URL_LAMBDA), which runs the follow-ups one at a time, as reserved concurrency 1 does."""

from __future__ import annotations

import json

import boto3
import pytest

from archiver.handler import handler
from local.lambda_service.models import SUCCEEDED
from local.stack.resources import archived_item

from .conftest import REGION, Archive, cold_start

FUNCTION = "gameliftstreams-session-archiver"


def test_a_listing_longer_than_one_budget_completes_across_follow_ups(
    archive: Archive, monkeypatch: pytest.MonkeyPatch
) -> None:
    emulator = archive.emulator
    details = emulator.seed_sessions(1_200, succeeded_fraction=1.0)
    arns = [d["Arn"] for d in details]
    ddb = archive.stack.client("dynamodb", direct=True)
    for start in range(0, 1_150, 25):  # 1,150 archived already; 50 new
        batch = [{"PutRequest": {"Item": archived_item(arn)}} for arn in arns[start : start + 25]]
        ddb.batch_write_item(RequestItems={archive.table: batch})
    new = set(arns[1_150:])
    emulator.faults.base_latency["ListStreamSessionsByAccount"] = 0.25
    monkeypatch.setenv("MAX_CONTINUATIONS", "10")
    monkeypatch.setenv("TIME_BUDGET_MARGIN_SECONDS", "0.5")
    cold_start()
    service = archive.stack.lambda_service
    service.add_function(FUNCTION, handler=handler, timeout_seconds=2.0)  # ~6 pages of 12 per invocation

    client = boto3.client("lambda", region_name=REGION)
    client.invoke(FunctionName=FUNCTION, InvocationType="Event", Payload=json.dumps({}).encode())
    assert service.wait_idle(timeout=60)

    runs = service.invocations(FUNCTION)
    assert len(runs) >= 2 and all(run.status == SUCCEEDED for run in runs)
    summaries = [run.result for run in runs]
    assert [s["continuation"]["link"] if "continuation" in s else 0 for s in summaries] == list(range(len(runs)))
    assert summaries[-1]["continuation"]["follow_up"] is None  # the last one reached the end
    assert archive.archived_arns() == new  # everything new archived, nothing else written
    assert sum(s["total"]["archived"] for s in summaries) == len(new)
    assert all(s["total"]["listed"] > 0 for s in summaries)  # every link made progress
    assert sum(s["total"]["listed"] for s in summaries) >= 1_200
    asked = [run.payload for run in runs[1:]]
    assert all(set(payload["continuation"]["regions"]) == {REGION} for payload in asked)
