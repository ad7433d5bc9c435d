"""Reply suggestions: the response contract both engines share, and the grounded engine.

The grounded engine (no LLM, deterministic) answers from the tenant's own words: its macros, with their
placeholders filled from the thread and the customer record, and the sentences of its knowledge passages
that answer the latest customer turn. Each candidate gets a confidence, a calibrated probability that the
passage it stands on is the right one (``Calibration``); below the tenant's threshold nothing is offered
but a clarifying question from the voice guide. Every draft, whichever engine wrote it, then goes through
the same finishing: brand voice (greeting, name, sign-off, banned phrases, promises), channel format.
"""

from __future__ import annotations

import math
import re
import string
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, Field

from copilot.channels import format_for_channel
from copilot.conversation import Role, Thread, retrieval_query
from copilot.errors import InvalidInput
from copilot.extract import content_words, extract_answer
from copilot.facts import extract_facts, region_of
from copilot.injection import injection_cues
from copilot.labelled_threads import LabelledThread
from copilot.macros import Macro
from copilot.playbooks import Playbook
from copilot.ports import Passage, RetrievalQuery, Retriever
from copilot.voice import BrandVoice, VoiceChecker

Source = Literal["macro", "knowledge", "llm", "clarify"]
KNOWLEDGE_KINDS = ("article", "faq")


# --- the contract ---------------------------------------------------------------------------------


class Citation(BaseModel):
    """The passage of the tenant's knowledge a suggestion stands on."""

    chunk_id: str = Field(..., description="The indexed chunk the passage comes from.")
    document_id: str = Field(..., description="The document, as content owners named it at ingestion.")
    title: str = Field(..., description="The document's title.")
    section: str = Field("", description="The heading path of the section inside the document.")
    passage: str = Field(..., description="The text the suggestion used: the answering sentences, or the macro.")


class Check(BaseModel):
    """One of the checks every draft goes through, and what it changed."""

    name: Literal["voice", "channel", "grounding"] = Field(..., description="Which check ran.")
    passed: bool = Field(..., description="False when a violation is left that could not be fixed mechanically.")
    changes: list[str] = Field(default_factory=list, description="What the check changed in the draft.")
    violations: list[str] = Field(default_factory=list, description="What is still wrong, for the agent to fix.")


class Suggestion(BaseModel):
    """A reply the agent may send, edit or reject; never sent by itself."""

    id: str = Field(default_factory=lambda: f"sug_{uuid.uuid4().hex[:16]}", description="For feedback.")
    text: str = Field(..., description="The whole reply, in the brand's voice.")
    messages: list[str] = Field(..., description="The reply as the channel carries it (split where needed).")
    source: Source = Field(..., description="macro, knowledge, llm, or clarify (a question, no answer found).")
    confidence: float = Field(..., ge=0, le=1, description="Calibrated probability that the grounding is right.")
    citations: list[Citation] = Field(default_factory=list, description="The passages the reply stands on.")
    checks: list[Check] = Field(default_factory=list, description="Voice, channel and grounding checks.")
    sms_segments: int | None = Field(None, description="SMS segments the reply costs (SMS threads only).")
    macro_id: str | None = Field(None, description="The macro used, when source is macro.")


class SuggestionSet(BaseModel):
    """What a console gets for one thread event."""

    thread_id: str | None = Field(None, description="The thread the suggestions are for.")
    engine: Literal["grounded", "llm"] = Field(..., description="The engine that answered.")
    model: str | None = Field(None, description="The LLM that drafted, when the llm engine answered.")
    answered: bool = Field(..., description="False when nothing in the knowledge fits well enough to answer.")
    suggestions: list[Suggestion] = Field(default_factory=list, description="Best first.")
    note: str | None = Field(None, description="Why nothing was offered, or what the engine fell back from.")
    fallback_from: str | None = Field(None, description="Set to 'llm' when the LLM failed and grounded answered.")
    fallback_reason: str | None = Field(None, description="Why it failed: llm-timeout, llm-rate-limited, "
                                                          "llm-bad-output, llm-error or service-unavailable.")
    query: str = Field("", description="The customer turn the suggestions answer.")
    intent: str | None = Field(None, description="The intent of that turn by the tenant's intent classifier, "
                                                 "when the tenant has labelled examples.")
    flagged_documents: list[str] = Field(default_factory=list,
                                         description="Documents left out because they read as prompt injection.")


# --- tenant content the engines need ----------------------------------------------------------------


@dataclass(frozen=True)
class TenantProfile:
    """A tenant's voice guide, macros, playbooks, labelled intent examples and labelled past threads, read
    from its knowledge."""

    voice: BrandVoice | None = None
    macros: Sequence[Macro] = ()
    playbooks: Sequence[Playbook] = ()
    intent_examples: Sequence[tuple[str, str]] = ()  # (customer message, intent)
    action_history: Sequence[LabelledThread] = ()  # past threads whose agent messages name the action taken

    def macro(self, macro_id: str) -> Macro | None:
        return next((m for m in self.macros if m.id == macro_id), None)


@dataclass(frozen=True)
class Calibration:
    """Confidence of a candidate: a logistic function of its dense similarity to the thread and its lead
    over the best other candidate, fitted on doc2dial by ``copilot eval calibrate`` (README, "Confidence":
    700 questions asked of their own domain's documents and of another domain's). The threshold maximises
    F1 of offering the top candidate: 72% of answerable questions get an offer, 62% of offers stand on the
    right passage, and 7% of unanswerable questions still get one (100% without a threshold)."""

    intercept: float = -4.301
    dense: float = 5.964
    margin: float = -0.375
    threshold: float = 0.23

    def confidence(self, dense: float, margin: float) -> float:
        z = self.intercept + self.dense * dense + self.margin * margin
        return 1.0 / (1.0 + math.exp(-z))


# --- finishing: voice and channel -----------------------------------------------------------------------

_VERIFIED = re.compile(r"\b(you're verified|you are verified|thanks for confirming|identity (?:is |has been )?"
                       r"(?:confirmed|verified)|verification (?:is )?(?:complete|done|passed))\b", re.IGNORECASE)
_CLOSING = re.compile(r"\b(thanks|thank you|cheers|that's all|that is all|bye|goodbye|all sorted|perfect)\b",
                      re.IGNORECASE)


def is_verified(thread: Thread) -> bool:
    """Whether an agent or system message says the customer's identity has been checked."""
    return any(_VERIFIED.search(m.text) for m in thread.messages if m.role in (Role.AGENT, Role.SYSTEM))


def _closing(thread: Thread) -> bool:
    last = next((m for m in reversed(thread.messages) if m.role == Role.CUSTOMER), None)
    return bool(last and _CLOSING.search(last.text) and len(last.text.split()) <= 12)


@dataclass(frozen=True)
class Finished:
    text: str
    messages: list[str]
    checks: list[Check]
    sms_segments: int | None


class Finisher:
    """Puts a draft body into the brand's voice and the channel's format, recording every change."""

    def __init__(self, voice: BrandVoice | None) -> None:
        self.checker = VoiceChecker(voice) if voice is not None else None  # its patterns compile once

    def finish(self, body: str, thread: Thread) -> Finished:
        """Greeting when the agent has not written yet, sign-off when the customer closes."""
        channel = thread.channel.value
        checks: list[Check] = []
        text = body.strip()
        checker = self.checker
        if checker is not None:
            parts = []
            if not any(m.role == Role.AGENT for m in thread.messages):
                parts.append(checker.greeting(channel, thread.customer.name))
            parts.append(text)
            if _closing(thread) and checker.sign_off(channel):
                parts.append(checker.sign_off(channel))
            joined = "\n".join(p for p in parts if p)
            applied = checker.apply(joined, channel, verified=is_verified(thread))
            text = applied.text
            checks.append(Check(name="voice", passed=not applied.remaining, changes=list(applied.changes),
                                violations=[v.message for v in applied.remaining]))
        formatted = format_for_channel(text, channel)
        checks.append(Check(name="channel", passed=True, changes=list(formatted.changes)))
        segments = formatted.sms.segments if formatted.sms else None
        return Finished("\n".join(formatted.messages), list(formatted.messages), checks, segments)


# --- macros ------------------------------------------------------------------------------------------------

# the kinds of thread facts a macro placeholder of the same name takes
_FACT_PLACEHOLDERS = frozenset({"order_id", "amount", "email", "phone"})


def placeholder_values(thread: Thread) -> dict[str, str]:
    """What a macro's placeholders can be filled with: the customer record, then facts of the thread
    (the latest mention wins: customers correct themselves)."""
    values: dict[str, str] = {}
    customer = thread.customer
    if customer.name:
        values["customer_name"] = customer.name.split()[0]
    for key, value in (customer.model_extra or {}).items():
        if isinstance(value, str | int | float) and str(value).strip():
            values[key] = str(value)
    region = region_of(customer.locale)
    for message in thread.messages:
        for fact in extract_facts(message.text, region):
            if fact.kind in _FACT_PLACEHOLDERS:
                values[fact.kind] = fact.text
    if customer.id:
        values.setdefault("customer_id", customer.id)
    return values


def fill_macro(macro: Macro, values: Mapping[str, str]) -> str | None:
    """The macro's text with every placeholder filled, or None when one cannot be."""
    if any(name not in values for name in macro.placeholders):
        return None
    return string.Formatter().vformat(macro.text, (), dict(values))


# --- the grounded engine ------------------------------------------------------------------------------------


@dataclass
class _Candidate:
    body: str
    source: Source
    confidence: float
    citation: Citation
    macro_id: str | None = None
    words: set[str] = field(default_factory=set)


def dense_margins(passages: Sequence[Passage]) -> list[float]:
    """Each passage's dense similarity minus the best of the others: how clearly it leads."""
    dense = [float(p.metadata.get("dense", 0.0)) for p in passages]
    return [d - max((o for j, o in enumerate(dense) if j != i), default=0.0) for i, d in enumerate(dense)]


class GroundedEngine:
    """Suggestions from the tenant's macros and knowledge, with no LLM."""

    def __init__(self, retriever: Retriever, calibration: Calibration | None = None) -> None:
        self.retriever = retriever
        self.calibration = calibration or Calibration()

    def candidates(self, tenant: str, thread: Thread, profile: TenantProfile, query: RetrievalQuery,
                   k: int = 6, flagged: list[str] | None = None) -> list[_Candidate]:
        """Every candidate reply, best first, before the threshold; the documents of passages left out as
        prompt injection are added to ``flagged`` when given."""
        found: list[_Candidate] = []
        passages = self.retriever.search(tenant, query, k, kinds=KNOWLEDGE_KINDS)
        for passage, margin in zip(passages, dense_margins(passages), strict=True):
            if injection_cues(passage.text):
                if flagged is not None and passage.document_id not in flagged:
                    flagged.append(passage.document_id)
                continue  # written to steer a model: never quoted to a customer
            answer = extract_answer(passage.text, query, skip_questions=True)
            confidence = self.calibration.confidence(float(passage.metadata.get("dense", 0.0)), margin)
            found.append(_Candidate(answer, "knowledge", confidence, _citation(passage, answer)))
        if profile.macros:
            values = placeholder_values(thread)
            macro_passages = self.retriever.search(tenant, query, 4, kinds=("macro",))
            for passage, margin in zip(macro_passages, dense_margins(macro_passages), strict=True):
                macro = profile.macro(str(passage.metadata.get("macro_id", "")))
                if macro is None or not _fits_channel(macro, thread.channel.value):
                    continue
                body = fill_macro(macro, values)
                if body is None:
                    continue  # a placeholder the thread cannot fill: never offer a half-made reply
                confidence = self.calibration.confidence(float(passage.metadata.get("dense", 0.0)), margin)
                found.append(_Candidate(body, "macro", confidence, _citation(passage, macro.text), macro.id))
        for candidate in found:
            candidate.words = content_words(candidate.body)
        return sorted(found, key=lambda c: -c.confidence)

    def suggest(self, tenant: str, thread: Thread, profile: TenantProfile, n: int = 3) -> SuggestionSet:
        if not 1 <= n <= 10:
            raise InvalidInput("n must be between 1 and 10")
        query = require_question(thread)
        chosen: list[_Candidate] = []
        flagged: list[str] = []  # reported, like the llm engine does, so content owners can fix them
        ranked = self.candidates(tenant, thread, profile, query, flagged=flagged)
        for candidate in ranked:
            if candidate.confidence < self.calibration.threshold:
                break
            same = next((i for i, other in enumerate(chosen) if _overlap(candidate.words, other.words) > 0.5), None)
            if same is not None:
                # the macro and the article often say the same thing: offer it once, as the macro, which
                # is written as a reply
                if candidate.source == "macro" and chosen[same].source == "knowledge":
                    chosen[same] = candidate
                continue
            if len(chosen) < n:
                chosen.append(candidate)
        finisher = Finisher(profile.voice)
        if not chosen:
            best = ranked[0].confidence if ranked else 0.0
            note = (f"nothing in the knowledge fits well enough (best confidence {best:.2f}, threshold "
                    f"{self.calibration.threshold:.2f})")
            suggestions = []
            question = clarifying_question(profile.voice, query.text)
            if question:
                done = finisher.finish(question, thread)
                suggestions.append(Suggestion(text=done.text, messages=done.messages, source="clarify",
                                              confidence=0.0, checks=done.checks, sms_segments=done.sms_segments))
            return SuggestionSet(thread_id=thread.id, engine="grounded", answered=False, note=note,
                                 suggestions=suggestions, query=query.text, flagged_documents=flagged)
        suggestions = []
        for candidate in chosen:
            done = finisher.finish(candidate.body, thread)
            suggestions.append(Suggestion(
                text=done.text, messages=done.messages, source=candidate.source,
                confidence=round(candidate.confidence, 3), citations=[candidate.citation], checks=done.checks,
                sms_segments=done.sms_segments, macro_id=candidate.macro_id,
            ))
        return SuggestionSet(thread_id=thread.id, engine="grounded", answered=True, suggestions=suggestions,
                             query=query.text, flagged_documents=flagged)


def require_question(thread: Thread) -> RetrievalQuery:
    """The retrieval query of the thread; a thread with no customer message has nothing to answer."""
    if not any(m.role == Role.CUSTOMER and m.text.strip() for m in thread.messages):
        raise InvalidInput("the thread has no customer message to answer")
    return retrieval_query(thread)


def clarifying_question(voice: BrandVoice | None, text: str) -> str | None:
    """The voice guide's clarifying question that shares most words with what the customer said."""
    if voice is None or not voice.clarifying_questions:
        return None
    asked = content_words(text)
    return max(voice.clarifying_questions, key=lambda q: len(content_words(q) & asked))


def _citation(passage: Passage, used: str) -> Citation:
    return Citation(chunk_id=passage.chunk_id, document_id=passage.document_id, title=passage.title,
                    section=passage.section, passage=used)


def _fits_channel(macro: Macro, channel: str) -> bool:
    return "all" in macro.channels or channel in macro.channels


def _overlap(a: set[str], b: set[str]) -> float:
    return len(a & b) / min(len(a), len(b)) if a and b else 0.0
