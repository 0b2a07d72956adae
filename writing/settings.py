"""One typed settings object for the whole service, read from environment variables.

Every field maps to the upper-case environment variable of the same name (``similarity_threshold``
-> ``SIMILARITY_THRESHOLD``). An invalid value stops start-up with a message naming the variable.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from writing.errors import ConfigurationError

# vLLM's documented extra sampling parameters (writing.api.protocol.openai.VLLM_EXTRA_FIELDS)
VLLM_EXTRAS = (
    "top_k",
    "min_p",
    "repetition_penalty",
    "length_penalty",
    "stop_token_ids",
    "include_stop_str_in_output",
    "ignore_eos",
    "min_tokens",
    "skip_special_tokens",
    "spaces_between_special_tokens",
)


class SettingsError(ConfigurationError):
    """Raised when the environment holds an invalid setting; the message names the variable."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    # --- embedding -------------------------------------------------------------------------
    embedding_model: str = Field("BAAI/bge-large-zh-v1.5", description="Hugging Face hub id or a local model folder.")
    embedding_device: str = Field("auto", description="auto | cpu | cuda | cuda:N")
    embedding_query_instruction: str = Field("", description="Prefix added to prompts (not passages).")
    embedding_pooling: Literal["auto", "cls", "mean"] = Field(
        "auto",
        description="How token vectors become one vector. auto: what the model's sentence-transformers "
        "config (1_Pooling/config.json) says, else CLS (bge); cls: the first token's; mean: the mean over "
        "the tokens (not padding). Set mean for a mean-pooled model without that config (m3e). Changing it "
        "changes every vector: re-embed the collection (ingest.py --reembed).",
    )
    embedding_quantize: Literal["auto", "none", "int8", "bf16"] = Field(
        "auto",
        description="auto: bf16 where the CPU has native bf16 (AVX512-BF16 or AMX), fp16 on CUDA, fp32 "
        "otherwise; none = fp32; int8 (dynamic, Linear layers) and bf16 force a CPU precision. See README.",
    )
    embedding_threads: int = Field(0, ge=0, description="torch CPU threads; 0 keeps torch's default.")
    embedding_trace: Literal["auto", "off"] = Field(
        "auto",
        description="auto: on a CPU, run the model as a TorchScript trace where it gives the eager "
        "model's vectors (checked at start-up; else eager, with a warning); off: always eager.",
    )
    embedding_spin_wait: bool = Field(
        True,
        description="true: the model's OpenMP threads spin between a pass's parallel regions also when "
        "several threads run passes (OMP_WAIT_POLICY=ACTIVE, GOMP_SPINCOUNT=300000, set before torch "
        "loads, unless either is set already; libgomp only); libgomp otherwise spins 100 times and "
        "sleeps, and a pass ran about a third slower (2 vCPU, the test model). false: libgomp's "
        "defaults (docs/operations.md).",
    )
    embedding_workers: int = Field(
        2,
        ge=1,
        le=64,
        description="threads running forward passes side by side from the one queue, sharing the CPU "
        "threads. One key holds at most all but one of them, so with 2 or more (the default) a quiet key "
        "never waits for a noisy key's pass (docs/operations.md, Fair model time). 1 = one pass at a time: "
        "a prompt may then wait for another key's whole batch.",
    )
    embedding_pass_tokens: int = Field(
        2048,
        ge=0,
        le=1_000_000,
        description="on a CPU, a batch runs as passes of rows of similar length, each of at most this many "
        "padded tokens (short prompts do not pad to a passage's length; see README); 0 = one pass per batch.",
    )
    embedding_max_batch_size: int = Field(16, ge=1, le=1024)
    embedding_batch_tokens: int = Field(
        1024,
        ge=1,
        le=1_000_000,
        description="Most estimated tokens in one batch of prompts (a longer prompt is a batch alone): bounds "
        "how long one batch holds a worker, so other keys' prompts get their turn soon (see docs/operations.md).",
    )
    embedding_admin_weight: float = Field(
        0.25,
        gt=0,
        le=1,
        description="Share of the embedding model's time admin work (imports, edits' re-embeds, calibration) gets "
        "while prompts wait, relative to one key's: it runs in small batches between the prompts' batches.",
    )
    embedding_admin_chunk_tokens: int = Field(
        2048,
        ge=64,
        le=1_000_000,
        description="Admin work is cut into batches of at most this many estimated tokens, so a prompt waits for "
        "at most one of them.",
    )
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
    hit_guard: Literal["on", "off", "shadow"] = Field(
        "on",
        description="The second check before a hit (numbers, negation, names, constraints): on rejects, "
        "shadow only records what it would reject, off skips it.",
    )
    shadow_mode: bool = Field(
        False, description="Answer everything from the LLM; record what retrieval would have done."
    )
    exact_tier: bool = Field(
        True,
        description="First in the chain: a prompt identical (after whitespace and NFC normalisation) to a stored "
        "answer's or a curated passage's (or retrieval key's) is served from this worker's memory, without "
        "embedding or searching, under the same rules (docs/decision.md). false: every hit is a vector search.",
    )
    exact_refresh_interval: float = Field(
        5.0,
        ge=0,
        description="With a Milvus server: seconds between reloads of the exact tier's index (what other workers "
        "and ingest.py stored or deleted); this worker's own changes apply at once. 0 = only at start-up.",
    )

    # --- answer cache (write-back of generated answers) ------------------------------------
    answer_cache: bool = False
    answer_cache_threshold: float = Field(0.92, gt=0, le=1)
    answer_cache_threshold_min: float = Field(
        0.5,
        gt=0,
        le=1,
        description="Lowest answer-tier threshold an admin may set at run time (PUT /v1/settings/threshold).",
    )
    answer_cache_threshold_max: float = Field(
        1.0, gt=0, le=1, description="Highest answer-tier threshold an admin may set at run time."
    )
    answer_cache_ttl: float = Field(7 * 24 * 3600, ge=0, description="Seconds an answer is served; 0 = forever.")
    answer_cache_max_entries: int = Field(
        100_000, ge=0, description="Stored answers kept at most (least recently hit evicted first); 0 = no cap."
    )
    answer_cache_max_entries_per_tenant: int = Field(
        0,
        ge=0,
        description="Stored answers kept at most per tenant, evicting within that tenant (least recently hit "
        "first), so one tenant cannot push out another's; ANSWER_CACHE_MAX_ENTRIES still caps them all; 0 = no quota.",
    )
    answer_cache_maintenance_interval: float = Field(
        60.0, ge=0, description="Seconds between answer-cache upkeep runs (hit counts, expiry, cap); 0 = never."
    )

    # --- feedback -------------------------------------------------------------------------------
    feedback_secret: SecretStr = Field(
        SecretStr(""),
        description="Signs X-Feedback-Token. Empty: derived from the keys (same on every worker with the same "
        "keys), or random per process when there are no keys. Set it when replicas have different keys.",
    )
    undo_retention_days: float = Field(
        30.0,
        ge=0,
        le=3650,
        description="Days the undo journal keeps an admin change (what reverses it, whole: passages' texts, "
        "answers' records, settings) for POST /v1/audit/{id}/undo; older entries are purged as new changes "
        "begin. 0 keeps them forever. The audit log itself is not purged.",
    )
    feedback_rate_per_minute: int = Field(30, ge=1, description="Feedback reports one key (or client) may send.")
    feedback_block_similarity: float = Field(
        0.97,
        gt=0,
        le=1,
        description="A wrong-hit report also blocks prompts at least this similar to the reported one.",
    )
    feedback_refresh_interval: float = Field(
        5.0, gt=0, description="Seconds between reloads of the blocklist (reports made on other workers)."
    )

    # --- the console and tuning at run time -------------------------------------------------------
    runtime_settings_refresh_interval: float = Field(
        5.0, gt=0, description="Seconds between reloads of run-time thresholds (set by an admin on any worker)."
    )
    stats_history_interval: float = Field(10.0, gt=0, description="Seconds per point of GET /v1/stats/history.")
    stats_history_points: int = Field(720, ge=1, le=100_000, description="Points of stats history kept per worker.")
    calibration_pairs: str = Field(
        "data/eval_pairs.jsonl", description="Labelled prompts (calibrate.py's --pairs) for POST /v1/calibration/runs."
    )
    calibration_answer_pairs: str = Field(
        "data/guard_pairs.jsonl", description="Prompt pairs for the answer tier in POST /v1/calibration/runs."
    )

    # --- error budget and verification (docs/error-budget.md) -------------------------------------
    error_budget_curated: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="The share of curated hits (exact ones included) that may be wrong, e.g. 0.02; the threshold "
        "then moves within SIMILARITY_THRESHOLD_MIN/MAX to the lowest whose upper confidence bound on the "
        "wrong-hit rate stays within it. 0 = off.",
    )
    error_budget_answer: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="The same for stored answers, within ANSWER_CACHE_THRESHOLD_MIN/MAX. 0 = off.",
    )
    error_budget_confidence: float = Field(
        0.95, gt=0.5, lt=1, description="The one-sided confidence level of the wrong-hit rate's upper bound."
    )
    error_budget_mode: Literal["enforce", "shadow"] = Field(
        "enforce",
        description="enforce applies the thresholds the budget finds; shadow only reports them (GET /v1/budget), "
        "so that what would change is seen before it does.",
    )
    error_budget_interval: float = Field(
        300.0,
        gt=0,
        description="Seconds between re-plans of the budgeted thresholds from the evidence (each reads the "
        "window's labels: at most VERIFY_MAX_PER_MINUTE per minute per worker).",
    )
    error_budget_window_days: float = Field(
        7.0, gt=0, le=3650, description="Days a verified label counts as evidence; older ones are purged."
    )
    error_budget_min_labels: int = Field(
        30, ge=1, description="Labels a tier needs before the budget moves its threshold (else the configured one)."
    )
    verify: bool = Field(
        False,
        description="Verify a sampled share of hits and near misses with the LLM as a judge, after the caller has "
        "its answer; the verdicts are the error budget's evidence.",
    )
    verify_method: Literal["llm_judge"] = Field(
        "llm_judge", description="How a candidate is verified: llm_judge asks the LLM (是/否, one token)."
    )
    verify_max_per_minute: int = Field(
        30, ge=1, description="Verification calls started in any minute, at most, per worker (WORKERS multiplies it)."
    )
    verify_max_llm_in_flight: int = Field(
        4, ge=1, description="Verification pauses while this many callers' LLM calls (or more) are in flight."
    )
    verify_pause_after_failure: float = Field(
        30.0, ge=0, description="Seconds verification pauses after a failed judge call, or while the LLM is failing."
    )
    verify_judge_miss_rate: float = Field(
        0.2,
        ge=0,
        lt=0.5,
        description="How often the judge says 是 of a wrong candidate (estimate it: python -m "
        "writing.cli.judge_errors); the wrong-hit estimate is corrected for it.",
    )
    verify_judge_false_alarm_rate: float = Field(
        0.0,
        ge=0,
        lt=0.45,
        description="How often the judge says 否 of a right candidate; set it at the low end of its estimate "
        "(a higher value lowers the wrong-hit estimate).",
    )

    # --- LLM -----------------------------------------------------------------------------------
    llm_base_url: str = "http://localhost:9000/v1"
    llm_model: str = Field("", description="Model name; empty = the first model the server lists.")
    llm_api_key: SecretStr = SecretStr("EMPTY")
    llm_max_tokens: int = Field(512, ge=1)
    llm_temperature: float = Field(0.7, ge=0, le=2)
    llm_top_p: float = Field(0.9, gt=0, le=1)
    llm_timeout: float = Field(60.0, gt=0, description="Overall deadline in seconds for one LLM answer.")
    llm_max_retries: int = Field(2, ge=0, le=10, description="Retries on connection errors and 5xx.")
    max_completion_tokens: int = Field(
        4096, ge=1, description="Highest max_tokens / max_completion_tokens a request may ask for; more gets 422."
    )
    allowed_extra_fields: list[str] = Field(
        default_factory=lambda: list(VLLM_EXTRAS),
        description="JSON list of chat-request fields beyond OpenAI's that go to the LLM; any other unknown "
        "field gets 422 naming it. Default: vLLM's sampling extras (top_k, min_p, repetition_penalty, ...).",
    )

    # --- HTTP ----------------------------------------------------------------------------------
    max_prompt_chars: int = Field(2000, ge=1, description="Longest prompt (the last user message).")
    max_total_chars: int = Field(
        32000, ge=1, description="Most characters over all messages of one chat request, system messages included."
    )
    max_messages: int = Field(64, ge=1, le=10000, description="Most messages in one chat request.")
    max_body_bytes: int = Field(256 * 1024, ge=1024, description="Largest request body accepted.")
    max_in_flight: int = Field(
        256, ge=1, description="Concurrent requests served (counted once the body is read); more get 503."
    )
    max_in_flight_share: float = Field(
        0.5, gt=0, le=1, description="Share of MAX_IN_FLIGHT one key (or, without keys, one client address) may hold."
    )
    body_read_timeout: float = Field(
        10.0, gt=0, description="Seconds a client may take to send its request body; slower gets 408."
    )
    stream_stall_timeout: float = Field(
        30.0, gt=0, description="Seconds a response may wait on a client that stopped reading before it is dropped."
    )
    readiness_probe_interval: float = Field(
        5.0, gt=0, description="/readyz probes Milvus and the LLM at most once per this many seconds."
    )
    ready_when_llm_down: bool = Field(
        False, description="/readyz answers 200 (status degraded) when only the LLM is down: hits are still served."
    )
    api_keys: SecretStr = Field(
        SecretStr(""),
        description="Caller keys, comma-separated; an entry may be KEY:TENANT (the key's answers are that "
        "tenant's). Callers use the answering routes, /v1/search and /v1/feedback. Empty (and no admin keys) = no auth.",
    )
    admin_api_keys: SecretStr = Field(
        SecretStr(""),
        description="Admin keys, comma-separated: everything a caller can do, plus managing the corpus, stored "
        "answers and feedback, the audit log and /metrics. With no keys at all, admin routes answer loopback only.",
    )
    metrics_api_keys: SecretStr = Field(
        SecretStr(""),
        description="Keys that read /metrics and nothing else, comma-separated: Prometheus's, so that the secret "
        "it holds is no admin key. Needs API_KEYS or ADMIN_API_KEYS (without them there is no authentication).",
    )
    trusted_hosts: list[str] = Field(
        default_factory=list,
        description="JSON list of host names, beyond localhost, 127.0.0.1, ::1 and *.localhost, that a loopback "
        "client may name in its Host header while no keys are set (loopback clients are admins then; another name "
        'is a browser tricked by DNS rebinding: 400), e.g. ["devbox"].',
    )
    forwarded_allow_ips: str = Field(
        "",
        description="Proxies (addresses or networks, comma-separated; * = any) whose X-Forwarded-For names the "
        "client, read from the right: the first address that is not one of them (with *, the left-most: use * only "
        "behind a proxy that overwrites the header). Empty: none, every peer is its own client. Set it behind a load balancer (e.g. 127.0.0.1 for nginx on the same host); keys are then "
        "required. The variable uvicorn's command line reads too.",
    )
    allowed_system_prompts: list[str] = Field(
        default_factory=list,
        description='JSON list of system prompts under which curated passages may still answer, e.g. ["你是写作助手"].',
    )
    workers: int = Field(1, ge=1, description="Worker processes for `python app.py`.")
    keep_alive_timeout: int = Field(
        65,
        ge=1,
        le=3600,
        description="Seconds `python app.py` keeps an idle keep-alive connection open. Longer than callers' pools "
        "keep theirs (httpx and the openai SDK: 5 s, aiohttp: 15 s, load balancers: 60 s), so that the server "
        "never closes a connection just as a caller reuses it (a reset).",
    )
    header_read_timeout: float = Field(
        10.0,
        gt=0,
        le=3600,
        description="Seconds `python app.py` gives a connection to send a complete request head (request line "
        "and headers), from its opening or from the first byte of its next request; then it is closed. Bounds "
        "slow-header (slowloris) connections, which uvicorn alone keeps open forever.",
    )
    max_connections: int = Field(
        1024,
        ge=0,
        le=1_000_000,
        description="Open connections `python app.py` accepts per worker process; past it a new connection is "
        "closed at once (open ones are unaffected). 0 = no cap. The soft open-files limit is raised to fit it.",
    )
    max_connections_per_client: int = Field(
        0,
        ge=0,
        le=1_000_000,
        description="Open connections `python app.py` accepts from one client address per worker process; 0 = "
        "no cap (behind a proxy every connection comes from the proxy: cap per address there).",
    )
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
        if self.embedding_quantize not in ("none", "auto") and self.embedding_device.startswith("cuda"):
            raise ValueError("EMBEDDING_QUANTIZE is for the CPU; on CUDA the model runs in fp16")
        if not self.similarity_threshold_min <= self.similarity_threshold <= self.similarity_threshold_max:
            raise ValueError(
                "SIMILARITY_THRESHOLD must lie between SIMILARITY_THRESHOLD_MIN and SIMILARITY_THRESHOLD_MAX"
            )
        if not self.answer_cache_threshold_min <= self.answer_cache_threshold <= self.answer_cache_threshold_max:
            raise ValueError(
                "ANSWER_CACHE_THRESHOLD must lie between ANSWER_CACHE_THRESHOLD_MIN and ANSWER_CACHE_THRESHOLD_MAX"
            )
        if self.forwarded_allow_ips and not self.auth_enabled:
            raise ValueError(
                "FORWARDED_ALLOW_IPS says the service runs behind a proxy: set API_KEYS and ADMIN_API_KEYS (with no "
                "keys loopback clients are admins, and through a proxy on the same host every client is one)"
            )
        metrics = set(self.metrics_keys)
        for name, keys in (("API_KEYS", {k for k, _ in self.caller_keys}), ("ADMIN_API_KEYS", set(self.admin_keys))):
            if keys & metrics:  # the other role would win, silently: an admin key where a metrics key was meant
                raise ValueError(f"a key is in both {name} and METRICS_API_KEYS: give Prometheus a key of its own")
        if self.metrics_keys and not self.auth_enabled:
            raise ValueError(
                "METRICS_API_KEYS needs API_KEYS or ADMIN_API_KEYS: without caller or admin keys there is no "
                "authentication, and every loopback client reads /metrics"
            )
        if self.workers > 1 and not self.milvus_uri:
            raise ValueError("WORKERS > 1 needs a Milvus server (MILVUS_URI): one process owns a Milvus Lite file")
        return self

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _proxies(cls, v: str) -> str:
        proxy_networks(v)  # raises naming the entry that is not an address
        return v.strip()

    @property
    def trusted_proxies(self) -> tuple[Network, ...]:
        return proxy_networks(self.forwarded_allow_ips)

    @field_validator("api_keys", "admin_api_keys", "metrics_api_keys")
    @classmethod
    def _keys(cls, v: SecretStr, info: ValidationInfo) -> SecretStr:
        for entry in _split_keys(v):
            key, _, tenant = entry.partition(":")
            if not key:
                raise ValueError("an entry has no key before ':'")
            if tenant and info.field_name == "admin_api_keys":
                raise ValueError("admin keys take no tenant (an admin names one with X-Tenant)")
            if tenant and info.field_name == "metrics_api_keys":
                raise ValueError("metrics keys take no tenant (KEY:TENANT is for API_KEYS)")
            if tenant and not TENANT_RE.match(tenant):
                raise ValueError("a tenant must be 1-64 characters of letters, digits, '_', '.' or '-'")
        return v

    @property
    def caller_keys(self) -> list[tuple[str, str | None]]:
        """(key, tenant or None) for every entry of API_KEYS."""
        out = []
        for entry in _split_keys(self.api_keys):
            key, _, tenant = entry.partition(":")
            out.append((key, tenant or None))
        return out

    @property
    def admin_keys(self) -> list[str]:
        return _split_keys(self.admin_api_keys)

    @property
    def metrics_keys(self) -> list[str]:
        return _split_keys(self.metrics_api_keys)

    @property
    def auth_enabled(self) -> bool:
        return bool(self.caller_keys or self.admin_keys)

    def feedback_key(self) -> bytes:
        """The HMAC key of feedback tokens (see FEEDBACK_SECRET)."""
        import hashlib
        import secrets

        given = self.feedback_secret.get_secret_value()
        if given:
            return given.encode("utf-8")
        if self.auth_enabled:
            keys = ",".join(sorted(self.admin_keys + [k for k, _ in self.caller_keys]))
            return hashlib.sha256(f"writing-feedback\x00{self.milvus_collection}\x00{keys}".encode()).digest()
        return secrets.token_bytes(32)


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def proxy_networks(value: str) -> tuple[Network, ...]:
    """``FORWARDED_ALLOW_IPS``: addresses or networks, comma-separated ("" = none, "*" = any)."""
    out: list[Network] = []
    for entry in (e.strip() for e in value.split(",")):
        if entry == "*":
            out += [ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0")]
        elif entry:
            try:
                out.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                raise ValueError(f"{entry!r} is not an IP address or network (e.g. 127.0.0.1 or 10.0.0.0/8)") from None
    return tuple(out)


TENANT_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def _split_keys(value: SecretStr) -> list[str]:
    return [k.strip() for k in value.get_secret_value().split(",") if k.strip()]


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
