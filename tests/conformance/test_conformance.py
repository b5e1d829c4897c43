"""The RFC 9112 cases against a live server, per parser backend and app interface.

Four module-scoped servers (h11/httptools x WSGI/ASGI demo app) answer every case; the
sans-IO run (``test_sansio_cuts.py``) covers every way of cutting the same bytes.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator

import pytest

from tests.conformance.cases import Case
from tests.conformance.cases_rules import ALL_CASES
from tests.harness import Response, Server, SocketReader

BACKENDS = ["h11", "httptools"]
CLOSE_WAIT_S = 1.0  # a server that means to close does so at once; keep-alive is 5 s


INTERFACES = ["wsgi", "asgi"]
SERVERS = [(backend, interface) for backend in BACKENDS for interface in INTERFACES]


@pytest.fixture(scope="module", params=SERVERS, ids=["-".join(s) for s in SERVERS])
def server(request: pytest.FixtureRequest) -> Iterator[Server]:
    backend, interface = request.param
    args = ("-w", "1", "--http", backend, "--interface", interface, "--keep-alive", "5")
    server = Server(*args).start()
    server.backend = backend  # type: ignore[attr-defined]  # for the test's eyes
    yield server
    assert server.stop() == 0, server.log


def exchange(server: Server, case: Case, expected: int | None) -> tuple[list[Response], bool]:
    """Send the case's bytes; the responses that came, and whether the server closed.

    With ``expected`` responses known, reading stops there and the close is only waited
    for when the case says something about it; for a refusal, reading goes on until the
    server closes (or stays quiet for CLOSE_WAIT_S).
    """
    with socket.create_connection((server.host, server.port), timeout=5) as sock:
        for i, part in enumerate(case.parts):
            if i:
                time.sleep(0.02)
            try:
                sock.sendall(part)
            except OSError:
                break  # the server already refused and closed
        if case.eof:
            sock.shutdown(socket.SHUT_WR)
        reader = SocketReader(sock)
        responses: list[Response] = []
        head_first = case.parts[0].startswith(b"HEAD ")
        while expected is None or len(responses) < expected:
            try:
                responses.append(reader.read_response(head_request=head_first and not responses))
            except (EOFError, ConnectionResetError):
                return responses, True
            except TimeoutError:
                return responses, False
        if case.closed is None:
            return responses, False
        sock.settimeout(CLOSE_WAIT_S if case.closed else 0.3)
        try:
            return responses, sock.recv(1) == b"" and not reader.buf
        except ConnectionResetError:
            return responses, True
        except TimeoutError:
            return responses, False


@pytest.mark.parametrize("case", ALL_CASES, ids=[c.name for c in ALL_CASES])
def test_case(server: Server, case: Case) -> None:
    backend: str = server.backend  # type: ignore[attr-defined]
    expected = None if case.reject is not None else case.per_backend.get(backend, case.statuses)
    responses, closed = exchange(server, case, None if expected is None else len(expected))
    statuses = tuple(r.status for r in responses)
    if case.reject is not None:
        assert statuses, f"{case.rfc}: no answer to a request that must be refused"
        if case.reject:
            assert statuses[0] == case.reject, f"{case.rfc}: {statuses}"
        else:
            assert 400 <= statuses[0] < 500, f"{case.rfc}: {statuses}"
        assert len(statuses) == 1, f"{case.rfc}: served after an error: {statuses}"
        assert closed, f"{case.rfc}: connection left open after an error"
        return
    assert statuses == expected, f"{case.rfc}: {statuses} != {expected}"
    if case.closed is not None:
        assert closed == case.closed, f"{case.rfc}: closed={closed}"
    wanted = case.body is not None or case.method is not None or case.header is not None
    echoed = json.loads(responses[0].body) if wanted else {}
    if case.body is not None:
        assert echoed["body"] == case.body, case.rfc
    if case.method is not None:
        assert echoed["method"] == case.method, case.rfc
    if case.header is not None:
        assert list(case.header) in echoed["headers"], f"{case.rfc}: {echoed['headers']}"


def test_there_are_enough_cases_and_all_cite_a_section() -> None:
    assert len(ALL_CASES) >= 150
    assert all(case.rfc.startswith("RFC ") for case in ALL_CASES)
    assert len({case.name for case in ALL_CASES}) == len(ALL_CASES)


def one_response(server: Server, raw: bytes) -> Response:
    with socket.create_connection((server.host, server.port), timeout=5) as sock:
        sock.sendall(raw)
        return SocketReader(sock).read_response()


def test_no_content_length_on_204_even_if_the_app_sets_one(server: Server) -> None:
    """RFC 9110 §8.6: the demo app declares ``Content-Length: 0`` on its 204."""
    response = one_response(server, b"GET /status/204 HTTP/1.1\r\nHost: t\r\n\r\n")
    assert response.status == 204
    assert response.header("content-length") is None, response.raw_head


def test_server_made_errors_carry_the_same_server_and_date(server: Server) -> None:
    """RFC 9110 §6.6.1, §10.2.4: a refusal looks like any other response of ours."""
    app = one_response(server, b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
    refused = one_response(server, b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n")
    assert refused.status == 400
    for name in ("server", "date"):
        assert refused.header(name) is not None, refused.raw_head
        assert (refused.header(name) is None) == (app.header(name) is None)
    assert refused.header("server") == app.header("server") == "hybridserve"
