"""Where the composition root finds what ships with the project (the sample brand)."""

from __future__ import annotations

from pathlib import Path

SAMPLE_BRAND = "brightwave"


def sample_brand_dir() -> Path:
    """The sample brand's files, shipped in the repository beside the packages."""
    return Path(__file__).resolve().parent.parent / "samples" / SAMPLE_BRAND
