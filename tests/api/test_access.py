"""Who may call what, and a key sees its own tenant only.

Every /v1 route is in ``ROUTES`` with a valid request and the roles that may make it; a route added to the
app without an entry here fails ``test_every_route_has_an_access_entry``. Each route is then called with no
key, a bad key, each refused role (403, nothing stored changes) and each allowed role (2xx). Two tenants,
acme and globex, each hold a thread, a suggestion, a job, documents, a brand voice, macros and playbooks:
every id of one tenant answers 404 to the other's keys, and no answer to one tenant carries the other's data.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from sqlalchemy import text

from api.deps import PROBLEM
from api.store import hash_key
from copilot.settings import Settings
from knowledge.base import KnowledgeBase
from knowledge.embeddings import LocalEmbedder
from tests.api.conftest import Api, make_api
from tests.fakellm import FakeLLM

if TYPE_CHECKING:
    from httpx2 import Response  # what starlette's TestClient answers with

ROLES = ("agent", "content", "qa", "admin")


# --- the two tenants' content -------------------------------------------------------------------------------


@dataclass(frozen=True)
class TenantContent:
    """What one tenant holds; every string in ``secrets`` appears in this tenant's data and nowhere else."""

    name: str
    customer: str
    question: str             # the kept thread's customer message
    put_target_question: str  # the second kept thread, whose id the other tenant PUTs to
    unanswered: str           # a question the knowledge does not answer (a knowledge gap)
    article_title: str
    article: str
    faq_question: str
    faq_answer: str
    voice_name: str
    banned_phrase: str
    macro_title: str
    macro_text: str
    playbook_name: str
    playbook_description: str  # what the kept thread is about, so that next-best actions pick the playbook
    search_topic: str          # a query this tenant's knowledge answers

    @property
    def thread_id(self) -> str:
        return f"{self.name}-thread"

    @property
    def put_target_thread(self) -> str:
        return f"{self.name}-put-target"

    @property
    def scratch_thread(self) -> str:
        return f"{self.name}-scratch"

    @property
    def article_id(self) -> str:
        return f"{self.name}-article.md"

    @property
    def put_target_document(self) -> str:
        return f"{self.name}-put-target.md"

    @property
    def macro_id(self) -> str:
        return f"{self.name}-macro"

    @property
    def put_target_macro(self) -> str:
        return f"{self.name}-put-target"

    @property
    def playbook_id(self) -> str:
        return f"{self.name}-playbook"

    @property
    def put_target_playbook(self) -> str:
        return f"{self.name}-put-target"

    @property
    def secrets(self) -> list[str]:
        return [self.customer, self.question, self.put_target_question, self.unanswered, self.article_title,
                self.faq_answer, self.voice_name, self.macro_title, self.macro_text, self.playbook_name]

    def voice(self) -> dict[str, Any]:
        return {"kind": "brand_voice", "name": self.voice_name, "tone": ["warm", "clear"],
                "greeting": {"default": "Hi {customer_name},"}, "sign_off": {"default": f"Thanks, {self.voice_name}"},
                "banned_phrases": [{"phrase": self.banned_phrase, "replacement": "please"}],
                "emoji": {"default": "none"}}

    def macros(self) -> dict[str, Any]:
        return {"kind": "macros", "macros": [
            {"id": self.macro_id, "title": self.macro_title, "intent": "question", "channels": ["all"],
             "text": self.macro_text},
            {"id": self.put_target_macro, "title": f"{self.voice_name} put target", "channels": ["all"],
             "text": f"{self.macro_text} (the copy another tenant writes over)"}]}

    def playbook(self, playbook_id: str, name: str) -> dict[str, Any]:
        return {"kind": "playbook", "id": playbook_id, "name": name, "trigger_intents": ["question"],
                "description": self.playbook_description,
                "steps": [{"id": "acknowledge", "action": "empathise", "title": "Acknowledge", "preconditions": [],
                           "cues": ["sorry"]},
                          {"id": "answer", "action": "inform_customer", "title": "Answer",
                           "preconditions": ["acknowledge"], "cues": ["here is"]}]}

    def thread_body(self, text_: str, message_id: str = "m1") -> dict[str, Any]:
        return {"channel": "webchat", "customer": {"name": self.customer, "id": f"C-{self.name}"},
                "messages": [{"id": message_id, "role": "customer", "text": text_}]}


ACME = TenantContent(
    name="acme", customer="Hannah Acmeworth",
    question="I am flying to Lisbon next week, how much does roaming cost per day?",
    put_target_question="Can I move my eSIM to my new tablet?",
    unanswered="Do you insure pet llamas against sunburn?",
    article_title="Roaming abroad with Acme",
    article="Roaming in Europe costs a flat daily charge of five pounds for calls, texts and data.\n\n"
            "## Turning roaming off\n\nOpen Settings, then Mobile data, and switch off data roaming.\n",
    faq_question="Can I keep my number when I switch?",
    faq_answer="Yes, ask your old provider for a PAC code and give it to us within 30 days.",
    voice_name="Acme Mobile", banned_phrase="kindly",
    macro_title="Acme day pass price", macro_text="An Acme Day Pass costs five pounds for each day abroad.",
    playbook_name="Acme roaming question",
    playbook_description="The customer asks what roaming abroad costs per day before flying to another country.",
    search_topic="how much does roaming in Europe cost per day",
)
GLOBEX = TenantContent(
    name="globex", customer="Gregor Globexley",
    question="My hoverboard stopped charging, can I send it back for a refund?",
    put_target_question="Does the hoverboard warranty cover the wheels?",
    unanswered="Can you deliver a hoverboard to the moon base?",
    article_title="Returning a Globex hoverboard",
    article="Return a hoverboard within 30 days of delivery for a full refund. Print the prepaid label from "
            "your order page and drop the parcel at any post office.\n",
    faq_question="Do hoverboards come with a warranty?",
    faq_answer="Every hoverboard has a two-year warranty covering the battery and the motor.",
    voice_name="Globex Gadgets", banned_phrase="no worries",
    macro_title="Globex return label", macro_text="Print your prepaid Globex return label from the order page.",
    playbook_name="Globex hoverboard return",
    playbook_description="The customer's hoverboard stopped charging and they want to send it back for a refund.",
    search_topic="can I return my hoverboard for a refund",
)
TENANTS = {t.name: t for t in (ACME, GLOBEX)}
OTHER = {"acme": GLOBEX, "globex": ACME}


# --- the module's world: both tenants ingested, an API over them, their objects ---------------------------


@dataclass
class Objects:
    """Ids the setup made through the API for one tenant."""

    suggestion_id: str
    suggestion_text: str
    job_id: str
    key_id: str      # a live agent key, the target of the other tenant's revoke
    key_secret: str
    eval_run_id: str


@dataclass
class World:
    api: Api
    objects: dict[str, Objects] = field(default_factory=dict)

    def headers(self, role: str, tenant: str) -> dict[str, str]:
        return self.api.headers(role, tenant)

    def send(self, call: Call, headers: dict[str, str] | None) -> Response:
        return self.api.client.request(call.method, call.url, json=call.json, params=call.params,
                                       files=call.files, headers=headers)

    def secrets(self, tenant: str) -> list[str]:
        return [*TENANTS[tenant].secrets, self.objects[tenant].suggestion_text]

    def snapshot(self, tenant: str) -> dict[str, Any]:
        """What a refused request must leave as it was: documents (with versions, so brand voice, macros and
        playbooks too), keys, threads, and the counts of recorded suggestions, feedback, messages and jobs."""
        service = self.api.service
        service.wait_for_jobs()
        with service.store.engine.connect() as connection:
            counts = {table: connection.execute(text(f"select count(*) from {table} where tenant = :t"),
                                                {"t": tenant}).scalar_one()
                      for table in ("suggestion_sets", "suggestions", "feedback", "messages", "jobs",
                                    "eval_runs")}
        return {"documents": [(r.document_id, r.version) for r in service.kb.documents(tenant)],
                "keys": [(k.id, k.revoked_at) for k in service.store.keys(tenant)],
                "threads": [(i, n, u) for i, _, n, u in service.store.threads(tenant, 500)],
                **counts}


@dataclass(frozen=True)
class Call:
    method: str
    url: str
    json: Any = None
    params: dict[str, Any] | None = None
    files: Any = None


def _ok(response: Response) -> Response:
    assert 200 <= response.status_code < 300, (response.request.method, response.request.url, response.text)
    return response


def _write_content(root: Path, t: TenantContent) -> Path:
    folder = root / t.name
    (folder / "playbooks").mkdir(parents=True)
    (folder / t.article_id).write_text(f"# {t.article_title}\n\n{t.article}", encoding="utf-8")
    (folder / t.put_target_document).write_text(f"# {t.voice_name} eSIM setup\n\nScan the QR code in the app.\n",
                                                encoding="utf-8")
    (folder / f"{t.name}-faq.csv").write_text(f'question,answer\n{t.faq_question},"{t.faq_answer}"\n',
                                              encoding="utf-8")
    (folder / "brand-voice.yaml").write_text(yaml.safe_dump(t.voice()), encoding="utf-8")
    (folder / "macros.yaml").write_text(yaml.safe_dump(t.macros()), encoding="utf-8")
    for playbook_id, name in ((t.playbook_id, t.playbook_name), (t.put_target_playbook, f"{t.voice_name} target")):
        (folder / "playbooks" / f"{playbook_id}.yaml").write_text(yaml.safe_dump(t.playbook(playbook_id, name)),
                                                                  encoding="utf-8")
    return folder


def _upload_text(t: TenantContent) -> str:
    return f"# {t.voice_name} uploads\n\nAny upload is large: it is ingested as a job.\n"


def _make_objects(api: Api, t: TenantContent) -> Objects:
    agent, content = api.headers("agent", t.name), api.headers("content", t.name)
    client = api.client
    for thread_id, question in ((t.thread_id, t.question), (t.put_target_thread, t.put_target_question),
                                (t.scratch_thread, t.question)):
        _ok(client.put(f"/v1/threads/{thread_id}", json=t.thread_body(question), headers=agent))
    suggestions = _ok(client.post("/v1/suggestions", json={"thread_id": t.thread_id, "engine": "grounded"},
                                  headers=agent)).json()["suggestions"]
    _ok(client.post("/v1/feedback", json={"suggestion_id": suggestions[0]["id"], "event": "accepted"},
                    headers=agent))
    gap = {"thread": {**t.thread_body(t.unanswered), "id": f"{t.name}-gap"}, "engine": "grounded"}
    _ok(client.post("/v1/suggestions", json=gap, headers=agent))
    upload = client.post("/v1/knowledge/documents", headers=content,
                         files={"files": (f"{t.name}-upload.md", _upload_text(t))})
    assert upload.status_code == 202, upload.text
    job_id = upload.json()["job_id"]
    api.service.wait_for_jobs()
    assert _ok(client.get(f"/v1/jobs/{job_id}", headers=content)).json()["status"] == "succeeded"
    record, secret = api.service.store.create_key(t.name, "agent", "target of the other tenant's revoke")
    started = _ok(client.post("/v1/evals", json=_eval_body(t), headers=api.headers("qa", t.name))).json()
    api.service.wait_for_jobs()
    run = _ok(client.get(f"/v1/evals/{started['id']}", headers=api.headers("qa", t.name))).json()
    assert run["status"] == "succeeded", run
    return Objects(suggestions[0]["id"], suggestions[0]["text"], job_id, record.id, secret, started["id"])


def _eval_body(t: TenantContent, **extra: Any) -> dict[str, Any]:
    """A one-case suite: the tenant's own question, answered by its article."""
    case = {"id": "own-question", "thread": t.thread_body(t.search_topic),
            "expect": {"documents": [t.article_id]}}
    return {"name": f"{t.name}-smoke", "cases": [case], **extra}


def _llm_reply(body: dict[str, Any]) -> str:
    return "Here is what our help pages say about it.\nSOURCES: P1"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, embedder: LocalEmbedder) -> Iterator[World]:
    root = tmp_path_factory.mktemp("access")
    with FakeLLM(responder=_llm_reply) as llm:
        # every upload is a job (upload_sync_bytes=0); the rate limit is out of the way of ~500 requests
        settings = Settings(data_dir=root / "data", upload_sync_bytes=0, rate_limit="100000/minute",
                            llm_base_url=llm.base_url, llm_model=llm.model, _env_file=None)
        kb = KnowledgeBase(settings, embedder=embedder)
        for t in TENANTS.values():
            kb.create_tenant(t.name)
            report = kb.ingest(t.name, [_write_content(root / "content", t)])
            assert not report.failed, report.failed
        for api in make_api(settings, kb, ACME.name):
            world = World(api)
            for t in TENANTS.values():
                world.objects[t.name] = _make_objects(api, t)
            yield world


# --- the route table --------------------------------------------------------------------------------------

Build = Callable[[World, TenantContent], Call]


@dataclass(frozen=True)
class Route:
    method: str
    path: str               # the template as the app declares it
    roles: frozenset[str]   # the roles that may call it
    build: Build            # a valid request by the tenant's own key (may first make what it deletes)

    @property
    def id(self) -> str:
        return f"{self.method} {self.path}"


def _ensure_scratch_document(w: World, t: TenantContent) -> str:
    document_id = f"{t.name}-scratch.md"
    if document_id not in {r.document_id for r in w.api.service.kb.documents(t.name)}:
        response = w.api.client.put(f"/v1/knowledge/documents/{document_id}", headers=w.headers("content", t.name),
                                    files={"file": (document_id, "# Scratch\n\nA document to delete.\n")})
        assert response.status_code == 202, response.text
        w.api.service.wait_for_jobs()
    return document_id


def _scratch_macro(t: TenantContent) -> dict[str, Any]:
    return {"id": f"{t.name}-scratch", "title": "Scratch", "text": "A macro to delete.", "channels": ["all"]}


def _body(document: dict[str, Any]) -> dict[str, Any]:
    """A structured document as a route's body: without its ``kind``."""
    return {k: v for k, v in document.items() if k != "kind"}


def _scratch_playbook(t: TenantContent) -> dict[str, Any]:
    return _body(t.playbook(f"{t.name}-scratch", "Scratch playbook"))


def _ensure(w: World, t: TenantContent, url: str, body: dict[str, Any]) -> None:
    _ok(w.api.client.put(url, json=body, headers=w.headers("content", t.name)))


def _delete_macro(w: World, t: TenantContent) -> Call:
    _ensure(w, t, f"/v1/macros/{t.name}-scratch", _scratch_macro(t))
    return Call("DELETE", f"/v1/macros/{t.name}-scratch")


def _delete_playbook(w: World, t: TenantContent) -> Call:
    _ensure(w, t, f"/v1/playbooks/{t.name}-scratch", _scratch_playbook(t))
    return Call("DELETE", f"/v1/playbooks/{t.name}-scratch")


def _revoke_key(w: World, t: TenantContent) -> Call:
    record, _ = w.api.service.store.create_key(t.name, "agent", "to revoke")
    return Call("DELETE", f"/v1/keys/{record.id}")


AGENT = frozenset({"agent", "admin"})
SEARCH = frozenset({"agent", "content", "admin"})
CONTENT = frozenset({"content", "admin"})
ANALYTICS = frozenset({"content", "qa", "admin"})
ADMIN = frozenset({"admin"})
EVALS = frozenset({"qa", "admin"})
EVERYONE = frozenset(ROLES)

ROUTES: list[Route] = [
    # assist
    Route("POST", "/v1/suggestions", AGENT,
          lambda w, t: Call("POST", "/v1/suggestions", {"thread_id": t.thread_id, "engine": "grounded"})),
    Route("POST", "/v1/suggestions/stream", AGENT,
          lambda w, t: Call("POST", "/v1/suggestions/stream", {"thread_id": t.thread_id, "engine": "llm"})),
    Route("POST", "/v1/summaries", AGENT,
          lambda w, t: Call("POST", "/v1/summaries", {"thread_id": t.thread_id, "engine": "grounded"})),
    Route("POST", "/v1/next-best-actions", AGENT,
          lambda w, t: Call("POST", "/v1/next-best-actions", {"thread_id": t.thread_id})),
    Route("GET", "/v1/knowledge/search", SEARCH,
          lambda w, t: Call("GET", "/v1/knowledge/search", params={"q": t.search_topic})),
    Route("POST", "/v1/feedback", AGENT,
          lambda w, t: Call("POST", "/v1/feedback", {"suggestion_id": w.objects[t.name].suggestion_id,
                                                      "event": "shown"})),
    # threads
    Route("PUT", "/v1/threads/{thread_id}", AGENT,
          lambda w, t: Call("PUT", f"/v1/threads/{t.scratch_thread}", t.thread_body(t.question))),
    Route("POST", "/v1/threads/{thread_id}/messages", AGENT,
          lambda w, t: Call("POST", f"/v1/threads/{t.scratch_thread}/messages",
                            {"messages": [{"id": "m2", "role": "agent", "text": "Let me check that for you."}]})),
    Route("GET", "/v1/threads/{thread_id}", AGENT, lambda w, t: Call("GET", f"/v1/threads/{t.thread_id}")),
    Route("GET", "/v1/threads", AGENT, lambda w, t: Call("GET", "/v1/threads")),
    # knowledge
    Route("POST", "/v1/knowledge/documents", CONTENT,
          lambda w, t: Call("POST", "/v1/knowledge/documents",
                            files={"files": (f"{t.name}-upload.md", _upload_text(t))})),
    Route("PUT", "/v1/knowledge/documents/{document_id:anypath}", CONTENT,
          lambda w, t: Call("PUT", f"/v1/knowledge/documents/{t.name}-scratch.md",
                            files={"file": ("scratch.md", "# Scratch\n\nA document to delete.\n")})),
    Route("GET", "/v1/knowledge/documents", CONTENT, lambda w, t: Call("GET", "/v1/knowledge/documents")),
    Route("GET", "/v1/knowledge/documents/{document_id:anypath}", CONTENT,
          lambda w, t: Call("GET", f"/v1/knowledge/documents/{t.article_id}")),
    Route("DELETE", "/v1/knowledge/documents/{document_id:anypath}", CONTENT,
          lambda w, t: Call("DELETE", f"/v1/knowledge/documents/{_ensure_scratch_document(w, t)}")),
    Route("GET", "/v1/jobs/{job_id}", EVERYONE, lambda w, t: Call("GET", f"/v1/jobs/{w.objects[t.name].job_id}")),
    # brand voice, macros, playbooks
    Route("GET", "/v1/brand-voice", SEARCH, lambda w, t: Call("GET", "/v1/brand-voice")),
    Route("PUT", "/v1/brand-voice", CONTENT, lambda w, t: Call("PUT", "/v1/brand-voice", _body(t.voice()))),
    Route("POST", "/v1/brand-voice/check", SEARCH,
          lambda w, t: Call("POST", "/v1/brand-voice/check", {"text": f"I will {t.banned_phrase} check that."})),
    Route("GET", "/v1/macros", SEARCH, lambda w, t: Call("GET", "/v1/macros")),
    Route("PUT", "/v1/macros/{macro_id}", CONTENT,
          lambda w, t: Call("PUT", f"/v1/macros/{t.name}-scratch", _scratch_macro(t))),
    Route("DELETE", "/v1/macros/{macro_id}", CONTENT, _delete_macro),
    Route("GET", "/v1/playbooks", SEARCH, lambda w, t: Call("GET", "/v1/playbooks")),
    Route("PUT", "/v1/playbooks/{playbook_id}", CONTENT,
          lambda w, t: Call("PUT", f"/v1/playbooks/{t.name}-scratch", _scratch_playbook(t))),
    Route("DELETE", "/v1/playbooks/{playbook_id}", CONTENT, _delete_playbook),
    # analytics and admin
    Route("GET", "/v1/analytics", ANALYTICS, lambda w, t: Call("GET", "/v1/analytics")),
    Route("POST", "/v1/evals", EVALS, lambda w, t: Call("POST", "/v1/evals", _eval_body(t))),
    Route("GET", "/v1/evals", EVALS, lambda w, t: Call("GET", "/v1/evals")),
    Route("GET", "/v1/evals/compare", EVALS, lambda w, t: Call(
        "GET", "/v1/evals/compare", params={"a": w.objects[t.name].eval_run_id, "b": w.objects[t.name].eval_run_id})),
    Route("GET", "/v1/me", EVERYONE, lambda w, t: Call("GET", "/v1/me")),
    Route("GET", "/v1/evals/{run_id}", EVALS, lambda w, t: Call("GET", f"/v1/evals/{w.objects[t.name].eval_run_id}")),
    Route("GET", "/v1/evals/{run_id}/report", EVALS,
          lambda w, t: Call("GET", f"/v1/evals/{w.objects[t.name].eval_run_id}/report")),
    Route("GET", "/v1/audit", ADMIN, lambda w, t: Call("GET", "/v1/audit")),
    Route("GET", "/v1/keys", ADMIN, lambda w, t: Call("GET", "/v1/keys")),
    Route("POST", "/v1/keys", ADMIN, lambda w, t: Call("POST", "/v1/keys", {"role": "agent", "name": "from a test"})),
    Route("DELETE", "/v1/keys/{key_id}", ADMIN, _revoke_key),
]
BY_ID = {route.id: route for route in ROUTES}


def _app_routes(app: FastAPI) -> set[str]:
    """``METHOD /path`` of every API route under /v1, routers included (FastAPI keeps included routers as
    their own route objects, so a plain walk of ``app.routes`` would see none of them)."""
    found = set()
    for context in iter_route_contexts(app.routes):
        path = context.path or ""
        if isinstance(context.original_route, APIRoute) and path.startswith("/v1"):
            found |= {f"{method} {path}" for method in context.methods or ()}
    return found


def test_every_route_has_an_access_entry(world: World) -> None:
    app_routes = _app_routes(world.api.client.app)  # type: ignore[arg-type]

    assert len(app_routes) >= 25, app_routes  # the walk sees the routers' routes
    assert sorted(app_routes - BY_ID.keys()) == [], "routes without an access entry in ROUTES"
    assert sorted(BY_ID.keys() - app_routes) == [], "entries in ROUTES for routes the app no longer has"


def test_every_role_is_allowed_somewhere_and_only_admin_everywhere() -> None:
    for role in ROLES:
        assert any(role in route.roles for route in ROUTES), role
    assert all("admin" in route.roles for route in ROUTES)


# --- 401: no key, a bad key -------------------------------------------------------------------------------

BAD_CREDENTIALS = {
    "no-key": None,
    "unknown-key": {"Authorization": "Bearer cpk_not-a-key-of-anyone"},
    "basic-scheme": {"Authorization": "Basic YWRtaW46YWRtaW4="},
}


def _assert_problem(response: Response, status: int, kind: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["type"].endswith(f"/{kind}") and body["status"] == status
    return body


@pytest.mark.parametrize("credentials", BAD_CREDENTIALS.values(), ids=BAD_CREDENTIALS.keys())
@pytest.mark.parametrize("route", ROUTES, ids=BY_ID.keys())
def test_request_without_a_valid_key_is_401(world: World, route: Route, credentials: dict[str, str] | None) -> None:
    call = route.build(world, ACME)
    before = world.snapshot(ACME.name)

    response = world.send(call, credentials)

    _assert_problem(response, 401, "not-authenticated")
    assert response.headers["www-authenticate"] == "Bearer"
    assert world.snapshot(ACME.name) == before


# --- 403 for each refused role, 2xx for each allowed one ------------------------------------------------

REFUSED = [pytest.param(route, role, id=f"{route.id} as {role}") for route in ROUTES for role in ROLES
           if role not in route.roles]
ALLOWED = [pytest.param(route, role, id=f"{route.id} as {role}") for route in ROUTES for role in ROLES
           if role in route.roles]


@pytest.mark.parametrize(("route", "role"), REFUSED)
def test_role_without_the_permission_is_403_and_changes_nothing(world: World, route: Route, role: str) -> None:
    call, key = route.build(world, ACME), world.headers(role, ACME.name)
    before = world.snapshot(ACME.name)

    response = world.send(call, key)

    body = _assert_problem(response, 403, "forbidden")
    assert repr(role) in body["detail"]
    assert world.snapshot(ACME.name) == before


@pytest.mark.parametrize(("route", "role"), ALLOWED)
def test_role_with_the_permission_gets_an_answer(world: World, route: Route, role: str) -> None:
    call = route.build(world, ACME)

    response = world.send(call, world.headers(role, ACME.name))
    world.api.service.wait_for_jobs()

    _ok(response)


# --- another tenant's ids answer 404 and carry none of its data ------------------------------------------


@dataclass(frozen=True)
class Intrusion:
    """A request by one tenant's key naming another tenant's object."""

    name: str
    route: str                                   # the id in ROUTES, for the roles
    build: Build                                 # the request, given the owner of the id
    shows: Callable[[World, TenantContent], str] | None = None  # what the owner's own answer shows


INTRUSIONS = [
    Intrusion("suggest on a kept thread", "POST /v1/suggestions",
              lambda w, o: Call("POST", "/v1/suggestions", {"thread_id": o.thread_id, "engine": "grounded"}),
              lambda w, o: f"Hi {o.customer.split()[0]},"),
    Intrusion("stream on a kept thread", "POST /v1/suggestions/stream",
              lambda w, o: Call("POST", "/v1/suggestions/stream", {"thread_id": o.thread_id, "engine": "llm"}),
              lambda w, o: f"Hi {o.customer.split()[0]},"),
    Intrusion("summarize a kept thread", "POST /v1/summaries",
              lambda w, o: Call("POST", "/v1/summaries", {"thread_id": o.thread_id, "engine": "grounded"}),
              lambda w, o: o.question),
    Intrusion("next actions on a kept thread", "POST /v1/next-best-actions",
              lambda w, o: Call("POST", "/v1/next-best-actions", {"thread_id": o.thread_id}),
              lambda w, o: o.playbook_id),
    Intrusion("read a thread", "GET /v1/threads/{thread_id}",
              lambda w, o: Call("GET", f"/v1/threads/{o.thread_id}"), lambda w, o: o.question),
    Intrusion("append to a thread", "POST /v1/threads/{thread_id}/messages",
              lambda w, o: Call("POST", f"/v1/threads/{o.thread_id}/messages",
                                {"messages": [{"id": "x1", "role": "agent", "text": "Planted by another tenant."}]})),
    Intrusion("feedback on a suggestion", "POST /v1/feedback",
              lambda w, o: Call("POST", "/v1/feedback", {"suggestion_id": w.objects[o.name].suggestion_id,
                                                          "event": "edited", "final_text": "planted"})),
    Intrusion("read a document", "GET /v1/knowledge/documents/{document_id:anypath}",
              lambda w, o: Call("GET", f"/v1/knowledge/documents/{o.article_id}"), lambda w, o: o.article_title),
    Intrusion("delete a document", "DELETE /v1/knowledge/documents/{document_id:anypath}",
              lambda w, o: Call("DELETE", f"/v1/knowledge/documents/{o.article_id}")),
    Intrusion("read a job", "GET /v1/jobs/{job_id}",
              lambda w, o: Call("GET", f"/v1/jobs/{w.objects[o.name].job_id}"), lambda w, o: f"{o.name}-upload.md"),
    Intrusion("delete a macro", "DELETE /v1/macros/{macro_id}",
              lambda w, o: Call("DELETE", f"/v1/macros/{o.macro_id}")),
    Intrusion("delete a playbook", "DELETE /v1/playbooks/{playbook_id}",
              lambda w, o: Call("DELETE", f"/v1/playbooks/{o.playbook_id}")),
    Intrusion("read an eval run", "GET /v1/evals/{run_id}",
              lambda w, o: Call("GET", f"/v1/evals/{w.objects[o.name].eval_run_id}"), lambda w, o: o.search_topic),
    Intrusion("read an eval report", "GET /v1/evals/{run_id}/report",
              lambda w, o: Call("GET", f"/v1/evals/{w.objects[o.name].eval_run_id}/report"),
              lambda w, o: f"{o.name}-smoke"),
    Intrusion("compare two of another tenant's eval runs", "GET /v1/evals/compare",
              lambda w, o: Call("GET", "/v1/evals/compare", params={"a": w.objects[o.name].eval_run_id,
                                                                     "b": w.objects[o.name].eval_run_id}),
              lambda w, o: f"{o.name}-smoke"),
    Intrusion("compare with another tenant's eval run", "POST /v1/evals",
              lambda w, o: Call("POST", "/v1/evals", _eval_body(o, baseline_run_id=w.objects[o.name].eval_run_id))),
    Intrusion("revoke a key", "DELETE /v1/keys/{key_id}",
              lambda w, o: Call("DELETE", f"/v1/keys/{w.objects[o.name].key_id}")),
]
DIRECTIONS = [(ACME, GLOBEX), (GLOBEX, ACME)]
INTRUSION_CASES = [
    pytest.param(case, role, owner, intruder, id=f"{case.name} as {intruder.name} {role} on {owner.name}")
    for case in INTRUSIONS for role in sorted(BY_ID[case.route].roles) for owner, intruder in DIRECTIONS]


@pytest.mark.parametrize(("case", "role", "owner", "intruder"), INTRUSION_CASES)
def test_another_tenants_id_is_404_without_its_data(world: World, case: Intrusion, role: str, owner: TenantContent,
                                                     intruder: TenantContent) -> None:
    call = case.build(world, owner)
    key, owners_key = world.headers(role, intruder.name), world.headers(role, owner.name)
    before = {name: world.snapshot(name) for name in TENANTS}

    response = world.send(call, key)

    _assert_problem(response, 404, "not-found")
    assert [s for s in world.secrets(owner.name) if s in response.text] == []
    assert {name: world.snapshot(name) for name in TENANTS} == before
    if case.shows is not None:  # the same request by the owner answers, with what the intruder did not see
        own = _ok(world.send(call, owners_key))
        assert case.shows(world, owner) in own.text


def test_key_made_by_an_admin_belongs_to_the_admins_tenant(world: World) -> None:
    response = world.api.client.post("/v1/keys", json={"role": "admin", "name": "sneaky", "tenant": ACME.name},
                                     headers=world.headers("admin", GLOBEX.name))

    created = _ok(response).json()
    assert created["tenant"] == GLOBEX.name
    key = {"Authorization": f"Bearer {created['key']}"}
    _assert_problem(world.api.client.get(f"/v1/threads/{ACME.thread_id}", headers=key), 404, "not-found")
    assert created["id"] not in _ok(world.api.client.get("/v1/keys", headers=world.headers("admin", ACME.name))).text


def test_another_tenants_key_stays_live_after_a_refused_revoke(world: World) -> None:
    target = world.objects[ACME.name]

    response = world.api.client.delete(f"/v1/keys/{target.key_id}", headers=world.headers("admin", GLOBEX.name))

    assert response.status_code == 404
    assert _ok(world.api.client.get("/v1/threads", headers={"Authorization": f"Bearer {target.key_secret}"}))


def test_another_tenants_document_survives_a_refused_delete(world: World) -> None:
    owner = world.headers("content", ACME.name)
    version = _ok(world.api.client.get(f"/v1/knowledge/documents/{ACME.article_id}", headers=owner)).json()["version"]

    response = world.api.client.delete(f"/v1/knowledge/documents/{ACME.article_id}",
                                       headers=world.headers("admin", GLOBEX.name))

    assert response.status_code == 404
    after = _ok(world.api.client.get(f"/v1/knowledge/documents/{ACME.article_id}", headers=owner)).json()
    assert after["version"] == version
    found = _ok(world.api.client.get("/v1/knowledge/search", params={"q": ACME.search_topic}, headers=owner)).json()
    assert ACME.article_id in [r["document_id"] for r in found["results"]]


def test_another_tenants_thread_gets_no_message_from_a_refused_append(world: World) -> None:
    response = world.api.client.post(f"/v1/threads/{ACME.thread_id}/messages",
                                     json={"messages": [{"id": "x1", "role": "agent", "text": "planted"}]},
                                     headers=world.headers("agent", GLOBEX.name))

    assert response.status_code == 404
    thread = _ok(world.api.client.get(f"/v1/threads/{ACME.thread_id}", headers=world.headers("agent", ACME.name)))
    assert [m["text"] for m in thread.json()["thread"]["messages"]] == [ACME.question]


# --- writes under another tenant's ids land in the writer's own tenant ------------------------------------


@dataclass(frozen=True)
class Overwrite:
    """A create-or-replace by one tenant's key under an id the other tenant uses: it makes the writer's own."""

    name: str
    route: str
    build: Callable[[TenantContent, TenantContent], Call]   # (owner, writer) -> the request
    read: Callable[[TenantContent], Call]                   # reads the object under the owner's id
    marker: Callable[[TenantContent], str]                  # what the writer's copy holds


def _overwrite_document(owner: TenantContent, writer: TenantContent) -> Call:
    return Call("PUT", f"/v1/knowledge/documents/{owner.put_target_document}",
                files={"file": ("x.md", f"# {writer.voice_name} copy\n\nWritten by {writer.voice_name}.\n")})


def _upload_document(owner: TenantContent, writer: TenantContent) -> Call:
    return Call("POST", "/v1/knowledge/documents",
                files={"files": (owner.put_target_document, f"# {writer.voice_name} upload\n\nUploaded again.\n")})


OVERWRITES = [
    Overwrite("thread", "PUT /v1/threads/{thread_id}",
              lambda o, w: Call("PUT", f"/v1/threads/{o.put_target_thread}", w.thread_body(w.question)),
              lambda o: Call("GET", f"/v1/threads/{o.put_target_thread}"), lambda w: w.question),
    Overwrite("document", "PUT /v1/knowledge/documents/{document_id:anypath}", _overwrite_document,
              lambda o: Call("GET", f"/v1/knowledge/documents/{o.put_target_document}"),
              lambda w: f"{w.voice_name} copy"),
    Overwrite("upload", "POST /v1/knowledge/documents", _upload_document,
              lambda o: Call("GET", f"/v1/knowledge/documents/{o.put_target_document}"),
              lambda w: f"{w.voice_name} upload"),
    Overwrite("macro", "PUT /v1/macros/{macro_id}",
              lambda o, w: Call("PUT", f"/v1/macros/{o.put_target_macro}",
                                {"id": o.put_target_macro, "title": f"{w.voice_name} copy", "text": w.macro_text}),
              lambda o: Call("GET", "/v1/macros"), lambda w: f"{w.voice_name} copy"),
    Overwrite("playbook", "PUT /v1/playbooks/{playbook_id}",
              lambda o, w: Call("PUT", f"/v1/playbooks/{o.put_target_playbook}",
                                _body(w.playbook(o.put_target_playbook, f"{w.voice_name} copy"))),
              lambda o: Call("GET", "/v1/playbooks"), lambda w: f"{w.voice_name} copy"),
]


@pytest.mark.parametrize(("case", "owner", "writer"),
                         [pytest.param(c, o, w, id=f"{c.name} by {w.name} under {o.name}'s id")
                          for c in OVERWRITES for o, w in DIRECTIONS])
def test_write_under_another_tenants_id_leaves_its_object_alone(world: World, case: Overwrite, owner: TenantContent,
                                                               writer: TenantContent) -> None:
    role = "admin"
    owners_key, writers_key = world.headers(role, owner.name), world.headers(role, writer.name)
    before = world.snapshot(owner.name)
    owners_view = _ok(world.send(case.read(owner), owners_key)).text

    response = world.send(case.build(owner, writer), writers_key)
    world.api.service.wait_for_jobs()

    _ok(response)
    assert [s for s in world.secrets(owner.name) if s in response.text] == []
    assert world.snapshot(owner.name) == before
    assert _ok(world.send(case.read(owner), owners_key)).text == owners_view
    assert case.marker(writer) not in owners_view
    assert case.marker(writer) in _ok(world.send(case.read(owner), writers_key)).text


# --- lists and tenant-wide reads show the key's tenant only -----------------------------------------------


@dataclass(frozen=True)
class Listing:
    name: str
    route: str
    call: Callable[[TenantContent], Call]         # given the other tenant (the one whose data must not show)
    check: Callable[[World, TenantContent, Any], None]  # (world, reader, body)


def _check_search(w: World, reader: TenantContent, body: Any) -> None:
    own = {r.document_id for r in w.api.service.kb.documents(reader.name)}
    assert body["results"], "the reader's own knowledge answers something"
    assert {r["document_id"] for r in body["results"]} <= own


def _check_threads(w: World, reader: TenantContent, body: Any) -> None:
    ids = {t["id"] for t in body["threads"]}
    assert reader.thread_id in ids and OTHER[reader.name].thread_id not in ids


def _check_documents(w: World, reader: TenantContent, body: Any) -> None:
    titles = {d["title"] for d in body["documents"]}
    assert reader.article_title in titles


def _check_macros(w: World, reader: TenantContent, body: Any) -> None:
    assert reader.macro_text in {m["text"] for m in body}


def _check_playbooks(w: World, reader: TenantContent, body: Any) -> None:
    assert reader.playbook_name in {p["name"] for p in body}


def _check_voice(w: World, reader: TenantContent, body: Any) -> None:
    assert body["name"] == reader.voice_name


def _check_voice_check(w: World, reader: TenantContent, body: Any) -> None:
    banned = [v["text"].lower() for v in body["violations"] if v["rule"] == "banned_phrase"]
    assert banned == [reader.banned_phrase]


def _check_analytics(w: World, reader: TenantContent, body: Any) -> None:
    assert body["tenant"] == reader.name and body["requests"] >= 2 and body["accepted"] >= 1


def _check_audit(w: World, reader: TenantContent, body: Any) -> None:
    own_keys = {k.id for k in w.api.service.store.keys(reader.name)}
    assert body["entries"] and {e["key_id"] for e in body["entries"]} <= own_keys


def _check_keys(w: World, reader: TenantContent, body: Any) -> None:
    assert body["keys"] and {k["tenant"] for k in body["keys"]} == {reader.name}


LISTINGS = [
    Listing("search", "GET /v1/knowledge/search",
            lambda other: Call("GET", "/v1/knowledge/search", params={"q": other.search_topic, "k": 50}),
            _check_search),
    Listing("threads", "GET /v1/threads", lambda other: Call("GET", "/v1/threads"), _check_threads),
    Listing("documents", "GET /v1/knowledge/documents", lambda other: Call("GET", "/v1/knowledge/documents"),
            _check_documents),
    Listing("macros", "GET /v1/macros", lambda other: Call("GET", "/v1/macros"), _check_macros),
    Listing("playbooks", "GET /v1/playbooks", lambda other: Call("GET", "/v1/playbooks"), _check_playbooks),
    Listing("brand voice", "GET /v1/brand-voice", lambda other: Call("GET", "/v1/brand-voice"), _check_voice),
    Listing("brand voice check", "POST /v1/brand-voice/check",
            lambda other: Call("POST", "/v1/brand-voice/check",
                               {"text": f"I can {ACME.banned_phrase} help, and {GLOBEX.banned_phrase} at all."}),
            _check_voice_check),
    Listing("analytics", "GET /v1/analytics", lambda other: Call("GET", "/v1/analytics"), _check_analytics),
    Listing("audit", "GET /v1/audit", lambda other: Call("GET", "/v1/audit", params={"limit": 1000}), _check_audit),
    Listing("keys", "GET /v1/keys", lambda other: Call("GET", "/v1/keys"), _check_keys),
]


@pytest.mark.parametrize(("case", "role", "reader"),
                         [pytest.param(c, role, r, id=f"{c.name} as {r.name} {role}") for c in LISTINGS
                          for role in sorted(BY_ID[c.route].roles) for r in (ACME, GLOBEX)])
def test_tenant_wide_read_shows_only_the_keys_tenant(world: World, case: Listing, role: str,
                                                    reader: TenantContent) -> None:
    other = OTHER[reader.name]

    response = _ok(world.send(case.call(other), world.headers(role, reader.name)))

    assert [s for s in world.secrets(other.name) if s in response.text] == []
    # the audit log keeps the ids a key sent, the other tenant's among them when it tried one: those are the
    # reader's own input, not the other tenant's data
    shown = json.dumps(_without(response.json(), "object_id"))
    assert [k.id for k in world.api.service.store.keys(other.name) if k.id in shown] == []
    case.check(world, reader, response.json())


def _without(value: Any, name: str) -> Any:
    if isinstance(value, dict):
        return {k: _without(v, name) for k, v in value.items() if k != name}
    if isinstance(value, list):
        return [_without(v, name) for v in value]
    return value


def test_knowledge_gaps_stay_in_their_tenant(world: World) -> None:
    answers = {t: _ok(world.api.client.get("/v1/analytics", headers=world.headers("qa", t))).text for t in TENANTS}

    for t in TENANTS.values():
        assert t.unanswered in answers[t.name]  # it is a gap of its own tenant...
        assert t.unanswered not in answers[OTHER[t.name].name]  # ...and of no other


# --- keys: hashed at rest, revoked at once ----------------------------------------------------------------


def test_key_revoked_through_the_api_is_refused_on_the_next_request(world: World) -> None:
    admin = world.headers("admin", ACME.name)
    created = _ok(world.api.client.post("/v1/keys", json={"role": "agent", "name": "short-lived"}, headers=admin))
    key = {"Authorization": f"Bearer {created.json()['key']}"}
    _ok(world.api.client.get("/v1/threads", headers=key))

    revoked = _ok(world.api.client.delete(f"/v1/keys/{created.json()['id']}", headers=admin))
    response = world.api.client.get("/v1/threads", headers=key)

    assert revoked.json()["revoked_at"] is not None
    _assert_problem(response, 401, "not-authenticated")
    assert response.headers["www-authenticate"] == "Bearer"
    listed = _ok(world.api.client.get("/v1/keys", headers=admin)).json()["keys"]
    assert next(k for k in listed if k["id"] == created.json()["id"])["revoked_at"] is not None


@pytest.mark.parametrize("role", ROLES)
def test_key_revoked_in_the_store_is_refused_on_the_next_request(world: World, role: str) -> None:
    record, secret = world.api.service.store.create_key(ACME.name, role, "revoked from the CLI")
    key = {"Authorization": f"Bearer {secret}"}
    _ok(world.api.client.get(f"/v1/jobs/{world.objects[ACME.name].job_id}", headers=key))

    world.api.service.store.revoke_key(record.id)

    _assert_problem(world.api.client.get(f"/v1/jobs/{world.objects[ACME.name].job_id}", headers=key), 401,
                    "not-authenticated")


def test_revoked_admin_key_cannot_write(world: World) -> None:
    record, secret = world.api.service.store.create_key(ACME.name, "admin", "revoked admin")
    world.api.service.store.revoke_key(record.id)
    before = world.snapshot(ACME.name)

    response = world.api.client.post("/v1/keys", json={"role": "admin"}, headers={"Authorization": f"Bearer {secret}"})

    _assert_problem(response, 401, "not-authenticated")
    assert world.snapshot(ACME.name) == before


def test_keys_are_stored_as_hashes_only(world: World) -> None:
    admin = world.headers("admin", ACME.name)
    from_api = _ok(world.api.client.post("/v1/keys", json={"role": "qa", "name": "hashed"}, headers=admin)).json()
    _, from_store = world.api.service.store.create_key(GLOBEX.name, "content", "hashed too")
    secrets = [from_api["key"], from_store, world.objects[ACME.name].key_secret]
    engine = world.api.service.store.engine

    with engine.connect() as connection:
        hashes = [row[0] for row in connection.execute(text("select key_hash from api_keys"))]
        rows = [" ".join(map(str, row)) for row in connection.execute(text("select * from api_keys"))]

    for secret in secrets:
        assert hash_key(secret) in hashes
        assert not any(secret in row for row in rows)
    database = Path(engine.url.database or "")
    stored = b"".join(p.read_bytes() for p in database.parent.glob(database.name + "*") if p.is_file())
    assert stored and not any(secret.encode() in stored for secret in secrets)


def test_key_list_never_shows_secrets(world: World) -> None:
    admin = world.headers("admin", ACME.name)
    created = _ok(world.api.client.post("/v1/keys", json={"role": "agent"}, headers=admin)).json()

    listed = _ok(world.api.client.get("/v1/keys", headers=admin))

    assert created["id"] in listed.text
    assert created["key"] not in listed.text and world.api.key("admin", ACME.name) not in listed.text
    assert all("key" not in k and "key_hash" not in k for k in listed.json()["keys"])


# --- refused writes leave stored data as it was -----------------------------------------------------------


@pytest.mark.parametrize("role", sorted(set(ROLES) - BY_ID["PUT /v1/brand-voice"].roles))
def test_refused_brand_voice_write_leaves_the_guide_unchanged(world: World, role: str) -> None:
    reader = world.headers("admin", ACME.name)
    before = _ok(world.api.client.get("/v1/brand-voice", headers=reader)).json()

    response = world.api.client.put("/v1/brand-voice", json={**ACME.voice(), "name": "Hijacked"},
                                    headers=world.headers(role, ACME.name))

    _assert_problem(response, 403, "forbidden")
    assert _ok(world.api.client.get("/v1/brand-voice", headers=reader)).json() == before


def test_brand_voice_write_by_another_tenant_changes_only_its_own(world: World) -> None:
    before = _ok(world.api.client.get("/v1/brand-voice", headers=world.headers("agent", ACME.name))).json()
    marker = f"Globex {uuid.uuid4().hex[:6]}"

    _ok(world.api.client.put("/v1/brand-voice", json={**GLOBEX.voice(), "name": marker},
                             headers=world.headers("content", GLOBEX.name)))
    try:
        assert _ok(world.api.client.get("/v1/brand-voice", headers=world.headers("agent", ACME.name))).json() == before
        globex = _ok(world.api.client.get("/v1/brand-voice", headers=world.headers("agent", GLOBEX.name))).json()
        assert globex["name"] == marker
    finally:
        _ok(world.api.client.put("/v1/brand-voice", json=GLOBEX.voice(), headers=world.headers("content", GLOBEX.name)))
