"""sora_lite: a Sora-style text-to-video diffusion transformer in JAX/Flax NNX.

Data flow (the file names spell it):
  training:  data -> autoencoder.encode -> diffusion (noise, target) -> dit -> loss   (train.py)
  sampling:  noise -> sampler (dit, guidance) -> autoencoder.decode -> video        (pipeline.py)

Shape letters used in comments throughout:
  video   B batch, T frames, H height, W width, C=3 colour channels
  latent  t, h, w, C latent channels (t = 1 + (T-1)/4, h = H/f, w = W/f)
  tokens  N = (t/pt)(h/ph)(w/pw) spacetime patches; L text tokens
  model   D width, K heads, Dh = D/K head dim
"""

import os

import jax


def __getattr__(name):
    # Pipeline (flax, orbax) on first use: `import sora_lite` stays light, and a fresh `sora-lite
    # generate` whose program is saved (programs.py) never imports them.
    if name == "Pipeline":
        from sora_lite.pipeline import Pipeline

        return Pipeline
    raise AttributeError(f"module 'sora_lite' has no attribute {name!r}")


# The shipped models by name: Moving Shapes with frames as prompts, the same distilled to a few
# steps without guidance (text-to-video), and Camera Moves.
MODELS = {name: os.path.join(os.path.dirname(__file__), "assets", name) for name in ("default", "distilled", "camera")}


def model_path(model: str | None) -> str:
    """A shipped model's folder by name (None: the default), or `model` itself: a path."""
    return MODELS.get(model or "default", model)


def cache_dir() -> str:
    """$JAX_COMPILATION_CACHE_DIR, else ~/.cache/sora_lite/jax: where compiled programs persist."""
    return os.environ.get("JAX_COMPILATION_CACHE_DIR") or os.path.expanduser("~/.cache/sora_lite/jax")


def enable_compilation_cache():
    """Persist compiled programs in `cache_dir()`: a second process skips XLA compilation. (Here,
    not in training.py, so that `sora-lite generate` does not import the input pipeline.) Every
    program, however quick to compile, unless $JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS says
    otherwise: a cold start pays for each one it compiles."""
    jax.config.update("jax_compilation_cache_dir", cache_dir())
    jax.config.update("jax_persistent_cache_min_compile_time_secs",
                      float(os.environ.get("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", 0.0)))


__all__ = ["Pipeline", "enable_compilation_cache"]
