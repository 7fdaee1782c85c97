"""`cyclone up`: the composition root that runs Cyclone in one process.

Embedded (the default): an `EmbeddedCluster` at ``{data_dir}/cluster.db``, a node agent
that runs pods on this machine (host runtime, resolver scripts bound as the resolver
images' ``/entrypoint.sh``) and the engine. With ``--kubeconfig`` the same engine runs
against a real API server (and a node agent only with ``--node-agent``; its log server, from
which the API server reads pod logs, only with ``--log-client-ca-file``, as it answers
nobody but holders of a client certificate signed by that CA).

Every piece keeps its state in the cluster or under the data dir, so a process killed at
any instant is continued by the next ``cyclone up`` on the same data dir. One process at a
time: `up` holds an exclusive lock on ``{data_dir}/up.lock`` (see `DataDirLock`). The REST
server plugs in through the ``serve`` hook of `up` (see `ServeHook`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import fcntl
import json
import logging
import os
import signal
import socket
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from cyclone.api import keys
from cyclone.api.tenant import DEFAULT_PVC_SIZE, TenantSpec
from cyclone.components import (
    DEFAULT_ARTIFACT_RETENTION_DAYS,
    DEFAULT_MAX_ARTIFACT_BYTES,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_WEBHOOK_BYTES,
    NOBODY,
    ComponentError,
    engine_overrides,
    server_settings,
)
from cyclone.engine.config import EngineConfig
from cyclone.engine.core.provisioning import pvc_object
from cyclone.engine.core.serversettings import ServerSettings, TenantDefaults
from cyclone.engine.core.weburl import default_template
from cyclone.engine.manager import Engine
from cyclone.kube import kinds
from cyclone.kube.errors import AlreadyExists, Invalid
from cyclone.kube.protocol import Cluster

log = logging.getLogger("cyclone.up")

ENGINE_CONFIG_FILE = "engine.json"
LOCK_FILE = "up.lock"


@dataclass
class UpOptions:
    data_dir: str = "./.cyclone"
    port: int = 7099
    host: str = "127.0.0.1"
    runtime: str = "host"
    kubeconfig: str | None = None
    node_agent: bool = False
    log_client_ca_file: str | None = None
    """With a kubeconfig and a node agent: the CA of the API server's kubelet client
    certificate. Without it the node agent serves no logs to the API server."""
    artifact_retention_days: float = DEFAULT_ARTIFACT_RETENTION_DAYS
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_artifact_bytes: int = DEFAULT_MAX_ARTIFACT_BYTES
    max_webhook_bytes: int = DEFAULT_MAX_WEBHOOK_BYTES
    sandbox_uid: int = NOBODY
    sandbox_gid: int = NOBODY
    """Host ids of the host runtime's sandboxes."""
    log_level: str = "info"
    log_format: str = "text"
    set_context: bool = False
    """Make this instance's CLI context current even when another one is."""
    open_control_cluster: bool = True
    default_pvc_size: str = DEFAULT_PVC_SIZE
    default_storage_class: str = ""
    default_quota: str = ""
    web_url_template: str | None = None
    notification_endpoints: tuple[str, ...] = ()
    """``NAME=URL`` values; they replace engine.json's notification_endpoints."""
    pod_pending_timeout: float | None = None
    """Overrides engine.json's pod_pending_timeout_seconds when given."""
    local_path_provisioner: bool | None = None
    """Run the local-path provisioner (`cyclone.node.provisioner`); None: only with
    --kubeconfig and --node-agent."""
    local_path_dir: str | None = None
    """Where the provisioner's volumes are, without a node agent (default
    ``{data_dir}/volumes``)."""


@dataclass
class UpContext:
    """What a server started by `cyclone up` is given."""

    options: UpOptions
    data_dir: Path
    cluster: Cluster
    engine: Engine
    listener: socket.socket | None = None
    """The API's socket, bound and listening before anything else starts."""


ServeHook = Callable[[UpContext], Awaitable[None]]
"""Serves the REST API until cancelled (e.g. ``create_app`` + uvicorn on host:port)."""


class UpError(Exception):
    """`cyclone up` cannot start; the message says why, for a person."""


def prepare_data_dir(options: UpOptions) -> Path:
    data_dir = Path(options.data_dir).expanduser().resolve()
    try:
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        if data_dir.stat().st_mode & 0o777 != 0o700:
            data_dir.chmod(0o700)  # it holds the cluster file, the admin token and every log
        if not os.access(data_dir, os.W_OK | os.X_OK):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))
    except OSError as exc:
        raise UpError(f"cannot use the data dir {data_dir}: {exc.strerror or exc}") from None
    return data_dir


class DataDirLock:
    """An exclusive `flock` on ``{data_dir}/up.lock`` for the life of the process.

    Two `cyclone up` on one data dir would run two engines and two node agents on one
    cluster file. The holder writes its PID into the file so that the refused one can name
    it; the kernel drops the lock when the holder dies, so a crash leaves nothing stale.
    """

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise UpError(f"cannot open the lock file {self.path}: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise UpError(f"cannot lock {self.path}: {exc.strerror}") from None
            who = f"PID {holder}" if holder.isdigit() else "another process"
            raise UpError(f"the data dir {self.path.parent} is in use by another cyclone up "
                          f"({who}); stop it first or give another --data-dir") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> DataDirLock:
        self.acquire()
        return self

    def __exit__(self, *_: object) -> None:
        self.release()


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to host:port and listening, or `UpError` naming the port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise UpError(f"port {port} on {host or '*'} is already in use (another cyclone up?"
                          " give another --port)") from None
        raise UpError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


def local_url(host: str, port: int) -> str:
    """How a client on this machine reaches a server listening on `host`."""
    reachable = "127.0.0.1" if host in ("", "0.0.0.0", "::") else host
    if ":" in reachable and not reachable.startswith("["):
        reachable = f"[{reachable}]"
    return f"http://{reachable}:{port}"


def engine_config(data_dir: Path, options: UpOptions) -> EngineConfig:
    """Defaults for this process, overridden by ``{data_dir}/engine.json`` when present,
    and that by the options given (web URL template, notification endpoints). The link of a
    run defaults to the UI's run page at the address the banner shows."""
    values: dict = {"callback_base_url": f"http://{options.host}:{options.port}",
                    "web_url_template": default_template(local_url(options.host, options.port))}
    path = data_dir / ENGINE_CONFIG_FILE
    if path.exists():
        try:
            loaded = json.loads(path.read_text())
        except OSError as exc:
            raise UpError(f"cannot read {path}: {exc.strerror or exc}") from None
        except ValueError as exc:
            raise UpError(f"{path} is not valid JSON: {exc}") from None
        if not isinstance(loaded, dict):
            raise UpError(f"{path} must hold a JSON object of engine settings")
        values.update(loaded)
    try:
        values.update(engine_overrides(options.web_url_template, options.notification_endpoints,
                                       pod_pending_timeout=options.pod_pending_timeout))
    except ComponentError as exc:
        raise UpError(str(exc)) from None
    try:
        return EngineConfig.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or 'the file'}: {error['msg']}"
            for error in exc.errors())
        raise UpError(f"invalid engine configuration in {path}: {problems}") from None
    except ValueError as exc:
        raise UpError(f"invalid engine configuration in {path}: {exc}") from None


def up_server_settings(options: UpOptions, config: EngineConfig) -> ServerSettings:
    """The server's settings under `cyclone up`: its options, and the engine's link
    template and endpoint names, so the server and the engine make the same link, and its
    GC pod image and resources, which the server's cache cleaning pods take too."""
    try:
        settings = server_settings(options, tuple(e.name for e in config.notification_endpoints))
    except ComponentError as exc:
        raise UpError(str(exc)) from None
    return dataclasses.replace(settings, web_url_template=config.web_url_template,
                               gc_image=config.gc_image, gc_resources=config.gc_resources)


def default_tenant_namespace(defaults: TenantDefaults | None = None) -> dict:
    """``cyclone-system`` as `cyclone up` first creates it (its PVC and quota from the
    tenant `defaults`).

    On one machine the default tenant belongs to whoever runs `cyclone up`, so its SCM,
    notification and delegation URLs may point at this machine (``allowLocalAddresses``);
    every other tenant is refused such URLs unless an admin allows them.
    """
    from cyclone.server.tenant_records import tenant_namespace_object

    spec = (defaults or TenantDefaults()).apply(TenantSpec(allow_local_addresses=True),
                                                set(), set())
    return tenant_namespace_object(keys.DEFAULT_TENANT, spec)


async def ensure_default_tenant(cluster: Cluster, *, home_pvc: bool = False,
                                defaults: TenantDefaults | None = None) -> None:
    """The default tenant's record, its namespace ``cyclone-system``.

    Its home PVC ``cyclone-pvc-system`` is the provisioning controller's, which runs in the
    server; `home_pvc` creates it here for a `cyclone up` that runs no server.
    """
    with contextlib.suppress(AlreadyExists):
        await cluster.create(default_tenant_namespace(defaults))
    ns = await cluster.get(kinds.NAMESPACE, keys.SYSTEM_NAMESPACE)
    if home_pvc:
        from cyclone.server.tenant_records import spec_of_namespace

        with contextlib.suppress(AlreadyExists):
            await cluster.create(pvc_object(keys.DEFAULT_TENANT, keys.SYSTEM_NAMESPACE,
                                            spec_of_namespace(ns)))


def _runtime(name: str, data_dir: Path, options: UpOptions):
    from cyclone.components import ComponentError, node_runtime

    try:
        return node_runtime(name, hidden_paths=(data_dir,), sandbox_uid=options.sandbox_uid,
                            sandbox_gid=options.sandbox_gid, data_dir=data_dir)
    except ComponentError as exc:
        raise UpError(str(exc)) from exc


async def _open_cluster(options: UpOptions, data_dir: Path) -> Cluster:
    if options.kubeconfig:
        from cyclone.kube.remote import RemoteCluster

        try:
            return RemoteCluster.from_kubeconfig(options.kubeconfig)
        except (Invalid, OSError) as exc:
            reason = exc.message if isinstance(exc, Invalid) else exc.strerror or str(exc)
            if options.kubeconfig not in reason:
                reason = f"kubeconfig {options.kubeconfig}: {reason}"
            raise UpError(reason) from None
    from cyclone.kube.embedded import EmbeddedCluster

    cluster = EmbeddedCluster(data_dir / "cluster.db", name=keys.CONTROL_CLUSTER_NAME)
    await cluster.start()
    return cluster


def schedule_here(cluster: Cluster, node_name: str) -> None:
    """Pods created on the embedded cluster without a node are this node's from the start
    (the agent would bind each of them anyway; it still does for pods made elsewhere)."""
    from cyclone.kube.embedded import EmbeddedCluster

    if isinstance(cluster, EmbeddedCluster):
        cluster.schedule_on_create = node_name


def local_path_volumes(options: UpOptions) -> Path | None:
    """Where the local-path provisioner puts volumes when it runs without a node agent;
    None when it does not run or runs for the node agent (its own ``node/volumes``)."""
    data_dir = Path(options.data_dir).expanduser().resolve()
    wanted = options.local_path_provisioner
    if wanted and not options.kubeconfig:
        raise UpError("--local-path-provisioner is used only with --kubeconfig (the embedded "
                      "cluster needs no volumes)")
    if options.local_path_dir is not None:
        if not wanted:
            raise UpError("--local-path-dir is used only with --local-path-provisioner")
        if options.node_agent:
            raise UpError("--local-path-dir cannot be used with --node-agent: the node agent "
                          f"keeps claims under {data_dir / 'node' / 'volumes'}")
    if not wanted or options.node_agent:
        return None
    return Path(options.local_path_dir or data_dir / "volumes").expanduser().resolve()


def runs_local_path_provisioner(options: UpOptions) -> bool:
    """Whether `cyclone up` provisions claims: asked for, or by default for its node agent
    on a real API server."""
    if options.local_path_provisioner is not None:
        return options.local_path_provisioner
    return bool(options.kubeconfig and options.node_agent)


def log_client_ca(options: UpOptions) -> Path | None:
    """The node agent's log-server client CA, checked; None when no log server runs."""
    if options.log_client_ca_file is None:
        if options.kubeconfig and options.node_agent:
            log.warning("no --log-client-ca-file: the node agent serves no pod logs to the API "
                        "server (kubectl logs and run logs of its pods are unavailable)")
        return None
    if not (options.kubeconfig and options.node_agent):
        raise UpError("--log-client-ca-file is used only with --kubeconfig and --node-agent")
    from cyclone.node.log_server import LogServerError, check_client_ca

    path = Path(options.log_client_ca_file).expanduser().resolve()
    try:
        check_client_ca(path)
    except LogServerError as exc:
        raise UpError(str(exc)) from None
    return path


async def up(options: UpOptions, *, serve: ServeHook | None = None) -> None:
    """Run cluster, node agent, engine (and the server, through ``serve``) until cancelled.

    Everything that can be refused (the data dir and its lock, the configuration, the
    port) is checked before the cluster is opened, as one `UpError`.
    """
    local_path_volumes(options)
    client_ca = log_client_ca(options)
    data_dir = prepare_data_dir(options)
    with DataDirLock(data_dir), contextlib.ExitStack() as stack:
        config = engine_config(data_dir, options)
        up_server_settings(options, config)
        runtime = _runtime(options.runtime, data_dir, options)
        listener = None
        if serve is not None:
            listener = stack.enter_context(listen(options.host, options.port))
        await _run(options, data_dir, config, runtime, client_ca, listener, serve)


async def _run(options: UpOptions, data_dir: Path, config: EngineConfig, runtime,
               client_ca: Path | None, listener: socket.socket | None,
               serve: ServeHook | None) -> None:
    cluster = await _open_cluster(options, data_dir)
    try:
        await ensure_default_tenant(cluster, home_pvc=serve is None,
                                    defaults=up_server_settings(options, config).tenant_defaults)
        engine = Engine(cluster, config)
        node_name = socket.gethostname().lower() or "cyclone-node"
        async with asyncio.TaskGroup() as group:
            if runs_local_path_provisioner(options):
                from cyclone.node.provisioner import LocalPathProvisioner

                volumes = local_path_volumes(options)
                provisioner = (
                    LocalPathProvisioner(cluster, volumes_dir=volumes) if volumes is not None
                    else LocalPathProvisioner(cluster, data_dir / "node", node_name=node_name))
                group.create_task(provisioner.run(), name="local-path-provisioner")
            if options.kubeconfig is None or options.node_agent:
                from cyclone.node.agent import NodeAgent

                agent = NodeAgent(
                    cluster,
                    node_name=node_name,
                    data_dir=data_dir / "node",
                    runtime=runtime,
                    schedule_unbound=options.kubeconfig is None,
                    log_server_port=0 if client_ca else None,
                    log_client_ca=client_ca,
                )
                if agent.schedule_unbound:
                    schedule_here(cluster, node_name)
                group.create_task(agent.run(), name="node-agent")
            group.create_task(engine.run(), name="engine")
            if serve is not None:
                group.create_task(serve(UpContext(options, data_dir, cluster, engine, listener)),
                                  name="server")
            await engine.ready.wait()
            where = options.kubeconfig or str(data_dir / "cluster.db")
            log.info("engine ready", extra={"data_dir": str(data_dir), "cluster": where,
                                            "runtime": options.runtime})
            if serve is None:
                print(f"Cyclone ready (no API server): data dir {data_dir}, cluster {where}",
                      flush=True)
    finally:
        await cluster.close()


def _up_error_in(error: BaseException) -> UpError | None:
    """The `UpError` a task group raised, if that is what ended `up`."""
    if isinstance(error, UpError):
        return error
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            found = _up_error_in(inner)
            if found is not None:
                return found
    return None


def run_up(options: UpOptions, *, serve: ServeHook | None = None) -> None:
    """Blocking entry of ``cyclone up``: stops cleanly on Ctrl-C or SIGTERM; a foreseeable
    problem is one ``error: cyclone up: …`` line on stderr and exit status 1."""
    from cyclone.cli.logsetup import LogSetupError, configure_logging

    try:
        configure_logging(options.log_level, options.log_format)
    except LogSetupError as exc:
        print(f"error: cyclone up: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(1) from None

    async def main() -> None:
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        assert task is not None
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(signum, task.cancel)
        await up(options, serve=serve)

    try:
        asyncio.run(main())
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("Cyclone stopped", flush=True)
    except (UpError, BaseExceptionGroup) as exc:
        problem = _up_error_in(exc)
        if problem is None:
            raise
        one_line = " ".join(str(problem).split())
        print(f"error: cyclone up: {one_line}", file=sys.stderr, flush=True)
        raise SystemExit(1) from None
