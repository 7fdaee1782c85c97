"""Certificates and keys for a loopback control plane: a private CA, the apiserver's serving
certificate, its client certificate for kubelets (what node agents' log servers require),
and the service-account signing key."""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

SERVING_HOSTS = (
    "127.0.0.1", "localhost", "10.96.0.1", "kubernetes", "kubernetes.default",
    "kubernetes.default.svc", "kubernetes.default.svc.cluster.local",
)
KUBELET_CLIENT_USER = "kube-apiserver-kubelet-client"
KUBELET_CLIENT_GROUP = "system:masters"


@dataclass(frozen=True)
class PlanePki:
    ca_cert: Path
    ca_key: Path
    serving_cert: Path
    serving_key: Path
    service_account_key: Path
    kubelet_client_cert: Path
    kubelet_client_key: Path

    def files(self) -> tuple[Path, ...]:
        return (self.ca_cert, self.ca_key, self.serving_cert, self.serving_key,
                self.service_account_key, self.kubelet_client_cert, self.kubelet_client_key)


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> None:
    path.write_bytes(key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ))
    path.chmod(0o600)


def _validity() -> tuple[datetime.datetime, datetime.datetime]:
    now = datetime.datetime.now(datetime.UTC)
    return now - datetime.timedelta(hours=1), now + datetime.timedelta(days=365)


def _subject_alt_names(hosts: tuple[str, ...]) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(names)


def _issue_leaf(ca_cert_path: Path, ca_key_path: Path, cert_path: Path, key_path: Path,
                subject: x509.Name, usage: x509.ObjectIdentifier,
                alt_names: x509.SubjectAlternativeName | None = None) -> None:
    """Write a key and a certificate for ``subject`` and ``usage``, signed by the CA."""
    ca_cert = x509.load_pem_x509_certificate(ca_cert_path.read_bytes())
    ca_key = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    not_before, not_after = _validity()
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    )
    if alt_names is not None:
        builder = builder.add_extension(alt_names, critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(key_path, key)


def issue_serving_certificate(
    ca_cert_path: Path, ca_key_path: Path, cert_path: Path, key_path: Path,
    hosts: tuple[str, ...], common_name: str,
) -> None:
    """Write a serving certificate for `hosts` signed by the CA at `ca_cert_path`."""
    _issue_leaf(ca_cert_path, ca_key_path, cert_path, key_path,
                x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]),
                x509.oid.ExtendedKeyUsageOID.SERVER_AUTH, _subject_alt_names(hosts))


def issue_client_certificate(
    ca_cert_path: Path, ca_key_path: Path, cert_path: Path, key_path: Path,
    common_name: str, organizations: tuple[str, ...] = (),
) -> None:
    """Write a client certificate (user `common_name`, groups `organizations`) signed by the
    CA at `ca_cert_path`."""
    subject = x509.Name([
        *(x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in organizations),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])
    _issue_leaf(ca_cert_path, ca_key_path, cert_path, key_path, subject,
                x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH)


def write_certificates(directory: Path, extra_serving_hosts: tuple[str, ...] = ()) -> PlanePki:
    """Create (or reuse) the CA, the apiserver's serving and kubelet-client pairs and the
    service-account key. The serving certificate names `SERVING_HOSTS` and
    `extra_serving_hosts` (e.g. the address the apiserver advertises to pods)."""
    directory.mkdir(parents=True, exist_ok=True)
    pki = PlanePki(
        ca_cert=directory / "ca.crt",
        ca_key=directory / "ca.key",
        serving_cert=directory / "apiserver.crt",
        serving_key=directory / "apiserver.key",
        service_account_key=directory / "sa.key",
        kubelet_client_cert=directory / "apiserver-kubelet-client.crt",
        kubelet_client_key=directory / "apiserver-kubelet-client.key",
    )
    if all(p.exists() for p in pki.files()):
        return pki
    ca_key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cyclone-test-ca")])
    not_before, not_after = _validity()
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True,
                content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    pki.ca_cert.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    _write_key(pki.ca_key, ca_key)
    issue_serving_certificate(
        pki.ca_cert, pki.ca_key, pki.serving_cert, pki.serving_key,
        (*SERVING_HOSTS, *extra_serving_hosts), "kube-apiserver",
    )
    issue_client_certificate(
        pki.ca_cert, pki.ca_key, pki.kubelet_client_cert, pki.kubelet_client_key,
        KUBELET_CLIENT_USER, (KUBELET_CLIENT_GROUP,),
    )
    _write_key(pki.service_account_key, rsa.generate_private_key(65537, 2048))
    return pki
