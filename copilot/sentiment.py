"""Sentiment and urgency of each customer turn: VADER's lexicon plus cues that a thread is urgent."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from copilot.conversation import Role, Thread, turns

_URGENCY_CUES: dict[str, re.Pattern[str]] = {
    "asks for speed": re.compile(r"\b(urgent(ly)?|asap|immediately|right now|straight away|as soon as possible)\b",
                                 re.I),
    "an emergency": re.compile(r"\b(emergenc(y|ies)|stranded|stuck abroad|hospital|can'?t call (anyone|999|911))\b",
                               re.I),
    "a deadline": re.compile(r"\b(today|tonight|by tomorrow|deadline|flight|before (noon|midnight|\d))\b", re.I),
    "has waited": re.compile(r"\b(still waiting|(second|third|fourth|\d+(st|nd|rd|th)) time|days? now|weeks? now|"
                             r"no one (has )?(replied|answered|got back))\b", re.I),
    "threatens to leave or complain": re.compile(
        r"\b(cancel (my|the) (contract|account|service)|leav(e|ing) (you|your (network|company))|complain(t)?|"
        r"ombudsman|lawyer|solicitor|trading standards)\b", re.I),
    "is shouting": re.compile(r"!{2,}|\?{2,}|\b[A-Z]{4,}\b"),
}


@dataclass(frozen=True)
class Mood:
    """How a customer turn reads: VADER compound sentiment in [-1, 1] and urgency in [0, 1] with its cues."""

    sentiment: float
    label: str  # negative | neutral | positive
    urgency: float
    cues: list[str] = field(default_factory=list)


@lru_cache(maxsize=1)
def _analyzer() -> SentimentIntensityAnalyzer:
    return SentimentIntensityAnalyzer()


def assess(text: str) -> Mood:
    compound = float(_analyzer().polarity_scores(text)["compound"])
    label = "negative" if compound <= -0.05 else "positive" if compound >= 0.05 else "neutral"
    cues = [name for name, pattern in _URGENCY_CUES.items() if pattern.search(text)]
    urgency = min(1.0, 0.3 * len(cues) + (0.2 if compound <= -0.5 else 0.0))
    return Mood(round(compound, 3), label, round(urgency, 2), cues)


def customer_moods(thread: Thread) -> list[Mood]:
    """One mood per customer turn, oldest first: the sentiment trend of the thread."""
    return [assess(turn.text) for turn in turns(thread) if turn.role == Role.CUSTOMER]
