"""What an update of a run may change: its own labels and annotations, nothing Cyclone
records on it and nothing of its spec."""

from __future__ import annotations

from cyclone.api import keys
from cyclone.engine.core.runupdate import cyclone_owned, run_update

STARTED_BY = "token t1 of tenant acme via the CLI"
RUN = {
    "metadata": {
        "name": "r1",
        "labels": {keys.LABEL_PROJECT: "p", keys.LABEL_WORKFLOW: "w", "team": "old"},
        "annotations": {keys.ANNOTATION_STARTED_BY: STARTED_BY, "note": "x",
                        keys.ANNOTATION_STAGE_SPECS: "{}"},
    },
    "spec": {"workflowRef": {"name": "w"}, "timeout": "1h"},
}


def test_the_bodys_labels_and_annotations_replace_the_users_and_cyclones_are_kept():
    metadata, refusal = run_update(RUN, {"team": "web"}, {keys.ANNOTATION_ALIAS: "Nightly"},
                                   None)
    assert refusal is None
    assert metadata == {
        "labels": {"team": "web", keys.LABEL_PROJECT: "p", keys.LABEL_WORKFLOW: "w"},
        "annotations": {keys.ANNOTATION_ALIAS: "Nightly",
                        keys.ANNOTATION_STARTED_BY: STARTED_BY,
                        keys.ANNOTATION_STAGE_SPECS: "{}"}}


def test_the_same_spec_and_cyclones_own_values_sent_back_are_accepted():
    _, refusal = run_update(RUN, dict(RUN["metadata"]["labels"]),
                            dict(RUN["metadata"]["annotations"]), dict(RUN["spec"]))
    assert refusal is None


def test_a_spec_change_is_refused_as_a_conflict_naming_the_field():
    _, refusal = run_update(RUN, {}, {}, {**RUN["spec"], "timeout": "5m"})
    assert refusal is not None and refusal.conflict
    assert refusal.causes == [{"field": "spec.timeout",
                               "message": "a started run's spec cannot change"}]
    assert "spec.timeout" in refusal.message


def test_changing_a_record_of_cyclone_or_the_runs_project_is_refused():
    for labels, notes, field in (
        ({}, {keys.ANNOTATION_STARTED_BY: "the admin via the web UI"},
         f"metadata.annotations[{keys.ANNOTATION_STARTED_BY}]"),
        ({}, {"result.delegation.cyclone.dev/s": "{}"},
         "metadata.annotations[result.delegation.cyclone.dev/s]"),
        ({keys.LABEL_PROJECT: "other"}, {}, f"metadata.labels[{keys.LABEL_PROJECT}]"),
    ):
        _, refusal = run_update(RUN, labels, notes, None)
        assert refusal is not None and refusal.conflict
        assert refusal.causes[0]["field"] == field


def test_cyclones_domain_is_its_own_but_alias_and_description_are_the_users():
    assert cyclone_owned(keys.ANNOTATION_STARTED_BY)
    assert cyclone_owned("cyclone.dev/anything")
    assert not cyclone_owned(keys.ANNOTATION_ALIAS)
    assert not cyclone_owned(keys.ANNOTATION_DESCRIPTION)
    assert not cyclone_owned("example.com/cyclone.dev")
    assert not cyclone_owned("notcyclone.dev/x")
    assert not cyclone_owned("team")
