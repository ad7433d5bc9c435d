"""Learned next-best actions over HTTP: a tenant uploads labelled history, agents see what others did next."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from api.deps import PROBLEM
from api.wiring import Engines
from copilot.settings import Settings
from knowledge.base import KnowledgeBase
from tests.api.conftest import Api, make_api


def _order(number: int, where: str, price: str) -> dict[str, Any]:
    return {"id": f"past-{number}", "messages": [
        {"role": "customer", "text": f"where is my order BW-51720{number}?"},
        {"role": "agent", "text": "Your order was dispatched today with Parcelway and arrives in 2 to 4 working days.",
         "action": "track_order"},
        {"role": "customer", "text": f"thanks. I'm going to {where} next week, what will it cost to use my phone?"},
        {"role": "agent", "text": f"{where} is {price}.", "action": "explain_roaming"}]}


HISTORY = "\n".join(json.dumps(t) for t in [
    _order(1, "Spain", "in Zone 1, included on your plan"), _order(2, "the USA", "in Zone 2, £6 a day"),
    _order(3, "Canada", "in Zone 2, a World Day Pass at £6 a day")]) + "\n"
THREAD = {"channel": "sms", "messages": [
    {"role": "customer", "text": "hi where's my order BW-600112"},
    {"role": "agent", "text": "It was dispatched today with Parcelway and should arrive in 2 to 4 working days."},
    {"role": "customer", "text": "ok. flying to Japan on the 3rd, how much is roaming there?"}]}


@pytest.fixture
def api(settings: Settings, kb: KnowledgeBase) -> Iterator[Api]:
    yield from make_api(settings, kb, "acme")


def _upload(api: Api, name: str, body: str) -> Any:
    return api.client.post("/v1/knowledge/documents", headers=api.headers("content"),
                           files={"files": (name, body.encode("utf-8"))})


def test_post_next_best_actions_shows_what_agents_did_next_for_a_tenant_with_history(api: Api) -> None:
    before = api.client.post("/v1/next-best-actions", json={"thread": THREAD}, headers=api.headers("agent"))
    assert before.status_code == 200, before.text
    assert before.json()["actions"] == []

    uploaded = _upload(api, "support.history.jsonl", HISTORY)
    assert uploaded.status_code == 201, uploaded.text

    after = api.client.post("/v1/next-best-actions", json={"thread": THREAD}, headers=api.headers("agent"))
    assert after.status_code == 200, after.text
    body = after.json()
    assert body["playbook"] is None
    [learned] = body["actions"]
    assert {k: learned[k] for k in ("kind", "action", "title", "playbook_id", "step_id", "preconditions_met")} == {
        "kind": "learned", "action": "explain_roaming", "title": "Explain roaming", "playbook_id": None,
        "step_id": None, "preconditions_met": True}
    assert learned["reason"].startswith("Agents did this next in 3 of the 3 most similar past threads (closest: past-")
    assert 0 < learned["confidence"] <= 1


def test_upload_history_with_a_bad_line_is_a_problem_naming_it(api: Api) -> None:
    response = _upload(api, "support.history.jsonl", HISTORY + '{"messages": [{"role": "customer", "text": "hi", '
                                                              '"action": "greet"}]}\n')

    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    assert "labelled history line 4:" in response.json()["detail"]
    assert "customer message carries no action" in response.json()["detail"]


def test_engines_embed_the_history_once_per_version_of_its_threads(settings: Settings, kb: KnowledgeBase,
                                                                   tmp_path: Path) -> None:
    engines = Engines(kb, settings)
    content = tmp_path / "content"
    content.mkdir()
    history = content / "support.history.jsonl"
    history.write_text(HISTORY, encoding="utf-8")
    kb.ingest("acme", [content])
    first = engines.history("acme", kb.profile("acme"))

    (content / "roaming.md").write_text("# Roaming\n\nZone 2 costs £6 a day.\n", encoding="utf-8")
    kb.ingest("acme", [content])  # a new knowledge version, the same threads
    assert engines.history("acme", kb.profile("acme"))[1] is first[1]

    history.write_text(HISTORY + json.dumps(_order(4, "Mexico", "in Zone 2")) + "\n", encoding="utf-8")
    kb.ingest("acme", [content])
    changed = engines.history("acme", kb.profile("acme"))
    assert changed[0] != first[0] and changed[1] is not first[1]
    assert changed[1] is not None and len(changed[1].thread_ids) == 4
