"""The tenant boundary of a run, decided from plain data.

A run belongs to the tenant whose metadata namespace (``cyclone-{tenant}``) holds it. It
may execute only where that tenant may: the control cluster in the tenant's own metadata
namespace with the tenant PVC, or a cluster the tenant opened, in the workload namespace
and with the PVC recorded for the tenant on that cluster's ExecutionCluster. The record
lives on the cluster-scoped ExecutionCluster (annotation ``opened.tenant.cyclone.dev/{t}``,
a JSON list of ``{integration, namespace, pvc}``), written only by the server's
opencluster/closecluster, so a tenant with kubectl rights in its own namespaces cannot
forge it.

Values may read Secrets (``${secrets.<ns>:<secret>/...}``) only of the run's own
namespace, and never the Secrets Cyclone keeps for itself. Pod fields that reach outside a
pod (host paths and namespaces, privilege, capabilities, host ports) are refused unless an
admin lists the feature in the tenant's ``allowedPodFeatures``.

Every check returns `Violation`s naming the field and saying why, in words a person
understands; an empty list means the object stays inside its tenant.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from cyclone.api import keys
from cyclone.api.tenant import TenantSpec

REASON_TENANCY_VIOLATION = "TenancyViolation"
"""Reason of a run or stage that the tenant boundary refused."""

OPENED_PREFIX = "opened.tenant.cyclone.dev/"
"""Label (``"true"``) and annotation (the JSON record) keys, per tenant, on an
ExecutionCluster the tenant opened."""

RESERVED_SECRET_NAMES = frozenset({
    "cyclone-tenant-tokens",      # the tenant's API token hashes (server auth)
    "cyclone-engine-key",         # the key delegation and upload tokens are signed with
    "cyclone-pvc-watcher-token",  # the PVC watchdog's token in a workload namespace
})
"""Secrets Cyclone keeps for itself: no value, env or volume of a stage may name them."""

_SECRET_REF = re.compile(r"\$\{secrets\.([^{}]*)\}")


@dataclass(frozen=True)
class Violation:
    """One field that crosses the tenant boundary.

    ``feature`` names the pod feature an admin could allow; a violation without one is an
    access to something another tenant, or Cyclone itself, owns.
    """

    field: str
    message: str
    feature: str | None = None
    subject: str | None = None

    def __str__(self) -> str:
        where = f"{self.subject} {self.field}" if self.subject else self.field
        return f"{where}: {self.message}"


def describe(violations: Iterable[Violation], limit: int = 5) -> str:
    """One sentence listing the first violations (and how many more there are)."""
    found = list(violations)
    text = "; ".join(str(v) for v in found[:limit])
    if len(found) > limit:
        text += f" (and {len(found) - limit} more)"
    return text


@dataclass(frozen=True)
class Target:
    """Where a run's pods go: execution cluster, namespace and the PVC they share."""

    cluster: str
    namespace: str
    pvc: str

    def as_context(self) -> dict[str, str]:
        return {"cluster": self.cluster, "namespace": self.namespace, "pvc": self.pvc}


@dataclass(frozen=True)
class Opened:
    """One cluster a tenant opened through one of its Cluster integrations."""

    cluster: str
    integration: str
    namespace: str
    pvc: str

    @property
    def target(self) -> Target:
        return Target(self.cluster, self.namespace, self.pvc)


def tenant_of(namespace: str) -> str:
    """The tenant whose metadata namespace this is (``cyclone-{tenant}``)."""
    return namespace.removeprefix(keys.TENANT_NAMESPACE_PREFIX)


def home_target(tenant: str) -> Target:
    """The control cluster, in the tenant's metadata namespace, with the tenant PVC."""
    return Target(keys.CONTROL_CLUSTER_NAME, keys.tenant_namespace(tenant),
                  keys.tenant_pvc_name(tenant))


@dataclass(frozen=True)
class TenantPolicy:
    """What one tenant's runs may use."""

    tenant: str
    allowed_features: frozenset[str] = frozenset()
    opened: tuple[Opened, ...] = ()

    @property
    def namespace(self) -> str:
        return keys.tenant_namespace(self.tenant)

    def owned_targets(self) -> tuple[Target, ...]:
        return (home_target(self.tenant), *(o.target for o in self.opened))

    def owned_pvcs(self) -> frozenset[str]:
        return frozenset(t.pvc for t in self.owned_targets())

    def runs_in(self, cluster: str, namespace: str) -> bool:
        """Whether the tenant's pods may run in this namespace of this cluster: its home,
        or a workload namespace it opened there (exactly; tenant names may contain ``-``,
        so no prefix of one tenant's namespace names another's)."""
        return any(t.cluster == cluster and t.namespace == namespace
                   for t in self.owned_targets())


def tenant_spec_of(namespace: Mapping[str, Any] | None) -> TenantSpec:
    """The tenant spec kept on its metadata Namespace; the defaults (nothing allowed) when
    the namespace or its annotation is missing or does not parse."""
    annotations = ((namespace or {}).get("metadata") or {}).get("annotations") or {}
    text = annotations.get(keys.ANNOTATION_TENANT_INFO)
    if not text:
        return TenantSpec()
    try:
        return TenantSpec.model_validate(json.loads(text))
    except ValueError:
        return TenantSpec()


def opened_by(tenant: str, execution_clusters: Iterable[Mapping[str, Any]]) -> tuple[Opened, ...]:
    """The clusters ``tenant`` opened, as recorded on the ExecutionClusters, by integration."""
    found: list[Opened] = []
    for ec in execution_clusters:
        name = (ec.get("metadata") or {}).get("name") or ""
        for entry in opened_record(ec).get(tenant, []):
            found.append(Opened(name, entry["integration"], entry["namespace"], entry["pvc"]))
    return tuple(sorted(found, key=lambda o: (o.integration, o.cluster)))


def policy_for(tenant: str, namespace: Mapping[str, Any] | None,
               execution_clusters: Iterable[Mapping[str, Any]] = ()) -> TenantPolicy:
    """The tenant's policy from its metadata Namespace and the ExecutionClusters."""
    spec = tenant_spec_of(namespace)
    return TenantPolicy(tenant, frozenset(spec.allowed_pod_features),
                        opened_by(tenant, execution_clusters))


# -- The record of opened clusters on an ExecutionCluster --------------------------------

def opened_record(execution_cluster: Mapping[str, Any] | None) -> dict[str, list[dict]]:
    """tenant → its ``{integration, namespace, pvc}`` entries on this ExecutionCluster;
    an entry that does not parse is left out."""
    annotations = ((execution_cluster or {}).get("metadata") or {}).get("annotations") or {}
    record: dict[str, list[dict]] = {}
    for key, text in annotations.items():
        if not key.startswith(OPENED_PREFIX):
            continue
        try:
            entries = json.loads(text)
        except (TypeError, ValueError):
            continue
        good = [
            {"integration": e["integration"], "namespace": e["namespace"], "pvc": e["pvc"]}
            for e in entries if isinstance(e, dict)
            and all(isinstance(e.get(k), str) and e.get(k) for k in
                    ("integration", "namespace", "pvc"))
        ] if isinstance(entries, list) else []
        if good:
            record[key[len(OPENED_PREFIX):]] = good
    return record


def claimed_by_other(execution_cluster: Mapping[str, Any] | None, tenant: str,
                     namespace: str) -> str | None:
    """The other tenant that already runs in ``namespace`` of this cluster, if any."""
    for other, entries in sorted(opened_record(execution_cluster).items()):
        if other != tenant and any(e["namespace"] == namespace for e in entries):
            return other
    return None


def record_patch(execution_cluster: Mapping[str, Any] | None, tenant: str, integration: str,
                 opened: tuple[str, str] | None) -> dict:
    """The metadata merge patch recording that ``tenant`` opened (``opened`` =
    (namespace, pvc)) or closed (``None``) the cluster through ``integration``."""
    entries = [e for e in opened_record(execution_cluster).get(tenant, [])
               if e["integration"] != integration]
    if opened is not None:
        entries.append({"integration": integration, "namespace": opened[0], "pvc": opened[1]})
        entries.sort(key=lambda e: e["integration"])
    key = OPENED_PREFIX + tenant
    if not entries:
        return {"metadata": {"labels": {key: None}, "annotations": {key: None}}}
    return {"metadata": {"labels": {key: "true"},
                         "annotations": {key: json.dumps(entries, sort_keys=True)}}}


# -- Where a run executes -----------------------------------------------------------------

def choose_execution_context(tenant: str,
                             execution_clusters: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """Where a new run of the tenant executes: its first opened cluster (by integration
    name), else the control cluster in its metadata namespace."""
    opened = opened_by(tenant, execution_clusters)
    return (opened[0].target if opened else home_target(tenant)).as_context()


def fill_execution_context(given: Mapping[str, Any] | None,
                           chosen: Mapping[str, str]) -> dict[str, str]:
    """A run's ``executionContext``: what the run gives, completed from ``chosen`` unless
    it names both a cluster and a namespace."""
    context = {k: v for k, v in _dict(given).items() if v}
    if not context.get("cluster") or not context.get("namespace"):
        context = {**chosen, **context}
    return context


def target_of(run_namespace: str, context: Mapping[str, Any] | None) -> Target:
    """The run's ``executionContext``, with the control cluster, the run's own namespace
    and the tenant PVC as defaults."""
    context = _dict(context)
    return Target(
        cluster=context.get("cluster") or keys.CONTROL_CLUSTER_NAME,
        namespace=context.get("namespace") or run_namespace,
        pvc=context.get("pvc") or keys.tenant_pvc_name(tenant_of(run_namespace)),
    )


def execution_context_violations(policy: TenantPolicy, context: Mapping[str, Any] | None,
                                 path: str = "spec.executionContext") -> list[Violation]:
    """Whether the tenant owns the cluster, namespace and PVC the context names."""
    target = target_of(policy.namespace, context)
    owned = policy.owned_targets()
    if target in owned:
        return []
    tenant = policy.tenant
    in_cluster = [t for t in owned if t.cluster == target.cluster]
    if not in_cluster:
        return [Violation(f"{path}.cluster", f"tenant {tenant!r} has not opened cluster "
                                             f"{target.cluster!r}")]
    in_namespace = [t for t in in_cluster if t.namespace == target.namespace]
    if not in_namespace:
        own = ", ".join(sorted({repr(t.namespace) for t in in_cluster}))
        return [Violation(f"{path}.namespace",
                          f"namespace {target.namespace!r} of cluster {target.cluster!r} is "
                          f"not tenant {tenant!r}'s (its namespaces there: {own})")]
    own = ", ".join(sorted({repr(t.pvc) for t in in_namespace}))
    return [Violation(f"{path}.pvc", f"PVC {target.pvc!r} in namespace {target.namespace!r} "
                                     f"is not tenant {tenant!r}'s (its PVC there: {own})")]


# -- Secrets named in values ----------------------------------------------------------------

def _strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _strings(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, f"{path}[{index}]")


def secret_references(value: Any, path: str = "") -> list[tuple[str, str, str]]:
    """(field, namespace, secret) of every ``${secrets.<ns>:<secret>/...}`` in a value."""
    found = []
    for where, text in _strings(value, path):
        for match in _SECRET_REF.finditer(text):
            target = match.group(1).split("/", 1)[0]
            namespace, _, name = target.partition(":")
            found.append((where, namespace, name))
    return found


def secret_allowed(policy: TenantPolicy, namespace: str, name: str) -> bool:
    """Whether the tenant's values may read Secret ``namespace/name``."""
    return namespace == policy.namespace and name not in RESERVED_SECRET_NAMES


def _secret_violation(policy: TenantPolicy, where: str, namespace: str | None,
                      name: str) -> Violation | None:
    if name in RESERVED_SECRET_NAMES:
        return Violation(where, f"Secret {name!r} is kept by Cyclone for itself; no stage "
                                f"may read it")
    if namespace is not None and namespace != policy.namespace:
        return Violation(where, f"Secret {namespace}/{name} is outside tenant "
                                f"{policy.tenant!r}'s namespace {policy.namespace!r}")
    return None


def secret_reference_violations(policy: TenantPolicy, value: Any,
                                path: str = "spec") -> list[Violation]:
    """``${secrets...}`` naming a Secret of another namespace, or one Cyclone keeps."""
    found = []
    for where, namespace, name in secret_references(value, path):
        violation = _secret_violation(policy, where, namespace, name)
        if violation is not None:
            found.append(violation)
    return found


# -- Pod features and references -------------------------------------------------------------

_FEATURE_WORDS = {
    "hostPath": "a hostPath volume (a directory of the node)",
    "privileged": "a privileged container or privilege escalation",
    "hostNetwork": "the node's network namespace",
    "hostPID": "the node's process namespace",
    "hostIPC": "the node's IPC namespace",
    "capabilities": "added Linux capabilities",
    "hostPort": "a port of the node",
}


def _is_set(value: Any) -> bool:
    """Anything but absent, null, false, zero or empty counts as asking for the feature."""
    return value not in (None, False, 0, "", [], {})


def _dicts(value: Any) -> list[tuple[int, dict]]:
    return [(i, v) for i, v in enumerate(value) if isinstance(v, dict)] \
        if isinstance(value, list) else []


def _dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


class _PodCheck:
    def __init__(self, policy: TenantPolicy) -> None:
        self.policy = policy
        self.found: list[Violation] = []

    def feature(self, feature: str, where: str) -> None:
        if feature in self.policy.allowed_features:
            return
        self.found.append(Violation(
            where, f"{_FEATURE_WORDS[feature]} is not allowed for tenant "
                   f"{self.policy.tenant!r} (an admin may allow the pod feature {feature!r})",
            feature=feature))

    def secret(self, where: str, name: Any) -> None:
        if isinstance(name, str):
            violation = _secret_violation(self.policy, where, None, name)
            if violation is not None:
                self.found.append(violation)

    def claim(self, where: str, name: Any) -> None:
        if (isinstance(name, str) and name.startswith(keys.tenant_pvc_name(""))
                and name not in self.policy.owned_pvcs()):
            self.found.append(Violation(
                where, f"PVC {name!r} is another tenant's; tenant {self.policy.tenant!r} "
                       f"may mount only its own PVC"))

    def volume(self, where: str, volume: dict) -> None:
        if _is_set(volume.get("hostPath")):
            self.feature("hostPath", f"{where}.hostPath")
        self.secret(f"{where}.secret.secretName", _dict(volume.get("secret")).get("secretName"))
        self.claim(f"{where}.persistentVolumeClaim.claimName",
                   _dict(volume.get("persistentVolumeClaim")).get("claimName"))
        for j, source in _dicts(_dict(volume.get("projected")).get("sources")):
            self.secret(f"{where}.projected.sources[{j}].secret.name",
                        _dict(source.get("secret")).get("name"))

    def container(self, where: str, container: dict) -> None:
        security = _dict(container.get("securityContext"))
        for key in ("privileged", "allowPrivilegeEscalation"):
            if _is_set(security.get(key)):
                self.feature("privileged", f"{where}.securityContext.{key}")
        if security.get("procMount") not in (None, "", "Default"):
            self.feature("privileged", f"{where}.securityContext.procMount")
        if _is_set(_dict(security.get("capabilities")).get("add")):
            self.feature("capabilities", f"{where}.securityContext.capabilities.add")
        for j, port in _dicts(container.get("ports")):
            if _is_set(port.get("hostPort")):
                self.feature("hostPort", f"{where}.ports[{j}].hostPort")
        for j, env in _dicts(container.get("env")):
            ref = _dict(_dict(env.get("valueFrom")).get("secretKeyRef"))
            self.secret(f"{where}.env[{j}].valueFrom.secretKeyRef.name", ref.get("name"))
        for j, source in _dicts(container.get("envFrom")):
            self.secret(f"{where}.envFrom[{j}].secretRef.name",
                        _dict(source.get("secretRef")).get("name"))

    def pod_spec(self, path: str, spec: dict) -> None:
        for key in ("hostNetwork", "hostPID", "hostIPC"):
            if _is_set(spec.get(key)):
                self.feature(key, f"{path}.{key}")
        for i, volume in _dicts(spec.get("volumes")):
            self.volume(f"{path}.volumes[{i}]", volume)
        for group in ("initContainers", "containers", "ephemeralContainers"):
            for i, container in _dicts(spec.get(group)):
                self.container(f"{path}.{group}[{i}]", container)


def pod_spec_violations(policy: TenantPolicy, spec: Any,
                        path: str = "spec.pod.spec") -> list[Violation]:
    """Escaping features the tenant may not use, and Secrets or PVCs it may not mount, in
    a PodSpec (its containers, init containers and sidecars)."""
    check = _PodCheck(policy)
    check.pod_spec(path, _dict(spec))
    return check.found


def run_volume_violations(policy: TenantPolicy, volumes: Any,
                          path: str = "spec.volumes") -> list[Violation]:
    """A run's preset volumes (``spec.volumes[]``): HostPath, and Secrets or PVCs of others."""
    check = _PodCheck(policy)
    for i, volume in _dicts(volumes):
        where = f"{path}[{i}]"
        kind = volume.get("type")
        if kind == "HostPath":
            check.feature("hostPath", f"{where}.type")
        elif kind == "Secret":
            check.secret(f"{where}.objectName", volume.get("objectName"))
        elif kind == "PVC":
            check.claim(f"{where}.objectName", volume.get("objectName"))
    return check.found


def stage_violations(policy: TenantPolicy, stage: Mapping[str, Any]) -> list[Violation]:
    """What a Stage (or stage template) asks for that its tenant may not have."""
    spec = _dict(stage.get("spec"))
    found = secret_reference_violations(policy, spec, "spec")
    pod = _dict(spec.get("pod"))
    if pod:
        found += pod_spec_violations(policy, pod.get("spec"), "spec.pod.spec")
    return found


def run_violations(policy: TenantPolicy, run: Mapping[str, Any]) -> list[Violation]:
    """What a WorkflowRun's own spec asks for that its tenant may not have."""
    spec = _dict(run.get("spec"))
    return [
        *execution_context_violations(policy, spec.get("executionContext")),
        *secret_reference_violations(policy, spec, "spec"),
        *run_volume_violations(policy, spec.get("volumes")),
    ]


def admission_violations(policy: TenantPolicy, run: Mapping[str, Any],
                         workflow: Mapping[str, Any] | None,
                         stages: Mapping[str, Mapping[str, Any]]) -> list[Violation]:
    """Everything a run would use, checked before it is admitted: the run, its workflow
    and the stages in its scope, each violation naming its object."""
    found = list(run_violations(policy, run))
    if workflow is not None:
        name = (workflow.get("metadata") or {}).get("name")
        found += [_about(v, f"workflow {name}")
                  for v in secret_reference_violations(policy, workflow.get("spec"), "spec")]
    for name, stage in stages.items():
        found += [_about(v, f"stage {name}") for v in stage_violations(policy, stage)]
    return found


def _about(violation: Violation, subject: str) -> Violation:
    return Violation(violation.field, violation.message, violation.feature, subject)

