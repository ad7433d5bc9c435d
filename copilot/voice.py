"""The brand-voice guide of a tenant (how replies should sound)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

EmojiPolicy = Literal["none", "sparing", "allowed"]


class BannedPhrase(BaseModel):
    phrase: str = Field(..., min_length=1)
    replacement: str = ""


class PreferredTerm(BaseModel):
    use: str
    instead_of: list[str] = Field(default_factory=list)


class BrandVoice(BaseModel):
    """A tenant's voice: tone, greetings, sign-offs, banned phrases, emoji policy per channel."""

    model_config = ConfigDict(extra="ignore")

    name: str = Field(..., min_length=1)
    tone: list[str] = Field(default_factory=list)
    greeting: dict[str, str] = Field(default_factory=lambda: {"default": "Hi {customer_name},"})
    greeting_without_name: str = "Hi there,"
    sign_off: dict[str, str] = Field(default_factory=dict)
    use_customer_name: Literal["first_name", "full_name", "never"] = "first_name"
    banned_phrases: list[BannedPhrase] = Field(default_factory=list)
    never_promise: list[str] = Field(default_factory=list)
    verification_required_for: list[str] = Field(default_factory=list)
    emoji: dict[str, EmojiPolicy] = Field(default_factory=lambda: {"default": "none"})  # type: ignore[arg-type]
    reading_level_max_grade: float = Field(8, gt=0, le=20)
    preferred_terms: list[PreferredTerm] = Field(default_factory=list)
    clarifying_questions: list[str] = Field(default_factory=list)
    empathy_openers: list[str] = Field(default_factory=list)
    guide: str = Field("", description="Free text of the guide (a Markdown body), for the LLM prompt.")
