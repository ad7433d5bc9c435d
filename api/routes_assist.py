"""What agent consoles call: threads, suggestions (and their stream), summaries, next actions, search, feedback."""


import json
from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import StreamingResponse

from api.auth import Permission, Principal
from api.deps import caller, problems
from api.schemas import (
    AppendRequest,
    AppendResponse,
    FeedbackRequest,
    FeedbackResponse,
    NextActionsRequest,
    SearchResponse,
    SearchResult,
    SuggestRequest,
    SummaryRequest,
    ThreadBody,
    ThreadList,
    ThreadView,
)
from api.service import Service
from copilot.conversation import Thread
from copilot.nextactions import NextActions
from copilot.suggest import SuggestionSet
from copilot.summarize import Summary

ThreadId = Annotated[str, Path(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9._:-]+$",
                               description="The console's thread id: letters, digits, '.', '_', ':' and '-'.")]


def router(service: Service) -> APIRouter:
    api = APIRouter(prefix="/v1")
    Agent = Annotated[Principal, Depends(caller(service, Permission.ASSIST))]
    Searcher = Annotated[Principal, Depends(caller(service, Permission.SEARCH))]

    @api.post("/suggestions", response_model=SuggestionSet, responses=problems(404, 409, 413, 415),
              tags=["assist"], summary="Reply suggestions for a thread, grounded in the tenant's knowledge.")
    def suggestions(body: SuggestRequest, who: Agent) -> SuggestionSet:
        thread = service.resolve_thread(who, body.thread, body.thread_id)
        return service.suggest(who, thread, engine=body.engine, n=body.n)

    @api.post("/suggestions/stream", responses={
        200: {"description": "Server-Sent Events: 'delta' events ({\"text\"}) as the llm engine writes, then one "
                             "'done' event with the checked SuggestionSet.",
              "content": {"text/event-stream": {"schema": {"type": "string"}}}}, **problems(404, 413, 415)},
              tags=["assist"], summary="The llm engine's draft as it is written (Server-Sent Events).")
    def suggestions_stream(body: SuggestRequest, who: Agent) -> StreamingResponse:
        thread = service.resolve_thread(who, body.thread, body.thread_id)
        stream = service.stream(who, thread, engine=body.engine)
        first = next(stream)  # errors before the first event still answer problem+json

        def events() -> Iterator[str]:
            for event in (first, *stream):
                if event["type"] == "delta":
                    yield f"event: delta\ndata: {json.dumps({'text': event['text']})}\n\n"
                else:
                    yield f"event: done\ndata: {event['result'].model_dump_json()}\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    @api.post("/summaries", response_model=Summary, responses=problems(404, 413, 415), tags=["assist"],
              summary="A structured summary of a thread: catch-up, handoff or after-contact.")
    def summaries(body: SummaryRequest, who: Agent) -> Summary:
        thread = service.resolve_thread(who, body.thread, body.thread_id)
        return service.summarize(who, thread, style=body.style, engine=body.engine)

    @api.post("/next-best-actions", response_model=NextActions, responses=problems(404, 413, 415), tags=["assist"],
              summary="The next playbook steps and advice to move off messaging, each with its reason.")
    def next_best_actions(body: NextActionsRequest, who: Agent) -> NextActions:
        thread = service.resolve_thread(who, body.thread, body.thread_id)
        return service.next_actions(who, thread, done_actions=body.done_actions, n=body.n)

    @api.get("/knowledge/search", response_model=SearchResponse, responses=problems(), tags=["assist"],
             summary="Search the tenant's knowledge (articles and FAQs).")
    def search(who: Searcher,
               q: Annotated[str, Query(min_length=1, max_length=2000, description="The question.")],
               k: Annotated[int, Query(ge=1, le=50, description="How many passages.")] = 5) -> SearchResponse:
        passages = service.kb.search(who.tenant, q, k)
        return SearchResponse(results=[SearchResult(
            document_id=p.document_id, title=p.title, section=p.section, text=p.text, score=p.score,
            source=p.source, kind=p.kind) for p in passages])

    @api.put("/threads/{thread_id}", response_model=ThreadView, responses=problems(409, 413, 415),
             tags=["threads"], summary="Keep a thread (create or replace it with its messages so far).")
    def put_thread(thread_id: ThreadId, body: ThreadBody, who: Agent) -> ThreadView:
        thread = Thread(id=thread_id, channel=body.channel, customer=body.customer, messages=body.messages)
        stored = service.put_thread(who, thread_id, thread)
        return ThreadView(thread=stored.thread, created_at=stored.created_at, updated_at=stored.updated_at)

    @api.post("/threads/{thread_id}/messages", response_model=AppendResponse,
              responses=problems(404, 409, 413, 415), tags=["threads"],
              summary="Append messages; idempotent by message id; a resumed thread gets a catch-up summary.")
    def append(thread_id: ThreadId, body: AppendRequest, who: Agent) -> AppendResponse:
        result, catch_up = service.append(who, thread_id, body.messages)
        stored = result.thread
        return AppendResponse(thread=stored.thread, created_at=stored.created_at, updated_at=stored.updated_at,
                              added=result.added, duplicates=result.duplicates, catch_up=catch_up)

    @api.get("/threads/{thread_id}", response_model=ThreadView, responses=problems(404), tags=["threads"],
             summary="A kept thread with its messages.")
    def get_thread(thread_id: ThreadId, who: Agent) -> ThreadView:
        stored = service.store.thread(who.tenant, thread_id)
        return ThreadView(thread=stored.thread, created_at=stored.created_at, updated_at=stored.updated_at)

    @api.get("/threads", response_model=ThreadList, responses=problems(), tags=["threads"],
             summary="The tenant's kept threads, most recently active first.")
    def list_threads(who: Agent, limit: Annotated[int, Query(ge=1, le=500, description="At most.")] = 100
                     ) -> ThreadList:
        return ThreadList(threads=[service.thread_item(who, i, u) for i, _, _, u in
                                   service.store.threads(who.tenant, limit)])

    @api.post("/feedback", response_model=FeedbackResponse, status_code=201, responses=problems(404, 413, 415),
              tags=["assist"], summary="What the agent did with a suggestion: shown, accepted, edited, rejected.")
    def feedback(body: FeedbackRequest, who: Agent) -> FeedbackResponse:
        return FeedbackResponse(**service.feedback(who, body.suggestion_id, body.event, final_text=body.final_text,
                                                   reason=body.reason))

    return api
