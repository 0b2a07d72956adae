"""EMBEDDING_POOLING: mean and cls pool the token states as they should; auto keeps the detection."""

from __future__ import annotations

import numpy as np
import pytest

# rows of different lengths, so that the batch is padded: padding must not reach the mean
TEXTS = ["广州有什么好玩的", "写一段描写秋天的文字，要有画面感：落叶、稻田和远山。", "雪"]


def reference_vectors(model_path: str) -> dict[str, np.ndarray]:
    """Pooled by hand from transformers' token states: the first token's (cls), the mean of the tokens
    under the attention mask (mean), and the mean over every position, padding included (the wrong
    mean, to show that the batch is padded); each L2-normalised."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_path)
    net = AutoModel.from_pretrained(model_path).eval()
    batch = tokenizer(TEXTS, padding=True, truncation=True, return_tensors="pt")
    with torch.inference_mode():
        hidden = net(**batch).last_hidden_state.double()
    mask = batch["attention_mask"].unsqueeze(-1).double()
    pooled = {
        "cls": hidden[:, 0],
        "mean": (hidden * mask).sum(dim=1) / mask.sum(dim=1),
        "mean_with_padding": hidden.mean(dim=1),
    }
    return {name: torch.nn.functional.normalize(v, dim=1).numpy() for name, v in pooled.items()}


def test_mean_and_cls_give_the_vectors_each_should(m3e_model_path, m3e_embedder):
    from writing.adapters.embedding.encoder import Embedder

    want = reference_vectors(m3e_model_path)
    assert not np.allclose(want["mean"], want["mean_with_padding"], atol=1e-3)  # the batch is padded
    assert not np.allclose(want["mean"], want["cls"], atol=1e-2)

    assert m3e_embedder.pooling == m3e_embedder.info.pooling == "mean"
    mean = m3e_embedder.embed(TEXTS)
    assert np.allclose(mean, want["mean"], atol=1e-5)
    assert np.allclose(np.linalg.norm(mean, axis=1), 1.0, atol=1e-5)

    cls = Embedder(m3e_model_path, pooling="cls")
    assert cls.info.pooling == "cls"
    assert np.allclose(cls.embed(TEXTS), want["cls"], atol=1e-5)


def test_auto_keeps_the_detection(model_path, m3e_model_path, embedder):
    """auto = the sentence-transformers config: all-MiniLM-L6-v2's 1_Pooling/config.json says mean; a
    folder without one (m3e-small's) gets CLS, which is why scripts/run.sh says EMBEDDING_POOLING=mean."""
    from writing.adapters.embedding.encoder import Embedder, detect_pooling

    assert detect_pooling(model_path) == "mean"
    assert embedder.pooling == "mean"  # the conftest's MiniLM: Embedder(model_path), pooling auto
    mean = Embedder(model_path, pooling="mean")
    assert np.allclose(embedder.embed(TEXTS), mean.embed(TEXTS), atol=1e-6)
    assert np.allclose(embedder.embed(TEXTS), reference_vectors(model_path)["mean"], atol=1e-5)

    assert detect_pooling(m3e_model_path) == "cls"
    assert Embedder(m3e_model_path, pooling="auto").pooling == "cls"


def test_the_setting_reaches_the_embedder(make_settings, m3e_model_path, monkeypatch):
    from writing.settings import SettingsError, load_settings
    from writing.wiring import build_embedder

    assert load_settings().embedding_pooling == "auto"
    monkeypatch.setenv("EMBEDDING_POOLING", "max")
    with pytest.raises(SettingsError, match="EMBEDDING_POOLING"):
        load_settings()
    monkeypatch.setenv("EMBEDDING_POOLING", "mean")
    assert load_settings().embedding_pooling == "mean"
    monkeypatch.delenv("EMBEDDING_POOLING")

    quick = {"embedding_model": m3e_model_path, "embedding_trace": "off"}
    assert build_embedder(make_settings(**quick, embedding_pooling="mean")).info.pooling == "mean"
    assert build_embedder(make_settings(**quick)).info.pooling == "cls"  # auto


def test_an_unknown_pooling_is_refused(m3e_model_path):
    from writing.adapters.embedding.encoder import Embedder

    with pytest.raises(ValueError, match="pooling"):
        Embedder(m3e_model_path, pooling="max")
