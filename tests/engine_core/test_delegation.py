"""Delegation results: the server's checks of a callback, the signed record it keeps on the
run, and what the engine makes of a record."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from cyclone.engine.core.delegation import (
    INVALID_TOKEN,
    Answer,
    annotated_stage,
    normalized_outputs,
    refuse_report,
    reported_result,
    result_annotation,
    signed_record,
    stage_status_for,
    taken_result,
    verified_result,
)
from cyclone.engine.core.tokens import Purpose, delegation_token, purpose_key

KEY = purpose_key(b"k" * 32, Purpose.DELEGATION)
OTHER_KEY = purpose_key(b"o" * 32, Purpose.DELEGATION)
NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
DEADLINE = "2026-03-01T13:00:00Z"
WAITING = {"phase": "Waiting", "reason": "DelegationWaiting",
           "lastTransitionTime": "2026-03-01T11:00:00Z", "startTime": "2026-03-01T11:00:00Z"}


def entry(status: dict | None = None, deadline: str | None = DEADLINE) -> dict:
    found: dict = {"status": dict(status or WAITING)}
    if deadline:
        found["delegation"] = {"url": "http://x", "deadline": deadline, "sent": True}
    return found


def run(stage_entry: dict | None = None, *, phase: str = "Waiting",
        annotations: dict | None = None) -> dict:
    stages = {} if stage_entry is None else {"approve": stage_entry}
    return {"metadata": {"name": "r1", "namespace": "cyclone-ta", "uid": "uid-1",
                         "annotations": annotations or {}},
            "status": {"overall": {"phase": phase}, "stages": stages}}


def token(uid: str = "uid-1", stage: str = "approve") -> str:
    return delegation_token(KEY, uid, stage)


def record(succeeded: bool = True, at: datetime = NOW, uid: str = "uid-1",
           stage: str = "approve", key: bytes = KEY, **fields: object) -> str:
    result = {**reported_result(succeeded, "ok", {"approver": "alice"}, at), **fields}
    return signed_record(key, uid, stage, result)


@pytest.mark.parametrize(("outputs", "expected"), [
    (None, []),
    ("", []),
    ({"a": 1}, [{"key": "a", "value": "1"}]),
    ([{"key": "a"}, {"key": "b", "value": "x"}],
     [{"key": "a", "value": ""}, {"key": "b", "value": "x"}]),
    ("a:1\nb:two", [{"key": "a", "value": "1"}, {"key": "b", "value": "two"}]),
])
def test_outputs_are_taken_as_a_list_a_mapping_or_key_value_lines(outputs, expected):
    assert normalized_outputs(outputs) == expected


def test_the_annotation_is_named_for_its_stage_and_only_it_names_one():
    assert result_annotation("approve") == "result.delegation.cyclone.dev/approve"
    assert annotated_stage(result_annotation("approve")) == "approve"
    assert annotated_stage("result.delegation.cyclone.dev/") is None
    assert annotated_stage("workflowrun.cyclone.dev/stop-reason") is None


def test_a_signed_record_verifies_for_its_stage_of_its_run_only():
    text = record()
    assert verified_result(KEY, "uid-1", "approve", text) == {
        "phase": "Succeeded", "message": "ok", "reportedAt": "2026-03-01T12:00:00Z",
        "outputs": [{"key": "approver", "value": "alice"}]}
    assert verified_result(KEY, "uid-1", "hold", text) is None
    assert verified_result(KEY, "uid-2", "approve", text) is None
    assert verified_result(OTHER_KEY, "uid-1", "approve", text) is None


@pytest.mark.parametrize("change", [
    {"phase": "Failed"}, {"message": "changed"}, {"reportedAt": "2026-03-01T11:00:00Z"},
    {"outputs": [{"key": "approver", "value": "mallory"}]},
])
def test_a_record_changed_after_signing_does_not_verify(change):
    forged = {**json.loads(record()), **change}
    assert verified_result(KEY, "uid-1", "approve", json.dumps(forged)) is None


@pytest.mark.parametrize("text", [
    None, "", "not json", "[]", json.dumps({"phase": "Succeeded"}),
    record(signature=None).replace('"signature":', '"nosig":'),
])
def test_a_malformed_record_verifies_never(text):
    assert verified_result(KEY, "uid-1", "approve", text) is None


def test_the_stages_own_token_is_no_signature():
    forged = {**json.loads(record()), "signature": token()}
    assert verified_result(KEY, "uid-1", "approve", json.dumps(forged)) is None


def test_a_waiting_stage_takes_a_verified_result_as_of_when_it_was_reported():
    taken = taken_result(entry(), record(), KEY, "uid-1", "approve")
    assert taken is not None
    assert taken.status == {"phase": "Succeeded", "reason": "DelegationSucceed",
                            "message": "ok", "lastTransitionTime": "2026-03-01T12:00:00Z",
                            "startTime": "2026-03-01T11:00:00Z"}
    assert taken.outputs == [{"key": "approver", "value": "alice"}]
    failed = taken_result(entry(), record(False), KEY, "uid-1", "approve")
    assert failed is not None and failed.status["phase"] == "Failed"
    assert failed.status["reason"] == "DelegationFailure"


def test_the_status_the_server_answers_is_the_one_the_engine_takes():
    result = reported_result(True, "ok", {"approver": "alice"}, NOW)
    taken = taken_result(entry(), record(), KEY, "uid-1", "approve")
    assert taken is not None and stage_status_for(WAITING, result) == taken.status


@pytest.mark.parametrize("status", [
    {"phase": "Succeeded", "lastTransitionTime": "2026-03-01T11:30:00Z"},
    {"phase": "Failed", "reason": "Timeout", "lastTransitionTime": "2026-03-01T11:30:00Z"},
    {"phase": "Pending"},
])
def test_a_stage_that_is_not_waiting_takes_no_result(status):
    assert taken_result(entry(status), record(), KEY, "uid-1", "approve") is None


def test_a_result_reported_at_or_after_the_deadline_is_not_taken():
    deadline = datetime(2026, 3, 1, 13, 0, 0, tzinfo=UTC)
    assert taken_result(entry(), record(at=deadline), KEY, "uid-1", "approve") is None
    before = record(at=deadline - timedelta(seconds=1))
    assert taken_result(entry(), before, KEY, "uid-1", "approve") is not None
    assert taken_result(entry(deadline=None), record(at=deadline), KEY, "uid-1",
                        "approve") is not None


def test_a_record_for_another_stage_or_run_is_not_taken():
    assert taken_result(entry(), record(stage="hold"), KEY, "uid-1", "approve") is None
    assert taken_result(entry(), record(uid="uid-2"), KEY, "uid-1", "approve") is None


def test_a_report_for_a_waiting_stage_with_its_token_is_accepted():
    assert refuse_report(run(entry()), "approve", token(), KEY, NOW) is None


@pytest.mark.parametrize("case", ["no run", "wrong token", "other stage's token",
                                  "other run's token"])
def test_what_does_not_match_gets_one_answer(case):
    found, given = {
        "no run": (None, token()),
        "wrong token": (run(entry()), "0" * 64),
        "other stage's token": (run(entry()), token(stage="hold")),
        "other run's token": (run(entry()), token(uid="uid-2")),
    }[case]
    refused = refuse_report(found, "approve", given, KEY, NOW)
    assert refused is not None and (refused.answer, refused.message) == (
        Answer.FORBIDDEN, INVALID_TOKEN)


def test_a_stage_not_started_is_not_found():
    refused = refuse_report(run(None), "approve", token(), KEY, NOW)
    assert refused is not None and refused.answer is Answer.NOT_STARTED
    assert refused.message == "stage approve of workflowrun r1 has not started"


@pytest.mark.parametrize(("found", "message"), [
    (run(entry(), phase="Succeeded"), "workflowrun r1 has finished"),
    (run(entry({"phase": "Succeeded"})), "stage approve of r1 is Succeeded, not Waiting"),
    (run(entry(deadline="2026-03-01T12:00:00Z")),
     "stage approve of r1 timed out at 2026-03-01T12:00:00Z, before this report"),
    (run(entry(), annotations={result_annotation("approve"): record()}),
     "stage approve of r1 has a result reported already"),
])
def test_a_report_the_stage_cannot_take_anymore_is_rejected(found, message):
    refused = refuse_report(found, "approve", token(), KEY, NOW)
    assert refused is not None and (refused.answer, refused.message) == (
        Answer.REJECTED, message)


def test_a_recorded_result_that_does_not_verify_does_not_hold_off_the_real_one():
    forged = {result_annotation("approve"): record(key=OTHER_KEY)}
    assert refuse_report(run(entry(), annotations=forged), "approve", token(), KEY, NOW) is None
