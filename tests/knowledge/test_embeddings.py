"""The local model on onnxruntime gives sentence-transformers' vectors, exported once per cache folder."""

from __future__ import annotations

import json
import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from copilot.errors import InvalidInput
from copilot.settings import Settings
from knowledge.embeddings import (
    LIVE_BATCH,
    LocalEmbedder,
    _quantised_suffix,
    _QueryCache,
    embedder_from_settings,
    packaged_model_path,
)
from tests.conftest import MODEL_CACHE

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
    full = LocalEmbedder(cache_dir=tmp_path, query_precision="fp32")
    assert full.query_precision == "fp32"
    assert np.allclose(full.embed_query(TEXTS[1]), torch_vectors[1], atol=1e-5)


def test_queries_run_on_the_quantised_copy_close_to_the_full_model(tmp_path: Path,
                                                                    torch_vectors: np.ndarray) -> None:
    embedder = LocalEmbedder(cache_dir=tmp_path)
    assert embedder.query_precision == "int8"

    documents = embedder.embed_documents(TEXTS)
    queries = np.stack([embedder.embed_query(text) for text in TEXTS])

    assert float(np.abs(documents - torch_vectors).max()) < 1e-5  # documents: the full model, index unchanged
    assert np.allclose(np.linalg.norm(queries, axis=1), 1.0, atol=1e-5)
    agreement = (queries * documents).sum(axis=1)
    assert agreement.min() > 0.97, agreement  # the quantised model's vectors, near the full one's ...
    assert agreement[:3].max() < 0.99999  # ... but not them: the query did run on the other model
    # each text's nearest document is its own, as search needs
    assert list((queries @ documents.T).argmax(axis=1)) == list(range(len(TEXTS)))
    # a text asked first as a query, then embedded as a document, gets each its own vector, not the kept one
    fresh = LocalEmbedder(cache_dir=tmp_path)
    asked = fresh.embed_query(TEXTS[1])
    assert np.allclose(asked, queries[1], atol=1e-6)
    assert np.allclose(fresh.embed_documents([TEXTS[1]])[0], torch_vectors[1], atol=1e-5)
    assert np.allclose(fresh.embed_query(TEXTS[1]), queries[1], atol=1e-6)


def test_quantising_leaves_logging_as_it_was_and_says_nothing(tmp_path: Path, capfd: pytest.CaptureFixture[str]
                                                              ) -> None:
    root = logging.getLogger()
    before = (root.level, list(root.handlers), list(root.filters))
    capfd.readouterr()

    embedder = LocalEmbedder(cache_dir=tmp_path)

    assert embedder.query_precision == "int8"
    assert (root.level, list(root.handlers), list(root.filters)) == before
    out, err = capfd.readouterr()
    assert "quantization" not in out + err and "pre-processing" not in out + err
    assert not [path for path in tmp_path.iterdir() if "inferred" in path.name or path.suffix == ".part"]


def test_the_setting_chooses_the_query_precision(tmp_path: Path) -> None:
    settings = Settings(model_cache_dir=tmp_path, embeddings_query_precision="fp32")
    assert embedder_from_settings(settings).query_precision == "fp32"  # type: ignore[attr-defined]
    default = Settings(model_cache_dir=tmp_path)
    assert embedder_from_settings(default).query_precision == "int8"  # type: ignore[attr-defined]


def test_onnx_export_is_made_once_and_reused(tmp_path: Path) -> None:
    LocalEmbedder(cache_dir=tmp_path)
    exported = sorted(tmp_path.glob("*.onnx"), key=lambda path: len(path.name))  # the export, its int8 copy
    assert len(exported) == 2 and exported[1].name == exported[0].name.replace(".onnx", f"-{_quantised_suffix()}.onnx")
    made = [path.stat().st_mtime_ns for path in exported]

    again = LocalEmbedder(cache_dir=tmp_path)

    assert again.backend == "onnx" and again.query_precision == "int8"
    assert sorted(tmp_path.glob("*.onnx")) == sorted(exported)
    assert [path.stat().st_mtime_ns for path in exported] == made
    assert exported[1].stat().st_size < exported[0].stat().st_size / 3  # int8 weights
    assert not list(tmp_path.glob("*.part"))  # no half-written export left behind


def test_damaged_quantised_copy_is_made_again(tmp_path: Path) -> None:
    first = LocalEmbedder(cache_dir=tmp_path)
    expected = first.embed_query(TEXTS[0])
    [quantised] = list(tmp_path.glob(f"*-{_quantised_suffix()}.onnx"))
    quantised.write_bytes(b"not an onnx graph")

    again = LocalEmbedder(cache_dir=tmp_path)

    assert again.query_precision == "int8" and quantised.stat().st_size > 1_000_000
    assert np.allclose(again.embed_query(TEXTS[0]), expected, atol=1e-6)


def test_queries_fall_back_to_the_full_model_when_no_quantised_copy_can_be_made(
        tmp_path: Path, torch_vectors: np.ndarray, caplog: pytest.LogCaptureFixture) -> None:
    LocalEmbedder(cache_dir=tmp_path, query_precision="fp32")
    [exported] = list(tmp_path.glob("*.onnx"))
    where = exported.with_name(exported.name.replace(".onnx", f"-{_quantised_suffix()}.onnx"))
    where.mkdir()  # a folder where the copy would go

    embedder = LocalEmbedder(cache_dir=tmp_path)

    assert embedder.backend == "onnx" and embedder.query_precision == "fp32"
    assert "embeds queries at full precision" in caplog.text
    assert np.allclose(embedder.embed_query(TEXTS[1]), torch_vectors[1], atol=1e-5)


def test_unknown_query_precision_is_refused() -> None:
    with pytest.raises(InvalidInput, match="unknown query precision"):
        LocalEmbedder(query_precision="int4")  # type: ignore[arg-type]


def test_unusable_cache_falls_back_to_sentence_transformers(tmp_path: Path, torch_vectors: np.ndarray) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the cache folder should be", encoding="utf-8")

    embedder = LocalEmbedder(cache_dir=blocked)

    assert embedder.backend == "torch"
    assert np.allclose(embedder.embed_documents(TEXTS[:2]), torch_vectors[:2], atol=1e-6)


def test_missing_model_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="model folder not found"):
        LocalEmbedder(str(tmp_path / "nowhere"))


def test_damaged_export_is_made_again(tmp_path: Path, torch_vectors: np.ndarray) -> None:
    LocalEmbedder(cache_dir=tmp_path)
    [exported] = [path for path in tmp_path.glob("*.onnx") if "int8" not in path.name]
    exported.write_bytes(b"not an onnx graph")

    again = LocalEmbedder(cache_dir=tmp_path)

    assert again.backend == "onnx" and exported.stat().st_size > 1_000_000
    assert np.allclose(again.embed_documents(TEXTS[:2]), torch_vectors[:2], atol=1e-5)


def test_model_the_onnx_path_cannot_reproduce_is_served_by_sentence_transformers(tmp_path: Path) -> None:
    """A copy of the packaged model with CLS pooling: the ONNX path computes mean pooling, so it steps aside."""
    source = packaged_model_path()
    folder = tmp_path / "cls-model"
    for path in source.rglob("*"):
        if path.is_file():
            (folder / path.relative_to(source)).parent.mkdir(parents=True, exist_ok=True)
            (folder / path.relative_to(source)).symlink_to(path)
    pooling = folder / "1_Pooling" / "config.json"
    config = json.loads(pooling.read_text(encoding="utf-8"))
    pooling.unlink()
    pooling.write_text(json.dumps(config | {"pooling_mode_mean_tokens": False, "pooling_mode_cls_token": True}),
                       encoding="utf-8")

    cls = LocalEmbedder(str(folder), cache_dir=tmp_path / "cache")

    assert cls.backend == "torch"
    reference = LocalEmbedder(str(folder), backend="torch").embed_documents(TEXTS[:2])
    assert np.allclose(cls.embed_documents(TEXTS[:2]), reference, atol=1e-6)
    assert not np.allclose(reference, LocalEmbedder(cache_dir=tmp_path / "cache").embed_documents(TEXTS[:2]),
                           atol=1e-3)


def test_onnx_embedder_serves_threads_at_once(tmp_path: Path) -> None:
    embedder = LocalEmbedder(cache_dir=tmp_path)
    batches = [[f"message {i} about {topic}" for i in range(5)] for topic in ("bills", "roaming", "returns", "sims")]
    alone = [embedder.embed_documents(b) for b in batches]
    questions = [f"what about my {topic}, order {i}?" for i in range(8) for topic in ("bill", "sim")]
    asked = [embedder.embed_query(q) for q in questions]
    embedder.clear_cache()  # the model runs again, from many threads at once

    with ThreadPoolExecutor(max_workers=8) as pool:
        together = list(pool.map(embedder.embed_documents, batches * 4))
        queried = list(pool.map(embedder.embed_query, questions * 2))

    for i, vectors in enumerate(together):
        assert np.allclose(vectors, alone[i % len(batches)], atol=1e-6)
    for i, vector in enumerate(queried):
        assert np.allclose(vector, asked[i % len(questions)], atol=1e-6)


def test_unknown_backend_is_refused() -> None:
    with pytest.raises(InvalidInput, match="unknown embedding backend"):
        LocalEmbedder(backend="gpu")  # type: ignore[arg-type]


def test_a_threads_turns_are_embedded_once_across_requests() -> None:
    calls: list[list[str]] = []

    def embed(texts: list[str]) -> np.ndarray:
        calls.append(texts)
        return np.array([[float(len(t)), float(ord(t[0]))] for t in texts], dtype=np.float32)

    cache = _QueryCache(size=4)
    first = cache.through(["hello", "my order", "hello"], embed, 2)
    again = cache.through(["hello", "my order", "it never came"], embed, 2)

    assert calls == [["hello", "my order"], ["it never came"]]  # the repeated text once, then only the new one
    assert np.array_equal(first, embed(["hello", "my order", "hello"]))
    assert np.array_equal(again, embed(["hello", "my order", "it never came"]))
    assert cache.through([], embed, 2).shape == (0, 2)

    calls.clear()
    ingestion = [f"chunk {i}" for i in range(LIVE_BATCH + 1)]
    cache.through(ingestion, embed, 2)
    cache.through(ingestion[:1], embed, 2)
    assert calls == [ingestion, ingestion[:1]]  # a large batch is neither looked up nor kept

    for text in ("a", "b", "c", "d", "e"):  # bounded: the least recently used goes first
        cache.through([text], embed, 2)
    calls.clear()
    cache.through(["hello"], embed, 2)
    assert calls == [["hello"]]

    cache.through(["e"], embed, 2)
    cache.clear()  # what a benchmark does between tenant sizes: the model runs again
    calls.clear()
    cache.through(["e"], embed, 2)
    assert calls == [["e"]]


def test_cached_and_new_texts_come_back_in_order_with_the_models_vectors(embedder: LocalEmbedder) -> None:
    turns = ["Where is my parcel?", "It was due on Monday.", "Can I get a refund?"]
    embedder.embed_documents(turns[:2])
    mixed = embedder.embed_documents([turns[2], turns[0], turns[1]])
    fresh = LocalEmbedder(cache_dir=MODEL_CACHE).embed_documents([turns[2], turns[0], turns[1]])
    assert np.allclose(mixed, fresh, atol=1e-5)
