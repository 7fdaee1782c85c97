"""`cyclone engine`, `cyclone server`, `cyclone node`: Cyclone's parts run alone.

Each runs in the foreground until Ctrl-C or SIGTERM, against a kubeconfig, the in-cluster
service account (the default, as in the Deployments) or an embedded store file.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import typer

from cyclone import __version__
from cyclone.api import keys
from cyclone.api.phases import MAX_PENDING_TIMEOUT_SECONDS
from cyclone.cli.session import print_error

KUBECONFIG = typer.Option(None, "--kubeconfig", help="kubeconfig of the cluster to use.")
CONTEXT = typer.Option(None, "--context", help="kubeconfig context (default: current).")
EMBEDDED = typer.Option(
    None, "--embedded", help="An embedded cluster store file instead of Kubernetes."
)
QPS = typer.Option(None, "--qps", help="Client-side request rate limit (requests/second).")
BURST = typer.Option(None, "--burst", help="Client-side request burst.")
ARTIFACT_RETENTION_DAYS = typer.Option(
    30.0, "--artifact-retention-days", help="Days uploaded artifacts are kept (0: until deleted)."
)
MAX_BODY_BYTES = typer.Option(
    1024 * 1024, "--max-body-bytes", min=1,
    help="Largest request body the server reads (objects are kept in etcd: keep it under "
    "1.5 MiB); larger requests answer 413.",
)
MAX_ARTIFACT_BYTES = typer.Option(
    1024**3, "--max-artifact-bytes", min=1, help="Largest artifact upload (streamed to disk)."
)
MAX_WEBHOOK_BYTES = typer.Option(
    25 * 1024 * 1024, "--max-webhook-bytes", min=1, help="Largest SCM webhook delivery."
)
SANDBOX_UID = typer.Option(
    65534, "--sandbox-uid", min=1,
    help="Host uid the host runtime's sandboxes run as (a container's own uid, 0 included, "
    "is mapped to it in its user namespace).",
)
SANDBOX_GID = typer.Option(65534, "--sandbox-gid", min=1, help="Host gid of the sandboxes.")
LEADER_ELECT = typer.Option(
    True, "--leader-elect/--no-leader-elect",
    help="Hold a coordination.k8s.io Lease so only one replica is active.",
)
LEASE_NAMESPACE = typer.Option(
    None, "--lease-namespace", help="Namespace of the Lease (default: $POD_NAMESPACE or cyclone)."
)
IDENTITY = typer.Option(None, "--identity", help="This replica's name in the Lease.")
LEASE_DURATION = typer.Option(15.0, "--lease-duration", help="Seconds a Lease is valid.")
RENEW_DEADLINE = typer.Option(
    10.0, "--renew-deadline", help="Seconds the leader keeps trying to renew before it stops."
)
RETRY_PERIOD = typer.Option(2.0, "--retry-period", help="Seconds between Lease attempts.")
OPEN_CONTROL_CLUSTER = typer.Option(
    True, "--open-control-cluster/--no-open-control-cluster",
    envvar="CYCLONE_OPEN_CONTROL_CLUSTER",
    help="Open the control cluster for each new tenant (its namespace cyclone-<tenant> gets "
    "the tenant's quota, PVC and PVC watchdog, through a Cluster integration named "
    "cyclone-control-cluster). Without it a tenant opens a cluster itself before its runs "
    "can start. Env: CYCLONE_OPEN_CONTROL_CLUSTER=true|false.",
)
DEFAULT_PVC_SIZE = typer.Option(
    "10Gi", "--default-pvc-size",
    help="Size of the PVC of a tenant created without spec.persistentVolumeClaim.size.",
)
DEFAULT_STORAGE_CLASS = typer.Option(
    "", "--default-storage-class",
    help="StorageClass of the PVC of a tenant created without one (empty: the cluster's "
    "default).",
)
DEFAULT_QUOTA = typer.Option(
    "", "--default-quota", metavar="RESOURCE=QUANTITY,...",
    help="ResourceQuota of a tenant created without spec.resourceQuota, e.g. "
    "limits.cpu=2,limits.memory=4Gi,requests.cpu=1,requests.memory=2Gi (empty: none).",
)
WEB_URL_TEMPLATE = typer.Option(
    None, "--web-url-template",
    help="The link of a run in commit statuses and notifications: a URL with the "
    "placeholders tenant, project, workflow and run, each in curly braces (default: the web "
    "UI's run page under the server's URL). Give the server and the engine the same.",
)
NOTIFICATION_ENDPOINT = typer.Option(
    [], "--notification-endpoint", metavar="NAME=URL",
    help="POST every finished run (the run object, its link in annotation "
    "workflowrun.cyclone.dev/web-url) to URL, recorded in the run's "
    "status.notifications.NAME. Repeatable; one value may list several, comma-separated.",
)
GC_IMAGE = typer.Option(
    f"cyclone/toolbox:{__version__}", "--gc-image", envvar="CYCLONE_GC_IMAGE",
    help="The image of the pods that empty a project's acceleration caches: give the "
    "engine's gc_image, so a mirror of images serves them as it serves the GC pods. "
    "Env: CYCLONE_GC_IMAGE.",
)
POD_PENDING_TIMEOUT = typer.Option(
    None, "--pod-pending-timeout", min=0, max=MAX_PENDING_TIMEOUT_SECONDS, metavar="SECONDS",
    help="A stage whose pod has not started after this long fails with the reason it "
    "waited for (unschedulable, image not pulled, claim not bound); 0: wait forever; at "
    "most 2592000 (30 days). Overrides the configuration's pod_pending_timeout_seconds "
    "(default 300).",
)
LOG_LEVEL = typer.Option(
    "info", "--log-level", help="Least severe log lines shown: debug, info, warning or error."
)
LOG_FORMAT = typer.Option(
    "text", "--log-format", help="text, or json (one object per line, with its fields)."
)


def _cluster_source(kubeconfig, context, embedded, qps, burst):
    from cyclone.components import ClusterSource

    return ClusterSource(kubeconfig=kubeconfig, context=context, embedded=embedded,
                         in_cluster=not (kubeconfig or embedded), qps=qps, burst=burst)


def _election(enabled, namespace, identity, lease_duration, renew_deadline, retry_period):
    from cyclone.components import ElectionOptions, LeaseTimings

    try:
        timings = LeaseTimings(lease_duration, renew_deadline, retry_period)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    election = ElectionOptions(enabled=enabled, identity=identity, timings=timings)
    if namespace:
        election.namespace = namespace
    return election


def run_component(name: str, main: Callable[[], Awaitable[None]], *,
                  log_level: str = "info", log_format: str = "text") -> None:
    """Run a part until Ctrl-C or SIGTERM; a `ComponentError` is one `error:` line."""
    import asyncio
    import contextlib
    import signal

    from cyclone.cli.logsetup import LogSetupError, configure_logging
    from cyclone.components import ComponentError

    try:
        configure_logging(log_level, log_format)
    except LogSetupError as exc:
        print_error(f"cyclone {name}: {exc}")
        raise typer.Exit(1) from None

    async def until_stopped() -> None:
        task = asyncio.current_task()
        assert task is not None
        with contextlib.suppress(NotImplementedError):
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        await main()

    try:
        asyncio.run(until_stopped())
    except (KeyboardInterrupt, asyncio.CancelledError):
        typer.echo(f"cyclone {name} stopped", err=True)
    except ComponentError as exc:
        print_error(f"cyclone {name}: {exc}")
        raise typer.Exit(1) from None


def register(app: typer.Typer) -> None:
    @app.command()
    def engine(
        kubeconfig: str | None = KUBECONFIG,
        context: str | None = CONTEXT,
        embedded: str | None = EMBEDDED,
        qps: float | None = QPS,
        burst: int | None = BURST,
        config: str | None = typer.Option(
            None, "--config", help="Engine configuration file (JSON or YAML)."
        ),
        leader_elect: bool = LEADER_ELECT,
        lease_namespace: str | None = LEASE_NAMESPACE,
        identity: str | None = IDENTITY,
        lease_duration: float = LEASE_DURATION,
        renew_deadline: float = RENEW_DEADLINE,
        retry_period: float = RETRY_PERIOD,
        metrics_port: int | None = typer.Option(
            None, "--metrics-port", min=0,
            help="Port of the Prometheus endpoint /metrics, on all interfaces (default 9090, "
            "skipped with a warning when taken; 0: none)."),
        web_url_template: str | None = WEB_URL_TEMPLATE,
        notification_endpoint: list[str] = NOTIFICATION_ENDPOINT,
        pod_pending_timeout: float | None = POD_PENDING_TIMEOUT,
        local_path_provisioner: bool = typer.Option(
            False, "--local-path-provisioner/--no-local-path-provisioner",
            envvar="CYCLONE_LOCAL_PATH_PROVISIONER",
            help="The leader also gives pending claims of no storage class (or of class "
            "cyclone-local-path) hostPath volumes under --local-path-dir: for a one-node "
            "cluster without a provisioner. Env: CYCLONE_LOCAL_PATH_PROVISIONER=true|false."),
        local_path_dir: str = typer.Option(
            "/var/lib/cyclone/volumes", "--local-path-dir",
            help="With --local-path-provisioner: the node's directory of the volumes "
            "(absolute)."),
        shards: int = typer.Option(
            1, "--shards", min=1, max=256, envvar="CYCLONE_ENGINE_SHARDS",
            help="1: one replica leads and reconciles everything. N>1: namespaces are "
            "divided into N shards (Leases cyclone-engine-shard-<i>) and every replica "
            "reconciles the shards it holds, ceil(N / live replicas) at most; give every "
            "replica the same N. Env: CYCLONE_ENGINE_SHARDS."),
        log_level: str = LOG_LEVEL,
        log_format: str = LOG_FORMAT,
    ) -> None:
        """Run the workflow engine (controllers) alone, with leader election.

        --web-url-template, --notification-endpoint and --pod-pending-timeout override the
        configuration file's web_url_template, notification_endpoints ([{name, url}]) and
        pod_pending_timeout_seconds."""
        from cyclone.components import EngineOptions, run_engine


        options = EngineOptions(
            cluster=_cluster_source(kubeconfig, context, embedded, qps, burst),
            config_file=config, web_url_template=web_url_template or None,
            notification_endpoints=tuple(notification_endpoint),
            election=_election(leader_elect, lease_namespace, identity, lease_duration,
                               renew_deadline, retry_period),
            metrics_port=metrics_port, pod_pending_timeout=pod_pending_timeout,
            local_path_dir=local_path_dir if local_path_provisioner else None,
            shards=shards,
        )
        run_component("engine", lambda: run_engine(options), log_level=log_level,
                      log_format=log_format)

    @app.command()
    def server(
        kubeconfig: str | None = KUBECONFIG,
        context: str | None = CONTEXT,
        embedded: str | None = EMBEDDED,
        qps: float | None = QPS,
        burst: int | None = BURST,
        data_dir: str = typer.Option(
            "/var/lib/cyclone", "--data-dir", help="Where logs and artifacts are stored."
        ),
        host: str = typer.Option("0.0.0.0", "--host", help="Address to listen on."),
        port: int = typer.Option(7099, "--port", help="Port of the REST API."),
        server_url: str | None = typer.Option(
            None, "--server-url", help="How pods reach this server (e.g. its Service URL)."
        ),
        admin_token_file: str | None = typer.Option(
            None, "--admin-token-file",
            help="File holding the admin token (default: $CYCLONE_ADMIN_TOKEN or "
            "<data-dir>/admin-token).",
        ),
        admin_token_secret: str | None = typer.Option(
            None, "--admin-token-secret", metavar="NAME[:KEY]",
            help="Read the admin token from the Secret NAME (key KEY, default token) of the "
            "server's namespace ($POD_NAMESPACE, else --engine-key-namespace), and create it "
            "with a random token when it is missing; an existing Secret is used as it is. "
            "Not together with --admin-token-file or $CYCLONE_ADMIN_TOKEN.",
        ),
        artifact_retention_days: float = ARTIFACT_RETENTION_DAYS,
        max_body_bytes: int = MAX_BODY_BYTES,
        max_artifact_bytes: int = MAX_ARTIFACT_BYTES,
        max_webhook_bytes: int = MAX_WEBHOOK_BYTES,
        engine_key_namespace: str = typer.Option(
            keys.ENGINE_NAMESPACE, "--engine-key-namespace",
            help="The engine's system_namespace, where it keeps the key that delegation "
            "and artifact upload tokens are checked with (never a tenant's cyclone-*).",
        ),
        webhook_replay_window: float = typer.Option(
            3600.0, "--webhook-replay-window", min=1,
            help="Seconds a signed SCM delivery is remembered: the same signed body "
            "posted again under another delivery id starts nothing.",
        ),
        leader_elect: bool = LEADER_ELECT,
        lease_namespace: str | None = LEASE_NAMESPACE,
        identity: str | None = IDENTITY,
        lease_duration: float = LEASE_DURATION,
        renew_deadline: float = RENEW_DEADLINE,
        retry_period: float = RETRY_PERIOD,
        open_control_cluster: bool = OPEN_CONTROL_CLUSTER,
        default_pvc_size: str = DEFAULT_PVC_SIZE,
        default_storage_class: str = DEFAULT_STORAGE_CLASS,
        default_quota: str = DEFAULT_QUOTA,
        web_url_template: str | None = WEB_URL_TEMPLATE,
        gc_image: str = GC_IMAGE,
        log_level: str = LOG_LEVEL,
        log_format: str = LOG_FORMAT,
    ) -> None:
        """Run the REST server alone (log collection runs on the Lease holder only)."""
        from cyclone.components import ServerOptions, run_server

        options = ServerOptions(
            cluster=_cluster_source(kubeconfig, context, embedded, qps, burst),
            data_dir=data_dir, host=host, port=port, server_url=server_url,
            admin_token_file=admin_token_file, admin_token_secret=admin_token_secret,
            engine_key_namespace=engine_key_namespace,
            webhook_replay_window_seconds=webhook_replay_window,
            artifact_retention_days=artifact_retention_days,
            max_body_bytes=max_body_bytes, max_artifact_bytes=max_artifact_bytes,
            max_webhook_bytes=max_webhook_bytes,
            election=_election(leader_elect, lease_namespace, identity, lease_duration,
                               renew_deadline, retry_period),
            open_control_cluster=open_control_cluster, default_pvc_size=default_pvc_size,
            default_storage_class=default_storage_class, default_quota=default_quota,
            web_url_template=web_url_template or None, gc_image=gc_image,
        )
        run_component("server", lambda: run_server(options), log_level=log_level,
                      log_format=log_format)

    @app.command()
    def node(
        kubeconfig: str | None = KUBECONFIG,
        context: str | None = CONTEXT,
        embedded: str | None = EMBEDDED,
        qps: float | None = QPS,
        burst: int | None = BURST,
        data_dir: str = typer.Option(
            "/var/lib/cyclone-node", "--data-dir", help="Where pods' files live."
        ),
        node_name: str | None = typer.Option(None, "--node-name", help="Default: host name."),
        runtime: str = typer.Option(
            "host", "--runtime", help="host, fake, podman or docker."),
        schedule_unbound: bool = typer.Option(
            False, "--schedule-unbound",
            help="Bind pending pods of the default scheduler to this node (no scheduler).",
        ),
        heartbeat_seconds: float = typer.Option(
            10.0, "--heartbeat-seconds", help="How often the Node's Ready condition is renewed."
        ),
        log_server_port: int | None = typer.Option(
            None, "--log-server-port",
            help="Serve pod logs to the API server on this port (needs --log-client-ca-file;"
                 " without both, logs are not served through the API server).",
        ),
        log_client_ca_file: str | None = typer.Option(
            None, "--log-client-ca-file",
            help="CA of the API server's --kubelet-client-certificate: the log server "
                 "answers only clients with a certificate it signed.",
        ),
        sandbox_uid: int = SANDBOX_UID,
        sandbox_gid: int = SANDBOX_GID,
        log_level: str = LOG_LEVEL,
        log_format: str = LOG_FORMAT,
    ) -> None:
        """Run a node agent alone: it registers a Node and runs the pods bound to it."""
        from cyclone.node_components import NodeOptions, run_node

        options = NodeOptions(
            cluster=_cluster_source(kubeconfig, context, embedded, qps, burst),
            data_dir=data_dir, runtime=runtime, schedule_unbound=schedule_unbound,
            heartbeat_seconds=heartbeat_seconds, log_server_port=log_server_port,
            log_client_ca_file=log_client_ca_file,
            sandbox_uid=sandbox_uid, sandbox_gid=sandbox_gid,
        )
        if node_name:
            options.node_name = node_name
        run_component("node", lambda: run_node(options), log_level=log_level,
                      log_format=log_format)

    @app.command("local-path-provisioner")
    def local_path_provisioner(
        kubeconfig: str | None = KUBECONFIG,
        context: str | None = CONTEXT,
        qps: float | None = QPS,
        burst: int | None = BURST,
        local_path_dir: str = typer.Option(
            "/var/lib/cyclone/volumes", "--local-path-dir",
            help="The node's directory of the volumes (absolute)."),
        node_name: str | None = typer.Option(
            None, "--node-name", help="Pin every volume to this Node (default: none)."),
        log_level: str = LOG_LEVEL,
        log_format: str = LOG_FORMAT,
    ) -> None:
        """Give pending claims of no storage class (or of class cyclone-local-path)
        hostPath volumes: for a one-node cluster without a provisioner."""
        from cyclone.node_components import run_local_path_provisioner

        source = _cluster_source(kubeconfig, context, None, qps, burst)
        run_component("local-path-provisioner",
                      lambda: run_local_path_provisioner(source, local_path_dir, node_name),
                      log_level=log_level, log_format=log_format)
