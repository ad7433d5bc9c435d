"""Hostile uploads over HTTP: files over the size limit, zip and PDF decompression bombs, an XML entity bomb,
and PDFs that do not parse. Each is refused with a clear 4xx (problem+json) or a failed entry, stores
nothing in the knowledge, and leaves the other files of the same upload ingested.

Already covered elsewhere, so not repeated here: JSON bodies over the limit (tests/api/test_service_http.py),
a broken PDF inside a background job, and the loaders' own errors for corrupt or truncated PDF/DOCX
(tests/knowledge/test_loaders.py).
"""

from __future__ import annotations

import io
import time
import tracemalloc
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from api.deps import PROBLEM
from knowledge.base import KnowledgeBase
from knowledge.loaders import DOCX_MAX_UNPACKED_BYTES
from tests.api.conftest import Api, make_api

MAX_FILE = 1024 * 1024
GOOD = ("refunds.md", b"# Refunds\n\nRefunds go back to the card you paid with within 5 to 7 working days.\n")


@pytest.fixture
def api(kb: KnowledgeBase) -> Iterator[Api]:
    settings = kb.settings.model_copy(update={"max_file_bytes": MAX_FILE, "upload_sync_bytes": 10 * MAX_FILE})
    yield from make_api(settings, kb, "acme")


def upload(api: Api, *files: tuple[str, bytes]) -> Any:
    return api.client.post("/v1/knowledge/documents", headers=api.headers("content"),
                           files=[("files", (name, data, "application/octet-stream")) for name, data in files])


def documents(api: Api) -> list[str]:
    listed = api.client.get("/v1/knowledge/documents", headers=api.headers("content")).json()
    return [d["document_id"] for d in listed["documents"]]


def assert_problem(response: Any, status: int, kind: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["type"].endswith(f"/{kind}") and body["status"] == status and body["detail"], body
    return body


def assert_nothing_stored(api: Api) -> None:
    assert documents(api) == []
    assert api.service.kb.registry.knowledge_version("acme") == 0
    assert api.service.kb.registry.chunk_count("acme") == 0


def docx_bytes(text: str = "Refunds go back to the card you paid with.", *, padding: int = 0,
               document_xml: str | None = None) -> bytes:
    """A real DOCX (python-docx); ``padding`` bytes of text added inside its body, written compressed as they
    stream so a bomb is built without holding it; or its word/document.xml replaced."""
    import docx

    word = docx.Document()
    word.add_paragraph(text)
    raw = io.BytesIO()
    word.save(raw)
    source = zipfile.ZipFile(io.BytesIO(raw.getvalue()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as bomb:
        for info in source.infolist():
            if info.filename != "word/document.xml":
                bomb.writestr(info.filename, source.read(info.filename))
                continue
            xml = document_xml or source.read(info.filename).decode("utf-8")
            head, tail = xml.split("</w:body>")
            with bomb.open(info.filename, "w", force_zip64=True) as part:
                part.write((head + "<w:p><w:r><w:t>").encode())
                chunk = b"A" * (1 << 20)
                for _ in range(padding >> 20):
                    part.write(chunk)
                part.write(("</w:t></w:r></w:p></w:body>" + tail).encode())
    return out.getvalue()


@pytest.fixture(scope="module")
def zip_bomb() -> bytes:
    """A DOCX of about 300 KB that unpacks to four times the loader's limit (256 MiB today)."""
    return docx_bytes(padding=4 * DOCX_MAX_UNPACKED_BYTES)


def pdf_bytes(content: bytes) -> bytes:
    """A one-page PDF whose content stream (Flate-compressed) is ``content``."""
    stream = zlib.compress(content, 9)
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
               b"/Resources << /Font << /F1 5 0 R >> >> >>",
               b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream + b"\nendstream",
               b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


PDF_TEXT = b"BT /F1 12 Tf 72 720 Td (Refunds take five working days.) Tj ET"


# --- size limits ----------------------------------------------------------------------------------------

def test_a_file_over_max_file_bytes_is_413_and_nothing_of_the_upload_is_stored(api: Api) -> None:
    big = ("big.md", b"# Big\n\n" + b"Roaming costs five pounds a day. " * (MAX_FILE // 32 + 1))
    assert len(big[1]) > MAX_FILE

    response = upload(api, GOOD, big)

    body = assert_problem(response, 413, "too-large")
    assert "big.md" in body["detail"] and f"{MAX_FILE:,}" in body["detail"]
    assert_nothing_stored(api)  # the good file beside it was not ingested either: the upload is refused whole
    assert not (api.service.uploads_dir / "acme").exists()  # not even staged on disk


def test_a_body_over_the_upload_limit_is_413_before_it_is_read(api: Api) -> None:
    huge = ("huge.md", b"x" * (10 * MAX_FILE + 1))  # the multipart limit is ten files' worth

    body = assert_problem(upload(api, huge), 413, "too-large")

    assert f"{10 * MAX_FILE:,}" in body["detail"]
    assert_nothing_stored(api)


def test_a_streamed_upload_without_a_length_over_the_limit_is_413(api: Api) -> None:
    """A chunked upload (no Content-Length) is counted as it arrives and refused once over the limit."""
    boundary = "securitytestboundary"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"huge.md\"\r\n"
            "Content-Type: text/markdown\r\n\r\n").encode()

    def body() -> Iterator[bytes]:
        yield head
        for _ in range(11):
            yield b"x" * MAX_FILE
        yield f"\r\n--{boundary}--\r\n".encode()

    response = api.client.post("/v1/knowledge/documents", content=body(),
                               headers={**api.headers("content"),
                                        "Content-Type": f"multipart/form-data; boundary={boundary}"})

    assert "content-length" not in response.request.headers
    assert_problem(response, 413, "too-large")
    assert_nothing_stored(api)


def test_a_streamed_json_body_without_a_length_over_the_limit_is_413(api: Api) -> None:
    limit = api.service.settings.max_body_bytes
    text = "x" * limit

    def body() -> Iterator[bytes]:
        yield b'{"thread": {"messages": [{"role": "customer", "text": "'
        yield text.encode()
        yield b'"}]}}'

    response = api.client.post("/v1/suggestions", content=body(),
                               headers={**api.headers(), "Content-Type": "application/json"})

    assert "content-length" not in response.request.headers
    body_ = assert_problem(response, 413, "too-large")
    assert f"{limit:,}" in body_["detail"]


# --- decompression bombs --------------------------------------------------------------------------------

def test_a_docx_zip_bomb_is_refused_without_being_unpacked(api: Api, zip_bomb: bytes) -> None:
    assert len(zip_bomb) < MAX_FILE  # small enough to pass the size limit: only its unpacked size gives it away
    with zipfile.ZipFile(io.BytesIO(zip_bomb)) as archive:
        assert sum(i.file_size for i in archive.infolist()) > 4 * DOCX_MAX_UNPACKED_BYTES

    tracemalloc.start()
    try:
        started = time.perf_counter()
        response = upload(api, ("bomb.docx", zip_bomb))
        seconds = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    body = assert_problem(response, 422, "document-error")
    assert "bomb.docx" in body["detail"] and "unpacks to" in body["detail"]
    assert peak < 32 * 1024 * 1024, f"{peak:,} bytes allocated: the bomb was unpacked"
    assert seconds < 10
    assert_nothing_stored(api)


def test_a_zip_bomb_fails_alone_and_the_files_beside_it_are_ingested(api: Api, zip_bomb: bytes) -> None:
    response = upload(api, ("bomb.docx", zip_bomb), GOOD, ("returns.docx", docx_bytes("Returns are free.")))

    assert response.status_code == 201, response.text
    report = response.json()["report"]
    assert report["added"] == 2 and [f["path"] for f in report["failed"]] == ["bomb.docx"]
    assert sorted(documents(api)) == ["refunds.md", "returns.docx"]


def test_a_docx_with_an_xml_entity_bomb_is_not_expanded(api: Api) -> None:
    body = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lollollollollollollollollollol">'
            + "".join(f'<!ENTITY lol{n} "{("&lol" + (str(n - 1) if n > 1 else "") + ";") * 10}">'
                      for n in range(1, 10))
            + ']><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>'
            "<w:p><w:r><w:t>Exchanges within 30 days. &lol9;</w:t></w:r></w:p></w:body></w:document>")

    started = time.perf_counter()
    response = upload(api, ("lolz.docx", docx_bytes(document_xml=body)))

    assert time.perf_counter() - started < 10
    assert response.status_code in (201, 422), response.text  # parsed without its entities, or refused
    stored = "\n".join(c.text for c in api.service.kb.registry.chunks("acme"))
    assert "lollol" not in stored


def test_a_pdf_decompression_bomb_is_refused(api: Api) -> None:
    bomb = pdf_bytes(PDF_TEXT + b"\n" + b" " * (100 * 1024 * 1024))  # 100 MiB of content in about 100 KB
    assert len(bomb) < MAX_FILE

    started = time.perf_counter()
    body = assert_problem(upload(api, ("bomb.pdf", bomb)), 422, "document-error")

    assert time.perf_counter() - started < 10
    assert "bomb.pdf" in body["detail"] and "limit" in body["detail"].lower()
    assert_nothing_stored(api)


# --- PDFs that do not parse ----------------------------------------------------------------------------

def test_pdfs_that_do_not_parse_fail_alone_and_the_rest_is_ingested(api: Api, tmp_path: Path) -> None:
    whole = pdf_bytes(PDF_TEXT)
    broken = [("garbage.pdf", b"%PDF-1.7\n" + bytes(range(256)) * 8), ("truncated.pdf", whole[: len(whole) // 2]),
              ("not-a-pdf.pdf", b"PK\x03\x04 this is a zip, not a PDF"), ("empty-text.pdf", pdf_bytes(b""))]

    response = upload(api, *broken, GOOD, ("whole.pdf", whole))

    assert response.status_code == 201, response.text
    report = response.json()["report"]
    failed = {f["path"]: f["error"] for f in report["failed"]}
    assert set(failed) == {name for name, _ in broken} and report["added"] == 2, report
    assert all("pdf" in error.lower() for error in failed.values()), failed
    assert sorted(documents(api)) == ["refunds.md", "whole.pdf"]
    found = api.client.get("/v1/knowledge/search", headers=api.headers(), params={"q": "refund working days"})
    assert {r["document_id"] for r in found.json()["results"]} == {"refunds.md", "whole.pdf"}


def test_an_upload_of_only_broken_pdfs_is_a_problem_naming_each(api: Api) -> None:
    response = upload(api, ("a.pdf", b"%PDF-1.4\n%%EOF"), ("b.pdf", b"not a pdf at all"))

    body = assert_problem(response, 422, "document-error")
    assert "a.pdf" in body["detail"] and "b.pdf" in body["detail"]
    assert_nothing_stored(api)
