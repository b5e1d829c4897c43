"""Server-side TLS: the context (built in the master to check it), refusals that say why, and
what an app may learn about the TLS session and the client's certificate.

Why a custom ``SSLObject``: asyncio's and uvloop's TLS protocols drive the handshake through
``SSLContext.wrap_bio`` and, when ``do_handshake`` raises, abort the transport before writing
what OpenSSL left in the outgoing buffer: the fatal alert. A TLS 1.1 client then reads a bare
close instead of ``protocol_version``, a client without a required certificate an "unexpected
eof" instead of ``certificate_required``. ``SSLContext.sslobject_class`` is the documented hook:
when an alert waits, our object reports the failure as "want read", so the protocol flushes
the alert; the client hangs up on reading it (or the handshake timeout ends it), and any later
call raises the real error. With nothing to send (bytes that are not TLS) it fails at once.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import cast

from hybridserve.apps.types import TLSInfo
from hybridserve.config_groups import TLS
from hybridserve.errors import ConfigError

Subject = tuple[tuple[tuple[str, str], ...], ...]  # getpeercert()'s relative names
_VERIFY = {0: ssl.CERT_NONE, 1: ssl.CERT_OPTIONAL, 2: ssl.CERT_REQUIRED}
_VERSIONS = {"TLSv1": 0x0301, "TLSv1.1": 0x0302, "TLSv1.2": 0x0303, "TLSv1.3": 0x0304}
# RFC 4514's short names for the attributes Python reports by their long names.
_SHORT_NAMES = {
    "commonName": "CN",
    "localityName": "L",
    "stateOrProvinceName": "ST",
    "organizationName": "O",
    "organizationalUnitName": "OU",
    "countryName": "C",
    "streetAddress": "STREET",
    "domainComponent": "DC",
    "userId": "UID",
}


class AlertingSSLObject(ssl.SSLObject):
    """An SSLObject whose failed handshake leaves its alert to be sent (see the module doc)."""

    outgoing: ssl.MemoryBIO | None = None  # given by AlertingContext.wrap_bio
    _failure: ssl.SSLError | None = None  # set on the instance at the first failure

    def do_handshake(self) -> None:
        if self._failure is not None:
            raise self._failure
        try:
            super().do_handshake()
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            raise
        except ssl.SSLError as exc:
            if self.outgoing is None or not self.outgoing.pending:
                raise  # no alert to send (not TLS at all, say): close at once
            self._failure = exc
            raise ssl.SSLWantReadError("handshake failed; sending the alert first") from exc


class AlertingContext(ssl.SSLContext):
    """Hands each AlertingSSLObject the buffer its alert would wait in."""

    sslobject_class = AlertingSSLObject

    def wrap_bio(
        self,
        incoming: ssl.MemoryBIO,
        outgoing: ssl.MemoryBIO,
        server_side: bool = False,
        server_hostname: str | bytes | None = None,
        session: ssl.SSLSession | None = None,
    ) -> ssl.SSLObject:
        sslobj = super().wrap_bio(incoming, outgoing, server_side, server_hostname, session)
        if isinstance(sslobj, AlertingSSLObject):
            sslobj.outgoing = outgoing
        return sslobj


@dataclass(frozen=True, slots=True)
class ServerTLS:
    """The worker's TLS context, and what it needs to describe a session to apps."""

    context: ssl.SSLContext
    server_cert: str | None  # PEM of the leaf certificate we present
    cipher_ids: dict[str, int]  # OpenSSL cipher name -> IANA 16-bit suite number

    def describe(self, sslobj: ssl.SSLObject | None) -> TLSInfo | None:
        """The session as the ASGI TLS extension and mod_ssl's variables show it."""
        if sslobj is None:
            return None
        cipher = sslobj.cipher()
        version = sslobj.version() or ""
        der = sslobj.getpeercert(binary_form=True)
        chain = (ssl.DER_cert_to_PEM_cert(der),) if der else ()
        subject = (sslobj.getpeercert() or {}).get("subject") if der else None
        return TLSInfo(
            version=_VERSIONS.get(version),
            protocol=version,
            cipher=cipher[0] if cipher else "",
            cipher_suite=self.cipher_ids.get(cipher[0]) if cipher else None,
            server_cert=self.server_cert,
            client_cert_chain=chain,
            client_cert_name=rfc4514(cast(Subject, subject)) if subject else None,
        )


def server_context(tls: TLS, alpn: tuple[str, ...] = ("http/1.1",)) -> ssl.SSLContext | None:
    """None without a certificate; raises ConfigError naming the file that is wrong.

    ``alpn``: the protocols offered, best first ("h2" too when HTTP/2 is on).
    """
    if tls.certfile is None:
        return None
    context = AlertingContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(list(alpn))
    try:
        context.load_cert_chain(tls.certfile, tls.keyfile, tls.keyfile_password)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"certfile {tls.certfile!r} / keyfile {tls.keyfile!r}: {exc}") from None
    if tls.ca_certs is not None:
        try:
            context.load_verify_locations(tls.ca_certs)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"ca-certs {tls.ca_certs!r}: {exc}") from None
    context.verify_mode = _VERIFY[tls.cert_reqs]
    if tls.ciphers:
        try:
            context.set_ciphers(tls.ciphers)
        except ssl.SSLError as exc:
            raise ConfigError(f"ssl-ciphers {tls.ciphers!r}: {exc}") from None
    return context


def server_tls(tls: TLS, alpn: tuple[str, ...] = ("http/1.1",)) -> ServerTLS | None:
    """The context plus the facts apps are told; built once per worker."""
    context = server_context(tls, alpn)
    if context is None or tls.certfile is None:
        return None
    ids = {c["name"]: c["id"] & 0xFFFF for c in context.get_ciphers()}
    return ServerTLS(context, _first_pem(tls.certfile), ids)


def _first_pem(path: str) -> str | None:
    """The first certificate in ``path`` (the leaf of the chain we send)."""
    marker = "-----END CERTIFICATE-----"
    try:
        with open(path, encoding="ascii", errors="replace") as file:
            text = file.read()
    except OSError:
        return None
    start = text.find("-----BEGIN CERTIFICATE-----")
    end = text.find(marker, start)
    if start < 0 or end < 0:
        return None
    return text[start : end + len(marker)] + "\n"


def rfc4514(subject: Subject) -> str:
    """A subject from ``getpeercert()`` as an RFC 4514 string (most specific RDN first)."""
    rdns = []
    for rdn in reversed(subject):
        rdns.append("+".join(f"{_SHORT_NAMES.get(k, k)}={_escape(v)}" for k, v in rdn))
    return ",".join(rdns)


def _escape(value: str) -> str:
    out = "".join("\\" + ch if ch in ',+"\\<>;' else ch for ch in value)
    if out.startswith(("#", " ")):
        out = "\\" + out
    if out.endswith(" ") and not out.endswith("\\ "):
        out = out[:-1] + "\\ "
    return out
