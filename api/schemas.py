"""Request and response bodies of the HTTP API (the engines' own models are reused where they fit)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from copilot.conversation import Channel, Customer, Message, Thread
from copilot.summarize import Summary

EXAMPLE_THREAD: dict[str, Any] = {
    "id": "th-1001", "channel": "whatsapp",
    "customer": {"name": "Hannah Jones", "id": "C-20418", "locale": "en-GB", "tier": "standard"},
    "messages": [{"id": "m1", "role": "customer", "text": "my phone got stolen last night",
                  "ts": "2026-11-21T08:02:11Z"}],
}


class Problem(BaseModel):
    """An error, as RFC 9457 problem+json."""

    type: str = Field(..., description="A stable URI per kind of error, e.g. .../problems/not-found.")
    title: str = Field(..., description="The kind of error in words.")
    status: int = Field(..., description="The HTTP status code.")
    detail: str = Field(..., description="What went wrong and how to fix it.")
    instance: str = Field(..., description="The path of the request.")
    request_id: str | None = Field(None, description="The request id, also in the X-Request-ID header.")
    errors: list[dict[str, Any]] | None = Field(None, description="Per field, for invalid requests: loc and msg.")
    retry_after: int | None = Field(None, description="Seconds to wait, for 429 (also the Retry-After header).")


class ThreadRef(BaseModel):
    """A thread sent whole, or the id of a thread the service keeps."""

    thread: Thread | None = Field(None, description="The whole thread: channel, customer and messages, oldest "
                                                    "first. Its 'tenant', when set, must be the key's tenant.")
    thread_id: str | None = Field(None, max_length=200, description="A thread kept with PUT /v1/threads/{id}.")


class SuggestRequest(ThreadRef):
    n: int = Field(3, ge=1, le=10, description="How many suggestions at most.")
    engine: Literal["grounded", "llm"] | None = Field(
        None, description="grounded or llm; default: llm when configured, else grounded.")

    model_config = {"json_schema_extra": {"examples": [{"thread": EXAMPLE_THREAD, "n": 3},
                                                       {"thread_id": "th-1001"}]}}


class SummaryRequest(ThreadRef):
    style: Literal["catch_up", "handoff", "after_contact"] = Field("after_contact", description="What it is for.")
    engine: Literal["grounded", "llm"] | None = Field(None, description="llm writes the abstract only.")

    model_config = {"json_schema_extra": {"examples": [{"thread": EXAMPLE_THREAD, "style": "handoff"}]}}


class NextActionsRequest(ThreadRef):
    done_actions: list[str] = Field(default_factory=list, max_length=100,
                                    description="Step ids or actions the console already did.")
    n: int = Field(3, ge=1, le=10, description="How many actions at most.")

    model_config = {"json_schema_extra": {"examples": [{"thread": EXAMPLE_THREAD, "done_actions": []}]}}


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


# --- threads ---


class ThreadBody(BaseModel):
    """A thread to keep: its channel, customer and messages so far."""

    channel: Channel = Field(Channel.WEBCHAT, description="sms, whatsapp, messenger, apple_messages, webchat, "
                                                          "x_dm, app or email.")
    customer: Customer = Field(default_factory=Customer, description="The customer record the console has.")
    messages: list[Message] = Field(default_factory=list, description="The messages so far, oldest first.")

    model_config = {"json_schema_extra": {"examples": [
        {"channel": "sms", "customer": {"name": "Hannah Jones", "id": "C-20418"},
         "messages": [{"id": "m1", "role": "customer", "text": "my phone got stolen last night"}]}]}}


class AppendRequest(BaseModel):
    messages: list[Message] = Field(..., min_length=1, max_length=100, description=(
        "Messages to append, oldest first. Give each an 'id': a retry with the same id is not stored twice."))

    model_config = {"json_schema_extra": {"examples": [
        {"messages": [{"id": "m2", "role": "agent", "text": "I'm sorry to hear that. Let's block the SIM."}]}]}}


class ThreadView(BaseModel):
    thread: Thread = Field(..., description="The thread as kept, messages oldest first.")
    created_at: datetime = Field(..., description="When the service first kept it.")
    updated_at: datetime = Field(..., description="When a message was last added or it was replaced.")


class AppendResponse(ThreadView):
    added: list[str] = Field(..., description="Ids of the messages stored by this request.")
    duplicates: list[str] = Field(..., description="Ids already stored (a retry): not stored again.")
    catch_up: Summary | None = Field(None, description="A catch-up summary when the thread had been quiet longer "
                                                       "than COPILOT_CATCH_UP_AFTER_S (default two hours).")


class ThreadListItem(BaseModel):
    id: str = Field(..., description="The thread id.")
    channel: str = Field(..., description="The thread's channel.")
    message_count: int = Field(..., description="Messages kept.")
    updated_at: datetime = Field(..., description="Last change.")


class ThreadList(BaseModel):
    threads: list[ThreadListItem] = Field(..., description="Most recently active first.")


# --- feedback ---


class FeedbackRequest(BaseModel):
    suggestion_id: str = Field(..., max_length=40, description="The 'id' of a suggestion this tenant was given.")
    event: Literal["shown", "accepted", "edited", "rejected"] = Field(
        ..., description="shown: the agent saw it; accepted: sent as is; edited: sent after changes (give "
                         "final_text); rejected: not used (give a reason).")
    final_text: str | None = Field(None, max_length=20_000, description="What the agent sent, for edited.")
    reason: str | None = Field(None, max_length=500, description="Why it was rejected, e.g. wrong_answer, "
                                                                 "off_brand, outdated, not_needed.")

    model_config = {"json_schema_extra": {"examples": [
        {"suggestion_id": "sug_4f1c2a9be0d34c7a", "event": "edited",
         "final_text": "Hi Hannah, I've blocked your SIM. A new one is on its way."},
        {"suggestion_id": "sug_4f1c2a9be0d34c7a", "event": "rejected", "reason": "wrong_answer"}]}}


class FeedbackResponse(BaseModel):
    id: int = Field(..., description="The feedback record.")
    suggestion_id: str = Field(..., description="The suggestion it is about.")
    event: str = Field(..., description="The event recorded.")
    edit_distance: int | None = Field(None, description="Characters changed (Levenshtein) between the suggestion "
                                                        "and the text sent; 0 for accepted.")
    edit_ratio: float | None = Field(None, description="The edit distance over the longer text's length, 0..1.")


# --- knowledge ---


class DocumentInfo(BaseModel):
    document_id: str = Field(..., description="The document id (the file's path as uploaded or ingested).")
    title: str = Field(..., description="Its title.")
    kind: str = Field(..., description="article, faq, macro, playbook, brand_voice or intents.")
    version: int = Field(..., description="Goes up by one with every change of content.")
    chunks: int = Field(..., description="Indexed passages.")
    status: Literal["live"] = Field("live", description="Listed documents are fully indexed and searchable.")
    updated_at: datetime = Field(..., description="When this version went live.")
    updated_by: str = Field(..., description="The API key id (or 'cli') that made this version.")
    source: str = Field(..., description="Where it was ingested from.")


class VersionInfo(BaseModel):
    version: int = Field(..., description="The version number.")
    action: str = Field(..., description="added, updated or removed.")
    chunks: int = Field(..., description="Passages of this version.")
    at: datetime = Field(..., description="When.")
    by: str = Field(..., description="Who: API key id or 'cli'.")


class DocumentDetail(DocumentInfo):
    history: list[VersionInfo] = Field(..., description="Every version, oldest first.")


class DocumentList(BaseModel):
    documents: list[DocumentInfo] = Field(..., description="Sorted by document id.")
    knowledge_version: int = Field(..., description="The tenant's knowledge version: goes up with every change.")


class IngestSummary(BaseModel):
    added: int = Field(..., description="New documents.")
    updated: int = Field(..., description="Documents whose content changed.")
    unchanged: int = Field(..., description="Documents sent again with the same content (nothing re-indexed).")
    removed: int = Field(0, description="Documents removed.")
    chunks: int = Field(..., description="Passages indexed.")
    failed: list[dict[str, str]] = Field(..., description="Files that could not be ingested: path and error.")


class UploadResponse(BaseModel):
    job_id: str | None = Field(None, description="For large uploads (202): poll GET /v1/jobs/{job_id}.")
    report: IngestSummary | None = Field(None, description="For small uploads (200/201): what was ingested.")


class JobView(BaseModel):
    id: str = Field(..., description="The job id.")
    kind: str = Field(..., description="What it does, e.g. ingest.")
    status: Literal["queued", "running", "succeeded", "failed"] = Field(..., description="Where it is.")
    done: int = Field(..., description="Items done (files for ingest).")
    total: int = Field(..., description="Items in all.")
    progress: float = Field(..., description="done / total, 0..1.")
    current: str | None = Field(None, description="The item last worked on.")
    result: dict[str, Any] | None = Field(None, description="The job's outcome, e.g. the ingest report.")
    error: str | None = Field(None, description="Why it failed.")
    created_at: datetime = Field(..., description="When it was queued.")
    updated_at: datetime = Field(..., description="Last progress.")


class VoiceCheckRequest(BaseModel):
    text: str = Field(..., min_length=1, max_length=20_000, description="The draft to check.")
    channel: Channel = Field(Channel.WEBCHAT, description="The channel it is for (emoji and length rules).")
    verified: bool = Field(True, description="Whether the customer's identity is verified (refund promises).")

    model_config = {"json_schema_extra": {"examples": [
        {"text": "No worries, I guarantee a refund today!", "channel": "sms", "verified": False}]}}


class VoiceViolation(BaseModel):
    rule: str = Field(..., description="banned_phrase, preferred_term, never_promise, verification, emoji or "
                                       "reading_level.")
    start: int = Field(..., description="Start offset in the draft.")
    end: int = Field(..., description="End offset (exclusive).")
    text: str = Field(..., description="The offending text.")
    message: str = Field(..., description="What is wrong.")
    fix: str | None = Field(None, description="The mechanical replacement, when there is one.")


class VoiceCheckResponse(BaseModel):
    violations: list[VoiceViolation] = Field(..., description="Every violation, in order of position.")
    fixed_text: str = Field(..., description="The draft with what can be fixed mechanically fixed.")
    changes: list[str] = Field(..., description="What the fixing changed.")
    remaining: list[VoiceViolation] = Field(..., description="What the agent must still fix by hand.")
    length: int = Field(..., description="Characters of the fixed text.")
    limit: int | None = Field(None, description="The channel's limit per message, when it has one.")
    sms_segments: int | None = Field(None, description="SMS segments the fixed text costs (sms only).")


class ContentWrite(BaseModel):
    document_id: str = Field(..., description="The document that now holds it.")
    version: int = Field(..., description="That document's new version.")


# --- analytics ---


class Outcomes(BaseModel):
    suggestions_shown: int = Field(..., description="Suggestions the console reported any event for.")
    accepted: int = Field(..., description="Sent as suggested.")
    edited: int = Field(..., description="Sent after edits.")
    rejected: int = Field(..., description="Rejected.")
    acceptance_rate: float | None = Field(None, description="(accepted + edited) / shown.")
    edited_rate: float | None = Field(None, description="edited / shown.")
    rejection_rate: float | None = Field(None, description="rejected / shown.")
    mean_edit_distance: float | None = Field(None, description="Mean characters changed over accepted and edited.")
    mean_edit_ratio: float | None = Field(None, description="Mean edit distance over length, 0..1.")


class ReasonCount(BaseModel):
    reason: str = Field(..., description="A rejection reason as the console sent it.")
    count: int = Field(..., description="How many rejections gave it.")


class KnowledgeGap(BaseModel):
    question: str = Field(..., description="The most central wording of a group of unanswered questions.")
    count: int = Field(..., description="How many times it was asked in the period.")
    examples: list[str] = Field(..., description="Up to five other wordings.")
    last_asked: datetime = Field(..., description="When it was last asked.")


class Analytics(Outcomes):
    tenant: str = Field(..., description="The tenant.")
    since: datetime = Field(..., description="Start of the period (inclusive).")
    until: datetime = Field(..., description="End of the period (exclusive).")
    requests: int = Field(..., description="Suggestion requests in the period.")
    answered_rate: float | None = Field(None, description="Share of requests with a confident answer.")
    suggestions_offered: int = Field(..., description="Suggestions returned.")
    engine_fallbacks: int = Field(..., description="Requests where the llm engine failed and grounded answered.")
    by_engine: dict[str, int] = Field(..., description="Requests per engine that answered.")
    rejection_reasons: list[ReasonCount] = Field(..., description="Most frequent first.")
    by_source: dict[str, Outcomes] = Field(..., description="Per suggestion source: macro, knowledge, llm, clarify.")
    by_intent: dict[str, Outcomes] = Field(..., description="Per intent of the customer turn ('unknown' without).")
    knowledge_gaps: list[KnowledgeGap] = Field(..., description="Unanswered questions grouped by meaning, most "
                                                                "frequent first: what to write articles for.")


class AuditEntry(BaseModel):
    at: datetime = Field(..., description="When.")
    key_id: str = Field(..., description="The API key that did it.")
    role: str = Field(..., description="The key's role.")
    method: str = Field(..., description="HTTP method.")
    route: str = Field(..., description="The route template.")
    object_id: str | None = Field(None, description="The object acted on (thread, document, suggestion...).")
    outcome: str = Field(..., description="ok, or the error type.")
    request_id: str | None = Field(None, description="The request id.")


class AuditLog(BaseModel):
    entries: list[AuditEntry] = Field(..., description="Newest first.")


class KeyView(BaseModel):
    id: str = Field(..., description="The key id (public; used in the audit log).")
    tenant: str = Field(..., description="The tenant it belongs to.")
    role: Literal["agent", "content", "qa", "admin"] = Field(..., description="What it may do.")
    name: str = Field(..., description="A label.")
    created_at: datetime = Field(..., description="When it was made.")
    revoked_at: datetime | None = Field(None, description="When it was revoked; null while live.")


class KeyCreated(KeyView):
    key: str = Field(..., description="The secret, shown this once: send it as 'Authorization: Bearer <key>'.")


class KeyRequest(BaseModel):
    role: Literal["agent", "content", "qa", "admin"] = Field(..., description="What the key may do.")
    name: str = Field("", max_length=200, description="A label, e.g. the console or person it is for.")

    model_config = {"json_schema_extra": {"examples": [{"role": "agent", "name": "zendesk console"}]}}


class KeyList(BaseModel):
    keys: list[KeyView] = Field(..., description="The tenant's keys, oldest first.")
