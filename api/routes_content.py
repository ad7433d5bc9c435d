"""What content owners call: documents (upload, replace, delete, list with versions), the brand-voice guide
and its live check, macros and playbooks, and the jobs that ingest large uploads."""


from pathlib import Path as FilePath
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Path, UploadFile
from fastapi.responses import JSONResponse
from starlette.convertors import Convertor, register_url_convertor

from api.auth import Permission, Principal
from api.deps import caller, problems
from api.schemas import (
    ContentWrite,
    DocumentDetail,
    DocumentInfo,
    DocumentList,
    FlaggedDocument,
    IngestSummary,
    JobView,
    UploadResponse,
    VersionInfo,
    VoiceCheckRequest,
    VoiceCheckResponse,
    VoiceViolation,
)
from api.service import Service, Upload
from copilot.channels import CHANNELS, sms_length
from copilot.errors import DocumentError, InvalidInput, NotFound
from copilot.macros import Macro
from copilot.playbooks import Playbook
from copilot.voice import BrandVoice, VoiceChecker
from knowledge.documents import Kind
from knowledge.ingest import IngestReport
from knowledge.loaders import structured_document
from knowledge.registry import DocumentRecord


class _AnyPath(Convertor[str]):
    """Starlette's ``path`` converter, newlines included: a document id with one reaches its check and is
    refused there (422 with the rule), where ``path`` left the request unrouted (404; found by the fuzz test)."""

    regex = r"[\s\S]*"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("anypath", _AnyPath())

DocumentId = Annotated[str, Path(min_length=1, max_length=300, description="The document id, e.g. faq.csv or "
                                                                          "articles/billing/refunds.md.")]
ContentId = Annotated[str, Path(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
                                description="The macro or playbook id.")]


# FastAPI builds form bodies' schemas itself, so their examples go into the operation (a file's bytes as text).
_EXAMPLE_ARTICLE = ("# Refunds and account credit\n\nRefunds go back to the card you paid with within 5 to 7 "
                    "working days.\n")


def _multipart_example(value: dict[str, Any]) -> dict[str, Any]:
    return {"requestBody": {"content": {"multipart/form-data": {"example": value}}}}


def _info(record: DocumentRecord) -> dict[str, Any]:
    return dict(document_id=record.document_id, title=record.title, kind=record.kind, version=record.version,
                chunks=record.chunk_count, updated_at=record.updated_at, updated_by=record.updated_by,
                source=record.source, flagged=record.flagged)


def _summary(report: IngestReport) -> IngestSummary:
    return IngestSummary(added=report.added, updated=report.updated, unchanged=report.unchanged,
                         removed=report.removed, chunks=report.chunks, failed=report.failed,
                         flagged=[FlaggedDocument.model_validate(f) for f in report.flagged])


def router(service: Service) -> APIRouter:
    api = APIRouter(prefix="/v1")
    Content = Annotated[Principal, Depends(caller(service, Permission.CONTENT))]
    KnowledgeReader = Annotated[Principal, Depends(caller(service, Permission.SEARCH))]

    async def read_files(files: list[UploadFile], ids: list[str] | None) -> list[Upload]:
        if ids is not None and len(ids) != len(files):
            raise InvalidInput("give one 'document_id' per file, or none (the file names are used)")
        uploads = []
        for index, file in enumerate(files):
            data = await file.read(service.settings.max_file_bytes + 1)
            name = ids[index] if ids else FilePath(file.filename or "").name
            if not name:
                raise InvalidInput("each file needs a file name or a 'document_id'")
            uploads.append(Upload(name, data))
        return uploads

    def write(who: Principal, uploads: list[Upload]) -> JSONResponse:
        report, job_id = service.upload(who, uploads)
        if job_id is not None:
            body = UploadResponse(job_id=job_id)
            return JSONResponse(body.model_dump(mode="json"), status_code=202,
                                headers={"Location": f"/v1/jobs/{job_id}"})
        assert report is not None
        if report.failed and not (report.added or report.updated or report.unchanged):
            raise DocumentError("; ".join(f"{f['path']}: {f['error']}" for f in report.failed))
        status = 201 if report.added else 200
        return JSONResponse(UploadResponse(report=_summary(report)).model_dump(mode="json"), status_code=status)

    upload_responses: dict[int | str, dict[str, Any]] = {
        200: {"model": UploadResponse, "description": "Ingested now (documents updated or unchanged)."},
        201: {"model": UploadResponse, "description": "Ingested now; at least one document is new."},
        202: {"model": UploadResponse, "description": "A large upload: ingesting as a job (see Location)."},
        **problems(409, 413, 415)}

    @api.post("/knowledge/documents", responses=upload_responses, response_model=UploadResponse, tags=["knowledge"],
              summary="Upload documents (Markdown, HTML, PDF, DOCX, text, FAQ CSV/JSON, YAML for brand voice, "
                      "macros and playbooks, labelled past threads as *.history.jsonl). Unchanged content is not "
                      "re-indexed.",
              openapi_extra=_multipart_example({"files": [_EXAMPLE_ARTICLE],
                                                "document_id": ["articles/billing/refunds.md"]}))
    async def upload(who: Content,
                     files: Annotated[list[UploadFile], File(description="One or more files.")],
                     document_id: Annotated[list[str] | None, Form(
                         description="Optional document ids, one per file (default: the file name).")] = None,
                     ) -> JSONResponse:
        return write(who, await read_files(files, document_id))

    @api.put("/knowledge/documents/{document_id:anypath}", responses=upload_responses, response_model=UploadResponse,
             tags=["knowledge"], summary="Replace a document with a new file (or create it under this id).",
             openapi_extra=_multipart_example({"file": _EXAMPLE_ARTICLE}))
    async def replace(document_id: DocumentId, who: Content,
                      file: Annotated[UploadFile, File(description="The new content.")]) -> JSONResponse:
        return write(who, await read_files([file], [document_id]))

    @api.get("/knowledge/documents", response_model=DocumentList, responses=problems(), tags=["knowledge"],
             summary="The tenant's documents with their versions.")
    def list_documents(who: Content) -> DocumentList:
        records = service.kb.documents(who.tenant)
        return DocumentList(documents=[DocumentInfo(**_info(r)) for r in records],
                            knowledge_version=service.kb.registry.knowledge_version(who.tenant))

    @api.get("/knowledge/documents/{document_id:anypath}", response_model=DocumentDetail, responses=problems(404),
             tags=["knowledge"], summary="One document with its version history.")
    def get_document(document_id: DocumentId, who: Content) -> DocumentDetail:
        record = service.kb.document(who.tenant, document_id)
        history = [VersionInfo(version=v.version, action=v.action, chunks=v.chunk_count, at=v.at, by=v.by)
                   for v in service.kb.history(who.tenant, document_id)]
        return DocumentDetail(**_info(record), history=history)

    @api.delete("/knowledge/documents/{document_id:anypath}", status_code=204, responses=problems(404),
                tags=["knowledge"], summary="Remove a document: its passages leave search at once.")
    def delete_document(document_id: DocumentId, who: Content) -> None:
        service.remove_document(who, document_id)

    # --- brand voice ---

    def voice_record(tenant: str) -> DocumentRecord | None:
        records = service.kb.documents(tenant, Kind.BRAND_VOICE.value)
        return records[0] if records else None

    @api.get("/brand-voice", response_model=BrandVoice, responses=problems(404), tags=["brand voice"],
             summary="The tenant's brand-voice guide.")
    def get_voice(who: KnowledgeReader) -> BrandVoice:
        record = voice_record(who.tenant)
        if record is None or not record.payload:
            raise NotFound("this tenant has no brand-voice guide yet; PUT /v1/brand-voice")
        return BrandVoice.model_validate(record.payload)

    @api.put("/brand-voice", response_model=ContentWrite, responses=problems(413, 415), tags=["brand voice"],
             summary="Replace the brand-voice guide.")
    def put_voice(body: BrandVoice, who: Content) -> ContentWrite:
        record = voice_record(who.tenant)
        document_id = record.document_id if record else "brand-voice.json"
        return store(who, {**body.model_dump(mode="json"), "kind": "brand_voice"}, document_id)

    @api.post("/brand-voice/check", response_model=VoiceCheckResponse, responses=problems(404, 413, 415),
              tags=["brand voice"],
              summary="Check a draft against the brand voice and the channel: violations with spans, and the "
                      "mechanical fixes.")
    def check_voice(body: VoiceCheckRequest, who: KnowledgeReader) -> VoiceCheckResponse:
        checker = VoiceChecker(get_voice(who))
        channel = body.channel.value
        violations = checker.check(body.text, channel, verified=body.verified)
        fixed = checker.apply(body.text, channel, verified=body.verified)
        rules = CHANNELS.get(channel)
        sms = sms_length(fixed.text) if channel == "sms" else None

        def view(v: Any) -> VoiceViolation:
            return VoiceViolation(rule=v.rule, start=v.start, end=v.end, text=v.text, message=v.message, fix=v.fix)

        return VoiceCheckResponse(violations=[view(v) for v in violations], fixed_text=fixed.text,
                                  changes=fixed.changes, remaining=[view(v) for v in fixed.remaining],
                                  length=len(fixed.text), limit=rules.max_chars if rules else None,
                                  sms_segments=sms.segments if sms else None)

    # --- macros and playbooks ---

    def store(who: Principal, value: dict[str, Any], document_id: str) -> ContentWrite:
        document = structured_document(value, FilePath("api"), document_id)
        document.source = f"api:{who.key_id}"
        service.ingest_structured(who, document)
        return ContentWrite(document_id=document_id, version=service.kb.document(who.tenant, document_id).version)

    def macro_documents(tenant: str) -> list[DocumentRecord]:
        return [r for r in service.kb.documents(tenant, Kind.MACRO.value) if r.payload]

    @api.get("/macros", response_model=list[Macro], responses=problems(), tags=["macros and playbooks"],
             summary="The tenant's macros (canned responses with placeholders).")
    def list_macros(who: KnowledgeReader) -> list[Macro]:
        return [Macro.model_validate(m) for r in macro_documents(who.tenant) for m in r.payload["macros"]]  # type: ignore[index]

    @api.put("/macros/{macro_id}", response_model=ContentWrite, responses=problems(413, 415),
             tags=["macros and playbooks"],
             summary="Create or replace one macro (in the document that holds it, else in macros.json).")
    def put_macro(macro_id: ContentId, body: Macro, who: Content) -> ContentWrite:
        if body.id != macro_id:
            raise InvalidInput(f"the body's id {body.id!r} differs from the path's {macro_id!r}")
        records = macro_documents(who.tenant)
        home = next((r for r in records if any(m["id"] == macro_id for m in r.payload["macros"])), None)  # type: ignore[index]
        home = home or next((r for r in records if r.document_id == "macros.json"), None)
        macros = [m for m in (home.payload["macros"] if home and home.payload else []) if m["id"] != macro_id]
        macros.append(body.model_dump(mode="json"))
        return store(who, {"kind": "macros", "title": home.title if home else "Macros", "macros": macros},
                     home.document_id if home else "macros.json")

    @api.delete("/macros/{macro_id}", status_code=204, responses=problems(404), tags=["macros and playbooks"],
                summary="Remove one macro.")
    def delete_macro(macro_id: ContentId, who: Content) -> None:
        home = next((r for r in macro_documents(who.tenant)
                     if any(m["id"] == macro_id for m in r.payload["macros"])), None)  # type: ignore[index]
        if home is None or home.payload is None:
            raise NotFound(f"no macro {macro_id!r}")
        rest = [m for m in home.payload["macros"] if m["id"] != macro_id]
        if rest:
            store(who, {"kind": "macros", "title": home.title, "macros": rest}, home.document_id)
        else:
            service.remove_document(who, home.document_id)

    def playbook_documents(tenant: str) -> list[DocumentRecord]:
        return [r for r in service.kb.documents(tenant, Kind.PLAYBOOK.value) if r.payload]

    @api.get("/playbooks", response_model=list[Playbook], responses=problems(), tags=["macros and playbooks"],
             summary="The tenant's playbooks (procedures the next-best actions follow).")
    def list_playbooks(who: KnowledgeReader) -> list[Playbook]:
        return [Playbook.model_validate(r.payload) for r in playbook_documents(who.tenant)]

    @api.put("/playbooks/{playbook_id}", response_model=ContentWrite, responses=problems(413, 415),
             tags=["macros and playbooks"], summary="Create or replace one playbook.")
    def put_playbook(playbook_id: ContentId, body: Playbook, who: Content) -> ContentWrite:
        if body.id != playbook_id:
            raise InvalidInput(f"the body's id {body.id!r} differs from the path's {playbook_id!r}")
        home = next((r for r in playbook_documents(who.tenant) if (r.payload or {}).get("id") == playbook_id), None)
        return store(who, {**body.model_dump(mode="json"), "kind": "playbook"},
                     home.document_id if home else f"playbooks/{playbook_id}.json")

    @api.delete("/playbooks/{playbook_id}", status_code=204, responses=problems(404), tags=["macros and playbooks"],
                summary="Remove one playbook.")
    def delete_playbook(playbook_id: ContentId, who: Content) -> None:
        home = next((r for r in playbook_documents(who.tenant) if (r.payload or {}).get("id") == playbook_id), None)
        if home is None:
            raise NotFound(f"no playbook {playbook_id!r}")
        service.remove_document(who, home.document_id)

    # --- jobs ---

    JobReader = Annotated[Principal, Depends(caller(service, Permission.JOBS))]

    @api.get("/jobs/{job_id}", response_model=JobView, responses=problems(404), tags=["knowledge"],
             summary="A background job's status and progress.")
    def get_job(job_id: Annotated[str, Path(max_length=40, description="The job id.")], who: JobReader) -> JobView:
        job = service.store.job(who.tenant, job_id)
        return JobView(id=job.id, kind=job.kind, status=job.status, done=job.done,
                       total=job.total, progress=round(job.done / job.total, 4) if job.total else 0.0,
                       current=job.current, result=job.result, error=job.error, created_at=job.created_at,
                       updated_at=job.updated_at)

    return api
