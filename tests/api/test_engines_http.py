"""The engine routes over HTTP on the sample brand: suggestions, the SSE stream, summaries, next actions."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.deps import PROBLEM
from api.schemas import EXAMPLE_THREAD
from copilot.settings import Settings
from knowledge.base import KnowledgeBase
from tests.api.conftest import Api, make_api
from tests.fakellm import FakeLLM


@pytest.fixture
def client(sample_api: Api) -> TestClient:
    sample_api.client.headers.update(sample_api.headers("agent"))
    return sample_api.client


def test_post_suggestions_returns_grounded_suggestions(client: TestClient) -> None:
    response = client.post("/v1/suggestions", json={"thread": EXAMPLE_THREAD})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["engine"] == "grounded" and body["answered"] is True
    assert body["suggestions"][0]["citations"]
    assert body["suggestions"][0]["text"].startswith("Hi Hannah,")


def test_post_summaries_and_next_best_actions(client: TestClient) -> None:
    summary = client.post("/v1/summaries", json={"thread": EXAMPLE_THREAD, "style": "handoff"})
    assert summary.status_code == 200, summary.text
    assert summary.json()["status"] == "pending_agent" and summary.json()["style"] == "handoff"
    actions = client.post("/v1/next-best-actions", json={"thread": EXAMPLE_THREAD})
    assert actions.status_code == 200, actions.text
    assert actions.json()["playbook"]["playbook_id"] == "sim-swap-lost-phone"


@pytest.mark.parametrize("body, status", [
    ({"thread": {**EXAMPLE_THREAD, "tenant": "nobody"}}, 422),  # another tenant's thread
    ({"thread_id": "never-kept"}, 404),
    ({"thread": EXAMPLE_THREAD, "thread_id": "th-1001"}, 422),  # one or the other
    ({}, 422),
    ({"thread": {**EXAMPLE_THREAD, "messages": "no"}}, 422),
    ({"thread": EXAMPLE_THREAD, "n": 0}, 422),
    ({"thread": EXAMPLE_THREAD, "engine": "llm"}, 422),  # not configured
    ({"thread": {**EXAMPLE_THREAD, "messages": []}}, 422),  # nothing to answer
])
def test_bad_requests_are_problems(client: TestClient, body: dict[str, Any], status: int) -> None:
    response = client.post("/v1/suggestions", json=body)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["detail"]


def test_the_stream_sends_deltas_then_the_checked_result(sample_kb: KnowledgeBase, fake_llm: FakeLLM) -> None:
    settings = Settings(data_dir=sample_kb.settings.data_dir, llm_base_url=fake_llm.base_url, llm_model="fake-chat",
                        _env_file=None)  # type: ignore[call-arg]
    fake_llm.responder = lambda body: ("Bar your SIM in the app under Settings > Lost or stolen, any time.\n"
                                       "SOURCES: P1")
    for api in make_api(settings, sample_kb, "brightwave"):
        response = api.client.post("/v1/suggestions/stream", json={"thread": EXAMPLE_THREAD},
                                   headers=api.headers("agent"))
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    events = [block.split("\n", 1) for block in response.text.strip().split("\n\n")]
    kinds = [head.removeprefix("event: ") for head, _ in events]
    assert kinds[-1] == "done" and kinds.count("delta") > 1
    done = json.loads(events[-1][1].removeprefix("data: "))
    assert done["engine"] == "llm" and done["suggestions"][0]["citations"]
