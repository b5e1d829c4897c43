"""Compare HTTP/2 libraries as a sans-IO server loop, in-process (no sockets, no loop).

A client byte stream is recorded once with hyperframe/hpack: the preface, SETTINGS, a large
connection window, then the requests of one connection sent 10 at a time (as ``h2load -n 8000
-c 8 -m 10``: 1,000 requests a connection). Each library plays the server for ``-c``
connections in turn: it is fed one batch at a time, answers every request with a 13-byte body
and hands back its frames. The figure is microseconds per request (connection set-up
included), best of ``--rounds``.

    python bench/h2_sansio_libs.py -n 8000 -c 8 -m 10 --rounds 5

Run with a venv that has h2, ngh2 and zttp installed (hybridserve's own has the first two);
a library that cannot import is skipped. The last rows run our Http2Connection (checks,
flood counters, our events) over each backend, the same way.
"""

import argparse
import importlib.util
import sys
import time
from collections.abc import Callable

from hpack import Encoder
from hyperframe.frame import HeadersFrame, SettingsFrame, WindowUpdateFrame

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
BODY = b"Hello, world!"
RESPONSE_HEADERS = [(b"content-type", b"text/plain"), (b"content-length", b"13")]


def record_client(requests: int, multiplex: int) -> list[bytes]:
    """The client's bytes, one chunk per batch of ``multiplex`` requests."""
    enc = Encoder()
    head = PREFACE + SettingsFrame(0, settings={4: 1 << 20}).serialize()
    head += SettingsFrame(0, flags=["ACK"]).serialize()
    head += WindowUpdateFrame(0, window_increment=(1 << 31) - 1 - 65535).serialize()
    chunks = [head]
    stream_id = 1
    for start in range(0, requests, multiplex):
        batch = bytearray()
        for _ in range(min(multiplex, requests - start)):
            block = enc.encode(
                [
                    (b":method", b"GET"),
                    (b":scheme", b"http"),
                    (b":authority", b"127.0.0.1:8000"),
                    (b":path", b"/"),
                    (b"user-agent", b"h2load nghttp2/1.64.0"),
                    (b"accept", b"*/*"),
                ]
            )
            batch += HeadersFrame(stream_id, block, flags=["END_HEADERS", "END_STREAM"]).serialize()
            stream_id += 2
        chunks.append(bytes(batch))
    return chunks


def serve_h2(chunks: list[bytes]) -> tuple[int, int]:
    import h2.config
    import h2.connection
    import h2.events

    conn = h2.connection.H2Connection(
        h2.config.H2Configuration(client_side=False, header_encoding=None)
    )
    conn.initiate_connection()
    out = len(conn.data_to_send())
    served = 0
    for chunk in chunks:
        for event in conn.receive_data(chunk):
            if isinstance(event, h2.events.RequestReceived):
                sid = event.stream_id
                conn.send_headers(sid, [(b":status", b"200"), *RESPONSE_HEADERS])
                conn.send_data(sid, BODY, end_stream=True)
                served += 1
        out += len(conn.data_to_send())
    return served, out


def serve_ngh2(chunks: list[bytes]) -> tuple[int, int]:
    import ngh2

    conn = ngh2.Connection(ngh2.Role.SERVER, ngh2.Configuration(auto_window_update=False))
    conn.initiate_connection({ngh2.Setting.MAX_CONCURRENT_STREAMS: 100})
    out = len(conn.data_to_send())
    served = 0
    request_type = ngh2.RequestReceived
    for chunk in chunks:
        conn.receive_data(chunk)
        for event in conn.events():
            if type(event) is request_type:
                sid = event.stream_id
                conn.send_response(sid, [(b":status", b"200"), *RESPONSE_HEADERS])
                conn.send_data(sid, BODY, end_stream=True)
                served += 1
        out += len(conn.data_to_send())
    return served, out


def serve_zttp(chunks: list[bytes]) -> tuple[int, int]:
    import zttp

    conn = zttp.Connection(zttp.SERVER, protocol=zttp.HTTP2)
    conn.initiate_connection()
    out = len(conn.data_to_send())
    served = 0
    need = zttp.NEED_DATA
    for chunk in chunks:
        conn.receive_data(chunk)
        while (event := conn.next_event()) is not need:
            if type(event) is zttp.Request:
                stream = conn.stream(event.stream_id)
                stream.send_response(200, RESPONSE_HEADERS)
                stream.send_data(BODY)
                stream.end_message()
                served += 1
        out += len(conn.data_to_send())
    return served, out


def serve_ours(backend: str) -> Callable[[list[bytes]], tuple[int, int]]:
    """Our Http2Connection on a backend: what the libraries cost plus our checks and events."""

    def serve(chunks: list[bytes]) -> tuple[int, int]:
        from hybridserve.config_groups import Limits
        from hybridserve.sansio.h2events import StreamEnded
        from hybridserve.sansio.http2 import Http2Connection

        conn = Http2Connection(Limits(), backend=backend)
        out = len(conn.data_to_send())
        served = 0
        for now_s, chunk in enumerate(chunks):
            for event in conn.receive(chunk, float(now_s)):
                if type(event) is StreamEnded:
                    sid = event.stream_id
                    conn.send_head(sid, 200, RESPONSE_HEADERS)
                    conn.send_data(sid, BODY, end_stream=True)
                    served += 1
            out += len(conn.data_to_send())
        return served, out

    return serve


LIBRARIES: dict[str, Callable[[list[bytes]], tuple[int, int]]] = {
    "h2": serve_h2,
    "ngh2": serve_ngh2,
    "zttp": serve_zttp,
    "hybridserve Http2Connection on ngh2": serve_ours("ngh2"),
    "hybridserve Http2Connection on h2": serve_ours("h2"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", "--requests", type=int, default=8000)
    parser.add_argument("-c", "--connections", type=int, default=8)
    parser.add_argument("-m", "--multiplex", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    per_connection = args.requests // args.connections
    chunks = record_client(per_connection, args.multiplex)
    for name, serve in LIBRARIES.items():
        module = name.split()[-1]
        if importlib.util.find_spec(module) is None:
            print(f"{name}: {module} not installed, skipped")  # noqa: T201
            continue
        best = float("inf")
        for _ in range(args.rounds):
            served = out = 0
            started = time.process_time()
            for _ in range(args.connections):
                conn_served, conn_out = serve(chunks)
                served, out = served + conn_served, out + conn_out
            best = min(best, time.process_time() - started)
            if served != per_connection * args.connections:
                sys.exit(f"{name}: served {served} of {per_connection * args.connections}")
        per_request_us = best / served * 1e6
        print(  # noqa: T201
            f"{name:38s} {per_request_us:7.2f} us/request  {1e6 / per_request_us:9.0f} req/s  "
            f"({out / served:.1f} bytes out per response)"
        )


if __name__ == "__main__":
    main()
