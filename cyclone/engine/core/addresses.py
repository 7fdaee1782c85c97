"""Which addresses a tenant's outbound calls may reach.

SCM servers, notification receivers and delegation URLs are chosen by tenants, yet the
server and the engine call them, from inside the cluster and with credentials. So a call
to an address of *this host* or of the cloud's metadata service is refused unless an
admin allowed local addresses for the tenant (``spec.allowLocalAddresses``): loopback
(127/8, ::1), link-local (169.254/16, fe80::/10, which holds the metadata address),
unspecified and "this network" (0.0.0.0/8, ::), and known metadata addresses outside
those ranges. Private networks (10/8, 192.168/16…) stay allowed: that is where a
company's own GitLab lives.

`local_address_problem` and `literal_url_problem` are pure; `check_host` resolves a name
and checks every address it resolves to, and `GuardedNetworkBackend` does so for each
connection an HTTP client opens and connects to the address it checked, so a name that
resolves elsewhere between the check and the connection (DNS rebinding) and a redirect
to a local address are refused too.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import socket
from collections.abc import Awaitable, Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]
"""(host, port) → the IP addresses the host resolves to."""

METADATA_ADDRESSES = frozenset(ipaddress.ip_address(a) for a in (
    "169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200",
))
_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")
_LOCAL_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")
ALLOW_HINT = "an admin may allow local addresses for the tenant (spec.allowLocalAddresses)"


class LocalAddressRefused(ValueError):
    """A tenant's URL designates this host, a link-local or a metadata address."""


def _parse(address: str | IPAddress) -> IPAddress | None:
    if isinstance(address, ipaddress.IPv4Address | ipaddress.IPv6Address):
        return address
    text = str(address).strip().strip("[]").split("%", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def local_address_problem(address: str | IPAddress) -> str | None:
    """What is local about an IP address (``"loopback"``…), or None for any other one."""
    ip = _parse(address)
    if ip is None:
        return None
    if isinstance(ip, ipaddress.IPv6Address):
        mapped = ip.ipv4_mapped or ip.sixtofour
        if mapped is not None:
            return local_address_problem(mapped)
    if ip in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_unspecified or (isinstance(ip, ipaddress.IPv4Address) and ip in _THIS_NETWORK):
        return "an address of this host"
    return None


def _is_local_name(host: str) -> bool:
    name = host.lower().rstrip(".")
    return name in _LOCAL_NAMES or name.endswith(".localhost")


def host_problem(host: str) -> str | None:
    """What is local about a host as written (an IP literal or a name like localhost)."""
    if _is_local_name(host):
        return "a loopback address"
    return local_address_problem(host)


def literal_url_problem(url: str | None) -> str | None:
    """Why `url` designates a local address as written (no DNS lookup), or None."""
    if not url:
        return None
    try:
        host = urlsplit(str(url).strip()).hostname
    except ValueError:
        return None
    if not host:
        return None
    problem = host_problem(host)
    return f"{url!r} designates {problem}" if problem else None


async def system_resolver(host: str, port: int) -> list[str]:
    """The addresses of `host`, as the operating system resolves them."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def refusal(host: str, problem: str) -> LocalAddressRefused:
    return LocalAddressRefused(f"{host} is {problem}; {ALLOW_HINT}")


async def check_host(host: str, port: int, *, resolver: Resolver | None = None) -> list[str]:
    """The addresses of `host` once each is checked; raises `LocalAddressRefused` when
    one of them is local (and `OSError` when the name does not resolve)."""
    problem = host_problem(host)
    if problem:
        raise refusal(host, problem)
    literal = _parse(host)
    addresses = [str(literal)] if literal else await (resolver or system_resolver)(host, port)
    for address in addresses:
        problem = local_address_problem(address)
        if problem:
            raise refusal(f"{host} ({address})" if address != host else host, problem)
    if not addresses:
        raise OSError(f"{host} does not resolve")
    return addresses


class GuardedNetworkBackend(httpcore.AsyncNetworkBackend):
    """An httpcore network backend that checks where each connection goes, then connects
    to the very address it checked (TLS still verifies the name in the URL)."""

    def __init__(self, resolver: Resolver | None = None) -> None:
        self._inner = httpcore.AnyIOBackend()
        self._resolver = resolver

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,  # noqa: ASYNC109
                          local_address: str | None = None,
                          socket_options: Iterable[Any] | None = None,
                          ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = await check_host(host, port, resolver=self._resolver)
        except LocalAddressRefused as exc:
            raise httpcore.ConnectError(str(exc)) from exc
        except OSError as exc:
            raise httpcore.ConnectError(f"{host}: {exc}") from exc
        last: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(address, port, timeout, local_address,
                                                     socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    async def connect_unix_socket(self, path: str, timeout: float | None = None,  # noqa: ASYNC109
                                  socket_options: Iterable[Any] | None = None,
                                  ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not reachable from tenant URLs")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def guarded_transport(*, allow_local: bool, resolver: Resolver | None = None
                      ) -> httpx.AsyncHTTPTransport:
    """An httpx transport for calls to tenant-chosen URLs: local addresses refused unless
    `allow_local`."""
    transport = httpx.AsyncHTTPTransport()
    if not allow_local:
        transport._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            network_backend=GuardedNetworkBackend(resolver),
        )
    return transport


def guarded_client(*, allow_local: bool, resolver: Resolver | None = None,
                   **options: Any) -> httpx.AsyncClient:
    """An httpx client for tenant-chosen URLs. Proxies from the environment are not used:
    the address checked must be the one connected to."""
    return httpx.AsyncClient(transport=guarded_transport(allow_local=allow_local,
                                                         resolver=resolver),
                             trust_env=False, **options)


def refused_by(exc: BaseException) -> LocalAddressRefused | None:
    """The `LocalAddressRefused` behind an httpx error of a guarded client, if any."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, LocalAddressRefused):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def allows_local_addresses(namespace_obj: dict | None, info_annotation: str) -> bool:
    """Whether the tenant whose metadata namespace is `namespace_obj` may call local
    addresses (its spec, kept as JSON in the `info_annotation` annotation)."""
    annotations = ((namespace_obj or {}).get("metadata") or {}).get("annotations") or {}
    try:
        spec = json.loads(annotations.get(info_annotation) or "{}")
    except ValueError:
        return False
    return isinstance(spec, dict) and spec.get("allowLocalAddresses") is True
