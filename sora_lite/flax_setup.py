"""flax.nnx as this package uses it; its modules import `nnx` from here, so that `import sora_lite`
stays light (a fresh `sora-lite generate` with a saved program never imports flax).

- flax.nnx imports IPython (half a second, a third of a process's start-up after jax) only to
  ask whether it runs inside IPython. Outside IPython it does not: nnx is imported with IPython
  hidden, which it reads as "not in IPython", and IPython stays importable afterwards.
- Parameters carry logical axis names that sharding.py maps onto a mesh when the model is
  created (jit with out_shardings); they must not demand a mesh on their own.
"""

import sys

if "IPython" not in sys.modules:
    sys.modules["IPython"] = None
    try:
        from flax import nnx
    finally:
        del sys.modules["IPython"]

import flax  # noqa: E402
from flax import nnx  # noqa: E402

flax.config.update("flax_always_shard_variable", False)

__all__ = ["nnx"]
