"""The OpenAI-compatible chat adapter against a real HTTP server on loopback (tests/fakellm.py)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from copilot.drafting import parse_json_object
from copilot.errors import LLMBadOutput, LLMError, LLMRateLimited, LLMTimeout, ServiceUnavailable
from copilot.llm import OpenAIChatModel
from copilot.ports import ChatMessage, ChatModel, ChatResult
from copilot.settings import Settings
from tests.fakellm import FakeLLM

HELLO = [ChatMessage("system", "You answer customers."), ChatMessage("user", "Where is my parcel?")]


@pytest.fixture
def model(fake_llm: FakeLLM) -> Iterator[OpenAIChatModel]:
    with OpenAIChatModel(fake_llm.base_url, fake_llm.model, timeout_s=1.0, backoff_s=0.01) as chat:
        yield chat


def test_complete_returns_text_and_usage(model: OpenAIChatModel, fake_llm: FakeLLM) -> None:
    fake_llm.reply("It left our warehouse today.")

    result = model.complete(HELLO)

    assert result.text == "It left our warehouse today."
    assert result.model == fake_llm.model
    assert (result.prompt_tokens, result.completion_tokens, result.attempts) == (7, 5, 1)
    sent = fake_llm.last_request
    assert sent.path == "/v1/chat/completions"
    assert sent.body["model"] == fake_llm.model
    assert sent.messages == [{"role": "system", "content": "You answer customers."},
                             {"role": "user", "content": "Where is my parcel?"}]
    assert "response_format" not in sent.body
    assert sent.body.get("stream") in (None, False)


def test_complete_uses_responder_when_queue_empty(model: OpenAIChatModel, fake_llm: FakeLLM) -> None:
    fake_llm.responder = lambda body: "parcel" if "parcel" in body["messages"][-1]["content"] else "other"

    assert model.complete(HELLO).text == "parcel"
    assert model.complete([ChatMessage("user", "hi")]).text == "other"


def test_complete_json_mode_sends_response_format(model: OpenAIChatModel, fake_llm: FakeLLM) -> None:
    fake_llm.reply('{"reply": "On its way"}')

    result = model.complete(HELLO, json_mode=True, max_tokens=50)

    assert parse_json_object(result.text) == {"reply": "On its way"}
    assert fake_llm.last_request.body["response_format"] == {"type": "json_object"}
    assert fake_llm.last_request.body["max_tokens"] == 50


def test_complete_retries_after_rate_limit(model: OpenAIChatModel, fake_llm: FakeLLM) -> None:
    fake_llm.fail(429, retry_after=0).reply("done")

    result = model.complete(HELLO)

    assert (result.text, result.attempts) == ("done", 2)
    assert len(fake_llm.chat_requests) == 2


def test_complete_raises_rate_limited_when_429_persists(model: OpenAIChatModel, fake_llm: FakeLLM) -> None:
    for _ in range(3):
        fake_llm.fail(429, retry_after=0)

    with pytest.raises(LLMRateLimited) as caught:
        model.complete(HELLO)

    assert caught.value.fields["attempts"] == 3
    assert fake_llm.pending == 0


def test_complete_gives_up_when_retry_after_exceeds_budget(model: OpenAIChatModel, fake_llm: FakeLLM) -> None:
    fake_llm.fail(429, retry_after=30).reply("too late")
    started = time.monotonic()

    with pytest.raises(LLMRateLimited, match="no time left"):
        model.complete(HELLO)

    assert time.monotonic() - started < 0.5
    assert len(fake_llm.chat_requests) == 1


def test_complete_raises_llm_error_after_three_server_errors(model: OpenAIChatModel, fake_llm: FakeLLM) -> None:
    fake_llm.fail(500).fail(500).fail(500).reply("never sent")

    with pytest.raises(LLMError) as caught:
        model.complete(HELLO)

    error = caught.value
    assert not isinstance(error, LLMRateLimited | LLMTimeout)
    assert isinstance(error, ServiceUnavailable)
    assert "HTTP 500" in error.message and model.endpoint in error.message
    assert error.fields["status"] == 500 and error.fields["attempts"] == 3
    assert fake_llm.pending == 1


def test_complete_does_not_retry_client_error(model: OpenAIChatModel, fake_llm: FakeLLM) -> None:
    fake_llm.fail(400, body={"error": {"message": "unknown parameter", "type": "invalid_request_error"}})

    with pytest.raises(LLMError, match=r"HTTP 400.*unknown parameter"):
        model.complete(HELLO)

    assert len(fake_llm.chat_requests) == 1


def test_complete_retries_dropped_connection(model: OpenAIChatModel, fake_llm: FakeLLM) -> None:
    fake_llm.drop().reply("back again")

    result = model.complete(HELLO)

    assert (result.text, result.attempts) == ("back again", 2)


def test_complete_times_out_within_budget(model: OpenAIChatModel, fake_llm: FakeLLM) -> None:
    fake_llm.delay(5, "too slow")
    started = time.monotonic()

    with pytest.raises(LLMTimeout, match="did not answer within 1 s"):
        model.complete(HELLO)

    assert time.monotonic() - started < model.timeout_s + 1


def test_complete_deadline_covers_all_attempts(fake_llm: FakeLLM) -> None:
    fake_llm.fail(503).delay(5, "too slow")
    started = time.monotonic()

    with OpenAIChatModel(fake_llm.base_url, fake_llm.model, timeout_s=0.5, backoff_s=0.1) as chat, \
            pytest.raises(LLMTimeout) as caught:
        chat.complete(HELLO)

    assert time.monotonic() - started < 0.5 + 1
    assert caught.value.fields["attempts"] == 2


def test_complete_raises_bad_output_on_garbage_body(model: OpenAIChatModel, fake_llm: FakeLLM) -> None:
    fake_llm.garbage()

    with pytest.raises(LLMBadOutput, match="not valid JSON"):
        model.complete(HELLO)


def test_stream_yields_several_deltas(model: OpenAIChatModel, fake_llm: FakeLLM) -> None:
    content = "Your parcel left the warehouse this morning and arrives tomorrow."
    fake_llm.reply(content)

    deltas = list(model.stream(HELLO, json_mode=True))

    assert len(deltas) > 2
    assert "".join(deltas) == content
    assert fake_llm.last_request.body["stream"] is True
    assert fake_llm.last_request.body["response_format"] == {"type": "json_object"}


def test_stream_retries_before_first_delta(model: OpenAIChatModel, fake_llm: FakeLLM) -> None:
    fake_llm.fail(429, retry_after=0).drop().reply("second time lucky")

    assert "".join(model.stream(HELLO)) == "second time lucky"
    assert len(fake_llm.chat_requests) == 3


@pytest.mark.parametrize("how", ["error", "cut"])
def test_stream_raises_llm_error_mid_stream(model: OpenAIChatModel, fake_llm: FakeLLM, how: str) -> None:
    fake_llm.broken_stream("one two three four five", how=how).reply("not retried")
    received: list[str] = []

    with pytest.raises(LLMError, match="broke off a streamed answer"):
        for delta in model.stream(HELLO):
            received.append(delta)

    assert received == ["one two "]
    assert fake_llm.pending == 1


def test_stream_times_out_before_first_delta(model: OpenAIChatModel, fake_llm: FakeLLM) -> None:
    fake_llm.delay(5, "too slow")
    started = time.monotonic()

    with pytest.raises(LLMTimeout):
        list(model.stream(HELLO))

    assert time.monotonic() - started < model.timeout_s + 1


def test_api_key_sent_as_bearer_and_kept_out_of_errors() -> None:
    key = "sk-test-0123456789abcdef"
    with FakeLLM(api_key=key) as fake:
        with OpenAIChatModel(fake.base_url, fake.model, key, timeout_s=1.0, max_retries=0) as chat:
            fake.reply("hello").fail(500, body={"error": {"message": f"upstream rejected {key}"}})
            chat.complete(HELLO)
            assert fake.last_request.headers["authorization"] == f"Bearer {key}"
            with pytest.raises(LLMError) as server_echo:
                chat.complete(HELLO)
        wrong = "sk-wrong-fedcba9876543210"
        with OpenAIChatModel(fake.base_url, fake.model, wrong, timeout_s=1.0) as chat, \
                pytest.raises(LLMError) as refused:
            chat.complete(HELLO)

    assert key not in str(server_echo.value) and "***" in str(server_echo.value)
    assert refused.value.fields["status"] == 401
    assert wrong not in str(refused.value) and wrong not in repr(refused.value.fields)


def test_unreachable_endpoint_raises_llm_error() -> None:
    with FakeLLM() as fake:
        base_url = fake.base_url
    with OpenAIChatModel(base_url, "fake-chat", timeout_s=0.5, max_retries=1, backoff_s=0.01) as chat, \
            pytest.raises(LLMError, match="could not reach"):
        chat.complete(HELLO)


def test_from_settings_needs_base_url_and_model(fake_llm: FakeLLM) -> None:
    assert OpenAIChatModel.from_settings(Settings(_env_file=None)) is None  # type: ignore[call-arg]
    assert OpenAIChatModel.from_settings(
        Settings(_env_file=None, llm_base_url=fake_llm.base_url)) is None  # type: ignore[call-arg]

    configured = Settings(_env_file=None, llm_base_url=fake_llm.base_url, llm_model="fake-chat",  # type: ignore[call-arg]
                          llm_api_key="sk-from-settings", llm_timeout_s=0.75)
    chat = OpenAIChatModel.from_settings(configured)

    assert chat is not None
    with chat:
        checked: ChatModel = chat
        assert checked.model == "fake-chat" and chat.timeout_s == 0.75
        checked.complete(HELLO)
    assert fake_llm.last_request.headers["authorization"] == "Bearer sk-from-settings"


def test_fake_lists_its_model(fake_llm: FakeLLM) -> None:
    import json
    import urllib.request

    with urllib.request.urlopen(f"{fake_llm.base_url}/models", timeout=2) as response:
        listed = json.load(response)

    assert [m["id"] for m in listed["data"]] == [fake_llm.model]


@pytest.mark.parametrize("text", [
    '{"a": 1}',
    '  ```json\n{"a": 1}\n```  ',
    '```\n{"a": 1}\n```',
    '```JSON {"a": 1} ```',
    'Here is the object:\n```json\n{"a": 1}\n```',
])
def test_parse_json_object_accepts_plain_and_fenced(text: str) -> None:
    assert parse_json_object(text) == {"a": 1}


@pytest.mark.parametrize("text", ["", "not json", "[1, 2]", '```json\n{"a": 1\n```', '"just a string"'])
def test_parse_json_object_rejects_other_text(text: str) -> None:
    with pytest.raises(LLMBadOutput):
        parse_json_object(text)


def test_on_usage_receives_token_counts_of_complete(fake_llm: FakeLLM) -> None:
    seen: list[ChatResult] = []
    fake_llm.reply("It left our warehouse today.")

    with OpenAIChatModel(fake_llm.base_url, fake_llm.model, timeout_s=1.0, on_usage=seen.append) as chat:
        result = chat.complete(HELLO)

    assert seen == [result]
    assert (seen[0].model, seen[0].prompt_tokens, seen[0].completion_tokens) == (fake_llm.model, 7, 5)


def test_on_usage_receives_token_counts_at_end_of_stream(fake_llm: FakeLLM) -> None:
    seen: list[ChatResult] = []
    content = "Your parcel left the warehouse this morning."
    fake_llm.reply(content)

    with OpenAIChatModel(fake_llm.base_url, fake_llm.model, timeout_s=1.0, on_usage=seen.append) as chat:
        deltas = []
        for delta in chat.stream(HELLO):
            assert seen == []  # only once the answer is whole
            deltas.append(delta)

    assert "".join(deltas) == content
    assert fake_llm.last_request.body["stream_options"] == {"include_usage": True}
    assert [(r.text, r.model, r.prompt_tokens, r.completion_tokens) for r in seen] == [
        (content, fake_llm.model, 7, 7)]


def test_on_usage_not_called_when_stream_reports_no_usage(fake_llm: FakeLLM) -> None:
    seen: list[ChatResult] = []
    fake_llm.stream_usage = False  # a server that ignores stream_options
    fake_llm.reply("one two three")

    with OpenAIChatModel(fake_llm.base_url, fake_llm.model, timeout_s=1.0, on_usage=seen.append) as chat:
        assert "".join(chat.stream(HELLO)) == "one two three"

    assert seen == []


def test_on_usage_failure_leaves_answer_intact(fake_llm: FakeLLM, caplog: pytest.LogCaptureFixture) -> None:
    def broken(result: ChatResult) -> None:
        raise RuntimeError("metrics backend down")

    fake_llm.reply("still answered")
    with OpenAIChatModel(fake_llm.base_url, fake_llm.model, timeout_s=1.0, on_usage=broken) as chat:
        assert chat.complete(HELLO).text == "still answered"

    assert "on_usage callback" in caplog.text and "metrics backend down" in caplog.text


def test_stream_without_on_usage_sends_no_stream_options(model: OpenAIChatModel, fake_llm: FakeLLM) -> None:
    fake_llm.reply("plain")

    assert "".join(model.stream(HELLO)) == "plain"
    assert "stream_options" not in fake_llm.last_request.body


def test_from_settings_passes_on_usage(fake_llm: FakeLLM) -> None:
    seen: list[ChatResult] = []
    configured = Settings(_env_file=None, llm_base_url=fake_llm.base_url, llm_model="fake-chat")  # type: ignore[call-arg]
    chat = OpenAIChatModel.from_settings(configured, on_usage=seen.append)

    assert chat is not None
    with chat:
        chat.complete(HELLO)
    assert [r.prompt_tokens for r in seen] == [7]

