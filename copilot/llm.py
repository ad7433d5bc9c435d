"""The chat model of the llm engine: any OpenAI-compatible ``/chat/completions`` endpoint (OpenAI, Azure
OpenAI, vLLM, Ollama, llama.cpp server), chosen by base URL, model and key.

Only this module imports the openai SDK for chat; its types and exceptions stop here and leave as
``copilot.errors.LLMError`` subclasses. The SDK's own retries are off: one deadline of ``timeout_s``
covers every attempt and every pause between them, so a caller always has an answer or an error in
time to fall back to the grounded engine.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar, cast

import openai

from copilot.errors import LLMBadOutput, LLMError, LLMRateLimited, LLMTimeout
from copilot.ports import ChatMessage, ChatResult

if TYPE_CHECKING:
    from openai.types.chat import ChatCompletion, ChatCompletionChunk

    from copilot.settings import Settings

T = TypeVar("T")

# Worth another try: the endpoint is busy or briefly broken. Anything else in 4xx is our request's fault.
_RETRYABLE_STATUS = frozenset({408, 409, 429})
_DETAIL_CHARS = 200

UsageCallback = Callable[[ChatResult], None]
_log = logging.getLogger(__name__)


class OpenAIChatModel:
    """A ``ChatModel`` over an OpenAI-compatible endpoint, with our own retries inside one deadline.

    Args:
        base_url: The endpoint's API root, e.g. ``https://api.openai.com/v1`` or ``http://vllm:8000/v1``.
        model: The model name the endpoint serves.
        api_key: Sent as a Bearer token; None for endpoints without auth (a placeholder is sent, never
            the ``OPENAI_API_KEY`` of the environment).
        timeout_s: Deadline of one call, all attempts and pauses included.
        max_retries: Further attempts after the first on 408, 409, 429, 5xx and connection failures.
        backoff_s: First pause between attempts, doubled each time; a Retry-After header overrides it.
        on_usage: Called with the result (text, model, token counts) of each answer the endpoint finished,
            e.g. to count tokens; for a stream only when the endpoint reported its usage. An error it
            raises is logged, never the caller's.
    """

    def __init__(self, base_url: str, model: str, api_key: str | None = None, *, timeout_s: float = 8.0,
                 max_retries: int = 2, backoff_s: float = 0.25, on_usage: UsageCallback | None = None) -> None:
        if timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        if max_retries < 0 or backoff_s < 0:
            raise ValueError("max_retries and backoff_s cannot be negative")
        self._model = model
        self._endpoint = base_url.rstrip("/") + "/chat/completions"
        self._api_key = api_key
        self._timeout_s = timeout_s
        self._max_retries = max_retries
        self._backoff_s = backoff_s
        self._on_usage = on_usage
        self._client = openai.OpenAI(base_url=base_url, api_key=api_key or "unused", timeout=timeout_s,
                                     max_retries=0)

    @classmethod
    def from_settings(cls, settings: Settings, on_usage: UsageCallback | None = None) -> OpenAIChatModel | None:
        """The configured model, or None when no LLM is configured (the grounded engine serves alone)."""
        if not settings.llm_base_url or not settings.llm_model:
            return None
        key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
        return cls(settings.llm_base_url, settings.llm_model, key or None, timeout_s=settings.llm_timeout_s,
                   on_usage=on_usage)

    @property
    def model(self) -> str:
        return self._model

    @property
    def endpoint(self) -> str:
        return self._endpoint

    @property
    def timeout_s(self) -> float:
        return self._timeout_s

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> OpenAIChatModel:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"OpenAIChatModel(endpoint={self._endpoint!r}, model={self._model!r})"

    def complete(self, messages: Sequence[ChatMessage], *, json_mode: bool = False,
                 max_tokens: int | None = None) -> ChatResult:
        """The whole answer with token usage; raises an ``LLMError`` subclass within ``timeout_s``."""
        deadline = time.monotonic() + self._timeout_s

        def attempt(timeout: float) -> ChatCompletion:
            return cast("ChatCompletion", self._create(messages, json_mode, max_tokens, stream=False,
                                                       timeout=timeout))

        completion, attempts = self._with_retries(deadline, attempt)
        if isinstance(completion, str) or not getattr(completion, "choices", None):
            raise self._bad_output("an answer without choices", attempts)
        text = completion.choices[0].message.content
        if text is None:
            raise self._bad_output("an answer without text", attempts)
        usage = completion.usage
        result = ChatResult(
            text=text,
            model=completion.model or self._model,
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
            attempts=attempts,
        )
        self._report_usage(result)
        return result

    def stream(self, messages: Sequence[ChatMessage], *, json_mode: bool = False,
               max_tokens: int | None = None) -> Iterator[str]:
        """The answer as text deltas.

        Failures before the first delta are retried within the deadline, like ``complete``; once text
        has been yielded a failure raises ``LLMError`` (``LLMTimeout`` when a read times out), since the
        caller has already shown part of the answer. After the first delta each read waits at most the
        time that was left when the attempt started, so a long answer may take longer than ``timeout_s``.
        """
        deadline = time.monotonic() + self._timeout_s
        usage: Any = None  # the last chunk's, when the endpoint reports usage in streams
        model = self._model

        def attempt(timeout: float) -> tuple[Any, str]:
            nonlocal usage, model
            chunks = self._create(messages, json_mode, max_tokens, stream=True, timeout=timeout)
            try:
                while True:
                    try:
                        chunk = next(chunks)
                    except StopIteration:
                        return chunks, ""
                    usage = getattr(chunk, "usage", None) or usage
                    model = getattr(chunk, "model", None) or model
                    text = _delta(chunk)
                    if text:
                        return chunks, text
            except BaseException:
                chunks.close()
                raise

        (chunks, first), attempts = self._with_retries(deadline, attempt)
        parts = [first] if first else []
        try:
            if first:
                yield first
            for chunk in chunks:
                usage = getattr(chunk, "usage", None) or usage
                text = _delta(chunk)
                if text:
                    parts.append(text)
                    yield text
        except openai.APITimeoutError as exc:
            raise LLMTimeout(f"{self._endpoint} stalled in the middle of a streamed answer",
                             **self._fields(attempts)) from exc
        except (openai.OpenAIError, ValueError) as exc:
            raise LLMError(f"{self._endpoint} broke off a streamed answer: {self._detail(exc)}",
                           **self._fields(attempts)) from exc
        finally:
            chunks.close()
        if usage is not None:
            self._report_usage(ChatResult(text="".join(parts), model=model, prompt_tokens=usage.prompt_tokens or 0,
                                          completion_tokens=usage.completion_tokens or 0, attempts=attempts))

    def _report_usage(self, result: ChatResult) -> None:
        if self._on_usage is None:
            return
        try:
            self._on_usage(result)
        except Exception:  # counting tokens must not turn a good answer into a failure (and a fallback)
            _log.exception("the on_usage callback of %r failed", self)

    def _create(self, messages: Sequence[ChatMessage], json_mode: bool, max_tokens: int | None, *,
                stream: bool, timeout: float) -> Any:
        options: dict[str, Any] = {}
        if json_mode:
            options["response_format"] = {"type": "json_object"}
        if max_tokens is not None:
            # max_tokens rather than max_completion_tokens: every OpenAI-compatible server reads it.
            options["max_tokens"] = max_tokens
        if stream and self._on_usage is not None:
            # Usage comes in a last chunk only when asked for; servers that ignore the option send none.
            options["stream_options"] = {"include_usage": True}
        return self._client.chat.completions.create(
            model=self._model,
            messages=cast(Any, [{"role": m.role, "content": m.content} for m in messages]),
            stream=stream,
            timeout=timeout,
            **options,
        )

    def _with_retries(self, deadline: float, attempt: Callable[[float], T]) -> tuple[T, int]:
        """Runs ``attempt(seconds_left)`` until it succeeds, fails for good, or the deadline passes."""
        attempts = 0
        while True:
            attempts += 1
            left = deadline - time.monotonic()
            if left <= 0:
                raise self._timeout(attempts - 1)
            try:
                return attempt(left), attempts
            except openai.APITimeoutError as exc:
                # Each attempt had all the time that was left: there is none for another.
                raise self._timeout(attempts) from exc
            except (openai.APIConnectionError, openai.APIStatusError) as exc:
                status = getattr(exc, "status_code", None)
                retryable = status is None or status in _RETRYABLE_STATUS or status >= 500
                if not retryable or attempts > self._max_retries:
                    raise self._failure(exc, attempts) from exc
                pause = self._pause(exc, attempts)
                if time.monotonic() + pause >= deadline:
                    raise self._failure(exc, attempts, "no time left to retry") from exc
                time.sleep(pause)
            except openai.APIResponseValidationError as exc:
                raise self._bad_output(f"an answer of the wrong shape ({self._detail(exc)})", attempts) from exc
            except ValueError as exc:
                # The SDK hands on the JSON decoder's error when a 200 body is not JSON.
                raise self._bad_output("a body that is not valid JSON", attempts) from exc
            except openai.OpenAIError as exc:
                raise LLMError(f"{self._endpoint} failed: {self._detail(exc)}", **self._fields(attempts)) from exc

    def _pause(self, exc: openai.APIConnectionError | openai.APIStatusError, attempts: int) -> float:
        retry_after = _retry_after(exc.response.headers) if isinstance(exc, openai.APIStatusError) else None
        if retry_after is not None:
            return retry_after
        return float(self._backoff_s * 2 ** (attempts - 1))

    def _timeout(self, attempts: int) -> LLMTimeout:
        return LLMTimeout(
            f"{self._endpoint} did not answer within {self._timeout_s:g} s "
            f"(model {self._model}, {attempts} attempt{'s' if attempts != 1 else ''})",
            **self._fields(attempts),
        )

    def _failure(self, exc: openai.APIConnectionError | openai.APIStatusError, attempts: int,
                 reason: str = "") -> LLMError:
        tries = f"after {attempts} attempt{'s' if attempts != 1 else ''}" + (f", {reason}" if reason else "")
        if isinstance(exc, openai.APIStatusError):
            status = exc.status_code
            fields = self._fields(attempts, status=status)
            if status == 429:
                return LLMRateLimited(f"{self._endpoint} is rate limiting (HTTP 429) {tries}", **fields)
            return LLMError(f"{self._endpoint} answered HTTP {status} {tries}: {self._detail(exc)}", **fields)
        return LLMError(f"could not reach {self._endpoint} {tries}: {self._detail(exc)}",
                        **self._fields(attempts))

    def _bad_output(self, what: str, attempts: int) -> LLMBadOutput:
        return LLMBadOutput(f"{self._endpoint} returned {what}", **self._fields(attempts))

    def _fields(self, attempts: int, **extra: object) -> dict[str, object]:
        return {"endpoint": self._endpoint, "model": self._model, "attempts": attempts, **extra}

    def _detail(self, exc: BaseException) -> str:
        """A short reason fit for logs and problem+json bodies: the endpoint's own message, never the key."""
        body = getattr(exc, "body", None)
        message = body.get("message") if isinstance(body, dict) else None
        if not isinstance(message, str) or not message:
            cause = exc.__cause__ or exc.__context__
            message = f"{exc}" + (f" ({type(cause).__name__}: {cause})" if cause and str(cause) else "")
        if self._api_key:
            message = message.replace(self._api_key, "***")
        message = " ".join(message.split())
        return message if len(message) <= _DETAIL_CHARS else message[: _DETAIL_CHARS - 1] + "…"


def _delta(chunk: ChatCompletionChunk) -> str:
    if not getattr(chunk, "choices", None):
        return ""  # e.g. the usage chunk at the end of a stream
    return chunk.choices[0].delta.content or ""


def _retry_after(headers: Any) -> float | None:
    """Seconds to wait from ``retry-after-ms`` (OpenAI) or ``retry-after`` (seconds or an HTTP date)."""
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
