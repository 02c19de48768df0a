"""Tasks behind brax's Env protocol, stepping MJX directly, rendered by a pure-JAX rasteriser."""
import contextlib
import io

with contextlib.redirect_stdout(io.StringIO()):
  # mujoco.mjx probes its optional Warp backend at import and prints "Failed to import warp" (harmless).
  from mujoco import mjx  # noqa: F401

from adajepa_jax.envs.registry import make, names, register
from adajepa_jax.envs import maze  # noqa: E402,F401  (registers pointmaze_*)
from adajepa_jax.envs import push  # noqa: E402,F401
from adajepa_jax.envs import shapes  # noqa: E402,F401
register("pusht", push.make_pusht)
register("pushobj", push.make_pushobj)
from adajepa_jax.envs import shifts  # noqa: E402,F401  (distribution-shift registry)
