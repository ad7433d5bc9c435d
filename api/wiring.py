"""The composition root: builds the concrete parts from one ``Settings`` object."""

from __future__ import annotations

from pathlib import Path

from copilot.settings import Settings
from knowledge.base import KnowledgeBase

SAMPLE_BRAND = "brightwave"


def sample_brand_dir() -> Path:
    """The sample brand's files, shipped in the repository beside the packages."""
    return Path(__file__).resolve().parent.parent / "samples" / SAMPLE_BRAND


def knowledge_base(settings: Settings) -> KnowledgeBase:
    return KnowledgeBase(settings)
