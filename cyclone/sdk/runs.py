"""What starts runs: a run request, and the triggers (Cron, SCM, Webhook) that start runs
on their own. Both carry the same WorkflowRunSpec fields."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from cyclone.api import keys
from cyclone.cli.runs import new_run_name
from cyclone.sdk.manifest import API_VERSION, Value, compact, object_meta, validated
from cyclone.sdk.manifest import parameters as parameter_list
from cyclone.sdk.stage import Collector, Stage, current_workflow

StageParameters = Mapping["Stage | str", Mapping[str, Value]]
"""Per-stage argument values of a run: ``{stage: {argument: value}}``."""


def _name(item: Stage | Collector | str) -> str:
    return item if isinstance(item, str) else item.name


def run_spec(workflow: Collector | str | None, *, parameters: StageParameters | None = None,
             variables: Mapping[str, Value] | None = None,
             start_stages: Sequence[Stage | str] = (), end_stages: Sequence[Stage | str] = (),
             timeout: str | None = None) -> dict[str, Any]:
    """The WorkflowRunSpec fields of a run of `workflow`."""
    spec: dict[str, Any] = {}
    if workflow is not None:
        spec["workflowRef"] = {"apiVersion": API_VERSION, "kind": "Workflow",
                               "name": _name(workflow)}
    if timeout:
        spec["timeout"] = timeout
    if variables:
        spec["globalVariables"] = parameter_list(variables)
    if parameters:
        spec["stages"] = [{"name": _name(stage), "parameters": parameter_list(values)}
                          for stage, values in parameters.items()]
    if start_stages:
        spec["startStages"] = [_name(s) for s in start_stages]
    if end_stages:
        spec["endStages"] = [_name(s) for s in end_stages]
    return spec


class RunRequest:
    """A WorkflowRun to create: the workflow, per-stage argument values (`parameters`),
    global variables, where to start and end, and the run's timeout (``30m``, ``1h``)."""

    def __init__(self, workflow: Collector | str, *, name: str | None = None,
                 parameters: StageParameters | None = None,
                 variables: Mapping[str, Value] | None = None,
                 start_stages: Sequence[Stage | str] = (),
                 end_stages: Sequence[Stage | str] = (), timeout: str | None = None,
                 project: str | None = None) -> None:
        self.workflow = _name(workflow)
        self.project = project or getattr(workflow, "project", None)
        self.name = name or new_run_name(self.workflow)
        self.spec = run_spec(workflow, parameters=parameters, variables=variables,
                             start_stages=start_stages, end_stages=end_stages, timeout=timeout)

    def manifests(self) -> list[dict[str, Any]]:
        return [self.to_dict()]

    def to_dict(self, project: str | None = None) -> dict[str, Any]:
        """The WorkflowRun manifest (`ManifestError` when the server would refuse it)."""
        meta = object_meta(self.name, project=project or self.project,
                           labels={keys.LABEL_WORKFLOW: self.workflow})
        return validated({"apiVersion": API_VERSION, "kind": "WorkflowRun", "metadata": meta,
                          "spec": self.spec})


class Trigger:
    """A WorkflowTrigger: starts runs of its workflow with the given run fields.

    Made inside ``with Workflow(...)`` (or given to `Workflow.add`), it triggers that
    workflow."""

    type: ClassVar[str] = ""

    def __init__(self, name: str, *, workflow: Collector | str | None = None,
                 parameters: StageParameters | None = None,
                 variables: Mapping[str, Value] | None = None, timeout: str | None = None,
                 disabled: bool = False, project: str | None = None,
                 labels: Mapping[str, str] | None = None,
                 description: str | None = None) -> None:
        self.name = name
        self.workflow = _name(workflow) if workflow is not None else None
        self.project = project or getattr(workflow, "project", None)
        self.parameters = parameters
        self.variables = variables
        self.timeout = timeout
        self.disabled = disabled
        self.labels = dict(labels or {})
        self.description = description
        current = current_workflow()
        if workflow is None and current is not None:
            current.add(self)

    def _source(self) -> dict[str, Any]:
        return {}

    def manifests(self) -> list[dict[str, Any]]:
        return [self.to_dict()]

    def to_dict(self, project: str | None = None) -> dict[str, Any]:
        """The WorkflowTrigger manifest (`ManifestError` when the server would refuse it)."""
        spec: dict[str, Any] = {"type": self.type, **self._source()}
        if self.disabled:
            spec["disabled"] = True
        spec.update(run_spec(self.workflow, parameters=self.parameters,
                             variables=self.variables, timeout=self.timeout))
        return validated({
            "apiVersion": API_VERSION, "kind": "WorkflowTrigger",
            "metadata": object_meta(self.name, project=self.project or project,
                                    labels=self.labels, description=self.description),
            "spec": spec,
        })

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


class CronTrigger(Trigger):
    """Runs on a cron `schedule` (5 fields, or 6 with seconds first), in `timezone`."""

    type = "Cron"

    def __init__(self, name: str, schedule: str, *, timezone: str | None = None,
                 concurrency_policy: str | None = None,
                 starting_deadline_seconds: int | None = None, **kwargs: Any) -> None:
        self.schedule = schedule
        self.timezone = timezone
        self.concurrency_policy = concurrency_policy
        self.starting_deadline_seconds = starting_deadline_seconds
        super().__init__(name, **kwargs)

    def _source(self) -> dict[str, Any]:
        return compact({"cron": compact({"schedule": self.schedule, "timezone": self.timezone}),
                        "concurrencyPolicy": self.concurrency_policy,
                        "startingDeadlineSeconds": self.starting_deadline_seconds})


class SCMTrigger(Trigger):
    """Runs on events of an SCM repository (`repo`, its full name without the server):
    pushes to `push` branches (``True`` for any), tags, pull requests to `pull_request`
    branches, pull-request comments matching `comments`, SVN post-commits."""

    type = "SCM"

    def __init__(self, name: str, repo: str, *, secret: str | None = None,
                 push: bool | Sequence[str] = False, tag_release: bool = False,
                 pull_request: bool | Sequence[str] = False,
                 comments: Sequence[str] = (), post_commit: bool = False,
                 **kwargs: Any) -> None:
        self.repo = repo
        self.secret = secret
        self.push = push
        self.tag_release = tag_release
        self.pull_request = pull_request
        self.comments = list(comments)
        self.post_commit = post_commit
        super().__init__(name, **kwargs)

    def _source(self) -> dict[str, Any]:
        scm: dict[str, Any] = compact({"secret": self.secret, "repo": self.repo})
        for key, policy in (("push", self.push), ("pullRequest", self.pull_request)):
            if policy:
                scm[key] = {"enabled": True, "branches": [] if policy is True else list(policy)}
        if self.tag_release:
            scm["tagRelease"] = {"enabled": True}
        if self.comments:
            scm["pullRequestComment"] = {"enabled": True, "comments": self.comments}
        if self.post_commit:
            scm["postCommit"] = {"enabled": True}
        return {"scm": scm}


class WebhookTrigger(Trigger):
    """Runs when the tenant's webhook is called for it."""

    type = "Webhook"
