"""The HTTP API over a real knowledge base: health, readiness, knowledge search and problem+json errors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.deps import PROBLEM
from copilot.settings import Settings
from knowledge.base import KnowledgeBase
from tests.api.conftest import Api, make_api

ARTICLE = """# Roaming abroad

Roaming in Europe costs a flat daily charge of five pounds for calls, texts and data.

## Turning roaming off

Open Settings, then Mobile data, and switch off data roaming before you travel.
"""
FAQ = "question,answer\nCan I keep my number when I switch?,\"Yes, ask your old provider for a PAC code.\"\n"


@pytest.fixture
def api(settings: Settings, kb: KnowledgeBase, tmp_path: Path) -> Iterator[Api]:
    content = tmp_path / "content"
    content.mkdir()
    (content / "roaming.md").write_text(ARTICLE, encoding="utf-8")
    (content / "faq.csv").write_text(FAQ, encoding="utf-8")
    assert kb.ingest("acme", [content]).failed == []
    yield from make_api(settings, kb, "acme")


@pytest.fixture
def client(api: Api) -> TestClient:
    """A client whose requests carry an agent key of tenant acme."""
    api.client.headers.update(api.headers("agent"))
    return api.client


def test_get_healthz_returns_ok(client: TestClient) -> None:
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_get_readyz_reports_every_check_ready(client: TestClient) -> None:
    response = client.get("/readyz")

    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["checks"]) == ("ready", {"store": True, "index": True, "model": True})
    assert body["schema_revision"]


def test_search_knowledge_returns_best_passages_first(client: TestClient) -> None:
    response = client.get("/v1/knowledge/search",
                          params={"q": "how do I stop data charges abroad", "k": 2})

    assert response.status_code == 200
    results = response.json()["results"]
    assert 1 <= len(results) <= 2
    top = results[0]
    assert set(top) == {"document_id", "title", "section", "text", "score", "source", "kind"}
    assert (top["document_id"], top["title"], top["kind"]) == ("roaming.md", "Roaming abroad", "article")
    assert top["source"].endswith("roaming.md")
    assert [r["score"] for r in results] == sorted((r["score"] for r in results), reverse=True)


def test_search_knowledge_finds_faq_answer(client: TestClient) -> None:
    response = client.get("/v1/knowledge/search", params={"q": "keep my phone number"})

    assert response.status_code == 200
    top = response.json()["results"][0]
    assert (top["kind"], top["section"]) == ("faq", "Can I keep my number when I switch?")


def test_search_knowledge_without_a_key_is_401_problem(api: Api) -> None:
    response = api.client.get("/v1/knowledge/search", params={"q": "roaming"})

    assert response.status_code == 401
    assert response.headers["content-type"].startswith(PROBLEM)
    assert response.headers["www-authenticate"] == "Bearer"
    body = response.json()
    assert body["type"].endswith("/not-authenticated")
    assert body["status"] == 401
    assert body["instance"] == "/v1/knowledge/search"
    assert body["request_id"] == response.headers["x-request-id"]


def test_search_knowledge_missing_query_is_422(client: TestClient) -> None:
    response = client.get("/v1/knowledge/search", params={})

    body = response.json()
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert body["type"].endswith("/invalid-request")
    assert any(error["loc"] == ["query", "q"] for error in body["errors"])
    assert "q" in body["detail"]


@pytest.mark.parametrize("params", [
    {"q": ""},
    {"q": "roaming", "k": 0},
    {"q": "roaming", "k": 51},
    {"q": "x" * 2001},
])
def test_search_knowledge_invalid_parameters_are_422(client: TestClient, params: dict[str, str | int]) -> None:
    response = client.get("/v1/knowledge/search", params=params)

    assert response.status_code == 422


def test_search_knowledge_blank_query_is_422_problem(client: TestClient) -> None:
    response = client.get("/v1/knowledge/search", params={"q": "   "})

    assert response.status_code == 422
    assert response.headers["content-type"].startswith(PROBLEM)
    assert response.json()["type"].endswith("/invalid-input")


def test_openapi_documents_search_endpoint(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()

    parameters = {p["name"] for p in schema["paths"]["/v1/knowledge/search"]["get"]["parameters"]}
    assert parameters == {"q", "k"}
