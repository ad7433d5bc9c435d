"""The FastAPI app: versioned routes under /v1, problem+json errors, limits, logs, metrics and health."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import routes_admin, routes_assist, routes_content, routes_evals, web
from api.deps import PROBLEM
from api.observability import Metrics, RequestObservability, configure_logging, current_request_id
from api.service import Service
from copilot.errors import (
    Conflict,
    CopilotError,
    DocumentError,
    Forbidden,
    IndexMismatch,
    NotAuthenticated,
    NotFound,
    RateLimited,
    ServiceUnavailable,
    TooLarge,
    UnknownTenant,
    UnsupportedMediaType,
)
from copilot.settings import Settings
from copilot.suggest import SuggestionSet
from knowledge.base import KnowledgeBase

log = logging.getLogger("copilot.api")
UPLOAD_PATHS = ("/v1/knowledge/documents",)


def _status(exc: CopilotError) -> int:
    for kind, status in ((NotAuthenticated, 401), (Forbidden, 403), (UnknownTenant, 404), (NotFound, 404),
                         (Conflict, 409), (TooLarge, 413), (UnsupportedMediaType, 415), (RateLimited, 429),
                         (ServiceUnavailable, 503), (IndexMismatch, 503), (DocumentError, 422)):
        if isinstance(exc, kind):
            return status
    return 422 if exc.type != "copilot-error" else 500


def _allowed_methods(request: Request) -> list[str]:
    """Every method the request's path takes, over all the routes that match it."""
    return sorted({method for route in request.app.router.routes if isinstance(route, Route)
                   and route.matches(request.scope)[0] is not Match.NONE for method in route.methods or ()})


def problem(status: int, kind: str, detail: str, instance: str, headers: dict[str, str] | None = None,
            **extra: object) -> JSONResponse:
    """An RFC 9457 problem+json body with a stable ``type`` per error and the request id."""
    body = {"type": f"https://copilot.example/problems/{kind}", "title": kind.replace("-", " "),
            "status": status, "detail": detail, "instance": instance, "request_id": current_request_id(),
            **extra}
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


class BodyLimits:
    """Refuses bodies over their limit (413) and in formats the route does not take (415) before any
    route code runs: JSON everywhere, multipart for uploads."""

    def __init__(self, app: ASGIApp, json_limit: int, upload_limit: int) -> None:
        self.app = app
        self.json_limit = json_limit
        self.upload_limit = upload_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        path: str = scope["path"]
        upload = path.startswith(UPLOAD_PATHS)
        limit = self.upload_limit if upload else self.json_limit
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        length = headers.get("content-length")
        has_body = (length not in (None, "0")) or "transfer-encoding" in headers
        wanted = "multipart/form-data" if upload else "application/json"
        if has_body and content_type != wanted and not (not upload and content_type.endswith("+json")):
            response = problem(415, UnsupportedMediaType.type,
                               f"this route takes {wanted}, not {content_type or 'a body without Content-Type'}",
                               path)
            await response(scope, receive, send)
            return
        if length is not None and length.isdigit() and int(length) > limit:
            await problem(413, TooLarge.type, f"the body is {int(length):,} bytes; the limit is {limit:,}",
                          path)(scope, receive, send)
            return
        received = 0
        over = False  # a body without a length (chunked) went past the limit while the app read it
        started = False

        async def limited() -> Message:
            nonlocal received, over
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    over = True
                    raise TooLarge(f"the body is over the limit of {limit:,} bytes")
            return message

        async def answer(message: Message) -> None:
            nonlocal started
            if over and not started:
                return  # the app's own answer to the cut body (FastAPI makes it a 400) gives way to the 413
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited, answer)
        except TooLarge:
            if not over or started:
                raise
        if over and not started:
            await problem(413, TooLarge.type, f"the body is over the limit of {limit:,} bytes", path)(
                scope, receive, send)


def create_app(settings: Settings, knowledge: KnowledgeBase | None = None,
               service: Service | None = None) -> FastAPI:
    configure_logging(settings.log_level)
    metrics = Metrics()

    def served(result: SuggestionSet) -> None:
        metrics.record_suggestions(result.engine, [s.source for s in result.suggestions])
        if result.fallback_from:
            metrics.record_fallback(result.fallback_from, result.fallback_reason or "error")

    service = service or Service(settings, knowledge=knowledge, on_usage=metrics.record_usage,
                                 on_suggestions=served, on_rate_limit_unchecked=metrics.record_rate_limit_unchecked)
    app = FastAPI(
        title="Agent-assist copilot", version="0.1.0",
        description="Grounded reply suggestions, summaries and next-best actions for human agents on messaging "
                    "channels, in each brand's voice; knowledge, brand voice, macros and playbooks for content "
                    "owners; analytics for QA teams. Every request but health and metrics needs an API key "
                    "(`Authorization: Bearer <key>`); a key sees its own tenant only. Errors are "
                    "application/problem+json (RFC 9457).",
    )
    app.state.service = service
    app.state.metrics = metrics

    @app.exception_handler(CopilotError)
    async def _problem(request: Request, exc: CopilotError) -> JSONResponse:
        status = _status(exc)
        headers = {}
        extra: dict[str, Any] = {}
        if isinstance(exc, RateLimited):
            headers["Retry-After"] = str(exc.retry_after)
            extra["retry_after"] = exc.retry_after
        if isinstance(exc, NotAuthenticated):
            headers["WWW-Authenticate"] = "Bearer"
        if status >= 500:
            log.warning("request failed: %s", exc.message, extra={"error_type": exc.type})
        return problem(status, exc.type, exc.message, request.url.path, headers, **extra)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": [str(p) for p in e.get("loc", ())], "msg": e.get("msg", "")} for e in exc.errors()]
        if any(e.get("type") == "json_invalid" for e in exc.errors()):
            return problem(400, "malformed-json", "the body is not valid JSON: " + errors[0]["msg"],
                           request.url.path, errors=errors)
        detail = "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in errors[:5])
        return problem(422, "invalid-request", detail, request.url.path, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
        headers = dict(exc.headers) if exc.headers else {}
        if exc.status_code == 405:  # Starlette's Allow names only the first route of the path, not all of them
            headers["Allow"] = ", ".join(_allowed_methods(request))
        return problem(exc.status_code, kind, str(exc.detail), request.url.path, headers or None)

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        request_id = current_request_id()
        return problem(500, "internal-error", "an unexpected error; the request id identifies it in the logs",
                       request.url.path, {"X-Request-ID": request_id} if request_id else None)

    @app.get("/healthz", tags=["operations"], summary="The process is alive.",
             responses={200: {"description": "Alive.", "content": {"application/json": {"example": {"status": "ok"}}}}})
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"], summary="The store, the index and the model are loaded.",
             responses={200: {"description": "Ready."}, 503: {"description": "Not ready; 'checks' says what."}})
    def readyz() -> JSONResponse:
        base = service.kb
        checks = {"store": service.store.ping(), "index": base.vectors.heartbeat(),
                  "model": base.embedder.dimension > 0}
        ok = all(checks.values())
        return JSONResponse({"status": "ready" if ok else "not ready", "checks": checks,
                             "schema_revision": service.schema_revision}, status_code=200 if ok else 503)

    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics: requests and latency per route, engine "
                                                      "fallbacks, LLM tokens.",
             responses={200: {"description": "Prometheus text format.", "content": {"text/plain": {}}}})
    def metrics_endpoint() -> Any:
        return metrics.endpoint()

    for module in (routes_assist, routes_content, routes_admin, routes_evals):
        app.include_router(module.router(service))
    web.mount(app)

    app.add_middleware(BodyLimits, json_limit=settings.max_body_bytes,
                       upload_limit=settings.max_file_bytes * 10)
    app.add_middleware(RequestObservability, metrics=metrics)
    return app


def create_app_from_env() -> FastAPI:
    """The app configured from ``COPILOT_*`` variables: what ``copilot serve`` runs in each worker."""
    return create_app(Settings())
