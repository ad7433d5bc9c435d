"""A whole console session over real HTTP: `copilot serve` (uvicorn) on loopback, the `copilot` command
line for the tenant and its keys, then only what the OpenAPI document describes."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import SAMPLE
from tests.serve import COPILOT, served

pytestmark = pytest.mark.slow


def _cli(env: dict[str, str], *args: str) -> dict[str, object]:
    done = subprocess.run([*COPILOT, *args, "--json"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    data = tmp_path_factory.mktemp("e2e") / "data"
    # uploads over 1 KiB run as a job: the sample brand takes the path a content owner's large upload takes
    env = {**os.environ, "COPILOT_DATA_DIR": str(data), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "COPILOT_UPLOAD_SYNC_BYTES": "1024"}
    env.pop("COPILOT_LLM_BASE_URL", None)
    with served(env, data.parent / "server.log") as base:
        yield base, env


def _upload_sample(client: httpx.Client) -> None:
    files = [path for path in sorted(SAMPLE.rglob("*")) if path.is_file() and not {"threads", "evals"} & set(path.parts)
             and not path.name.startswith((".", "README"))]
    payload = [("files", (path.name, path.read_bytes(), "application/octet-stream")) for path in files]
    ids = [("document_id", path.relative_to(SAMPLE).as_posix()) for path in files]
    response = client.post("/v1/knowledge/documents", files=payload, data={"document_id": [i for _, i in ids]})
    assert response.status_code == 202, response.text
    job_url = response.headers["location"]
    deadline = time.monotonic() + 300
    while (job := client.get(job_url).json())["status"] not in ("succeeded", "failed"):
        assert time.monotonic() < deadline, f"ingestion still {job['status']} after 300 s: {job}"
        time.sleep(0.3)
    assert job["status"] == "succeeded" and not job["result"]["failed"], job
    assert job["done"] == job["total"] == len(files)


def test_a_console_session_from_tenant_to_analytics(server: tuple[str, dict[str, str]]) -> None:
    base, env = server
    assert _cli(env, "tenants", "create", "brightwave") == {"tenant": "brightwave"}
    keys = {role: _cli(env, "keys", "create", "--tenant", "brightwave", "--role", role)
            for role in ("agent", "content", "qa")}
    assert set(keys["agent"]) == {"id", "key", "tenant", "role"}

    def client(role: str) -> httpx.Client:
        return httpx.Client(base_url=base, timeout=60, headers={"Authorization": f"Bearer {keys[role]['key']}"})

    with client("content") as content, client("agent") as agent, client("qa") as qa:
        _upload_sample(content)
        assert content.get("/v1/brand-voice").json()["name"]

        kept = agent.put("/v1/threads/wa-5521", json={
            "channel": "whatsapp", "customer": {"name": "Maya Lopez", "id": "C-20391"},
            "messages": [{"id": "m1", "role": "customer", "text": "Hi, I was charged twice for my bill this month",
                          "ts": "2026-11-25T09:00:00Z"}]})
        assert kept.status_code == 200, kept.text
        appended = agent.post("/v1/threads/wa-5521/messages", json={"messages": [
            {"id": "m2", "role": "customer", "text": "both payments were £35", "ts": "2026-11-25T09:00:20Z"}]})
        retried = agent.post("/v1/threads/wa-5521/messages", json={"messages": [
            {"id": "m2", "role": "customer", "text": "both payments were £35", "ts": "2026-11-25T09:00:20Z"}]})
        assert (appended.json()["added"], retried.json()["duplicates"]) == (["m2"], ["m2"])
        assert len(agent.get("/v1/threads/wa-5521").json()["thread"]["messages"]) == 2

        offered = agent.post("/v1/suggestions", json={"thread_id": "wa-5521", "n": 3})
        assert offered.status_code == 200, offered.text
        suggestion = offered.json()["suggestions"][0]
        assert offered.json()["answered"] and suggestion["citations"]
        assert offered.headers["x-request-id"]

        edited_text = suggestion["text"] + " I've raised a refund request for the second payment."
        for event in ({"event": "shown"}, {"event": "edited", "final_text": edited_text}):
            sent = agent.post("/v1/feedback", json={"suggestion_id": suggestion["id"], **event})
            assert sent.status_code == 201, sent.text

        summary = agent.post("/v1/summaries", json={"thread_id": "wa-5521", "style": "handoff"}).json()
        assert summary["status"] == "pending_agent" and summary["intent"]["name"] == "billing_dispute"
        actions = agent.post("/v1/next-best-actions", json={"thread_id": "wa-5521"}).json()
        assert actions["playbook"]["playbook_id"] == "refund-double-charge"

        report = qa.get("/v1/analytics").json()
        assert (report["suggestions_shown"], report["edited"], report["acceptance_rate"]) == (1, 1, 1.0)
        assert report["mean_edit_distance"] == len(edited_text) - len(suggestion["text"])
        assert report["by_intent"]["billing_dispute"]["edited"] == 1

        metrics = httpx.get(f"{base}/metrics").text
        assert 'copilot_http_requests_total{method="POST",route="/v1/suggestions",status="200"} 1.0' in metrics


def test_qa_turns_feedback_into_a_suite_and_runs_it_against_the_server(
        server: tuple[str, dict[str, str]], tmp_path: Path) -> None:
    """After the console session above: the edited suggestion becomes a case whose reference is the text the
    agent sent, and the suite runs over HTTP with an agent key, as a QA team runs it against a deployment."""
    base, env = server
    made = _cli(env, "eval", "from-feedback", "--tenant", "brightwave", "--out", str(tmp_path / "fb.jsonl"))
    assert made["cases"] == 1
    case = json.loads((tmp_path / "fb.jsonl").read_text().splitlines()[1])
    assert case["expect"]["reference"].endswith("I've raised a refund request for the second payment.")
    assert case["thread"]["messages"][-1]["text"] == "both payments were £35"
    key = _cli(env, "keys", "create", "--tenant", "brightwave", "--role", "agent")["key"]
    sample = (SAMPLE / "evals" / "suite.jsonl").read_text().splitlines()
    subset = tmp_path / "subset.jsonl"
    meta = json.loads(sample[0])
    meta["suite"].update(knowledge=None, thresholds={})  # the server's knowledge; the full suite's gates do not apply
    subset.write_text("\n".join([json.dumps(meta), *sample[1:5]]))

    for suite in (tmp_path / "fb.jsonl", subset):
        done = subprocess.run([*COPILOT, "eval", "run", str(suite), "--url", base, "--key", str(key), "--out",
                               str(tmp_path / suite.stem), "--json"], env=env, capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, done.stderr
        run = json.loads((tmp_path / suite.stem / "run.json").read_text())
        assert run["target"] == base and run["errors"] == 0
        assert (tmp_path / suite.stem / "report.html").stat().st_size > 1000
    assert run["cases"][0]["outputs"]["suggestions"] and "retrieval_hit_at_k" in run["metrics"]
