"""Certificates made at start: a trustme CA and server certificate for 127.0.0.1, and the
connected app's RSA key pair with the self-signed certificate Salesforce would hold for it.

simple-salesforce only speaks https, so the sandbox serves TLS and hands clients the CA file
to trust (``requests.Session.verify``); nothing is installed system-wide.  Files live in a
temporary directory removed by ``close()``.
"""

from __future__ import annotations

import shutil
import ssl
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.x509.oid import NameOID


def _key_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def make_key_pair(common_name: str) -> tuple[bytes, x509.Certificate]:
    """An RSA key (PEM) and a self-signed certificate for it, as an admin uploads to a connected app."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=365)).sign(key, hashes.SHA256()))
    return _key_pem(key), cert


class TlsMaterial:
    def __init__(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="closedloop-sf-"))
        self._ca = trustme.CA()
        self._server_cert = self._ca.issue_cert("127.0.0.1", "localhost")
        self.ca_file = self.directory / "ca.pem"
        self._ca.cert_pem.write_to_path(str(self.ca_file))
        key_pem, self.app_certificate = make_key_pair("closedloop-sandbox-connected-app")
        self.jwt_private_key_file = self.directory / "connected_app.key"
        self.jwt_private_key_file.write_bytes(key_pem)
        self.jwt_private_key_file.chmod(0o600)
        self.app_certificate_file = self.directory / "connected_app.crt"
        self.app_certificate_file.write_bytes(self.app_certificate.public_bytes(serialization.Encoding.PEM))

    @property
    def app_public_key(self) -> RSAPublicKey:
        key = self.app_certificate.public_key()
        assert isinstance(key, RSAPublicKey)
        return key

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._server_cert.configure_cert(context)
        return context

    def close(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)
