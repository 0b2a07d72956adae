"""One typed settings object for the whole service, read from environment variables.

Every field maps to the upper-case environment variable of the same name (``similarity_threshold``
-> ``SIMILARITY_THRESHOLD``). An invalid value stops start-up with a message naming the variable.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from writing.errors import ConfigurationError


class SettingsError(ConfigurationError):
    """Raised when the environment holds an invalid setting; the message names the variable."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    # --- embedding -------------------------------------------------------------------------
    embedding_model: str = Field("BAAI/bge-large-zh-v1.5", description="Hugging Face hub id or a local model folder.")
    embedding_device: str = Field("auto", description="auto | cpu | cuda | cuda:N")
    embedding_query_instruction: str = Field("", description="Prefix added to prompts (not passages).")
    embedding_quantize: Literal["none", "int8", "bf16"] = Field(
        "none", description="CPU only: int8 (dynamic, Linear layers) or bf16 weights; see README."
    )
    embedding_threads: int = Field(0, ge=0, description="torch CPU threads; 0 keeps torch's default.")
    embedding_max_batch_size: int = Field(16, ge=1, le=1024)
    embedding_batch_wait_ms: float = Field(2.0, ge=0, le=1000)
    embedding_queue_size: int = Field(256, ge=1)
    embedding_cache_size: int = Field(4096, ge=0, description="LRU of prompt embeddings; 0 disables.")

    # --- vector store ------------------------------------------------------------------------
    milvus_uri: str = Field("", description="Milvus server, e.g. http://host:19530; empty = Milvus Lite.")
    milvus_lite_path: str = Field("./data/milvus.db", description="Milvus Lite file when MILVUS_URI is empty.")
    milvus_token: SecretStr = SecretStr("")
    milvus_db: str = ""
    milvus_collection: str = Field("writing", pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,199}$")
    milvus_timeout: float = Field(5.0, gt=0, description="Seconds for one vector-store call.")
    milvus_retry_interval: float = Field(
        5.0, gt=0, description="Seconds between reconnection attempts while Milvus is down."
    )
    similarity_threshold: float = Field(0.75, gt=0, le=1)
    similarity_threshold_min: float = Field(
        0.5, gt=0, le=1, description="Lowest threshold a request may ask for (X-Similarity-Threshold)."
    )
    similarity_threshold_max: float = Field(1.0, gt=0, le=1, description="Highest threshold a request may ask for.")
    on_vector_store_error: Literal["llm", "fail"] = Field(
        "llm", description="Milvus down: answer from the LLM (llm) or answer 503 (fail)."
    )
    retrieve_long_prompts: bool = Field(
        False, description="Retrieve for prompts longer than the embedding window (else BYPASS)."
    )
    retrieve_multi_turn: bool = Field(
        False, description="Retrieve for conversations with earlier assistant turns (else BYPASS)."
    )
    shadow_mode: bool = Field(
        False, description="Answer everything from the LLM; record what retrieval would have done."
    )

    # --- answer cache (write-back of generated answers) ------------------------------------
    answer_cache: bool = False
    answer_cache_threshold: float = Field(0.92, gt=0, le=1)
    answer_cache_ttl: float = Field(7 * 24 * 3600, ge=0, description="Seconds an answer is served; 0 = forever.")

    # --- LLM -----------------------------------------------------------------------------------
    llm_base_url: str = "http://localhost:9000/v1"
    llm_model: str = Field("", description="Model name; empty = the first model the server lists.")
    llm_api_key: SecretStr = SecretStr("EMPTY")
    llm_max_tokens: int = Field(512, ge=1)
    llm_temperature: float = Field(0.7, ge=0, le=2)
    llm_top_p: float = Field(0.9, gt=0, le=1)
    llm_timeout: float = Field(60.0, gt=0, description="Overall deadline in seconds for one LLM answer.")
    llm_max_retries: int = Field(2, ge=0, le=10, description="Retries on connection errors and 5xx.")

    # --- HTTP ----------------------------------------------------------------------------------
    max_prompt_chars: int = Field(2000, ge=1)
    max_body_bytes: int = Field(256 * 1024, ge=1024, description="Largest request body accepted.")
    max_in_flight: int = Field(256, ge=1, description="Concurrent requests served; more get 503.")
    api_keys: SecretStr = Field(SecretStr(""), description="Comma-separated API keys; empty = no auth.")
    workers: int = Field(1, ge=1, description="Worker processes for `python app.py`.")
    host: str = "0.0.0.0"
    port: int = Field(8000, ge=1, le=65535)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator("embedding_device")
    @classmethod
    def _device(cls, v: str) -> str:
        v = v.strip().lower()
        if v in ("auto", "cpu", "cuda") or (v.startswith("cuda:") and v[5:].isdigit()):
            return v
        raise ValueError("must be auto, cpu, cuda or cuda:N")

    @field_validator("milvus_uri")
    @classmethod
    def _milvus_uri(cls, v: str) -> str:
        v = v.strip()
        if v and not v.startswith(("http://", "https://", "tcp://", "grpc://")):
            raise ValueError(
                "must be a Milvus server URI such as http://localhost:19530 "
                "(for an embedded Milvus Lite file set MILVUS_LITE_PATH instead)"
            )
        return v

    @field_validator("llm_base_url")
    @classmethod
    def _llm_url(cls, v: str) -> str:
        v = v.strip().rstrip("/")
        if not v.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL such as http://localhost:9000/v1")
        return v

    @field_validator("embedding_model", "milvus_lite_path")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be empty")
        return v.strip()

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.embedding_quantize != "none" and self.embedding_device.startswith("cuda"):
            raise ValueError("EMBEDDING_QUANTIZE is for the CPU; on CUDA the model runs in fp16")
        if not self.similarity_threshold_min <= self.similarity_threshold <= self.similarity_threshold_max:
            raise ValueError(
                "SIMILARITY_THRESHOLD must lie between SIMILARITY_THRESHOLD_MIN and SIMILARITY_THRESHOLD_MAX"
            )
        if self.workers > 1 and not self.milvus_uri:
            raise ValueError("WORKERS > 1 needs a Milvus server (MILVUS_URI): one process owns a Milvus Lite file")
        return self

    @property
    def api_key_list(self) -> list[str]:
        return [k.strip() for k in self.api_keys.get_secret_value().split(",") if k.strip()]


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment (plus explicit overrides) or fail with a clear message."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            name = "_".join(str(p) for p in err["loc"]).upper()
            if not name:  # a rule across several variables: its message names them
                problems.append(err["msg"].removeprefix("Value error, "))
                continue
            shown = "<hidden>" if name.endswith(("_KEY", "_TOKEN", "_KEYS")) else repr(err.get("input"))
            problems.append(f"{name}: {err['msg']} (got {shown})")
        raise SettingsError("invalid settings: " + "; ".join(problems)) from None
