"""What apps are told about a TLS session: the subject string and the WSGI/ASGI shapes."""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from hybridserve.apps.asgi import tls_extension
from hybridserve.apps.environ import ssl_variables
from hybridserve.apps.types import TLSInfo
from hybridserve.worker.tls import Subject, rfc4514

OIDS = {
    "commonName": NameOID.COMMON_NAME,
    "organizationName": NameOID.ORGANIZATION_NAME,
    "organizationalUnitName": NameOID.ORGANIZATIONAL_UNIT_NAME,
    "countryName": NameOID.COUNTRY_NAME,
    "domainComponent": NameOID.DOMAIN_COMPONENT,
}


def reference(subject: Subject) -> str:
    """cryptography's RFC 4514 string for the same subject."""
    rdns = [
        x509.RelativeDistinguishedName([x509.NameAttribute(OIDS[k], v) for k, v in rdn])
        for rdn in subject
    ]
    return x509.Name(rdns).rfc4514_string()


@pytest.mark.parametrize(
    "subject",
    [
        (
            (("countryName", "DE"),),
            (("organizationName", "Example, Inc."),),
            (("commonName", "a"),),
        ),
        ((("domainComponent", "org"),), (("domainComponent", "example"),)),
        ((("commonName", "#hash"),),),
        ((("commonName", " padded "),),),
        ((("commonName", 'a+b;c<d>e"f\\g'),),),
        ((("commonName", "x"), ("organizationalUnitName", "y")),),  # multi-valued RDN
    ],
)
def test_subject_matches_cryptography(subject: Subject) -> None:
    assert rfc4514(subject) == reference(subject)


SESSION = TLSInfo(
    version=0x0304,
    protocol="TLSv1.3",
    cipher="TLS_AES_256_GCM_SHA384",
    cipher_suite=0x1302,
    server_cert="SERVER PEM",
    client_cert_chain=(),
    client_cert_name=None,
)


def test_wsgi_without_a_client_certificate() -> None:
    assert ssl_variables(SESSION) == {
        "HTTPS": "on",
        "SSL_PROTOCOL": "TLSv1.3",
        "SSL_CIPHER": "TLS_AES_256_GCM_SHA384",
        "SSL_CLIENT_VERIFY": "NONE",
    }


def test_asgi_extension_has_every_key_of_the_spec() -> None:
    assert tls_extension(SESSION) == {
        "server_cert": "SERVER PEM",
        "client_cert_chain": [],
        "client_cert_name": None,
        "client_cert_error": None,
        "tls_version": 0x0304,
        "cipher_suite": 0x1302,
    }
