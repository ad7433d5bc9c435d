"""The brand-voice guide of a tenant (how replies should sound), and the checks a draft goes through."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal

import pyphen
from pydantic import BaseModel, ConfigDict, Field

from copilot.extract import sentence_spans, sentences

EmojiPolicy = Literal["none", "sparing", "allowed"]


class BannedPhrase(BaseModel):
    """A phrase the brand never writes, and what replaces it."""

    phrase: str = Field(..., min_length=1, description="The phrase, matched as whole words, ignoring case.")
    replacement: str = Field("", description="What replaces it in a draft (its first letter capitalised where "
                                             "the phrase's was); empty: the phrase is removed.")


class PreferredTerm(BaseModel):
    """The brand's word for something, and the words it replaces."""

    use: str = Field(..., description="The term to use, e.g. account PIN.")
    instead_of: list[str] = Field(default_factory=list, description="Words replaced by it in drafts, matched as "
                                                                    "whole words, ignoring case.")


class BrandVoice(BaseModel):
    """A tenant's voice: tone, greetings, sign-offs, banned phrases, emoji policy per channel."""

    model_config = ConfigDict(extra="ignore", json_schema_extra={"examples": [{
        "name": "Brightwave Mobile", "tone": ["warm", "clear", "concise"],
        "greeting": {"default": "Hi {customer_name},", "email": "Hello {customer_name},"},
        "greeting_without_name": "Hi there,",
        "sign_off": {"default": "Thanks for being with Brightwave.", "sms": "- Brightwave"},
        "use_customer_name": "first_name",
        "banned_phrases": [{"phrase": "unfortunately", "replacement": "I'm sorry, but"},
                           {"phrase": "please be advised", "replacement": ""}],
        "never_promise": ["guarantee", "right away"],
        "verification_required_for": ["refund", "SIM swap"],
        "emoji": {"default": "none", "whatsapp": "sparing"},
        "reading_level_max_grade": 8,
        "preferred_terms": [{"use": "account PIN", "instead_of": ["passcode", "security code"]}],
        "clarifying_questions": ["Which number or line is this about? The last 4 digits are enough."],
        "empathy_openers": ["I'm sorry about this."],
        "guide": "Lead with the answer. One idea per sentence."}]})

    name: str = Field(..., min_length=1, description="The brand's name, as the LLM prompt gives it.")
    tone: list[str] = Field(default_factory=list, description="Adjectives for how replies sound, e.g. warm, "
                                                              "concise; given to the LLM.")
    greeting: dict[str, str] = Field(default_factory=lambda: {"default": "Hi {customer_name},"}, description=(
        "The greeting per channel, with a 'default' for the others; {customer_name} is replaced by the name. "
        "Added to a suggestion when no agent has written in the thread yet. Default {'default': "
        "'Hi {customer_name},'}."))
    greeting_without_name: str = Field("Hi there,", description="The greeting when the name is unknown or "
                                                                "use_customer_name is never.")
    sign_off: dict[str, str] = Field(default_factory=dict, description=(
        "The sign-off per channel, with a 'default' for the others; added when the customer is closing the "
        "conversation (e.g. 'thanks, that's all'). Default: none."))
    use_customer_name: Literal["first_name", "full_name", "never"] = Field(
        "first_name", description="How greetings name the customer: first_name (default), full_name or never.")
    banned_phrases: list[BannedPhrase] = Field(default_factory=list, description="Phrases replaced in every "
                                                                                 "draft.")
    never_promise: list[str] = Field(default_factory=list, description=(
        "Words and phrases that promise too much, e.g. guarantee or right away: flagged in drafts (never fixed "
        "mechanically), matched as whole words, ignoring case."))
    verification_required_for: list[str] = Field(default_factory=list, description=(
        "Account actions a reply may take or promise only once the customer's identity is verified, e.g. "
        "refund or SIM swap: flagged while it is not (for suggestions: until an agent or system message of the "
        "thread says so) where the sentence commits to it (I or we will, can, have, let me, I processed, you'll "
        "get), says it is done or coming (a refund has been issued) or gives the state of the customer's own "
        "(your refund is ...); a sentence that only explains the policy (\"your service "
        "ends 30 days after you ask to cancel\") is not flagged."))
    emoji: dict[str, EmojiPolicy] = Field(
        default_factory=lambda: {"default": "none"},  # type: ignore[arg-type]
        description="The emoji policy per channel, with a 'default' for the others: none (emoji removed), "
                    "sparing (one kept) or allowed. Default {'default': 'none'}.")
    reading_level_max_grade: float = Field(8, gt=0, le=20, description=(
        "The highest Flesch-Kincaid grade a draft may read at, above 0 and at most 20; default 8. Harder drafts "
        "are flagged (not fixed)."))
    preferred_terms: list[PreferredTerm] = Field(default_factory=list, description="The brand's terms, replaced "
                                                                                   "in every draft.")
    clarifying_questions: list[str] = Field(default_factory=list, description=(
        "Questions to ask when nothing in the knowledge answers: the one sharing most words with the "
        "customer's turn is offered as a clarify suggestion."))
    empathy_openers: list[str] = Field(default_factory=list, description=(
        "Sentences that acknowledge how the customer feels, e.g. \"I'm sorry about this.\", for agents and "
        "writers; the engines do not insert them."))
    guide: str = Field("", description="Free text of the guide (a Markdown body), for the LLM prompt.")


# --- checking and fixing drafts ---------------------------------------------------------------

_EMOJI = re.compile(
    "[\U0001f300-\U0001faff\U00002600-\U000027bf\U0001f000-\U0001f2ff\U0001f900-\U0001f9ff\u2b50\u2b55\u203c\u2049]"
    "\ufe0f?"
)
_WORDS = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)?")


@dataclass(frozen=True)
class Violation:
    """One place where a draft breaks the voice guide; ``fix`` is set when it can be fixed mechanically."""

    rule: str       # banned_phrase | preferred_term | never_promise | verification | emoji | reading_level
    start: int
    end: int
    text: str
    message: str
    fix: str | None = None


@dataclass(frozen=True)
class VoiceResult:
    text: str
    changes: list[str] = field(default_factory=list)
    remaining: list[Violation] = field(default_factory=list)


# A sentence that commits the agent or the brand to an action ("I can order a replacement SIM", "we'll refund
# it", "let me cancel that", "I processed a refund", "I guarantee a refund", "you'll get a refund", "our team
# will credit it"), as opposed to one that explains a policy ("your service ends 30 days after you ask to cancel").
_COMMITMENT = (r"\b(?:(?:I|we)(?:['’](?:ll|ve|d)\b|\s+(?:will|shall|have|can|could|would|just|already|now|"
               r"went|promise|guarantee|assure|\w+ed)\b|(?:['’](?:m|re)|\s+am|\s+are)\s+(?:\w+ing|able|happy|"
               r"glad)\b)|let\s+me\b|let['’]s\b|you(?:['’]ll|\s+will)\s+(?:get|receive|see|have)\b|"
               r"(?:our\s+\w+|{brand})(?:['’]ll|\s+(?:will|can|has|have))\b)")
# the action said to be done or coming ("a refund has been issued", "the refund will show"), or the state of
# the customer's own ("your £5 credit has been applied", "your refund's on its way")
_TOPIC_STATE = (r"{topic}(?:(?:\s+\S+){{0,3}}?\s+(?:has\s+been|have\s+been|is\s+being|is\s+on\s+its\s+way|"
                r"will)\b|['’]s\s+on\s+its\s+way\b)|"
                r"\byour\s+(?:\S+\s+){{0,3}}?{topic}(?:(?:\s+\S+){{0,3}}?\s+(?:is|are|was|were|has|have|will)\b|"
                r"['’]s\b)")
_FORMS = r"(?:s|es|d|ed|ing|led|ling|lation|ation)?"  # cancel -> cancelled, refund -> refunded, credit -> credits


def _phrase_pattern(phrase: str, forms: str = "") -> re.Pattern[str]:
    """``phrase`` as whole words, ignoring case; ``forms`` (a regex) may follow its last word."""
    left = r"\b" if phrase[:1].isalnum() else ""
    right = forms + r"\b" if phrase[-1:].isalnum() else ""
    return re.compile(f"{left}{re.escape(phrase)}{right}", re.IGNORECASE)


def reading_grade(text: str) -> float:
    """Flesch-Kincaid grade level, with syllables from pyphen's English hyphenation dictionary."""
    words = _WORDS.findall(text)
    counted = [s for s in sentences(text) if _WORDS.search(s)]
    if not words or not counted:
        return 0.0
    syllables = sum(len(_hyphenator().positions(w.lower())) + 1 for w in words)
    return 0.39 * len(words) / len(counted) + 11.8 * syllables / len(words) - 15.59


@lru_cache(maxsize=1)
def _hyphenator() -> pyphen.Pyphen:
    return pyphen.Pyphen(lang="en_US")


def _match_case(original: str, replacement: str) -> str:
    if replacement and original[:1].isupper():
        return replacement[:1].upper() + replacement[1:]
    return replacement


class VoiceChecker:
    """Checks a draft against a ``BrandVoice`` and fixes what can be fixed mechanically."""

    def __init__(self, voice: BrandVoice) -> None:
        self.voice = voice
        self._replacements = [(_phrase_pattern(b.phrase), b.replacement, "banned_phrase",
                               f"banned phrase {b.phrase!r}") for b in voice.banned_phrases]
        self._replacements += [(_phrase_pattern(old), term.use, "preferred_term", f"say {term.use!r}, not {old!r}")
                               for term in voice.preferred_terms for old in term.instead_of]
        self._promises = [_phrase_pattern(p) for p in voice.never_promise]
        topics = [_phrase_pattern(p, _FORMS) for p in voice.verification_required_for]  # cancel: cancelled too
        self._verification = [(t, re.compile(_TOPIC_STATE.format(topic=t.pattern), re.IGNORECASE)) for t in topics]
        brand = re.escape(voice.name.split()[0]) if voice.name.split() else "(?!)"
        self._commitment = re.compile(_COMMITMENT.format(brand=brand), re.IGNORECASE)

    def _unverified_actions(self, text: str) -> list[Violation]:
        """The verification topics of the sentences that take, promise or report the action for this customer."""
        found: list[Violation] = []
        for start, end in sentence_spans(text):
            sentence = text[start:end]
            committed = bool(self._commitment.search(sentence))
            for pattern, stated in self._verification:
                states = [] if committed else [(s.start(), s.end()) for s in stated.finditer(sentence)]
                for m in pattern.finditer(sentence):
                    if committed or any(a <= m.start() and m.end() <= b for a, b in states):
                        found.append(Violation("verification", start + m.start(), start + m.end(), m.group(0),
                                               f"{m.group(0)!r} needs the customer's identity verified first"))
        return found

    def emoji_policy(self, channel: str) -> EmojiPolicy:
        return self.voice.emoji.get(channel, self.voice.emoji.get("default", "none"))

    def check(self, text: str, channel: str = "default", *, verified: bool = True) -> list[Violation]:
        """Every violation with its span, in order of position."""
        found: list[Violation] = []
        for pattern, replacement, rule, message in self._replacements:
            found += [Violation(rule, m.start(), m.end(), m.group(0), message, _match_case(m.group(0), replacement))
                      for m in pattern.finditer(text)]
        for pattern in self._promises:
            found += [Violation("never_promise", m.start(), m.end(), m.group(0),
                                f"never promise {m.group(0)!r}: say what will happen and when, without a guarantee")
                      for m in pattern.finditer(text)]
        if not verified:
            found += self._unverified_actions(text)
        emojis = list(_EMOJI.finditer(text))
        policy = self.emoji_policy(channel)
        allowed = {"none": 0, "sparing": 1, "allowed": len(emojis)}[policy]
        found += [Violation("emoji", m.start(), m.end(), m.group(0),
                            f"emoji policy on {channel} is {policy!r}", "") for m in emojis[allowed:]]
        grade = reading_grade(text)
        if grade > self.voice.reading_level_max_grade:
            found.append(Violation("reading_level", 0, len(text), "",
                                   f"reading grade {grade:.1f} is above the target "
                                   f"{self.voice.reading_level_max_grade:g}: use shorter sentences and words"))
        return sorted(found, key=lambda v: (v.start, v.end))

    def apply(self, text: str, channel: str = "default", *, verified: bool = True) -> VoiceResult:
        """Replace banned phrases and off-brand terms, drop emoji the channel does not allow."""
        changes: list[str] = []
        fixable = [v for v in self.check(text, channel, verified=verified) if v.fix is not None]
        result, last = [], 0
        for violation in fixable:
            if violation.start < last:
                continue  # overlaps a fix already made
            result.append(text[last : violation.start])
            result.append(violation.fix or "")
            changes.append(f"{violation.rule}: {violation.text!r} -> {violation.fix!r}")
            last = violation.end
        result.append(text[last:])
        fixed = re.sub(r"[ \t]{2,}", " ", "".join(result))
        fixed = re.sub(r" +([,.!?])", r"\1", fixed).strip()
        fixed = re.sub(r"(^|[.!?]\s+)([a-z])", lambda m: m.group(1) + m.group(2).upper(), fixed)
        return VoiceResult(fixed, changes, self.check(fixed, channel, verified=verified))

    def greeting(self, channel: str, customer_name: str | None) -> str:
        name = self._name(customer_name)
        if not name:
            return self.voice.greeting_without_name
        template = self.voice.greeting.get(channel, self.voice.greeting.get("default", "Hi {customer_name},"))
        return template.replace("{customer_name}", name)

    def sign_off(self, channel: str) -> str:
        return self.voice.sign_off.get(channel, self.voice.sign_off.get("default", ""))

    def _name(self, customer_name: str | None) -> str:
        if not customer_name or self.voice.use_customer_name == "never":
            return ""
        parts = customer_name.split()
        return parts[0] if self.voice.use_customer_name == "first_name" and parts else customer_name.strip()
