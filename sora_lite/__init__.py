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
import sys

# flax.nnx imports IPython (half a second, a third of a fresh process's start-up after jax) only
# to ask whether it runs inside IPython. Outside IPython it does not: nnx is imported with IPython
# hidden, which it reads as "not in IPython", and IPython stays importable afterwards.
if "IPython" not in sys.modules:
    sys.modules["IPython"] = None
    try:
        from flax import nnx  # noqa: F401
    finally:
        del sys.modules["IPython"]

import flax  # noqa: E402
import jax  # noqa: E402

# Parameters carry logical axis names that sharding.py maps onto a mesh when the model
# is created (jit with out_shardings); they must not demand a mesh on their own.
flax.config.update("flax_always_shard_variable", False)

from sora_lite.pipeline import Pipeline  # noqa: E402


def enable_compilation_cache():
    """Persist compiled programs in $JAX_COMPILATION_CACHE_DIR, else ~/.cache/sora_lite/jax: a second
    process skips XLA compilation. (Here, not in training.py, so that `sora-lite generate` does
    not import the input pipeline.)"""
    path = os.environ.get("JAX_COMPILATION_CACHE_DIR") or os.path.expanduser("~/.cache/sora_lite/jax")
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)


__all__ = ["Pipeline", "enable_compilation_cache"]
