"""Pod stages as Python objects, their edges (``a >> b``) and their outputs.

A `Stage` is one Cyclone Stage with a single workload container. The edges and the
`trivial` flag belong to the workflow's entry for the stage (``spec.stages[]``); they are
kept on the object and written by the `Workflow` that holds it.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Protocol, overload

from cyclone.api.references import output_references
from cyclone.api.validation import FieldError
from cyclone.sdk.manifest import (
    API_VERSION,
    ManifestError,
    Outputs,
    Value,
    compact,
    object_meta,
    plain,
    validated,
)
from cyclone.sdk.resources import Resource, ResourceMount


class Collector(Protocol):
    """What collects the stages and triggers made in its ``with`` block (a `Workflow`)."""

    name: str
    project: str | None

    def add(self, *items: Any) -> Any: ...


_CURRENT: ContextVar[Collector | None] = ContextVar("cyclone_sdk_workflow", default=None)


def current_workflow() -> Collector | None:
    """The workflow of the innermost ``with Workflow(...)`` block, if any."""
    return _CURRENT.get()


@dataclass(frozen=True)
class Argument:
    """A stage argument, used in the stage as ``{{ name }}``; a run may override it."""

    name: str
    value: Value = None
    description: str | None = None
    required: bool | None = None

    def item(self) -> dict[str, Any]:
        return compact({"name": self.name,
                        "value": None if self.value is None else str(plain(self.value)),
                        "description": self.description, "required": self.required})


@dataclass(frozen=True)
class Artifact:
    """An output artifact: what the workload leaves at `path` is kept under `name`."""

    name: str
    path: str


@dataclass(frozen=True)
class ArtifactSource:
    """An output artifact of a stage (``stage.artifact("bin")``), to be used by another."""

    stage: str
    name: str

    def at(self, path: str, name: str | None = None) -> ArtifactInput:
        """This artifact at `path` of the stage that uses it (named `name` there)."""
        return ArtifactInput(name or self.name, path, self)

    def __str__(self) -> str:
        return f"{self.stage}/{self.name}"


@dataclass(frozen=True)
class ArtifactInput:
    """An input artifact at `path`; `source` says which stage's output it is."""

    name: str
    path: str
    source: ArtifactSource | None = None


class Stage:
    """A Cyclone pod Stage: one workload container and its inputs and outputs.

    ``command``/``args`` run as given; ``script`` runs as ``[shell, -c, script]``. Any
    string may hold `OutputRef`s (``other.outputs.version``) and ``{{ argument }}``.
    Created inside ``with Workflow(...)``, the stage joins that workflow.
    """

    def __init__(
        self,
        name: str,
        *,
        image: str | None = None,
        command: Sequence[Value] | None = None,
        args: Sequence[Value] | None = None,
        script: Value | None = None,
        shell: str = "sh",
        env: Mapping[str, Value] | None = None,
        arguments: Mapping[str, Value] | Sequence[Argument] | None = None,
        input_resources: Sequence[ResourceMount] = (),
        input_artifacts: Sequence[ArtifactInput] = (),
        output_resources: Sequence[ResourceMount] = (),
        output_artifacts: Mapping[str, str] | Sequence[Artifact] | None = None,
        requests: Mapping[str, str] | None = None,
        limits: Mapping[str, str] | None = None,
        container: str | None = None,
        working_dir: str | None = None,
        pod: Mapping[str, Any] | None = None,
        depends: Iterable[Stage | str] = (),
        trivial: bool = False,
        project: str | None = None,
        labels: Mapping[str, str] | None = None,
        description: str | None = None,
    ) -> None:
        self.name = name
        self.image = image
        self.command = list(command) if command is not None else None
        self.args = list(args) if args is not None else None
        self.script = script
        self.shell = shell
        self.env = dict(env or {})
        if isinstance(arguments, Mapping):
            self.arguments = [Argument(k, v) for k, v in arguments.items()]
        else:
            self.arguments = list(arguments or [])
        self.input_resources = list(input_resources)
        self.input_artifacts = list(input_artifacts)
        self.output_resources = list(output_resources)
        if isinstance(output_artifacts, Mapping):
            self.output_artifacts = [Artifact(k, v) for k, v in output_artifacts.items()]
        else:
            self.output_artifacts = list(output_artifacts or [])
        self.requests = dict(requests or {})
        self.limits = dict(limits or {})
        self.container = container
        self.working_dir = working_dir
        self.pod = dict(pod or {})
        self.depends: list[str] = []
        self.trivial = trivial
        self.project = project
        self.labels = dict(labels or {})
        self.description = description
        self.after(*depends)
        workflow = current_workflow()
        if workflow is not None:
            workflow.add(self)

    @property
    def outputs(self) -> Outputs:
        """``stage.outputs.<key>``: a reference to one of this stage's results."""
        return Outputs(self.name)

    def artifact(self, name: str) -> ArtifactSource:
        """This stage's output artifact `name`, for another stage's ``input_artifacts``."""
        return ArtifactSource(self.name, name)

    def after(self, *stages: Stage | str) -> Stage:
        """Make this stage depend on `stages` (as ``stages >> self``); returns itself."""
        for stage in stages:
            name = stage.name if isinstance(stage, Stage) else str(stage)
            if name not in self.depends:
                self.depends.append(name)
        return self

    @overload
    def __rshift__(self, other: Stage) -> Stage: ...

    @overload
    def __rshift__(self, other: Sequence[Stage]) -> list[Stage]: ...

    def __rshift__(self, other: Stage | Sequence[Stage]) -> Stage | list[Stage]:
        """``a >> b``: b depends on a. Returns `other`, so edges chain: ``a >> b >> c``."""
        targets = [other] if isinstance(other, Stage) else list(other)
        if not all(isinstance(t, Stage) for t in targets):
            return NotImplemented
        for target in targets:
            target.after(self)
        _join_current(self, *targets)
        return other if isinstance(other, Stage) else targets

    def __rrshift__(self, other: Sequence[Stage]) -> Stage:
        """``[a, b] >> c``: c depends on a and b."""
        sources = list(other)
        if not all(isinstance(s, Stage) for s in sources):
            return NotImplemented
        self.after(*sources)
        _join_current(*sources, self)
        return self

    def references(self) -> list[str]:
        """The stages this stage reads from: output references and artifact sources."""
        found = [stage for stage, _ in output_references(self._pod_workload())]
        found += [a.source.stage for a in self.input_artifacts if a.source is not None]
        return list(dict.fromkeys(found))

    def workflow_item(self, depends: Sequence[str] | None = None) -> dict[str, Any]:
        """The workflow's ``spec.stages[]`` entry for this stage."""
        item: dict[str, Any] = {"name": self.name}
        depends = self.depends if depends is None else depends
        if depends:
            item["depends"] = list(depends)
        if self.trivial:
            item["trivial"] = True
        artifacts = [{"name": a.name, "source": str(a.source)}
                     for a in self.input_artifacts if a.source is not None]
        if artifacts:
            item["artifacts"] = artifacts
        return item

    def resources(self) -> list[Resource]:
        """The Resource objects this stage mounts (those given as objects, not names)."""
        mounts = [*self.input_resources, *self.output_resources]
        return [m.resource for m in mounts if m.resource is not None]

    def _container(self) -> tuple[dict[str, Any], list[FieldError]]:
        errors: list[FieldError] = []
        where = "spec.pod.spec.containers[0]"
        if not self.image:
            errors.append(FieldError(f"{where}.image", "required"))
        container: dict[str, Any] = compact({"name": self.container, "image": self.image})
        if self.script is not None:
            if self.command is not None:
                errors.append(FieldError(f"{where}.command",
                                         "give either command or script, not both"))
            container["command"] = [self.shell, "-c", plain(self.script)]
        elif self.command is not None:
            container["command"] = plain(self.command)
        if self.args is not None:
            container["args"] = plain(self.args)
        if self.env:
            container["env"] = [{"name": k, "value": str(plain(v))} for k, v in self.env.items()]
        if self.working_dir:
            container["workingDir"] = self.working_dir
        compute = compact({"requests": self.requests or None, "limits": self.limits or None})
        if compute:
            container["resources"] = compute
        return container, errors

    def _pod_workload(self) -> dict[str, Any]:
        container, _ = self._container()
        inputs = compact({
            "resources": [m.item() for m in self.input_resources] or None,
            "arguments": [a.item() for a in self.arguments] or None,
            "artifacts": [{"name": a.name, "path": a.path} for a in self.input_artifacts]
            or None,
        })
        outputs = compact({
            "resources": [m.item() for m in self.output_resources] or None,
            "artifacts": [{"name": a.name, "path": a.path} for a in self.output_artifacts]
            or None,
        })
        workload: dict[str, Any] = {}
        if inputs:
            workload["inputs"] = inputs
        if outputs:
            workload["outputs"] = outputs
        workload["spec"] = {**plain(self.pod), "containers": [container]}
        return workload

    def manifests(self) -> list[dict[str, Any]]:
        return [*(r.to_dict(self.project) for r in self.resources()), self.to_dict()]

    def to_dict(self, project: str | None = None) -> dict[str, Any]:
        """The Stage manifest (`ManifestError` when the server would refuse it)."""
        _, errors = self._container()
        if errors:
            raise ManifestError(f"Stage {self.name!r}", errors)
        return validated({
            "apiVersion": API_VERSION, "kind": "Stage",
            "metadata": object_meta(self.name, project=self.project or project,
                                    labels=self.labels, description=self.description),
            "spec": {"pod": self._pod_workload()},
        })

    def copy(self, name: str | None = None) -> Stage:
        """A copy (named `name`) with its own edges, not part of any workflow yet."""
        clone = copy.copy(self)
        for attribute in ("env", "arguments", "depends", "labels", "pod", "input_resources",
                          "input_artifacts", "output_resources", "output_artifacts"):
            setattr(clone, attribute, copy.copy(getattr(self, attribute)))
        if name is not None:
            clone.name = name
        return clone

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


def _join_current(*stages: Stage) -> None:
    workflow = current_workflow()
    if workflow is not None:
        workflow.add(*stages)
