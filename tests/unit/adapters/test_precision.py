"""EMBEDDING_QUANTIZE=auto: the fastest precision that keeps decisions, chosen from the machine."""

from __future__ import annotations

import pytest

from writing.adapters.embedding.precision import resolve_precision


@pytest.mark.parametrize(
    ("flags", "device", "want"),
    [
        ({"avx512f", "avx512_bf16"}, "cpu", "bf16"),
        ({"amx_bf16", "amx_tile"}, "cpu", "bf16"),
        ({"avx2", "avx512f"}, "cpu", "none"),  # bf16 would be emulated: fp32 is faster
        (set(), "cpu", "none"),
        ({"avx512_bf16"}, "cuda", "none"),  # the model runs fp16 on CUDA whatever is asked
    ],
)
def test_auto_picks_bf16_only_where_the_cpu_has_it(flags, device, want):
    chosen, why = resolve_precision("auto", device, frozenset(flags))
    assert chosen == want and why


@pytest.mark.parametrize("asked", ["none", "int8", "bf16"])
def test_an_explicit_choice_is_kept_on_the_cpu(asked):
    assert resolve_precision(asked, "cpu", frozenset({"avx512_bf16"}))[0] == asked


def test_auto_is_the_default(monkeypatch):
    from writing.settings import load_settings

    monkeypatch.delenv("EMBEDDING_QUANTIZE", raising=False)
    assert load_settings().embedding_quantize == "auto"
    assert load_settings(embedding_device="cuda").embedding_quantize == "auto"  # allowed with CUDA too
