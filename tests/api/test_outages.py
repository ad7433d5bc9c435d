"""Outages: the LLM down, slow or answering errors, the Chroma server or PostgreSQL gone mid-run.

Consoles still get grounded suggestions when the LLM fails; when the index or the database is gone, requests
answer 503 problem+json within their timeout, /readyz turns red, and the service recovers by itself once the
server is back (no restart)."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest
from fastapi.testclient import TestClient

from api.deps import PROBLEM
from api.schemas import EXAMPLE_THREAD
from copilot.settings import Settings
from knowledge.base import KnowledgeBase
from knowledge.embeddings import LocalEmbedder
from tests.api.conftest import Api, make_api
from tests.fakellm import FakeLLM
from tests.servers import ChromaServer, FaultProxy, free_port, postgres_database

pytestmark = pytest.mark.slow

LLM_TIMEOUT_S = 1.0
CHROMA_TIMEOUT_S = 2.0
ARTICLE = b"# Refunds\n\nA refund reaches your card within five working days of the return.\n"


# --- the LLM ---------------------------------------------------------------------------------------------------


def _break(fake_llm: FakeLLM, how: str) -> str:
    """Make the LLM fail as ``how`` says; the base URL the service is to use."""
    if how == "down":
        return f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    if how == "slow":
        fake_llm.delay(LLM_TIMEOUT_S * 5)
    elif how in ("500", "429"):
        for _ in range(10):  # more than the client retries
            fake_llm.fail(int(how), retry_after=0)
    elif how == "invalid-json":
        fake_llm.garbage()
    elif how == "dropped":
        for _ in range(10):  # one dropped connection is retried and answered: every try is dropped here
            fake_llm.drop()
    return fake_llm.base_url


@pytest.mark.parametrize("how", ["down", "slow", "500", "429", "invalid-json", "dropped"])
def test_a_failing_llm_still_gives_grounded_suggestions_within_the_budget(
        sample_kb: KnowledgeBase, fake_llm: FakeLLM, how: str) -> None:
    base_url = _break(fake_llm, how)
    settings = Settings(data_dir=sample_kb.settings.data_dir, llm_base_url=base_url, llm_model="fake-chat",
                        llm_timeout_s=LLM_TIMEOUT_S, _env_file=None)  # type: ignore[call-arg]
    for api in make_api(settings, sample_kb, "brightwave"):
        warm = api.client.post("/v1/suggestions", json={"thread": EXAMPLE_THREAD, "engine": "grounded"},
                               headers=api.headers("agent"))  # the tenant's engines are built: not timed
        assert warm.status_code == 200, warm.text
        started = time.monotonic()
        api.client.post("/v1/suggestions", json={"thread": EXAMPLE_THREAD, "engine": "grounded"},
                        headers=api.headers("agent"))
        grounded_s = time.monotonic() - started  # what the fallback itself costs on this machine now
        started = time.monotonic()
        response = api.client.post("/v1/suggestions", json={"thread": EXAMPLE_THREAD, "engine": "llm"},
                                   headers=api.headers("agent"))
        took = time.monotonic() - started
        _break(fake_llm, how)  # a scripted failure answers one request: script it again for the stream
        stream = api.client.post("/v1/suggestions/stream", json={"thread": EXAMPLE_THREAD, "engine": "llm"},
                                 headers=api.headers("agent"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["engine"] == "grounded" and body["fallback_from"] == "llm"
    assert body["suggestions"] and body["suggestions"][0]["citations"]
    # the budget: the LLM's timeout, then the grounded engine (timed above; doubled for a loaded machine)
    assert took < LLM_TIMEOUT_S + 2 * grounded_s + 1.0, f"the fallback took {took:.1f} s (grounded {grounded_s:.1f})"
    assert stream.status_code == 200
    done = stream.text.strip().split("\n\n")[-1]
    assert done.startswith("event: done"), stream.text[-500:]
    result = json.loads(done.split("data: ", 1)[1])
    assert result["engine"] == "grounded" and result["fallback_from"] == "llm" and result["suggestions"]


# --- the Chroma server -----------------------------------------------------------------------------------------


@pytest.fixture
def chroma(tmp_path: Path) -> Iterator[ChromaServer]:
    """A Chroma server of this test's own: it is stopped and started again."""
    with ChromaServer(tmp_path / "chroma-index") as server:
        yield server


def _api_on(settings: Settings, embedder: LocalEmbedder) -> Iterator[Api]:
    kb = KnowledgeBase(settings, embedder=embedder)
    kb.create_tenant("acme")
    yield from make_api(settings, kb, "acme")


def _upload(api: Api) -> None:
    response = api.client.put("/v1/knowledge/documents/refunds.md", files={"file": ("refunds.md", ARTICLE)},
                              headers=api.headers("content"))
    assert response.status_code == 201, response.text


def _search(api: Api) -> tuple[int, dict[str, object], float]:
    started = time.monotonic()
    response = api.client.get("/v1/knowledge/search", params={"q": "when is my refund back"},
                              headers=api.headers("agent"))
    return response.status_code, response.json(), time.monotonic() - started


def _ready(client: TestClient) -> tuple[int, dict[str, bool]]:
    response = client.get("/readyz")
    return response.status_code, response.json()["checks"]


def _until(check: Callable[[], bool], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "the service did not recover by itself"
        time.sleep(0.2)


@pytest.mark.parametrize("how", ["stopped", "hung"])
def test_the_chroma_server_going_away_answers_503_and_recovers(tmp_path: Path, embedder: LocalEmbedder,
                                                               chroma: ChromaServer, how: str) -> None:
    settings = Settings(data_dir=tmp_path / "data", chroma_url=chroma.url, chroma_timeout_s=CHROMA_TIMEOUT_S,
                        _env_file=None)  # type: ignore[call-arg]
    for api in _api_on(settings, embedder):
        _upload(api)
        assert _search(api)[0] == 200
        assert _ready(api.client) == (200, {"store": True, "index": True, "model": True})

        assert chroma.process is not None
        if how == "stopped":
            chroma.stop()
        else:  # the process is there and its port open, but it answers nothing
            os.kill(chroma.process.pid, signal.SIGSTOP)
        try:
            status, body, took = _search(api)
            assert status == 503, body
            assert body["type"].endswith("service-unavailable") and "vector store" in str(body["detail"])
            assert took < CHROMA_TIMEOUT_S * 2 + 2, f"a search waited {took:.1f} s on a server that is gone"
            assert _ready(api.client)[0] == 503 and _ready(api.client)[1]["index"] is False
            upload = api.client.put("/v1/knowledge/documents/more.md", headers=api.headers("content"),
                                    files={"file": ("more.md", b"# More\n\nAnother page about refunds.\n")})
            assert upload.status_code == 503 and upload.headers["content-type"] == PROBLEM
        finally:
            if how == "stopped":
                chroma.start()
            else:
                os.kill(chroma.process.pid, signal.SIGCONT)

        _until(lambda api=api: _search(api)[0] == 200)
        assert _ready(api.client)[0] == 200
        assert "five working days" in str(_search(api)[1])
        documents = api.client.get("/v1/knowledge/documents", headers=api.headers("content")).json()
        assert [d["document_id"] for d in documents["documents"]] == ["refunds.md"]  # the failed upload left none


# --- PostgreSQL ------------------------------------------------------------------------------------------------


def test_postgresql_going_away_answers_503_and_recovers(tmp_path: Path, embedder: LocalEmbedder) -> None:
    try:
        database = postgres_database()
        url = database.__enter__()
    except Exception as exc:  # no server: skip with the reason, never silently
        pytest.skip(f"no PostgreSQL server: {type(exc).__name__}: {exc}")
    target = urlparse(url.replace("postgresql+psycopg", "postgresql"))
    try:
        with FaultProxy(target.hostname or "127.0.0.1", target.port or 5432) as proxy:
            proxied = url.replace(f"{target.hostname}:{target.port}", f"127.0.0.1:{proxy.port}")
            settings = Settings(data_dir=tmp_path / "data", database_url=proxied,
                                _env_file=None)  # type: ignore[call-arg]
            for api in _api_on(settings, embedder):
                _upload(api)
                assert _search(api)[0] == 200

                proxy.cut()
                status, body, took = _search(api)
                assert status == 503 and "database" in str(body["detail"]), body
                assert took < 10
                kept = api.client.put("/v1/threads/t-1", json={k: v for k, v in EXAMPLE_THREAD.items()
                                                               if k != "tenant"}, headers=api.headers("agent"))
                assert kept.status_code == 503 and kept.headers["content-type"] == PROBLEM
                assert _ready(api.client)[0] == 503 and _ready(api.client)[1]["store"] is False

                proxy.restore()
                _until(lambda api=api: _search(api)[0] == 200)
                assert _ready(api.client)[0] == 200
                assert api.client.get("/v1/threads/t-1", headers=api.headers("agent")).status_code == 404
    finally:
        database.__exit__(None, None, None)
