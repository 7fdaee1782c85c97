"""Resources: the data a stage pulls before it runs (a Git checkout) or pushes after."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cyclone.sdk.manifest import API_VERSION, Value, compact, object_meta, parameters, validated


@dataclass(frozen=True)
class ResourceMount:
    """A Resource at a path of a stage's workload container (input or output)."""

    name: str
    path: str
    type: str | None = None
    resource: Resource | None = None

    def item(self) -> dict[str, Any]:
        return compact({"name": self.name, "type": self.type, "path": self.path})


class Resource:
    """A Cyclone Resource: a `type` (Git, Svn, Image, Http or a registered type) and the
    parameters its resolver reads as environment variables.

    ``Resource.git("src", url=…)`` and the other constructors name the built-in types'
    parameters; ``resource.at("/workspace/src")`` mounts it in a stage.
    """

    def __init__(self, name: str, type: str, parameters: Mapping[str, Value] | None = None, *,
                 project: str | None = None, resolver: str | None = None,
                 persistent: Mapping[str, Any] | None = None,
                 labels: Mapping[str, str] | None = None,
                 description: str | None = None) -> None:
        self.name = name
        self.type = type
        self.parameters = dict(parameters or {})
        self.project = project
        self.resolver = resolver
        self.persistent = dict(persistent) if persistent else None
        self.labels = dict(labels or {})
        self.description = description

    @classmethod
    def git(cls, name: str, url: Value, revision: Value | None = None, *,
            repo: Value | None = None, auth: Value | None = None, **kwargs: Any) -> Resource:
        """A Git repository: ``SCM_URL``, ``SCM_REVISION`` (``src:dst`` merges a source
        into a target), ``SCM_REPO`` and ``SCM_AUTH``."""
        return cls(name, "Git", _present(SCM_URL=url, SCM_REVISION=revision, SCM_REPO=repo,
                                         SCM_AUTH=auth), **kwargs)

    @classmethod
    def svn(cls, name: str, url: Value, revision: Value | None = None, *,
            user: Value | None = None, auth: Value | None = None, **kwargs: Any) -> Resource:
        """A Subversion checkout: ``SCM_URL``, ``SCM_REVISION``, ``SCM_USER``, ``SCM_AUTH``."""
        return cls(name, "Svn", _present(SCM_URL=url, SCM_REVISION=revision, SCM_USER=user,
                                         SCM_AUTH=auth), **kwargs)

    @classmethod
    def image(cls, name: str, repository: Value, tag: Value | None = None, *,
              registry: Value | None = None, user: Value | None = None,
              password: Value | None = None, **kwargs: Any) -> Resource:
        """An image to push: ``REGISTRY``, ``REPOSITORY``, ``TAG``, ``USER``, ``PASSWORD``."""
        return cls(name, "Image", _present(REGISTRY=registry, REPOSITORY=repository, TAG=tag,
                                           USER=user, PASSWORD=password), **kwargs)

    @classmethod
    def http(cls, name: str, url: Value, *, token: Value | None = None,
             artifact: Value | None = None, **kwargs: Any) -> Resource:
        """An HTTP endpoint: ``URL``, ``TOKEN`` (bearer) and ``ARTIFACT`` (the name pushed)."""
        return cls(name, "Http", _present(URL=url, TOKEN=token, ARTIFACT=artifact), **kwargs)

    def at(self, path: str) -> ResourceMount:
        """This resource at `path` of a stage's workload container."""
        return ResourceMount(self.name, path, self.type, self)

    def manifests(self) -> list[dict[str, Any]]:
        return [self.to_dict()]

    def to_dict(self, project: str | None = None) -> dict[str, Any]:
        """The Resource manifest (`ManifestError` when the server would refuse it)."""
        spec = compact({"type": self.type, "resolver": self.resolver,
                        "parameters": parameters(self.parameters) or None,
                        "persistent": self.persistent})
        return validated({
            "apiVersion": API_VERSION, "kind": "Resource",
            "metadata": object_meta(self.name, project=self.project or project,
                                    labels=self.labels, description=self.description),
            "spec": spec,
        })

    def __repr__(self) -> str:
        return f"Resource({self.name!r}, {self.type!r})"


def _present(**values: Value | None) -> dict[str, Value]:
    return {k: v for k, v in values.items() if v is not None}
