"""The pages' server side: static files with their security headers, /v1/me, and the queue fields of
the thread list that the console sorts by."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser

import pytest

from api.web import WEB_DIR
from tests.api.conftest import Api

PAGES = ["index.html", "console.html", "content.html", "qa.html"]


class _Resources(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline_scripts = 0
        self.inline_styles = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for name in ("src", "href"):
            if values.get(name):
                self.urls.append(str(values[name]))
        if tag == "script" and not values.get("src"):
            self.inline_scripts += 1
        if "style" in values:
            self.inline_styles += 1


def test_home_redirects_to_the_sign_in_page(sample_api: Api) -> None:
    response = sample_api.client.get("/", follow_redirects=False)

    assert response.status_code in (302, 307) and response.headers["location"] == "/app/"


@pytest.mark.parametrize("page", PAGES)
def test_pages_load_only_their_own_files_under_a_strict_policy(sample_api: Api, page: str) -> None:
    if not (WEB_DIR / page).is_file():
        pytest.fail(f"{page} is missing from {WEB_DIR}")
    response = sample_api.client.get(f"/app/{page}")

    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert response.headers["x-content-type-options"] == "nosniff"
    parsed = _Resources()
    parsed.feed(response.text)
    assert parsed.inline_scripts == 0 and parsed.inline_styles == 0  # the policy would block them
    for url in parsed.urls:
        assert not re.match(r"^(https?:)?//", url), url
        if url.startswith("/app/"):
            assert sample_api.client.get(url).status_code == 200, url


def test_no_script_writes_html_from_data() -> None:
    """Text from the API (customer messages, documents) is set as text, never parsed as HTML."""
    for script in WEB_DIR.glob("*.js"):
        source = script.read_text(encoding="utf-8")
        assert not re.search(r"\.(innerHTML|outerHTML)\s*=|insertAdjacentHTML|document\.write|\beval\(", source), script


def test_a_path_outside_the_pages_is_not_served(sample_api: Api) -> None:
    assert sample_api.client.get("/app/../api/app.py").status_code == 404
    assert sample_api.client.get("/app/%2e%2e/app.py").status_code == 404


def test_me_names_the_keys_tenant_role_and_permissions(sample_api: Api) -> None:
    me = sample_api.client.get("/v1/me", headers=sample_api.headers("qa")).json()

    assert (me["tenant"], me["role"]) == ("brightwave", "qa")
    assert "evals" in me["permissions"] and "assist" not in me["permissions"]


def test_thread_list_says_who_waits_since_when_and_how_urgent(sample_api: Api) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    agent = sample_api.headers("agent")

    def put(thread_id: str, messages: list[tuple[str, str, datetime]]) -> None:
        body = {"channel": "sms", "customer": {"name": f"Customer {thread_id}"},
                "messages": [{"id": f"m{n}", "role": role, "text": text, "ts": ts.isoformat()}
                             for n, (role, text, ts) in enumerate(messages)]}
        assert sample_api.client.put(f"/v1/threads/{thread_id}", json=body, headers=agent).status_code == 200

    put("q-calm", [("customer", "hi, how do I set up autopay?", now - timedelta(minutes=5))])
    put("q-angry", [("customer", "my phone was stolen", now - timedelta(minutes=30)),
                    ("agent", "Sorry to hear that. Let me help.", now - timedelta(minutes=29)),
                    ("customer", "STILL WAITING!! I need it blocked today, my card is 4111 1111 1111 1111",
                     now - timedelta(minutes=3))])
    put("q-answered", [("customer", "thanks", now - timedelta(minutes=9)),
                       ("agent", "You're welcome!", now - timedelta(minutes=8))])

    items = {t["id"]: t for t in sample_api.client.get("/v1/threads", headers=agent).json()["threads"]}

    assert datetime.fromisoformat(items["q-angry"]["waiting_since"]) == now - timedelta(minutes=3)
    assert datetime.fromisoformat(items["q-calm"]["waiting_since"]) == now - timedelta(minutes=5)
    assert items["q-answered"]["waiting_since"] is None and items["q-answered"]["last_role"] == "agent"
    assert items["q-angry"]["urgency"] > items["q-calm"]["urgency"]
    assert {"has waited", "is shouting"} <= set(items["q-angry"]["urgency_cues"])
    assert "4111" not in items["q-angry"]["preview"] and items["q-angry"]["customer_name"] == "Customer q-angry"
