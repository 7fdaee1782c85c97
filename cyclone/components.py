"""Cyclone's parts run alone, as the Deployments run them: engine and server (the node
agent and the local-path provisioner: `cyclone.node_components`).

Each part opens its cluster (a kubeconfig, the in-cluster service account, or an embedded
store file shared with other processes on one machine) and runs until cancelled. The
engine runs only while it holds the `cyclone-engine` Lease, so several replicas never both
reconcile; with `--shards N` the replicas divide the namespaces instead, each reconciling
the shards whose Leases (`cyclone-engine-shard-<i>`) it holds (`cyclone.engine.sharding`),
and the holder of shard 0 also does the cluster-wide duties. Server replicas all serve the
API, and only the holder of `cyclone-server` collects stage logs, sweeps artifacts and
provisions tenants (a replica that does not lead answers open, close and tenant changes
once their intent is written).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml

from cyclone.api import keys
from cyclone.api.tenant import DEFAULT_PVC_SIZE
from cyclone.engine.core.deliveries import DEFAULT_REPLAY_WINDOW_SECONDS
from cyclone.engine.core.gcpod import DEFAULT_GC_IMAGE
from cyclone.engine.core.weburl import check_template
from cyclone.kube import kinds
from cyclone.kube.errors import AlreadyExists, ApiError, Forbidden, Invalid, NotFound
from cyclone.kube.leader import LeaseTimings, run_as_leader
from cyclone.kube.protocol import Cluster

log = logging.getLogger("cyclone.components")

ENGINE_LEASE = "cyclone-engine"
SERVER_LEASE = "cyclone-server"
DEFAULT_LEASE_NAMESPACE = "cyclone"
DEFAULT_ARTIFACT_RETENTION_DAYS = 30.0
NOBODY = 65534
"""The default host uid/gid of the host runtime's sandboxes."""
MIB = 1024 * 1024
DEFAULT_MAX_BODY_BYTES = 1 * MIB
DEFAULT_MAX_ARTIFACT_BYTES = 1024 * MIB
DEFAULT_MAX_WEBHOOK_BYTES = 25 * MIB
DEFAULT_METRICS_PORT = 9090
ADMIN_TOKEN_ENV = "CYCLONE_ADMIN_TOKEN"


class ComponentError(Exception):
    """A part cannot start; the message says why, for a person."""


@dataclass
class ClusterSource:
    """Where a part finds its cluster: exactly one of the three, or in-cluster by default."""

    kubeconfig: str | None = None
    context: str | None = None
    embedded: str | None = None
    in_cluster: bool = False
    qps: float | None = None
    burst: int | None = None

    def describe(self) -> str:
        if self.embedded:
            return f"embedded store {self.embedded}"
        if self.kubeconfig:
            return f"kubeconfig {self.kubeconfig}"
        return "in-cluster service account"


@dataclass
class ElectionOptions:
    """Leader election of a part; `identity` defaults to the pod (host) name plus a nonce."""

    enabled: bool = True
    namespace: str = field(
        default_factory=lambda: os.environ.get("POD_NAMESPACE") or DEFAULT_LEASE_NAMESPACE
    )
    identity: str | None = None
    timings: LeaseTimings = field(default_factory=LeaseTimings)

    def identity_or_default(self) -> str:
        if self.identity:
            return self.identity
        base = os.environ.get("POD_NAME") or socket.gethostname() or "cyclone"
        return f"{base}_{uuid.uuid4().hex[:8]}"


@dataclass
class EngineOptions:
    cluster: ClusterSource = field(default_factory=ClusterSource)
    config_file: str | None = None
    web_url_template: str | None = None
    """Overrides the configuration's `web_url_template` when given."""
    notification_endpoints: tuple[str, ...] = ()
    """``NAME=URL`` values; when given they replace the configuration's endpoints."""
    election: ElectionOptions = field(default_factory=ElectionOptions)
    metrics_port: int | None = None
    """Where ``/metrics`` is served on all interfaces, leader or not; 0: not served. None:
    `DEFAULT_METRICS_PORT`, skipped with a warning when taken (as by a second engine on
    the same host), where a port asked for and taken is an error."""
    pod_pending_timeout: float | None = None
    """Overrides the configuration's `pod_pending_timeout_seconds` when given."""
    local_path_dir: str | None = None
    """When given, the leader also runs the local-path provisioner with volumes there (a
    directory of the cluster's one node)."""
    shards: int = 1
    """1: one leader reconciles everything. More: the namespaces are divided into this
    many shards, each reconciled by the replica holding its Lease (the holder of shard 0,
    as the leader does, runs the cluster-wide duties and the local-path provisioner)."""


@dataclass
class ServerOptions:
    cluster: ClusterSource = field(default_factory=ClusterSource)
    data_dir: str = "/var/lib/cyclone"
    host: str = "0.0.0.0"
    port: int = 7099
    server_url: str | None = None
    admin_token_file: str | None = None
    admin_token_secret: str | None = None
    """``NAME[:KEY]`` of the Secret of the server's namespace holding the admin token (key
    ``token`` by default), created with a random token when missing."""
    engine_key_namespace: str = keys.ENGINE_NAMESPACE
    artifact_retention_days: float = DEFAULT_ARTIFACT_RETENTION_DAYS
    webhook_replay_window_seconds: float = DEFAULT_REPLAY_WINDOW_SECONDS
    election: ElectionOptions = field(default_factory=ElectionOptions)
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_artifact_bytes: int = DEFAULT_MAX_ARTIFACT_BYTES
    max_webhook_bytes: int = DEFAULT_MAX_WEBHOOK_BYTES
    open_control_cluster: bool = True
    default_pvc_size: str = DEFAULT_PVC_SIZE
    default_storage_class: str = ""
    default_quota: str = ""
    """``resource=quantity,…`` of tenants created without a quota; "" for none."""
    web_url_template: str | None = None
    gc_image: str = DEFAULT_GC_IMAGE
    """The engine's ``gc_image``: the image of the cache cleaning pods."""


def prepared_dir(path: str) -> Path:
    """`path` made absolute and created when missing."""
    directory = Path(path).expanduser().resolve()
    directory.mkdir(parents=True, exist_ok=True)
    return directory


async def open_cluster(source: ClusterSource) -> Cluster:
    """The cluster a part talks to (started, for an embedded store)."""
    if source.embedded and source.kubeconfig:
        raise ComponentError("give either an embedded store or a kubeconfig, not both")
    if source.embedded:
        from cyclone.kube.embedded import EmbeddedCluster

        path = prepared_dir(str(Path(source.embedded).parent)) / Path(source.embedded).name
        cluster = EmbeddedCluster(path, name=keys.CONTROL_CLUSTER_NAME)
        await cluster.start()
        return cluster
    from cyclone.kube import remote_config
    from cyclone.kube.remote import RemoteCluster

    limits = {k: v for k, v in (("qps", source.qps), ("burst", source.burst)) if v is not None}
    try:
        if source.kubeconfig:
            return RemoteCluster.from_kubeconfig(source.kubeconfig, source.context, **limits)
        return RemoteCluster(remote_config.config_in_cluster(), **limits)
    except Invalid as exc:
        raise ComponentError(f"cannot open the {source.describe()}: {exc.message}") from exc


def load_engine_config(path: str | None, overrides: dict | None = None):
    """The engine configuration from a JSON or YAML file (defaults without one), with
    `overrides` (from command-line options) over it."""
    from cyclone.engine.config import EngineConfig

    values: dict = {}
    if path is not None:
        try:
            text = Path(path).read_text()
            values = (json.loads(text) if path.endswith(".json") else yaml.safe_load(text)) or {}
        except (OSError, ValueError, yaml.YAMLError) as exc:
            raise ComponentError(f"invalid engine configuration {path}: {exc}") from exc
    try:
        return EngineConfig.model_validate({**values, **(overrides or {})})
    except ValueError as exc:
        raise ComponentError(f"invalid engine configuration {path or ''}: "
                             f"{one_line_error(exc)}") from exc


def one_line_error(exc: ValueError) -> str:
    """A validation error as one line: each problem's field and message."""
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'value'}: "
                         f"{str(e['msg']).removeprefix('Value error, ')}" for e in exc.errors())
    return " ".join(str(exc).split())


def engine_overrides(web_url_template: str | None, endpoints: tuple[str, ...], *,
                     pod_pending_timeout: float | None = None) -> dict:
    """The engine settings command-line options give (none when not given)."""
    from cyclone.engine.core.serversettings import parse_endpoints

    overrides: dict = {}
    if pod_pending_timeout is not None:
        overrides["pod_pending_timeout_seconds"] = pod_pending_timeout
    try:
        if web_url_template:
            overrides["web_url_template"] = check_template(web_url_template)
        parsed = parse_endpoints(endpoints)
        if parsed:
            overrides["notification_endpoints"] = parsed
    except ValueError as exc:
        raise ComponentError(str(exc)) from None
    return overrides


def server_settings(options: Any, endpoint_names: tuple[str, ...] = ()):
    """The `ServerSettings` of server (or `cyclone up`) options; one clear ComponentError
    for an unknown placeholder, a bad quota or PVC size. The GC image is the server's
    `--gc-image` (`cyclone up` gives the engine's own: `up.up_server_settings`)."""
    from cyclone.engine.core.serversettings import (
        ServerSettings,
        TenantDefaults,
        check_pvc_size,
        parse_quota,
    )
    from cyclone.kube.quantity import parse_quantity

    try:
        return ServerSettings(
            open_control_cluster=options.open_control_cluster,
            tenant_defaults=TenantDefaults(pvc_size=check_pvc_size(options.default_pvc_size),
                                           storage_class=options.default_storage_class,
                                           quota=parse_quota(options.default_quota,
                                                             parse_quantity)),
            web_url_template=(check_template(options.web_url_template)
                              if options.web_url_template else None),
            notification_endpoints=endpoint_names,
            gc_image=getattr(options, "gc_image", None) or DEFAULT_GC_IMAGE)
    except ValueError as exc:
        raise ComponentError(str(exc)) from None


async def ensure_namespace(cluster: Cluster, name: str) -> None:
    """Create the lease namespace when it is missing (an embedded store starts empty)."""
    try:
        await cluster.get(kinds.NAMESPACE, name)
    except NotFound:
        with contextlib.suppress(AlreadyExists):
            await cluster.create(
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
            )
    except Forbidden:
        log.debug("may not read namespace %s; assuming it exists", name)
    except ApiError as exc:
        log.info("cannot read namespace %s (%s); assuming it exists", name, exc)


async def _elected(
    cluster: Cluster, lease: str, election: ElectionOptions, work: Callable[[], Awaitable[None]]
) -> None:
    if not election.enabled:
        await work()
        return
    identity = election.identity_or_default()
    await ensure_namespace(cluster, election.namespace)
    log.info("%s campaigning for lease %s/%s", identity, election.namespace, lease)
    await run_as_leader(
        cluster, election.namespace, lease, identity, work, election.timings,
        on_started_leading=lambda: log.info("%s leads %s/%s", identity,
                                            election.namespace, lease),
    )


def metrics_socket(host: str, port: int) -> socket.socket:
    """The listening socket of the metrics endpoint, listening now so a port in use is one
    clear error at start-up (bound but not listening, two processes may share a port under
    SO_REUSEADDR, and the second fails only later)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise ComponentError(f"cannot serve metrics on {host}:{port}: {exc.strerror}") from None
    return sock


def engine_metrics_socket(port: int | None) -> socket.socket | None:
    if port == 0:
        return None
    if port is not None:
        return metrics_socket("0.0.0.0", port)
    try:
        return metrics_socket("0.0.0.0", DEFAULT_METRICS_PORT)
    except ComponentError as exc:
        log.warning("%s; /metrics is not served (choose a port with --metrics-port)", exc)
        return None


async def serve_metrics(sock: socket.socket) -> None:
    """Serve this process's Prometheus metrics (`/metrics`) on `sock` until cancelled."""
    import uvicorn

    from cyclone.engine.health import metrics_app

    config = uvicorn.Config(metrics_app(), lifespan="off", log_config=None,
                            access_log=False)
    server = uvicorn.Server(config)
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    try:
        await server.serve(sockets=[sock])
    except asyncio.CancelledError:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.shield(server.shutdown())
        raise
    finally:
        sock.close()


def checked_volumes_dir(path: str) -> Path:
    """`--local-path-dir` checked: an absolute path of the node. A relative one would be
    resolved in the working directory of the process that reads it (in a pod, not a
    directory of the node), so it is refused."""
    if not Path(path).is_absolute():
        raise ComponentError(f"--local-path-dir must be an absolute path of the node, not "
                             f"{path!r}")
    return Path(path)


async def alongside_local_path_provisioner(cluster: Cluster, volumes_dir: Path,
                                           work: Coroutine[Any, Any, None]) -> None:
    """Run `work` (the engine) and a local-path provisioner with volumes under
    `volumes_dir` together, until one fails or both are cancelled."""
    from cyclone.node.provisioner import LocalPathProvisioner

    provisioner = LocalPathProvisioner(cluster, volumes_dir=volumes_dir)
    async with asyncio.TaskGroup() as group:
        group.create_task(work, name="engine")
        group.create_task(provisioner.run(), name="local-path-provisioner")


async def run_engine(options: EngineOptions) -> None:
    """Run the engine until cancelled, only while leading (a fresh Engine each term)."""
    from cyclone.engine.manager import Engine

    volumes_dir = (None if options.local_path_dir is None
                   else checked_volumes_dir(options.local_path_dir))
    config = load_engine_config(options.config_file, engine_overrides(
        options.web_url_template, options.notification_endpoints,
        pod_pending_timeout=options.pod_pending_timeout))
    if options.shards > 1:
        check_shardable(options, config)
    cluster = await open_cluster(options.cluster)
    try:
        if options.shards > 1:
            await run_sharded_engine(cluster, config, options, volumes_dir)
            return

        async def engine_term() -> None:
            engine = Engine(cluster, config)
            if volumes_dir is None:
                await engine.run()
            else:
                await alongside_local_path_provisioner(cluster, volumes_dir, engine.run())

        sock = engine_metrics_socket(options.metrics_port)
        async with asyncio.TaskGroup() as group:
            metrics = group.create_task(serve_metrics(sock), name="metrics") if sock else None
            await _elected(cluster, ENGINE_LEASE, options.election, engine_term)
            if metrics is not None:
                metrics.cancel()
    finally:
        await cluster.close()


def check_shardable(options: EngineOptions, config: Any) -> None:
    """Refuse what sharding cannot keep: work without Leases, more shards than the
    limit, and an overall parallelism limit (counted by each replica over its own
    namespaces only, it would be exceeded)."""
    from cyclone.engine.sharding import MAX_SHARDS

    if not options.election.enabled:
        raise ComponentError("--shards needs Leases: drop --no-leader-elect")
    if options.shards > MAX_SHARDS:
        raise ComponentError(f"--shards must be at most {MAX_SHARDS}")
    if config.overall.max_running is not None or config.overall.max_queued is not None:
        raise ComponentError(
            "an overall parallelism limit (overall.max_running/max_queued) needs one engine "
            "deciding for every namespace: use --shards 1 (per_workflow limits work with "
            "shards)")


async def run_sharded_engine(cluster: Cluster, config: Any, options: EngineOptions,
                             volumes_dir: Path | None) -> None:
    """One Engine for the life of the process, reconciling the shards its Leases hold."""
    from cyclone.engine.manager import Engine
    from cyclone.engine.sharding_leases import ShardLeases
    from cyclone.engine.sharding_work import ShardWork

    election = options.election
    identity = election.identity_or_default()
    work = ShardWork(options.shards)
    engine = Engine(cluster, config, shards=work)
    leases = ShardLeases(cluster, work, election.namespace, identity, election.timings)
    await ensure_namespace(cluster, election.namespace)
    sock = engine_metrics_socket(options.metrics_port)
    async with asyncio.TaskGroup() as group:
        if sock is not None:
            group.create_task(serve_metrics(sock), name="metrics")
        group.create_task(engine.run(), name="engine")
        if volumes_dir is not None:
            from cyclone.node.provisioner import LocalPathProvisioner

            provisioner = LocalPathProvisioner(cluster, volumes_dir=volumes_dir)
            group.create_task(work.while_holding(0, provisioner.run),
                              name="local-path-provisioner")
        await engine.ready.wait()
        log.info("%s takes its share of %d shards (Leases in %s)", identity,
                 options.shards, election.namespace)
        group.create_task(leases.run(), name="shard-leases")


async def run_server(options: ServerOptions) -> None:
    """Serve the REST API until cancelled; the lease holder also collects logs."""
    from cyclone.server import create_app, serve
    from cyclone.server.artifacts.routes import retention_from_days
    from cyclone.server.logs.services import (
        log_and_artifact_routers,
        run_log_and_artifact_services,
    )
    from cyclone.server.provisioning import run_provisioning

    settings = server_settings(options)
    data_dir = prepared_dir(options.data_dir)
    if options.admin_token_secret:
        refuse_other_admin_token_sources(options)
    else:
        admin_token = read_admin_token(options.admin_token_file, data_dir)
    url = options.server_url or f"http://{socket.gethostname()}:{options.port}"
    cluster = await open_cluster(options.cluster)
    try:
        if options.admin_token_secret:
            admin_token = await admin_token_of_secret(cluster, options)
        app = create_app(cluster=cluster, data_dir=data_dir, admin_token=admin_token,
                         extra_routers=log_and_artifact_routers(), server_url=url,
                         provisioning=False,
                         engine_key_namespace=engine_key_namespace(options),
                         webhook_replay_window=timedelta(
                             seconds=options.webhook_replay_window_seconds),
                         artifact_retention=retention_from_days(
                             options.artifact_retention_days),
                         limits=request_limits(options), server_settings=settings)
        from cyclone.ui.app import mount_ui

        mount_ui(app, admin_token, secure_cookies=url.startswith("https://"))
        state = app.state.cyclone
        from cyclone.engine.signing import prepare_engine_key

        await prepare_engine_key(cluster, state.engine_key_namespace)

        async def services() -> None:
            async with asyncio.TaskGroup() as group:
                group.create_task(run_log_and_artifact_services(state), name="logs")
                group.create_task(run_provisioning(state), name="tenant-provisioning")

        async with asyncio.TaskGroup() as group:
            group.create_task(serve(app, options.host, options.port), name="rest-api")
            group.create_task(_elected(cluster, SERVER_LEASE, options.election, services),
                              name="server-services")
    finally:
        await cluster.close()


def request_limits(options: Any) -> Any:
    """The `RequestLimits` of server (or `cyclone up`) options with `max_*_bytes` fields."""
    from cyclone.server.limits import RequestLimits

    try:
        return RequestLimits(max_body_bytes=options.max_body_bytes,
                             max_artifact_bytes=options.max_artifact_bytes,
                             max_webhook_bytes=options.max_webhook_bytes)
    except ValueError as exc:
        raise ComponentError(str(exc)) from exc


def engine_key_namespace(options: ServerOptions) -> str:
    """The namespace of the engine's key, refused when it is a tenant's."""
    if keys.is_tenant_namespace(options.engine_key_namespace):
        raise ComponentError(
            f"--engine-key-namespace {options.engine_key_namespace!r} is a tenant's namespace "
            f"(cyclone-*), readable by that tenant; use the engine's system_namespace "
            f"(default {keys.ENGINE_NAMESPACE!r})")
    return options.engine_key_namespace


async def admin_token_of_secret(cluster: Cluster, options: ServerOptions) -> str:
    """The admin token of `--admin-token-secret`, the Secret created when missing."""
    from cyclone.server.admin_secret import (
        AdminSecretError,
        read_or_create_admin_token,
        secret_ref,
    )

    refuse_other_admin_token_sources(options)
    try:
        ref = secret_ref(options.admin_token_secret or "",
                         os.environ.get("POD_NAMESPACE") or options.engine_key_namespace)
        return await read_or_create_admin_token(cluster, ref)
    except AdminSecretError as exc:
        raise ComponentError(str(exc)) from None


def refuse_other_admin_token_sources(options: ServerOptions) -> None:
    """`--admin-token-secret` is the only source of the admin token when given: a token
    file or `$CYCLONE_ADMIN_TOKEN` beside it would be ignored, so either is an error."""
    if options.admin_token_file:
        raise ComponentError("give either --admin-token-file or --admin-token-secret, not both")
    if os.environ.get(ADMIN_TOKEN_ENV):
        raise ComponentError(
            f"${ADMIN_TOKEN_ENV} is set together with --admin-token-secret; unset it or drop "
            f"the option, not both")


def read_admin_token(path: str | None, data_dir: Path) -> str:
    """The admin token: from `path` (a mounted Secret), `$CYCLONE_ADMIN_TOKEN`, or the
    data dir's `admin-token` file (created when missing)."""
    if path:
        try:
            token = Path(path).read_text().strip()
        except OSError as exc:
            raise ComponentError(f"cannot read the admin token file {path}: {exc}") from exc
        if not token:
            raise ComponentError(f"the admin token file {path} is empty")
        return token
    if os.environ.get(ADMIN_TOKEN_ENV):
        return os.environ[ADMIN_TOKEN_ENV].strip()
    from cyclone.server.auth import load_or_create_admin_token

    return load_or_create_admin_token(data_dir)


def node_runtime(name: str, hidden_paths: tuple[Path, ...] = (), *,
                 sandbox_uid: int = NOBODY, sandbox_gid: int = NOBODY,
                 data_dir: Path | None = None):
    """The node agent runtime called `name` (`host` with the resolver scripts, `fake`, or
    `podman`/`docker`, which keep their state under `data_dir`).

    `hidden_paths`: host paths no container may see (data dirs); the CLI's config file, which
    may hold the admin token, is always among them.
    """
    if name in ("podman", "docker"):
        from cyclone.node.runtimes.container_cli import RuntimeUnavailable, container_cli_runtime

        try:
            return container_cli_runtime(name, data_dir)
        except RuntimeUnavailable as exc:
            raise ComponentError(str(exc)) from None
    if name == "host":
        from cyclone.cli.config import config_path
        from cyclone.node.runtimes.host import HostRuntime
        from cyclone.resolvers import resolver_image_overlays

        return HostRuntime(image_overlays=resolver_image_overlays(),
                           hidden_paths=(*hidden_paths, config_path()),
                           sandbox_uid=sandbox_uid, sandbox_gid=sandbox_gid)
    if name == "fake":
        from cyclone.node.runtimes.fake import FakeRuntime

        return FakeRuntime()
    raise ComponentError(f"unknown runtime {name!r}: choose host, fake, podman or docker")
