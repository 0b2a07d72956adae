"""The precision the embedding model runs in: what ``EMBEDDING_QUANTIZE`` means on this machine
(``resolve_precision``, from the CPU's flags), and the int8 recipe that keeps decisions (``quantize_int8``).
"""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)


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
