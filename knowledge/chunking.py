"""Structure-aware chunking: sections by heading first, then a token budget inside each section."""

from __future__ import annotations

from langchain_text_splitters import RecursiveCharacterTextSplitter

from copilot.tokens import count_tokens
from knowledge.documents import Chunk, SourceDocument

# Paragraphs, then lines, then sentence ends, then words: cut where the text itself pauses.
_SEPARATORS = ["\n\n", "\n", r"(?<=[.!?])\s+", r"(?<=[;:])\s+", " ", ""]


class Chunker:
    """Cuts documents into chunks of at most ``max_tokens`` (cl100k).

    A chunk holds text of one section, with one exception: a section shorter than ``min_tokens`` (an
    intro line, a heading with one sentence) is prefixed to the next section's first chunk, its heading
    kept in the text, because alone it would be a passage too small to answer anything.
    """

    def __init__(self, max_tokens: int = 200, overlap_tokens: int = 70, min_tokens: int = 24) -> None:
        self.max_tokens = max_tokens
        self.min_tokens = min_tokens
        overlap_tokens = min(overlap_tokens, max_tokens // 2)  # a small budget keeps at most half as overlap
        self.signature = f"chunker-v1:{max_tokens}:{overlap_tokens}:{min_tokens}"
        self._splitter = RecursiveCharacterTextSplitter(
            chunk_size=max_tokens,
            chunk_overlap=overlap_tokens,
            length_function=count_tokens,
            separators=_SEPARATORS,
            is_separator_regex=True,
            # with keep_separator=False the splitter joins pieces with the separator *pattern* itself,
            # writing "(?<=[.!?])\s+" into the text; keeping the matched text at the end of each piece
            # joins them with what was really there
            keep_separator="end",
        )

    def chunk(self, document: SourceDocument, version: str) -> list[Chunk]:
        """Chunks of one document version; ids carry the content hash so versions never collide."""
        pieces: list[tuple[str, str, dict[str, object]]] = []
        carry: tuple[str, str] | None = None  # a section too short to stand alone joins the next one
        for section in document.sections:
            label = " > ".join(section.path)
            text = section.text.strip()
            if section.unit:
                pieces.append((label, text, dict(section.metadata)))
                continue
            if carry is not None:
                carry_label, carry_text = carry
                text = f"{carry_label}: {carry_text}\n\n{text}" if carry_label and carry_label != label else (
                    f"{carry_text}\n\n{text}")
                carry = None
            if count_tokens(text) < self.min_tokens and section is not document.sections[-1]:
                carry = (label, text)
                continue
            for part in self._splitter.split_text(text):
                pieces.append((label, part.strip(), dict(section.metadata)))
        if carry is not None:
            pieces.append((carry[0], carry[1], {}))
        chunks = []
        for ordinal, (label, text, metadata) in enumerate(p for p in pieces if p[1]):
            chunks.append(Chunk(
                chunk_id=f"{document.document_id}#{version[:16]}#{ordinal}",
                document_id=document.document_id,
                ordinal=ordinal,
                kind=document.kind,
                title=document.title,
                section=label,
                text=text,
                metadata=metadata,
            ))
        return chunks
