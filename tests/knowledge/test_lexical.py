"""The BM25 index saved per tenant and knowledge version: loaded by the next process, rebuilt when it does not fit."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from copilot.settings import Settings
from knowledge.base import KnowledgeBase
from knowledge.embeddings import LocalEmbedder
from knowledge.lexical import LexicalIndex, corpus_digest

IDS = ["a#0", "b#0", "c#0"]
TEXTS = ["refunds reach your card within five working days",
         "roaming in Europe costs a flat daily charge",
         "reset your password from the sign-in page"]


def _write(root: Path, name: str, text: str) -> None:
    (root / name).parent.mkdir(parents=True, exist_ok=True)
    (root / name).write_text(text, encoding="utf-8")


@pytest.fixture
def content(tmp_path: Path) -> Path:
    root = tmp_path / "content"
    _write(root, "articles/refunds.md", "# Refunds\n\nRefunds reach your card within five working days.\n")
    _write(root, "articles/roaming.md", "# Roaming\n\nRoaming in Europe costs a flat daily charge of five pounds.\n")
    return root


def test_saved_index_scores_like_the_built_one(tmp_path: Path) -> None:
    built = LexicalIndex(IDS, TEXTS)
    digest = corpus_digest(IDS, TEXTS)
    assert built.save(tmp_path / "v1", digest)
    loaded = LexicalIndex.load(tmp_path / "v1", IDS, digest)
    assert loaded is not None
    for query in ("refund to my card", "roaming charge Europe", "password", "nothing matches zzz"):
        assert np.allclose(loaded.scores(query), built.scores(query))
    assert loaded.scores("refund card").argmax() == 0


def test_an_index_of_other_chunks_is_not_loaded(tmp_path: Path) -> None:
    LexicalIndex(IDS, TEXTS).save(tmp_path / "v1", corpus_digest(IDS, TEXTS))
    changed = [*TEXTS[:2], "delivery takes two days"]
    assert LexicalIndex.load(tmp_path / "v1", IDS, corpus_digest(IDS, changed)) is None
    assert LexicalIndex.load(tmp_path / "v1", IDS[:2], corpus_digest(IDS[:2], TEXTS[:2])) is None
    assert LexicalIndex.load(tmp_path / "missing", IDS, corpus_digest(IDS, TEXTS)) is None


@pytest.mark.parametrize("damage", ["manifest", "array", "format"])
def test_a_damaged_index_is_not_loaded(tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture) -> None:
    digest = corpus_digest(IDS, TEXTS)
    LexicalIndex(IDS, TEXTS).save(tmp_path / "v1", digest)
    manifest = tmp_path / "v1" / "copilot.json"
    if damage == "manifest":
        manifest.write_text("{not json")
    elif damage == "format":
        manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "format": 0}))
    else:
        array = next((tmp_path / "v1").glob("indices*.npy"))
        array.write_bytes(array.read_bytes()[:-7])
    with caplog.at_level(logging.WARNING):
        assert LexicalIndex.load(tmp_path / "v1", IDS, digest) is None
    assert LexicalIndex(IDS, TEXTS).save(tmp_path / "v1", digest)  # what did not load is replaced
    repaired = LexicalIndex.load(tmp_path / "v1", IDS, digest)
    assert repaired is not None and repaired.scores("password").argmax() == 2


def test_an_index_that_cannot_be_written_warns_and_leaves_nothing(tmp_path: Path,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    blocked = tmp_path / "lexical"
    blocked.write_text("a file where the folder should be")  # as a full or read-only disk: writes fail
    with caplog.at_level(logging.WARNING):
        assert not LexicalIndex(IDS, TEXTS).save(blocked / "acme" / "v1", corpus_digest(IDS, TEXTS))
    assert "could not be saved" in caplog.text
    assert [p.name for p in tmp_path.iterdir()] == ["lexical"]


def test_the_next_process_loads_the_saved_index_and_old_versions_go(settings: Settings, embedder: LocalEmbedder,
                                                                    content: Path) -> None:
    first = KnowledgeBase(settings, embedder=embedder)
    first.create_tenant("acme")
    first.ingest("acme", [content])
    before = first.search("acme", "how long does a refund take", 2)
    built = first.retriever.index("acme")
    assert not built.loaded
    saved = settings.data_dir / "lexical" / "acme" / f"v{built.version}"
    assert (saved / "copilot.json").is_file()

    second = KnowledgeBase(settings, embedder=embedder)  # a worker started later on the same data
    index = second.retriever.index("acme")
    assert index.loaded and index.version == built.version
    after = second.search("acme", "how long does a refund take", 2)
    assert [p.chunk_id for p in after] == [p.chunk_id for p in before]

    _write(content, "articles/delivery.md", "# Delivery\n\nOrders placed before 2pm arrive the next working day.\n")
    second.ingest("acme", [content])
    newer = second.retriever.index("acme")
    assert newer.version > built.version and not newer.loaded
    assert sorted(p.name for p in saved.parent.iterdir()) == [f"v{newer.version}"]
    assert second.search("acme", "when will my order arrive", 1)[0].document_id.endswith("delivery.md")
