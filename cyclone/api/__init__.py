"""Cyclone's resource model: pydantic models of every kind, validation and CRDs.

The names below are imported from their modules on first use, so that importing a light
module of this package (`keys`, `phases`, `selectors`, `formats`) does not build every
pydantic model: the CLI starts without them.
"""

from importlib import import_module
from typing import Any

_EXPORTS: dict[str, tuple[str, ...]] = {
    "cluster": (
        "ClusterCredential", "ExecutionCluster", "ExecutionClusterSpec", "TLSClientConfig",
    ),
    "common": (
        "ArtifactItem", "CycloneModel", "FreeForm", "GlobalVariable", "KeyValue", "ParameterItem",
        "Quantity", "ResourceItem", "Status",
    ),
    "integration": (
        "ClusterSource", "DockerRegistrySource", "GeneralItem", "Integration", "IntegrationSpec",
        "IntegrationType", "SCMSource", "SCMType", "SonarQubeSource",
    ),
    "meta": (
        "CycloneObject", "ObjectMeta", "ObjectReference", "OwnerReference",
    ),
    "phases": ("Phase",),
    "project": (
        "IntegrationItem", "Project", "ProjectSpec", "ProjectStatus",
    ),
    "registry": (
        "OBJECT_TYPES", "UnknownKind", "load_object", "model_for_kind",
    ),
    "resource": (
        "Operation", "Persistent", "PullPolicy", "Resource", "ResourceBinding", "ResourceSpec",
    ),
    "stage": (
        "DelegationWorkload", "PodInputs", "PodOutputs", "PodWorkload", "PodWorkloadMeta", "Stage",
        "StageSpec",
    ),
    "tenant": (
        "Tenant", "TenantPVC", "TenantSpec",
    ),
    "trigger": (
        "ConcurrencyPolicy", "CronTrigger", "SCMEventPolicy", "SCMPostCommitPolicy",
        "SCMPullRequestCommentPolicy", "SCMPullRequestPolicy", "SCMPushPolicy", "SCMTrigger",
        "TriggerType", "WorkflowTrigger", "WorkflowTriggerSpec", "WorkflowTriggerStatus",
    ),
    "validation": (
        "FieldError", "ValidationFailed", "ensure_valid", "parse_duration", "validate_model",
        "validate_object",
    ),
    "workflow": (
        "Notification", "NotificationPolicy", "NotificationReceiver", "NotificationType",
        "StageItem", "Workflow", "WorkflowSpec",
    ),
    "workflowrun": (
        "ContainerGroup", "DelegationStatus", "ExecutionContext", "NotificationResult",
        "ParameterConfig", "PodInfo", "PresetVolume", "StageEvent", "StageStatus", "VolumeType",
        "WorkflowRun", "WorkflowRunSpec", "WorkflowRunStatus",
    ),
}
"""The public names of the package, by the module that defines them."""

_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_MODULE_OF)


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
