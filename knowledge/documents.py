"""What ingestion works with: source documents split into sections, and the chunks that are indexed."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Kind(StrEnum):
    ARTICLE = "article"
    FAQ = "faq"
    MACRO = "macro"
    PLAYBOOK = "playbook"
    BRAND_VOICE = "brand_voice"
    INTENTS = "intents"
    ACTION_HISTORY = "action_history"  # labelled past threads: what agents did next


# The kinds whose chunks go into a vector collection and the lexical index.
SEARCHABLE_KINDS = (Kind.ARTICLE, Kind.FAQ, Kind.MACRO, Kind.PLAYBOOK)
# What a search looks at when the caller names no kind.
DEFAULT_SEARCH_KINDS = (Kind.ARTICLE, Kind.FAQ)


@dataclass
class Section:
    """A piece of a document under one heading path; ``unit`` marks text that must stay one chunk."""

    path: tuple[str, ...]
    text: str
    unit: bool = False
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class SourceDocument:
    document_id: str
    title: str
    kind: Kind
    source: str
    sections: list[Section]
    locale: str = "en"
    tags: list[str] = field(default_factory=list)
    payload: dict[str, Any] | None = None

    @property
    def content_hash(self) -> str:
        """A hash of everything that ends up indexed: equal hashes mean nothing to re-embed."""
        digest = hashlib.sha256()
        header = {"title": self.title, "kind": self.kind.value, "locale": self.locale, "tags": self.tags}
        digest.update(json.dumps(header, sort_keys=True).encode())
        for section in self.sections:
            digest.update(json.dumps([list(section.path), section.text, section.metadata]).encode())
        if self.payload is not None:
            digest.update(json.dumps(self.payload, sort_keys=True, default=str).encode())
        return digest.hexdigest()


@dataclass
class Chunk:
    chunk_id: str
    document_id: str
    ordinal: int
    kind: Kind
    title: str
    section: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def embed_text(self) -> str:
        return embed_text(self.title, self.section, self.text)


def embed_text(title: str, section: str, text: str) -> str:
    """The text that is embedded: title and heading path first, so they count for the match."""
    head = title if not section else f"{title} > {section}"
    return f"{head}\n{text}"
