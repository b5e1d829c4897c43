"""Shared fixtures: ``serve`` starts real servers and stops every one of them afterwards."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import trustme

from tests.harness import Server

ServeFactory = Callable[..., Server]


@pytest.fixture
def serve() -> Iterator[ServeFactory]:
    """Start ``python -m hybridserve ARGS`` on 127.0.0.1:0; TERM must stop it cleanly."""
    started: list[Server] = []

    def start(*args: str, ready: bool = True, **kwargs: object) -> Server:
        server = Server(*args, **kwargs)  # type: ignore[arg-type]
        started.append(server)
        return server.start(ready=ready)

    yield start
    for server in started:
        if server.proc is not None and server.proc.poll() is None:
            code = server.stop()
            assert code == 0, f"server exited with {code} on SIGTERM:\n{server.log}"


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A CA, a server certificate for 127.0.0.1, and a client certificate for alice."""
    ca = trustme.CA()
    folder = tmp_path_factory.mktemp("certs")
    paths = {name: folder / f"{name}.pem" for name in ("ca", "cert", "key", "client")}
    ca.cert_pem.write_to_path(str(paths["ca"]))
    server = ca.issue_cert("127.0.0.1", "localhost")
    for i, pem in enumerate(server.cert_chain_pems):
        pem.write_to_path(str(paths["cert"]), append=i > 0)
    server.private_key_pem.write_to_path(str(paths["key"]))
    client = ca.issue_cert(
        "alice@example.test", common_name="alice", organization_name="Example, Inc."
    )
    client.private_key_and_cert_chain_pem.write_to_path(str(paths["client"]))
    return paths
