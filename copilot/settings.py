"""One typed settings object, read from ``COPILOT_*`` variables, built once and passed in."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Configuration of a copilot process. Tests build their own: ``Settings(data_dir=tmp_path)``."""

    model_config = SettingsConfigDict(env_prefix="COPILOT_", env_file=".env", extra="ignore")

    data_dir: Path = Field(Path(".copilot"), description="Where the SQLite file, Chroma and caches live.")
    database_url: str | None = Field(
        None, description="SQLAlchemy URL; default is a SQLite file in the data directory."
    )
    chroma_url: str | None = Field(
        None, description="A Chroma server (http://host:port, or http://host:port/DATABASE for a database of "
                          "its own on a shared server, made when missing); default is an embedded PersistentClient."
    )
    chroma_timeout_s: float = Field(10.0, gt=0, description="The most one call to the Chroma server may take.")
    database_timeout_s: float = Field(5.0, gt=0, description="The most a connection to PostgreSQL may take to "
                                                             "open (a server that is down answers 503 after it).")

    embeddings_provider: Literal["local", "openai-compatible"] = "local"
    embeddings_model: str = Field(
        "all-MiniLM-L6-v2",
        description="For 'local', the packaged all-MiniLM-L6-v2 or a path to a sentence-transformers folder.",
    )
    embeddings_base_url: str | None = None
    embeddings_api_key: SecretStr | None = None
    embeddings_batch_size: int = Field(64, ge=1, le=4096)
    embeddings_query_precision: Literal["int8", "fp32"] = Field(
        "int8", description="For 'local': queries embedded by a copy of the model quantised to int8 (2.5 times "
                            "faster, doc2dial hit@1 within 0.002) or by the full model; documents always by the "
                            "full model, so the index does not depend on it.")
    model_cache_dir: Path | None = Field(None, description="Where the local model's ONNX export is kept (made "
                                                           "once per machine); default ~/.cache/copilot/models.")

    llm_base_url: str | None = None
    llm_model: str | None = None
    llm_api_key: SecretStr | None = None
    llm_timeout_s: float = Field(8.0, gt=0)

    rate_limit: str = Field("600/minute", description="Requests per API key, as 'N/second|minute|hour'.")
    rate_limit_storage: str = Field(
        "memory://", description="Where the rate-limit counters live, as a `limits` storage URI: 'memory://' counts "
                                 "in each process (with --workers N a key gets N times its rate); "
                                 "'redis://host:6379/0' shares one budget per key between all workers and servers. "
                                 "If Redis fails while serving, requests go through unlimited (a warning and the "
                                 "copilot_rate_limit_unchecked_total metric) until it answers again.")
    max_body_bytes: int = Field(1024 * 1024, ge=1024, description="Largest JSON request body.")
    max_thread_messages: int = Field(1000, ge=1, description="Most messages a kept thread may hold.")
    catch_up_after_s: float = Field(2 * 3600, gt=0, description="A thread quiet this long gets a catch-up summary.")
    upload_sync_bytes: int = Field(256 * 1024, ge=0, description="Larger uploads are ingested as a background job.")
    job_stale_after_s: float = Field(
        300.0, ge=4, description="A queued or running job of a process that cannot be checked from here (another "
                                 "host or container) is failed once it showed no sign of life this long; each "
                                 "process touches its own jobs every quarter of it. A job of a process of this "
                                 "machine is failed as soon as that process is gone.")
    log_level: str = Field("INFO", description="Level of the JSON logs.")

    max_file_bytes: int = Field(20 * 1024 * 1024, ge=1, description="Larger source files are refused.")
    chunk_tokens: int = Field(200, ge=16, le=2000, description="Token budget of one chunk (cl100k).")
    chunk_overlap_tokens: int = Field(70, ge=0, le=1000, description="Tokens repeated between chunks of a section.")

    @field_validator("data_dir")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser()

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'copilot.db').resolve()}"
