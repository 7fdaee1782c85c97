"""Run-bound tokens: one key per purpose, one token per run uid, none after the run."""

from __future__ import annotations

from cyclone.engine.core.tokens import (
    Purpose,
    Refusal,
    artifact_upload_token,
    artifact_upload_url,
    check_run_token,
    delegation_token,
    is_upload_token,
    purpose_key,
    upload_token_tenant,
)

ENGINE_KEY = b"k" * 32
UPLOAD = purpose_key(ENGINE_KEY, Purpose.ARTIFACT_UPLOAD)
DELEGATION = purpose_key(ENGINE_KEY, Purpose.DELEGATION)


def run(uid: str = "uid-1", phase: str | None = "Running", **meta: object) -> dict:
    return {"metadata": {"name": "r1", "namespace": "cyclone-ta", "uid": uid,
                         "labels": {"project.cyclone.dev/name": "p"}, **meta},
            "spec": {"workflowRef": {"name": "w"}},
            "status": {"overall": {"phase": phase}} if phase else {}}


def test_each_purpose_has_its_own_key_derived_from_the_engine_key():
    assert UPLOAD != DELEGATION
    assert ENGINE_KEY not in (UPLOAD, DELEGATION)
    assert purpose_key(ENGINE_KEY, Purpose.ARTIFACT_UPLOAD) == UPLOAD
    assert purpose_key(b"other" * 8, Purpose.ARTIFACT_UPLOAD) != UPLOAD


def test_an_upload_token_signs_the_run_uid_and_names_its_tenant():
    token = artifact_upload_token(UPLOAD, "ta", "uid-1")
    assert token.startswith("cyu.ta.")
    assert is_upload_token(token)
    assert upload_token_tenant(token) == "ta"
    assert artifact_upload_token(UPLOAD, "ta", "uid-2") != token
    assert artifact_upload_token(DELEGATION, "ta", "uid-1") != token
    assert "uid-1" not in token


def test_a_token_not_shaped_like_an_upload_token_names_no_tenant():
    for token in ("cyu.", "cyu.ta", "cyu..abc", "cyt.ta.x.y", "bearer"):
        assert upload_token_tenant(token) is None
    assert not is_upload_token("cyt.ta.id.secret")
    assert not is_upload_token(None)


def test_a_delegation_token_signs_the_run_uid_and_the_stage():
    token = delegation_token(DELEGATION, "uid-1", "approve")
    assert token != delegation_token(DELEGATION, "uid-1", "deploy")
    assert token != delegation_token(DELEGATION, "uid-2", "approve")
    assert token != delegation_token(UPLOAD, "uid-1", "approve")


def test_the_token_of_the_run_is_accepted_while_it_runs():
    token = artifact_upload_token(UPLOAD, "ta", "uid-1")
    assert check_run_token(run(), token, token, project="p", workflow="w") is None
    assert check_run_token(run(phase=None), token, token) is None
    assert check_run_token(run(phase="Waiting"), token, token) is None


def test_a_token_is_refused_without_the_run_or_while_it_is_deleted():
    token = artifact_upload_token(UPLOAD, "ta", "uid-1")
    assert check_run_token(None, token, token) is Refusal.NO_RUN
    deleting = run(deletionTimestamp="2026-01-01T00:00:00Z")
    assert check_run_token(deleting, token, token) is Refusal.DELETING


def test_the_token_of_another_run_or_a_recreated_run_is_refused():
    old = artifact_upload_token(UPLOAD, "ta", "uid-1")
    recreated = run(uid="uid-2")
    expected = artifact_upload_token(UPLOAD, "ta", "uid-2")
    assert check_run_token(recreated, old, expected) is Refusal.WRONG_TOKEN
    assert check_run_token(run(uid=""), "", artifact_upload_token(UPLOAD, "ta", "")) is \
        Refusal.WRONG_TOKEN


def test_a_token_is_refused_on_a_path_of_another_project_or_workflow():
    token = artifact_upload_token(UPLOAD, "ta", "uid-1")
    assert check_run_token(run(), token, token, project="q", workflow="w") is \
        Refusal.WRONG_PLACE
    assert check_run_token(run(), token, token, project="p", workflow="x") is \
        Refusal.WRONG_PLACE
    unlabelled = run()
    unlabelled["metadata"]["labels"] = {}
    assert check_run_token(unlabelled, token, token, project="p", workflow="w",
                           workflow_project="p") is None
    assert check_run_token(unlabelled, token, token, project="p", workflow="w") is \
        Refusal.WRONG_PLACE


def test_a_token_expires_with_its_run():
    token = artifact_upload_token(UPLOAD, "ta", "uid-1")
    for phase in ("Succeeded", "Failed", "Cancelled"):
        assert check_run_token(run(phase=phase), token, token) is Refusal.FINISHED
    assert check_run_token(run(phase="Succeeded"), "wrong", token) is Refusal.WRONG_TOKEN


def test_the_upload_url_is_the_runs_artifacts_route():
    assert artifact_upload_url("http://s:7099/", "p", "w", "r 1") == \
        "http://s:7099/apis/v1alpha1/projects/p/workflows/w/workflowruns/r%201/artifacts"


def test_a_runs_workflow_label_stands_in_for_a_missing_workflow_ref():
    token = artifact_upload_token(UPLOAD, "ta", "uid-1")
    labelled = run()
    labelled["spec"] = {}
    labelled["metadata"]["labels"]["workflow.cyclone.dev/name"] = "w"
    assert check_run_token(labelled, token, token, project="p", workflow="w") is None
    assert check_run_token(labelled, token, token, project="p", workflow="x") is \
        Refusal.WRONG_PLACE
