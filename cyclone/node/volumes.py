"""Pod volumes as host directories, and the binds each container gets.

PVC → one directory per claim; emptyDir → a directory per pod; hostPath as given; Secret,
ConfigMap and projected volumes → files written into a per-pod directory.

What the agent makes for a pod (all but hostPath) is given to the runtime's sandbox owner
(`owner`), so that an unprivileged container can write its volumes. subPaths are walked
without following symlinks: a container can plant symlinks in its volumes, and the agent,
which runs as root, must never create, chown or bind anything outside the volume for it.
"""

from __future__ import annotations

import base64
import errno
import os
import posixpath
import stat
from dataclasses import dataclass, field
from pathlib import Path

from cyclone.kube.errors import NotFound
from cyclone.node.env import ContainerConfigError, ObjectFetcher, expand
from cyclone.node.layout import NodeLayout

DEFAULT_FILE_MODE = 0o644
DEFAULT_TERMINATION_MESSAGE_PATH = "/dev/termination-log"


@dataclass(frozen=True)
class Bind:
    """A host path made visible at `target` inside a container."""

    source: Path
    target: str
    read_only: bool = False
    within: Path | None = None
    """For a subPath mount: the volume directory `source` lies in, which the runtime opens it
    through without following symlinks (a container may swap a directory for one)."""


@dataclass
class PodVolume:
    name: str
    host_path: Path
    files: dict[str, tuple[bytes, int]] | None = None
    """For Secret/ConfigMap/projected volumes: relative path → (content, mode)."""
    is_file: bool = False
    managed: bool = True
    """Made by the agent (not a hostPath): owned by the sandbox user."""


@dataclass
class ContainerMounts:
    binds: list[Bind] = field(default_factory=list)
    termination_message_host_path: Path | None = None
    sub_paths: list[tuple[Path, str, bool]] = field(default_factory=list)
    """(volume directory, subPath, agent-made volume) of each subPath mount."""


def _decoded(obj: dict, kind: str) -> dict[str, bytes]:
    if kind == "secret":
        data = {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
        data.update({k: v.encode() for k, v in (obj.get("stringData") or {}).items()})
        return data
    data = {k: v.encode() for k, v in (obj.get("data") or {}).items()}
    data.update({k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()})
    return data


def _project(
    data: dict[str, bytes], items: list[dict] | None, default_mode: int, what: str
) -> dict[str, tuple[bytes, int]]:
    if not items:
        return {key: (value, default_mode) for key, value in data.items()}
    files: dict[str, tuple[bytes, int]] = {}
    for item in items:
        if item["key"] not in data:
            raise ContainerConfigError(f"{what}: key {item['key']!r} not found")
        files[item["path"]] = (data[item["key"]], int(item.get("mode", default_mode)))
    return files


async def _source_files(
    kind: str,
    source: dict,
    namespace: str,
    fetch: ObjectFetcher,
    default_mode: int,
    *,
    lenient: bool = False,
) -> dict[str, tuple[bytes, int]]:
    name = source.get("secretName") or source.get("name") or ""
    try:
        obj = await fetch(namespace, name)
    except NotFound:
        if source.get("optional") or lenient:
            return {}
        raise ContainerConfigError(f'{kind} "{name}" not found') from None
    return _project(_decoded(obj, kind), source.get("items"), default_mode, f"{kind} {name}")


async def resolve_pod_volumes(
    pod: dict,
    layout: NodeLayout,
    *,
    fetch_secret: ObjectFetcher,
    fetch_config_map: ObjectFetcher,
) -> dict[str, PodVolume]:
    """Where each volume of the pod lives on this host, and the files it must hold."""
    meta = pod["metadata"]
    uid, namespace = meta["uid"], meta["namespace"]
    volumes: dict[str, PodVolume] = {}
    for volume in (pod.get("spec") or {}).get("volumes") or []:
        name = volume["name"]
        if "persistentVolumeClaim" in volume:
            claim = volume["persistentVolumeClaim"]["claimName"]
            volumes[name] = PodVolume(name, layout.pvc_dir(namespace, claim))
        elif "emptyDir" in volume:
            volumes[name] = PodVolume(name, layout.pod_volume_dir(uid, "empty-dir", name))
        elif "hostPath" in volume:
            host = volume["hostPath"]
            path = Path(host["path"])
            is_file = host.get("type") in ("File", "FileOrCreate", "Socket", "CharDevice",
                                           "BlockDevice")
            volumes[name] = PodVolume(name, path, is_file=is_file, managed=False)
        elif "secret" in volume:
            source = volume["secret"]
            mode = int(source.get("defaultMode", DEFAULT_FILE_MODE))
            files = await _source_files("secret", source, namespace, fetch_secret, mode)
            volumes[name] = PodVolume(name, layout.pod_volume_dir(uid, "secret", name), files)
        elif "configMap" in volume:
            source = volume["configMap"]
            mode = int(source.get("defaultMode", DEFAULT_FILE_MODE))
            files = await _source_files("configmap", source, namespace, fetch_config_map, mode)
            volumes[name] = PodVolume(name, layout.pod_volume_dir(uid, "config-map", name), files)
        elif "projected" in volume:
            files = await _projected_files(
                volume["projected"], namespace, fetch_secret, fetch_config_map
            )
            volumes[name] = PodVolume(name, layout.pod_volume_dir(uid, "projected", name), files)
        else:
            raise ContainerConfigError(f"volume {name!r}: unsupported volume type")
    return volumes


async def _projected_files(
    projected: dict, namespace: str, fetch_secret: ObjectFetcher, fetch_config_map: ObjectFetcher
) -> dict[str, tuple[bytes, int]]:
    """Secret and ConfigMap sources of a projected volume.

    Service account tokens and downward API sources are left out: the node agent has no
    token issuer; missing sources are skipped so that the `kube-api-access-*` volume a real
    API server injects never blocks a pod.
    """
    mode = int(projected.get("defaultMode", DEFAULT_FILE_MODE))
    files: dict[str, tuple[bytes, int]] = {}
    for source in projected.get("sources") or []:
        if "secret" in source:
            files.update(
                await _source_files(
                    "secret", source["secret"], namespace, fetch_secret, mode, lenient=True
                )
            )
        elif "configMap" in source:
            files.update(
                await _source_files(
                    "configmap", source["configMap"], namespace, fetch_config_map, mode,
                    lenient=True,
                )
            )
    return files


Owner = tuple[int, int]
"""(uid, gid) on the host."""


def _chown(path: Path, owner: Owner | None) -> None:
    if owner is not None:
        os.chown(path, *owner, follow_symlinks=False)


def write_pod_volumes(volumes: dict[str, PodVolume], owner: Owner | None = None) -> None:
    """Create the volume directories and (re)write Secret/ConfigMap files.

    The directories and files of agent-made volumes are given to `owner`; the files written
    here keep their mode (a Secret's `defaultMode` applies to its owner, the container).
    """
    for volume in volumes.values():
        if volume.is_file or volume.host_path.is_file():
            if not volume.host_path.exists():
                volume.host_path.parent.mkdir(parents=True, exist_ok=True)
                volume.host_path.touch()
            continue
        volume.host_path.mkdir(parents=True, exist_ok=True)
        if not volume.managed:
            continue
        _chown(volume.host_path, owner)
        for relative, (content, mode) in (volume.files or {}).items():
            target = volume.host_path / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            for directory in target.relative_to(volume.host_path).parents:
                _chown(volume.host_path / directory, owner)
            tmp = target.with_name(f".{target.name}.tmp")
            tmp.write_bytes(content)
            os.chmod(tmp, mode)
            _chown(tmp, owner)
            os.replace(tmp, target)


def _covers(mount_path: str, path: str) -> bool:
    mount_path = posixpath.normpath(mount_path)
    return path == mount_path or path.startswith(mount_path.rstrip("/") + "/")


def container_mounts(
    container: dict,
    volumes: dict[str, PodVolume],
    env: dict[str, str],
    private_termination_file: Path,
) -> ContainerMounts:
    """The binds of a container, its subPaths resolved, and where its termination message is.

    `terminationMessagePath` is looked up through the volume mounts (the deepest mount that
    covers it wins); when no mount covers it, `private_termination_file` is bound there.
    """
    mounts = ContainerMounts()
    for mount in container.get("volumeMounts") or []:
        volume = volumes.get(mount["name"])
        if volume is None:
            raise ContainerConfigError(f"volumeMount {mount['name']!r}: no such volume")
        source = volume.host_path
        sub_path = mount.get("subPath") or expand(mount.get("subPathExpr") or "", env)
        if sub_path:
            if posixpath.isabs(sub_path) or ".." in Path(sub_path).parts:
                raise ContainerConfigError(f"subPath {sub_path!r} must be a relative path")
            source = source / sub_path
            mounts.sub_paths.append((volume.host_path, sub_path, volume.managed))
        within = volume.host_path if sub_path and volume.managed else None
        mounts.binds.append(
            Bind(source, mount["mountPath"], bool(mount.get("readOnly")), within)
        )
    mounts.binds.sort(key=lambda bind: posixpath.normpath(bind.target).count("/"))
    path = posixpath.normpath(
        container.get("terminationMessagePath") or DEFAULT_TERMINATION_MESSAGE_PATH
    )
    for bind in reversed(mounts.binds):
        if _covers(bind.target, path):
            relative = posixpath.relpath(path, posixpath.normpath(bind.target))
            mounts.termination_message_host_path = (
                bind.source if relative == "." else bind.source / relative
            )
            break
    else:
        mounts.termination_message_host_path = private_termination_file
        mounts.binds.append(Bind(private_termination_file, path))
    return mounts


def prepare_sub_paths(mounts: ContainerMounts, owner: Owner | None = None) -> None:
    """Create subPath directories that do not exist yet, as the kubelet does.

    Each is walked from its volume one component at a time without following symlinks (a
    symlink on the way is refused); in agent-made volumes every directory on the way is
    given to `owner`.
    """
    for root, sub_path, managed in mounts.sub_paths:
        _walk_sub_path(root, sub_path, owner if managed else None)


def _walk_sub_path(root: Path, sub_path: str, owner: Owner | None) -> None:
    root.mkdir(parents=True, exist_ok=True)
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(root, flags)
    try:
        for part in Path(sub_path).parts:
            if part in ("", "."):
                continue
            try:
                os.mkdir(part, 0o755, dir_fd=fd)
            except FileExistsError:
                pass
            try:
                child = os.open(part, flags, dir_fd=fd)
            except OSError:
                if stat.S_ISREG(os.stat(part, dir_fd=fd, follow_symlinks=False).st_mode):
                    return
                raise ContainerConfigError(
                    f"subPath {sub_path!r}: {part!r} is a symlink or not a directory"
                ) from None
            os.close(fd)
            fd = child
            if owner is not None:
                os.fchown(fd, *owner)
    finally:
        os.close(fd)


def open_beneath(root: Path, path: Path) -> int:
    """An `O_PATH` descriptor of `path`, opened from `root` one component at a time without
    following symlinks; OSError (ELOOP, ENOTDIR…) when the way is not plain directories."""
    relative = path.relative_to(root)
    fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        for part in relative.parts:
            child = os.open(part, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
            os.close(fd)
            fd = child
            if stat.S_ISLNK(os.fstat(fd).st_mode):
                raise OSError(errno.ELOOP, "a symlink on the way", str(path))
    except BaseException:
        os.close(fd)
        raise
    return fd
