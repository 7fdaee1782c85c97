"""`cyclone tenant …` and `cyclone integration …`."""

from __future__ import annotations

import typer

from cyclone.cli import options
from cyclone.cli.errors import CliError
from cyclone.cli.kinds import lookup_kind
from cyclone.cli.objects import read_documents
from cyclone.cli.output import print_objects, print_records
from cyclone.cli.runs import parse_pairs
from cyclone.cli.session import client_from, handles_errors

INTEGRATION_SOURCES = {"SCM": "scm", "DockerRegistry": "dockerRegistry",
                       "SonarQube": "sonarQube", "Cluster": "cluster", "General": "general"}


def _scalar(value: str) -> object:
    lowered = value.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    return value


def _set_path(target: dict, dotted: str, value: object) -> None:
    *parents, leaf = dotted.split(".")
    for part in parents:
        node = target.setdefault(part, {})
        if not isinstance(node, dict):
            raise CliError(f"--set {dotted}: {part} is not an object")
        target = node
    target[leaf] = value


def integration_body(name: str, kind: str, settings: list[str]) -> dict:
    """An Integration from `--type` and `--set field=value` (dotted fields nest)."""
    canonical = {k.lower(): k for k in INTEGRATION_SOURCES}.get(kind.lower())
    if canonical is None:
        raise CliError(f"unknown integration type {kind!r} "
                       f"(one of: {', '.join(INTEGRATION_SOURCES)})")
    pairs = parse_pairs(settings, "--set")
    source: object
    if canonical == "General":
        source = [{"name": k, "value": v} for k, v in pairs]
    else:
        source = {}
        for key, value in pairs:
            _set_path(source, key, _scalar(value))
    return {"metadata": {"name": name},
            "spec": {"type": canonical, INTEGRATION_SOURCES[canonical]: source}}


def tenant_body(name: str, storage_class: str | None, pvc_size: str | None,
                quota: list[str], pod_features: list[str] | None = None,
                local_addresses: bool | None = None) -> dict:
    spec: dict = {}
    pvc = {k: v for k, v in (("storageClass", storage_class), ("size", pvc_size)) if v}
    if pvc:
        spec["persistentVolumeClaim"] = pvc
    if quota:
        spec["resourceQuota"] = dict(parse_pairs(quota, "--quota"))
    if pod_features:
        spec["allowedPodFeatures"] = list(dict.fromkeys(pod_features))
    if local_addresses is not None:
        spec["allowLocalAddresses"] = local_addresses
    return {"metadata": {"name": name}, "spec": spec}


def updated_tenant(current: dict, changes: dict) -> dict:
    """The tenant as stored with the settings of ``changes`` (from `tenant_body`) over it."""
    spec = {**(current.get("spec") or {}), **changes["spec"]}
    meta = current.get("metadata") or {}
    return {"metadata": {"name": meta.get("name"), "annotations": meta.get("annotations") or {}},
            "spec": spec}


POD_FEATURE_HELP = ("A pod feature this tenant's stages may use: hostPath, privileged, "
                    "hostNetwork, hostPID, hostIPC, capabilities or hostPort (repeatable).")
LOCAL_ADDRESSES_HELP = ("Whether this tenant's SCM, notification and delegation URLs may be "
                        "loopback or link-local addresses.")


def register(app: typer.Typer) -> None:
    tenant_app = typer.Typer(help="Create, update, list and delete tenants (admin).",
                             no_args_is_help=True)
    integration_app = typer.Typer(help="Integrations with external systems and clusters.",
                                  no_args_is_help=True)
    app.add_typer(tenant_app, name="tenant")
    app.add_typer(integration_app, name="integration")

    @tenant_app.command("create")
    @handles_errors
    def tenant_create(
        ctx: typer.Context,
        name: str = typer.Argument(..., help="Tenant name."),
        storage_class: str | None = typer.Option(None, "--storage-class",
                                                 help="Storage class of the tenant PVC."),
        pvc_size: str | None = typer.Option(None, "--pvc-size", help="Size of the tenant PVC."),
        quota: list[str] = typer.Option([], "--quota", metavar="RESOURCE=AMOUNT",
                                        help="Resource quota, e.g. limits.cpu=4 (repeatable)."),
        pod_features: list[str] = typer.Option([], "--allow-pod-feature",
                                               help=POD_FEATURE_HELP),
        local_addresses: bool = typer.Option(False, "--allow-local-addresses",
                                             help=LOCAL_ADDRESSES_HELP),
    ) -> None:
        """Create a tenant (its metadata namespace cyclone-NAME)."""
        with client_from(ctx) as client:
            client.post("/tenants", tenant_body(name, storage_class, pvc_size, quota,
                                                pod_features, local_addresses or None))
        typer.echo(f"tenant/{name} created")

    @tenant_app.command("update")
    @handles_errors
    def tenant_update(
        ctx: typer.Context,
        name: str = typer.Argument(..., help="Tenant name."),
        quota: list[str] = typer.Option([], "--quota", metavar="RESOURCE=AMOUNT",
                                        help="Resource quota, e.g. limits.cpu=4 (repeatable)."),
        pod_features: list[str] = typer.Option([], "--allow-pod-feature",
                                               help=POD_FEATURE_HELP),
        no_pod_features: bool = typer.Option(False, "--no-pod-features",
                                             help="Allow no pod feature that escapes a pod."),
        local_addresses: bool | None = typer.Option(
            None, "--allow-local-addresses/--no-local-addresses", help=LOCAL_ADDRESSES_HELP),
    ) -> None:
        """Change a tenant's quota or what it is allowed; unnamed settings are kept."""
        changes = tenant_body(name, None, None, quota, pod_features, local_addresses)
        if no_pod_features:
            if pod_features:
                raise CliError("give --allow-pod-feature or --no-pod-features, not both")
            changes["spec"]["allowedPodFeatures"] = []
        with client_from(ctx) as client:
            current = client.get(f"/tenants/{name}")
            client.put(f"/tenants/{name}", updated_tenant(current, changes))
        typer.echo(f"tenant/{name} updated")

    @tenant_app.command("list")
    @handles_errors
    def tenant_list(ctx: typer.Context,
                    output: str = options.OUTPUT,
                    no_headers: bool = options.NO_HEADERS,
                    sort_by: str | None = options.SORT_BY,
                    ) -> None:
        """List tenants."""
        with client_from(ctx) as client:
            print_objects(lookup_kind("tenants"), client.items("/tenants"), output,
                          no_headers=no_headers, sort_by=sort_by)

    @tenant_app.command("delete")
    @handles_errors
    def tenant_delete(ctx: typer.Context,
                      name: str = typer.Argument(..., help="Tenant name.")) -> None:
        """Delete a tenant and everything it owns, in every cluster."""
        with client_from(ctx) as client:
            client.delete(f"/tenants/{name}")
        typer.echo(f"tenant/{name} deleted")

    @integration_app.command("create")
    @handles_errors
    def integration_create(
        ctx: typer.Context,
        name: str | None = typer.Argument(None, help="Integration name (not with -f)."),
        kind: str | None = typer.Option(None, "--type", "-t", help="SCM, DockerRegistry, "
                                        "SonarQube, Cluster or General."),
        settings: list[str] = typer.Option([], "--set", metavar="FIELD=VALUE",
                                           help="A setting of the type, dotted for nesting "
                                                "(repeatable)."),
        filename: str | None = typer.Option(None, "--filename", "-f",
                                            help="YAML/JSON Integration objects instead."),
    ) -> None:
        """Create an integration from flags or a file."""
        if filename:
            bodies = read_documents(filename)
        elif name and kind:
            bodies = [integration_body(name, kind, settings)]
        else:
            raise CliError("give NAME and --type, or -f FILE")
        with client_from(ctx) as client:
            for body in bodies:
                client.post("/integrations", body)
                typer.echo(f"integration/{body['metadata']['name']} created")

    @integration_app.command("list")
    @handles_errors
    def integration_list(ctx: typer.Context,
                         output: str = options.OUTPUT,
                         no_headers: bool = options.NO_HEADERS,
                         sort_by: str | None = options.SORT_BY,
                         ) -> None:
        """List integrations (secret fields are never shown)."""
        with client_from(ctx) as client:
            print_objects(lookup_kind("integrations"), client.items("/integrations"), output,
                          no_headers=no_headers, sort_by=sort_by)

    @integration_app.command("delete")
    @handles_errors
    def integration_delete(ctx: typer.Context,
                           name: str = typer.Argument(..., help="Integration name.")) -> None:
        """Delete an integration."""
        with client_from(ctx) as client:
            client.delete(f"/integrations/{name}")
        typer.echo(f"integration/{name} deleted")

    @integration_app.command("open-cluster")
    @handles_errors
    def open_cluster(ctx: typer.Context,
                     name: str = typer.Argument(..., help="Cluster integration.")) -> None:
        """Use a Cluster integration as a worker cluster (namespace, quota, PVC, watchdog)."""
        with client_from(ctx) as client:
            client.put(f"/integrations/{name}/opencluster")
        typer.echo(f"integration/{name} cluster opened")

    def pvc_watcher(ctx: typer.Context, name: str, action: str) -> None:
        with client_from(ctx) as client:
            client.request("PUT", f"/integrations/{name}/pvcwatcher", params={"action": action})
        done = "stopped" if action == "stop" else "started"
        typer.echo(f"integration/{name} PVC watchdog {done}")

    @integration_app.command("start-pvc-watcher")
    @handles_errors
    def start_pvc_watcher(ctx: typer.Context,
                          name: str = typer.Argument(..., help="Opened Cluster integration.")
                          ) -> None:
        """Start again the PVC watchdog of an opened Cluster integration."""
        pvc_watcher(ctx, name, "start")

    @integration_app.command("stop-pvc-watcher")
    @handles_errors
    def stop_pvc_watcher(ctx: typer.Context,
                         name: str = typer.Argument(..., help="Opened Cluster integration.")
                         ) -> None:
        """Stop the PVC watchdog of an opened Cluster integration; it stays stopped until
        started again."""
        pvc_watcher(ctx, name, "stop")

    @integration_app.command("dockerfiles")
    @handles_errors
    def dockerfiles(ctx: typer.Context,
                    name: str = typer.Argument(..., help="SCM integration."),
                    repo: str = typer.Argument(..., help="Repository, e.g. owner/name."),
                    ref: str | None = typer.Option(None, "--ref", help="Branch, tag or "
                                                   "commit (default: the default branch)."),
                    output: str = options.OUTPUT,
                    no_headers: bool = options.NO_HEADERS) -> None:
        """List the Dockerfiles of a repository of an SCM integration."""
        with client_from(ctx) as client:
            answer = client.get(f"/integrations/{name}/scmrepos/{repo}/dockerfiles", ref=ref)
        found = list((answer or {}).get("items") or [])
        print_records(found, output, headers=["PATH"], rows=lambda rs: [[r["path"]] for r in rs],
                      name=lambda r: r["path"], no_headers=no_headers)

    @integration_app.command("close-cluster")
    @handles_errors
    def close_cluster(ctx: typer.Context,
                      name: str = typer.Argument(..., help="Cluster integration.")) -> None:
        """Stop using a Cluster integration as a worker cluster."""
        with client_from(ctx) as client:
            client.put(f"/integrations/{name}/closecluster")
        typer.echo(f"integration/{name} cluster closed")
