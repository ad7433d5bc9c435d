"""A deterministic OpenAI-compatible chat server on loopback, for tests of the llm engine.

It speaks the real protocol over real HTTP, so the adapter's SDK, timeouts and retries are exercised
as they are against vLLM or OpenAI::

    with FakeLLM() as fake:
        fake.fail(429, retry_after=0).reply('{"answer": "hi"}')
        model = OpenAIChatModel(fake.base_url, fake.model, timeout_s=1)
        ...
        assert fake.requests[0].body["messages"][0]["role"] == "system"

Behaviours queued with ``reply``, ``fail``, ``delay``, ``garbage``, ``drop`` and ``broken_stream`` answer
the next chat requests in order; once the queue is empty, ``responder(request_body) -> str`` answers
(by default it echoes the last user message).
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

Responder = Callable[[dict[str, Any]], str]


def echo_last_user_message(body: dict[str, Any]) -> str:
    """The default responder: the content of the last user message."""
    users = [m.get("content", "") for m in body.get("messages", []) if m.get("role") == "user"]
    return str(users[-1]) if users else ""


@dataclass(frozen=True)
class RecordedRequest:
    """One request the server received, as it arrived."""

    method: str
    path: str
    headers: dict[str, str]  # names in lower case
    body: dict[str, Any]

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.body.get("messages", []))

    @property
    def prompt(self) -> str:
        """Every message's content, one per line: handy for ``assert "refund" in request.prompt``."""
        return "\n".join(str(m.get("content", "")) for m in self.messages)


@dataclass(frozen=True)
class _Behaviour:
    kind: str  # reply | fail | delay | garbage | drop | broken_stream
    content: str | None = None
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    body: str | dict[str, Any] | None = None
    seconds: float = 0.0
    how: str = "error"


class FakeLLM:
    """The server; a context manager, also ``start()``/``stop()`` for fixtures.

    Args:
        model: The model name it reports in answers and in ``GET /v1/models``.
        responder: Answers chat requests when no behaviour is queued.
        chunk_words: Words per streamed chunk (content is always split into several chunks when it can be).
        api_key: When set, requests without ``Authorization: Bearer <api_key>`` get HTTP 401.
        stream_usage: Whether a stream ends with a usage chunk when ``stream_options.include_usage`` asks for
            one; False plays a server that ignores the option.
    """

    def __init__(self, *, model: str = "fake-chat", responder: Responder | None = None, chunk_words: int = 2,
                 api_key: str | None = None, stream_usage: bool = True) -> None:
        self.model = model
        self.responder: Responder = responder or echo_last_user_message
        self.chunk_words = max(1, chunk_words)
        self.api_key = api_key
        self.stream_usage = stream_usage
        self.requests: list[RecordedRequest] = []
        self._queue: deque[_Behaviour] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> FakeLLM:
        if self._server is not None:
            return self
        self._stopping.clear()
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-llm", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._stopping.set()  # wakes handlers sleeping in delay()
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> FakeLLM:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeLLM is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    # -- scripting ---------------------------------------------------------------------------------

    def reply(self, content: str) -> FakeLLM:
        """Answer the next request with ``content`` (streamed in chunks when the request streams)."""
        return self._push(_Behaviour("reply", content=content))

    def fail(self, status: int, *, retry_after: float | None = None,
             body: str | dict[str, Any] | None = None) -> FakeLLM:
        """Answer the next request with an HTTP error, an OpenAI-style error body unless ``body`` is given."""
        headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
        return self._push(_Behaviour("fail", status=status, headers=headers, body=body))

    def delay(self, seconds: float, content: str | None = None) -> FakeLLM:
        """Wait ``seconds`` before answering the next request (with ``content``, or the responder's)."""
        return self._push(_Behaviour("delay", content=content, seconds=seconds))

    def garbage(self, body: str = "this is not JSON {") -> FakeLLM:
        """Answer the next request with HTTP 200 and a JSON content type over a body that is not JSON."""
        return self._push(_Behaviour("garbage", body=body))

    def drop(self) -> FakeLLM:
        """Close the connection of the next request without answering (a connection error)."""
        return self._push(_Behaviour("drop"))

    def broken_stream(self, content: str, *, how: str = "error") -> FakeLLM:
        """Stream the first chunk of ``content``, then break: an SSE error event (``how="error"``) or an
        abruptly closed connection (``how="cut"``). A request that does not stream gets HTTP 500."""
        if how not in ("error", "cut"):
            raise ValueError("how is 'error' or 'cut'")
        return self._push(_Behaviour("broken_stream", content=content, how=how))

    @property
    def pending(self) -> int:
        """Queued behaviours not used yet."""
        with self._lock:
            return len(self._queue)

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.path.endswith("/chat/completions")]

    @property
    def last_request(self) -> RecordedRequest:
        with self._lock:
            return self.requests[-1]

    def _push(self, behaviour: _Behaviour) -> FakeLLM:
        with self._lock:
            self._queue.append(behaviour)
        return self

    def _next(self) -> _Behaviour | None:
        with self._lock:
            return self._queue.popleft() if self._queue else None

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)


def _usage(body: dict[str, Any], content: str) -> dict[str, int]:
    prompt = sum(len(str(m.get("content", "")).split()) for m in body.get("messages", []))
    completion = len(content.split())
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _chunks(content: str, words: int) -> list[str]:
    """``content`` in pieces of a few words, whitespace kept, so the pieces join back exactly."""
    tokens = re.findall(r"\s*\S+\s*", content) or [content]
    return ["".join(tokens[i:i + words]) for i in range(0, len(tokens), words)]


def _handler_for(fake: FakeLLM) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "FakeLLM/1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet test output
            pass

        def handle(self) -> None:
            # The client may give up (its timeout) before the answer is written.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError, TimeoutError):
                super().handle()

        def do_GET(self) -> None:
            fake._record(RecordedRequest("GET", self.path, self._headers(), {}))
            if self.path.rstrip("/") != "/v1/models":
                self._json(404, _error("not found", "not_found_error"))
                return
            self._json(200, {"object": "list", "data": [
                {"id": fake.model, "object": "model", "created": 0, "owned_by": "fake-llm"}]})

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                body = {"_raw": raw.decode("utf-8", "replace")}
            fake._record(RecordedRequest("POST", self.path, self._headers(), body))
            if self.path.rstrip("/") != "/v1/chat/completions":
                self._json(404, _error("not found", "not_found_error"))
                return
            if fake.api_key is not None and self.headers.get("Authorization") != f"Bearer {fake.api_key}":
                self._json(401, _error("Incorrect API key provided.", "invalid_request_error"))
                return
            if not isinstance(body.get("messages"), list) or "model" not in body:
                self._json(400, _error("model and messages are required", "invalid_request_error"))
                return
            self._answer(body, fake._next())

        def _answer(self, body: dict[str, Any], behaviour: _Behaviour | None) -> None:
            streaming = bool(body.get("stream"))
            if behaviour is None:
                self._complete(body, fake.responder(body), streaming)
            elif behaviour.kind == "reply":
                self._complete(body, behaviour.content or "", streaming)
            elif behaviour.kind == "delay":
                if fake._stopping.wait(behaviour.seconds):
                    return
                content = behaviour.content if behaviour.content is not None else fake.responder(body)
                self._complete(body, content, streaming)
            elif behaviour.kind == "fail":
                payload = behaviour.body if behaviour.body is not None else _error(
                    f"fake failure {behaviour.status}", "server_error" if behaviour.status >= 500 else "api_error")
                self._json(behaviour.status, payload, behaviour.headers)
            elif behaviour.kind == "garbage":
                self._send(200, str(behaviour.body).encode(), "application/json")
            elif behaviour.kind == "drop":
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
            elif behaviour.kind == "broken_stream":
                if not streaming:
                    self._json(500, _error("stream broke", "server_error"))
                    return
                self._broken_stream(body, behaviour)

        def _complete(self, body: dict[str, Any], content: str, streaming: bool) -> None:
            if streaming:
                self._stream(body, _chunks(content, fake.chunk_words), content)
                return
            self._json(200, {
                "id": f"chatcmpl-fake-{len(fake.requests)}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": fake.model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                             "finish_reason": "stop", "logprobs": None}],
                "usage": _usage(body, content),
            })

        def _stream(self, body: dict[str, Any], pieces: list[str], content: str) -> None:
            self._start_events()
            self._event(self._chunk({"role": "assistant", "content": ""}))
            for piece in pieces:
                self._event(self._chunk({"content": piece}))
            self._event(self._chunk({}, finish_reason="stop"))
            if fake.stream_usage and (body.get("stream_options") or {}).get("include_usage"):
                self._event({**self._chunk({}), "choices": [], "usage": _usage(body, content)})
            self._write_chunk(b"data: [DONE]\n\n")
            self._write_chunk(b"")

        def _broken_stream(self, body: dict[str, Any], behaviour: _Behaviour) -> None:
            self._start_events()
            self._event(self._chunk({"role": "assistant", "content": ""}))
            self._event(self._chunk({"content": _chunks(behaviour.content or "", fake.chunk_words)[0]}))
            if behaviour.how == "error":
                self._event(_error("the model crashed mid-answer", "server_error"))
                self._write_chunk(b"data: [DONE]\n\n")
                self._write_chunk(b"")
            else:  # "cut": close without the chunked encoding's last chunk
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)

        def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
            return {"id": "chatcmpl-fake-stream", "object": "chat.completion.chunk", "created": int(time.time()),
                    "model": fake.model,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}]}

        def _start_events(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("Connection", "close")
            self.end_headers()

        def _event(self, data: dict[str, Any]) -> None:
            self._write_chunk(f"data: {json.dumps(data)}\n\n".encode())

        def _write_chunk(self, data: bytes) -> None:
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

        def _json(self, status: int, payload: str | dict[str, Any], headers: Mapping[str, str] | None = None) -> None:
            data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
            self._send(status, data, "application/json", headers)

        def _send(self, status: int, data: bytes, content_type: str, headers: Mapping[str, str] | None = None) -> None:
            try:
                phrase = HTTPStatus(status).phrase
            except ValueError:
                phrase = "Fake Status"
            self.send_response(status, phrase)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            # One request per connection: nothing lingers in a handler thread once the fake is stopped.
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()

        def _headers(self) -> dict[str, str]:
            return {name.lower(): value for name, value in self.headers.items()}

    return Handler


def _error(message: str, kind: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}
