"""The FastAPI app: health, readiness, knowledge search and the engines (the rest of the API grows here)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Annotated, Any, Literal

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field

from api.wiring import Engines, thread_tenant
from copilot.conversation import Thread
from copilot.errors import (
    Conflict,
    CopilotError,
    IndexMismatch,
    NotFound,
    ServiceUnavailable,
    UnknownTenant,
)
from copilot.nextactions import NextActions
from copilot.settings import Settings
from copilot.suggest import SuggestionSet
from copilot.summarize import Summary
from knowledge.base import KnowledgeBase

EXAMPLE_THREAD: dict[str, Any] = {
    "id": "th-1001", "channel": "whatsapp", "tenant": "brightwave",
    "customer": {"name": "Hannah Jones", "id": "C-20418", "locale": "en-GB", "tier": "standard"},
    "messages": [{"id": "m1", "role": "customer", "text": "my phone got stolen last night",
                  "ts": "2026-11-21T08:02:11Z"}],
}


class ThreadRequest(BaseModel):
    """A whole thread, as a console sends it. Until API keys arrive, the tenant is named in the request."""

    tenant: str | None = Field(None, description="The tenant (brand); default: the thread's own 'tenant'.")
    thread: Thread = Field(..., description="The thread: channel, customer and messages, oldest first.")

    def tenant_name(self) -> str:
        return thread_tenant(self.thread, self.tenant, how_to_name="set 'tenant' in the request or in the thread")


class SuggestRequest(ThreadRequest):
    n: int = Field(3, ge=1, le=10, description="How many suggestions.")
    engine: Literal["grounded", "llm"] | None = Field(
        None, description="grounded or llm; default: llm when configured, else grounded.")

    model_config = {"json_schema_extra": {"examples": [{"thread": EXAMPLE_THREAD, "n": 3}]}}


class SummaryRequest(ThreadRequest):
    style: Literal["catch_up", "handoff", "after_contact"] = Field("after_contact", description="What it is for.")
    engine: Literal["grounded", "llm"] | None = Field(None, description="llm writes the abstract only.")

    model_config = {"json_schema_extra": {"examples": [{"thread": EXAMPLE_THREAD, "style": "handoff"}]}}


class NextActionsRequest(ThreadRequest):
    done_actions: list[str] = Field(default_factory=list, description="Step ids or actions the console did.")
    n: int = Field(3, ge=1, le=10, description="How many actions.")

    model_config = {"json_schema_extra": {"examples": [{"thread": EXAMPLE_THREAD, "done_actions": []}]}}

PROBLEM = "application/problem+json"


class SearchResult(BaseModel):
    document_id: str = Field(description="The document the passage comes from.")
    title: str = Field(description="The document's title.")
    section: str = Field(description="The heading path of the passage, ' > ' separated.")
    text: str = Field(description="The passage.")
    score: float = Field(description="Fused relevance score; higher is better.")
    source: str = Field(description="Where the document was ingested from.")
    kind: str = Field(description="article, faq, macro or playbook.")


class SearchResponse(BaseModel):
    results: list[SearchResult] = Field(description="Best first.")


def _status(exc: CopilotError) -> int:
    if isinstance(exc, UnknownTenant | NotFound):
        return 404
    if isinstance(exc, Conflict):
        return 409
    if isinstance(exc, ServiceUnavailable | IndexMismatch):
        return 503
    return 422 if exc.type != "copilot-error" else 500


def _problem_response(request: Request, status: int, kind: str, detail: str, **extra: object) -> JSONResponse:
    """An RFC 9457 problem+json body with a stable ``type`` per error."""
    body = {"type": f"https://copilot.example/problems/{kind}", "title": kind.replace("-", " "),
            "status": status, "detail": detail, "instance": str(request.url.path), **extra}
    return JSONResponse(body, status_code=status, media_type=PROBLEM)


def create_app(settings: Settings, knowledge: KnowledgeBase | None = None) -> FastAPI:
    app = FastAPI(title="Agent-assist copilot", version="0.1.0")
    state: dict[str, Any] = {}

    def kb() -> KnowledgeBase:
        if "kb" not in state:
            state["kb"] = knowledge or KnowledgeBase(settings)
        base: KnowledgeBase = state["kb"]
        return base

    def engines() -> Engines:
        if "engines" not in state:
            state["engines"] = Engines(kb(), settings)
        wired: Engines = state["engines"]
        return wired

    @app.exception_handler(CopilotError)
    async def _problem(request: Request, exc: CopilotError) -> JSONResponse:
        return _problem_response(request, _status(exc), exc.type, exc.message)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", "")} for e in exc.errors()]
        detail = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errors)
        return _problem_response(request, 422, "invalid-request", detail, errors=errors)

    @app.get("/healthz", summary="The process is alive.")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", summary="The store, the index and the model are loaded.")
    def readyz() -> JSONResponse:
        base = kb()
        checks = {"store": True, "index": base.vectors.heartbeat(), "model": base.embedder.dimension > 0}
        try:
            base.registry.tenants()
        except CopilotError:
            checks["store"] = False
        ok = all(checks.values())
        return JSONResponse({"status": "ready" if ok else "not ready", "checks": checks},
                            status_code=200 if ok else 503)

    @app.get("/v1/knowledge/search", response_model=SearchResponse, summary="Search a tenant's knowledge.")
    def search(
        tenant: Annotated[str, Query(description="The tenant (brand).")],
        q: Annotated[str, Query(min_length=1, max_length=2000, description="The question.")],
        k: Annotated[int, Query(ge=1, le=50, description="How many passages.")] = 5,
    ) -> SearchResponse:
        passages = kb().search(tenant, q, k)
        return SearchResponse(results=[SearchResult(
            document_id=p.document_id, title=p.title, section=p.section, text=p.text, score=p.score,
            source=p.source, kind=p.kind) for p in passages])

    errors_out: dict[int | str, dict[str, Any]] = {
        404: {"description": "Unknown tenant."}, 422: {"description": "Invalid request (problem+json)."},
        503: {"description": "A backing store or model is unavailable."}}

    @app.post("/v1/suggestions", response_model=SuggestionSet, responses=errors_out,
              summary="Reply suggestions for a thread, grounded in the tenant's knowledge.")
    def suggestions(body: SuggestRequest) -> SuggestionSet:
        return engines().suggest(body.tenant_name(), body.thread, engine=body.engine, n=body.n)

    @app.post("/v1/suggestions/stream", responses=errors_out,
              summary="The llm engine's draft as Server-Sent Events: 'delta' events, then one 'done' event.")
    def suggestions_stream(body: SuggestRequest) -> StreamingResponse:
        stream = engines().stream(body.tenant_name(), body.thread, engine=body.engine)

        def events() -> Iterator[str]:
            for event in stream:
                if event["type"] == "delta":
                    yield f"event: delta\ndata: {json.dumps({'text': event['text']})}\n\n"
                else:
                    yield f"event: done\ndata: {event['result'].model_dump_json()}\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    @app.post("/v1/summaries", response_model=Summary, responses=errors_out,
              summary="A structured summary of a thread.")
    def summaries(body: SummaryRequest) -> Summary:
        return engines().summarize(body.tenant_name(), body.thread, style=body.style, engine=body.engine)

    @app.post("/v1/next-best-actions", response_model=NextActions, responses=errors_out,
              summary="The next playbook steps and escalation advice for a thread.")
    def next_best_actions(body: NextActionsRequest) -> NextActions:
        return engines().next_actions(body.tenant_name(), body.thread, done_actions=body.done_actions, n=body.n)

    return app
