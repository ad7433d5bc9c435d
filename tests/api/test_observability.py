"""Request ids, Prometheus metrics and masked JSON logs, on a small app served in process."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
from collections.abc import Iterator

import pytest
from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.responses import StreamingResponse
from fastapi.testclient import TestClient
from starlette.types import Message, Receive, Scope, Send

from api.observability import (
    JsonLogFormatter,
    Metrics,
    RequestObservability,
    configure_logging,
    current_request_id,
    fallback_reason,
    set_principal,
)
from copilot.errors import LLMBadOutput, LLMError, LLMRateLimited, LLMTimeout
from copilot.ports import ChatResult

CARD = "4111 1111 1111 1111"
EMAIL = "jane.doe@example.com"


def _app(metrics: Metrics) -> FastAPI:
    app = FastAPI()
    app.add_middleware(RequestObservability, metrics=metrics)
    app.add_api_route("/metrics", metrics.endpoint, include_in_schema=False)

    @app.get("/v1/threads/{thread_id}")
    def thread(thread_id: str, request: Request) -> dict[str, str | None]:
        set_principal("key_123", "acme")
        logging.getLogger("copilot.test").info("thread %s read by %s", thread_id, EMAIL)
        return {"thread_id": thread_id, "request_id": current_request_id(), "state": request.state.request_id}

    @app.get("/v1/stream")
    def stream() -> StreamingResponse:
        def events() -> Iterator[str]:
            for n in range(3):
                yield f"event: delta\ndata: {n} {current_request_id()}\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    @app.get("/v1/missing")
    def missing() -> None:
        raise HTTPException(404, "no such thing")

    @app.get("/v1/boom")
    def boom() -> None:
        raise RuntimeError("card 4111 1111 1111 1111 rejected")

    tenants = APIRouter(prefix="/tenants/{tenant}")

    @tenants.get("/documents/{document_id}")
    def document(tenant: str, document_id: str, request: Request) -> dict[str, str]:
        request.state.tenant = tenant
        return {"document_id": document_id}

    outer = APIRouter(prefix="/v1")
    outer.include_router(tenants)
    app.include_router(outer)
    return app


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


@pytest.fixture
def client(metrics: Metrics) -> Iterator[TestClient]:
    with TestClient(_app(metrics), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """Root logging through ``configure_logging`` into a buffer; the handler is removed afterwards."""
    root = logging.getLogger()
    level = root.level
    buffer = io.StringIO()
    handler = configure_logging("INFO", stream=buffer)
    yield buffer
    root.removeHandler(handler)
    root.setLevel(level)
    logging.getLogger("copilot").setLevel(logging.NOTSET)


def _records(buffer: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def _sample(metrics_text: str, name: str, **labels: str) -> float:
    """The value of one sample in the Prometheus text, 0 when it is absent."""
    for line in metrics_text.splitlines():
        match = re.fullmatch(r"(\w+)\{(.*)\} (\S+)", line)
        if match and match[1] == name and dict(re.findall(r'(\w+)="([^"]*)"', match[2])) == labels:
            return float(match[3])
    return 0.0


def test_request_id_generated_and_returned(client: TestClient) -> None:
    response = client.get("/v1/threads/t1")

    request_id = response.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", request_id)
    assert response.json() == {"thread_id": "t1", "request_id": request_id, "state": request_id}
    assert client.get("/v1/threads/t1").headers["x-request-id"] != request_id


def test_safe_request_id_from_caller_is_echoed(client: TestClient) -> None:
    response = client.get("/v1/threads/t1", headers={"X-Request-ID": "console-42.retry_1"})

    assert response.headers["x-request-id"] == "console-42.retry_1"
    assert response.json()["request_id"] == "console-42.retry_1"


@pytest.mark.parametrize("unsafe", [b"a" * 65, b"id with spaces", b"id;drop", b"../../etc", "ünï".encode(), b""])
def test_unsafe_request_id_is_replaced(client: TestClient, unsafe: bytes) -> None:
    response = client.get("/v1/threads/t1", headers={b"X-Request-ID": unsafe})

    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"])


def test_metrics_label_route_template_and_count(client: TestClient) -> None:
    labels = {"method": "GET", "route": "/v1/threads/{thread_id}", "status": "200"}
    before = _sample(client.get("/metrics").text, "copilot_http_requests_total", **labels)

    client.get("/v1/threads/secret-thread-9")
    client.get("/v1/threads/other-thread")
    response = client.get("/metrics")

    assert response.headers["content-type"].startswith("text/plain")
    assert _sample(response.text, "copilot_http_requests_total", **labels) == before + 2
    assert _sample(response.text, "copilot_http_request_duration_seconds_count",
                   method="GET", route="/v1/threads/{thread_id}") == 2
    assert 'le="0.005"' in response.text and 'le="10.0"' in response.text
    assert "secret-thread-9" not in response.text


def test_metrics_label_nested_router_unmatched_and_errors(client: TestClient) -> None:
    client.get("/v1/tenants/acme/documents/d1")
    client.get("/no/such/path/123")
    client.get("/v1/missing")
    client.get("/v1/boom")
    text = client.get("/metrics").text

    count = "copilot_http_requests_total"
    assert _sample(text, count, method="GET", route="/v1/tenants/{tenant}/documents/{document_id}",
                   status="200") == 1
    assert _sample(text, count, method="GET", route="unmatched", status="404") == 1
    assert _sample(text, count, method="GET", route="/v1/missing", status="404") == 1
    assert _sample(text, count, method="GET", route="/v1/boom", status="500") == 1
    assert "/no/such/path" not in text and "acme" not in text


def test_streaming_route_streams_and_is_counted(client: TestClient, metrics: Metrics) -> None:
    with client.stream("GET", "/v1/stream", headers={"X-Request-ID": "stream-1"}) as response:
        assert response.headers["x-request-id"] == "stream-1"
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [line for line in response.iter_lines() if line.startswith("data:")]

    assert events == ["data: 0 stream-1", "data: 1 stream-1", "data: 2 stream-1"]
    text = metrics.render()[0].decode()
    assert _sample(text, "copilot_http_requests_total", method="GET", route="/v1/stream", status="200") == 1


def test_body_chunks_reach_the_server_as_the_app_sends_them(metrics: Metrics) -> None:
    at_server: list[Message] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        for n in range(3):
            await send({"type": "http.response.body", "body": str(n).encode(), "more_body": True})
            assert len(at_server) == n + 2  # passed on at once, not buffered
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def server(message: Message) -> None:
        at_server.append(message)

    scope: Scope = {"type": "http", "method": "GET", "path": "/raw", "root_path": "",
                    "headers": [(b"x-request-id", b"raw-1")]}
    asyncio.run(RequestObservability(app, metrics)(scope, receive, server))

    assert [m.get("body") for m in at_server] == [None, b"0", b"1", b"2", b""]
    assert (b"x-request-id", b"raw-1") in at_server[0]["headers"]
    text = metrics.render()[0].decode()
    assert _sample(text, "copilot_http_requests_total", method="GET", route="unmatched", status="200") == 1


def test_access_line_is_json_with_request_id_and_principal(client: TestClient, log_lines: io.StringIO) -> None:
    response = client.get("/v1/threads/t7", headers={"X-Request-ID": "req-7"})
    client.get("/v1/tenants/acme/documents/d1", headers={"X-Request-ID": "req-8"})

    records = _records(log_lines)
    access = [r for r in records if r["logger"] == "copilot.access"]
    assert response.status_code == 200
    assert access[0] | {"timestamp": None, "duration_ms": None} == {
        "timestamp": None, "level": "INFO", "logger": "copilot.access", "message": "GET /v1/threads/{thread_id} 200",
        "request_id": "req-7", "method": "GET", "route": "/v1/threads/{thread_id}", "path": "/v1/threads/t7",
        "status": 200, "duration_ms": None, "key_id": "key_123", "tenant": "acme"}
    assert isinstance(access[0]["duration_ms"], float) and str(access[0]["timestamp"]).startswith("20")
    assert (access[1]["request_id"], access[1]["tenant"], access[1]["key_id"]) == ("req-8", "acme", None)
    route_line = next(r for r in records if r["logger"] == "copilot.test")
    assert route_line["request_id"] == "req-7"


def test_server_error_is_logged_at_error_level_with_its_request_id(client: TestClient,
                                                                   log_lines: io.StringIO) -> None:
    assert client.get("/v1/boom", headers={"X-Request-ID": "req-500"}).status_code == 500

    access = [r for r in _records(log_lines) if r["logger"] == "copilot.access"]
    assert [(r["level"], r["status"], r["request_id"]) for r in access] == [("ERROR", 500, "req-500")]


def test_personal_data_masked_in_message_args_and_extras(log_lines: io.StringIO) -> None:
    log = logging.getLogger("copilot.test")

    log.info(f"customer paid with {CARD}")
    log.warning("customer wrote from %s", EMAIL)
    log.info("lookup", extra={"customer": f"{EMAIL} / {CARD}", "attempts": 3})
    log.info({"event": "note", "text": f"card {CARD}"})

    text = log_lines.getvalue()
    assert CARD not in text and EMAIL not in text
    first, second, third, fourth = _records(log_lines)
    assert first["message"] == "customer paid with [card]"
    assert (second["level"], second["message"]) == ("WARNING", "customer wrote from [email]")
    assert (third["customer"], third["attempts"]) == ("[email] / [card]", 3)
    assert fourth["text"] == "card [card]"
    assert first["request_id"] is None


def test_personal_data_masked_in_tracebacks(log_lines: io.StringIO) -> None:
    try:
        raise ValueError(f"bad address {EMAIL}")
    except ValueError:
        logging.getLogger("copilot.test").exception("could not send")

    (record,) = _records(log_lines)
    assert "ValueError: bad address [email]" in str(record["exc_info"])
    assert EMAIL not in log_lines.getvalue()


def test_configure_logging_twice_keeps_one_handler(log_lines: io.StringIO) -> None:
    root = logging.getLogger()
    count = len(root.handlers)

    again = configure_logging("debug")

    assert len(root.handlers) == count
    assert isinstance(again.formatter, JsonLogFormatter)
    assert logging.getLogger("copilot").getEffectiveLevel() == logging.DEBUG
    logging.getLogger("copilot.test").debug("once")
    assert len(_records(log_lines)) == 1


def test_configure_logging_rejects_unknown_level() -> None:
    with pytest.raises(ValueError, match="unknown log level"):
        configure_logging("chatty")


def test_llm_tokens_fallbacks_and_suggestions_are_counted(metrics: Metrics) -> None:
    metrics.record_usage(ChatResult(text="hi", model="gpt-x", prompt_tokens=120, completion_tokens=30))
    metrics.record_usage(ChatResult(text="hi", model="gpt-x", prompt_tokens=80, completion_tokens=0))
    metrics.record_fallback("llm", fallback_reason(LLMTimeout("slow")))
    metrics.record_suggestions("grounded", ["knowledge", "knowledge", "macro"])

    body, content_type = metrics.render()
    text = body.decode()
    assert content_type.startswith("text/plain")
    assert _sample(text, "copilot_llm_tokens_total", model="gpt-x", kind="prompt") == 200
    assert _sample(text, "copilot_llm_tokens_total", model="gpt-x", kind="completion") == 30
    assert _sample(text, "copilot_engine_fallbacks_total", from_engine="llm", reason="timeout") == 1
    assert _sample(text, "copilot_suggestions_total", engine="grounded", source="knowledge") == 2
    assert _sample(text, "copilot_suggestions_total", engine="grounded", source="macro") == 1


def test_two_apps_keep_separate_metrics() -> None:
    first, second = Metrics(), Metrics()
    with TestClient(_app(first)) as one, TestClient(_app(second)):
        one.get("/v1/threads/t1")

    labels = {"method": "GET", "route": "/v1/threads/{thread_id}", "status": "200"}
    assert _sample(first.render()[0].decode(), "copilot_http_requests_total", **labels) == 1
    assert _sample(second.render()[0].decode(), "copilot_http_requests_total", **labels) == 0


@pytest.mark.parametrize(("error", "reason"), [
    (LLMTimeout("slow"), "timeout"),
    (LLMRateLimited("429"), "rate_limited"),
    (LLMBadOutput("not json"), "bad_output"),
    (LLMError("HTTP 503"), "unavailable"),
    (KeyError("x"), "error"),
])
def test_fallback_reason_classifies_errors(error: BaseException, reason: str) -> None:
    assert fallback_reason(error) == reason
