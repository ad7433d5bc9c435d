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

    type: str = Field(..., description="A stable URI per kind of error, e.g. "
                                       "https://copilot.example/problems/not-found: branch on this, not on title.")
    title: str = Field(..., description="The kind of error in words, e.g. 'not found'.")
    status: int = Field(..., description="The HTTP status code, repeated.")
    detail: str = Field(..., description="What went wrong and how to fix it, for a person to read.")
    instance: str = Field(..., description="The path of the request, e.g. /v1/threads/th-1001.")
    request_id: str | None = Field(None, description="The request id, also in the X-Request-ID header: quote it "
                                                     "when reporting a problem.")
    errors: list[dict[str, Any]] | None = Field(None, description="For 400 and 422: one object per invalid "
                                                                  "field, with loc (the path to the field, e.g. "
                                                                  "['body', 'n']) and msg.")
    retry_after: int | None = Field(None, description="For 429: seconds to wait before retrying (also the "
                                                      "Retry-After header).")


class ThreadRef(BaseModel):
    """A thread sent whole, or the id of a thread the service keeps."""

    thread: Thread | None = Field(None, description="The whole thread: channel, customer and messages, oldest "
                                                    "first. Its 'tenant', when set, must be the key's tenant.")
    thread_id: str | None = Field(None, max_length=200, description="The id of a thread kept with PUT "
                                                                    "/v1/threads/{thread_id}. Give thread or "
                                                                    "thread_id, not both.")


class SuggestRequest(ThreadRef):
    """Ask for reply suggestions to the latest customer turn of a thread."""

    n: int = Field(3, ge=1, le=10, description="How many suggestions at most, 1 to 10; default 3. Fewer (or a "
                                               "clarifying question) come back when the knowledge has no answer.")
    engine: Literal["grounded", "llm"] | None = Field(
        None, description="grounded (macros and knowledge passages, no LLM) or llm (an LLM drafts from the "
                          "passages; falls back to grounded when it fails). Default: llm when the service has an "
                          "LLM configured, else grounded.")

    model_config = {"json_schema_extra": {"examples": [{"thread": EXAMPLE_THREAD, "n": 3},
                                                       {"thread_id": "th-1001"}]}}


class SummaryRequest(ThreadRef):
    """Ask for a structured summary of a thread."""

    style: Literal["catch_up", "handoff", "after_contact"] = Field(
        "after_contact", description="What the abstract is for: catch_up (an agent picks up or resumes the "
                                     "thread), handoff (another agent takes over) or after_contact (the wrap-up); "
                                     "default after_contact.")
    engine: Literal["grounded", "llm"] | None = Field(
        None, description="grounded or llm: llm writes the abstract only, every other field is grounded. "
                          "Default: llm when the service has an LLM configured, else grounded.")

    model_config = {"json_schema_extra": {"examples": [{"thread": EXAMPLE_THREAD, "style": "handoff"}]}}


class NextActionsRequest(ThreadRef):
    """Ask for the next-best actions on a thread."""

    done_actions: list[str] = Field(default_factory=list, max_length=100,
                                    description="Playbook step ids or actions the console already did (e.g. "
                                                "bar_sim), at most 100; they count as done whatever the thread "
                                                "says.")
    n: int = Field(3, ge=1, le=10, description="How many actions at most, 1 to 10; default 3.")

    model_config = {"json_schema_extra": {"examples": [{"thread": EXAMPLE_THREAD, "done_actions": []}]}}


class SearchResult(BaseModel):
    """A passage of the tenant's knowledge that matches the question."""

    document_id: str = Field(description="The document the passage comes from.")
    title: str = Field(description="The document's title.")
    section: str = Field(description="The heading path of the passage, ' > ' separated.")
    text: str = Field(description="The passage.")
    score: float = Field(description="Relevance, dense and lexical retrieval fused; higher is better. Only "
                                     "comparable within one answer, not a probability.")
    source: str = Field(description="Where the document was ingested from: a path or URL, or api:<key id> for "
                                    "content written through the API.")
    kind: str = Field(description="The document's kind, e.g. article, faq or macro.")


class SearchResponse(BaseModel):
    """The passages that answer a search, best first."""

    results: list[SearchResult] = Field(description="At most k passages, best first; empty when nothing "
                                                    "matches.")


# --- threads ---


class ThreadBody(BaseModel):
    """A thread to keep: its channel, customer and messages so far."""

    channel: Channel = Field(Channel.WEBCHAT, description="sms, whatsapp, messenger, apple_messages, webchat, "
                                                          "x_dm, app or email; default webchat.")
    customer: Customer = Field(default_factory=Customer, description="The customer record the console has.")
    messages: list[Message] = Field(default_factory=list, description="The messages so far, oldest first; at "
                                                                      "most COPILOT_MAX_THREAD_MESSAGES (default "
                                                                      "1000).")

    model_config = {"extra": "forbid", "json_schema_extra": {"examples": [
        {"channel": "sms", "customer": {"name": "Hannah Jones", "id": "C-20418"},
         "messages": [{"id": "m1", "role": "customer", "text": "my phone got stolen last night"}]}]}}


class AppendRequest(BaseModel):
    """New messages of a kept thread."""

    messages: list[Message] = Field(..., min_length=1, max_length=100, description=(
        "Messages to append, oldest first; 1 to 100. Give each an 'id': a retry with the same id is not stored "
        "twice, and reusing an id for a different message is a 409."))

    model_config = {"json_schema_extra": {"examples": [
        {"messages": [{"id": "m2", "role": "agent", "text": "I'm sorry to hear that. Let's block the SIM."}]}]}}


class ThreadView(BaseModel):
    """A thread the service keeps."""

    thread: Thread = Field(..., description="The thread as kept, messages oldest first.")
    created_at: datetime = Field(..., description="When the service first kept it.")
    updated_at: datetime = Field(..., description="When a message was last added or it was replaced.")


class AppendResponse(ThreadView):
    """The thread after an append, and what the append stored."""

    added: list[str] = Field(..., description="Ids of the messages stored by this request.")
    duplicates: list[str] = Field(..., description="Ids already stored (a retry): not stored again.")
    catch_up: Summary | None = Field(None, description="A catch-up summary when the thread had been quiet longer "
                                                       "than COPILOT_CATCH_UP_AFTER_S (default two hours).")


class ThreadListItem(BaseModel):
    """A kept thread, without its messages."""

    id: str = Field(..., description="The thread id: GET /v1/threads/{thread_id} gives its messages.")
    channel: str = Field(..., description="The thread's channel, e.g. sms or whatsapp.")
    message_count: int = Field(..., description="Messages kept.")
    updated_at: datetime = Field(..., description="When a message was last added or the thread replaced.")
    customer_name: str | None = Field(None, description="The customer's name, when the console gave it.")
    preview: str = Field("", description="The latest message, cut to 160 characters, personal data masked.")
    last_role: str | None = Field(None, description="Who wrote the latest message: customer, agent, system or bot.")
    waiting_since: datetime | None = Field(None, description="When the customer started waiting for an answer "
                                                             "(their first message after the agent's last); null "
                                                             "when the agent wrote last.")
    urgency: float = Field(0.0, ge=0, le=1, description="Urgency of the customer's latest turn, 0 to 1 (cues such "
                                                         "as a deadline, a complaint, shouting, strong negativity).")
    urgency_cues: list[str] = Field(default_factory=list, description="The cues behind the urgency.")


class ThreadList(BaseModel):
    """The tenant's kept threads."""

    threads: list[ThreadListItem] = Field(..., description="Most recently active first (consoles sort by "
                                                            "waiting_since and urgency for a queue).")


# --- feedback ---


class FeedbackRequest(BaseModel):
    """What the agent did with one suggestion."""

    suggestion_id: str = Field(..., max_length=40, description="The 'id' of a suggestion this tenant was given.")
    event: Literal["shown", "accepted", "edited", "rejected"] = Field(
        ..., description="shown: the agent saw it; accepted: sent as is; edited: sent after changes (give "
                         "final_text); rejected: not used (give a reason).")
    final_text: str | None = Field(None, max_length=20_000, description="What the agent sent, at most 20,000 "
                                                                        "characters: required for edited.")
    reason: str | None = Field(None, max_length=500, description="Why it was rejected, at most 500 characters: "
                                                                 "required for rejected. Free text; a short code "
                                                                 "such as wrong_answer, off_brand, outdated or "
                                                                 "not_needed groups well in analytics.")

    model_config = {"json_schema_extra": {"examples": [
        {"suggestion_id": "sug_4f1c2a9be0d34c7a", "event": "edited",
         "final_text": "Hi Hannah, I've blocked your SIM. A new one is on its way."},
        {"suggestion_id": "sug_4f1c2a9be0d34c7a", "event": "rejected", "reason": "wrong_answer"}]}}


class FeedbackResponse(BaseModel):
    """The feedback as recorded."""

    id: int = Field(..., description="The feedback record's id.")
    suggestion_id: str = Field(..., description="The suggestion it is about.")
    event: str = Field(..., description="The event recorded: shown, accepted, edited or rejected.")
    edit_distance: int | None = Field(None, description="Characters changed (Levenshtein) between the suggestion "
                                                        "and the text sent; 0 for accepted; null for shown and "
                                                        "rejected.")
    edit_ratio: float | None = Field(None, description="The edit distance over the longer text's length, 0 to 1 "
                                                       "(0: unchanged); null for shown and rejected.")


# --- knowledge ---


_CUE_NAMES = ("The injection cues found: ignore_instructions, reveal_prompt, role_change, fake_delimiter, "
              "tell_the_customer or addressed_to_model.")


class FlaggedPassage(BaseModel):
    """An excerpt of one passage that reads as prompt injection."""

    section: str = Field(..., description="The heading path of the passage in the document (may be empty).")
    cues: list[str] = Field(..., description=_CUE_NAMES.replace("found", "found in this passage"))
    text: str = Field(..., description="At most 200 characters around the first cue, on one line, as plain text "
                                       "(never render it as HTML).")


class InjectionFlag(BaseModel):
    """Passages of a document that read as prompt injection (text written to steer an AI model rather than to
    inform a customer). They are never put in a prompt nor quoted in a suggestion; fix or remove the document."""

    cues: list[str] = Field(..., description=_CUE_NAMES)
    passages: int = Field(..., description="How many of the document's passages carry a cue.")
    excerpts: list[FlaggedPassage] = Field(..., description="The first 3 flagged passages, as excerpts.")


class FlaggedDocument(InjectionFlag):
    """A document of an upload that reads as prompt injection."""

    document_id: str = Field(..., description="The document id.")


class DocumentInfo(BaseModel):
    """A live document of the tenant's knowledge."""

    document_id: str = Field(..., description="The document id (the file's path as uploaded or ingested), e.g. "
                                              "articles/billing/refunds.md.")
    title: str = Field(..., description="Its title: from the front matter or first heading, else from the file "
                                        "name.")
    kind: str = Field(..., description="article, faq, macro, playbook, brand_voice, intents or "
                                       "action_history.")
    version: int = Field(..., description="Goes up by one with every change of content.")
    chunks: int = Field(..., description="Passages indexed for search.")
    status: Literal["live"] = Field("live", description="Listed documents are fully indexed and searchable.")
    updated_at: datetime = Field(..., description="When this version went live.")
    updated_by: str = Field(..., description="The API key id (or 'cli') that made this version.")
    source: str = Field(..., description="Where it was ingested from: a path or URL, or api:<key id> for content "
                                         "written through the brand-voice, macro and playbook routes.")
    flagged: InjectionFlag | None = Field(None, description="Set when passages of this version read as prompt "
                                                            "injection (they are withheld from suggestions); null "
                                                            "otherwise. A new version without them clears it.")


class VersionInfo(BaseModel):
    """One change of a document."""

    version: int = Field(..., description="The version number, from 1.")
    action: str = Field(..., description="added, updated or removed.")
    chunks: int = Field(..., description="Passages of this version (0 once removed).")
    at: datetime = Field(..., description="When the change went live.")
    by: str = Field(..., description="Who made it: the API key id, or 'cli'.")


class DocumentDetail(DocumentInfo):
    """A live document with its version history."""

    history: list[VersionInfo] = Field(..., description="Every version, oldest first.")


class DocumentList(BaseModel):
    """The tenant's live documents."""

    documents: list[DocumentInfo] = Field(..., description="Sorted by document id.")
    knowledge_version: int = Field(..., description="The tenant's knowledge version: goes up with every change.")


class IngestSummary(BaseModel):
    """What an upload ingested."""

    added: int = Field(..., description="New documents.")
    updated: int = Field(..., description="Documents whose content changed.")
    unchanged: int = Field(..., description="Documents sent again with the same content (nothing re-indexed).")
    removed: int = Field(0, description="Documents removed; default 0.")
    chunks: int = Field(..., description="Passages indexed by this upload.")
    failed: list[dict[str, str]] = Field(..., description="Files that could not be ingested, each with path (the "
                                                          "document id) and error; the others were ingested.")
    flagged: list[FlaggedDocument] = Field(default_factory=list, description=(
        "Documents indexed by this upload (added or updated) whose passages read as prompt injection: they are "
        "live, but those passages are withheld from suggestions until the document is fixed. Unchanged "
        "documents keep the flag shown in GET /v1/knowledge/documents."))


class UploadResponse(BaseModel):
    """The answer to an upload: the report now, or the job that ingests it."""

    job_id: str | None = Field(None, description="For uploads over COPILOT_UPLOAD_SYNC_BYTES (default 256 KiB; "
                                                 "202): poll GET /v1/jobs/{job_id}; null otherwise.")
    report: IngestSummary | None = Field(None, description="For smaller uploads (200, or 201 when a document is "
                                                           "new): what was ingested; null for a job.")


class JobView(BaseModel):
    """A background job, e.g. the ingestion of a large upload."""

    id: str = Field(..., description="The job id.")
    kind: str = Field(..., description="What it does, e.g. ingest.")
    status: Literal["queued", "running", "succeeded", "failed"] = Field(
        ..., description="queued, running, succeeded or failed; poll until succeeded or failed.")
    done: int = Field(..., description="Items done (files for ingest).")
    total: int = Field(..., description="Items in all.")
    progress: float = Field(..., description="done / total, 0 to 1.")
    current: str | None = Field(None, description="The item last worked on (a document id for ingest).")
    result: dict[str, Any] | None = Field(None, description="Once succeeded, the outcome: for ingest, the report "
                                                            "(added, updated, unchanged, removed, chunks, failed, "
                                                            "flagged, ...); else null.")
    error: str | None = Field(None, description="Once failed, why; else null.")
    created_at: datetime = Field(..., description="When it was queued.")
    updated_at: datetime = Field(..., description="When it last made progress or changed status.")


class VoiceCheckRequest(BaseModel):
    """A draft to check against the brand voice and the channel."""

    text: str = Field(..., min_length=1, max_length=20_000, description="The draft to check, 1 to 20,000 "
                                                                        "characters.")
    channel: Channel = Field(Channel.WEBCHAT, description="The channel it is for (emoji policy and length limit): "
                                                          "sms, whatsapp, messenger, apple_messages, webchat, "
                                                          "x_dm, app or email; default webchat.")
    verified: bool = Field(True, description="Whether the customer's identity is verified; when false, the "
                                             "guide's verification_required_for actions (e.g. refund) that the "
                                             "text takes, promises or reports are flagged (not a policy merely "
                                             "explained). Default true.")

    model_config = {"json_schema_extra": {"examples": [
        {"text": "No worries, I guarantee a refund today!", "channel": "sms", "verified": False}]}}


class VoiceViolation(BaseModel):
    """One place where a draft breaks the brand voice."""

    rule: str = Field(..., description="banned_phrase, preferred_term, never_promise, verification, emoji or "
                                       "reading_level.")
    start: int = Field(..., description="Start offset in the draft, in characters (Unicode code points) from 0.")
    end: int = Field(..., description="End offset (exclusive), in characters.")
    text: str = Field(..., description="The offending text; empty for reading_level, which is about the whole "
                                       "draft.")
    message: str = Field(..., description="What is wrong, for the agent to read.")
    fix: str | None = Field(None, description="The mechanical replacement (empty: delete the text); null when it "
                                              "must be fixed by hand.")


class VoiceCheckResponse(BaseModel):
    """The violations of a draft and the draft with the mechanical fixes made."""

    violations: list[VoiceViolation] = Field(..., description="Every violation, in order of position.")
    fixed_text: str = Field(..., description="The draft with what can be fixed mechanically fixed.")
    changes: list[str] = Field(..., description="What the fixing changed.")
    remaining: list[VoiceViolation] = Field(..., description="What the agent must still fix by hand.")
    length: int = Field(..., description="Characters of the fixed text.")
    limit: int | None = Field(None, description="The channel's limit in characters per message (e.g. 4096 on "
                                                "whatsapp), when it has one; longer replies are split.")
    sms_segments: int | None = Field(None, description="SMS segments the fixed text costs: 160 GSM-7 characters "
                                                       "(153 when split) or 70 UCS-2 (67); sms only, else null.")


class ContentWrite(BaseModel):
    """Where a brand-voice guide, macro or playbook written through the API is kept."""

    document_id: str = Field(..., description="The document that now holds it.")
    version: int = Field(..., description="That document's new version.")


# --- analytics ---


class Outcomes(BaseModel):
    """What agents did with the suggestions, from the console's feedback."""

    suggestions_shown: int = Field(..., description="Suggestions the console reported any event for.")
    accepted: int = Field(..., description="Suggestions sent as suggested.")
    edited: int = Field(..., description="Suggestions sent after edits.")
    rejected: int = Field(..., description="Suggestions rejected.")
    acceptance_rate: float | None = Field(None, description="(accepted + edited) / shown, 0 to 1; null when none "
                                                            "was shown.")
    edited_rate: float | None = Field(None, description="edited / shown, 0 to 1; null when none was shown.")
    rejection_rate: float | None = Field(None, description="rejected / shown, 0 to 1; null when none was shown.")
    mean_edit_distance: float | None = Field(None, description="Mean characters changed over accepted and edited "
                                                               "suggestions; null without any.")
    mean_edit_ratio: float | None = Field(None, description="Mean edit distance over the longer text's length, "
                                                            "0 to 1; null without any.")


class ReasonCount(BaseModel):
    """How often one rejection reason was given."""

    reason: str = Field(..., description="A rejection reason as the console sent it.")
    count: int = Field(..., description="How many rejections gave it.")


class KnowledgeGap(BaseModel):
    """A question customers asked that the knowledge did not answer, with its other wordings."""

    question: str = Field(..., description="The most central wording of a group of unanswered questions.")
    count: int = Field(..., description="How many times it was asked in the period.")
    examples: list[str] = Field(..., description="Up to five other wordings.")
    last_asked: datetime = Field(..., description="When it was last asked.")


class Analytics(Outcomes):
    """A tenant's suggestion outcomes over a period, by source and intent, and its knowledge gaps."""

    tenant: str = Field(..., description="The tenant, from the API key.")
    since: datetime = Field(..., description="Start of the period (inclusive); a time without zone is UTC.")
    until: datetime = Field(..., description="End of the period (exclusive); a time without zone is UTC.")
    requests: int = Field(..., description="Suggestion requests in the period.")
    answered_rate: float | None = Field(None, description="Share of requests with a confident answer, 0 to 1; "
                                                          "null without requests.")
    suggestions_offered: int = Field(..., description="Suggestions returned in the period.")
    engine_fallbacks: int = Field(..., description="Requests where the llm engine failed and grounded answered.")
    by_engine: dict[str, int] = Field(..., description="Requests per engine that answered (grounded, llm).")
    rejection_reasons: list[ReasonCount] = Field(..., description="Most frequent first.")
    by_source: dict[str, Outcomes] = Field(..., description="Per suggestion source: macro, knowledge, llm, clarify.")
    by_intent: dict[str, Outcomes] = Field(..., description="Per intent of the customer turn ('unknown' without).")
    knowledge_gaps: list[KnowledgeGap] = Field(..., description="Unanswered questions grouped by meaning, most "
                                                                "frequent first: what to write articles for.")


class AuditEntry(BaseModel):
    """One write of the tenant: who, what, when, and how it ended."""

    at: datetime = Field(..., description="When it happened.")
    key_id: str = Field(..., description="The API key that did it.")
    role: str = Field(..., description="The key's role: agent, content, qa or admin.")
    method: str = Field(..., description="The HTTP method: POST, PUT or DELETE.")
    route: str = Field(..., description="The route template, e.g. /v1/threads/{thread_id}.")
    object_id: str | None = Field(None, description="The object acted on (the path's thread, document, macro, "
                                                    "playbook or key id); null for routes without one.")
    outcome: str = Field(..., description="ok, or the problem type it failed with (e.g. not-found).")
    request_id: str | None = Field(None, description="The request id (X-Request-ID), to find it in the logs.")


class AuditLog(BaseModel):
    """The tenant's audit log."""

    entries: list[AuditEntry] = Field(..., description="Newest first.")


class KeyView(BaseModel):
    """An API key, without its secret."""

    id: str = Field(..., description="The key id (public; used in the audit log).")
    tenant: str = Field(..., description="The tenant it belongs to.")
    role: Literal["agent", "content", "qa", "admin"] = Field(
        ..., description="What it may do: agent (assist, threads, search), content (knowledge, brand voice, "
                         "macros, playbooks, search, analytics), qa (analytics, evals) or admin (everything, keys "
                         "and the audit log included). Every role may read its tenant's jobs.")
    name: str = Field(..., description="A label, e.g. the console or person it is for.")
    created_at: datetime = Field(..., description="When it was made.")
    revoked_at: datetime | None = Field(None, description="When it was revoked; null while live.")


class KeyCreated(KeyView):
    """A new API key with its secret."""

    key: str = Field(..., description="The secret, shown this once: send it as 'Authorization: Bearer <key>'.")


class KeyRequest(BaseModel):
    """A key to make for the caller's tenant."""

    role: Literal["agent", "content", "qa", "admin"] = Field(
        ..., description="What the key may do: agent (assist, threads, search), content (knowledge, brand voice, "
                         "macros, playbooks, search, analytics), qa (analytics, evals) or admin (everything, keys "
                         "and the audit log included).")
    name: str = Field("", max_length=200, description="A label, e.g. the console or person it is for; at most "
                                                      "200 characters; default empty.")

    model_config = {"json_schema_extra": {"examples": [{"role": "agent", "name": "zendesk console"}]}}


class KeyList(BaseModel):
    """The tenant's API keys."""

    keys: list[KeyView] = Field(..., description="The tenant's keys, oldest first.")



class KeyIdentity(BaseModel):
    """The calling key: its tenant and role, without its secret."""

    key_id: str = Field(..., description="The key id.")
    tenant: str = Field(..., description="The tenant the key belongs to.")
    role: str = Field(..., description="agent, content, qa or admin.")
    permissions: list[str] = Field(..., description="What the role may do: assist, search, content, analytics, "
                                                    "evals, jobs, admin.")
