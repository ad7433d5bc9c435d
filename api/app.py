"""The FastAPI app: health, readiness and knowledge search (the rest of the API grows here)."""

from __future__ import annotations

from typing import Annotated

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from copilot.errors import Conflict, CopilotError, IndexMismatch, NotFound, ServiceUnavailable, UnknownTenant
from copilot.settings import Settings
from knowledge.base import KnowledgeBase

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
    state: dict[str, KnowledgeBase] = {}

    def kb() -> KnowledgeBase:
        if "kb" not in state:
            state["kb"] = knowledge or KnowledgeBase(settings)
        return state["kb"]

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

    return app
