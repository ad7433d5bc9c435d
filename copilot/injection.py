"""Prompt-injection cues in retrieved passages: text written to steer a model instead of to inform a customer.

A passage that carries one is never put in a prompt nor quoted in a suggestion; the engines report it so
content owners can fix the document. The cues are the patterns of the OWASP LLM Top 10 (2025, LLM01) and
of published injection corpora: orders to ignore or reveal instructions, role changes, delimiter tricks.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

_CUES = [
    ("ignore_instructions", r"\b(ignore|disregard|forget|override)\b[^.\n]{0,40}\b(previous|prior|above|earlier|all|"
                            r"your|the)\b[^.\n]{0,20}\b(instructions?|rules|prompts?|guidelines|directions)\b"),
    ("reveal_prompt", r"\b(reveal|show|print|repeat|output|leak)\b[^.\n]{0,30}\b(system|hidden|secret|initial)\s+"
                      r"(prompt|instructions?|message)\b"),
    ("role_change", r"\byou are now\b|\bact as (?:an? )?(?:admin|administrator|developer|dan|system)\b|"
                    r"\b(?:admin|developer|god|jailbreak) mode\b"),
    ("fake_delimiter", r"<<\s*/?\s*(?:end|data|system)[-\w]*\s*>>|</?(?:system|assistant|instructions?)>|"
                       r"\[/?(?:INST|SYS)\]"),
    ("tell_the_customer", r"\b(tell|instruct|ask) the (customer|user) to (visit|click|go to|send|pay)\b"),
    # text addressed to the model itself ("Note to AI assistants: ...", "Assistant, new instructions: ...")
    ("addressed_to_model", r"\b(?:note|message|instructions?|reminder|memo)s?\s+(?:to|for)\s+(?:the\s+|any\s+|all\s+)?"
                           r"(?:ai|llm|(?:large\s+)?language\s+model|chat\s?bot|bot|assistant|model)s?\b|"
                           r"(?:^|[\n.!?]\s*)(?:ai|llm|chat\s?bot|assistant)s?\s*[,:]\s*"
                           r"(?:new|updated|important|please|you|always|never|ignore|from\s+now)\b"),
]
_PATTERNS = [(name, re.compile(pattern, re.IGNORECASE)) for name, pattern in _CUES]


def injection_cues(text: str) -> list[str]:
    """The names of the injection cues found in ``text`` (empty when it reads as plain content)."""
    return [name for name, pattern in _PATTERNS if pattern.search(text)]


# What a content owner is shown of a flagged document: enough to find each passage, never the whole text.
MAX_EXCERPTS = 3
EXCERPT_CHARS = 200
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")


def injection_excerpt(text: str, width: int = EXCERPT_CHARS) -> str:
    """At most ``width`` characters of ``text`` around its first injection cue, on one line, without control
    or bidirectional-override characters (a terminal or a page shows it as it is)."""
    flat = _one_line(text)
    if len(flat) <= width:
        return flat
    at = min((m.start() for _, pattern in _PATTERNS if (m := pattern.search(text))), default=0)
    begin = max(0, len(_one_line(text[:at])) - width // 4)
    end = min(len(flat), begin + width)
    begin = max(0, end - width)
    head, tail = ("…" if begin else ""), ("…" if end < len(flat) else "")
    return head + flat[begin + len(head) : end - len(tail)] + tail


def _one_line(text: str) -> str:
    return " ".join(_CONTROL.sub("", text).split())


def injection_flag(passages: Iterable[tuple[str, str]]) -> dict[str, Any] | None:
    """What to record of a document whose passages, given as (section, text), carry injection cues: every cue
    found, how many passages carry one, and an excerpt of the first few; None when none does.

    The shape is ``{"cues": [...], "passages": 2, "excerpts": [{"section": ..., "cues": [...], "text": ...}]}``,
    at most ``MAX_EXCERPTS`` excerpts of at most ``EXCERPT_CHARS`` characters each.
    """
    cues: dict[str, None] = {}
    excerpts: list[dict[str, Any]] = []
    count = 0
    for section, text in passages:
        found = injection_cues(text)
        if not found:
            continue
        count += 1
        cues.update(dict.fromkeys(found))
        if len(excerpts) < MAX_EXCERPTS:
            excerpts.append({"section": _one_line(section)[:EXCERPT_CHARS], "cues": found,
                             "text": injection_excerpt(text)})
    if not count:
        return None
    return {"cues": list(cues), "passages": count, "excerpts": excerpts}
