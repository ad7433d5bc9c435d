"""What the service tells its operators: Prometheus metrics, a request id per request, JSON logs without
personal data.

Install it on an app with::

    metrics = Metrics()
    app.add_middleware(RequestObservability, metrics=metrics)
    app.add_api_route("/metrics", metrics.endpoint, include_in_schema=False)
    configure_logging(settings.log_level)

``RequestObservability`` is a pure ASGI middleware (``BaseHTTPMiddleware`` would buffer and break
streamed answers). Each request gets an id, taken from a safe ``X-Request-ID`` header or made up, which the
response returns, every log line of the request carries (``request_id_var``) and route code can read as
``request.state.request_id``. Metrics label a request by its route template, ``/v1/threads/{thread_id}``,
never by its raw path, so an id in a path cannot grow the number of series without bound.
"""

from __future__ import annotations

import contextvars
import logging
import re
import sys
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TextIO

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from pythonjsonlogger.json import JsonFormatter
from starlette.datastructures import MutableHeaders
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from copilot.errors import LLMBadOutput, LLMError, LLMRateLimited, LLMTimeout, ServiceUnavailable
from copilot.pii import mask_personal_data
from copilot.ports import ChatResult

__all__ = [
    "REQUEST_ID_HEADER",
    "JsonLogFormatter",
    "Metrics",
    "PersonalDataFilter",
    "RequestContextFilter",
    "RequestObservability",
    "configure_logging",
    "current_request_id",
    "fallback_reason",
    "request_id_var",
    "set_principal",
]

REQUEST_ID_HEADER = "X-Request-ID"
UNMATCHED_ROUTE = "unmatched"
# 5 ms (a cached lookup) to 10 s (an LLM draft at its deadline).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
"""The id of the request being served, None outside a request."""


@dataclass
class _Principal:
    key_id: str | None = None
    tenant: str | None = None


# A mutable holder, set per request: route code that runs in a worker thread (every ``def`` route and
# dependency) works on a copy of the context, so it can fill the holder but could not set a variable.
_principal_var: contextvars.ContextVar[_Principal | None] = contextvars.ContextVar("principal", default=None)


def current_request_id() -> str | None:
    """The id of the request being served, None outside a request."""
    return request_id_var.get()


def set_principal(key_id: str | None, tenant: str | None) -> None:
    """Names the API key and tenant of the request being served, for its access log line."""
    principal = _principal_var.get()
    if principal is not None:
        principal.key_id, principal.tenant = key_id, tenant


def fallback_reason(error: BaseException) -> str:
    """The short class of an engine failure, for ``copilot_engine_fallbacks_total{reason}``."""
    if isinstance(error, LLMTimeout | TimeoutError):
        return "timeout"
    if isinstance(error, LLMRateLimited):
        return "rate_limited"
    if isinstance(error, LLMBadOutput):
        return "bad_output"
    if isinstance(error, LLMError | ServiceUnavailable | ConnectionError):
        return "unavailable"
    return "error"


class Metrics:
    """The service's Prometheus metrics, in a registry of their own (several apps can share a process)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        self._requests = Counter("copilot_http_requests_total", "HTTP requests served.",
                                 ["method", "route", "status"], registry=self.registry)
        self._latency = Histogram("copilot_http_request_duration_seconds",
                                  "Time to serve an HTTP request, a streamed body included.",
                                  ["method", "route"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self._fallbacks = Counter("copilot_engine_fallbacks_total",
                                  "Answers the grounded engine gave because another engine failed.",
                                  ["from_engine", "reason"], registry=self.registry)
        self._tokens = Counter("copilot_llm_tokens_total", "Tokens the LLM endpoint reported.",
                               ["model", "kind"], registry=self.registry)
        self._suggestions = Counter("copilot_suggestions_total", "Reply suggestions offered to agents.",
                                    ["engine", "source"], registry=self.registry)
        self._unchecked = Counter("copilot_rate_limit_unchecked_total",
                                  "Requests let through without a rate-limit check: the rate-limit storage failed.",
                                  registry=self.registry)

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        method = method.upper() if method.upper() in _METHODS else "OTHER"
        self._requests.labels(method=method, route=route, status=str(status)).inc()
        self._latency.labels(method=method, route=route).observe(max(0.0, seconds))

    def record_fallback(self, from_engine: str, reason: str) -> None:
        """One answer that fell back from ``from_engine``; ``reason`` as ``fallback_reason`` gives it."""
        self._fallbacks.labels(from_engine=from_engine, reason=reason).inc()

    def record_tokens(self, model: str, prompt_tokens: int, completion_tokens: int) -> None:
        if prompt_tokens > 0:
            self._tokens.labels(model=model, kind="prompt").inc(prompt_tokens)
        if completion_tokens > 0:
            self._tokens.labels(model=model, kind="completion").inc(completion_tokens)

    def record_usage(self, result: ChatResult) -> None:
        """The ``on_usage`` callback of ``copilot.llm.OpenAIChatModel``."""
        self.record_tokens(result.model, result.prompt_tokens, result.completion_tokens)

    def record_rate_limit_unchecked(self) -> None:
        """The ``on_unchecked`` callback of ``api.auth.Authenticator``."""
        self._unchecked.inc()

    def record_suggestions(self, engine: str, sources: Iterable[str]) -> None:
        """Suggestions offered by ``engine``, one source (macro, knowledge, llm, clarify) each."""
        for source in sources:
            self._suggestions.labels(engine=engine, source=source).inc()

    def render(self) -> tuple[bytes, str]:
        """The Prometheus text exposition of every metric, and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    def endpoint(self) -> Response:
        """A ``GET /metrics`` route: ``app.add_api_route("/metrics", metrics.endpoint)``."""
        body, content_type = self.render()
        return Response(body, media_type=content_type)


class RequestObservability:
    """ASGI middleware: request id, timing, metrics and one JSON access log line per HTTP request.

    Args:
        app: The application it wraps.
        metrics: Where request counts and latencies go.
        logger: Where access lines go (``copilot.access`` by default).
    """

    def __init__(self, app: ASGIApp, metrics: Metrics, logger: logging.Logger | None = None) -> None:
        self.app = app
        self.metrics = metrics
        self.logger = logger or logging.getLogger("copilot.access")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        root_path = scope.get("root_path", "")
        principal = _Principal()
        request_token = request_id_var.set(request_id)
        principal_token = _principal_var.set(principal)
        status = 500  # what the server answers when the app raises before it starts a response
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = MutableHeaders(scope=message)
                if REQUEST_ID_HEADER not in headers:
                    headers.append(REQUEST_ID_HEADER, request_id)
            await send(message)

        failed = True
        try:
            await self.app(scope, receive, send_with_id)
            failed = False
        finally:
            seconds = time.perf_counter() - started
            route = _route_template(scope, root_path)
            self.metrics.observe_request(scope["method"], route, status, seconds)
            state = scope.get("state") or state
            self.logger.log(
                logging.ERROR if failed else logging.WARNING if status >= 500 else logging.INFO,
                "%s %s %s", scope["method"], route, status,
                extra={"method": scope["method"], "route": route, "path": scope.get("path", ""),
                       "status": status, "duration_ms": round(seconds * 1000, 1),
                       "key_id": state.get("key_id") or principal.key_id,
                       "tenant": state.get("tenant") or principal.tenant},
            )
            _principal_var.reset(principal_token)
            # On a failure the server's error handler, which runs outside this middleware, still needs
            # the id for its response and its log; the request's context ends with the request anyway.
            if not failed:
                request_id_var.reset(request_token)


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            candidate = value.decode("latin-1")
            if _SAFE_REQUEST_ID.fullmatch(candidate):
                return candidate
            break
    return uuid.uuid4().hex


def _route_template(scope: Scope, root_path: str) -> str:
    """The template of the route that served the request, e.g. ``/v1/threads/{thread_id}``."""
    route = scope.get("route")
    # FastAPI keeps the full template of a route of an included router here; ``route.path`` lacks the
    # prefixes of the routers it was included through.
    effective = (scope.get("fastapi") or {}).get("effective_route_context")
    path = getattr(effective, "path", None)
    if isinstance(path, str) and path and getattr(effective, "original_route", None) is route:
        return path
    path = getattr(route, "path", None)
    if isinstance(path, str) and path:
        return path
    mounted = scope.get("root_path", "")
    if isinstance(mounted, str) and len(mounted) > len(root_path) and mounted.startswith(root_path):
        return mounted[len(root_path):] + "/{path}"  # a mounted app, e.g. static files
    return UNMATCHED_ROUTE


# -- logging -------------------------------------------------------------------------------------------

_HANDLER_NAME = "copilot-json"
_RECORD_FIELDS = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message", "asctime", "taskName"}
# Fields this module writes that carry ids and numbers, never personal data: masking them could only
# garble an id that happens to look like a phone number.
_SAFE_FIELDS = frozenset({"request_id", "method", "route", "status", "duration_ms", "key_id", "tenant"})


class RequestContextFilter(logging.Filter):
    """Adds ``request_id`` (None outside a request) to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = request_id_var.get()
        return True


class PersonalDataFilter(logging.Filter):
    """Masks cards, emails, phone numbers, national ids and IBANs in the message and string extras."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, dict):
            record.msg = {key: _masked(value) for key, value in record.msg.items()}
        else:
            try:
                message = record.getMessage()
            except Exception:  # a bad format string: the handler reports it when it formats the record
                return True
            record.msg, record.args = mask_personal_data(message), None
        for key, value in list(record.__dict__.items()):
            if key not in _RECORD_FIELDS and key not in _SAFE_FIELDS and isinstance(value, str):
                setattr(record, key, mask_personal_data(value))
        return True


class JsonLogFormatter(JsonFormatter):
    """One JSON object a line: timestamp, level, logger, message, request_id, then the extras.

    Tracebacks are masked too: an exception's message may quote a customer's text.
    """

    def __init__(self) -> None:
        super().__init__("{levelname}{name}{message}{request_id}", style="{", timestamp=True,
                         rename_fields={"levelname": "level", "name": "logger"})

    def formatException(self, ei: Any) -> str:
        return _masked_text(super().formatException(ei))

    def formatStack(self, stack_info: str) -> str:
        return _masked_text(super().formatStack(stack_info))

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        timestamp = log_data.pop("timestamp", None)
        return {"timestamp": timestamp, **log_data}


def configure_logging(level: str = "INFO", *, stream: TextIO | None = None) -> logging.Handler:
    """Sends every log record as one JSON line to ``stream`` (stderr), masked and with its request id.

    Calling it again changes the level (and the stream, when given) of the same handler.
    """
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r}")
    root = logging.getLogger()
    handler = next((h for h in root.handlers if h.get_name() == _HANDLER_NAME), None)
    if not isinstance(handler, logging.StreamHandler):
        handler = logging.StreamHandler(stream or sys.stderr)
        handler.set_name(_HANDLER_NAME)
        handler.setFormatter(JsonLogFormatter())
        handler.addFilter(RequestContextFilter())
        handler.addFilter(PersonalDataFilter())
        root.addHandler(handler)
    elif stream is not None:
        handler.setStream(stream)
    root.setLevel(numeric)
    logging.getLogger("copilot").setLevel(numeric)
    return handler


def _masked(value: object) -> object:
    return mask_personal_data(value) if isinstance(value, str) else value


def _masked_text(text: str | list[str]) -> str:
    # A list only with the formatter's ``*_as_array`` options, which this module leaves off.
    return mask_personal_data(text if isinstance(text, str) else "\n".join(text))
