"""doc2dial retrieval benchmark: hit@k, MRR@10, doc@1, grounding F1 and latency on grounded agent turns.

A hit is a retrieved passage holding at least half of the distinct non-stop-word tokens of the gold
grounding text (a looser rule lets a random ranking look good). The ``naive`` system is the baseline a
user would build from the tutorials: 1000/200 character chunks, Chroma, the same MiniLM, latest turn only.
"""

from __future__ import annotations

import ast
import csv
import gzip
import re
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from langchain_text_splitters import RecursiveCharacterTextSplitter
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from copilot.conversation import Message, Role, Thread, retrieval_query
from copilot.errors import InvalidInput
from copilot.extract import extract_answer
from copilot.ports import Embedder, RetrievalQuery
from copilot.settings import Settings
from evals.contract import BenchmarkResult, latency_summary
from knowledge.base import KnowledgeBase
from knowledge.documents import Kind, SourceDocument
from knowledge.loaders import sections_from_plain_text
from knowledge.retrieval import RetrievalParams
from knowledge.vectors import VectorIndex

_WORD = re.compile(r"\w+")
TENANT = "bench-doc2dial"


@dataclass(frozen=True)
class Case:
    id: str
    thread: Thread
    gold_text: str
    document_id: str


def read_rows(path: Path) -> Iterator[dict[str, str]]:
    csv.field_size_limit(sys.maxsize)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            missing = {"id", "question", "context", "answers", "title"} - set(reader.fieldnames or [])
            if missing:
                raise InvalidInput(f"{path} is not in doc2dial format: missing columns {sorted(missing)}")
            yield from reader
    except (OSError, EOFError) as exc:
        raise InvalidInput(f"cannot read {path}: {exc}") from exc


def thread_from_question(question: str) -> Thread:
    """doc2dial's history is newest first, tab-separated, each turn prefixed 'user:' or 'agent:'."""
    messages = []
    for turn in reversed([t for t in question.split("\t") if t.strip()]):
        role, _, text = turn.strip().partition(":")
        messages.append(Message(role=Role.AGENT if role.strip() == "agent" else Role.CUSTOMER, text=text.strip()))
    return Thread(messages=messages)


def load(path: Path) -> tuple[list[Case], dict[str, str]]:
    cases: list[Case] = []
    documents: dict[str, str] = {}
    for number, row in enumerate(read_rows(path), start=2):
        try:
            answers = ast.literal_eval(row["answers"])
            gold = answers["text"][0] if answers.get("text") else ""
        except (ValueError, SyntaxError, KeyError, TypeError, AttributeError) as exc:
            raise InvalidInput(f"{path} line {number}: 'answers' is not a dict literal with 'text': {exc}") from exc
        if not gold.strip():
            continue
        documents.setdefault(row["title"], row["context"])
        cases.append(Case(row["id"], thread_from_question(row["question"]), gold, row["title"]))
    if not cases:
        raise InvalidInput(f"{path} has no rows with a gold answer")
    return cases, documents


def gold_tokens(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in ENGLISH_STOP_WORDS}


def is_hit(passage: str, gold: set[str]) -> bool:
    if not gold:
        return False
    return len(gold & set(_WORD.findall(passage.lower()))) >= 0.5 * len(gold)


def token_f1(prediction: str, gold: str) -> float:
    """SQuAD-style token F1 (lowercase, no punctuation or articles), as in the DialDoc 2021 task."""
    def norm(text: str) -> list[str]:
        text = re.sub(r"\b(a|an|the)\b", " ", re.sub(r"[^\w\s]", " ", text.lower()))
        return text.split()
    pred, ref = norm(prediction), norm(gold)
    common = sum((Counter(pred) & Counter(ref)).values())
    if not pred or not ref or common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def source_documents(documents: dict[str, str]) -> list[SourceDocument]:
    """doc2dial documents (title -> text) as articles, sectioned like plain text."""
    return [
        SourceDocument(document_id=title, title=title.rsplit("#", 1)[0], kind=Kind.ARTICLE, source=title,
                       sections=sections_from_plain_text(context))
        for title, context in documents.items()
    ]


Search = Callable[[Thread], tuple[list[tuple[str, str]], RetrievalQuery]]


def _score(name: str, cases: list[Case], search: Search, build_s: float, chunk_words: list[int],
           log: Callable[[str], None]) -> BenchmarkResult:
    hits = {1: 0, 5: 0, 10: 0}
    reciprocal, doc1, f1 = 0.0, 0, 0.0
    latencies: list[float] = []
    returned_words: list[int] = []
    records = []
    for n, case in enumerate(cases, start=1):
        started = time.perf_counter()
        results, query = search(case.thread)
        ms = (time.perf_counter() - started) * 1000
        latencies.append(ms)
        gold = gold_tokens(case.gold_text)
        first = next((rank for rank, (_, text) in enumerate(results[:10], start=1) if is_hit(text, gold)), None)
        scores = {f"hit@{k}": float(first is not None and first <= k) for k in hits}
        scores["mrr@10"] = 1.0 / first if first else 0.0
        scores["doc@1"] = float(bool(results) and results[0][0] == case.document_id)
        scores["grounding_f1"] = token_f1(extract_answer(results[0][1], query), case.gold_text) if results else 0.0
        for k in hits:
            hits[k] += int(scores[f"hit@{k}"])
        reciprocal += scores["mrr@10"]
        doc1 += int(scores["doc@1"])
        f1 += scores["grounding_f1"]
        returned_words.extend(len(text.split()) for _, text in results[:10])
        records.append({"id": case.id, "scores": scores, "latency_ms": {"search": ms}})
        if n % 250 == 0:
            log(f"  {name}: {n}/{len(cases)} queries, hit@1 so far {hits[1] / n:.3f}")
    total = len(cases)
    metrics = {"hit@1": hits[1] / total, "hit@5": hits[5] / total, "hit@10": hits[10] / total,
               "mrr@10": reciprocal / total, "doc@1": doc1 / total, "grounding_f1": f1 / total,
               "mean_passage_words": float(np.mean(returned_words)) if returned_words else 0.0}
    details = {"index_build_s": round(build_s, 2), "chunks": len(chunk_words),
               "mean_chunk_words": round(float(np.mean(chunk_words)), 1) if chunk_words else 0.0}
    return BenchmarkResult("doc2dial", name, total, metrics, latency_summary(latencies), details, cases=records)


def run_copilot(cases: list[Case], documents: dict[str, str], embedder: Embedder, workdir: Path,
                log: Callable[[str], None], params: RetrievalParams | None = None) -> BenchmarkResult:
    # a throw-away store of its own: never the deployment's database or Chroma server
    settings = Settings(data_dir=workdir / "copilot", database_url=None, chroma_url=None,
                        _env_file=None)
    kb = KnowledgeBase(settings, embedder=embedder, params=params)
    kb.ensure_tenant(TENANT)
    log(f"copilot: indexing {len(documents)} documents")
    started = time.perf_counter()
    report = kb.ingest_documents(TENANT, source_documents(documents), by="benchmark")
    if report.failed:
        raise InvalidInput(f"{len(report.failed)} documents could not be indexed: {report.failed[0]['error']}")
    kb.retriever.index(TENANT)  # the lexical index is part of the build
    build_s = time.perf_counter() - started
    chunk_words = [len(row.text.split()) for row in kb.retriever.index(TENANT).rows]

    def search(thread: Thread) -> tuple[list[tuple[str, str]], RetrievalQuery]:
        query = retrieval_query(thread)
        return [(p.document_id, p.text) for p in kb.search(TENANT, query, k=10)], query

    return _score("copilot", cases, search, build_s, chunk_words, log)


def naive_search(documents: dict[str, str], embedder: Embedder, workdir: Path) -> tuple[Search, float, list[str]]:
    """The naive system over ``documents`` (id -> text): its search, the seconds its index took, its chunks."""
    splitter = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200)
    index = VectorIndex(path=workdir / "naive", model_name=embedder.name, dimension=embedder.dimension)
    started = time.perf_counter()
    ids, texts, owners = [], [], []
    for title, context in documents.items():
        for i, piece in enumerate(splitter.split_text(context)):
            ids.append(f"{title}#{i}")
            texts.append(piece)
            owners.append(title)
    index.add("naive", "article", ids, embedder.embed_documents(texts), [{"d": o} for o in owners])
    build_s = time.perf_counter() - started
    text_of = dict(zip(ids, zip(owners, texts, strict=True), strict=True))

    def search(thread: Thread) -> tuple[list[tuple[str, str]], RetrievalQuery]:
        latest = next((m.text for m in reversed(thread.messages) if m.role == Role.CUSTOMER), "")
        found = index.query("naive", "article", embedder.embed_query(latest), 10)
        return [text_of[i] for i, _ in found], RetrievalQuery.plain(latest)

    return search, build_s, texts


def run_naive(cases: list[Case], documents: dict[str, str], embedder: Embedder, workdir: Path,
              log: Callable[[str], None]) -> BenchmarkResult:
    log(f"naive: indexing {len(documents)} documents")
    search, build_s, texts = naive_search(documents, embedder, workdir)
    return _score("naive", cases, search, build_s, [len(t.split()) for t in texts], log)


def run(data: Path, system: str, embedder: Embedder, log: Callable[[str], None] | None = None,
        params: RetrievalParams | None = None) -> BenchmarkResult:
    """Run ``copilot``, ``naive``, or ``all`` (copilot with the naive baseline beside it)."""
    log = log or (lambda message: print(message, file=sys.stderr))
    cases, documents = load(data)
    log(f"doc2dial: {len(cases)} turns over {len(documents)} documents from {data}")
    with tempfile.TemporaryDirectory(prefix="copilot-doc2dial-") as tmp:
        workdir = Path(tmp)
        if system == "naive":
            return run_naive(cases, documents, embedder, workdir, log)
        result = run_copilot(cases, documents, embedder, workdir, log, params)
        if system == "all":
            result.baseline = run_naive(cases, documents, embedder, workdir, log)
        return result
