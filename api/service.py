"""The service behind the HTTP API: one object per process that wires the store, the knowledge base and
the engines, and does what a request asks on behalf of a principal (always within its tenant)."""

from __future__ import annotations

import contextlib
import logging
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from rapidfuzz.distance import Levenshtein

from api.auth import Authenticator, Principal
from api.evals import EngineTarget
from api.job_owner import JobHeartbeat, JobOwner
from api.schemas import ThreadListItem
from api.store import AppendResult, Store, StoredThread, migrate
from api.wiring import Engines
from copilot.conversation import Message, Role, Thread, waiting_since
from copilot.errors import CopilotError, DocumentError, InvalidInput, NotFound, TooLarge, storage_error
from copilot.nextactions import NextActions
from copilot.pii import mask_personal_data
from copilot.ports import ChatResult
from copilot.sentiment import customer_moods
from copilot.settings import Settings
from copilot.suggest import SuggestionSet
from copilot.summarize import Summary
from evals.runner import run_suite
from evals.runs import check_threshold_names
from evals.suite import Suite
from knowledge.base import KnowledgeBase
from knowledge.documents import SourceDocument
from knowledge.ingest import IngestReport
from knowledge.loaders import SUPPORTED_NAMES, file_format, load_document
from knowledge.registry import Registry, make_engine

log = logging.getLogger("copilot.service")
DOCUMENT_ID = re.compile(r"^(?!/)(?!.*\.\.)[A-Za-z0-9._/ -]{1,300}$")
UsageHook = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Upload:
    """A file as a content owner sent it: the document id it becomes, and its bytes."""

    document_id: str
    data: bytes


def check_document_id(document_id: str) -> str:
    if not DOCUMENT_ID.match(document_id) or document_id.endswith("/"):
        raise InvalidInput(f"invalid document id {document_id!r}: 1-300 characters of letters, digits, '.', '_', "
                           "'-', ' ' and '/', not starting with '/' and without '..'")
    if file_format(document_id) is None:
        raise InvalidInput(f"document id {document_id!r} must end in a supported file type: {SUPPORTED_NAMES}")
    return document_id


class Service:
    """The store, the knowledge base and the engines of one process."""

    def __init__(self, settings: Settings, *, knowledge: KnowledgeBase | None = None,
                 on_usage: Callable[[ChatResult], None] | None = None,
                 on_suggestions: Callable[[SuggestionSet], None] | None = None,
                 on_rate_limit_unchecked: Callable[[], None] | None = None) -> None:
        """``on_usage`` sees each LLM answer's token counts, ``on_suggestions`` each suggestion set served,
        ``on_rate_limit_unchecked`` each request let through because the rate-limit storage failed."""
        self.settings = settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = (knowledge.registry.engine if knowledge is not None
                  else make_engine(settings.resolved_database_url, settings.database_timeout_s))
        self.schema_revision = migrate(engine)
        self.store = Store(engine)
        self.kb = knowledge or KnowledgeBase(settings, registry=Registry(engine, create_schema=False))
        self.engines = Engines(self.kb, settings, on_usage=on_usage)
        self.on_suggestions = on_suggestions
        self.auth = Authenticator(self.store, settings.rate_limit, settings.rate_limit_storage,
                                  on_unchecked=on_rate_limit_unchecked)
        self.uploads_dir = settings.data_dir / "uploads"
        self._jobs = ThreadPoolExecutor(max_workers=1, thread_name_prefix="copilot-job")
        self._job_lock = threading.Lock()
        # other workers and servers share the jobs table: fail only the jobs whose process is provably gone
        self.owner = JobOwner.current()
        self.store.fail_interrupted_jobs(settings.job_stale_after_s, here=self.owner)
        self._heartbeat = JobHeartbeat(self.store, self.owner, settings.job_stale_after_s)
        self._heartbeat.start()
        # the first request of each tenant would otherwise build its indexes and models itself (seconds)
        self._warmer = threading.Thread(target=self._warm, name="copilot-warm", daemon=True)
        self._warmer.start()

    def _warm(self) -> None:
        for tenant in self.kb.registry.tenants():
            try:
                self.engines.warm(tenant)
            except Exception:  # a request builds it again and answers with the error, if any
                log.warning("could not prepare tenant %s before its first request", tenant, exc_info=True)

    def close(self, warm_timeout_s: float = 60.0) -> None:
        """Finish the running job, stop the heartbeat and wait for the tenants' warm-up (it reads the database
        and the index: whoever disposes of them next must not pull them from under it)."""
        self._jobs.shutdown(wait=True, cancel_futures=False)
        self._heartbeat.stop()
        self._warmer.join(warm_timeout_s)

    # --- threads ---

    def resolve_thread(self, principal: Principal, thread: Thread | None, thread_id: str | None) -> Thread:
        """The thread a request is about: sent whole, or kept by the service under an id."""
        if (thread is None) == (thread_id is None):
            raise InvalidInput("send either 'thread' (the whole thread) or 'thread_id' (a thread kept by the "
                               "service), not both")
        if thread_id is not None:
            return self.store.thread(principal.tenant, thread_id).thread
        assert thread is not None
        if thread.tenant and thread.tenant != principal.tenant:
            raise InvalidInput(f"the thread names tenant {thread.tenant!r}, but the key belongs to "
                               f"{principal.tenant!r}")
        if len(thread.messages) > self.settings.max_thread_messages:
            raise InvalidInput(f"a thread holds at most {self.settings.max_thread_messages} messages; this one "
                               f"has {len(thread.messages)}")
        return thread.model_copy(update={"tenant": principal.tenant})

    def put_thread(self, principal: Principal, thread_id: str, thread: Thread) -> StoredThread:
        if thread.tenant and thread.tenant != principal.tenant:
            raise InvalidInput(f"the thread names tenant {thread.tenant!r}, but the key belongs to "
                               f"{principal.tenant!r}")
        if thread.id and thread.id != thread_id:
            raise InvalidInput(f"the body's thread id {thread.id!r} differs from the path's {thread_id!r}")
        return self.store.put_thread(principal.tenant, thread_id, thread, self.settings.max_thread_messages)

    def append(self, principal: Principal, thread_id: str,
               messages: Sequence[Message]) -> tuple[AppendResult, Summary | None]:
        """Append messages; a thread that was quiet longer than ``catch_up_after_s`` comes back with a
        catch-up summary for the agent who picks it up again."""
        result = self.store.append_messages(principal.tenant, thread_id, messages, self.settings.max_thread_messages)
        catch_up = None
        if result.idle_s is not None and result.idle_s >= self.settings.catch_up_after_s:
            catch_up = self.engines.summarize(principal.tenant, result.thread.thread, style="catch_up")
        return result, catch_up

    def thread_item(self, principal: Principal, thread_id: str, updated_at: datetime) -> ThreadListItem:
        """A kept thread as a queue shows it: who wrote last, since when the customer waits, how urgent."""
        thread = self.store.thread(principal.tenant, thread_id).thread
        last = thread.messages[-1] if thread.messages else None
        moods = customer_moods(thread)
        mood = moods[-1] if moods and last is not None and last.role == Role.CUSTOMER else None
        return ThreadListItem(
            id=thread_id, channel=thread.channel.value, message_count=len(thread.messages), updated_at=updated_at,
            customer_name=thread.customer.name, preview=mask_personal_data(last.text)[:160] if last else "",
            last_role=last.role.value if last else None, waiting_since=waiting_since(thread),
            urgency=mood.urgency if mood else 0.0, urgency_cues=mood.cues if mood else [])

    # --- the engines ---

    def suggest(self, principal: Principal, thread: Thread, *, engine: str | None, n: int) -> SuggestionSet:
        result = self.engines.suggest(principal.tenant, thread, engine=engine, n=n)
        self._record(principal, thread, result)
        return result

    def _record(self, principal: Principal, thread: Thread, result: SuggestionSet) -> None:
        result.intent = self.engines.intent_of(principal.tenant, result.query)
        self.store.record_suggestions(principal.tenant, result, key_id=principal.key_id, intent=result.intent,
                                      thread=thread.model_dump(mode="json", exclude_none=True))
        if self.on_suggestions is not None:
            self.on_suggestions(result)

    def stream(self, principal: Principal, thread: Thread, *, engine: str | None) -> Iterator[dict[str, Any]]:
        """The llm engine's deltas, then the checked result, which is recorded like any suggestion set."""
        for event in self.engines.stream(principal.tenant, thread, engine=engine):
            if event["type"] == "done":
                self._record(principal, thread, event["result"])
            yield event

    def summarize(self, principal: Principal, thread: Thread, *, style: str, engine: str | None) -> Summary:
        return self.engines.summarize(principal.tenant, thread, style=style, engine=engine)

    def next_actions(self, principal: Principal, thread: Thread, *, done_actions: Sequence[str],
                     n: int) -> NextActions:
        return self.engines.next_actions(principal.tenant, thread, done_actions=done_actions, n=n)

    # --- feedback ---

    def feedback(self, principal: Principal, suggestion_id: str, event: str, *, final_text: str | None,
                 reason: str | None) -> dict[str, Any]:
        suggestion = self.store.suggestion(principal.tenant, suggestion_id)
        if event == "edited" and not final_text:
            raise InvalidInput("an 'edited' event needs 'final_text': the text the agent sent")
        if event == "rejected" and not reason:
            raise InvalidInput("a 'rejected' event needs a 'reason'")
        distance = ratio = None
        if event in ("accepted", "edited"):
            sent = final_text if final_text is not None else suggestion.text
            distance = Levenshtein.distance(suggestion.text, sent)
            ratio = Levenshtein.normalized_distance(suggestion.text, sent)
        feedback_id = self.store.add_feedback(principal.tenant, suggestion_id, event, final_text=final_text,
                                              reason=reason, edit_distance=distance, edit_ratio=ratio,
                                              key_id=principal.key_id)
        return {"id": feedback_id, "suggestion_id": suggestion_id, "event": event, "edit_distance": distance,
                "edit_ratio": ratio}

    # --- knowledge uploads ---

    def upload(self, principal: Principal, uploads: Sequence[Upload]) -> tuple[IngestReport | None, str | None]:
        """Store the files and ingest them: small uploads at once (the report), large ones as a job (its id)."""
        if not uploads:
            raise InvalidInput("send at least one file")
        ids = [check_document_id(u.document_id) for u in uploads]
        if len(set(ids)) != len(ids):
            raise InvalidInput("each file must become a different document id")
        for upload in uploads:
            if len(upload.data) > self.settings.max_file_bytes:
                raise TooLarge(f"{upload.document_id} is {len(upload.data):,} bytes; the limit is "
                               f"{self.settings.max_file_bytes:,}")
        paths = self._save(principal.tenant, uploads)
        if sum(len(u.data) for u in uploads) <= self.settings.upload_sync_bytes:
            return self._ingest_files(principal.tenant, paths, by=principal.key_id), None
        job = self.store.create_job(principal.tenant, "ingest", total=len(paths), key_id=principal.key_id,
                                    owner=str(self.owner))
        self._jobs.submit(self._run_ingest_job, job.id, principal.tenant, paths, principal.key_id)
        return None, job.id

    def _save(self, tenant: str, uploads: Sequence[Upload]) -> list[tuple[Path, str]]:
        root = (self.uploads_dir / tenant).resolve()
        saved = []
        for upload in uploads:
            path = (root / upload.document_id).resolve()
            if root not in path.parents:
                raise InvalidInput(f"invalid document id {upload.document_id!r}")
            tmp = path.with_name(path.name + ".part")
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp.write_bytes(upload.data)
                tmp.replace(path)
            except OSError as exc:  # a full or read-only disk: a 503 that says so, not a 500
                with contextlib.suppress(OSError):
                    tmp.unlink(missing_ok=True)
                raise storage_error(exc, f"saving the upload {upload.document_id!r}") from exc
            saved.append((path, upload.document_id))
        return saved

    def _ingest_files(self, tenant: str, paths: Sequence[tuple[Path, str]], *, by: str,
                      progress: Callable[[int, str], None] | None = None) -> IngestReport:
        report = IngestReport()
        for done, (path, document_id) in enumerate(paths, start=1):
            try:
                document: SourceDocument = load_document(path, document_id, self.settings.max_file_bytes)
            except DocumentError as exc:
                report.failed.append({"path": document_id, "error": exc.message})
            else:
                part = self.kb.ingest_documents(tenant, [document], by=by)
                report.added += part.added
                report.updated += part.updated
                report.unchanged += part.unchanged
                report.chunks += part.chunks
                report.chunks_removed += part.chunks_removed
                report.failed += part.failed
                report.flagged += part.flagged
            if progress:
                progress(done, document_id)
        return report

    def _run_ingest_job(self, job_id: str, tenant: str, paths: Sequence[tuple[Path, str]], by: str) -> None:
        self.store.update_job(job_id, status="running")
        try:
            report = self._ingest_files(tenant, paths, by=by, progress=lambda done, current: self.store.update_job(
                job_id, done=done, current=current))
        except CopilotError as exc:
            self.store.update_job(job_id, status="failed", error=exc.message)
        except Exception as exc:  # a job must never die silently: the console polls its status
            log.exception("ingest job failed", extra={"job_id": job_id})
            self.store.update_job(job_id, status="failed", error=f"internal error: {type(exc).__name__}")
        else:
            self.store.update_job(job_id, status="succeeded", result=report.as_json())

    # --- evals ---

    def start_eval(self, principal: Principal, suite: Suite, *, engine: str | None,
                   baseline_run_id: str | None) -> str:
        """Queue a suite run on the tenant's live knowledge; the job id is the run id."""
        check_threshold_names(suite.meta.thresholds)
        self.engines.engine(engine or suite.meta.engine)  # an llm run without an LLM fails now, not in the job
        baseline = None
        if baseline_run_id is not None:
            baseline = self.store.eval_run(principal.tenant, baseline_run_id)
            if baseline is None:
                raise NotFound(f"no eval run {baseline_run_id!r} to compare with", run_id=baseline_run_id)
        job = self.store.create_job(principal.tenant, "eval", total=len(suite.cases), key_id=principal.key_id,
                                    owner=str(self.owner))
        self._jobs.submit(self._run_eval_job, job.id, principal, suite, engine, baseline)
        return job.id

    def _run_eval_job(self, job_id: str, principal: Principal, suite: Suite, engine: str | None,
                      baseline: dict[str, Any] | None) -> None:
        self.store.update_job(job_id, status="running")
        target = EngineTarget(self.engines, threads=lambda tenant, thread_id: self.store.thread(tenant, thread_id)
                              .thread)
        try:
            run = run_suite(suite, target, engine=engine, baseline=baseline, progress=lambda p: self.store.update_job(
                job_id, done=p.done, current=p.case_id))
            run["id"] = job_id
            self.store.save_eval_run(principal.tenant, run, key_id=principal.key_id)
        except CopilotError as exc:
            self.store.update_job(job_id, status="failed", error=exc.message)
        except Exception as exc:  # never silent: QA polls the status
            log.exception("eval job failed", extra={"job_id": job_id})
            self.store.update_job(job_id, status="failed", error=f"internal error: {type(exc).__name__}")
        else:
            self.store.update_job(job_id, status="succeeded", result={
                "run_id": job_id, "passed": run["passed"], "errors": run["errors"],
                "metrics": {name: m["value"] for name, m in run.get("metrics", {}).items()}})

    def wait_for_jobs(self) -> None:
        """Block until queued jobs ran (tests and a clean shutdown)."""
        self._jobs.submit(lambda: None).result()

    def remove_document(self, principal: Principal, document_id: str) -> int:
        self.kb.document(principal.tenant, document_id)
        return self.kb.remove(principal.tenant, document_id, by=principal.key_id)

    def ingest_structured(self, principal: Principal, document: SourceDocument) -> IngestReport:
        return self.kb.ingest_documents(principal.tenant, [document], by=principal.key_id)


def period(since: datetime | None, until: datetime | None, *, now: datetime,
           days: int = 30) -> tuple[datetime, datetime]:
    """The analytics period: the last ``days`` days unless named; both ends must be in order."""
    end = until or now
    start = since or end - timedelta(days=days)
    if start >= end:
        raise InvalidInput("'since' must be before 'until'")
    return start, end
