"""Why and how a run whose ``spec.stopped`` is set ends: the rules the engine's stop path uses.

Whoever stops a run only states the intent (``spec.stopped``) and may say why in the
annotations ``workflowrun.cyclone.dev/stop-reason`` and ``stop-message`` (the pull-request
auto-cancel does). The engine ends the run with that reason, or ``ManuallyStop``, and
deletes its running pods gracefully unless ``workflowrun.cyclone.dev/stop-force`` asks for
the immediate kill.
"""

from __future__ import annotations

import re

from cyclone.api import keys

REASON_MANUALLY_STOP = "ManuallyStop"
MANUAL_STOP_MESSAGE = "stopped by a user"
MAX_MESSAGE_LENGTH = 1024
_REASON = re.compile(r"^[A-Z][A-Za-z0-9]{0,62}$")


def stop_cause(run: dict) -> tuple[str, str]:
    """(reason, message) a stopped run ends with.

    The annotations are as writable as the run itself, so a reason that is not a
    CamelCase word is ignored and a long message is cut, rather than copied into status.
    """
    annotations = (run.get("metadata") or {}).get("annotations") or {}
    reason = annotations.get(keys.ANNOTATION_STOP_REASON)
    if not isinstance(reason, str) or not _REASON.match(reason):
        return REASON_MANUALLY_STOP, MANUAL_STOP_MESSAGE
    message = annotations.get(keys.ANNOTATION_STOP_MESSAGE)
    if not isinstance(message, str) or not message.strip():
        message = f"stopped: {reason}"
    return reason, message[:MAX_MESSAGE_LENGTH]


def forced_stop(run: dict) -> bool:
    """Whether the run is stopped with the immediate kill asked for."""
    annotations = (run.get("metadata") or {}).get("annotations") or {}
    return bool((run.get("spec") or {}).get("stopped")) and (
        annotations.get(keys.ANNOTATION_STOP_FORCE) == "true")


def pod_deletion_grace(run: dict) -> int | None:
    """The grace period the engine deletes the pods of a run it ends with.

    A stop, like ``kubectl delete pod``, leaves each pod its own
    ``terminationGracePeriodSeconds`` (None: the cluster applies it), so a stage's
    ``trap … TERM`` runs; a forced stop, and every other end (a failure, a timeout),
    kills at once.
    """
    if (run.get("spec") or {}).get("stopped") and not forced_stop(run):
        return None
    return 0
