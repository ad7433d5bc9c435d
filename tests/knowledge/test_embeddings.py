"""The local model on onnxruntime gives sentence-transformers' vectors, exported once per cache folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from copilot.errors import InvalidInput
from knowledge.embeddings import LocalEmbedder

TEXTS = ["I was charged twice for my bill", "my phone was stolen yesterday, what do I do?",
         "roaming " * 400,  # past the model's 256 tokens: truncated the same way
         "", "ok", "Ça coûte combien ? 😀"]


@pytest.fixture(scope="module")
def torch_vectors() -> np.ndarray:
    return LocalEmbedder(backend="torch").embed_documents(TEXTS)


def test_onnx_backend_gives_the_vectors_of_sentence_transformers(tmp_path: Path, torch_vectors: np.ndarray) -> None:
    onnx = LocalEmbedder(cache_dir=tmp_path, batch_size=4)  # two batches, each padded to its own longest text

    assert onnx.backend == "onnx" and onnx.dimension == 384
    vectors = onnx.embed_documents(TEXTS)
    assert vectors.shape == torch_vectors.shape
    assert float(np.abs(vectors - torch_vectors).max()) < 1e-5
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.allclose(onnx.embed_query(TEXTS[1]), torch_vectors[1], atol=1e-5)


def test_onnx_export_is_made_once_and_reused(tmp_path: Path) -> None:
    LocalEmbedder(cache_dir=tmp_path)
    [exported] = list(tmp_path.glob("*.onnx"))
    made = exported.stat().st_mtime_ns

    again = LocalEmbedder(cache_dir=tmp_path)

    assert again.backend == "onnx" and list(tmp_path.glob("*.onnx")) == [exported]
    assert exported.stat().st_mtime_ns == made
    assert not list(tmp_path.glob("*.part"))  # no half-written export left behind


def test_unusable_cache_falls_back_to_sentence_transformers(tmp_path: Path, torch_vectors: np.ndarray) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the cache folder should be", encoding="utf-8")

    embedder = LocalEmbedder(cache_dir=blocked)

    assert embedder.backend == "torch"
    assert np.allclose(embedder.embed_documents(TEXTS[:2]), torch_vectors[:2], atol=1e-6)


def test_missing_model_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="model folder not found"):
        LocalEmbedder(str(tmp_path / "nowhere"))
