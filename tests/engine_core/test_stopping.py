"""Why a stopped run ends: the stop annotations are as writable as the run, so only a
well-formed reason is taken and the message is bounded."""

from __future__ import annotations

from cyclone.api import keys
from cyclone.engine.core.stopping import MAX_MESSAGE_LENGTH, REASON_MANUALLY_STOP, stop_cause


def run_with(annotations: dict | None) -> dict:
    return {"metadata": {"name": "r", "annotations": annotations}}


def test_a_run_stopped_without_a_reason_is_stopped_manually():
    assert stop_cause(run_with(None)) == (REASON_MANUALLY_STOP, "stopped by a user")


def test_the_reason_and_message_of_the_annotations_are_taken():
    run = run_with({keys.ANNOTATION_STOP_REASON: "AutoCancelPreviousBuild",
                    keys.ANNOTATION_STOP_MESSAGE: "superseded by run b"})
    assert stop_cause(run) == ("AutoCancelPreviousBuild", "superseded by run b")


def test_a_reason_without_a_message_says_the_reason():
    run = run_with({keys.ANNOTATION_STOP_REASON: "Superseded"})
    assert stop_cause(run) == ("Superseded", "stopped: Superseded")


def test_a_reason_that_is_not_a_camel_case_word_is_ignored_with_its_message():
    for reason in ("lowercase", "Two Words", "Inject\nLine", "A" * 64, ""):
        run = run_with({keys.ANNOTATION_STOP_REASON: reason,
                        keys.ANNOTATION_STOP_MESSAGE: "forged"})
        assert stop_cause(run) == (REASON_MANUALLY_STOP, "stopped by a user"), reason


def test_a_long_message_is_cut():
    run = run_with({keys.ANNOTATION_STOP_REASON: "Superseded",
                    keys.ANNOTATION_STOP_MESSAGE: "x" * 10_000})
    reason, message = stop_cause(run)
    assert reason == "Superseded" and len(message) == MAX_MESSAGE_LENGTH
