"""Eval suites as data: a JSONL file whose first line is the suite's metadata and every other line a case.

    {"suite": {"name": "brightwave-regression", "tenant": "brightwave", "knowledge": "..",
               "engine": "grounded", "k": 5, "thresholds": {"retrieval_hit_at_k": 0.8, "suggest_p95_ms": 400}}}
    {"id": "double-charge", "thread": {...}, "expect": {"documents": ["..."], "must_contain": ["£23"]}}
    {"id": "kept-thread", "thread_id": "th-1001", "expect": {"next_action": "verify_identity"}}

A case is a thread as consoles send it, or the id of a thread kept by the service (runs against a server
or a data directory that keeps it). Every expectation is optional: a case is scored only on what it
expects, so a suite can hold summary cases beside reply cases.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from copilot.conversation import Thread
from copilot.errors import InvalidInput, describe_validation_error

MAX_CASES = 5000


class Expect(BaseModel):
    """What a case expects of the engines; each field turns on the metrics that read it."""

    model_config = ConfigDict(extra="forbid")

    documents: list[str] = Field(default_factory=list, description="Document ids (or macro ids) that hold the "
                                 "answer: retrieval hit@k/MRR and the citations are scored against them.")
    passage: str | None = Field(None, description="The supporting text the answer stands on; a citation is "
                                "precise when it comes from an expected document and holds this text.")
    answerable: bool = Field(True, description="False when the knowledge cannot answer: the engine should say "
                             "so (no suggestion or a clarifying question) instead of offering a passage.")
    must_contain: list[str] = Field(default_factory=list, description="Facts the top suggestion must hold "
                                    "(case- and space-insensitive).")
    must_not_contain: list[str] = Field(default_factory=list, description="Text the top suggestion must not hold.")
    reference: str | None = Field(None, description="A reply a good agent sent (e.g. from feedback): scored by "
                                  "ROUGE-L against the top suggestion.")
    voice: bool = Field(True, description="Whether the tenant's voice rules must hold in the top suggestion.")
    next_action: str | list[str] | None = Field(None, description="The expected next action: a step id or an "
                                                "action name; a list accepts any of them.")
    done_actions: list[str] = Field(default_factory=list, description="Actions the console reports done, passed "
                                    "to next-best actions.")
    intent: str | None = Field(None, description="The intent of the latest customer turn.")
    summaries: list[str] = Field(default_factory=list, description="Reference abstracts: summary ROUGE takes the "
                                 "best of them.")
    summary_style: str = Field("after_contact", description="catch_up, handoff or after_contact.")
    facts: list[str] = Field(default_factory=list, description="Facts the summary must carry (in its key facts or "
                             "abstract): summary fact recall.")


class Case(BaseModel):
    """One conversation to run through the engines, and what it expects of them."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(..., min_length=1, max_length=200, description="Unique in the suite; runs are compared "
                    "case by case on it.")
    tenant: str | None = Field(None, description="The suite's tenant; may be omitted.")
    thread: Thread | None = Field(None, description="The thread as a console sends it (or give thread_id).")
    thread_id: str | None = Field(None, max_length=200, description="A thread the service keeps (or give "
                                  "thread).")
    tags: list[str] = Field(default_factory=list, max_length=20, description="Labels for the per-tag breakdown, "
                            "e.g. billing or unanswerable.")
    note: str | None = Field(None, max_length=2000, description="What the case tests, for the report.")
    expect: Expect = Field(default_factory=Expect, description="What the engines should do; each expectation "
                           "turns on the metrics that read it.")

    @model_validator(mode="after")
    def _one_thread(self) -> Case:
        e = self.expect
        if any(not f.strip() for f in [*e.must_contain, *e.must_not_contain, *e.facts, *e.documents]):
            raise ValueError("expect: empty strings in documents, must_contain, must_not_contain or facts match "
                             "anything; remove them")
        if (self.thread is None) == (self.thread_id is None):
            raise ValueError("give either 'thread' or 'thread_id'")
        return self

    @property
    def wants_reply(self) -> bool:
        e = self.expect
        return bool(e.documents or e.passage or not e.answerable or e.must_contain or e.must_not_contain
                    or e.reference)


class SuiteMeta(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(..., min_length=1, max_length=200)
    tenant: str = Field(..., min_length=1, max_length=40)
    description: str = ""
    engine: str = Field("grounded", pattern="^(grounded|llm)$")
    knowledge: str | None = Field(None, description="A folder of the tenant's knowledge, relative to the suite "
                                  "file: an in-process run indexes it into a fresh data directory first.")
    k: int = Field(5, ge=1, le=50, description="The k of retrieval hit@k.")
    thresholds: dict[str, float] = Field(default_factory=dict, description="metric -> the least value that "
                                         "passes (the most, for latencies in ms).")


class Suite(BaseModel):
    meta: SuiteMeta
    cases: list[Case]
    path: str | None = None
    sha256: str | None = None

    def knowledge_dir(self) -> Path | None:
        if self.meta.knowledge is None:
            return None
        base = Path(self.path).parent if self.path else Path.cwd()
        folder = (base / self.meta.knowledge).resolve()
        if not folder.is_dir():
            raise InvalidInput(f"the suite's knowledge folder {folder} does not exist")
        return folder

    def to_jsonl(self) -> str:
        lines = [json.dumps({"suite": self.meta.model_dump(exclude_defaults=False)}, ensure_ascii=False)]
        lines += [c.model_dump_json(exclude_none=True, exclude_defaults=True) for c in self.cases]
        return "\n".join(lines) + "\n"


def parse_suite(text: str, *, source: str = "suite") -> Suite:
    """A suite from JSONL text; a clear ``InvalidInput`` naming the line of anything wrong."""
    meta: SuiteMeta | None = None
    cases: list[Case] = []
    seen: set[str] = set()
    # lines end at \n only: JSON strings may hold U+2028, U+2029 or U+0085, where splitlines() would cut
    for number, line in enumerate((ln.removesuffix("\r") for ln in text.split("\n")), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"{source} line {number}: not JSON ({exc.msg})") from exc
        if not isinstance(record, dict):
            raise InvalidInput(f"{source} line {number}: expected a JSON object")
        try:
            if "suite" in record:
                if len(record) > 1:
                    raise InvalidInput(f"{source} line {number}: the metadata line holds only \"suite\"")
                if meta is not None or cases:
                    raise InvalidInput(f"{source} line {number}: the suite's metadata must be the first line, once")
                meta = SuiteMeta.model_validate(record["suite"])
                continue
            case = Case.model_validate(record)
        except ValidationError as exc:
            raise InvalidInput(f"{source} line {number}: {describe_validation_error(exc)}") from exc
        if meta is None:
            raise InvalidInput(f"{source} line {number}: the first line must be the suite's metadata "
                               '({"suite": {"name": ..., "tenant": ...}})')
        if case.id in seen:
            raise InvalidInput(f"{source} line {number}: case id {case.id!r} is used twice")
        if _tenant_of(case) not in (None, meta.tenant):
            raise InvalidInput(f"{source} line {number}: case {case.id!r} is for tenant {_tenant_of(case)!r}, "
                               f"the suite for {meta.tenant!r}")
        seen.add(case.id)
        cases.append(case)
        if len(cases) > MAX_CASES:
            raise InvalidInput(f"{source}: more than {MAX_CASES} cases; split the suite")
    if meta is None:
        raise InvalidInput(f"{source} is empty: it needs a metadata line and cases")
    if not cases:
        raise InvalidInput(f"{source} has no cases")
    return Suite(meta=meta, cases=cases, sha256=hashlib.sha256(text.encode()).hexdigest())


def _tenant_of(case: Case) -> str | None:
    return case.tenant or (case.thread.tenant if case.thread is not None else None)


def build_suite(meta: SuiteMeta, cases: list[Case]) -> Suite:
    """A suite from its parts (e.g. an API request), checked as a file is: unique ids, one tenant, a size."""
    if not cases:
        raise InvalidInput("a suite needs at least one case")
    if len(cases) > MAX_CASES:
        raise InvalidInput(f"more than {MAX_CASES} cases; split the suite")
    seen: set[str] = set()
    for case in cases:
        if case.id in seen:
            raise InvalidInput(f"case id {case.id!r} is used twice")
        if _tenant_of(case) not in (None, meta.tenant):
            raise InvalidInput(f"case {case.id!r} is for tenant {_tenant_of(case)!r}, the suite for {meta.tenant!r}")
        seen.add(case.id)
    return Suite(meta=meta, cases=cases)


def load_suite(path: Path) -> Suite:
    try:
        text = path.read_text(encoding="utf-8-sig")  # a BOM from an editor is not part of the JSON
    except FileNotFoundError as exc:
        raise InvalidInput(f"no such suite file: {path}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"cannot read {path}: {exc}") from exc
    suite = parse_suite(text, source=str(path))
    suite.path = str(path.resolve())
    return suite


def case_payload(case: Case) -> dict[str, Any]:
    return case.model_dump(mode="json", exclude_none=True)
