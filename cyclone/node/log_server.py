"""A kubelet-compatible log endpoint, so a real API server can serve `kubectl logs`.

`GET /containerLogs/{namespace}/{pod}/{container}?follow=true|false[&tailLines=N]
[&limitBytes=N]` over HTTPS with a self-signed certificate kept in the data directory.

The logs are raw (no secret is masked yet) and stages share the host's network, so the
server answers only a caller whose TLS client certificate is signed by the CA it is given:
the API server's kubelet client certificate (`--kubelet-client-certificate`), as a kubelet
started with `--client-ca-file` does. Every other caller fails the TLS handshake.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import socket
import ssl
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from cyclone.node.layout import NodeLayout

ContainerActive = Callable[[str, str, str], bool]
"""Whether a container (namespace, pod, container) may still write to its log."""

_CHUNK = 64 * 1024
_FOLLOW_POLL_SECONDS = 0.1


class LogServerError(Exception):
    """The log server cannot start (its client CA is missing or not a certificate)."""


def ensure_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed serving certificate for 127.0.0.1 and this host, made once."""
    cert, key = directory / "kubelet.crt", directory / "kubelet.key"
    if cert.exists() and key.exists():
        return cert, key
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    directory.mkdir(parents=True, exist_ok=True)
    private_key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, socket.gethostname())])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(
            x509.SubjectAlternativeName([
                x509.DNSName(socket.gethostname()),
                x509.DNSName("localhost"),
                x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            ]),
            critical=False,
        )
        .sign(private_key, hashes.SHA256())
    )
    key.write_bytes(private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ))
    key.chmod(0o600)
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return cert, key


def check_client_ca(client_ca: Path) -> None:
    """Raise `LogServerError` unless `client_ca` holds a CA certificate."""
    _load_client_ca(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER), client_ca)


def server_context(cert: Path, key: Path, client_ca: Path) -> ssl.SSLContext:
    """TLS for the log server: its own pair, and a client certificate from `client_ca`
    required of every caller. No system CA is trusted (hence no `create_default_context`,
    which would load them)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    _load_client_ca(context, client_ca)
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def _load_client_ca(context: ssl.SSLContext, client_ca: Path) -> None:
    try:
        context.load_verify_locations(cafile=str(client_ca))
    except (OSError, ssl.SSLError) as exc:
        raise LogServerError(
            f"cannot load the log server's client CA {client_ca}: {exc}"
        ) from exc
    if not context.get_ca_certs():
        raise LogServerError(f"the log server's client CA {client_ca} holds no CA certificate")


class LogServer:
    def __init__(
        self, layout: NodeLayout, container_active: ContainerActive, client_ca: Path
    ) -> None:
        self.layout = layout
        self.container_active = container_active
        self.client_ca = Path(client_ca)

    async def start(self, port: int, host: str = "0.0.0.0") -> asyncio.Server:
        cert, key = await asyncio.to_thread(ensure_certificate, self.layout.data_dir / "pki")
        context = await asyncio.to_thread(server_context, cert, key, self.client_ca)
        return await asyncio.start_server(self._serve, host, port, ssl=context)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await reader.readuntil(b"\r\n\r\n")
            method, target, _ = request.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
            await self._answer(method, target, writer)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            await _respond(writer, 400, b"bad request\n")
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            with contextlib.suppress(ConnectionError, ssl.SSLError):
                writer.close()
                await writer.wait_closed()

    async def _answer(self, method: str, target: str, writer: asyncio.StreamWriter) -> None:
        url = urlsplit(target)
        parts = [unquote(p) for p in url.path.strip("/").split("/")]
        if method != "GET" or len(parts) != 4 or parts[0] != "containerLogs":
            await _respond(writer, 404, b"not found\n")
            return
        _, namespace, pod, container = parts
        if any(p in ("", ".", "..") or "/" in p for p in parts[1:]):
            await _respond(writer, 400, b"bad request\n")
            return
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        path = self.layout.log_path(namespace, pod, container)
        if not path.exists():
            message = f'container "{container}" in pod "{pod}" has no log\n'
            await _respond(writer, 404, message.encode())
            return
        follow = query.get("follow", "false").lower() in ("true", "1")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                     b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
        limit = int(query["limitBytes"]) if query.get("limitBytes", "").isdigit() else None
        tail = int(query["tailLines"]) if query.get("tailLines", "").isdigit() else None
        await self._stream(path, writer, follow, (namespace, pod, container), limit, tail)
        writer.write(b"0\r\n\r\n")
        await writer.drain()

    async def _stream(
        self,
        path: Path,
        writer: asyncio.StreamWriter,
        follow: bool,
        container: tuple[str, str, str],
        limit: int | None,
        tail: int | None,
    ) -> None:
        sent = 0
        with path.open("rb") as handle:
            if tail is not None:
                handle.seek(await asyncio.to_thread(_tail_offset, path, tail))
            while limit is None or sent < limit:
                want = _CHUNK if limit is None else min(_CHUNK, limit - sent)
                chunk = await asyncio.to_thread(handle.read, want)
                if chunk:
                    writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    await writer.drain()
                    sent += len(chunk)
                    continue
                if not follow or not self.container_active(*container):
                    if follow and (rest := await asyncio.to_thread(handle.read, want)):
                        writer.write(b"%x\r\n%s\r\n" % (len(rest), rest))
                        continue
                    return
                await asyncio.sleep(_FOLLOW_POLL_SECONDS)


def _tail_offset(path: Path, lines: int) -> int:
    data = path.read_bytes()
    if lines <= 0:
        return len(data)
    end = len(data) - 1 if data.endswith(b"\n") else len(data)
    position = end
    for _ in range(lines):
        position = data.rfind(b"\n", 0, position)
        if position < 0:
            return 0
    return position + 1


async def _respond(writer: asyncio.StreamWriter, code: int, body: bytes) -> None:
    reason = {400: "Bad Request", 404: "Not Found"}.get(code, "Error")
    writer.write(
        f"HTTP/1.1 {code} {reason}\r\nContent-Type: text/plain\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body
    )
    with contextlib.suppress(ConnectionError):
        await writer.drain()


async def serve_logs(
    group: asyncio.TaskGroup,
    layout: NodeLayout,
    port: int,
    container_active: ContainerActive,
    client_ca: Path,
) -> int:
    """Start the log server in `group` (closed when the group is cancelled); its port.

    Only callers with a client certificate signed by `client_ca` are served."""
    server = await LogServer(layout, container_active, client_ca).start(port)
    bound = server.sockets[0].getsockname()[1]

    async def serve() -> None:
        async with server:
            await server.serve_forever()

    group.create_task(serve(), name="node-log-server")
    return int(bound)
