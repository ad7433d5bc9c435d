"""Extraction of the sentences of a passage that answer the customer's question."""

from __future__ import annotations

import re
from collections.abc import Sequence

from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from copilot.ports import RetrievalQuery

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])|\n+")
_WORD = re.compile(r"[a-z0-9]+")


def sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text) if s and s.strip()]


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """The (start, end) offsets of ``sentences(text)`` in ``text``, without their surrounding spaces."""
    spans: list[tuple[int, int]] = []
    start = 0
    for gap in [*_SENTENCE_END.finditer(text), None]:
        end = gap.start() if gap is not None else len(text)
        piece = text[start:end]
        if piece.strip():
            lead = len(piece) - len(piece.lstrip())
            spans.append((start + lead, start + len(piece.rstrip())))
        if gap is not None:
            start = gap.end()
    return spans


def content_words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in ENGLISH_STOP_WORDS and len(w) > 1}


def _stem(word: str) -> str:
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def extract_answer(passage: str, query: RetrievalQuery, *, max_sentences: int = 2,
                   context_weight: float = 0.3, skip_questions: bool = False) -> str:
    """The contiguous sentences of ``passage`` that best match the query (latest turn over context).

    With ``skip_questions``, sentences that ask (an FAQ's question, a heading such as "Why is my order on
    hold?") are not candidates: they echo the customer instead of answering.
    """
    parts = sentences(passage)
    if skip_questions:
        parts = [p for p in parts if not p.rstrip().endswith("?")] or parts
    if len(parts) <= 1:
        return passage.strip()
    asked = {_stem(w) for w in content_words(query.text)}
    around = {_stem(w) for w in content_words(" ".join(query.context))} - asked

    def score(span: Sequence[str]) -> float:
        words = {_stem(w) for w in content_words(" ".join(span))}
        if not words:
            return 0.0
        hits = len(words & asked) + context_weight * len(words & around)
        return hits / (len(words) ** 0.5)

    best = max(
        ((parts[i : i + n]) for n in range(1, max_sentences + 1) for i in range(len(parts) - n + 1)),
        key=score,
    )
    return " ".join(best)
