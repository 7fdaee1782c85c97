""""Test connection" of an integration: list the repositories of an SCM with its stored
credentials, or reach a cluster's API server; the outcome is one line.

The credentials are read from the integration's record inside the server and never leave
it. An address the tenant may not use (a local one, unless its spec allows them) is refused
before anything is sent, as the SCM listings and notifications are.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from urllib.parse import urlsplit

from cyclone.engine.core.addresses import ALLOW_HINT, LocalAddressRefused
from cyclone.engine.outbound import check_host
from cyclone.kube import errors, kinds
from cyclone.server.execution_credentials import execution_credential
from cyclone.server.integration_records import read_integration_secret, spec_of_secret
from cyclone.server.listing import ListQuery
from cyclone.server.scmrepos import RESOLVER, list_repos, tenant_allows_local
from cyclone.server.state import ServerState

CLUSTER_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class Outcome:
    ok: bool
    message: str


def _line(text: str) -> str:
    return " ".join(str(text).split())


async def check_connection(state: ServerState, tenant: str, name: str) -> Outcome:
    """The one-line outcome of testing integration `name` of `tenant`."""
    spec = spec_of_secret(await read_integration_secret(state.cluster, tenant, name))
    kind = spec.get("type")
    try:
        if kind == "SCM":
            return await _check_scm(state, tenant, name, (spec.get("scm") or {}).get("type"))
        if kind == "Cluster":
            return await _check_cluster(state, tenant, spec.get("cluster") or {})
    except errors.ApiError as exc:
        return Outcome(False, _line(exc.message) or exc.reason)
    return Outcome(False, f"testing the connection is not available for {kind} integrations")


async def _check_scm(state: ServerState, tenant: str, name: str, scm_type: str | None
                    ) -> Outcome:
    listed = await list_repos(name, query=ListQuery(limit=1), tenant=tenant, state=state)
    total = (listed.get("metadata") or {}).get("total", 0)
    noun = "repository" if total == 1 else "repositories"
    return Outcome(True, f"Connected to {scm_type or 'GitHub'}: {total} {noun} visible "
                         "with these credentials")


async def _check_address(state: ServerState, tenant: str, server: str) -> None:
    if await tenant_allows_local(state, tenant):
        return
    parts = urlsplit(server)
    if not parts.hostname:
        raise errors.BadRequest(f"the cluster's server {server!r} has no host")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        await check_host(parts.hostname, port, resolver=state.extras.get(RESOLVER))
    except LocalAddressRefused as exc:
        raise errors.Forbidden(f"the cluster's server is refused: {exc}; {ALLOW_HINT}"
                               ) from exc
    except (OSError, ValueError) as exc:
        raise errors.Unavailable(f"{parts.hostname} does not resolve: {exc}") from exc


async def _check_cluster(state: ServerState, tenant: str, source: dict) -> Outcome:
    if source.get("isControlCluster"):
        await state.cluster.get(kinds.NAMESPACE, "default")
        return Outcome(True, "Connected: this is Cyclone's own cluster")
    from cyclone.kube.remote import RemoteCluster

    try:
        credential = execution_credential(source.get("credential") or {})
        remote = RemoteCluster.from_credential(credential, name="test", max_retries=0,
                                               timeout=CLUSTER_TIMEOUT_SECONDS)
    except errors.ApiError:
        raise
    except Exception as exc:  # any unusable credential is the tenant's input
        raise errors.BadRequest(f"cannot use the cluster credential: {_line(str(exc))}"
                                ) from exc
    try:
        await _check_address(state, tenant, str(remote.server))
        try:
            async with asyncio.timeout(CLUSTER_TIMEOUT_SECONDS):
                await remote.get(kinds.NAMESPACE, "default")
        except errors.NotFound:
            pass
        except TimeoutError as exc:
            raise errors.Unavailable(f"{remote.server} did not answer within "
                                     f"{CLUSTER_TIMEOUT_SECONDS:.0f}s") from exc
        except errors.Unauthorized as exc:
            raise errors.Unauthorized(f"{remote.server} refused the credentials "
                                      "(HTTP 401)") from exc
    finally:
        await remote.close()
    return Outcome(True, f"Connected to the API server at {remote.server}")
