"""Delegation results: what the server records of an outside system's answer, and what
the engine makes of it.

The server checks the callback (`refuse_report`) and only records the answer on the run,
as the annotation ``result.delegation.cyclone.dev/<stage>`` holding
``{phase, message, outputs, reportedAt, signature}``. The engine turns a recorded result
into the stage's status (`taken_result`). Annotations are as writable as the run itself,
and a tenant may edit its own runs: so the record is signed with the delegation key over
the run's uid, the stage and the canonical JSON of the result, and the engine takes only
a record whose signature verifies, for a stage still Waiting, reported before the stage's
deadline.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cyclone.api import keys
from cyclone.engine.core.phases import FAILED, SUCCEEDED, WAITING
from cyclone.engine.core.results import parse_results
from cyclone.engine.core.status import apply_stage_status, make_status
from cyclone.engine.core.timefmt import parse_rfc3339, rfc3339
from cyclone.engine.core.tokens import Refusal, check_run_token, delegation_token

RESULT_ANNOTATION_PREFIX = keys.ANNOTATION_DELEGATION_RESULT_PREFIX
"""Followed by the stage name: a DNS label, which is a valid annotation name."""
REASON_DELEGATION_SUCCEED = "DelegationSucceed"
REASON_DELEGATION_FAILURE = "DelegationFailure"
INVALID_TOKEN = "the delegation token is not valid for this stage"
"""The one answer to a callback whose run, stage or token does not match, whichever it is."""
_SIGNED_FIELDS = ("phase", "message", "outputs", "reportedAt")


class DelegationRejected(Exception):
    """A callback refused because of where the stage is: it or its run has ended, its
    deadline has passed, or a result is recorded for it already."""


class Answer(enum.Enum):
    FORBIDDEN = "forbidden"
    NOT_STARTED = "not-started"
    REJECTED = "rejected"


@dataclass(frozen=True)
class Refused:
    """Why a callback is refused, and what the caller is told."""

    answer: Answer
    message: str


@dataclass(frozen=True)
class Taken:
    """What a recorded result makes of a stage: its status and its outputs."""

    status: dict
    outputs: list[dict]


def result_annotation(stage: str) -> str:
    return RESULT_ANNOTATION_PREFIX + stage


def annotated_stage(annotation: str) -> str | None:
    """The stage a result annotation is for, None for any other annotation."""
    if not annotation.startswith(RESULT_ANNOTATION_PREFIX):
        return None
    return annotation[len(RESULT_ANNOTATION_PREFIX):] or None


def normalized_outputs(outputs: list | dict | str | None) -> list[dict]:
    """``[{key, value}]`` from a list of such items, a mapping, or ``key:value`` lines."""
    if not outputs:
        return []
    if isinstance(outputs, str):
        return parse_results(outputs)
    if isinstance(outputs, dict):
        return [{"key": str(k), "value": str(v)} for k, v in outputs.items()]
    return [{"key": str(o["key"]), "value": str(o.get("value", ""))} for o in outputs]


def reported_result(succeeded: bool, message: str, outputs: list | dict | str | None,
                    now: datetime) -> dict:
    """The result as recorded (unsigned) for an answer received at `now`."""
    return {"phase": SUCCEEDED if succeeded else FAILED, "message": message or "",
            "outputs": normalized_outputs(outputs), "reportedAt": rfc3339(now)}


def _canonical(result: Mapping[str, Any]) -> str:
    return json.dumps({field: result.get(field) for field in _SIGNED_FIELDS},
                      sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def result_signature(key: bytes, run_uid: str, stage: str, result: Mapping[str, Any]) -> str:
    """HMAC of a result for one stage of one run; `key` is the delegation purpose key.
    The ``result`` line keeps it from ever equalling a token (``{uid}/{stage}``)."""
    message = f"result\n{run_uid}\n{stage}\n{_canonical(result)}"
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()


def signed_record(key: bytes, run_uid: str, stage: str, result: Mapping[str, Any]) -> str:
    """The annotation value recording `result`."""
    signed = {field: result.get(field) for field in _SIGNED_FIELDS}
    signed["signature"] = result_signature(key, run_uid, stage, result)
    return json.dumps(signed, sort_keys=True, separators=(",", ":"))


def verified_result(key: bytes, run_uid: str, stage: str, text: Any) -> dict | None:
    """The result a record holds, None unless it is well formed and signed for this stage
    of this run."""
    if not isinstance(text, str):
        return None
    try:
        record = json.loads(text)
    except ValueError:
        return None
    if not isinstance(record, dict) or not _well_formed(record):
        return None
    signature = record.get("signature")
    if not isinstance(signature, str) or not hmac.compare_digest(
            signature.encode(), result_signature(key, run_uid, stage, record).encode()):
        return None
    return {field: record[field] for field in _SIGNED_FIELDS}


def _well_formed(record: dict) -> bool:
    outputs = record.get("outputs")
    if record.get("phase") not in (SUCCEEDED, FAILED) or not isinstance(
            record.get("message"), str) or not isinstance(outputs, list):
        return False
    if not all(isinstance(o, dict) and isinstance(o.get("key"), str)
               and isinstance(o.get("value"), str) for o in outputs):
        return False
    try:
        parse_rfc3339(record.get("reportedAt"))
    except (TypeError, ValueError, AttributeError):
        return False
    return True


def stage_status_for(old: Mapping[str, Any] | None, result: Mapping[str, Any]) -> dict:
    """The status a Waiting stage takes from a result: it changes when it was reported."""
    succeeded = result["phase"] == SUCCEEDED
    at = parse_rfc3339(result["reportedAt"])
    reason = REASON_DELEGATION_SUCCEED if succeeded else REASON_DELEGATION_FAILURE
    return apply_stage_status(old, make_status(result["phase"], at, reason,
                                               result.get("message")), at)


def _deadline(entry: Mapping[str, Any]) -> datetime | None:
    text = (entry.get("delegation") or {}).get("deadline")
    return parse_rfc3339(text) if text else None


def taken_result(entry: Mapping[str, Any], text: Any, key: bytes, run_uid: str,
                 stage: str) -> Taken | None:
    """What the record `text` does to the stage whose status entry is `entry`: nothing
    (None) unless the stage is Waiting, the record is signed for this stage of this run
    and it was reported before the stage's deadline."""
    old = entry.get("status") or {}
    if old.get("phase") != WAITING:
        return None
    result = verified_result(key, run_uid, stage, text)
    if result is None:
        return None
    deadline = _deadline(entry)
    if deadline is not None and parse_rfc3339(result["reportedAt"]) >= deadline:
        return None
    return Taken(stage_status_for(old, result), list(result["outputs"]))


def refuse_report(run: Mapping[str, Any] | None, stage: str, token: str, key: bytes,
                  now: datetime) -> Refused | None:
    """None when the callback reporting a result of `stage` of `run` (None: no such run
    where it was looked for) with `token` may be recorded at `now`, else why not.

    A wrong token, a missing run and another run under the same name all get one answer
    (`INVALID_TOKEN`), so that it reveals nothing; a report at or after the stage's
    deadline is refused even when the engine has not failed the stage yet; so is one for
    a stage whose earlier result is recorded but not taken by the engine yet.
    """
    uid = ((run or {}).get("metadata") or {}).get("uid", "")
    refusal = check_run_token(run, token or "", delegation_token(key, uid, stage))
    name = ((run or {}).get("metadata") or {}).get("name", "")
    if refusal is Refusal.FINISHED:
        return Refused(Answer.REJECTED, f"workflowrun {name} has finished")
    if run is None or refusal is not None:
        return Refused(Answer.FORBIDDEN, INVALID_TOKEN)
    stages = (run.get("status") or {}).get("stages") or {}
    if stage not in stages:
        return Refused(Answer.NOT_STARTED, f"stage {stage} of workflowrun {name} has not started")
    entry = stages[stage]
    phase = (entry.get("status") or {}).get("phase")
    if phase != WAITING:
        return Refused(Answer.REJECTED, f"stage {stage} of {name} is {phase}, not Waiting")
    deadline = _deadline(entry)
    if deadline is not None and deadline <= now:
        return Refused(Answer.REJECTED, f"stage {stage} of {name} timed out at "
                                        f"{rfc3339(deadline)}, before this report")
    annotations = (run.get("metadata") or {}).get("annotations") or {}
    if verified_result(key, uid, stage, annotations.get(result_annotation(stage))):
        return Refused(Answer.REJECTED, f"stage {stage} of {name} has a result reported "
                                        "already")
    return None
