"""Calls to URLs a tenant chose, made so that they cannot reach a local address.

`check_host` resolves a name and checks every address it resolves to
(`cyclone.engine.core.addresses`); `GuardedNetworkBackend` does so for each connection an
HTTP client opens and connects to the very address it checked, so a name that resolves
elsewhere between a check and the connection (DNS rebinding) and a redirect to a local
address are refused too. Used by the engine (notifications, SCM API calls, delegation
requests) and the server (SCM listings).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import httpcore
import httpx

from cyclone.engine.core.addresses import (
    LocalAddressRefused,
    host_problem,
    literal_address,
    refusal,
    resolved_refusal,
)

Resolver = Callable[[str, int], Awaitable[list[str]]]
"""(host, port) → the IP addresses the host resolves to."""


async def system_resolver(host: str, port: int) -> list[str]:
    """The addresses of `host`, as the operating system resolves them."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


async def check_host(host: str, port: int, *, resolver: Resolver | None = None) -> list[str]:
    """The addresses of `host` once each is checked; raises `LocalAddressRefused` when
    one of them is local (and `OSError` when the name does not resolve)."""
    problem = host_problem(host)
    if problem:
        raise refusal(host, problem)
    literal = literal_address(host)
    addresses = [literal] if literal else await (resolver or system_resolver)(host, port)
    refused = resolved_refusal(host, addresses)
    if refused is not None:
        raise refused
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
