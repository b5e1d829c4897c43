"""Property tests: any bytes, split anywhere, give the same result and nothing but
ProtocolError escapes (hypothesis)."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hybridserve.config_groups import Limits
from hybridserve.errors import ProtocolError
from hybridserve.sansio.connection import ServerConnection
from hybridserve.sansio.events import Body, EndOfRequest, Event, Request

BACKENDS = ["h11", "httptools"]
DATE = b"Date: x\r\n"

VALID = [
    b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"POST /p?q=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    b"GET /x HTTP/1.0\r\n\r\n",
    b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
    # Issue #11's shapes: what one backend alone used to get wrong.
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: , chunked\r\n\r\n"
    b'3 ; x = "y"\r\nabc\r\n0\r\n\r\n',
    b"\r\nFROB http://a:80/p?q HTTP/1.2\r\nHost: [::1]:80\r\nX-A: b \t\r\n\r\n",
]


def summary(events: list[Event]) -> list[object]:
    """What matters of the events, with body pieces joined (their sizes depend on splits)."""
    out: list[object] = []
    for event in events:
        if isinstance(event, Body):
            assert type(event.data) is bytes  # the ASGI spec and PEP 3333 both want bytes
            if out and isinstance(out[-1], bytes):
                out[-1] += event.data
            else:
                out.append(event.data)
        elif isinstance(event, Request):
            out.append((event.method, event.target, event.http_version, tuple(event.headers)))
        else:
            out.append(type(event).__name__)
    return out


def feed(backend: str, data: bytes, cuts: list[int]) -> tuple[list[object], int | None]:
    """Feed ``data`` in pieces, answering each request; the parse and any error status."""
    conn = ServerConnection(Limits(), backend)
    events: list[Event] = []
    bounds = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    try:
        for start, end in itertools.pairwise(bounds):
            new = conn.receive(data[start:end])
            while True:
                events += new
                if not (new and isinstance(new[-1], EndOfRequest)):
                    break
                conn.send_head(200, [], body=b"", end=True, date_line=DATE)
                if not conn.keep_alive:
                    return summary(events), None
                new = conn.next_cycle()
    except ProtocolError as exc:
        return summary(events), exc.status
    return summary(events), None


mutations = st.lists(st.tuples(st.integers(0, 400), st.binary(max_size=3)), max_size=4)


def mutate(data: bytes, edits: list[tuple[int, bytes]]) -> bytes:
    for position, insert in edits:
        at = position % (len(data) + 1)
        data = data[:at] + insert + data[at + 1 :]
    return data


@pytest.mark.parametrize("backend", BACKENDS)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    base=st.sampled_from(VALID),
    extra=st.sampled_from(VALID),
    edits=mutations,
    cuts=st.lists(st.integers(0, 500), max_size=6),
)
def test_split_points_never_change_the_result(
    backend: str, base: bytes, extra: bytes, edits: list[tuple[int, bytes]], cuts: list[int]
) -> None:
    data = mutate(base + extra, edits)
    split, split_status = feed(backend, data, cuts)
    whole, whole_status = feed(backend, data, [])
    assert split_status == whole_status
    if whole_status is None:  # after an error, how much was seen first depends on the cut
        assert split == whole


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    base=st.sampled_from(VALID),
    extra=st.sampled_from(VALID),
    edits=mutations,
    cuts=st.lists(st.integers(0, 500), max_size=6),
)
def test_backends_agree_on_any_mutation(
    base: bytes, extra: bytes, edits: list[tuple[int, bytes]], cuts: list[int]
) -> None:
    """Issue #11 (10): the same bytes, however cut, give the same events and the same
    refusal on both backends."""
    data = mutate(base + extra, edits)
    h11 = feed("h11", data, cuts)
    fast = feed("httptools", data, cuts)
    assert h11[1] == fast[1]
    if h11[1] is None:
        assert h11[0] == fast[0]


@pytest.mark.parametrize("backend", BACKENDS)
@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=300), cuts=st.lists(st.integers(0, 300), max_size=5))
def test_random_bytes_raise_only_protocol_errors(
    backend: str, data: bytes, cuts: list[int]
) -> None:
    _, status = feed(backend, data, cuts)
    assert status is None or 400 <= status < 500 or status in (501, 505)  # 505: "HTTP/0.0"
