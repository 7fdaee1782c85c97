"""Workflows (a DAG of stages, collected in a ``with`` block) and Projects."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextvars import Token
from dataclasses import dataclass, field
from typing import Any

import yaml

from cyclone.api.references import upstream_of, workflow_reference_errors
from cyclone.api.validation import FieldError
from cyclone.sdk.manifest import (
    API_VERSION,
    ManifestError,
    Value,
    compact,
    object_meta,
    parameters,
    validated,
)
from cyclone.sdk.resources import Resource
from cyclone.sdk.runs import RunRequest, StageParameters, Trigger
from cyclone.sdk.stage import _CURRENT, Collector, Stage


@dataclass(frozen=True)
class Receiver:
    """Where a notification goes: `type` Email, Slack or Webhook, and its addresses."""

    type: str
    addresses: Sequence[str] = ()


@dataclass(frozen=True)
class Notification:
    """Report finished runs to `receivers`: ``Always``, on ``Success`` or on ``Failure``."""

    policy: str = "Always"
    receivers: Sequence[Receiver] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return {"policy": self.policy, "receivers": [
            {"type": r.type, "addresses": list(r.addresses)} for r in self.receivers]}


class Project:
    """A Cyclone Project: default `quota` of stage pods and default `integrations`
    (``{"SCM": "github"}``: type to integration name)."""

    def __init__(self, name: str, *, quota: Mapping[str, str] | None = None,
                 integrations: Mapping[str, str] | None = None,
                 labels: Mapping[str, str] | None = None,
                 description: str | None = None) -> None:
        self.name = name
        self.quota = dict(quota) if quota else None
        self.integrations = dict(integrations or {})
        self.labels = dict(labels or {})
        self.description = description

    def manifests(self) -> list[dict[str, Any]]:
        return [self.to_dict()]

    def to_dict(self) -> dict[str, Any]:
        spec = compact({"quota": self.quota, "integrations": [
            {"type": t, "name": n} for t, n in self.integrations.items()] or None})
        return validated({"apiVersion": API_VERSION, "kind": "Project",
                          "metadata": object_meta(self.name, labels=self.labels,
                                                  description=self.description),
                          "spec": spec})


class Workflow:
    """A Cyclone Workflow: stages and their edges, global variables, notification.

    Stages (and triggers) made inside ``with Workflow("ci", project="demo") as wf:``
    join it, as do stages joined there by ``>>``. When it is written, a stage that reads
    another's output (``${stages.x.outputs.k}``) or artifact depends on it: the edge is
    added unless that stage is already upstream, so the server's rule that references
    point upstream always holds and no edge is written twice.
    """

    def __init__(self, name: str, *, project: str | None = None, stages: Sequence[Stage] = (),
                 variables: Mapping[str, Value] | None = None,
                 notification: Notification | None = None,
                 resources: Mapping[str, Any] | None = None,
                 triggers: Sequence[Trigger] = (), labels: Mapping[str, str] | None = None,
                 description: str | None = None) -> None:
        self.name = name
        self.project = project
        self.variables = dict(variables or {})
        self.notification = notification
        self.resources = dict(resources) if resources else None
        self.labels = dict(labels or {})
        self.description = description
        self.stages: list[Stage] = []
        self.triggers: list[Trigger] = []
        self._tokens: list[Token[Collector | None]] = []
        self.add(*stages, *triggers)

    def __enter__(self) -> Workflow:
        self._tokens.append(_CURRENT.set(self))
        return self

    def __exit__(self, *_: object) -> None:
        _CURRENT.reset(self._tokens.pop())

    def add(self, *items: Stage | Trigger) -> Workflow:
        """Add stages or triggers (each once); a second, different stage of the same name
        is refused."""
        for item in items:
            if isinstance(item, Trigger):
                if item not in self.triggers:
                    item.workflow = item.workflow or self.name
                    item.project = item.project or self.project
                    self.triggers.append(item)
                continue
            if any(s is item for s in self.stages):
                continue
            if any(s.name == item.name for s in self.stages):
                raise ManifestError(f"Workflow {self.name!r}", [FieldError(
                    "spec.stages", f"two different stages are named {item.name!r}")])
            self.stages.append(item)
        return self

    def stage(self, name: str) -> Stage:
        """The stage named `name` (KeyError when there is none)."""
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise KeyError(name)

    def edges(self) -> dict[str, list[str]]:
        """Each stage's depends: its declared edges, then one to each stage it reads from
        that is not upstream yet."""
        graph = {s.name: list(s.depends) for s in self.stages}
        for stage in self.stages:
            for source in stage.references():
                if source != stage.name and source in graph and source not in upstream_of(
                        graph, stage.name):
                    graph[stage.name].append(source)
        return graph

    def to_dict(self) -> dict[str, Any]:
        """The Workflow manifest (`ManifestError` when the server would refuse it)."""
        graph = self.edges()
        spec: dict[str, Any] = {"stages": [s.workflow_item(graph[s.name]) for s in self.stages]}
        if self.variables:
            spec["globalVariables"] = parameters(self.variables)
        if self.notification is not None:
            spec["notification"] = self.notification.to_dict()
        if self.resources:
            spec["resources"] = self.resources
        workflow = {"apiVersion": API_VERSION, "kind": "Workflow",
                    "metadata": object_meta(self.name, project=self.project,
                                            labels=self.labels, description=self.description),
                    "spec": spec}
        stages = {s.name: s.to_dict(self.project) for s in self.stages}
        return validated(workflow, workflow_reference_errors(
            workflow, stages, f"workflow {self.name!r}"))

    def manifests(self) -> list[dict[str, Any]]:
        """Its Resources, Stages, the Workflow and its triggers, in the order to apply."""
        resources: dict[str, Resource] = {}
        for stage in self.stages:
            for resource in stage.resources():
                resources.setdefault(resource.name, resource)
        return [*(r.to_dict(self.project) for r in resources.values()),
                *(s.to_dict(self.project) for s in self.stages), self.to_dict(),
                *(t.to_dict(self.project) for t in self.triggers)]

    def to_yaml(self) -> str:
        """Its manifests as one multi-document YAML text (`cyclone apply -f` reads it)."""
        return yaml.safe_dump_all(self.manifests(), sort_keys=False, default_flow_style=False)

    def run_request(self, *, name: str | None = None,
                    parameters: StageParameters | None = None,
                    variables: Mapping[str, Value] | None = None,
                    start_stages: Sequence[Stage | str] = (),
                    end_stages: Sequence[Stage | str] = (),
                    timeout: str | None = None) -> RunRequest:
        """A run of this workflow (see `RunRequest`)."""
        return RunRequest(self, name=name, parameters=parameters, variables=variables,
                          start_stages=start_stages, end_stages=end_stages, timeout=timeout,
                          project=self.project)

    def __repr__(self) -> str:
        return f"Workflow({self.name!r}, stages={[s.name for s in self.stages]})"
