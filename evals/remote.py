"""A running copilot server as an eval target: the same calls a console makes, over HTTP with an API key."""

from __future__ import annotations

from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from copilot.conversation import Thread
from copilot.errors import CopilotError, InvalidInput, NotAuthenticated, ServiceUnavailable
from copilot.nextactions import NextActions
from copilot.suggest import SuggestionSet
from copilot.summarize import Summary
from copilot.voice import BrandVoice

M = TypeVar("M", bound=BaseModel)


class RemoteError(CopilotError):
    type = "remote-error"


class HttpTarget:
    """``base_url`` of a copilot server and an API key of the suite's tenant (an agent or admin key)."""

    def __init__(self, base_url: str, key: str, *, timeout_s: float = 30.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise InvalidInput(f"--url must be an http(s) URL, not {base_url!r}")
        self.name = base_url.rstrip("/")
        self._client = httpx.Client(base_url=self.name, timeout=timeout_s, transport=transport,
                                    headers={"Authorization": f"Bearer {key}", "User-Agent": "copilot-eval"})

    def close(self) -> None:
        self._client.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ServiceUnavailable(f"cannot reach {self.name}: {exc}") from exc
        if response.status_code == 401:
            raise NotAuthenticated(f"{self.name} refused the key: {self._detail(response)}")
        if response.status_code >= 500:
            raise ServiceUnavailable(f"{self.name}{path} answered {response.status_code}: {self._detail(response)}")
        if response.status_code >= 400:
            raise RemoteError(f"{path} answered {response.status_code}: {self._detail(response)}")
        return response

    @staticmethod
    def _detail(response: httpx.Response) -> str:
        try:
            body = response.json()
        except ValueError:
            return response.text[:200]
        return str(body.get("detail") or body.get("title") or body)[:300] if isinstance(body, dict) else str(body)

    def _model(self, model: type[M], response: httpx.Response) -> M:
        try:
            return model.model_validate(response.json())
        except (ValueError, ValidationError) as exc:
            raise RemoteError(f"{response.request.url.path} returned something that is not a {model.__name__}: "
                              f"{exc}") from exc

    def describe(self, tenant: str) -> dict[str, Any]:
        ready = self._client.get("/readyz")
        info: dict[str, Any] = {"server": self.name}
        try:
            body = ready.json()
        except ValueError:
            return info
        if isinstance(body, dict):
            info["server_checks"] = body
        return info

    def thread(self, tenant: str, thread_id: str) -> Thread:
        view = self._call("GET", f"/v1/threads/{thread_id}").json()
        return Thread.model_validate(view["thread"])

    def _thread(self, thread: Thread) -> dict[str, Any]:
        return thread.model_dump(mode="json", exclude_none=True)

    def suggest(self, tenant: str, thread: Thread, engine: str) -> SuggestionSet:
        body = {"thread": self._thread(thread), "engine": engine}
        return self._model(SuggestionSet, self._call("POST", "/v1/suggestions", json=body))

    def summarize(self, tenant: str, thread: Thread, style: str, engine: str) -> Summary:
        body = {"thread": self._thread(thread), "style": style, "engine": engine}
        return self._model(Summary, self._call("POST", "/v1/summaries", json=body))

    def next_actions(self, tenant: str, thread: Thread, done_actions: list[str]) -> NextActions:
        body = {"thread": self._thread(thread), "done_actions": done_actions}
        return self._model(NextActions, self._call("POST", "/v1/next-best-actions", json=body))

    def search(self, tenant: str, query: str, k: int) -> list[str]:
        found = self._call("GET", "/v1/knowledge/search", params={"q": query[:2000], "k": k}).json()
        return [r["document_id"] for r in found.get("results", [])]

    def voice(self, tenant: str) -> BrandVoice | None:
        """The tenant's voice guide when the key may read it (content, admin); else None (no voice metric)."""
        try:
            response = self._client.get("/v1/brand-voice")
        except httpx.HTTPError:
            return None
        if response.status_code != 200:
            return None
        try:
            return BrandVoice.model_validate(response.json())
        except (ValueError, ValidationError):
            return None
