"""go-plugin's automatic mutual TLS (AutoMTLS), the plugin's side.

The host generates a certificate for each plugin start and passes it, PEM,
in PLUGIN_CLIENT_CERT. The plugin generates its own (here), serves TLS that
requires a client certificate signed by the host's, and sends its own
certificate back in the handshake line, as base64 (standard alphabet, no
padding) of its DER. Both certificates are self-signed and name "localhost".
The same pair then secures the connections the plugin dials through the
broker: the plugin presents its certificate and trusts only the host's.
"""

import base64
import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

SERVER_NAME = "localhost"  # what go-plugin's certificates name and check


class Certificate:
    """A fresh self-signed ECDSA certificate and its key, as go-plugin makes
    them (mtls.go): a CA certificate for "localhost", usable by a server and
    a client, valid from 30 seconds ago."""

    def __init__(self):
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([
            x509.NameAttribute(NameOID.COMMON_NAME, SERVER_NAME),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Chima plugin"),
        ])
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(seconds=30))
            .not_valid_after(now + datetime.timedelta(days=365 * 30))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(SERVER_NAME)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=True,
                data_encipherment=False, key_agreement=True, key_cert_sign=True,
                crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([
                ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(key, hashes.SHA256())
        )
        self.cert_pem = cert.public_bytes(serialization.Encoding.PEM)
        self.key_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption())
        der = cert.public_bytes(serialization.Encoding.DER)
        # go-plugin decodes it with base64.RawStdEncoding: no padding.
        self.handshake_field = base64.b64encode(der).decode("ascii").rstrip("=")


def check_host_certificate(pem):
    """Parses the host's PEM certificate (PLUGIN_CLIENT_CERT) and returns it
    as bytes; raises ValueError when it is not one."""
    data = pem.encode("ascii") if isinstance(pem, str) else pem
    x509.load_pem_x509_certificate(data)  # raises ValueError
    return data
