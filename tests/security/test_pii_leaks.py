"""Personal data a customer writes never reaches the logs nor the LLM, whatever route carries the thread.

A thread with a canary card number (Luhn-valid, with and without spaces), a canary email and a phone number
goes through every route that takes a thread, over HTTP on the real app whose llm engine is a FakeLLM on
loopback. Then every log record (raw, as caplog sees it, and the app's own JSON lines) and every request the
fake received are searched for the canaries. The answers to the agent may carry them; logs and LLM requests
may not.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from knowledge.base import KnowledgeBase
from knowledge.embeddings import LocalEmbedder
from tests.api.conftest import Api, make_api
from tests.fakellm import FakeLLM
from tests.security.conftest import CORPUS, CapturedLogs, llm_settings, passages_in

TENANT = "acme"
CARD = "4111 1111 1111 1111"
EMAIL = "canary.7c1f@example.org"
PHONE = "+44 7700 900461"
CANARIES = {
    "card": re.compile(r"4111[\s.-]*1111[\s.-]*1111[\s.-]*1111"),
    "email": re.compile(r"canary\.7c1f", re.IGNORECASE),
    "phone": re.compile(r"7700[\s.-]*900[\s.-]*461"),
}


def canary_thread(thread_id: str = "t-canary") -> dict[str, Any]:
    return {"id": thread_id, "channel": "webchat", "customer": {"name": "Maya Patel", "locale": "en-GB"},
            "messages": [
                {"id": "m1", "role": "customer", "ts": "2026-11-20T09:00:00Z",
                 "text": f"Hi, I was charged twice on my card {CARD} this month. Can I get a refund?"},
                {"id": "m2", "role": "agent", "ts": "2026-11-20T09:01:00Z",
                 "text": "Sorry about that. Which email is on your account?"},
                {"id": "m3", "role": "customer", "ts": "2026-11-20T09:02:00Z",
                 "text": f"It's {EMAIL}, and the card again is {CARD.replace(' ', '')}. Call me on {PHONE} "
                         "if needed. How long do refunds take?"}]}


def cooperative_model(body: dict[str, Any]) -> str:
    """A well-behaved model: a summary sentence, or the first sentence of the first passage, cited."""
    system = str(body["messages"][0]["content"])
    if "summarise" in system:
        return "The customer was charged twice and asked how long a refund takes."
    passages = passages_in(body)
    if not passages:
        return json.dumps({"answerable": False, "suggestions": [{"text": "Could you tell me more?", "citations": []}]})
    pid, text = next(iter(passages.items()))
    sentence = text.split(". ")[0].rstrip(".") + "."
    if body.get("stream"):
        return f"{sentence}\nSOURCES: {pid}"
    return json.dumps({"answerable": True, "suggestions": [{"text": sentence, "citations": [pid]}]})


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, embedder: LocalEmbedder, module_llm: FakeLLM) -> Iterator[Api]:
    settings = llm_settings(tmp_path_factory.mktemp("pii") / "data", module_llm, catch_up_after_s=60.0)
    kb = KnowledgeBase(settings, embedder=embedder)
    kb.create_tenant(TENANT)
    report = kb.ingest(TENANT, [CORPUS / "benign"])
    assert not report.failed, report.failed
    yield from make_api(settings, kb, TENANT)


@pytest.fixture
def fake(module_llm: FakeLLM) -> FakeLLM:
    module_llm.requests.clear()
    module_llm.responder = cooperative_model
    assert module_llm.pending == 0
    return module_llm


def _ok(response: Any, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


# Each exchange sends the canary thread through routes and checks they did their work (so the search below
# is not vacuous); it returns how many chat requests the fake must have received at least.

def suggestions_llm(api: Api, fake: FakeLLM) -> int:
    body = _ok(api.client.post("/v1/suggestions", headers=api.headers(), json={"thread": canary_thread(),
                                                                               "engine": "llm"}))
    assert body["engine"] == "llm" and body["suggestions"][0]["source"] == "llm", body
    return 1


def suggestions_grounded(api: Api, fake: FakeLLM) -> int:
    body = _ok(api.client.post("/v1/suggestions", headers=api.headers(), json={"thread": canary_thread(),
                                                                               "engine": "grounded"}))
    assert body["engine"] == "grounded" and body["suggestions"], body
    return 0


def suggestions_stream(api: Api, fake: FakeLLM) -> int:
    response = api.client.post("/v1/suggestions/stream", headers=api.headers(), json={"thread": canary_thread()})
    assert response.status_code == 200, response.text
    done = json.loads(response.text.strip().split("\n\n")[-1].split("\n", 1)[1].removeprefix("data: "))
    assert done["engine"] == "llm", done
    return 1


def summaries_every_style(api: Api, fake: FakeLLM) -> int:
    for style in ("catch_up", "handoff", "after_contact"):
        body = _ok(api.client.post("/v1/summaries", headers=api.headers(),
                                   json={"thread": canary_thread(), "style": style, "engine": "llm"}))
        assert body["engine"] == "llm", body
    return 3


def next_best_actions(api: Api, fake: FakeLLM) -> int:
    _ok(api.client.post("/v1/next-best-actions", headers=api.headers(), json={"thread": canary_thread()}))
    return 0


def kept_thread_resumed_hours_later(api: Api, fake: FakeLLM) -> int:
    thread = canary_thread("t-kept")
    first, last = thread["messages"][:2], thread["messages"][2:]
    _ok(api.client.put("/v1/threads/t-kept", headers=api.headers(),
                       json={"channel": "webchat", "customer": thread["customer"], "messages": first}))
    later = [{**last[0], "ts": "2026-11-20T15:00:00Z"}]
    appended = _ok(api.client.post("/v1/threads/t-kept/messages", headers=api.headers(), json={"messages": later}))
    assert appended["catch_up"] and appended["catch_up"]["engine"] == "llm", appended  # the LLM wrote it
    _ok(api.client.get("/v1/threads/t-kept", headers=api.headers()))
    listed = _ok(api.client.get("/v1/threads", headers=api.headers()))
    assert not any(p.search(json.dumps(listed)) for p in CANARIES.values())  # the queue preview is masked
    suggested = _ok(api.client.post("/v1/suggestions", headers=api.headers(), json={"thread_id": "t-kept"}))
    assert suggested["engine"] == "llm", suggested
    _ok(api.client.post("/v1/summaries", headers=api.headers(), json={"thread_id": "t-kept"}))
    return 3


def feedback_with_the_sent_text(api: Api, fake: FakeLLM) -> int:
    offered = _ok(api.client.post("/v1/suggestions", headers=api.headers(), json={"thread": canary_thread()}))
    suggestion_id = offered["suggestions"][0]["id"]
    _ok(api.client.post("/v1/feedback", headers=api.headers(), json={
        "suggestion_id": suggestion_id, "event": "edited",
        "final_text": f"Refund on {CARD} sent, receipt to {EMAIL}, we'll call {PHONE}."}), 201)
    _ok(api.client.post("/v1/feedback", headers=api.headers(), json={
        "suggestion_id": suggestion_id, "event": "rejected", "reason": f"customer {EMAIL} wanted a call"}), 201)
    return 1


def eval_run_with_the_llm(api: Api, fake: FakeLLM) -> int:
    accepted = _ok(api.client.post("/v1/evals", headers=api.headers("qa"), json={
        "name": "pii-canary", "engine": "llm",
        "cases": [{"id": "canary", "thread": canary_thread(), "expect": {"documents": ["refunds.md"]}}]}), 202)
    api.service.wait_for_jobs()
    run = _ok(api.client.get(f"/v1/evals/{accepted['id']}", headers=api.headers("qa")))
    assert run["status"] == "succeeded", run
    return 1


def llm_failures_and_fallbacks(api: Api, fake: FakeLLM) -> int:
    for _ in range(3):
        fake.fail(500, retry_after=0)
    fell_back = _ok(api.client.post("/v1/suggestions", headers=api.headers(), json={"thread": canary_thread()}))
    assert fell_back["fallback_from"] == "llm", fell_back
    fake.garbage(f"not JSON, and it quotes {CARD}")
    fake.reply(f"Your card {CARD} was refunded, mail {EMAIL}.")  # a model that invents personal data
    _ok(api.client.post("/v1/suggestions", headers=api.headers(), json={"thread": canary_thread()}))
    _ok(api.client.post("/v1/summaries", headers=api.headers(), json={"thread": canary_thread()}))
    return 5


def refused_requests(api: Api, fake: FakeLLM) -> int:
    bad_role = canary_thread()
    bad_role["messages"][0]["role"] = f"hacker {EMAIL}"
    assert api.client.post("/v1/suggestions", headers=api.headers(), json={"thread": bad_role}).status_code == 422
    wrong_tenant = {**canary_thread(), "tenant": "someone-else"}
    assert api.client.post("/v1/summaries", headers=api.headers(), json={"thread": wrong_tenant}).status_code == 422
    assert api.client.post("/v1/suggestions", headers={"Authorization": f"Bearer {CARD}"},
                           json={"thread": canary_thread()}).status_code == 401
    return 0


EXCHANGES: list[Callable[[Api, FakeLLM], int]] = [
    suggestions_llm, suggestions_grounded, suggestions_stream, summaries_every_style, next_best_actions,
    kept_thread_resumed_hours_later, feedback_with_the_sent_text, eval_run_with_the_llm, llm_failures_and_fallbacks,
    refused_requests,
]


@pytest.mark.parametrize("exchange", EXCHANGES, ids=[e.__name__ for e in EXCHANGES])
def test_personal_data_is_in_no_log_line_and_no_llm_request(api: Api, fake: FakeLLM, captured_logs: CapturedLogs,
                                                             exchange: Callable[[Api, FakeLLM], int]) -> None:
    least_chat_requests = exchange(api, fake)

    chats = fake.chat_requests
    assert len(chats) >= least_chat_requests
    if least_chat_requests:  # the thread did reach the model, masked
        assert any("[card]" in r.prompt and "[email]" in r.prompt for r in chats), [r.prompt for r in chats]
    sent = "\n".join(json.dumps({"path": r.path, "headers": r.headers, "body": r.body}) for r in fake.requests)
    logged = captured_logs.everything()
    assert captured_logs.json_lines(), "the app logged nothing: the capture is not wired"
    assert any(line.get("route") for line in captured_logs.json_lines())  # access lines came through
    for kind, canary in CANARIES.items():
        assert not canary.search(sent), f"the {kind} reached the LLM: {canary.search(sent)}"
        found = canary.search(logged)
        assert found is None, f"the {kind} is in the logs: ...{logged[max(0, found.start() - 300):found.end() + 100]}"


def test_the_capture_would_see_personal_data_if_it_were_logged(api: Api, captured_logs: CapturedLogs) -> None:
    """The search above is not blind: a record that carries a canary is found in the raw records, and the
    app's JSON handler masks it."""
    import logging

    logging.getLogger("copilot.test").warning("card %s for %s", CARD, EMAIL, extra={"phone": PHONE})
    raw = "\n".join(captured_logs.raw.lines)
    assert CANARIES["card"].search(raw) and CANARIES["email"].search(raw) and CANARIES["phone"].search(raw)
    line = captured_logs.json_lines()[-1]
    assert line["message"] == "card [card] for [email]" and line["phone"] == "[phone]"


def test_canary_patterns_match_what_the_thread_holds() -> None:
    text = json.dumps(canary_thread())
    assert all(p.search(text) for p in CANARIES.values())
    assert CANARIES["card"].search(CARD.replace(" ", "")) and CANARIES["card"].search(CARD.replace(" ", "-"))
