"""Cluster DNS of a real node: dnsmasq answering `<service>.<namespace>.svc.cluster.local`.

dnsmasq listens on the node's bridge address and answers only from the hosts files in a
directory (`--hostsdir`), re-reading a file by itself (inotify) whenever it is replaced.
`ServiceRecords`, a thread of the process that started the node, lists the plane's Services,
then watches them from that list's resourceVersion and lists again at the first change; when
their ClusterIPs changed, it writes the one hosts file anew (written beside the directory,
then renamed into it, so dnsmasq never reads half a file).
Headless Services (ClusterIP `None`) and those without a ClusterIP get no record.

`resolve` is a minimal DNS client (one A query over UDP), enough to wait for the server and to
check it from the host without a resolver library.
"""

from __future__ import annotations

import grp
import ipaddress
import json
import os
import pwd
import secrets
import socket
import ssl
import struct
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from cyclone.devcluster.plane import ControlPlane

CLUSTER_DOMAIN = "cluster.local"
HOSTS_FILE_NAME = "services"
RETRY_INTERVAL = 0.5
"""Seconds before listing again after a failed list or watch."""
WATCH_SECONDS = 2
"""How long one watch request lasts at most: how long `stop` may wait for the thread."""
DNS_USER = "nobody"
HOSTS_DIR_MODE = 0o755
HOSTS_FILE_MODE = 0o644
"""Service names and ClusterIPs are no secret; dnsmasq reads them as `DNS_USER`."""


def hosts_lines(services: list[dict[str, Any]], domain: str = CLUSTER_DOMAIN) -> str:
    """The hosts file for `services` (items of a Service list): one line per Service with a
    ClusterIP, sorted, so that an unchanged cluster gives an unchanged file."""
    lines = []
    for service in services:
        meta = service.get("metadata") or {}
        name, namespace = meta.get("name"), meta.get("namespace")
        address = (service.get("spec") or {}).get("clusterIP") or ""
        try:
            ipaddress.ip_address(address)
        except ValueError:
            continue
        if name and namespace:
            lines.append(f"{address} {name}.{namespace}.svc.{domain}")
    return "".join(f"{line}\n" for line in sorted(lines))


def unprivileged_account() -> tuple[str, str]:
    """The user dnsmasq answers as, and that user's own group (`nogroup` or `nobody`)."""
    user = pwd.getpwnam(DNS_USER)
    return user.pw_name, grp.getgrgid(user.pw_gid).gr_name


def dnsmasq_argv(executable: str, *, listen_address: str, hosts_dir: Path, pid_file: Path,
                 domain: str = CLUSTER_DOMAIN) -> list[str]:
    """dnsmasq answering on `listen_address`:53 from `hosts_dir` alone: no upstream servers,
    no /etc/hosts, no configuration file; every other name under `domain` is NXDOMAIN.

    It parses the queries of every pod, so it runs as `nobody`: started as root, it binds
    port 53 and writes its pid file, then drops to that user. So `hosts_dir` and the file in
    it must be readable by anyone, and every directory above it passable (`HOSTS_DIR_MODE`).
    """
    user, group = unprivileged_account()
    return [
        executable, "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv",
        "--no-hosts", f"--listen-address={listen_address}", "--bind-interfaces", "--port=53",
        f"--hostsdir={hosts_dir}", f"--local=/{domain}/", f"--pid-file={pid_file}",
        f"--user={user}", f"--group={group}", "--log-facility=-",
    ]


class ServiceRecords(threading.Thread):
    """Keeps the hosts file in `hosts_dir` in step with the Services of `plane` (module doc).

    `synced` is set once the file holds the Services of a first successful list; `error`
    holds the last failure to list them (cleared by the next success).
    """

    def __init__(self, plane: ControlPlane, hosts_dir: Path, staging_dir: Path,
                 interval: float = RETRY_INTERVAL) -> None:
        super().__init__(name="node-service-records", daemon=True)
        self.plane, self.hosts_dir, self.staging_dir = plane, hosts_dir, staging_dir
        self.interval = interval
        self.synced = threading.Event()
        self.error = ""
        self._stopping = threading.Event()
        self._written: str | None = None

    def run(self) -> None:
        while not self._stopping.is_set():
            version = self.sync_once()
            if version is None or not self._watch_until_change(version):
                self._stopping.wait(self.interval)

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        if self.is_alive():
            self.join(timeout)

    def sync_once(self) -> str | None:
        """List the Services and write the hosts file if it changed; the list's
        resourceVersion, or None when that failed (`error` says why)."""
        try:
            listed = self._get("/api/v1/services", timeout=5)
        except (OSError, ssl.SSLError, ValueError) as exc:
            self.error = f"listing Services failed: {exc}"
            return None
        content = hosts_lines(listed.get("items") or [])
        if content != self._written:
            try:
                self._write(content)
            except OSError as exc:
                self.error = f"writing the hosts file failed: {exc}"
                return None
            self._written = content
        self.error = ""
        self.synced.set()
        return (listed.get("metadata") or {}).get("resourceVersion") or None

    def _watch_until_change(self, version: str) -> bool:
        """Block until a Service changes after `version` (True) or the watch ends without
        one (True too: list again); False when the watch failed."""
        path = (f"/api/v1/services?watch=1&resourceVersion={version}"
                f"&timeoutSeconds={WATCH_SECONDS}")
        try:
            with self._open(path, timeout=WATCH_SECONDS + 5) as stream:
                stream.readline()
        except (OSError, ssl.SSLError) as exc:
            self.error = f"watching Services failed: {exc}"
            return False
        return True

    def _open(self, path: str, timeout: float) -> Any:
        context = ssl.create_default_context(cafile=str(self.plane.ca_file))
        request = urllib.request.Request(
            f"{self.plane.server}{path}", headers={"Authorization": f"Bearer {self.plane.token}"})
        try:
            return urllib.request.urlopen(request, timeout=timeout, context=context)
        except urllib.error.HTTPError as exc:
            raise OSError(f"HTTP {exc.code}") from None

    def _get(self, path: str, timeout: float) -> dict[str, Any]:
        with self._open(path, timeout) as response:
            return json.loads(response.read())

    def _write(self, content: str) -> None:
        staged = self.staging_dir / f"{HOSTS_FILE_NAME}.{secrets.token_hex(4)}"
        staged.write_text(content)
        staged.chmod(HOSTS_FILE_MODE)
        os.replace(staged, self.hosts_dir / HOSTS_FILE_NAME)


def _encode_name(name: str) -> bytes:
    labels = [label.encode("idna") for label in name.rstrip(".").split(".")]
    return b"".join(bytes([len(label)]) + label for label in labels) + b"\0"


def _skip_name(message: bytes, offset: int) -> int:
    while True:
        length = message[offset]
        if length == 0:
            return offset + 1
        if length & 0xC0 == 0xC0:
            return offset + 2
        offset += 1 + length


def resolve(name: str, server: str, port: int = 53, timeout: float = 2.0) -> list[str] | None:
    """The IPv4 addresses `server` gives for `name` (an A query over UDP): [] for NXDOMAIN or
    no record, None when it does not answer or answers with another error."""
    query_id = secrets.randbelow(1 << 16)
    question = _encode_name(name) + struct.pack(">HH", 1, 1)
    query = struct.pack(">HHHHHH", query_id, 0x0100, 1, 0, 0, 0) + question
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.sendto(query, (server, port))
            answer, _ = sock.recvfrom(4096)
        except OSError:
            return None
    if len(answer) < 12 or struct.unpack(">H", answer[:2])[0] != query_id:
        return None
    flags, questions, records = struct.unpack(">HHH", answer[2:8])
    code = flags & 0xF
    if code == 3:
        return []
    if code != 0:
        return None
    offset = 12
    for _ in range(questions):
        offset = _skip_name(answer, offset) + 4
    addresses = []
    for _ in range(records):
        offset = _skip_name(answer, offset)
        kind, _class, _ttl, length = struct.unpack(">HHIH", answer[offset:offset + 10])
        offset += 10
        if kind == 1 and length == 4:
            addresses.append(socket.inet_ntoa(answer[offset:offset + 4]))
        offset += length
    return addresses
