"""The lexical index: BM25 over a tenant's chunks with bm25s. Only this module imports bm25s.

An index can be saved to a folder and loaded back memory-mapped: tokenizing and scoring 100k chunks takes about
8 s on 2 cores, loading the saved arrays a few milliseconds, so a process that starts on a large tenant answers
its first search without rebuilding it (and the workers of one machine share the pages).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import bm25s
import numpy as np
import numpy.typing as npt
import Stemmer
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

log = logging.getLogger(__name__)

_stemmer = Stemmer.Stemmer("english")
# bm25s' own English list has 33 words and keeps "can", "my", "any": one such match in a small corpus
# would outvote a clear dense winner in the fusion. scikit-learn's list has 318.
STOPWORDS = sorted(ENGLISH_STOP_WORDS)
_FORMAT = 1  # raise when what is saved (or how it is tokenized) changes: older folders are then rebuilt
_MANIFEST = "copilot.json"


def _tokenize(texts: Sequence[str]) -> list[list[str]]:
    tokenized = bm25s.tokenize(list(texts), stopwords=STOPWORDS, stemmer=_stemmer, return_ids=False,
                               show_progress=False)
    return [list(tokens) for tokens in tokenized]


def corpus_digest(ids: Sequence[str], texts: Sequence[str]) -> str:
    """What a saved index is checked against: the chunks it scores, ids and texts, in order (0.2 s at 100k)."""
    digest = hashlib.sha256()
    for chunk_id, text in zip(ids, texts, strict=True):
        digest.update(chunk_id.encode())
        digest.update(b"\0")
        digest.update(text.encode())
        digest.update(b"\0")
    return digest.hexdigest()


class LexicalIndex:
    """BM25 scores of every chunk for a query; rebuilt when a tenant's knowledge version changes."""

    def __init__(self, ids: Sequence[str], texts: Sequence[str] | None = None, *,
                 retriever: bm25s.BM25 | None = None) -> None:
        self.ids = list(ids)
        if retriever is not None:
            self._retriever = retriever
            self._empty = not self.ids
            return
        self._retriever = bm25s.BM25()
        if texts:
            corpus = bm25s.tokenize(list(texts), stopwords=STOPWORDS, stemmer=_stemmer, show_progress=False)
            self._retriever.index(corpus, show_progress=False)
        self._empty = not texts

    def scores(self, text: str) -> npt.NDArray[np.float32]:
        """BM25 score of each chunk (in ``ids`` order); zeros when nothing matches."""
        if self._empty:
            return np.zeros(0, dtype=np.float32)
        tokens = [t for t in _tokenize([text])[0] if t in self._retriever.vocab_dict]
        if not tokens:
            return np.zeros(len(self.ids), dtype=np.float32)
        return np.asarray(self._retriever.get_scores(tokens), dtype=np.float32)

    # --- saved indexes ---

    def save(self, folder: Path, digest: str) -> bool:
        """Write the index of the chunks whose ``corpus_digest`` is ``digest`` to ``folder``, whole or not at all
        (it is written beside and renamed into place).

        Returns False, with a warning logged, when it cannot be written (a read-only or full disk): the index in
        memory stays usable and the next process builds its own."""
        if self._empty:
            return False
        try:
            folder.parent.mkdir(parents=True, exist_ok=True)
            scratch = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
            try:
                self._retriever.save(str(scratch), show_progress=False)
                manifest = {"format": _FORMAT, "chunks": len(self.ids), "digest": digest}
                (scratch / _MANIFEST).write_text(json.dumps(manifest))
                if folder.exists():  # a damaged copy that did not load
                    shutil.rmtree(folder, ignore_errors=True)
                os.replace(scratch, folder)
            except BaseException:
                shutil.rmtree(scratch, ignore_errors=True)
                raise
        except OSError as exc:
            if folder.is_dir():  # another process saved the same index first
                return False
            log.warning("the lexical index could not be saved to %s: %s", folder, exc)
            return False
        return True

    @classmethod
    def load(cls, folder: Path, ids: Sequence[str], digest: str) -> LexicalIndex | None:
        """The index saved in ``folder`` if it was built from exactly the chunks of ``digest``; None when it is
        missing, of another format, for other chunks, or damaged (it is then built again)."""
        try:
            manifest = json.loads((folder / _MANIFEST).read_text())
        except (OSError, ValueError):
            return None
        if (not isinstance(manifest, dict) or manifest.get("format") != _FORMAT
                or manifest.get("chunks") != len(ids)):
            return None
        if manifest.get("digest") != digest:
            return None
        try:
            retriever = bm25s.BM25.load(str(folder), mmap=True, show_progress=False)
            arrays = retriever.scores
            data, indices, indptr = arrays["data"], arrays["indices"], arrays["indptr"]
            if (int(arrays["num_docs"]) != len(ids) or len(data) != len(indices) or int(indptr[-1]) != len(data)
                    or (len(indices) and int(indices.max()) >= len(ids))):
                raise ValueError("its arrays do not fit together")
        except Exception as exc:  # any damage means: build it again
            log.warning("the saved lexical index in %s is damaged (%s); building it again", folder, exc)
            return None
        return cls(ids, retriever=retriever)
