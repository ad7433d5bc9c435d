"""Prompt-injection cues in retrieved passages: text written to steer a model instead of to inform a customer.

A passage that carries one is never put in a prompt nor quoted in a suggestion; the engines report it so
content owners can fix the document. The cues are the patterns of the OWASP LLM Top 10 (2025, LLM01) and
of published injection corpora: orders to ignore or reveal instructions, role changes, delimiter tricks.
"""

from __future__ import annotations

import re

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
