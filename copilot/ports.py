"""The interfaces (Protocols) the engines need; adapters in ``knowledge`` and ``api`` implement them."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

Vector = npt.NDArray[np.float32]
Matrix = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Passage:
    """A retrieved piece of a tenant's knowledge, with where it came from."""

    chunk_id: str
    document_id: str
    title: str
    section: str
    text: str
    score: float
    source: str
    kind: str
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RetrievalQuery:
    """What to look for: the latest customer turn, the earlier turns (newest first) as context, and the
    topic: the thread's opening exchange, which usually says what the whole thread is about."""

    text: str
    context: Sequence[str] = ()
    topic: str = ""

    @classmethod
    def plain(cls, text: str) -> RetrievalQuery:
        return cls(text=text)


class Embedder(Protocol):
    """Turns texts into unit-length vectors."""

    @property
    def name(self) -> str: ...

    @property
    def dimension(self) -> int: ...

    def embed_documents(self, texts: Sequence[str]) -> Matrix: ...

    def embed_query(self, text: str) -> Vector: ...


class Retriever(Protocol):
    """Finds the passages of one tenant's knowledge that answer a query, best first."""

    def search(
        self,
        tenant: str,
        query: RetrievalQuery | str,
        k: int = 5,
        *,
        kinds: Sequence[str] | None = None,
        tags: Sequence[str] | None = None,
        locale: str | None = None,
    ) -> list[Passage]: ...


@dataclass(frozen=True)
class ChatMessage:
    """One message of a chat-completion request: role is system, user or assistant."""

    role: str
    content: str


@dataclass(frozen=True)
class ChatResult:
    """What a chat model answered, with the token counts the endpoint reported (0 when it did not)."""

    text: str
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    attempts: int = 1


class ChatModel(Protocol):
    """An OpenAI-compatible chat model. Raises ``copilot.errors.LLMError`` subclasses on failure."""

    @property
    def model(self) -> str: ...

    def complete(self, messages: Sequence[ChatMessage], *, json_mode: bool = False,
                 max_tokens: int | None = None) -> ChatResult: ...

    def stream(self, messages: Sequence[ChatMessage], *, json_mode: bool = False,
               max_tokens: int | None = None) -> Iterator[str]: ...
