"""The kinds of object Cyclone reads and writes, with what a client needs to address them."""

from __future__ import annotations

from dataclasses import dataclass

from cyclone.api import keys


@dataclass(frozen=True)
class Kind:
    api_version: str
    kind: str
    plural: str
    namespaced: bool
    has_status: bool = True
    short_names: tuple[str, ...] = ()

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    @property
    def version(self) -> str:
        return self.api_version.rpartition("/")[2]


def _core(kind: str, plural: str, namespaced: bool = True, has_status: bool = True) -> Kind:
    return Kind("v1", kind, plural, namespaced, has_status)


def _cyclone(kind: str, plural: str, short: str, namespaced: bool = True) -> Kind:
    return Kind(keys.API_VERSION, kind, plural, namespaced, True, (short,))


NAMESPACE = _core("Namespace", "namespaces", namespaced=False)
POD = _core("Pod", "pods")
SECRET = _core("Secret", "secrets", has_status=False)
CONFIG_MAP = _core("ConfigMap", "configmaps", has_status=False)
PERSISTENT_VOLUME_CLAIM = _core("PersistentVolumeClaim", "persistentvolumeclaims")
PERSISTENT_VOLUME = _core("PersistentVolume", "persistentvolumes", namespaced=False)
RESOURCE_QUOTA = _core("ResourceQuota", "resourcequotas")
SERVICE_ACCOUNT = _core("ServiceAccount", "serviceaccounts", has_status=False)
NODE = _core("Node", "nodes", namespaced=False)
EVENT = _core("Event", "events", has_status=False)
LEASE = Kind("coordination.k8s.io/v1", "Lease", "leases", True, False)
CUSTOM_RESOURCE_DEFINITION = Kind(
    "apiextensions.k8s.io/v1", "CustomResourceDefinition", "customresourcedefinitions", False
)

EXECUTION_CLUSTER = _cyclone("ExecutionCluster", "executionclusters", "ec", namespaced=False)
PROJECT = _cyclone("Project", "projects", "proj")
RESOURCE = _cyclone("Resource", "resources", "rsc")
STAGE = _cyclone("Stage", "stages", "stg")
WORKFLOW = _cyclone("Workflow", "workflows", "wf")
WORKFLOW_RUN = _cyclone("WorkflowRun", "workflowruns", "wfr")
WORKFLOW_TRIGGER = _cyclone("WorkflowTrigger", "workflowtriggers", "wft")
WORKFLOW_RUN_STAGES = _cyclone("WorkflowRunStages", "workflowrunstages", "wfrs")
"""The stage entries of a large run (`cyclone.api.stagechunks`), in its status."""

CYCLONE_KINDS: tuple[Kind, ...] = (
    EXECUTION_CLUSTER, PROJECT, RESOURCE, STAGE, WORKFLOW, WORKFLOW_RUN, WORKFLOW_RUN_STAGES,
    WORKFLOW_TRIGGER,
)
ALL_KINDS: tuple[Kind, ...] = (
    NAMESPACE, POD, SECRET, CONFIG_MAP, PERSISTENT_VOLUME_CLAIM, PERSISTENT_VOLUME,
    RESOURCE_QUOTA, SERVICE_ACCOUNT, NODE, EVENT, LEASE, CUSTOM_RESOURCE_DEFINITION,
    *CYCLONE_KINDS,
)

_BY_KEY = {(k.api_version, k.kind): k for k in ALL_KINDS}


def kind_of(obj: dict) -> Kind:
    """The Kind of an object from its apiVersion and kind fields."""
    try:
        return _BY_KEY[(obj["apiVersion"], obj["kind"])]
    except KeyError as exc:
        raise KeyError(
            f"unknown kind {obj.get('apiVersion')}/{obj.get('kind')}"
        ) from exc


def lookup(api_version: str, kind: str) -> Kind:
    return _BY_KEY[(api_version, kind)]
