"""Canned responses (macros) with placeholders such as {customer_name}."""

from __future__ import annotations

import string

from pydantic import BaseModel, Field


class Macro(BaseModel):
    id: str = Field(..., min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    title: str = Field(..., min_length=1)
    text: str = Field(..., min_length=1)
    intent: str | None = None
    tags: list[str] = Field(default_factory=list)
    channels: list[str] = Field(default_factory=lambda: ["all"])

    @property
    def placeholders(self) -> list[str]:
        """The names in braces, in order of first use."""
        names: list[str] = []
        for _, name, _, _ in string.Formatter().parse(self.text):
            if name and name not in names:
                names.append(name)
        return names


class MacroSet(BaseModel):
    macros: list[Macro] = Field(..., min_length=1)
