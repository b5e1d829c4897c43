"""Requests refused before any app saw them still show in the access log and metrics."""

from __future__ import annotations

import re

import httpx

from tests.conftest import ServeFactory
from tests.harness import wait_until
from tests.integration.test_metrics import metrics_url, value

CLASS_4XX = 'hybridserve_requests_total{class="4xx",interface="wsgi"}'


def test_refusals_are_logged_and_counted(serve: ServeFactory) -> None:
    server = serve("-w", "1", "--access-log", "-", "--metrics-bind", "127.0.0.1:0")
    base = metrics_url(server)
    bad_line = server.exchange(b"GET /a b HTTP/1.1\r\nHost: t\r\n\r\n")
    bad_host = server.exchange(b"GET /x?q=1 HTTP/1.1\r\nHost: a b\r\nUser-Agent: ua/2\r\n\r\n")
    assert bad_line.startswith(b"HTTP/1.1 400 ") and bad_host.startswith(b"HTTP/1.1 400 ")
    # A malformed request line is not echoed into the log; a parsed head is, as usual.
    line = server.wait_for(r'"- - HTTP/-" 400 \d+').string
    assert re.search(r"^127\.0\.0\.1 - - \[", line), line
    assert server.wait_for(r'"GET /x\?q=1 HTTP/1.1" 400 \d+ "-" "ua/2"$')
    assert wait_until(lambda: value(httpx.get(base + "/metrics").text, CLASS_4XX) == 2, 10)
