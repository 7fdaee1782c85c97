"""A local-path volume provisioner for single-node clusters without one.

A real control plane leaves a PersistentVolumeClaim Pending until some provisioner gives it
a volume, and the scheduler will not place a pod whose claim is unbound. This controller
creates, for each pending claim without a volume, a hostPath PersistentVolume pre-bound to
the claim (`claimRef`) at ``{volumes_dir}/pvc/{namespace}/{claim}-{uid}``. The provisioner
makes that directory itself, writable by every uid (mode 0777, as other local-path
provisioners do), because a hostPath volume ignores the pod's fsGroup: a pod running as a
non-root user (the server, uid 10001; a stage of any uid) could not write to a directory the
kubelet made for root. The directories above it (``pvc``, ``pvc/{namespace}``) are 0700, its
owner's (root's under the chart): no other user of the node enters them, while a pod still
reaches its own claim's directory through the kubelet's bind mount. Where the provisioner
cannot write under `volumes_dir` the volume is still made (type DirectoryOrCreate: the
kubelet then makes a directory only root may write to). The PersistentVolume controller
completes the binding. When a claim goes away its volume object is deleted (reclaim policy
Retain, so the data directory is left to whoever owns it). The claim's uid in the path keeps
that old data from a claim made again under the same namespace and name (a tenant deleted
and created anew, perhaps by someone else): it gets a directory of its own. With the node
agent, volumes follow the agent's own layout (`NodeLayout.pvc_dir`), which it mounts by
namespace and name.

It serves claims of no storage class (what a tenant's PVC asks for unless the tenant or
the server's default names one, on a cluster without a default StorageClass) and of the
class `STORAGE_CLASS`; no StorageClass object is needed for either. Its volumes are
directories of the one machine they are made on: with the node agent, the agent's
``{data_dir}/volumes`` with node affinity to the agent's Node; with a kubelet on the
machine `cyclone up` runs on, any directory of that machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from pathlib import Path

from cyclone.kube import kinds
from cyclone.kube.controller import Controller
from cyclone.kube.errors import AlreadyExists, NotFound
from cyclone.kube.informer import Informer, object_key, split_key
from cyclone.kube.protocol import Cluster
from cyclone.node.layout import NodeLayout

log = logging.getLogger(__name__)

PROVISIONER_NAME = "cyclone.dev/local-path"
PROVISIONED_BY_LABEL = "pv.cyclone.dev/provisioned-by"
PROVISIONED_BY_VALUE = "local-path"
HOSTNAME_LABEL = "kubernetes.io/hostname"
STORAGE_CLASS = "cyclone-local-path"
SERVED_STORAGE_CLASSES = frozenset({"", STORAGE_CLASS})
VOLUME_DIR_MODE = 0o777
PARENT_DIR_MODE = 0o700


def claim_dir(volumes_dir: Path, namespace: str, claim: str, uid: str) -> Path:
    """Where a claim's volume lives under a volumes directory: one directory per claim
    object, so a claim re-created with the same name never sees the old one's data."""
    return volumes_dir / "pvc" / namespace / f"{claim}-{uid}"


def make_claim_dir(volumes_dir: Path, namespace: str, claim: str, uid: str) -> Path:
    """Make a claim's directory under `volumes_dir`, writable by every uid, in parents only
    the provisioner's user may enter (see the module's docstring); returns it. The modes of
    the claim's directory and of its two parents are set explicitly (not left to the umask),
    also when they were already there; an existing `volumes_dir` keeps its mode."""
    directory = claim_dir(volumes_dir, namespace, claim, uid)
    volumes_dir.mkdir(mode=PARENT_DIR_MODE, parents=True, exist_ok=True)
    for parent in (volumes_dir / "pvc", directory.parent):
        parent.mkdir(mode=PARENT_DIR_MODE, exist_ok=True)
        os.chmod(parent, PARENT_DIR_MODE)
    directory.mkdir(exist_ok=True)
    os.chmod(directory, VOLUME_DIR_MODE)
    return directory


def volume_name(claim: dict) -> str:
    """The PersistentVolume name for a claim (as dynamic provisioners name them)."""
    return f"pvc-{claim['metadata']['uid']}"


def wants_volume(claim: dict, storage_classes: frozenset[str]) -> bool:
    """Whether a claim is pending, has no volume, and asks for a class this provisioner serves."""
    meta = claim.get("metadata") or {}
    spec = claim.get("spec") or {}
    if meta.get("deletionTimestamp") or spec.get("volumeName"):
        return False
    if (claim.get("status") or {}).get("phase", "Pending") != "Pending":
        return False
    return (spec.get("storageClassName") or "") in storage_classes


def volume_for_claim(claim: dict, where: NodeLayout | Path, node_name: str | None = None) -> dict:
    """The hostPath PersistentVolume pre-bound to `claim`: under a volumes directory, or
    where a node agent of that layout mounts the claim."""
    meta = claim["metadata"]
    spec = claim.get("spec") or {}
    storage = ((spec.get("resources") or {}).get("requests") or {}).get("storage") or "1Gi"
    volume_spec: dict = {
        "capacity": {"storage": storage},
        "accessModes": spec.get("accessModes") or ["ReadWriteOnce"],
        "persistentVolumeReclaimPolicy": "Retain",
        "storageClassName": spec.get("storageClassName") or "",
        "volumeMode": spec.get("volumeMode") or "Filesystem",
        "hostPath": {
            "path": str(where.pvc_dir(meta["namespace"], meta["name"])
                        if isinstance(where, NodeLayout)
                        else claim_dir(where, meta["namespace"], meta["name"], meta["uid"])),
            "type": "DirectoryOrCreate",
        },
        "claimRef": {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "namespace": meta["namespace"],
            "name": meta["name"],
            "uid": meta["uid"],
        },
    }
    if node_name:
        volume_spec["nodeAffinity"] = {"required": {"nodeSelectorTerms": [{
            "matchExpressions": [
                {"key": HOSTNAME_LABEL, "operator": "In", "values": [node_name]}
            ],
        }]}}
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {
            "name": volume_name(claim),
            "labels": {PROVISIONED_BY_LABEL: PROVISIONED_BY_VALUE},
            "annotations": {"pv.kubernetes.io/provisioned-by": PROVISIONER_NAME},
        },
        "spec": volume_spec,
    }


def _claim_key_of_volume(volume: dict) -> str | None:
    ref = (volume.get("spec") or {}).get("claimRef") or {}
    if not ref.get("name") or not ref.get("namespace"):
        return None
    return f"{ref['namespace']}/{ref['name']}"


class LocalPathProvisioner:
    """Gives pending claims hostPath volumes; removes volumes of gone claims.

    The volumes are under `volumes_dir`, or where the node agent with data dir `data_dir`
    mounts claims (give one of the two). With `node_name`, volumes carry node affinity to
    that node (the `kubernetes.io/hostname` label), so pods using them are only scheduled
    where the directory is.
    """

    def __init__(
        self,
        cluster: Cluster,
        data_dir: Path | None = None,
        *,
        volumes_dir: Path | None = None,
        node_name: str | None = None,
        storage_classes: frozenset[str] = SERVED_STORAGE_CLASSES,
        workers: int = 2,
    ) -> None:
        if (data_dir is None) == (volumes_dir is None):
            raise ValueError("give the node agent's data_dir or a volumes_dir, not both")
        self.cluster = cluster
        self.where: NodeLayout | Path = (
            NodeLayout(Path(data_dir)) if data_dir is not None else Path(volumes_dir))
        self.node_name = node_name
        self.storage_classes = storage_classes
        self.claims = Informer(cluster, kinds.PERSISTENT_VOLUME_CLAIM)
        self.volumes = Informer(
            cluster, kinds.PERSISTENT_VOLUME,
            label_selector=f"{PROVISIONED_BY_LABEL}={PROVISIONED_BY_VALUE}",
        )
        self.controller = Controller("local-path-provisioner", self.reconcile, workers=workers)
        self.controller.enqueue_on(self.claims, object_key)
        self.controller.enqueue_on(self.volumes, _claim_key_of_volume)

    async def run(self) -> None:
        """Provision until cancelled."""
        async with asyncio.TaskGroup() as group:
            group.create_task(self.claims.run())
            group.create_task(self.volumes.run())
            await self.claims.wait_synced()
            await self.volumes.wait_synced()
            group.create_task(self.controller.run())

    async def reconcile(self, key: str) -> None:
        namespace, name = split_key(key)
        claim = self.claims.get(namespace, name)
        claim_uid = (claim or {}).get("metadata", {}).get("uid")
        ours = [v for v in self.volumes.list() if _claim_key_of_volume(v) == key]
        for volume in ours:
            if volume["spec"]["claimRef"].get("uid") != claim_uid:
                log.info("deleting volume %s of vanished claim %s", volume["metadata"]["name"], key)
                with contextlib.suppress(NotFound):
                    await self.cluster.delete(kinds.PERSISTENT_VOLUME, volume["metadata"]["name"])
        if claim is None or not wants_volume(claim, self.storage_classes):
            return
        if any(v["spec"]["claimRef"].get("uid") == claim_uid for v in ours):
            return
        volume = volume_for_claim(claim, self.where, self.node_name)
        if isinstance(self.where, Path):
            meta = claim["metadata"]
            try:
                make_claim_dir(self.where, meta["namespace"], meta["name"], meta["uid"])
            except OSError as exc:
                log.warning("could not make the directory of claim %s (%s); the kubelet will "
                            "make one only root may write to", key, exc)
        log.info("provisioning %s for claim %s", volume["metadata"]["name"], key)
        with contextlib.suppress(AlreadyExists):
            await self.cluster.create(volume)
