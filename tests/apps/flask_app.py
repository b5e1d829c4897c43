"""A small Flask app: JSON, form posts, a streamed response, 404 and an error handler."""

from __future__ import annotations

from collections.abc import Iterator

from flask import Flask, Response, jsonify, request, stream_with_context

app = Flask(__name__)


class Refused(Exception):
    """Turned into a 422 JSON answer by the error handler below."""


@app.get("/")
def index() -> str:
    return "hello from flask"


@app.get("/json")
def as_json() -> Response:
    return jsonify(items=[1, 2, 3], args=request.args.to_dict(), script=request.script_root)


@app.post("/form")
def form() -> Response:
    return jsonify({**request.form, "length": request.content_length})


@app.post("/echo-json")
def echo_json() -> Response:
    return jsonify(got=request.get_json())


@app.get("/stream")
def stream() -> Response:
    count = int(request.args.get("n", "5"))

    def lines() -> Iterator[str]:
        for i in range(count):
            yield f"line {i} of {request.path}\n"  # needs the request context kept alive

    return Response(stream_with_context(lines()), mimetype="text/plain")


@app.get("/refuse")
def refuse() -> str:
    raise Refused("not today")


@app.get("/crash")
def crash() -> str:
    raise RuntimeError("unhandled in flask")


@app.errorhandler(Refused)
def on_refused(exc: Refused) -> tuple[Response, int]:
    return jsonify(error=str(exc)), 422
