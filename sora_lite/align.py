"""Moving a trained DiT onto a new autoencoder: align the new latent with the old one.

A DiT learns its autoencoder's latent; started on another autoencoder's it relearns
everything. But a latent is only defined up to an invertible linear map: the encoder's
normalised output mapped by A, and the decoder's input mapped back, reconstruct every video
as before, and the diffusion works in whatever coordinates it is given. `align` picks the
coordinates in which the new latent's first channels are the least-squares fit of the
trained model's latent on the same clips, and folds them into the new autoencoder's weights;
the other channels are the rest of the new latent, normalised. `dit.widen` then
gives the DiT those channels, zero-initialised, so fine-tuning on the new autoencoder starts
from what the DiT knows.
"""

import jax
import jax.numpy as jnp
import numpy as np

from sora_lite import autoencoder, checkpoint, data, model_path
from sora_lite.autoencoder import Autoencoder
from sora_lite.flax_setup import nnx


def fit_coordinates(new: np.ndarray, old: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Latents of the same pixels, new [M, Cn] and old [M, Co] (Co <= Cn) -> (T [Cn, Cn]
    invertible, c [Cn]): `(new @ T + c)[:, :Co]` is the least-squares fit of `old`; the other
    columns are the rest of `new` (the directions orthogonal to the fit's, by decreasing
    variance), centred and scaled to unit variance like every channel of a normalised latent."""
    co = old.shape[1]
    fit, *_ = np.linalg.lstsq(np.c_[new, np.ones(len(new))], old, rcond=None)  # [Cn + 1, Co]
    w, c = fit[:-1], fit[-1]
    rest = np.linalg.svd(w, full_matrices=True)[0][:, co:]  # [Cn, Cn - Co], orthogonal to w's columns
    variance, turn = np.linalg.eigh(np.cov(new @ rest, rowvar=False))
    rest = rest @ turn[:, ::-1] / np.sqrt(variance[::-1])  # by decreasing variance, each scaled to 1
    return np.concatenate([w, rest], axis=1), np.concatenate([c, -new.mean(0) @ rest])


def _latents(ae: Autoencoder, videos: list) -> np.ndarray:
    """Normalised latents of `videos` (batches [B, T, H, W, 3] in [-1, 1]) as rows [M, C]."""
    z = [np.asarray(autoencoder.encode_latent(ae, jnp.asarray(v)), np.float64) for v in videos]
    return np.concatenate([x.reshape(-1, x.shape[-1]) for x in z])


def align(new: Autoencoder, old: Autoencoder, videos: list) -> float:
    """Change `new`'s latent coordinates in place so that its first channels fit `old`'s
    (fitted on `videos`, batches [B, T, H, W, 3] in [-1, 1]); returns the share of the old
    latent's variance they explain (1: exactly). Reconstructions are unchanged. The latent
    statistics become the identity (the new coordinates are what the DiT works on); the
    encoder's log-variance head is left as it was: only its mean is used once trained."""
    a, b = _latents(new, videos), _latents(old, videos)  # [M, Cn], [M, Co]
    if b.shape[1] > a.shape[1]:
        raise ValueError(f"the new autoencoder has {a.shape[1]} latent channels, fewer than the "
                         f"model's {b.shape[1]}: it cannot hold the model's latent")
    t, c = fit_coordinates(a, b)
    fitted = (a @ t + c)[:, : b.shape[1]]
    explained = 1.0 - np.square(fitted - b).sum() / np.square(b - b.mean(0)).sum()
    _change_coordinates(new, t, c)
    return float(explained)


def _change_coordinates(ae: Autoencoder, t: np.ndarray, c: np.ndarray):
    """Fold u' = u @ T + c into the weights, u = (mean - shift) / scale the normalised latent."""
    n = t.shape[0]
    shift, scale = np.asarray(ae.latent_shift[...], np.float64), np.asarray(ae.latent_scale[...], np.float64)
    into = t / scale[:, None]  # [C, C]: raw mean -> new coordinates (before the offset)
    back = np.linalg.inv(t) * scale[None, :]  # [C, C]: new coordinates (less the offset) -> raw mean - shift
    offset = shift - c @ back  # [C]: what the raw mean adds to u' @ back

    def update(var, value):
        var[...] = jax.device_put(np.asarray(value, np.float32), var[...].sharding)

    heads = [ae.encoder.out] + ([ae.encoder.skip] if ae.encoder.skip is not None else [])
    for i, head in enumerate(heads):  # the mean is the first C of each head's 2C outputs, summed
        kernel, bias = np.asarray(head.kernel[...], np.float64), np.asarray(head.bias[...], np.float64)
        kernel[:, :n] = kernel[:, :n] @ into
        bias[:n] = bias[:n] @ into + (c - shift @ into if i == 0 else 0.0)  # the offset, once
        update(head.kernel, kernel)
        update(head.bias, bias)
    inputs = [ae.decoder.stem] + ([ae.decoder.skip] if ae.decoder.skip is not None else [])
    for layer in inputs:  # they read the raw mean: u' @ back + offset
        kernel, bias = np.asarray(layer.kernel[...], np.float64), np.asarray(layer.bias[...], np.float64)
        update(layer.bias, bias + offset @ kernel)
        update(layer.kernel, back @ kernel)
    update(ae.latent_shift, np.zeros(n))
    update(ae.latent_scale, np.ones(n))


def align_checkpoint(path: str, model: str, out: str, num_clips: int = 256) -> tuple[float, int, int]:
    """Align the autoencoder trained in `path` with the DiT model `model` (a shipped name or a
    path) on `num_clips` training clips of the autoencoder's first data entry, and write it to
    `out` as an autoencoder checkpoint (made beside it and swapped in whole). Returns the
    matched share, and the model's and the autoencoder's latent channels."""
    cfg, step = checkpoint.read_config(checkpoint.directory(path), "autoencoder")
    new, old = autoencoder.load_autoencoder(path), autoencoder.load_autoencoder(model_path(model))
    clips = []
    for batch in data.batches(data.clips(cfg.data, "train"), 32, seed=0, repeat=False):
        clips.append(batch["video"])
        if 32 * len(clips) >= num_clips:
            break
    matched = align(new, old, clips)
    with checkpoint.replacing(out) as tmp:
        mngr = checkpoint.manager(tmp)
        checkpoint.save(mngr, step, "autoencoder", cfg, nnx.state(new))
        checkpoint.wait(mngr)
    return matched, old.cfg.latent_channels, new.cfg.latent_channels
