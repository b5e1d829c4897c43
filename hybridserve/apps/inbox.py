"""The messages waiting for an app's ``receive``, and the backpressure they put on reading.

Reading pauses while more than ``high_bytes`` wait, and resumes once the app has taken them
down to half: a slow app holds the client back, not the worker's memory. After ``end`` the
queued messages still come first; then ``receive`` returns the last message every time.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Protocol

from hybridserve.apps.types import Message


class Reader(Protocol):
    """What an inbox needs of its channel: the loop, and reading paused or not."""

    @property
    def loop(self) -> asyncio.AbstractEventLoop: ...
    def pause_reading(self) -> None: ...
    def resume_reading(self) -> None: ...


class Inbox:
    """One connection's messages for the app, in order, each with the bytes it counts."""

    def __init__(self, channel: Reader, high_bytes: int) -> None:
        self._channel = channel
        self._high_bytes = high_bytes
        self._messages: deque[tuple[Message, int]] = deque()
        self._queued = 0
        self._paused = False  # we asked the channel to pause reading
        self._last: Message | None = None
        self._waiter: asyncio.Future[None] | None = None

    def put(self, message: Message, size: int) -> None:
        self._messages.append((message, size))
        self._queued += size
        if self._queued > self._high_bytes and not self._paused:
            self._paused = True
            self._channel.pause_reading()
        self._wake()

    def end(self, last: Message) -> None:
        """No more messages: once the queue is empty, ``receive`` returns ``last``.

        Only the first ``end`` counts: the first word on how a connection ended is the true one.
        """
        if self._last is None:
            self._last = last
        self._wake()

    async def receive(self) -> Message:
        while True:
            if self._messages:
                message, size = self._messages.popleft()
                self._queued -= size
                if self._paused and self._queued <= self._high_bytes // 2:
                    self._paused = False
                    self._channel.resume_reading()
                return message
            if self._last is not None:
                return dict(self._last)
            self._waiter = self._channel.loop.create_future()
            await self._waiter
            self._waiter = None

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
