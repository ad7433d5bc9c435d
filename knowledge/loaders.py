"""Loaders: one file in, one ``SourceDocument`` out, through well-kept parsers.

Markdown (markdown-it-py, python-frontmatter), HTML (BeautifulSoup), PDF (pypdf), DOCX (python-docx),
plain text, FAQ as CSV/JSON, intent sets as CSV, the structured kinds (brand voice, macros, playbooks) as
YAML/JSON, and labelled history as ``*.history.jsonl`` (``knowledge.action_history``).
Every failure is a ``DocumentError`` naming the file, so ingestion reports it and goes on.
"""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path, PurePosixPath
from typing import Any

import frontmatter
import yaml
from bs4 import BeautifulSoup, Tag
from markdown_it import MarkdownIt
from pydantic import ValidationError

from copilot.errors import DocumentError, EmptyDocument, FileTooLarge, UnsupportedFormat, describe_validation_error
from copilot.macros import MacroSet
from copilot.playbooks import Playbook
from copilot.voice import BrandVoice
from knowledge.action_history import HISTORY_SUFFIX, history_document
from knowledge.documents import Kind, Section, SourceDocument

SUPPORTED_SUFFIXES = {
    ".md", ".markdown", ".html", ".htm", ".pdf", ".docx", ".txt", ".csv", ".json", ".yaml", ".yml",
}
# What a file's name must end in to be knowledge, for the messages that list them
SUPPORTED_NAMES = ", ".join([*sorted(SUPPORTED_SUFFIXES), f"*{HISTORY_SUFFIX}"])
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden|font-size\s*:\s*0", re.I)
_BOILERPLATE_TAGS = ["script", "style", "noscript", "template", "nav", "footer", "aside", "form",
                     "iframe", "svg", "button"]
_BLOCK_TAGS = ["p", "li", "td", "th", "pre", "blockquote", "dd", "dt", "figcaption", "caption", "div"]
_HEADING_TAGS = ["h1", "h2", "h3", "h4", "h5", "h6"]
_PLACEHOLDER_TITLES = {"untitled", "untitled document", "(anonymous)", "none", ""}
# A DOCX is a zip whose parts python-docx reads whole: a small file can unpack to gigabytes (a zip bomb).
# zipfile stops each part at its declared size, so the declared sizes bound what is read.
DOCX_MAX_UNPACKED_BYTES = 64 * 1024 * 1024
DOCX_MAX_PARTS = 5000


def file_format(name: str) -> str | None:
    """The format a file name says: ``.history.jsonl`` or its suffix; None when it is not a knowledge file."""
    lowered = name.lower()
    if lowered.endswith(HISTORY_SUFFIX):
        return HISTORY_SUFFIX
    suffix = PurePosixPath(lowered).suffix
    return suffix if suffix in SUPPORTED_SUFFIXES else None


def load_document(path: Path, document_id: str, max_bytes: int) -> SourceDocument:
    """Read and parse one file; raises a ``DocumentError`` subclass when it cannot."""
    suffix = file_format(path.name)
    if suffix is None:
        raise UnsupportedFormat(
            f"unsupported file type {path.suffix.lower() or '(none)'}; supported: {SUPPORTED_NAMES}", str(path),
        )
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise FileTooLarge(f"file is {size:,} bytes, over the limit of {max_bytes:,}", str(path))
        if size == 0:
            raise EmptyDocument("file is empty", str(path))
        data = path.read_bytes()
    except OSError as exc:
        raise DocumentError(f"cannot read file: {exc.strerror or exc}", str(path)) from exc
    loader = _LOADERS[suffix]
    try:
        document = loader(data, path, document_id)
    except DocumentError as exc:
        exc.path = exc.path or str(path)
        raise
    except Exception as exc:  # a parser's own errors, or a shape we did not expect: this file only
        raise DocumentError(f"cannot parse {suffix} file: {exc}", str(path)) from exc
    document.sections = [s for s in document.sections if s.text.strip()]
    if not document.sections and document.payload is None:
        raise EmptyDocument("no text found in the file", str(path))
    return document


def decode_text(data: bytes, path: Path) -> str:
    """UTF-8 text (a BOM is allowed); anything else is refused with the reason."""
    if b"\x00" in data[:8192]:
        raise UnsupportedFormat("file looks binary (it has NUL bytes) but its name says text", str(path))
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DocumentError(
            f"file is not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start}); save it as UTF-8",
            str(path),
        ) from exc


def title_from_path(path: Path) -> str:
    return re.sub(r"[-_]+", " ", path.stem).strip().capitalize() or path.name


def tags_from_id(document_id: str) -> list[str]:
    """Folder names become tags: ``articles/billing/x.md`` is tagged billing."""
    parts = PurePosixPath(document_id).parts[:-1]
    return [p for p in parts if p not in ("articles", ".", "")]


# --- plain text -------------------------------------------------------------------------------

def _looks_like_heading(line: str) -> bool:
    words = line.split()
    return 0 < len(words) <= 12 and not re.search(r"[.,;!?]\s*$", line) and len(line) <= 100


def sections_from_plain_text(text: str) -> list[Section]:
    """Split text into sections: a short line without final punctuation that opens a block is a heading."""
    sections: list[Section] = []
    heading: tuple[str, ...] = ()
    body: list[str] = []

    def flush() -> None:
        if body:
            sections.append(Section(path=heading, text="\n\n".join(body)))
            body.clear()

    for block in re.split(r"\n\s*\n", text.replace("\r\n", "\n")):
        lines = [ln.strip() for ln in block.strip().split("\n") if ln.strip()]
        if not lines:
            continue
        if _looks_like_heading(lines[0]) and (len(lines) > 1 or len(lines[0].split()) <= 8):
            flush()
            heading = (lines[0],)
            lines = lines[1:]
        if lines:
            body.append(" ".join(lines))
    flush()
    return sections


def _load_text(data: bytes, path: Path, document_id: str) -> SourceDocument:
    text = decode_text(data, path)
    first_line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    title = first_line if _looks_like_heading(first_line) else title_from_path(path)
    sections = sections_from_plain_text(text)
    if sections and sections[0].path == (title,):
        sections[0].path = ()
    return SourceDocument(document_id, title, Kind.ARTICLE, str(path), sections, tags=tags_from_id(document_id))


# --- markdown ---------------------------------------------------------------------------------

_markdown = MarkdownIt("commonmark").enable("table")


def _inline_text(children: Iterable[Any]) -> str:
    out: list[str] = []
    href: str | None = None
    link_text: list[str] = []
    for child in children:
        if child.type == "link_open":
            href = child.attrs.get("href")
            link_text = []
        elif child.type == "link_close":
            label = "".join(link_text)
            out.append(label if not href or href == label else f"{label} ({href})")
            href = None
        elif child.type in ("text", "code_inline"):
            (link_text if href is not None else out).append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            (link_text if href is not None else out).append(" ")
    return "".join(out).strip()


def sections_from_markdown(body: str) -> tuple[str | None, list[Section]]:
    """Sections by heading path; returns the first H1 (a title) and the sections."""
    tokens = _markdown.parse(body)
    title: str | None = None
    stack: list[tuple[int, str]] = []
    sections: list[Section] = []
    paragraphs: list[str] = []
    pending_heading: int | None = None
    list_depth = 0

    def path() -> tuple[str, ...]:
        return tuple(text for _, text in stack)

    def flush() -> None:
        if paragraphs:
            sections.append(Section(path=path(), text="\n\n".join(paragraphs)))
            paragraphs.clear()

    for token in tokens:
        if token.type == "heading_open":
            pending_heading = int(token.tag[1])
        elif token.type == "inline" and pending_heading is not None:
            text = _inline_text(token.children or [])
            if pending_heading == 1 and title is None and not sections and not paragraphs:
                title = text
            else:
                flush()
                while stack and stack[-1][0] >= pending_heading:
                    stack.pop()
                stack.append((pending_heading, text))
            pending_heading = None
        elif token.type in ("bullet_list_open", "ordered_list_open"):
            list_depth += 1
        elif token.type in ("bullet_list_close", "ordered_list_close"):
            list_depth -= 1
        elif token.type == "inline":
            text = _inline_text(token.children or [])
            if text:
                paragraphs.append(f"- {text}" if list_depth else text)
        elif token.type in ("fence", "code_block") and token.content.strip():
            paragraphs.append(token.content.strip())
    flush()
    # list items are separate paragraphs above; join runs of them into one block of lines
    for section in sections:
        section.text = re.sub(r"\n\n(?=- )", "\n", section.text)
    return title, sections


def _load_markdown(data: bytes, path: Path, document_id: str) -> SourceDocument:
    text = decode_text(data, path)
    post = frontmatter.loads(text)
    meta = dict(post.metadata)
    kind = str(meta.get("kind", "article"))
    if kind == Kind.BRAND_VOICE:
        return structured_document(meta | {"guide": post.content}, path, document_id)
    if kind not in (Kind.ARTICLE, Kind.FAQ):
        raise DocumentError(f"front matter kind {kind!r} is not valid in Markdown (article, brand_voice)")
    h1, sections = sections_from_markdown(post.content)
    title = str(meta.get("title") or h1 or title_from_path(path))
    return SourceDocument(
        str(meta.get("id") or document_id), title, Kind.ARTICLE, str(meta.get("source") or path), sections,
        locale=str(meta.get("locale", "en")), tags=_tags(meta.get("tags")) or tags_from_id(document_id),
    )


def _tags(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [t.strip() for t in re.split(r"[;,]", value) if t.strip()]
    if isinstance(value, list):
        return [str(t).strip() for t in value if str(t).strip()]
    raise DocumentError(f"tags must be a list or a string, not {type(value).__name__}")


class _Outline:
    """Builds sections from a stream of headings and text blocks; the first level-1 heading is the title."""

    def __init__(self, title: str | None = None) -> None:
        self.title = title
        self.sections: list[Section] = []
        self._stack: list[tuple[int, str]] = []

    def heading(self, level: int, text: str) -> None:
        if level == 1 and self.title is None:
            self.title = text
            return
        while self._stack and self._stack[-1][0] >= level:
            self._stack.pop()
        self._stack.append((level, text))

    def block(self, line: str) -> None:
        """A paragraph, or a list item (``- ...``) that joins the block before it line by line."""
        path = tuple(t for _, t in self._stack)
        if self.sections and self.sections[-1].path == path:
            self.sections[-1].text += ("\n" if line.startswith("- ") else "\n\n") + line
        else:
            self.sections.append(Section(path=path, text=line))


# --- HTML -------------------------------------------------------------------------------------

def _is_hidden(tag: Tag) -> bool:
    if tag.has_attr("hidden") or tag.get("aria-hidden") == "true":
        return True
    style = tag.get("style")
    return isinstance(style, str) and bool(_HIDDEN_STYLE.search(style))


def _load_html(data: bytes, path: Path, document_id: str) -> SourceDocument:
    soup = BeautifulSoup(decode_text(data, path), "lxml")
    for tag in soup.find_all(_BOILERPLATE_TAGS):
        tag.decompose()
    for tag in soup.find_all("header"):
        # a site banner, not an article's own header (which may hold its title)
        if isinstance(tag, Tag) and not tag.find_parent(["article", "main", "section"]):
            tag.decompose()
    for tag in soup.find_all(True):
        if isinstance(tag, Tag) and not tag.decomposed and _is_hidden(tag):
            tag.decompose()
    head_title = soup.title.get_text(" ", strip=True) if soup.title else ""
    outline = _Outline()
    body = soup.body or soup
    for element in body.find_all(_HEADING_TAGS + _BLOCK_TAGS):
        if element.name in _BLOCK_TAGS and element.find(_HEADING_TAGS + _BLOCK_TAGS):
            continue  # a container; its inner blocks are read on their own
        text = element.get_text(" ", strip=True)
        if not text:
            continue
        if element.name in _HEADING_TAGS:
            outline.heading(int(element.name[1]), text)
        else:
            outline.block(f"- {text}" if element.name == "li" else text)
    return SourceDocument(
        document_id, outline.title or head_title or title_from_path(path), Kind.ARTICLE, str(path),
        outline.sections, tags=tags_from_id(document_id),
    )


# --- PDF and DOCX -----------------------------------------------------------------------------

def _load_pdf(data: bytes, path: Path, document_id: str) -> SourceDocument:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise DocumentError("PDF is encrypted; upload an unprotected copy")
        # layout mode keeps vertical gaps as blank lines: without them every heading after the first
        # is read as body text; runs of spaces it uses for horizontal layout are collapsed
        pages = [page.extract_text(extraction_mode="layout") or "" for page in reader.pages]
        meta_title = reader.metadata.title if reader.metadata else None
    except PdfReadError as exc:
        raise DocumentError(f"PDF cannot be parsed: {exc}") from exc
    text = re.sub(r"[ \t]{2,}", " ", "\n\n".join(pages))
    if not text.strip():
        raise EmptyDocument("PDF has no extractable text (a scan needs OCR first)")
    if meta_title and meta_title.strip().lower() in _PLACEHOLDER_TITLES:
        meta_title = None  # what PDF writers put when the author set none
    first_line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    title = str(meta_title or (first_line if _looks_like_heading(first_line) else title_from_path(path)))
    sections = sections_from_plain_text(text)
    if sections and sections[0].path == (title,):
        sections[0].path = ()
    return SourceDocument(document_id, title, Kind.ARTICLE, str(path), sections, tags=tags_from_id(document_id))


def _check_unpacked_size(data: bytes) -> None:
    """Refuses a DOCX whose parts would unpack past ``DOCX_MAX_UNPACKED_BYTES`` before any part is read."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            parts = archive.infolist()
    except (zipfile.BadZipFile, ValueError) as exc:
        raise DocumentError(f"DOCX cannot be parsed: {exc}") from exc
    unpacked = sum(part.file_size for part in parts)
    if len(parts) > DOCX_MAX_PARTS or unpacked > DOCX_MAX_UNPACKED_BYTES:
        raise FileTooLarge(f"DOCX unpacks to {unpacked:,} bytes in {len(parts):,} parts; the limit is "
                           f"{DOCX_MAX_UNPACKED_BYTES:,} bytes in {DOCX_MAX_PARTS:,} parts")


def _load_docx(data: bytes, path: Path, document_id: str) -> SourceDocument:
    import docx

    _check_unpacked_size(data)
    try:
        document = docx.Document(io.BytesIO(data))
    except Exception as exc:  # python-docx lets zipfile, lxml and its own package errors through
        raise DocumentError(f"DOCX cannot be parsed: {exc}") from exc
    outline = _Outline(document.core_properties.title or None)
    for paragraph in document.paragraphs:
        text = paragraph.text.strip()
        if not text:
            continue
        style = paragraph.style.name if paragraph.style is not None else ""
        if style == "Title":
            outline.heading(1, text)
        elif style.startswith("Heading"):
            outline.heading(int(style.split()[-1]) if style.split()[-1].isdigit() else 1, text)
        else:
            outline.block(f"- {text}" if "List" in style else text)
    for table in document.tables:
        outline.block("\n".join(" | ".join(cell.text.strip() for cell in row.cells) for row in table.rows))
    return SourceDocument(
        document_id, outline.title or title_from_path(path), Kind.ARTICLE, str(path), outline.sections,
        tags=tags_from_id(document_id),
    )


# --- FAQ and structured kinds -----------------------------------------------------------------

def _faq_document(rows: list[dict[str, Any]], path: Path, document_id: str, title: str | None) -> SourceDocument:
    sections: list[Section] = []
    all_tags: list[str] = []
    for number, row in enumerate(rows, start=1):
        lowered = {str(k).strip().lower(): v for k, v in row.items() if k is not None}
        question = str(lowered.get("question") or "").strip()
        answer = str(lowered.get("answer") or "").strip()
        if not question or not answer:
            raise DocumentError(f"FAQ row {number} needs both a question and an answer")
        tags = _tags(lowered.get("tags"))
        all_tags.extend(t for t in tags if t not in all_tags)
        sections.append(Section(path=(question,), text=answer, unit=True, metadata={"tags": tags}))
    if not sections:
        raise EmptyDocument("FAQ has no rows")
    if not title:
        title = "FAQ" if path.stem.lower() in ("faq", "faqs") else f"FAQ: {title_from_path(path)}"
    return SourceDocument(document_id, title, Kind.FAQ, str(path), sections, tags=all_tags)


def _intents_document(rows: list[dict[str, Any]], path: Path, document_id: str) -> SourceDocument:
    """Labelled customer messages (``intent,example``): the tenant's intent set, for the classifier."""
    examples: list[dict[str, str]] = []
    for number, row in enumerate(rows, start=2):
        lowered = {str(k).strip().lower(): str(v or "").strip() for k, v in row.items() if k is not None}
        if not lowered.get("intent") or not lowered.get("example"):
            raise DocumentError(f"intents row {number} needs both an intent and an example")
        examples.append({"intent": lowered["intent"], "example": lowered["example"]})
    if not examples:
        raise EmptyDocument("the intents file has no rows")
    counts: dict[str, int] = {}
    for example in examples:
        counts[example["intent"]] = counts.get(example["intent"], 0) + 1
    if len(counts) < 2:
        raise DocumentError("an intent set needs at least two intents")
    text = "\n".join(f"{name}: {count} examples" for name, count in sorted(counts.items()))
    return SourceDocument(document_id, f"Intents: {title_from_path(path)}", Kind.INTENTS, str(path),
                          [Section(("Intents",), text, unit=True)], payload={"examples": examples})


def _load_csv(data: bytes, path: Path, document_id: str) -> SourceDocument:
    reader = csv.DictReader(io.StringIO(decode_text(data, path)))
    columns = {c.strip().lower() for c in (reader.fieldnames or [])}
    if {"intent", "example"} <= columns:
        return _intents_document(list(reader), path, document_id)
    if not {"question", "answer"} <= columns:
        raise UnsupportedFormat(
            "a CSV must be an FAQ with 'question' and 'answer' columns, or an intent set with 'intent' and "
            f"'example' columns; found {sorted(columns)}"
        )
    return _faq_document(list(reader), path, document_id, None)


def _load_json(data: bytes, path: Path, document_id: str) -> SourceDocument:
    try:
        value = json.loads(decode_text(data, path))
    except json.JSONDecodeError as exc:
        raise DocumentError(f"invalid JSON: {exc}") from exc
    if isinstance(value, list):
        return _faq_document(value, path, document_id, None)
    if isinstance(value, dict) and "faq" in value and "kind" not in value:
        return _faq_document(list(value["faq"]), path, document_id, value.get("title"))
    if isinstance(value, dict):
        return structured_document(value, path, document_id)
    raise DocumentError("JSON must be a list of {question, answer} or an object with a 'kind'")


def _load_yaml(data: bytes, path: Path, document_id: str) -> SourceDocument:
    value = yaml.safe_load(decode_text(data, path))
    if not isinstance(value, dict):
        raise DocumentError("YAML must be a mapping with a 'kind' (brand_voice, macros, playbook, faq)")
    return structured_document(value, path, document_id)


def structured_document(value: dict[str, Any], path: Path, document_id: str) -> SourceDocument:
    kind = value.get("kind")
    try:
        if kind == "faq":
            return _faq_document(list(value.get("faq") or value.get("items") or []), path, document_id,
                                 value.get("title"))
        if kind == Kind.BRAND_VOICE:
            voice = BrandVoice.model_validate(value)
            text = yaml.safe_dump(voice.model_dump(exclude={"guide"}), sort_keys=False) + voice.guide
            return SourceDocument(document_id, f"Brand voice: {voice.name}", Kind.BRAND_VOICE, str(path),
                                  [Section(("Brand voice",), text, unit=True)], payload=voice.model_dump())
        if kind == "macros":
            macros = MacroSet.model_validate(value).macros
            ids = [m.id for m in macros]
            if len(set(ids)) != len(ids):
                repeated = sorted({i for i in ids if ids.count(i) > 1})
                raise DocumentError(f"macro ids must be unique; repeated: {repeated}")
            sections = [
                Section((m.title,), m.text, unit=True,
                        metadata={"macro_id": m.id, "intent": m.intent or "", "tags": m.tags})
                for m in macros
            ]
            return SourceDocument(document_id, str(value.get("title") or "Macros"), Kind.MACRO, str(path),
                                  sections, tags=sorted({t for m in macros for t in m.tags}),
                                  payload={"macros": [m.model_dump() for m in macros]})
        if kind == Kind.PLAYBOOK:
            playbook = Playbook.model_validate(value)
            steps = "\n".join(f"{i}. {s.title or s.action}: {s.description}".rstrip(": ")
                              for i, s in enumerate(playbook.steps, start=1))
            text = f"{playbook.description}\n{steps}".strip()
            return SourceDocument(document_id, playbook.name, Kind.PLAYBOOK, str(path),
                                  [Section((), text, unit=True, metadata={"playbook_id": playbook.id})],
                                  tags=playbook.trigger_intents, payload=playbook.model_dump())
    except ValidationError as exc:
        raise DocumentError(f"invalid {kind}: {describe_validation_error(exc)}") from exc
    raise DocumentError(f"unknown kind {kind!r}; expected brand_voice, macros, playbook or faq")


_LOADERS: dict[str, Callable[[bytes, Path, str], SourceDocument]] = {
    ".md": _load_markdown, ".markdown": _load_markdown, ".html": _load_html, ".htm": _load_html,
    ".pdf": _load_pdf, ".docx": _load_docx, ".txt": _load_text, ".csv": _load_csv, ".json": _load_json,
    ".yaml": _load_yaml, ".yml": _load_yaml,
    HISTORY_SUFFIX: lambda data, path, document_id: history_document(decode_text(data, path), path, document_id),
}
