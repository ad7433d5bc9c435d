"""The kept-thread, feedback, analytics, upload and edge behaviour of the API over a real knowledge base."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from api.deps import PROBLEM
from api.job_owner import JobOwner
from api.service import Service
from api.store import JobRow
from copilot.errors import InvalidInput
from copilot.settings import Settings
from knowledge.base import KnowledgeBase
from tests.api.conftest import Api, make_api

ROAMING = b"""# Roaming abroad

Roaming in Europe costs a flat daily charge of five pounds for calls, texts and data.

## Turning roaming off

Open Settings, then Mobile data, and switch off data roaming before you travel.
"""


@pytest.fixture
def api(tmp_path: Path, kb: KnowledgeBase) -> Iterator[Api]:
    settings = kb.settings.model_copy(update={"rate_limit": "40/minute", "max_body_bytes": 4096,
                                              "upload_sync_bytes": 2000, "catch_up_after_s": 3600})
    yield from make_api(settings, kb, "acme")


def _upload(api: Api, name: str, data: bytes) -> dict[str, object]:
    response = api.client.post("/v1/knowledge/documents", files={"files": (name, data, "text/markdown")},
                               headers=api.headers("content"))
    assert response.status_code in (200, 201, 202), response.text
    body: dict[str, object] = response.json()
    return body


def test_a_thread_resumed_after_hours_comes_back_with_a_catch_up_summary(api: Api) -> None:
    agent = api.headers("agent")
    api.client.put("/v1/threads/t-7", headers=agent, json={"channel": "sms", "messages": [
        {"id": "1", "role": "customer", "text": "Is roaming in Spain extra?", "ts": "2026-11-20T09:00:00Z"},
        {"id": "2", "role": "agent", "text": "Let me check that for you.", "ts": "2026-11-20T09:01:00Z"}]})

    soon = api.client.post("/v1/threads/t-7/messages", headers=agent, json={"messages": [
        {"id": "3", "role": "customer", "text": "thanks", "ts": "2026-11-20T09:05:00Z"}]})
    later = api.client.post("/v1/threads/t-7/messages", headers=agent, json={"messages": [
        {"id": "4", "role": "customer", "text": "Any news? I fly tomorrow", "ts": "2026-11-20T15:00:00Z"}]})

    assert soon.status_code == later.status_code == 200
    assert soon.json()["catch_up"] is None
    catch_up = later.json()["catch_up"]
    assert catch_up["style"] == "catch_up" and catch_up["status"] == "pending_agent"
    assert "roaming" in catch_up["abstract"].lower()


def test_feedback_and_analytics_count_what_agents_did(api: Api) -> None:
    _upload(api, "roaming.md", ROAMING)
    agent = api.headers("agent")
    thread = {"channel": "webchat", "messages": [{"role": "customer", "text": "how much does roaming cost in Europe?"}]}
    offered = [api.client.post("/v1/suggestions", headers=agent, json={"thread": thread}).json() for _ in range(3)]
    unanswered = api.client.post("/v1/suggestions", headers=agent, json={"thread": {"messages": [
        {"role": "customer", "text": "do you sell pet insurance for hamsters?"}]}}).json()
    assert all(o["answered"] for o in offered) and not unanswered["answered"]
    ids = [o["suggestions"][0]["id"] for o in offered]

    sent = [
        api.client.post("/v1/feedback", headers=agent, json={"suggestion_id": ids[0], "event": "accepted"}),
        api.client.post("/v1/feedback", headers=agent, json={"suggestion_id": ids[1], "event": "edited",
                                                            "final_text": offered[1]["suggestions"][0]["text"] + "!!"}),
        api.client.post("/v1/feedback", headers=agent, json={"suggestion_id": ids[2], "event": "rejected",
                                                            "reason": "outdated"}),
    ]
    assert [r.status_code for r in sent] == [201, 201, 201]
    assert sent[1].json()["edit_distance"] == 2

    report = api.client.get("/v1/analytics", headers=api.headers("qa")).json()
    assert (report["requests"], report["suggestions_shown"], report["accepted"], report["edited"],
            report["rejected"]) == (4, 3, 1, 1, 1)
    assert report["acceptance_rate"] == pytest.approx(2 / 3, abs=1e-3)
    assert report["mean_edit_distance"] == 1.0  # 0 for the accepted one, 2 for the edited one
    assert report["rejection_reasons"] == [{"reason": "outdated", "count": 1}]
    assert report["by_source"]["knowledge"]["suggestions_shown"] == 3
    assert [g["question"] for g in report["knowledge_gaps"]] == ["do you sell pet insurance for hamsters?"]


@pytest.mark.parametrize("body, status, kind", [
    ({"suggestion_id": "sug_nothere", "event": "accepted"}, 404, "not-found"),
    ({"suggestion_id": "sug_x", "event": "liked"}, 422, "invalid-request"),
])
def test_bad_feedback_is_a_problem(api: Api, body: dict[str, str], status: int, kind: str) -> None:
    response = api.client.post("/v1/feedback", headers=api.headers("agent"), json=body)

    assert response.status_code == status
    assert response.headers["content-type"] == PROBLEM and response.json()["type"].endswith(kind)


def test_edited_feedback_needs_the_text_sent_and_rejected_a_reason(api: Api) -> None:
    _upload(api, "roaming.md", ROAMING)
    agent = api.headers("agent")
    offered = api.client.post("/v1/suggestions", headers=agent, json={"thread": {"messages": [
        {"role": "customer", "text": "how much does roaming cost in Europe?"}]}}).json()
    suggestion_id = offered["suggestions"][0]["id"]

    for event in ("edited", "rejected"):
        response = api.client.post("/v1/feedback", headers=agent, json={"suggestion_id": suggestion_id,
                                                                        "event": event})
        assert response.status_code == 422, response.text
    report = api.client.get("/v1/analytics", headers=api.headers("qa")).json()
    assert report["suggestions_shown"] == 0  # refused feedback stored nothing


def test_a_large_upload_runs_as_a_job_with_progress(api: Api) -> None:
    big = ROAMING + b"\n".join(b"Roaming note %d: daily charges apply." % i for i in range(200))
    response = api.client.post("/v1/knowledge/documents", headers=api.headers("content"),
                               files=[("files", ("roaming.md", big, "text/markdown")),
                                      ("files", ("broken.pdf", b"%PDF-1.4 not really", "application/pdf"))])
    assert response.status_code == 202, response.text
    job_id = response.json()["job_id"]
    assert response.headers["location"] == f"/v1/jobs/{job_id}"

    api.service.wait_for_jobs()
    job = api.client.get(f"/v1/jobs/{job_id}", headers=api.headers("content")).json()
    assert (job["status"], job["done"], job["total"], job["progress"]) == ("succeeded", 2, 2, 1.0)
    with api.service.store.session() as session:
        assert session.get(JobRow, job_id).owner == str(JobOwner.current())  # type: ignore[union-attr]
    assert job["result"]["added"] == 1 and job["result"]["failed"][0]["path"] == "broken.pdf"
    found = api.client.get("/v1/knowledge/search", headers=api.headers("agent"), params={"q": "roaming charge"})
    assert found.json()["results"][0]["document_id"] == "roaming.md"


def test_a_second_worker_starting_fails_only_the_jobs_of_gone_processes(api: Api, kb: KnowledgeBase) -> None:
    store = api.service.store
    other_server = subprocess.Popen(["sleep", "120"])
    crashed = subprocess.Popen(["sleep", "0"])
    crashed_owner = JobOwner.of_pid(crashed.pid)
    crashed.wait()
    try:
        jobs = {"this worker's": store.create_job("acme", "ingest", owner=str(api.service.owner)).id,
                "another live server's": store.create_job("acme", "eval",
                                                          owner=str(JobOwner.of_pid(other_server.pid))).id,
                "a crashed worker's": store.create_job("acme", "ingest", owner=str(crashed_owner)).id}
        store.update_job(jobs["another live server's"], status="running", done=1)

        Service(api.service.settings, knowledge=kb).close()  # a second worker (or a restarted one) starts

        status = {name: store.job("acme", job_id).status for name, job_id in jobs.items()}
    finally:
        other_server.kill()
        other_server.wait()
    assert status == {"this worker's": "queued", "another live server's": "running", "a crashed worker's": "failed"}


def test_replacing_a_document_bumps_its_version_and_search_sees_the_new_text(api: Api) -> None:
    _upload(api, "roaming.md", ROAMING)
    content = api.headers("content")

    response = api.client.put("/v1/knowledge/documents/roaming.md", headers=content,
                              files={"file": ("x.md", b"# Roaming abroad\n\nRoaming in Europe is now free.\n")})
    detail = api.client.get("/v1/knowledge/documents/roaming.md", headers=content).json()
    found = api.client.get("/v1/knowledge/search", headers=content, params={"q": "roaming europe"}).json()

    assert response.status_code == 200, response.text
    assert detail["version"] == 2 and [h["action"] for h in detail["history"]] == ["added", "updated"]
    assert "now free" in found["results"][0]["text"]
    assert api.client.delete("/v1/knowledge/documents/roaming.md", headers=content).status_code == 204
    assert api.client.get("/v1/knowledge/documents/roaming.md", headers=content).status_code == 404


@pytest.mark.parametrize("name, data, status", [
    ("../escape.md", ROAMING, 422),
    ("notes.exe", b"MZ", 422),
    ("empty.md", b"", 422),
])
def test_bad_uploads_are_refused_and_store_nothing(api: Api, name: str, data: bytes, status: int) -> None:
    content = api.headers("content")
    response = api.client.post("/v1/knowledge/documents", headers=content, data={"document_id": name},
                               files={"files": ("f", data, "application/octet-stream")})

    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    assert api.client.get("/v1/knowledge/documents", headers=content).json()["documents"] == []


def test_a_document_id_with_a_newline_is_refused_by_its_rule_not_unrouted(api: Api) -> None:
    content = api.headers("content")
    put = api.client.put("/v1/knowledge/documents/notes%0Aevil.md", headers=content,
                         files={"file": ("x.md", ROAMING)})
    got = api.client.get("/v1/knowledge/documents/notes%0Aevil.md", headers=content)

    assert put.status_code == 422 and put.headers["content-type"] == PROBLEM, put.text
    assert "invalid document id" in put.json()["detail"]
    assert got.status_code == 404 and got.json()["type"].endswith("/not-found")
    assert api.client.get("/v1/knowledge/documents", headers=content).json()["documents"] == []


def test_bodies_over_the_limit_are_413_and_wrong_formats_415(api: Api) -> None:
    agent = api.headers("agent")
    huge = {"thread": {"messages": [{"role": "customer", "text": "x" * 5000}]}}

    too_big = api.client.post("/v1/suggestions", headers=agent, json=huge)
    wrong_type = api.client.post("/v1/suggestions", headers={**agent, "content-type": "text/plain"}, content=b"hi")
    not_multipart = api.client.post("/v1/knowledge/documents", headers=api.headers("content"), json={"a": 1})

    assert (too_big.status_code, wrong_type.status_code, not_multipart.status_code) == (413, 415, 415)
    assert too_big.json()["type"].endswith("/too-large")


def test_each_key_is_rate_limited_with_retry_after(api: Api) -> None:
    agent, other = api.headers("agent"), api.headers("content")
    answers = [api.client.get("/v1/threads", headers=agent).status_code for _ in range(41)]

    assert answers[:40] == [200] * 40 and answers[40] == 429
    limited = api.client.get("/v1/threads", headers=agent)
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    assert limited.json()["retry_after"] == int(limited.headers["retry-after"])
    assert api.client.get("/v1/knowledge/documents", headers=other).status_code == 200  # per key, not global


def test_every_write_is_in_the_audit_log_with_its_key_and_request_id(api: Api) -> None:
    agent_key = api.key("agent")
    response = api.client.put("/v1/threads/t-audit", headers=api.headers("agent"), json={"messages": []})
    entries = api.client.get("/v1/audit", headers=api.headers("admin")).json()["entries"]

    key_id = api.service.store.authenticate(agent_key).id  # type: ignore[union-attr]
    assert {"key_id": key_id, "route": "/v1/threads/{thread_id}", "object_id": "t-audit", "outcome": "ok",
            "request_id": response.headers["x-request-id"]}.items() <= entries[0].items()


def test_settings_reject_a_rate_limit_that_does_not_parse(tmp_path: Path, kb: KnowledgeBase) -> None:
    settings: Settings = kb.settings.model_copy(update={"rate_limit": "lots"})
    with pytest.raises(InvalidInput, match="rate such as"):
        next(make_api(settings, kb, "acme"))
