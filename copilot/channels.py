"""Channel rules: length limits, SMS segments, markup, and splitting a reply into messages."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from copilot.errors import InvalidInput
from copilot.extract import sentences

# GSM 03.38 basic character set; the extension characters cost two septets each
_GSM_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXTENDED = set("^{}\\[~]|€\f")
SMS_MAX_SEGMENTS_PER_MESSAGE = 3  # longer texts arrive late or out of order on some handsets


@dataclass(frozen=True)
class ChannelRules:
    name: str
    max_chars: int | None  # per message; None: no limit that matters for a reply
    markdown: bool          # whether the channel renders Markdown


CHANNELS: dict[str, ChannelRules] = {
    "sms": ChannelRules("sms", None, markdown=False),
    "whatsapp": ChannelRules("whatsapp", 4096, markdown=False),
    "messenger": ChannelRules("messenger", 2000, markdown=False),
    "x_dm": ChannelRules("x_dm", 10000, markdown=False),
    "apple_messages": ChannelRules("apple_messages", None, markdown=False),
    "webchat": ChannelRules("webchat", None, markdown=True),
    "app": ChannelRules("app", None, markdown=True),
    "email": ChannelRules("email", None, markdown=True),
}


@dataclass(frozen=True)
class SmsLength:
    encoding: str  # "GSM-7" or "UCS-2"
    units: int     # septets (GSM-7) or UTF-16 code units (UCS-2)
    segments: int


@dataclass(frozen=True)
class Formatted:
    messages: list[str]
    sms: SmsLength | None = None
    changes: list[str] = field(default_factory=list)


def sms_length(text: str) -> SmsLength:
    """Encoding and segment count: 160 GSM-7 characters in one segment (153 when concatenated),
    70 UCS-2 characters (67 when concatenated) as soon as one character is outside GSM-7."""
    if all(c in _GSM_BASIC or c in _GSM_EXTENDED for c in text):
        units = sum(2 if c in _GSM_EXTENDED else 1 for c in text)
        single, multi, encoding = 160, 153, "GSM-7"
    else:
        units = len(text.encode("utf-16-le")) // 2
        single, multi, encoding = 70, 67, "UCS-2"
    segments = 1 if units <= single else -(-units // multi)
    return SmsLength(encoding, units, segments)


def plain_text(text: str) -> tuple[str, list[str]]:
    """Markdown turned into what a plain-text channel shows: links as plain URLs, no emphasis marks."""
    changes: list[str] = []
    rules = [
        (r"\[([^\]]+)\]\((\S+?)\)", lambda m: m.group(2) if m.group(1) == m.group(2) else f"{m.group(1)}: {m.group(2)}",
         "links as plain URLs"),
        (r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1", lambda m: m.group(2), "bold marks removed"),
        (r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])", lambda m: m.group(1), "italic marks removed"),
        (r"(?m)^#{1,6}\s+", lambda m: "", "heading marks removed"),
        (r"`{1,3}([^`]*)`{1,3}", lambda m: m.group(1), "code marks removed"),
    ]
    for pattern, replace, change in rules:
        new = re.sub(pattern, replace, text)
        if new != text:
            changes.append(change)
            text = new
    return text, changes


def _split(text: str, fits: ChannelFits) -> list[str]:
    if fits(text):
        return [text]
    pieces = sentences(text)
    messages: list[str] = []
    current = ""
    for piece in pieces:
        candidate = f"{current} {piece}".strip()
        if fits(candidate):
            current = candidate
            continue
        if current:
            messages.append(current)
        while not fits(piece):  # one sentence longer than a message: cut at the last space that fits
            cut = max((i for i in range(1, len(piece)) if piece[i] == " " and fits(piece[:i])), default=0)
            cut = cut or next(i for i in range(len(piece), 0, -1) if fits(piece[:i]))
            messages.append(piece[:cut].strip())
            piece = piece[cut:].strip()
        current = piece
    if current:
        messages.append(current)
    return messages


class ChannelFits:
    def __init__(self, rules: ChannelRules) -> None:
        self.rules = rules

    def __call__(self, text: str) -> bool:
        if self.rules.name == "sms":
            return sms_length(text).segments <= SMS_MAX_SEGMENTS_PER_MESSAGE
        return self.rules.max_chars is None or len(text) <= self.rules.max_chars


def format_for_channel(text: str, channel: str) -> Formatted:
    """The reply as the channel should carry it: markup it can show, messages it can take."""
    rules = CHANNELS.get(channel)
    if rules is None:
        raise InvalidInput(f"unknown channel {channel!r}; known: {sorted(CHANNELS)}")
    changes: list[str] = []
    if not rules.markdown:
        text, changes = plain_text(text)
    messages = _split(text.strip(), ChannelFits(rules))
    if len(messages) > 1:
        changes.append(f"split into {len(messages)} messages")
    sms = sms_length(" ".join(messages)) if channel == "sms" else None
    return Formatted(messages, sms, changes)
