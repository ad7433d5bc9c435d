"""The performance benchmark: its data and requests, and one small tenant measured in-process and over HTTP."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from copilot.conversation import Message, Role, Thread
from copilot.errors import InvalidInput
from evals.benchmarks import perf
from knowledge.embeddings import LocalEmbedder
from tests.conftest import DATASETS, SAMPLE

DOC2DIAL = DATASETS / "doc2dial" / "doc2dial_rc_val_dmv_ssa_va.csv.gz"
needs_doc2dial = pytest.mark.skipif(not DOC2DIAL.is_file(), reason="doc2dial is not in shared/datasets")

TEXT = ("Renewing a licence\n\nYou can renew online. It takes ten minutes. Bring your old card.\n\n"
        "Fees apply. Pay by card.")


def _thread(text: str) -> Thread:
    return Thread(messages=[Message(role=Role.CUSTOMER, text=text)])


def test_variant_copies_keep_the_words_and_change_the_document() -> None:
    original, copy = perf.variant("dmv#renew", TEXT, 0), perf.variant("dmv#renew", TEXT, 1)
    assert (original.document_id, copy.document_id) == ("doc2dial/dmv#renew", "doc2dial/dmv#renew~1")
    assert copy.title != original.title and copy.content_hash != original.content_hash
    words = [sorted(" ".join(s.text for s in d.sections).split()) for d in (original, copy)]
    assert words[0] == words[1]


def test_fill_stops_near_the_requested_chunks() -> None:
    documents = {f"doc-{i}": TEXT for i in range(5)}
    chosen = perf.fill(documents, lambda d: 3, 40)
    assert len(chosen) * 3 in (39, 42) and len({d.document_id for d in chosen}) == len(chosen)
    assert perf.fill(documents, lambda d: 3, 0) == []
    assert len(perf.fill(documents, lambda d: 50, 20)) == 0  # one document would overshoot more than it adds


def test_requests_give_each_phase_its_own_questions() -> None:
    suite = [_thread(f"suite question {i}") for i in range(10)]
    dataset = [_thread(f"dataset question {i}") for i in range(100)] + [_thread("suite question 3")]
    asked = perf.requests(suite, dataset, 20)
    phases = [asked.search, asked.engines, asked.http]
    assert all(len(p) == 20 for p in phases)
    texts = [{t.messages[-1].text for t in p} for p in phases]
    assert all(len(t) == 20 for t in texts)
    assert not (texts[0] & texts[1] or texts[1] & texts[2] or texts[0] & texts[2])
    assert asked.warmup.messages[-1].text not in set().union(*texts)
    assert all(any(t.startswith("suite") for t in phase) for phase in texts)  # the brand's threads in every phase


def test_parse_sizes_reads_thousands_and_refuses_nonsense() -> None:
    assert perf.parse_sizes("1000, 10k,100000") == [1000, 10_000, 100_000]
    for bad in ("", "abc", "0", "-5"):
        with pytest.raises(InvalidInput):
            perf.parse_sizes(bad)


def test_benchmark_command_refuses_bad_sizes_with_exit_2() -> None:
    from api.cli import app

    done = CliRunner().invoke(app, ["eval", "benchmark", "perf", "--chunks", "lots", "--json"])
    assert done.exit_code == 2
    assert json.loads(done.stdout)["error"]["type"]


@pytest.mark.slow
@needs_doc2dial
def test_a_small_tenant_measured_in_process_and_over_http(embedder: LocalEmbedder, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    size = 400  # the sample brand alone is about 360 chunks
    result = perf.run([size], DOC2DIAL, SAMPLE, embedder, queries=15, embed_sample=32, log=lambda _: None)

    [row] = result.details["by_size"]
    m = row["metrics"]
    assert row["size"] == size and result.metrics == m
    assert 0.8 * size <= m["chunks"] <= 1.2 * size
    for name in ("ingest_chunks_per_s", "embed_chunks_per_s", "ingest_vs_embed", "rss_mb", "bench_rss_mb",
                 "cold_start_s", "suggest_per_s", "suggest_http_per_s", "naive_chunks", "documents"):
        assert m[name] > 0, name
    assert m["ingest_vs_embed"] == pytest.approx(m["ingest_chunks_per_s"] / m["embed_chunks_per_s"], rel=1e-3)
    for op in ("search", "naive_search", "suggest", "summary", "next_action", "suggest_http"):
        assert 0 < m[f"{op}_p50_ms"] <= m[f"{op}_p95_ms"] <= m[f"{op}_p99_ms"], op
    assert result.latency_ms == pytest.approx({k: m[f"suggest_{k}_ms"] for k in ("p50", "p95", "p99")})
    assert {t["metric"] for t in result.details["targets"]} == {t.metric for t in perf.TARGETS}
    assert all(t["passed"] is not None for t in result.details["targets"])
    assert list(scratch.iterdir()) == []  # the tenant's data directory is gone, the server stopped with it

    json_path, md_path = perf.write_report(result, tmp_path / "out")
    assert json.loads(json_path.read_text())["metrics"]["chunks"] == m["chunks"]
    table = md_path.read_text()
    assert f"| metric | {size} | target | largest |" in table and "| suggest_p95_ms |" in table
    assert f"{result.details['machine']['cpus']} CPUs" in table
    assert result.details["query_precision"] == embedder.query_precision == "int8"
    assert "(queries at int8)" in table


@pytest.mark.slow
@needs_doc2dial
def test_a_kept_tenant_is_measured_again_without_building_it(embedder: LocalEmbedder, tmp_path: Path) -> None:
    keep, size = tmp_path / "keep", 400
    first = perf.run([size], DOC2DIAL, SAMPLE, embedder, queries=5, embed_sample=16, http=False, naive=False,
                     keep=keep, log=lambda _: None)
    said: list[str] = []
    again = perf.run([size], DOC2DIAL, SAMPLE, embedder, queries=5, embed_sample=16, http=False, naive=True,
                     keep=keep, log=said.append)

    built, reused = first.metrics, again.metrics
    assert (keep / str(size) / "data").is_dir()
    assert "ingest_chunks_per_s" in built and "ingest_chunks_per_s" not in reused
    assert "ingest_vs_embed" not in reused and "naive_chunks" not in reused
    assert reused["chunks"] == built["chunks"] and reused["documents"] == built["documents"]
    assert 0 < reused["search_p50_ms"] <= reused["search_p95_ms"] and reused["embed_chunks_per_s"] > 0
    assert any("reusing the tenant" in line for line in said)
    assert any("CPUs busy: this process" in line for line in said)

    # a folder whose tenant is far smaller than asked (a build that stopped) is refused, not measured
    (keep / str(size)).rename(keep / "4000")
    with pytest.raises(InvalidInput, match="remove that folder"):
        perf.run([4000], DOC2DIAL, SAMPLE, embedder, queries=5, http=False, naive=False, keep=keep,
                 log=lambda _: None)
