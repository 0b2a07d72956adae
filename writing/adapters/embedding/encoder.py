"""Text embeddings with a Hugging Face encoder (bge-large-zh in production) through transformers + torch.

The pooling mode comes from the model's sentence-transformers config (``1_Pooling/config.json``) when
it has one, else CLS pooling (what bge uses). Vectors are L2-normalised, so inner product == cosine.
Inputs are truncated at the model's maximum length, and every embedding call says which inputs were
cut (``Embedded.truncated``), from the same tokenizer pass that feeds the model. Implements
``writing.core.ports.PassageEncoder``; the batcher wraps it as the core's ``QueryEncoder``.
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

logger = logging.getLogger(__name__)

POOLING_MODES = ("cls", "mean", "max", "mean_sqrt_len")


@dataclass(frozen=True)
class Embedded:
    """Unit vectors (n, dim), and per row whether the text was longer than the window and cut."""

    vectors: np.ndarray
    truncated: list[bool]


class ThreadShares:
    """How many CPU threads each forward pass takes, when passes run side by side (pure logic).

    A pass alone takes them all; one that starts beside others takes ``total // passes``. A share is
    fixed when a pass starts (a TorchScript graph runs to its end with the team it began with). So a
    pass that would start beside one of at most half its size holding every thread waits for that one
    instead (it ends sooner than the half share would cost), then runs with them all: a burst that
    arrives just after a lone request would otherwise run on half the threads long after that request
    is done. Passes of similar sizes start side by side, each on its share. Thread-safe.
    """

    def __init__(self, total: int) -> None:
        if total < 1:
            raise ValueError("total must be at least 1")
        self.total = total
        self._running: list[tuple[int, int]] = []  # (size, threads) of the passes running now
        self._changed = threading.Condition()

    def acquire(self, size: int) -> int:
        """Threads for a pass of ``size`` (tokens, padding included); may wait (see the class). Blocking."""
        with self._changed:
            while any(threads >= self.total and 2 * other <= size for other, threads in self._running):
                self._changed.wait()
            threads = max(1, self.total // (len(self._running) + 1))
            self._running.append((size, threads))
            return threads

    def release(self, size: int, threads: int) -> None:
        with self._changed:
            self._running.remove((size, threads))
            self._changed.notify_all()


# what one more forward pass costs, in padded tokens' worth of work. On 2 CPU cores the test model's
# passages cost 36.8 ms each in passes of 8 and 39.8 in passes of 4, ~0.25 ms a token: ~96 tokens a pass
PASS_OVERHEAD_TOKENS = 96


def plan_passes(lengths: list[int], budget: int, overhead: int = PASS_OVERHEAD_TOKENS) -> list[list[int]]:
    """Forward passes for one batch (pure logic): groups of row indices, each in length order.

    Rows are sorted by length and cut into consecutive passes so that the work, ``overhead`` per pass
    plus rows x the pass's longest row (its padded size), is least, each pass within ``budget`` padded
    tokens (a row longer than that is a pass alone); of equal splits, the one whose largest pass is
    smallest (16 passages on a budget of 7 run as three passes of at most 6, not 7 + 7 + 2). So short
    prompts in a batch of passages run apart, without padding to the passages' length, while rows of
    similar length share one pass. ``budget`` 0 = one pass for the whole batch."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    n = len(order)
    if n == 0 or budget <= 0:
        return [order] if order else []
    sizes = [lengths[i] for i in order]
    if n * sizes[-1] <= budget and sum(sizes[-1] - x for x in sizes) <= overhead:
        return [order]  # similar lengths within the budget: one pass
    # best[j]: (work, largest pass) of the first j rows; cut[j]: where their last pass starts
    best: list[tuple[int, int]] = [(0, 0)] + [(1 << 62, 0)] * n
    cut = [0] * (n + 1)
    for j in range(1, n + 1):
        longest = sizes[j - 1]
        for i in range(j - 1, -1, -1):
            rows = j - i
            padded = rows * longest
            if rows > 1 and padded > budget:
                break
            work, largest = best[i]
            candidate = (work + overhead + padded, max(largest, padded))
            if candidate < best[j]:
                best[j], cut[j] = candidate, i
    passes: list[list[int]] = []
    j = n
    while j > 0:
        passes.append(order[cut[j] : j])
        j = cut[j]
    return passes[::-1]


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


def cpu_has_vnni() -> bool:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="ignore") as fh:
            flags = next(line for line in fh if line.startswith("flags"))
    except (OSError, StopIteration):
        return False
    return " avx512_vnni" in flags or " avx_vnni" in flags


def quantize_int8(net):
    """torch dynamic int8 quantisation of the Linear layers, in the recipe that kept decisions.

    Measured on the sample corpus (bench/quantization.py): torch's default (one scale per tensor,
    activations cut to 7 bits) gave mean cosine 0.88 to fp32 and changed 3 of 166 decisions. Here:
    one scale per output channel; activations quantised to the full 8 bits where the CPU has VNNI
    (the 7-bit cut only guards against int16 overflow on CPUs without it); and the feed-forward output
    projections, whose inputs after GELU have the widest range, kept in fp32. Returns (model, label).
    """
    import torch
    import torch.ao.nn.quantized.dynamic as nnqd
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    full_range = cpu_has_vnni()
    if not full_range:
        logger.warning(
            "EMBEDDING_QUANTIZE=int8 on a CPU without VNNI: activations keep 7 bits and similarities move by "
            "up to ~0.055 from fp32 (measured on AVX2); decisions that close to a threshold may change"
        )

    class Int8Linear(nnqd.Linear):
        def forward(self, x):
            if self._packed_params.dtype != torch.qint8:
                return super().forward(x)
            y = torch.ops.quantized.linear_dynamic(x, self._packed_params._packed_params, reduce_range=not full_range)
            return y.to(x.dtype)

    linears = [name for name, m in net.named_modules() if isinstance(m, torch.nn.Linear)]
    ffn_out = {n for n in linears if n.endswith(".output.dense") and ".attention." not in n}
    spec = {n: per_channel_dynamic_qconfig for n in linears if n not in ffn_out}
    net = quantize_dynamic(net, spec, dtype=torch.qint8, mapping={torch.nn.Linear: Int8Linear})
    return net, f"int8-dynamic-per-channel-{'8' if full_range else '7'}bit-act"


def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags as Linux reports them (empty elsewhere)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def resolve_precision(quantize: str, device_type: str, flags: frozenset[str] | None = None) -> tuple[str, str]:
    """What ``EMBEDDING_QUANTIZE`` means on this machine: (none | bf16 | int8, why).

    ``auto`` takes the fastest precision that keeps decisions: fp16 on CUDA (the model runs fp16 there
    whatever is asked), bf16 where the CPU computes it natively (AVX512-BF16 or AMX: measured cosine
    0.9999 to fp32, no decision changed, 1.8x the throughput; bench/quantization.py), fp32 otherwise
    (bf16 emulated is slower than fp32). int8 is never chosen automatically: its similarities move with
    the batch it is computed in."""
    if device_type == "cuda":
        return "none", "CUDA: the model runs in fp16"
    if quantize != "auto":
        return quantize, "set by EMBEDDING_QUANTIZE"
    flags = cpu_flags() if flags is None else flags
    native = sorted(flags & {"avx512_bf16", "amx_bf16"})
    if native:
        return "bf16", f"auto: the CPU computes bf16 natively ({', '.join(native)})"
    return "none", "auto: no native bf16 on this CPU (no avx512_bf16 or amx_bf16), fp32 is faster"


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
    ) -> None:
        import torch
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
        self.pooling = detect_pooling(model)

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
