"""Performance: latency, throughput, memory and cold start of the grounded engine at several tenant sizes.

For each size a fresh data directory holds one tenant: the sample brand plus doc2dial documents repeated with
variation (each copy has its own title and sentence order, so it is a document of its own with its own hash)
until the tenant has about that many chunks. Measured in this process: ingestion beside the raw embedding
throughput of the same model on the same chunks, batched as ingestion batches them (the physical limit of
ingestion); search, suggestion, summary and next-action latency; the naive LangChain + Chroma baseline's
search on the same queries. Over HTTP (``copilot serve`` on a free loopback port, on the same data): cold
start (process start to the first answered suggestion), suggestion latency and the server's peak RSS.

The embedder caches query vectors per process, so each phase asks its own threads (no phase is timed on
questions another phase already embedded) and the cache is emptied before each size (every size asks the same
questions; until 2026-12-07 it was not, so the sizes after the first were timed on kept query vectors).
Requests are sequential, as one agent's console sends them.
"""

from __future__ import annotations

import gc
import itertools
import json
import os
import platform
import random
import re
import resource
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from copilot.conversation import Role, Thread, retrieval_query
from copilot.errors import InvalidInput
from copilot.intents import IntentClassifier
from copilot.nextactions import NextActionEngine
from copilot.ports import Embedder, Matrix, Vector
from copilot.settings import Settings
from copilot.suggest import GroundedEngine
from copilot.summarize import summarize
from evals.benchmarks import doc2dial, perf_http
from evals.contract import BenchmarkResult, latency_summary
from evals.suite import load_suite
from knowledge.base import KnowledgeBase
from knowledge.documents import Kind, Section, SourceDocument, embed_text
from knowledge.ingest import IngestReport, discover
from knowledge.loaders import load_document

TENANT = "perf"
DEFAULT_SIZES = (1000, 10_000, 100_000)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


@dataclass(frozen=True)
class Target:
    """A figure the issue sets for the largest tenant: at most (``max``) or at least (``min``) ``value``."""

    metric: str
    bound: str
    value: float

    def passed(self, measured: float | None) -> bool | None:
        if measured is None:
            return None
        return measured <= self.value if self.bound == "max" else measured >= self.value

    @property
    def label(self) -> str:
        return f"{'<' if self.bound == 'max' else '>='} {self.value:g}"


TARGETS = (Target("suggest_p95_ms", "max", 150), Target("suggest_http_p95_ms", "max", 200),
           Target("search_p95_ms", "max", 50), Target("ingest_vs_embed", "min", 0.8),
           Target("rss_mb", "max", 2048), Target("cold_start_s", "max", 10))

# the order of the table's rows; a size that did not measure a figure (no --http) leaves it out
METRICS = (
    "chunks", "documents", "ingest_s", "ingest_chunks_per_s", "embed_chunks_per_s", "ingest_vs_embed",
    "index_build_s", "search_p50_ms", "search_p95_ms", "search_p99_ms", "naive_search_p50_ms",
    "naive_search_p95_ms", "naive_search_p99_ms", "naive_chunks", "naive_build_s", "suggest_p50_ms",
    "suggest_p95_ms", "suggest_p99_ms", "suggest_per_s", "summary_p50_ms", "summary_p95_ms", "summary_p99_ms",
    "next_action_p50_ms", "next_action_p95_ms", "next_action_p99_ms", "cold_start_s", "suggest_http_p50_ms",
    "suggest_http_p95_ms", "suggest_http_p99_ms", "suggest_http_per_s", "rss_mb", "bench_rss_mb",
)

Log = Callable[[str], None]


# --- the data ----------------------------------------------------------------------------------------------------


def _rotate(text: str, k: int) -> str:
    """Each paragraph's sentences rotated by ``k``: the same facts and words, other chunks and vectors."""
    paragraphs = []
    for paragraph in text.split("\n\n"):
        sentences = _SENTENCE_END.split(paragraph)
        shift = k % len(sentences)
        paragraphs.append(" ".join(sentences[shift:] + sentences[:shift]))
    return "\n\n".join(paragraphs)


def variant(title: str, text: str, copy: int) -> SourceDocument:
    """Copy ``copy`` of a doc2dial document (0 is the original)."""
    base = doc2dial.source_documents({title: text})[0]
    if copy == 0:
        base.document_id = f"doc2dial/{title}"
        return base
    sections = [Section(path=s.path, text=_rotate(s.text, copy), unit=s.unit, metadata=s.metadata)
                for s in base.sections]
    return SourceDocument(document_id=f"doc2dial/{title}~{copy}", title=f"{base.title} (edition {copy + 1})",
                          kind=Kind.ARTICLE, source=f"doc2dial:{title}~{copy}", sections=sections)


def fill(documents: dict[str, str], chunks_of: Callable[[SourceDocument], int], needed: int) -> list[SourceDocument]:
    """doc2dial documents, copied with variation, until they hold about ``needed`` chunks."""
    if needed <= 0 or not documents:
        return []
    chosen: list[SourceDocument] = []
    total = 0
    for copy in itertools.count():
        before = total
        for title, text in documents.items():
            document = variant(title, text, copy)
            size = chunks_of(document)
            if total + size > needed and needed - total < total + size - needed:
                continue  # overshooting by more than it falls short: a smaller document may fit better
            chosen.append(document)
            total += size
            if total >= needed:
                return chosen
        if total == before:  # every document is larger than what is left: as close as it gets
            break
    return chosen


def _plain_text(document: SourceDocument) -> str:
    return "\n\n".join(section.text for section in document.sections)


def _brand_documents(sample_dir: Path, max_bytes: int) -> list[SourceDocument]:
    """The sample brand's articles and FAQ as the naive baseline indexes them (its voice, macros and playbooks
    are not something a tutorial RAG would search)."""
    found = discover([sample_dir], IngestReport())
    loaded = [load_document(path.resolve(), path_id, max_bytes) for path, path_id in found]
    return [d for d in loaded if d.kind in (Kind.ARTICLE, Kind.FAQ)]


@dataclass
class Requests:
    """The threads each phase asks: disjoint, so no phase meets a cached query vector of another."""

    warmup: Thread
    search: list[Thread]
    engines: list[Thread]
    http: list[Thread]


def requests(suite_threads: Sequence[Thread], dataset_threads: Sequence[Thread], n: int, seed: int = 7) -> Requests:
    """``n`` threads per phase: the sample suite's threads shared out round robin, then doc2dial's."""
    def latest(thread: Thread) -> str:
        return next((m.text.strip() for m in reversed(thread.messages) if m.role == Role.CUSTOMER), "")

    seen: set[str] = set()
    pool: list[Thread] = []
    others = list(dataset_threads)
    random.Random(seed).shuffle(others)
    for thread in [*suite_threads, *others]:
        key = latest(thread).lower()
        if key and key not in seen:
            seen.add(key)
            pool.append(thread)
    if len(pool) < 4:
        raise InvalidInput("too few distinct questions to time")
    warmup, rest = pool[0], pool[1:]
    phases: list[list[Thread]] = [[], [], []]
    suite_part = min(len(suite_threads) - 1, len(rest))
    for i, thread in enumerate(rest[:suite_part]):
        phases[i % 3].append(thread)
    extra = iter(rest[suite_part:])
    for phase in phases:
        del phase[n:]
        phase.extend(t for _, t in zip(range(n - len(phase)), extra, strict=False))
    # with more requests than distinct questions, a phase repeats its own (cached) questions
    for phase in phases:
        base = list(phase) or [warmup]
        while len(phase) < n:
            phase.append(base[len(phase) % len(base)])
    return Requests(warmup, phases[0], phases[1], phases[2])


# --- measuring ---------------------------------------------------------------------------------------------------


def _busy_cpu_s() -> float | None:
    """CPU seconds the whole machine has spent busy since boot (all processes; /proc/stat), None elsewhere."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


class _Usage:
    """Where the CPU went while a phase ran: this process (all its threads, Chroma's and the model's included)
    and the rest of the machine, in CPUs busy on average. A sequential phase should use about one; more in this
    process means background work of its own, more outside it means another program took the cores."""

    def __init__(self) -> None:
        self._wall, self._own, self._all = time.perf_counter(), time.process_time(), _busy_cpu_s()

    def line(self) -> str:
        wall = max(time.perf_counter() - self._wall, 1e-9)
        own = (time.process_time() - self._own) / wall
        busy = _busy_cpu_s()
        rest = f", the rest of the machine {max(0.0, (busy - self._all) / wall - own):.2f}" \
            if busy is not None and self._all is not None else ""
        return f"{wall:.1f} s; CPUs busy: this process {own:.2f}{rest}"


def _timed(items: Sequence[Any], call: Callable[[Any], object]) -> tuple[list[float], float]:
    """Each call's milliseconds, and the seconds all of them took in sequence."""
    samples = []
    begun = time.perf_counter()
    for item in items:
        started = time.perf_counter()
        call(item)
        samples.append((time.perf_counter() - started) * 1000)
    return samples, time.perf_counter() - begun


def _percentiles(name: str, samples: list[float]) -> dict[str, float]:
    summary = latency_summary(samples)
    return {f"{name}_{key}_ms": value for key, value in summary.items()}


def _peak_rss_mb() -> float:
    """This process's peak RSS so far (the benchmark's own, all sizes before this one included)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 / 1024 if sys.platform == "darwin" else peak / 1024


class _UncachedQueries:
    """The embedder with its kept vectors forgotten before each query, for the naive baseline: its questions are
    the copilot search's, whose vectors it would otherwise find kept (the same query model as the search)."""

    def __init__(self, inner: Embedder) -> None:
        self._inner = inner

    @property
    def name(self) -> str:
        return self._inner.name

    @property
    def dimension(self) -> int:
        return self._inner.dimension

    def embed_documents(self, texts: Sequence[str]) -> Matrix:
        return self._inner.embed_documents(texts)

    def embed_query(self, text: str) -> Vector:
        _forget_kept(self._inner)
        return self._inner.embed_query(text)


def _forget_kept(embedder: Embedder) -> None:
    """Empty the embedder's kept vectors, where it keeps any (``clear_cache``), so the model runs again."""
    clear = getattr(embedder, "clear_cache", None)
    if callable(clear):
        clear()


def embed_throughput(embedder: Embedder, texts: Sequence[str], batch: int) -> float:
    """Chunks per second of ``embed_documents`` alone, called with ``batch`` texts at a time as ingestion does."""
    started = time.perf_counter()
    for start in range(0, len(texts), batch):
        embedder.embed_documents(texts[start : start + batch])
    return len(texts) / max(time.perf_counter() - started, 1e-9)


def _build(kb: KnowledgeBase, sample_dir: Path, documents: dict[str, str], size: int,
           log: Log) -> tuple[dict[str, float], list[SourceDocument]]:
    kb.create_tenant(TENANT)
    started = time.perf_counter()
    brand = kb.ingest(TENANT, [sample_dir], by="benchmark")
    brand_s = time.perf_counter() - started
    if brand.failed:
        raise InvalidInput(f"the sample brand did not ingest: {brand.failed[0]['error']}")
    extra = fill(documents, lambda d: len(kb.chunker.chunk(d, "count")), size - brand.chunks)
    log(f"  ingesting the sample brand ({brand.chunks} chunks) and {len(extra)} doc2dial documents")
    started = time.perf_counter()
    report = kb.ingest_documents(TENANT, extra, by="benchmark")
    ingest_s = brand_s + time.perf_counter() - started
    if report.failed:
        raise InvalidInput(f"{len(report.failed)} documents could not be indexed: {report.failed[0]['error']}")
    chunks = brand.chunks + report.chunks
    return {"chunks": chunks, "documents": brand.added + report.added, "ingest_s": ingest_s,
            "ingest_chunks_per_s": chunks / max(ingest_s, 1e-9)}, extra


def _in_process(kb: KnowledgeBase, asked: Requests, figures: dict[str, float], embed_sample: int, log: Log) -> None:
    started = time.perf_counter()
    rows = kb.retriever.index(TENANT).rows  # the BM25 index is built at the first search after a change
    kb.search(TENANT, retrieval_query(asked.warmup), 5)
    figures["index_build_s"] = time.perf_counter() - started

    step = max(1, len(rows) // max(embed_sample, 1))
    texts = [embed_text(r.title, r.section, r.text) for r in rows[::step][:embed_sample]]
    log(f"  raw embedding throughput on {len(texts)} of the chunks")
    figures["embed_chunks_per_s"] = embed_throughput(kb.embedder, texts, kb.ingestor.batch_chunks)
    if "ingest_chunks_per_s" in figures:  # not on a tenant kept from an earlier run
        figures["ingest_vs_embed"] = figures["ingest_chunks_per_s"] / figures["embed_chunks_per_s"]

    log(f"  search: {len(asked.search)} queries")
    usage = _Usage()
    samples, _ = _timed(asked.search, lambda t: kb.search(TENANT, retrieval_query(t), 5))
    figures.update(_percentiles("search", samples))
    log(f"  search: {usage.line()}")

    # what api.wiring.Engines does per request: the tenant's profile is read each time, the intent classifier
    # and the next-action engine are built once per version of the tenant's content
    profile = kb.profile(TENANT)
    classifier = None
    if len({intent for _, intent in profile.intent_examples}) >= 2:
        texts_, labels = zip(*profile.intent_examples, strict=True)
        classifier = IntentClassifier(kb.embedder).fit(list(texts_), list(labels))
    grounded = GroundedEngine(kb.retriever)
    actions = NextActionEngine(profile.playbooks, kb.embedder, intents=classifier)

    def suggest(thread: Thread) -> None:
        result = grounded.suggest(TENANT, thread, kb.profile(TENANT), 3)
        if classifier is not None and result.query:  # the service labels each suggestion set with its intent
            classifier.predict([result.query])

    def summary(thread: Thread) -> None:
        kb.profile(TENANT)
        summarize(thread, "after_contact", intents=classifier)

    def next_action(thread: Thread) -> None:
        kb.profile(TENANT)
        actions.recommend(thread, n=3)

    log(f"  suggestions, summaries, next actions: {len(asked.engines)} threads each")
    usage = _Usage()
    samples, wall = _timed(asked.engines, suggest)
    figures.update(_percentiles("suggest", samples))
    figures["suggest_per_s"] = len(samples) / max(wall, 1e-9)
    figures.update(_percentiles("summary", _timed(asked.engines, summary)[0]))
    figures.update(_percentiles("next_action", _timed(asked.engines, next_action)[0]))
    log(f"  suggestions, summaries, next actions: {usage.line()}")


def _naive(kb: KnowledgeBase, sample_dir: Path, extra: list[SourceDocument], asked: Requests, workdir: Path,
           figures: dict[str, float], log: Log) -> None:
    texts = {d.document_id: _plain_text(d) for d in _brand_documents(sample_dir, kb.settings.max_file_bytes)}
    texts.update((d.document_id, _plain_text(d)) for d in extra)
    log(f"  naive baseline: indexing {len(texts)} documents")
    search, build_s, chunks = doc2dial.naive_search(texts, _UncachedQueries(kb.embedder), workdir)
    figures.update(_percentiles("naive_search", _timed(asked.search, search)[0]))
    figures["naive_chunks"] = len(chunks)
    figures["naive_build_s"] = build_s


# --- the run -----------------------------------------------------------------------------------------------------


def _kept(kb: KnowledgeBase, size: int, log: Log) -> dict[str, float] | None:
    """The figures of a tenant a ``keep`` run built before (None when there is none to reuse)."""
    if TENANT not in kb.registry.tenants():
        return None
    chunks = kb.registry.chunk_count(TENANT)
    documents = len(kb.registry.documents(TENANT))
    if chunks < 0.95 * size:
        raise InvalidInput(f"{kb.settings.data_dir} holds a tenant of {chunks} chunks, not about {size}: a run "
                           "stopped while building it; remove that folder to build it again")
    log(f"  reusing the tenant built before: {chunks} chunks, {documents} documents (no ingestion figures)")
    return {"chunks": chunks, "documents": documents}


def measure(size: int, documents: dict[str, str], asked: Requests, sample_dir: Path, embedder: Embedder, *,
            http: bool, naive: bool, embed_sample: int, cli: Sequence[str], log: Log,
            keep: Path | None = None) -> dict[str, float]:
    """Every figure for one tenant of about ``size`` chunks, in a temporary data directory removed after, or in
    ``keep``/``size`` kept for the next run, which then measures everything but ingestion on it again."""
    _forget_kept(embedder)  # the sizes ask the same questions: a later size would find every query vector kept
    with tempfile.TemporaryDirectory(prefix="copilot-perf-", ignore_cleanup_errors=True) as scratch:
        data_dir = keep / str(size) / "data" if keep is not None else Path(scratch) / "data"
        settings = Settings(data_dir=data_dir, database_url=None, chroma_url=None, _env_file=None)
        kb = KnowledgeBase(settings, embedder=embedder)
        try:
            reused = _kept(kb, size, log) if keep is not None else None
            if reused is None:
                figures, extra = _build(kb, sample_dir, documents, size, log)
                log(f"  {figures['chunks']:.0f} chunks in {figures['ingest_s']:.1f} s "
                    f"({figures['ingest_chunks_per_s']:.1f} chunks/s)")
            else:
                figures, extra = reused, []
            _in_process(kb, asked, figures, embed_sample, log)
            figures["bench_rss_mb"] = _peak_rss_mb()
            if naive and reused is not None:
                log("  naive baseline: skipped (it needs the documents of a fresh build)")
            elif naive:
                _naive(kb, sample_dir, extra, asked, Path(scratch), figures, log)
        finally:
            kb.registry.engine.dispose()
            del kb
            gc.collect()
        if http:
            figures.update(perf_http.measure_http(cli, data_dir, TENANT, asked.warmup, asked.http, log))
        else:
            figures["rss_mb"] = figures["bench_rss_mb"]
        return figures


def machine() -> dict[str, Any]:
    try:
        memory_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    except (ValueError, OSError, AttributeError):
        memory_gb = None
    return {"processor": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
            "memory_gb": round(memory_gb, 1) if memory_gb else None, "platform": platform.platform(),
            "python": platform.python_version(), "load_average": [round(v, 2) for v in os.getloadavg()]}


def run(sizes: Sequence[int], data: Path, sample_dir: Path, embedder: Embedder, *, queries: int = 200,
        http: bool = True, naive: bool = True, embed_sample: int = 2000, cli: Sequence[str] | None = None,
        log: Log | None = None, keep: Path | None = None) -> BenchmarkResult:
    """Measure every size, smallest first; the result's metrics are the largest size's.

    Args:
        sizes: tenant sizes in chunks.
        data: a doc2dial file (its documents fill the tenants, its questions are the requests).
        sample_dir: the sample brand's folder (its ``evals/suite.jsonl`` threads are requests too).
        embedder: the embedding model the tenants are indexed with (the server loads its own from settings).
        queries: requests per phase and size.
        http: also start ``copilot serve`` on the data and time it over HTTP.
        naive: also time the naive LangChain + Chroma baseline's search (it indexes the data again).
        embed_sample: chunks the raw embedding throughput is measured on.
        cli: the ``copilot`` command line (default: this Python's ``-m api.cli``).
        keep: a folder that keeps each size's tenant (``keep/<size>``) for the next run with the same folder,
            which measures everything but ingestion (and the naive baseline) on it again, in minutes.
    """
    emit = log or (lambda message: print(message, file=sys.stderr))
    begun = time.perf_counter()

    def say(message: str) -> None:
        emit(f"[{time.perf_counter() - begun:6.0f} s, load {os.getloadavg()[0]:4.1f}] {message}")

    if not sizes or min(sizes) < 1:
        raise InvalidInput("give at least one tenant size, each at least 1 chunk")
    if queries < 1:
        raise InvalidInput("--queries must be at least 1")
    cli = list(cli or [sys.executable, "-m", "api.cli"])
    suite = load_suite(sample_dir / "evals" / "suite.jsonl")
    cases, documents = doc2dial.load(data)
    asked = requests([c.thread for c in suite.cases if c.thread is not None], [c.thread for c in cases], queries)
    info = machine()
    say(f"perf: {len(documents)} doc2dial documents, {queries} requests per phase; {info['cpus']} CPUs, "
        f"load average {info['load_average']}")
    by_size: list[dict[str, Any]] = []
    for size in sorted(sizes):
        say(f"tenant of about {size} chunks")
        started, load_before = time.perf_counter(), os.getloadavg()[0]
        figures = measure(size, documents, asked, sample_dir, embedder, http=http, naive=naive,
                          embed_sample=embed_sample, cli=cli, log=say, keep=keep)
        say(f"  done in {time.perf_counter() - started:.0f} s: suggest p95 {figures['suggest_p95_ms']:.1f} ms, "
            f"search p95 {figures['search_p95_ms']:.1f} ms")
        by_size.append({"size": size, "wall_s": round(time.perf_counter() - started, 1),
                        "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
                        "metrics": {k: round(figures[k], 4) for k in METRICS if k in figures}})
    largest: dict[str, float] = by_size[-1]["metrics"]
    targets = [{"metric": t.metric, "bound": t.bound, "target": t.value, "value": largest.get(t.metric),
                "passed": t.passed(largest.get(t.metric))} for t in TARGETS]
    info["load_average_end"] = [round(v, 2) for v in os.getloadavg()]
    details = {"sizes": [row["size"] for row in by_size], "by_size": by_size, "targets": targets,
               "queries": queries, "http": http, "embedding_model": embedder.name,
               "query_precision": getattr(embedder, "query_precision", "fp32"),
               "date": datetime.now(UTC).isoformat(timespec="seconds"), "machine": info}
    latency = {key: largest[f"suggest_{key}_ms"] for key in ("p50", "p95", "p99")}
    return BenchmarkResult("perf", "copilot", queries, dict(largest), latency, details)


# --- the report --------------------------------------------------------------------------------------------------


def _number(value: float | None) -> str:
    if value is None:
        return ""
    if abs(value) >= 100 or float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:.2f}" if abs(value) < 10 else f"{value:.1f}"


def table(result: BenchmarkResult) -> tuple[list[str], list[list[str]]]:
    """The figures as rows (metric, one value per size, target, the largest size's verdict)."""
    by_size = result.details["by_size"]
    targets = {t.metric: t for t in TARGETS}
    verdicts = {t["metric"]: t["passed"] for t in result.details["targets"]}
    header = ["metric", *(f"{row['size']:,}" for row in by_size), "target", "largest"]
    rows = []
    for name in METRICS:
        values = [row["metrics"].get(name) for row in by_size]
        if all(v is None for v in values):
            continue
        target = targets.get(name)
        verdict = {True: "pass", False: "FAIL", None: ""}[verdicts.get(name)]
        rows.append([name, *(_number(v) for v in values), target.label if target else "", verdict])
    return header, rows


def markdown(result: BenchmarkResult) -> str:
    info = result.details["machine"]
    header, rows = table(result)
    lines = [
        f"# Performance, measured {result.details['date']}",
        "",
        f"Machine: {info['processor']}, {info['cpus']} CPUs, {info['memory_gb']} GB memory, {info['platform']}, "
        f"Python {info['python']}; load average {info['load_average']} at the start, "
        f"{info.get('load_average_end')} at the end. Embedding model {result.details['embedding_model']} "
        f"(queries at {result.details.get('query_precision', 'fp32')}); "
        f"{result.details['queries']} sequential requests per phase; columns are tenant sizes in chunks "
        f"(requested); targets apply to the largest.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|",
        *("| " + " | ".join(row) + " |" for row in rows),
        "",
    ]
    return "\n".join(lines)


def write_report(result: BenchmarkResult, folder: Path) -> tuple[Path, Path]:
    """``perf.json`` (the result as JSON) and ``perf.md`` (the table) in ``folder``."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        json_path, md_path = folder / "perf.json", folder / "perf.md"
        json_path.write_text(json.dumps(result.as_json(), indent=2), encoding="utf-8")
        md_path.write_text(markdown(result), encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"cannot write to {folder}: {exc.strerror or exc}") from exc
    return json_path, md_path


def parse_sizes(text: str) -> list[int]:
    """``1000,10k,100000`` -> [1000, 10000, 100000]."""
    sizes = []
    for part in (p.strip().lower() for p in text.split(",")):
        if not part:
            continue
        scale = 1000 if part.endswith("k") else 1
        try:
            size = int(float(part.removesuffix("k")) * scale)
        except ValueError as exc:
            raise InvalidInput(f"--chunks: {part!r} is not a number of chunks") from exc
        if size < 1:
            raise InvalidInput(f"--chunks: {part!r} must be at least 1")
        sizes.append(size)
    if not sizes:
        raise InvalidInput("--chunks needs at least one size, e.g. 1000,10000")
    return sizes
