"""The embedder: pooling read from the model's config, unit vectors, truncation, the bge default."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest


def test_pooling_comes_from_the_sentence_transformers_config(model_path, tmp_path):
    from writing.adapters.embedding.encoder import detect_pooling

    assert detect_pooling(model_path) == "mean"  # all-MiniLM-L6-v2
    bare = tmp_path / "bare"
    shutil.copytree(model_path, bare, ignore=shutil.ignore_patterns("1_Pooling", "modules.json"))
    assert detect_pooling(str(bare)) == "cls"  # no config: CLS, as bge uses
    cls_cfg = tmp_path / "cls"
    shutil.copytree(model_path, cls_cfg)
    cfg = json.loads((cls_cfg / "1_Pooling" / "config.json").read_text())
    cfg.update(pooling_mode_mean_tokens=False, pooling_mode_cls_token=True)
    (cls_cfg / "1_Pooling" / "config.json").write_text(json.dumps(cfg))
    assert detect_pooling(str(cls_cfg)) == "cls"


def test_vectors_are_unit_length_and_match_sentence_transformers_mean_pooling(embedder):
    texts = ["秋天的树叶黄了", "The weather is lovely today.", "a"]
    v = embedder.embed(texts)
    assert v.shape == (3, 384) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    # batched == one at a time (padding must not leak into the pooled vector)
    single = np.vstack([embedder.embed([t]) for t in texts])
    assert np.allclose(v, single, atol=1e-5)


def test_long_inputs_are_truncated_at_the_models_window(embedder):
    long = "长" * 5000
    assert embedder.token_count(long) > embedder.max_length == 256
    assert embedder.embed([long]).shape == (1, 384)


def test_query_instruction_applies_to_prompts_only(model_path):
    from writing.adapters.embedding.encoder import Embedder

    e = Embedder(model_path, query_instruction="为这个句子生成表示以用于检索相关文章：")
    q = e.embed_queries(["春天"])
    p = e.embed(["春天"])  # passages are embedded as they are
    assert not np.allclose(q, p)
    assert np.allclose(q, e.embed(["为这个句子生成表示以用于检索相关文章：春天"]))
    assert e.token_count("春天") > e.token_count("春天", query=False)


def test_cuda_requested_without_a_gpu_is_a_clear_error(model_path):
    import torch

    from writing.adapters.embedding.encoder import Embedder

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        Embedder(model_path, device="cuda")


def test_int8_and_bf16_keep_the_decisions_of_fp32(embedder, model_path):
    """Quantisation must not change decisions: vectors close to fp32, same hit/miss at 0.75."""
    from tests.support.corpus import ROOT, load_corpus
    from writing.adapters.embedding.encoder import Embedder
    from writing.adapters.embedding.precision import cpu_has_vnni

    passages = [p["content"] for p in load_corpus()]
    lines = (ROOT / "data" / "eval_pairs.jsonl").read_text(encoding="utf-8").splitlines()
    prompts = [json.loads(line)["prompt"] for line in lines if line.strip()][:80]
    ref_p, ref_q = embedder.embed_sorted(passages, 16), embedder.embed_sorted(prompts, 16)
    # int8's bounds depend on the CPU: with VNNI activations keep all 8 bits; without it (AVX2 only)
    # torch cuts them to 7 to avoid an int16 overflow, and the vectors move further (measured on an
    # AVX2-only EPYC: mean cosine 0.985, similarities within 0.055, 1 of 80 decisions flipped 0.011
    # from the threshold). (mean cosine, threshold margin, largest similarity change) per precision
    vnni = cpu_has_vnni()
    bounds = {"int8": (0.99, 0.03, 0.04) if vnni else (0.98, 0.06, 0.07), "bf16": (0.999, 0.0, 0.005)}
    for mode in ("int8", "bf16"):
        least_cos, margin, most_moved = bounds[mode]
        e = Embedder(model_path, quantize=mode)
        p, q = e.embed_sorted(passages, 16), e.embed_sorted(prompts, 16)
        assert e.info.quantize == mode
        cos = np.concatenate([(p * ref_p).sum(1), (q * ref_q).sum(1)])
        assert cos.mean() >= least_cos, (mode, vnni, cos.mean())
        top, ref_top = (q @ p.T).max(1), (ref_q @ ref_p.T).max(1)
        # int8 quantises activations with one scale per batch (padding included), so a similarity moves
        # with the batch's company: only prompts that close to the threshold may flip
        clear = np.abs(ref_top - 0.75) > margin
        assert ((top >= 0.75) == (ref_top >= 0.75))[clear].all(), mode
        assert np.abs(top - ref_top).max() < most_moved, (mode, vnni)


def test_the_traced_model_gives_the_eager_models_vectors(embedder, model_path):
    """EMBEDDING_TRACE=auto: TorchScript where it agrees with eager, on any batch size and padding."""
    from tests.support.corpus import load_corpus
    from writing.adapters.embedding.encoder import Embedder

    traced = Embedder(model_path, trace="auto")
    assert traced.info.graph == "torchscript" and embedder.info.graph == "eager"
    passages = [p["content"] for p in load_corpus()]
    prompts = ["写一段描写秋天的文字", "a", "Spring rain", "长" * 400]
    for batch in ([prompts[0]], prompts, passages[:16], passages[16:19] + prompts[1:3]):
        np.testing.assert_allclose(traced.embed(batch), embedder.embed(batch), atol=1e-5)
    assert traced.embed_checked(["长" * 400]).truncated == [True]


def test_a_trace_that_fails_or_disagrees_keeps_the_eager_model(model_path, monkeypatch, caplog):
    import torch

    from writing.adapters.embedding import encoder

    def broken(*args, **kwargs):
        raise RuntimeError("cannot trace this model")

    with monkeypatch.context() as m:
        m.setattr(torch.jit, "trace", broken)
        e = encoder.Embedder(model_path, trace="auto")
    assert e.info.graph == "eager" and "tracing failed" in caplog.text
    assert np.allclose(np.linalg.norm(e.embed(["春天"]), axis=1), 1.0, atol=1e-5)

    caplog.clear()
    with monkeypatch.context() as m:
        m.setattr(encoder, "_TRACE_TOLERANCE", -1.0)  # any difference, even none, disagrees
        e = encoder.Embedder(model_path, trace="auto")
    assert e.info.graph == "eager" and "differ from the eager model" in caplog.text


def test_passes_side_by_side_share_the_cpu_threads_and_agree(model_path):
    """Two threads embedding at once: each pass takes half the threads, and the vectors are unchanged."""
    import threading

    import torch

    from writing.adapters.embedding.encoder import Embedder

    e = Embedder(model_path, trace="auto")
    if e.cpu_threads < 2:
        pytest.skip("one CPU thread: nothing to share")
    texts = ["写一段描写秋天的文字", "介绍一下西湖的美景", "写一首关于大海的诗"] * 4
    expected = e.embed(texts)
    seen: dict[str, set[int]] = {}
    results: dict[str, np.ndarray] = {}
    start = threading.Barrier(2)

    def work(name: str) -> None:
        start.wait()
        for _ in range(5):
            results[name] = e.embed(texts)
            seen.setdefault(name, set()).add(torch.get_num_threads())

    threads = [threading.Thread(target=work, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for name in ("a", "b"):
        np.testing.assert_allclose(results[name], expected, atol=1e-5)
    # each thread's team size was set for its share: half while both ran, all of them when alone
    assert all(s <= {e.cpu_threads // 2, e.cpu_threads} for s in seen.values()), seen
    assert any(e.cpu_threads // 2 in s for s in seen.values()), seen


def test_a_batch_over_the_pass_budget_runs_in_passes_with_the_same_vectors(embedder, model_path):
    """EMBEDDING_PASS_TOKENS: rows of similar length per pass, cut to that pass's width; same vectors,
    in input order, with the truncation flags of the one tokenizer pass."""
    from tests.support.corpus import load_corpus
    from writing.adapters.embedding.encoder import Embedder

    passages = [p["content"] for p in load_corpus()]
    prompts = ["写一段描写秋天的文字", "a", "Spring rain", "长" * 400]
    batch = passages[:6] + prompts + passages[6:12]
    for trace in ("off", "auto"):
        split = Embedder(model_path, trace=trace, pass_tokens=300)
        assert split.info.pass_tokens == 300
        got = split.embed_checked(batch)
        np.testing.assert_allclose(got.vectors, embedder.embed(batch), atol=1e-5)
        assert got.truncated == [False] * 9 + [True] + [False] * 6
        np.testing.assert_allclose(split.embed(prompts[:2]), embedder.embed(prompts[:2]), atol=1e-5)
