"""Channel rules: SMS encoding and segments, plain-text markup, splitting long replies."""

from __future__ import annotations

import pytest

from copilot.channels import SMS_MAX_SEGMENTS_PER_MESSAGE, format_for_channel, sms_length
from copilot.errors import InvalidInput


@pytest.mark.parametrize(("text", "encoding", "segments"), [
    ("a" * 160, "GSM-7", 1),
    ("a" * 161, "GSM-7", 2),
    ("a" * 306, "GSM-7", 2),
    ("a" * 307, "GSM-7", 3),
    ("€" * 80, "GSM-7", 1),      # an extension character costs two septets
    ("€" * 81, "GSM-7", 2),
    ("ł" * 70, "UCS-2", 1),      # one character outside GSM-7 switches the whole text to UCS-2
    ("ł" * 71, "UCS-2", 2),
    ("😊" * 35, "UCS-2", 1),     # an emoji is two UTF-16 code units
])
def test_sms_length_counts_encoding_and_segments(text: str, encoding: str, segments: int) -> None:
    length = sms_length(text)

    assert (length.encoding, length.segments) == (encoding, segments)


def test_format_sms_strips_markdown_and_keeps_links_as_urls() -> None:
    result = format_for_channel("**Good news:** track it [here](https://brightwave.example/track).", "sms")

    assert result.messages == ["Good news: track it here: https://brightwave.example/track."]
    assert result.sms is not None and result.sms.segments == 1
    assert "links as plain URLs" in result.changes


def test_format_webchat_keeps_markdown() -> None:
    text = "**Good news:** it shipped."

    assert format_for_channel(text, "webchat").messages == [text]


def test_format_long_messenger_reply_splits_at_sentences_within_limit() -> None:
    sentence = "Your order shipped today and tracking will update tonight. "
    result = format_for_channel(sentence * 60, "messenger")

    assert len(result.messages) > 1
    assert all(len(m) <= 2000 for m in result.messages)
    assert all(m.endswith(".") for m in result.messages)
    assert " ".join(result.messages) == (sentence * 60).strip()


def test_format_long_sms_splits_into_messages_of_few_segments() -> None:
    result = format_for_channel("Please restart your phone now. " * 30, "sms")

    assert len(result.messages) > 1
    assert all(sms_length(m).segments <= SMS_MAX_SEGMENTS_PER_MESSAGE for m in result.messages)


def test_format_unknown_channel_is_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="unknown channel"):
        format_for_channel("hello", "pager")
