"""How a response the app broke ends, the same for ASGI, WSGI and WebSocket denials.

An app error is answered with a 500 while no head has gone out; after that, HTTP has no way
to say "this body is wrong" but to cut the connection (HTTP/2 resets only the stream).
"""

from __future__ import annotations

from hybridserve.apps.types import Channel
from hybridserve.errors import ResponseError
from hybridserve.sansio.events import Headers

ERROR_BODY = b"Internal Server Error\n"
ERROR_HEADERS: Headers = [(b"content-type", b"text/plain; charset=utf-8")]


def fail_response(channel: Channel, *, head_sent: bool, extra: Headers | None = None) -> None:
    """500 if no head went out, else abort; ``extra`` headers go on the 500."""
    if head_sent:
        channel.abort()
        return
    try:
        channel.send_head(500, [*ERROR_HEADERS, *(extra or ())], ERROR_BODY, True)
    except ResponseError:  # the app's head was taken but its body refused: nothing sent
        channel.abort()
