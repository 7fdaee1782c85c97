"""Group, version, label and annotation keys shared by every layer."""

GROUP = "cyclone.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

# Labels
LABEL_PROJECT = "project.cyclone.dev/name"
LABEL_WORKFLOW = "workflow.cyclone.dev/name"
LABEL_WORKFLOWRUN = "workflowrun.cyclone.dev/name"
LABEL_STAGE_TEMPLATE = "stage.cyclone.dev/template"
LABEL_RESOURCE_TEMPLATE = "resource.cyclone.dev/template"
LABEL_BUILTIN = "cyclone.dev/builtin"
LABEL_SCENE = "cyclone.dev/scene"
LABEL_INTEGRATION_TYPE = "integration.cyclone.dev/type"
LABEL_TRIGGER_EVENT_SOURCE = "workflowtrigger.cyclone.dev/event-source"
LABEL_POD_KIND = "pod.kubernetes.io/kind"
LABEL_POD_CREATED_BY = "pod.kubernetes.io/created-by"
LABEL_STAGE = "stage.cyclone.dev/name"
LABEL_TENANT = "tenant.cyclone.dev/name"
LABEL_ACCELERATION = "workflowrun.cyclone.dev/acceleration"
"""On a WorkflowRun: `"true"` mounts its project's dependency caches into its stages."""

POD_KIND_WORKLOAD = "workload"
POD_KIND_GC = "gc"
POD_KIND_PVC_WATCHER = "pvc-watcher"
CREATED_BY_CYCLONE = "cyclone"

# Annotations
ANNOTATION_ALIAS = "cyclone.dev/alias"
ANNOTATION_DESCRIPTION = "cyclone.dev/description"
ANNOTATION_STAGE_EXECUTION_RESULTS = "stage.cyclone.dev/execution-results"
ANNOTATION_WORKFLOWRUN_TRIGGER = "workflowrun.cyclone.dev/trigger"
ANNOTATION_SCM_EVENT = "workflowrun.cyclone.dev/scm-event"
ANNOTATION_STARTED_BY = "workflowrun.cyclone.dev/started-by"
"""Who started a run by hand and through what (`the admin via the web UI`, `token ci of
tenant acme via the CLI`): written by the server from the caller's token, never taken from
the body."""
ANNOTATION_STAGE_SPECS = "workflowrun.cyclone.dev/stage-specs"
"""The specs of the workflow's stages when the run was started (JSON by stage name), so a
later run can show what changed; written by the run start, never taken from the caller."""
FINALIZER_RUN_CLEANUP = "cyclone.dev/workflowrun-cleanup"
"""On a WorkflowRun: holds its deletion until the engine has removed its pods and data. A
run started through Cyclone is created with it; the engine adds it to one that is not."""
ANNOTATION_META_NAMESPACE = "cyclone.dev/meta-namespace"
ANNOTATION_WORKFLOWRUN_UID = "workflowrun.cyclone.dev/uid"
"""On a stage pod: the uid of its run, so what the pod leaves (its stored logs) belongs to
that run and not to a later run of the same name."""
ANNOTATION_TENANT_INFO = "tenant.cyclone.dev/info"
ANNOTATION_STORAGE_USAGE = "tenant.cyclone.dev/storage-usage"
"""On a tenant Namespace: the PVC watchdog's last report `{total, used, items, reportedAt}`."""
ANNOTATION_LOGS_COLLECTED = "stage.cyclone.dev/logs-collected"
"""Set on a finished stage pod once the server has stored all of its logs; GC waits for it
(up to `gc_log_wait_seconds`) before deleting the pod."""
ANNOTATION_STOP_REASON = "workflowrun.cyclone.dev/stop-reason"
"""Why `spec.stopped` was set (a CamelCase reason); the engine ends the run with it."""
ANNOTATION_STOP_MESSAGE = "workflowrun.cyclone.dev/stop-message"
"""The message the run ends with when `spec.stopped` was set by Cyclone itself."""
ANNOTATION_STOP_FORCE = "workflowrun.cyclone.dev/stop-force"
"""`"true"` when a stop asks for the immediate kill: the engine deletes the run's pods with
no grace period instead of their own `terminationGracePeriodSeconds`."""
ANNOTATION_DELEGATION_RESULT_PREFIX = "result.delegation.cyclone.dev/"
"""Followed by a stage name: the signed result an outside system reported for that
delegation stage, recorded by the server for the engine to take."""

CONTROL_CLUSTER_NAME = "cyclone-control-cluster"
DEFAULT_TENANT = "system"
TENANT_NAMESPACE_PREFIX = "cyclone-"


def tenant_namespace(tenant: str) -> str:
    """The metadata namespace that holds a tenant's Cyclone objects."""
    return f"{TENANT_NAMESPACE_PREFIX}{tenant}"


SYSTEM_NAMESPACE = tenant_namespace(DEFAULT_TENANT)
"""The `system` tenant's namespace: the built-in templates and resource types."""

ENGINE_NAMESPACE = "cyclone"
"""Where the engine keeps its key Secret (the default of the engine's `system_namespace`
and the server's `--engine-key-namespace`). It is never a tenant's: tenant namespaces are
`cyclone-{tenant}`, so no `${secrets}` reference of a run and no tenant pod reaches it."""

LEGACY_ENGINE_KEY_NAMESPACE = SYSTEM_NAMESPACE
"""Where older versions kept the engine key, readable by the `system` tenant."""


def is_tenant_namespace(namespace: str) -> bool:
    """Whether `namespace` is, or may become, a tenant's metadata or workload namespace in
    the control cluster."""
    return namespace.startswith(TENANT_NAMESPACE_PREFIX)


def tenant_pvc_name(tenant: str) -> str:
    return f"cyclone-pvc-{tenant}"
