"""The PyTorch peer of scripts/bench_peer.py: diffusers' WanTransformer3DModel (3D RoPE,
cross-attention to text, flow matching) at a given size, its forward pass and training step
timed on the CPU. Run by bench_peer.py with the peer environment's Python; it imports nothing
of sora_lite (which never imports torch), and prints one JSON line.

    peer/bin/python scripts/peer_wan.py '{"depth": 6, "width": 128, "heads": 4, "mlp_ratio": 4, "channels": 16,
        "latent": [5, 8, 8], "batch": 32, "text_len": 16, "text_dim": 384, "steps": 10, "threads": 2}'
"""

import json
import statistics
import sys
import time

import torch
from diffusers import WanTransformer3DModel


def median_seconds(fn, steps: int, warmup: int = 2) -> float:
    times = []
    for _ in range(warmup + steps):
        tic = time.perf_counter()
        fn()
        times.append(time.perf_counter() - tic)
    return statistics.median(times[warmup:])


def main(spec: dict) -> dict:
    torch.manual_seed(0)
    torch.set_num_threads(spec["threads"])
    width, heads = spec["width"], spec["heads"]
    model = WanTransformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=heads, attention_head_dim=width // heads,
        in_channels=spec["channels"], out_channels=spec["channels"], text_dim=spec["text_dim"], freq_dim=256,
        ffn_dim=int(width * spec["mlp_ratio"]), num_layers=spec["depth"], cross_attn_norm=True,
        qk_norm="rms_norm_across_heads", eps=1e-6)
    b, (t, h, w), c = spec["batch"], spec["latent"], spec["channels"]
    x = torch.randn(b, c, t, h, w)  # [B, C, t, h, w]: Wan's latent layout
    text = torch.randn(b, spec["text_len"], spec["text_dim"])
    timestep = torch.rand(b) * 1000
    target = torch.randn_like(x)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def forward():
        with torch.no_grad():
            model(x, timestep, text, return_dict=False)

    def train_step():
        opt.zero_grad(set_to_none=True)
        out = model(x, timestep, text, return_dict=False)[0]
        loss = torch.nn.functional.mse_loss(out, target)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    model.eval()
    forward_s = median_seconds(forward, spec["steps"])
    model.train()
    step_s = median_seconds(train_step, spec["steps"])
    return {"forward_s": forward_s, "train_step_s": step_s, "params": sum(p.numel() for p in model.parameters()),
            "torch": torch.__version__, "threads": torch.get_num_threads()}


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))))
