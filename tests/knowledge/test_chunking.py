"""Chunking: sections first, then the token budget; FAQ units whole; ids carry the version."""

from __future__ import annotations

import re
from pathlib import Path

from copilot.tokens import count_tokens
from knowledge.chunking import Chunker
from knowledge.documents import Kind, Section, SourceDocument
from knowledge.loaders import load_document

VERSION = "0123456789abcdef" + "f" * 48


def _sentences(topic: str, count: int) -> str:
    return " ".join(f"Fact {i} about {topic} is that step {i} needs the {topic} form number {i}."
                    for i in range(count))


def _article(*sections: Section, title: str = "Guide") -> SourceDocument:
    return SourceDocument("guide.md", title, Kind.ARTICLE, "guide.md", list(sections))


def test_chunk_long_sections_never_crosses_sections() -> None:
    topics = {("Roaming",): "roaming", ("Billing",): "billing", ("Billing", "Refunds"): "refunds"}
    document = _article(*(Section(path, _sentences(topic, 12)) for path, topic in topics.items()))

    chunks = Chunker(max_tokens=60, overlap_tokens=8).chunk(document, VERSION)

    assert len(chunks) > len(topics)
    for chunk in chunks:
        path = tuple(chunk.section.split(" > "))
        words = set(re.findall(r"[a-z]+", chunk.text.lower()))
        assert words & set(topics.values()) == {topics[path]}, chunk.text
        assert chunk.text in next(s.text for s in document.sections if s.path == path)
    assert {c.section for c in chunks} == {"Roaming", "Billing", "Billing > Refunds"}


def test_chunk_text_respects_token_budget() -> None:
    paragraphs = "\n\n".join(_sentences(f"topic{i}", 7) for i in range(4))
    long_line = "word " * 400
    document = _article(Section(("A",), paragraphs), Section(("B",), long_line))

    chunker = Chunker(max_tokens=50, overlap_tokens=5)
    chunks = chunker.chunk(document, VERSION)

    assert len(chunks) >= 10
    assert max(count_tokens(c.text) for c in chunks) <= 50


def test_chunk_split_text_keeps_original_separators() -> None:
    document = _article(Section(("A",), _sentences("roaming", 30)))

    chunks = Chunker(max_tokens=60, overlap_tokens=0).chunk(document, VERSION)

    assert len(chunks) > 1
    for chunk in chunks:
        assert "\\s" not in chunk.text and "(?<=" not in chunk.text
        assert re.fullmatch(r"(Fact \d+ about roaming is that step \d+ needs the roaming form number \d+\.\s?)+",
                            chunk.text)


def test_chunk_carries_heading_path_in_section_and_embed_text() -> None:
    document = _article(Section(("Billing", "Refunds"), _sentences("refunds", 3)), title="Money matters")

    [chunk] = Chunker().chunk(document, VERSION)

    assert chunk.section == "Billing > Refunds"
    assert chunk.title == "Money matters"
    assert chunk.embed_text.startswith("Money matters > Billing > Refunds\n")
    assert chunk.embed_text.endswith(chunk.text)


def test_chunk_without_heading_embeds_title_only() -> None:
    [chunk] = Chunker().chunk(_article(Section((), _sentences("plans", 3)), title="Plans"), VERSION)

    assert chunk.section == ""
    assert chunk.embed_text == f"Plans\n{chunk.text}"


def test_chunk_faq_units_stay_whole_even_over_budget() -> None:
    long_answer = _sentences("refunds", 20)
    document = SourceDocument("faq.csv", "FAQ", Kind.FAQ, "faq.csv", [
        Section(("How long do refunds take?",), long_answer, unit=True, metadata={"tags": ["billing"]}),
        Section(("Can I pay by card?",), "Yes.", unit=True, metadata={"tags": []}),
    ])

    chunks = Chunker(max_tokens=40, overlap_tokens=4).chunk(document, VERSION)

    assert count_tokens(long_answer) > 40
    assert [(c.section, c.text) for c in chunks] == [
        ("How long do refunds take?", long_answer),
        ("Can I pay by card?", "Yes."),
    ]
    assert chunks[0].metadata == {"tags": ["billing"]}
    assert all(c.kind is Kind.FAQ for c in chunks)


def test_chunk_short_section_text_is_not_lost() -> None:
    document = _article(
        Section(("Intro",), "Short intro line."),
        Section(("Details",), _sentences("details", 6)),
    )

    chunks = Chunker(max_tokens=200).chunk(document, VERSION)

    assert any("Short intro line." in c.text for c in chunks)
    assert any("Fact 5 about details" in c.text for c in chunks)


def test_chunk_ids_contain_version_hash_and_differ_between_versions() -> None:
    document = _article(Section(("A",), _sentences("roaming", 12)))
    other_version = "fedcba9876543210" + "0" * 48

    first = Chunker(max_tokens=60).chunk(document, VERSION)
    second = Chunker(max_tokens=60).chunk(document, other_version)

    assert [c.chunk_id for c in first] == [f"guide.md#{VERSION[:16]}#{i}" for i in range(len(first))]
    assert {c.chunk_id for c in first}.isdisjoint(c.chunk_id for c in second)
    assert [c.ordinal for c in first] == list(range(len(first)))


def test_chunk_loaded_markdown_follows_its_headings(tmp_path: Path) -> None:
    path = tmp_path / "roaming.md"
    path.write_text(
        "# Roaming\n\n## Costs\n\n" + _sentences("costs", 4)
        + "\n\n### Data caps\n\n" + _sentences("caps", 4)
        + "\n\n## Turning roaming off\n\n" + _sentences("settings", 4) + "\n",
        encoding="utf-8",
    )
    document = load_document(path, "roaming.md", 1_000_000)

    chunks = Chunker().chunk(document, document.content_hash)

    assert [c.section for c in chunks] == ["Costs", "Costs > Data caps", "Turning roaming off"]
    assert all(c.title == "Roaming" for c in chunks)
    assert all(document.content_hash[:16] in c.chunk_id for c in chunks)
