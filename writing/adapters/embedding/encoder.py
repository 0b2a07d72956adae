"""Text embeddings with a Hugging Face encoder (bge-large-zh in production) through transformers + torch.

The pooling mode is EMBEDDING_POOLING (``cls`` or ``mean``), or with ``auto`` the one named by the
model's sentence-transformers config (``1_Pooling/config.json``) when it has one, else CLS pooling (what
bge uses): a mean-pooled model without that config (m3e) needs ``mean`` said explicitly. Vectors are
L2-normalised, so inner product == cosine.
Inputs are truncated at the model's maximum length, and every embedding call says which inputs were
cut (``Embedded.truncated``), from the same tokenizer pass that feeds the model. Implements
``writing.core.ports.PassageEncoder``; the batcher wraps it as the core's ``QueryEncoder``.

How a batch is cut into forward passes and how passes share the CPU's threads is
``writing.adapters.embedding.passes``; which precision the model runs in is
``writing.adapters.embedding.precision`` (their names are re-exported here).
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from writing.adapters.embedding.openmp import spin_wait as openmp_spin_wait
from writing.adapters.embedding.passes import PASS_OVERHEAD_TOKENS as PASS_OVERHEAD_TOKENS
from writing.adapters.embedding.passes import ThreadShares, plan_passes
from writing.adapters.embedding.precision import cpu_flags as cpu_flags
from writing.adapters.embedding.precision import cpu_has_vnni as cpu_has_vnni
from writing.adapters.embedding.precision import quantize_int8, resolve_precision

logger = logging.getLogger(__name__)

POOLING_MODES = ("cls", "mean", "max", "mean_sqrt_len")
# what EMBEDDING_POOLING may say: auto = detect_pooling (any of POOLING_MODES)
POOLING_CHOICES = ("auto", "cls", "mean")


@dataclass(frozen=True)
class Embedded:
    """Unit vectors (n, dim), and per row whether the text was longer than the window and cut."""

    vectors: np.ndarray
    truncated: list[bool]


@dataclass(frozen=True)
class EmbedderInfo:
    model: str
    dim: int
    max_length: int
    pooling: str
    device: str
    dtype: str
    quantize: str
    graph: str = "eager"  # eager | torchscript (EMBEDDING_TRACE)
    pass_tokens: int = 0  # the padded tokens one forward pass takes at most (EMBEDDING_PASS_TOKENS)


def _read_json(model: str, relative: str) -> dict | None:
    """Read a JSON file from a local model folder or the local hub cache; None when absent."""
    local = Path(model) / relative
    if local.is_file():
        return json.loads(local.read_text(encoding="utf-8"))
    if Path(model).is_dir():
        return None
    try:  # a hub id: look in the hub cache (or the hub, when online)
        from transformers.utils import cached_file

        path = cached_file(model, relative, _raise_exceptions_for_missing_entries=False)
    except Exception:  # noqa: BLE001 - an absent optional file is not an error
        return None
    return json.loads(Path(path).read_text(encoding="utf-8")) if path else None


def detect_pooling(model: str) -> str:
    """Pooling named by a sentence-transformers ``1_Pooling/config.json``; CLS (bge) when there is none."""
    modules = _read_json(model, "modules.json") or []
    pooling_dir = next(
        (m.get("path", "1_Pooling") for m in modules if m.get("type", "").endswith("models.Pooling")),
        "1_Pooling",
    )
    cfg = _read_json(model, f"{pooling_dir}/config.json")
    if not cfg:
        return "cls"
    for mode in ("cls_token", "mean_tokens", "max_tokens", "mean_sqrt_len_tokens"):
        if cfg.get(f"pooling_mode_{mode}"):
            return mode.removesuffix("_tokens").removesuffix("_token")
    raise ValueError(f"{model}: unsupported pooling config {cfg}")


# EMBEDDING_TRACE: the batch the trace is taken on (padded: two lengths), and the batches it is checked
# on against the eager model (one text; three lengths; a text past the window, cut to its full length)
_TRACE_EXAMPLE = ("写一段描写秋天的文字，要有画面感。", "短句")
_TRACE_CHECKS = (
    ("介绍一下西湖",),
    ("Spring rain on the river.", "春风吹过河岸，柳树抽出新芽，田野里油菜花开成一片金黄。", "雪"),
    ("春风吹过河岸，柳树抽出新芽。" * 80, "夏夜的星空"),
)
_TRACE_TOLERANCE = 1e-4


class Embedder:
    """A synchronous encoder. Thread-safe: forward passes from several threads run side by side.

    On a CPU the passes share the model's threads (``num_threads``, else torch's default: one per core)
    as ``ThreadShares`` says: a pass alone gets them all, two passes at once one half each, and so on.
    Each pass sets its own thread's OpenMP team size, so passes side by side do not oversubscribe the
    cores (the corpus API's writes run beside prompts when EMBEDDING_WORKERS > 1).

    On a CPU a batch's rows are sorted by length and run as consecutive passes where that is less work,
    each of at most ``pass_tokens`` padded tokens (``plan_passes``): a short prompt then does not pad to
    a passage's length, and 16 passages run as two passes of 8, which cost less per token than one of
    16 on 2 cores. 0 (and any GPU) = one pass per batch.

    ``spin_wait`` (the service's EMBEDDING_SPIN_WAIT) sets how OpenMP's threads wait before torch loads:
    see ``writing.adapters.embedding.openmp``. Off by default, so a bare Embedder runs as torch does.
    """

    def __init__(
        self,
        model: str,
        *,
        device: str = "auto",
        query_instruction: str = "",
        quantize: str = "none",
        num_threads: int = 0,
        trace: str = "off",
        pass_tokens: int = 0,
        pooling: str = "auto",
        spin_wait: bool = False,
    ) -> None:
        with openmp_spin_wait() if spin_wait else contextlib.nullcontext(None) as said:
            import torch  # loads libgomp, which reads its environment once, now (openmp.py)
        if said:
            logger.info("%s", said)
        from transformers import AutoModel, AutoTokenizer

        self._torch = torch
        if num_threads > 0:
            torch.set_num_threads(num_threads)
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise RuntimeError(f"EMBEDDING_DEVICE={device} but CUDA is not available")
        self.device = torch.device(device)
        self.query_instruction = query_instruction
        if pooling not in POOLING_CHOICES:
            raise ValueError(f"pooling must be one of {', '.join(POOLING_CHOICES)}, not {pooling!r}")
        self.pooling = detect_pooling(model) if pooling == "auto" else pooling

        self.tokenizer = AutoTokenizer.from_pretrained(model)
        # a fast tokenizer keeps its padding/truncation settings on one shared object, so calls from two
        # threads must not interleave: embedding calls share one lock, and token_count (usage estimates)
        # has its own copy of the tokenizer, so it never waits for a batch being tokenized
        self._tokenizer_lock = threading.Lock()
        self._count_tokenizer = copy.deepcopy(self.tokenizer)
        self._count_lock = threading.Lock()
        net = AutoModel.from_pretrained(model)
        net.eval()
        quantize, why = resolve_precision(quantize, self.device.type)
        logger.info("embedding precision: %s (%s)", "fp16" if self.device.type == "cuda" else quantize, why)
        dtype = "float32"
        if self.device.type == "cuda":
            net = net.to(self.device, dtype=torch.float16)
            dtype = "float16"
        elif quantize == "int8":
            net, dtype = quantize_int8(net)
        elif quantize == "bf16":
            net = net.to(torch.bfloat16)
            dtype = "bfloat16"
        self.model = net
        self.max_length = self._max_length(model, net)
        # a batch runs as passes of at most this many padded tokens, rows of similar length together
        # (plan_passes); 0 = one pass per batch
        # (measured on CPUs only: on a GPU padding costs little and a batch stays one pass)
        self.pass_tokens = max(0, int(pass_tokens)) if self.device.type == "cpu" else 0
        # TorchScript: the forward pass as one graph, run without Python between its operations and
        # without holding the GIL, kept only where it gives the eager model's vectors (see _trace)
        self._traced = None
        graph = "eager"
        if trace == "auto" and self.device.type == "cpu":
            self._traced, graph = self._trace(net)
        # CPU threads shared among the passes running (see the class docstring)
        self._cpu_threads = torch.get_num_threads() if self.device.type == "cpu" else 0
        self._shares = ThreadShares(self._cpu_threads) if self._cpu_threads > 1 else None
        self._thread_state = threading.local()  # the team size this thread last set

        self.dim = int(net.config.hidden_size)
        self.info = EmbedderInfo(
            model=model,
            dim=self.dim,
            max_length=self.max_length,
            pooling=self.pooling,
            device=str(self.device),
            dtype=dtype,
            quantize=quantize,
            graph=graph,
            pass_tokens=self.pass_tokens,
        )
        logger.info("embedding model ready: %s", self.info)

    def _max_length(self, model: str, net) -> int:
        st_cfg = _read_json(model, "sentence_bert_config.json") or {}
        limits = [
            st_cfg.get("max_seq_length"),
            getattr(net.config, "max_position_embeddings", None),
            self.tokenizer.model_max_length if self.tokenizer.model_max_length < 100_000 else None,
        ]
        return int(min(x for x in limits if x))

    def _trace(self, net):
        """(the traced model, "torchscript"), or (None, "eager") where tracing fails or disagrees.

        The trace is taken on a padded batch, so the attention mask is part of the graph whatever the
        input (a trace of an unpadded batch could drop it: transformers skips an all-ones mask), then
        checked against the eager model on batches of other sizes and lengths, padded and not, up to
        the full window: every vector within 1e-4 of the eager one, or the eager model stays."""
        import warnings

        torch = self._torch
        example = self._encode(list(_TRACE_EXAMPLE))
        try:
            with warnings.catch_warnings(), torch.inference_mode():
                # TracerWarnings name the shape checks that the padded example settles (see above)
                warnings.simplefilter("ignore")
                traced = torch.jit.trace(net, example_kwarg_inputs=dict(example), strict=False)
                worst = 0.0
                for texts in _TRACE_CHECKS:
                    batch = self._encode(list(texts))
                    eager = self._pooled(net(**batch)["last_hidden_state"], batch["attention_mask"])
                    graph = self._pooled(traced(**batch)["last_hidden_state"], batch["attention_mask"])
                    worst = max(worst, float((eager - graph).abs().max()))
        except Exception as exc:  # noqa: BLE001 - any failure keeps the eager model, which works
            logger.warning("EMBEDDING_TRACE=auto: tracing failed (%s); the model runs eagerly", type(exc).__name__)
            return None, "eager"
        if worst > _TRACE_TOLERANCE:
            logger.warning(
                "EMBEDDING_TRACE=auto: the traced model's vectors differ from the eager model's by %.2g; "
                "the model runs eagerly",
                worst,
            )
            return None, "eager"
        logger.info("embedding model traced (TorchScript; largest difference to eager %.2g)", worst)
        return traced, "torchscript"

    @property
    def cpu_threads(self) -> int:
        """The CPU threads the forward passes share (0 on a GPU)."""
        return self._cpu_threads

    # -- public API --------------------------------------------------------------------------
    def token_count(self, text: str, *, query: bool = True) -> int:
        """Tokens the model would see for this text (special tokens included, before truncation).
        Blocking: callers on an event loop run it in a thread."""
        if query:
            text = self.query_instruction + text
        with self._count_lock:
            return len(self._count_tokenizer(text, add_special_tokens=True, truncation=False)["input_ids"])

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        """Embed prompts (the query instruction, if any, is prepended)."""
        return self.embed_queries_checked(texts).vectors

    def embed_queries_checked(self, texts: list[str]) -> Embedded:
        """``embed_queries``, also saying which prompts were longer than the window."""
        return self.embed_checked([self.query_instruction + t for t in texts])

    def embed(self, texts: list[str]) -> np.ndarray:
        """``texts`` as float32 (n, dim), L2-normalised: one forward pass padded to the longest, or passes of
        rows of similar length where ``plan_passes`` finds that less work (``pass_tokens``)."""
        return self.embed_checked(texts).vectors

    def embed_checked(self, texts: list[str]) -> Embedded:
        """``embed``, also saying which texts were longer than the window (from the same tokenizer pass)."""
        if not texts:
            return Embedded(np.zeros((0, self.dim), dtype=np.float32), [])
        batch = self._encode(texts)
        # a fast tokenizer keeps what truncation cut off on each encoding
        truncated = [bool(e.overflowing) for e in batch.encodings] if batch.encodings else [False] * len(texts)
        batch = batch.to(self.device)
        model = self._traced if self._traced is not None else self.model
        rows, width = batch["input_ids"].shape
        lengths: list[int] = []
        passes: list[list[int]] = []
        if self.pass_tokens > 0 and rows > 1:
            lengths = batch["attention_mask"].sum(dim=1).tolist()
            passes = plan_passes(lengths, self.pass_tokens)
        if len(passes) <= 1:
            with self._threads_for_pass(rows * width), self._torch.inference_mode():
                pooled = self._pooled(model(**batch)["last_hidden_state"], batch["attention_mask"])
            return Embedded(pooled.cpu().numpy().astype(np.float32, copy=False), truncated)
        out = np.empty((rows, self.dim), dtype=np.float32)
        for group in passes:
            longest = lengths[group[-1]]  # plan_passes keeps each group in length order
            # only padding is cut: every row of the group fits in its longest row's width
            cols = slice(0, longest) if self.tokenizer.padding_side == "right" else slice(width - longest, width)
            index = self._torch.tensor(group, device=self.device)
            part = {name: tensor[index, cols] for name, tensor in batch.items()}
            with self._threads_for_pass(len(group) * longest), self._torch.inference_mode():
                pooled = self._pooled(model(**part)["last_hidden_state"], part["attention_mask"])
            out[group] = pooled.cpu().numpy()
        return Embedded(out, truncated)

    def _encode(self, texts: list[str]):
        with self._tokenizer_lock:
            return self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")

    def _pooled(self, hidden, mask):
        """Pooled and L2-normalised, float32."""
        return self._torch.nn.functional.normalize(self._pool(hidden, mask).float(), p=2, dim=1)

    @contextlib.contextmanager
    def _threads_for_pass(self, size: int):
        """This thread's share of the CPU threads while its pass of ``size`` tokens runs (``ThreadShares``)."""
        if self._shares is None:
            yield
            return
        threads = self._shares.acquire(size)
        try:
            if getattr(self._thread_state, "threads", None) != threads:
                # per thread: torch sets the calling thread's OpenMP team size (and MKL's, thread-local)
                self._torch.set_num_threads(threads)
                self._thread_state.threads = threads
            yield
        finally:
            self._shares.release(size, threads)

    def embed_sorted(self, texts: list[str], batch_size: int) -> np.ndarray:
        """Embed many texts in batches of similar length (less padding), results in input order."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            out[idx] = self.embed([texts[i] for i in idx])
        return out

    def _pool(self, hidden, mask):
        torch = self._torch
        if self.pooling == "cls":
            return hidden[:, 0]
        m = mask.unsqueeze(-1).to(hidden.dtype)
        if self.pooling == "max":
            return hidden.masked_fill(m == 0, torch.finfo(hidden.dtype).min).max(dim=1).values
        summed = (hidden * m).sum(dim=1)
        counts = m.sum(dim=1).clamp(min=1e-9)
        if self.pooling == "mean_sqrt_len":
            return summed / counts.sqrt()
        return summed / counts
