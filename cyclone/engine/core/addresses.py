"""Which addresses a tenant's outbound calls may reach.

SCM servers, notification receivers and delegation URLs are chosen by tenants, yet the
server and the engine call them, from inside the cluster and with credentials. So a call
to an address of *this host* or of the cloud's metadata service is refused unless an
admin allowed local addresses for the tenant (``spec.allowLocalAddresses``): loopback
(127/8, ::1), link-local (169.254/16, fe80::/10, which holds the metadata address),
unspecified and "this network" (0.0.0.0/8, ::), and known metadata addresses outside
those ranges. Private networks (10/8, 192.168/16…) stay allowed: that is where a
company's own GitLab lives.

These decisions are pure; `cyclone.engine.outbound` resolves names and checks every
address they resolve to, for each connection an HTTP client opens, and connects to the
address it checked.
"""

from __future__ import annotations

import ipaddress
import json
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

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


def refusal(host: str, problem: str) -> LocalAddressRefused:
    return LocalAddressRefused(f"{host} is {problem}; {ALLOW_HINT}")


def resolved_refusal(host: str, addresses: list[str]) -> LocalAddressRefused | None:
    """The refusal for the first local address `host` resolved to, or None."""
    for address in addresses:
        problem = local_address_problem(address)
        if problem:
            return refusal(f"{host} ({address})" if address != host else host, problem)
    return None


def literal_address(host: str) -> str | None:
    """`host` as an IP address when it is written as one."""
    parsed = _parse(host)
    return str(parsed) if parsed else None


def allows_local_addresses(namespace_obj: dict | None, info_annotation: str) -> bool:
    """Whether the tenant whose metadata namespace is `namespace_obj` may call local
    addresses (its spec, kept as JSON in the `info_annotation` annotation)."""
    annotations = ((namespace_obj or {}).get("metadata") or {}).get("annotations") or {}
    try:
        spec = json.loads(annotations.get(info_annotation) or "{}")
    except ValueError:
        return False
    return isinstance(spec, dict) and spec.get("allowLocalAddresses") is True
