"""The server-wide settings Cyclone v1.2 had, read from options and applied (pure, no I/O).

- `open_control_cluster`: a new tenant gets the control cluster opened for it, in its own
  metadata namespace, through a Cluster integration named `CONTROL_CLUSTER_INTEGRATION`.
- Tenant defaults: the PVC size and StorageClass, and the ResourceQuota, of a tenant created
  without them (`TenantDefaults.apply`).
- Notification endpoints: every finished run is POSTed to each (`parse_endpoints`); the
  engine sends them (`cyclone.engine.config.EngineConfig.notification_endpoints`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from cyclone.api import keys
from cyclone.api.tenant import DEFAULT_PVC_SIZE, PVC_SIZE_PATTERN, TenantPVC, TenantSpec
from cyclone.engine.core.gcpod import DEFAULT_GC_IMAGE
from cyclone.engine.core.weburl import effective_template

CONTROL_CLUSTER_INTEGRATION = keys.CONTROL_CLUSTER_NAME
"""The Cluster integration through which a new tenant's control cluster is opened."""
ENDPOINT_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$")


def control_cluster_integration(tenant: str) -> dict:
    """The API body of the integration that opens the control cluster for `tenant`, in its
    metadata namespace (where its runs go without an execution context of their own)."""
    return {"metadata": {"name": CONTROL_CLUSTER_INTEGRATION},
            "spec": {"type": "Cluster", "cluster": {
                "isControlCluster": True, "namespace": keys.tenant_namespace(tenant)}}}


def no_cluster_problem(tenant: str, is_tenant_record: bool, opened_anywhere: bool,
                       runs_at_home: bool) -> str | None:
    """Why a run of `tenant` cannot start: it would run at its home, in the control cluster,
    but the tenant opened no cluster there or anywhere (so no PVC was made for it, and its
    pods would wait for one for ever). The default tenant has its home PVC; a namespace that
    is not a tenant's record is not judged."""
    if not runs_at_home or opened_anywhere or not is_tenant_record or \
            tenant == keys.DEFAULT_TENANT:
        return None
    return (f"tenant {tenant!r} has opened no cluster to run in: open a Cluster integration "
            f"first (`cyclone integration open-cluster <name>`, or PUT "
            f"/apis/v1alpha1/integrations/<name>/opencluster); a server started with "
            f"--open-control-cluster opens the control cluster for each new tenant")


def parse_quota(text: str, parse_quantity: Callable[[str], float]) -> dict[str, str]:
    """``cpu=1,memory=2Gi`` as a ResourceQuota's ``hard`` map; "" is no quota. ValueError
    names the entry that is not ``resource=quantity`` (`parse_quantity` reads a quantity,
    raising ValueError for what is not one)."""
    quota: dict[str, str] = {}
    for entry in (e.strip() for e in text.split(",")):
        if not entry:
            continue
        name, sep, value = (s.strip() for s in entry.partition("="))
        if not sep or not name or not value:
            raise ValueError(f"default quota entry {entry!r} is not resource=quantity")
        try:
            amount = parse_quantity(value)
        except ValueError:
            raise ValueError(f"default quota {name}: invalid quantity {value!r}") from None
        if amount < 0:
            raise ValueError(f"default quota {name}: negative quantity {value!r}")
        quota[name] = value
    return quota


def parse_endpoints(values: Iterable[str]) -> list[dict[str, str]]:
    """``NAME=URL`` values (each may list several, comma-separated) as ``[{name, url}]``.
    ValueError for a malformed entry, a URL that is not http(s), or a name given twice."""
    endpoints: list[dict[str, str]] = []
    for value in values:
        for entry in (e.strip() for e in value.split(",")):
            if not entry:
                continue
            name, sep, url = (s.strip() for s in entry.partition("="))
            if not sep or not ENDPOINT_NAME.match(name):
                raise ValueError(f"notification endpoint {entry!r} is not NAME=URL (a name "
                                 "of letters, digits, '.', '_' or '-')")
            endpoints.append({"name": name, "url": check_endpoint_url(name, url)})
    check_unique([e["name"] for e in endpoints])
    return endpoints


def check_endpoint_url(name: str, url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"notification endpoint {name}: {url!r} is not an http(s) URL")
    return url


def check_unique(names: list[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"notification endpoint {name!r} is given twice")
        seen.add(name)


def check_pvc_size(size: str) -> str:
    if not re.match(PVC_SIZE_PATTERN, size):
        raise ValueError(f"default PVC size {size!r} is not a quantity such as 10Gi")
    return size


@dataclass(frozen=True)
class TenantDefaults:
    """What a tenant created without a PVC or a quota gets."""

    pvc_size: str = DEFAULT_PVC_SIZE
    storage_class: str = ""
    quota: dict[str, str] = field(default_factory=dict)

    def apply(self, spec: TenantSpec, given: set[str], pvc_given: set[str]) -> TenantSpec:
        """`spec` with the defaults where the request gave no value: `given` are the spec
        fields the request set, `pvc_given` the fields of its persistentVolumeClaim."""
        pvc = spec.persistent_volume_claim
        update: dict = {}
        if "persistent_volume_claim" not in given or not pvc_given >= {"size",
                                                                        "storage_class"}:
            update["persistent_volume_claim"] = TenantPVC(
                size=pvc.size if "size" in pvc_given else self.pvc_size,
                storage_class=(pvc.storage_class if "storage_class" in pvc_given
                               else self.storage_class))
        if "resource_quota" not in given:
            update["resource_quota"] = dict(self.quota)
        return spec.model_copy(update=update) if update else spec


@dataclass(frozen=True)
class ServerSettings:
    """The server's v1.2 settings. The defaults here are those of `create_app` alone (no
    tenant gets a cluster opened for it); `cyclone server` and `cyclone up` open the control
    cluster for new tenants unless told not to."""

    open_control_cluster: bool = False
    tenant_defaults: TenantDefaults = field(default_factory=TenantDefaults)
    web_url_template: str | None = None
    """The link of a run (`cyclone.engine.core.weburl`); None: the UI's run page."""
    notification_endpoints: tuple[str, ...] = ()
    """The names of the engine's notification endpoints, where the server knows them."""
    gc_image: str = DEFAULT_GC_IMAGE
    """The engine's ``gc_image``, which the cache cleaning pods and the PVC watchdog pods the
    server starts use too (`cyclone up` passes the engine's; `cyclone server --gc-image`)."""
    gc_resources: dict | None = None
    """The engine's ``gc_resources`` where the server knows them (`cyclone up`)."""

    def shown(self, server_url: str) -> dict:
        """What an admin sees of them: nothing secret (endpoint URLs may hold a token)."""
        return {
            "openControlCluster": self.open_control_cluster,
            "defaultPersistentVolumeClaim": {"size": self.tenant_defaults.pvc_size,
                                             "storageClass": self.tenant_defaults.storage_class},
            "defaultResourceQuota": dict(self.tenant_defaults.quota),
            "webURLTemplate": effective_template(self.web_url_template, server_url),
            "notificationEndpoints": list(self.notification_endpoints),
        }
