"""Loaders: every supported format becomes sections with heading paths; bad input is a DocumentError."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from copilot.errors import DocumentError, EmptyDocument, FileTooLarge, UnsupportedFormat
from knowledge.documents import Kind, SourceDocument
from knowledge.loaders import load_document

MAX_BYTES = 1_000_000


def _write(folder: Path, name: str, content: str | bytes) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


def _load(path: Path, document_id: str | None = None, max_bytes: int = MAX_BYTES) -> SourceDocument:
    return load_document(path, document_id or path.name, max_bytes)


def _by_path(document: SourceDocument) -> dict[tuple[str, ...], str]:
    return {section.path: section.text for section in document.sections}


# --- Markdown -----------------------------------------------------------------------------------

MARKDOWN = """---
title: Roaming in Europe
tags: [roaming, travel]
locale: en-GB
---
# An H1 the front matter overrides

Roaming is included in every plan.

## Costs

Each day abroad costs five pounds.

### Data caps

A fair use cap of 12GB applies.

## Turning roaming off

- Open Settings
- Switch off data roaming
"""


def test_load_markdown_front_matter_sets_title_tags_locale(tmp_path: Path) -> None:
    document = _load(_write(tmp_path, "roaming.md", MARKDOWN))

    assert document.title == "Roaming in Europe"
    assert document.tags == ["roaming", "travel"]
    assert document.locale == "en-GB"
    assert document.kind is Kind.ARTICLE


def test_load_markdown_nested_headings_give_heading_paths(tmp_path: Path) -> None:
    sections = _by_path(_load(_write(tmp_path, "roaming.md", MARKDOWN)))

    assert list(sections) == [(), ("Costs",), ("Costs", "Data caps"), ("Turning roaming off",)]
    assert sections[()] == "Roaming is included in every plan."
    assert sections[("Costs", "Data caps")] == "A fair use cap of 12GB applies."
    assert sections[("Turning roaming off",)] == "- Open Settings\n- Switch off data roaming"


def test_load_markdown_without_front_matter_takes_h1_title_and_folder_tags(tmp_path: Path) -> None:
    path = _write(tmp_path, "articles/billing/late-fees.md", "# Late fees\n\nA late fee is five pounds.\n")

    document = _load(path, "articles/billing/late-fees.md")

    assert document.title == "Late fees"
    assert document.tags == ["billing"]
    assert _by_path(document) == {(): "A late fee is five pounds."}


# --- HTML ---------------------------------------------------------------------------------------

HTML = """<!doctype html>
<html><head><title>Head title</title><script>var tracking = "SCRIPT-TEXT";</script></head>
<body>
<nav><a href="/">NAV-TEXT home</a></nav>
<h1>Your first bill</h1>
<p>Your first bill covers two months.</p>
<div style="display:none">HIDDEN-TEXT promo</div>
<h2>Why is it higher?</h2>
<p>We charge the month ahead.</p>
<h3>Part months</h3>
<p>Part months are charged by the day.</p>
<p hidden>HIDDEN-ATTR text</p>
<footer>FOOTER-TEXT copyright</footer>
</body></html>
"""


def test_load_html_drops_boilerplate_and_hidden_elements(tmp_path: Path) -> None:
    document = _load(_write(tmp_path, "first-bill.html", HTML))
    everything = " ".join(section.text for section in document.sections)

    for dropped in ("SCRIPT-TEXT", "NAV-TEXT", "HIDDEN-TEXT", "HIDDEN-ATTR", "FOOTER-TEXT"):
        assert dropped not in everything
    assert "two months" in everything


def test_load_html_headings_give_heading_paths(tmp_path: Path) -> None:
    document = _load(_write(tmp_path, "first-bill.html", HTML))

    assert document.title == "Your first bill"
    assert _by_path(document) == {
        (): "Your first bill covers two months.",
        ("Why is it higher?",): "We charge the month ahead.",
        ("Why is it higher?", "Part months"): "Part months are charged by the day.",
    }


# --- PDF and DOCX -------------------------------------------------------------------------------

def _pdf(path: Path, lines: list[str], title: str | None = None) -> Path:
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    pdf = canvas.Canvas(str(path), pagesize=A4)
    if title:
        pdf.setTitle(title)
    y = 800
    for line in lines:
        if line:
            pdf.drawString(72, y, line)
        y -= 16
    pdf.showPage()
    pdf.save()
    return path


PDF_LINES = [
    "Roaming guide", "",
    "Roaming abroad costs five pounds per day in Europe.", "Data caps apply after 12GB.", "",
    "Turning roaming off", "Open settings and switch off data roaming.",
]


def test_load_pdf_extracts_text_and_headings(tmp_path: Path) -> None:
    document = _load(_pdf(tmp_path / "roaming-guide.pdf", PDF_LINES))

    assert document.title == "Roaming guide"
    sections = _by_path(document)
    assert sections[()] == "Roaming abroad costs five pounds per day in Europe. Data caps apply after 12GB."
    assert sections[("Turning roaming off",)] == "Open settings and switch off data roaming."


def test_load_pdf_metadata_title_wins(tmp_path: Path) -> None:
    document = _load(_pdf(tmp_path / "guide.pdf", PDF_LINES, title="Travel handbook"))

    assert document.title == "Travel handbook"


def _docx(path: Path) -> Path:
    import docx

    word = docx.Document()
    for level, text in [(1, "Returns policy"), (0, "You can return a phone within 30 days."),
                        (2, "Conditions"), (0, "The phone must be undamaged and in its box."),
                        (2, "Refund timing"), (0, "Refunds arrive in five working days."),
                        (1, "Exchanges"), (2, "Faulty phones"), (0, "A faulty phone is exchanged for the same model.")]:
        if level:
            word.add_heading(text, level=level)
        else:
            word.add_paragraph(text)
    word.save(str(path))
    return path


def test_load_docx_heading_styles_give_heading_paths(tmp_path: Path) -> None:
    document = _load(_docx(tmp_path / "returns.docx"))

    assert document.title == "Returns policy"
    assert _by_path(document) == {
        (): "You can return a phone within 30 days.",
        ("Conditions",): "The phone must be undamaged and in its box.",
        ("Refund timing",): "Refunds arrive in five working days.",
        ("Exchanges", "Faulty phones"): "A faulty phone is exchanged for the same model.",
    }


# --- plain text ---------------------------------------------------------------------------------

def test_load_text_short_lines_become_headings(tmp_path: Path) -> None:
    text = (
        "Planned maintenance\n\n"
        "We upgrade masts at night to keep disruption low.\n\n"
        "How we tell you\n"
        "We send a text two days before work in your area.\n"
    )
    document = _load(_write(tmp_path, "maintenance.txt", text))

    assert document.title == "Planned maintenance"
    assert _by_path(document) == {
        (): "We upgrade masts at night to keep disruption low.",
        ("How we tell you",): "We send a text two days before work in your area.",
    }


# --- FAQ ----------------------------------------------------------------------------------------

def test_load_faq_csv_makes_one_unit_section_per_row(tmp_path: Path) -> None:
    csv_text = (
        "question,answer,tags\n"
        'When is my bill due?,"14 days after your bill date, every month.",billing;bill-date\n'
        "Can I pay by card?,Yes: debit and credit cards.,billing\n"
    )
    document = _load(_write(tmp_path, "faq.csv", csv_text))

    assert document.kind is Kind.FAQ
    assert [(s.path, s.text, s.unit) for s in document.sections] == [
        (("When is my bill due?",), "14 days after your bill date, every month.", True),
        (("Can I pay by card?",), "Yes: debit and credit cards.", True),
    ]
    assert document.sections[0].metadata["tags"] == ["billing", "bill-date"]
    assert document.tags == ["billing", "bill-date"]


def test_load_csv_without_question_answer_columns_is_unsupported(tmp_path: Path) -> None:
    path = _write(tmp_path, "labels.csv", "label,text\nbilling,you charged me twice\n")

    with pytest.raises(UnsupportedFormat, match="question") as caught:
        _load(path)
    assert caught.value.path == str(path)


def test_load_faq_json_list_and_titled_object(tmp_path: Path) -> None:
    rows = [{"question": "Do you ship abroad?", "answer": "Only within the UK."}]
    listed = _load(_write(tmp_path, "shipping.json", json.dumps(rows)))
    titled = _load(_write(tmp_path, "titled.json", json.dumps({"title": "Shipping FAQ", "faq": rows})))

    for document in (listed, titled):
        assert document.kind is Kind.FAQ
        assert [(s.path, s.text, s.unit) for s in document.sections] == [
            (("Do you ship abroad?",), "Only within the UK.", True)
        ]
    assert titled.title == "Shipping FAQ"


def test_load_faq_row_without_answer_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, "faq.json", json.dumps([{"question": "Q?", "answer": ""}]))

    with pytest.raises(DocumentError, match="row 1"):
        _load(path)


# --- structured kinds ---------------------------------------------------------------------------

BRAND_VOICE = """kind: brand_voice
name: Brightwave Mobile
tone: [warm, plain]
greeting: {default: "Hi {customer_name},"}
banned_phrases:
  - phrase: "per our policy"
    replacement: "because"
reading_level_max_grade: 7
"""


def test_load_brand_voice_yaml_validates_payload(tmp_path: Path) -> None:
    document = _load(_write(tmp_path, "brand-voice.yaml", BRAND_VOICE))

    assert document.kind is Kind.BRAND_VOICE
    assert document.payload is not None
    assert document.payload["name"] == "Brightwave Mobile"
    assert document.payload["banned_phrases"] == [{"phrase": "per our policy", "replacement": "because"}]
    assert [s.unit for s in document.sections] == [True]


def test_load_brand_voice_invalid_field_names_the_field(tmp_path: Path) -> None:
    path = _write(tmp_path, "brand-voice.yaml", BRAND_VOICE.replace("grade: 7", "grade: 55"))

    with pytest.raises(DocumentError, match="reading_level_max_grade") as caught:
        _load(path)
    assert caught.value.path == str(path)


MACROS = """kind: macros
macros:
  - id: refund-timing
    title: Refund timing
    text: "Hi {customer_name}, refunds reach your card in 5 working days."
    intent: refund_status
    tags: [billing]
  - id: order-delay
    title: Order delay
    text: "Sorry, your order {order_id} is running late."
"""


def test_load_macros_yaml_makes_unit_sections_with_ids(tmp_path: Path) -> None:
    document = _load(_write(tmp_path, "macros.yaml", MACROS))

    assert document.kind is Kind.MACRO
    assert [(s.path, s.unit, s.metadata["macro_id"]) for s in document.sections] == [
        (("Refund timing",), True, "refund-timing"),
        (("Order delay",), True, "order-delay"),
    ]
    assert document.payload is not None and len(document.payload["macros"]) == 2


def test_load_macros_yaml_duplicate_ids_are_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, "macros.yaml", MACROS.replace("id: order-delay", "id: refund-timing"))

    with pytest.raises(DocumentError, match="refund-timing"):
        _load(path)


PLAYBOOK = """kind: playbook
id: refund-double-charge
name: Refund a double charge
trigger_intents: [billing_dispute]
steps:
  - id: verify
    action: verify_identity
    title: Verify identity
  - id: refund
    action: issue_refund
    title: Issue the refund
    preconditions: [verify]
"""


def test_load_playbook_yaml_keeps_steps_in_text_and_payload(tmp_path: Path) -> None:
    document = _load(_write(tmp_path, "refund.yaml", PLAYBOOK))

    assert document.kind is Kind.PLAYBOOK
    assert document.title == "Refund a double charge"
    assert "1. Verify identity" in document.sections[0].text
    assert "2. Issue the refund" in document.sections[0].text
    assert document.payload is not None
    assert [s["id"] for s in document.payload["steps"]] == ["verify", "refund"]


def test_load_playbook_precondition_naming_later_step_is_refused(tmp_path: Path) -> None:
    broken = PLAYBOOK.replace("    title: Verify identity\n",
                              "    title: Verify identity\n    preconditions: [refund]\n")
    path = _write(tmp_path, "refund.yml", broken)

    with pytest.raises(DocumentError, match="not earlier steps"):
        _load(path)


def test_load_yaml_unknown_kind_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DocumentError, match="unknown kind"):
        _load(_write(tmp_path, "thing.yaml", "kind: recipe\nname: x\n"))


# --- bad input ----------------------------------------------------------------------------------

@pytest.mark.parametrize("content", [b"", b"\n\n   \n", b"---\ntitle: Only front matter\n---\n"])
def test_load_empty_markdown_raises_empty_document(tmp_path: Path, content: bytes) -> None:
    with pytest.raises(EmptyDocument):
        _load(_write(tmp_path, "empty.md", content))


def test_load_binary_content_in_markdown_is_unsupported(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedFormat, match="binary"):
        _load(_write(tmp_path, "image.md", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"))


def test_load_latin1_bytes_raise_document_error_mentioning_utf8(tmp_path: Path) -> None:
    path = _write(tmp_path, "cafe.md", "# Café\n\nOur café opens at nine.\n".encode("latin-1"))

    with pytest.raises(DocumentError, match="UTF-8") as caught:
        _load(path)
    assert not isinstance(caught.value, UnsupportedFormat)


def test_load_file_over_max_bytes_raises_file_too_large(tmp_path: Path) -> None:
    path = _write(tmp_path, "big.md", "# Big\n\n" + "word " * 200)

    with pytest.raises(FileTooLarge):
        _load(path, max_bytes=100)
    assert _load(path, max_bytes=10_000).title == "Big"


def test_load_unknown_suffix_is_unsupported(tmp_path: Path) -> None:
    path = _write(tmp_path, "slides.pptx", b"PK\x03\x04 not really")

    with pytest.raises(UnsupportedFormat, match=r"\.pptx"):
        _load(path)


@pytest.mark.parametrize("name", ["broken.pdf", "broken.docx"])
def test_load_corrupt_binary_document_raises_document_error(tmp_path: Path, name: str) -> None:
    path = _write(tmp_path, name, b"%PDF-1.4\n" + b"\x13\x37 not a real document " * 20)

    with pytest.raises(DocumentError) as caught:
        _load(path)
    assert caught.value.path == str(path)


def test_load_truncated_pdf_raises_document_error(tmp_path: Path) -> None:
    whole = _pdf(tmp_path / "whole.pdf", PDF_LINES)
    path = _write(tmp_path, "truncated.pdf", whole.read_bytes()[:400])

    with pytest.raises(DocumentError):
        _load(path)


def test_load_html_article_header_keeps_its_title(tmp_path: Path) -> None:
    page = tmp_path / "page.html"
    page.write_text(
        "<html><body><header><p>Site banner</p></header><article><header><h1>Porting your number</h1>"
        "</header><h2>Before you start</h2><p>Ask your old provider for a PAC code.</p></article></body></html>",
        encoding="utf-8",
    )

    document = load_document(page, "page.html", 1_000_000)

    assert document.title == "Porting your number"
    assert "Site banner" not in " ".join(s.text for s in document.sections)
    assert document.sections[0].path == ("Before you start",)


def test_an_intents_csv_is_the_tenants_intent_set(tmp_path: Path) -> None:
    path = tmp_path / "intents.csv"
    path.write_text("intent,example\nbilling_dispute,you charged me twice\nlost_phone,my phone was stolen\n"
                    "billing_dispute,two payments on my statement\n", encoding="utf-8")
    document = _load(path)
    assert document.kind == Kind.INTENTS
    assert document.payload == {"examples": [
        {"intent": "billing_dispute", "example": "you charged me twice"},
        {"intent": "lost_phone", "example": "my phone was stolen"},
        {"intent": "billing_dispute", "example": "two payments on my statement"}]}


@pytest.mark.parametrize("body, message", [
    ("intent,example\nbilling,\n", "needs both"),
    ("intent,example\nbilling,a\nbilling,b\n", "at least two intents"),
])
def test_a_bad_intents_csv_is_refused(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "intents.csv"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(DocumentError, match=message):
        _load(path)
