"""Canned responses (macros) with placeholders such as {customer_name}."""

from __future__ import annotations

import string

from pydantic import BaseModel, ConfigDict, Field


class Macro(BaseModel):
    """A canned response: offered as a suggestion when it answers the customer and every placeholder can be
    filled from the thread."""

    id: str = Field(..., min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
                    description="Unique within the tenant: a letter or digit, then letters, digits, '_', '.' or "
                                "'-'. Suggestions made from it carry it as macro_id.")
    title: str = Field(..., min_length=1, description="What it answers, in a few words; searched with the text.")
    text: str = Field(..., min_length=1, description=(
        "The reply, with placeholders in braces, e.g. {customer_name} or {order_id}. A placeholder is filled from "
        "the customer record (customer_name: the first name; customer_id; any extra field of the same name) or "
        "from the facts of the thread (order_id, amount, email, phone); a macro with a placeholder the thread "
        "cannot fill is not offered."))
    intent: str | None = Field(None, description="The intent it answers (a label of the tenant's intents), kept "
                                                 "with the indexed macro; optional.")
    tags: list[str] = Field(default_factory=list, description="Labels for content owners, e.g. billing; they "
                                                              "become the tags of the document that holds it.")
    channels: list[str] = Field(default_factory=lambda: ["all"], description=(
        "The channels it may be offered on (sms, whatsapp, messenger, apple_messages, webchat, x_dm, app, "
        "email), or 'all'; default ['all']."))

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": "bill-amount-due", "title": "Amount and due date of the latest bill", "intent": "bill_explanation",
        "tags": ["billing"], "channels": ["all"],
        "text": "Hi {customer_name}, your latest bill is {amount} and it's due on {due_date}. You can see every "
                "charge in the My Brightwave app under Billing > Bills."}]})

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
