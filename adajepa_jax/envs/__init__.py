"""Tasks behind brax's Env protocol, stepping MJX directly, rendered by a pure-JAX rasteriser."""
import contextlib
import io

with contextlib.redirect_stdout(io.StringIO()):
  # mujoco.mjx probes its optional Warp backend at import and prints "Failed to import warp" (harmless).
  from mujoco import mjx  # noqa: F401

from adajepa_jax.envs.registry import make, names, register  # noqa: E402  (registers every task)
from adajepa_jax.envs import maze, push, shapes  # noqa: E402,F401
from adajepa_jax.envs import shifts  # noqa: E402,F401  (distribution-shift registry)
