"""The WorkflowRun a trigger starts: its run spec inlined, parameters, labels, annotations."""

from __future__ import annotations

import copy

from cyclone.api import keys

LABEL_TRIGGER = "workflowtrigger.cyclone.dev/name"
"""On runs a trigger started: the trigger's name."""
LABEL_PULL_REQUEST = "workflowtrigger.cyclone.dev/pull-request"
"""On runs started by a pull request event: the pull request's number."""

TRIGGER_CRON = "cron-timer"

TRIGGER_ONLY_FIELDS = (
    "type",
    "parameters",
    "cron",
    "scm",
    "disabled",
    "concurrencyPolicy",
    "startingDeadlineSeconds",
)


def run_spec_of(trigger: dict) -> dict:
    """The WorkflowRunSpec inlined in a trigger's spec, without the trigger's own fields.

    The trigger's ``parameters`` become global variables of the run (overriding ones of
    the same name), the way Cyclone v1 passed them.
    """
    spec = copy.deepcopy(trigger.get("spec") or {})
    parameters = spec.get("parameters") or []
    for name in TRIGGER_ONLY_FIELDS:
        spec.pop(name, None)
    spec.pop("stopped", None)
    spec.pop("paused", None)
    if parameters:
        variables = {v["name"]: v for v in spec.get("globalVariables") or [] if v.get("name")}
        for parameter in parameters:
            if parameter.get("name"):
                variables[parameter["name"]] = {
                    "name": parameter["name"], "value": parameter.get("value")}
        spec["globalVariables"] = list(variables.values())
    return spec


def workflow_name_of(trigger: dict) -> str | None:
    return ((trigger.get("spec") or {}).get("workflowRef") or {}).get("name")


def trigger_run(
    trigger: dict,
    name: str,
    trigger_kind: str,
    *,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    spec: dict | None = None,
) -> dict:
    """The run ``name`` of ``trigger``, labelled with its project, workflow and trigger."""
    meta = trigger.get("metadata") or {}
    trigger_labels = meta.get("labels") or {}
    run_labels = {LABEL_TRIGGER: meta["name"]}
    project = trigger_labels.get(keys.LABEL_PROJECT)
    if project:
        run_labels[keys.LABEL_PROJECT] = project
    workflow = workflow_name_of(trigger)
    if workflow:
        run_labels[keys.LABEL_WORKFLOW] = workflow
    run_labels.update(labels or {})
    return {
        "apiVersion": keys.API_VERSION,
        "kind": "WorkflowRun",
        "metadata": {
            "name": name,
            "namespace": meta.get("namespace"),
            "labels": run_labels,
            "annotations": {keys.ANNOTATION_WORKFLOWRUN_TRIGGER: trigger_kind,
                            **(annotations or {})},
        },
        "spec": spec if spec is not None else run_spec_of(trigger),
    }
