"""The interfaces (Protocols) the engines need; adapters in ``knowledge`` and ``api`` implement them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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
