"""The server-side TLS context, built from the TLS settings (in the master to check them)."""

from __future__ import annotations

import ssl

from hybridserve.config import TLS
from hybridserve.errors import ConfigError

_VERIFY = {0: ssl.CERT_NONE, 1: ssl.CERT_OPTIONAL, 2: ssl.CERT_REQUIRED}


def server_context(tls: TLS) -> ssl.SSLContext | None:
    """None without a certificate; raises ConfigError naming the file that is wrong."""
    if tls.certfile is None:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["http/1.1"])
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
