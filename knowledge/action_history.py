"""Labelled history files: a tenant's past threads whose agent messages name the action taken, for the learned
next-best actions (``copilot.history``).

A file is one when its name ends in ``.history.jsonl``: other JSONL files (an eval suite, an export) are not
knowledge. One thread a line, as ``copilot.labelled_threads.LabelledThread`` reads it::

    {"id": "th-2001", "messages": [{"role": "customer", "text": "charged twice"},
     {"role": "agent", "text": "I've sent a one-time code...", "action": "verify_identity"}]}

The threads are kept as the document's payload, like an intent set's examples; its one section, a count of the
actions, is stored but not searched.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from copilot.errors import DocumentError, EmptyDocument, InvalidInput
from copilot.labelled_threads import parse_history
from knowledge.documents import Kind, Section, SourceDocument

HISTORY_SUFFIX = ".history.jsonl"


def history_document(text: str, path: Path, document_id: str) -> SourceDocument:
    """The labelled threads of one file; a bad line is a ``DocumentError`` naming it."""
    try:
        threads = parse_history(text)
    except InvalidInput as exc:
        raise DocumentError(f"labelled history {exc.message}") from exc
    if not threads:
        raise EmptyDocument("the history file has no threads")
    counts = Counter(action for thread in threads for action in thread.actions)
    if not counts:
        raise DocumentError("no message of the history carries an action: add \"action\" to the agent messages "
                            "with the step or action they took")
    summary = "\n".join([f"{len(threads)} labelled threads, {counts.total()} actions",
                         *(f"{action}: {count}" for action, count in sorted(counts.items()))])
    name = path.name[: -len(HISTORY_SUFFIX)] if path.name.lower().endswith(HISTORY_SUFFIX) else path.stem
    title = re.sub(r"[-_]+", " ", name).strip().capitalize() or "Labelled threads"
    return SourceDocument(document_id, f"Action history: {title}", Kind.ACTION_HISTORY, str(path),
                          [Section(("Action history",), summary, unit=True)],
                          payload={"threads": [t.model_dump(mode="json", exclude_none=True) for t in threads]})
