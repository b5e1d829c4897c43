"""Shared fixtures: ``serve`` starts real servers and stops every one of them afterwards."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

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
