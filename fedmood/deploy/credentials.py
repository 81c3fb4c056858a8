"""Credentials of a local Flower federation, generated locally with ``cryptography`` (no openssl).

* a certificate authority (self-signed, ``ca.crt``/``ca.key``) and a SuperLink server certificate
  signed by it for ``127.0.0.1`` and ``localhost`` (``server.pem``/``server.key``): the SuperLink
  serves TLS with them, SuperNodes and the ``flwr`` CLI verify it against ``ca.crt``;
* one EC P-384 key pair per SuperNode in OpenSSH format (``node-<i>`` / ``node-<i>.pub``), which
  is what ``flower-supernode --auth-supernode-private-key`` and ``flwr supernode register`` read.

Private keys are written with mode 0600, atomically; existing files are kept (re-running is safe).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from fedmood.results import atomic_write_bytes

HOSTS = ("127.0.0.1", "localhost")
VALID_DAYS = 365


@dataclass(frozen=True)
class TlsFiles:
    """Paths of the CA certificate and the SuperLink's certificate and key."""

    ca_cert: Path
    server_cert: Path
    server_key: Path


@dataclass(frozen=True)
class NodeKey:
    """A SuperNode's authentication key pair (OpenSSH private key and public key files)."""

    private: Path
    public: Path


def _write_private(path: Path, key: ec.EllipticCurvePrivateKey, fmt: serialization.PrivateFormat) -> None:
    data = key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption())
    atomic_write_bytes(path, data)
    os.chmod(path, 0o600)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "fedmood"), x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    )


def _certificate(
    subject, issuer, public_key, signing_key, *, ca: bool, hosts: tuple[str, ...] = ()
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
    else:
        sans = [x509.IPAddress(ipaddress.ip_address(h)) if h[0].isdigit() else x509.DNSName(h) for h in hosts]
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False).add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
    return builder.sign(signing_key, hashes.SHA256())


def tls_files(folder: str | Path) -> TlsFiles:
    """The paths of the TLS files under ``folder`` (made by :func:`ensure_tls`)."""
    folder = Path(folder)
    return TlsFiles(folder / "ca.crt", folder / "server.pem", folder / "server.key")


def ensure_tls(folder: str | Path, hosts: tuple[str, ...] = HOSTS) -> TlsFiles:
    """A CA and a server certificate for ``hosts`` under ``folder`` (made once, then reused)."""
    folder = Path(folder)
    files = tls_files(folder)
    if all(p.is_file() for p in (files.ca_cert, files.server_cert, files.server_key)):
        return files
    folder.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP384R1())
    ca_name = _name("fedmood local CA")
    ca_cert = _certificate(ca_name, ca_name, ca_key.public_key(), ca_key, ca=True)
    server_key = ec.generate_private_key(ec.SECP384R1())
    server_cert = _certificate(_name(hosts[0]), ca_name, server_key.public_key(), ca_key, ca=False, hosts=hosts)
    _write_private(folder / "ca.key", ca_key, serialization.PrivateFormat.PKCS8)
    _write_private(files.server_key, server_key, serialization.PrivateFormat.PKCS8)
    atomic_write_bytes(files.server_cert, server_cert.public_bytes(serialization.Encoding.PEM))
    atomic_write_bytes(files.ca_cert, ca_cert.public_bytes(serialization.Encoding.PEM))  # last: marks completion
    return files


def ensure_node_key(folder: str | Path, name: str) -> NodeKey:
    """The EC P-384 key pair ``<folder>/<name>`` (private, OpenSSH) and ``<name>.pub`` (made once)."""
    folder = Path(folder)
    key = NodeKey(folder / name, folder / f"{name}.pub")
    if key.private.is_file() and key.public.is_file():
        return key
    folder.mkdir(parents=True, exist_ok=True)
    private = ec.generate_private_key(ec.SECP384R1())
    _write_private(key.private, private, serialization.PrivateFormat.OpenSSH)
    public = private.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    atomic_write_bytes(key.public, public + b"\n")
    return key
