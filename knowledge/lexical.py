"""The lexical index: BM25 over a tenant's chunks with bm25s. Only this module imports bm25s."""

from __future__ import annotations

from collections.abc import Sequence

import bm25s
import numpy as np
import numpy.typing as npt
import Stemmer
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

_stemmer = Stemmer.Stemmer("english")
# bm25s' own English list has 33 words and keeps "can", "my", "any": one such match in a small corpus
# would outvote a clear dense winner in the fusion. scikit-learn's list has 318.
STOPWORDS = sorted(ENGLISH_STOP_WORDS)


def _tokenize(texts: Sequence[str]) -> list[list[str]]:
    tokenized = bm25s.tokenize(list(texts), stopwords=STOPWORDS, stemmer=_stemmer, return_ids=False,
                               show_progress=False)
    return [list(tokens) for tokens in tokenized]


class LexicalIndex:
    """BM25 scores of every chunk for a query; rebuilt when a tenant's knowledge version changes."""

    def __init__(self, ids: Sequence[str], texts: Sequence[str]) -> None:
        self.ids = list(ids)
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
