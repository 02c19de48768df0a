"""PushObj: blocks of several shapes, shape shift. `--config=adajepa_jax/configs/pushobj.py:cpu` (or :tiny,
:paper). Trains on the env's default shape set (T, L, Z, +); set `task.kwargs.shapes` to change it."""
from adajepa_jax.configs import base


def get_config(scale="cpu"):
  c = base.base_config()
  c.data.expert_fraction = 0.5   # half expert-like pushes towards a target pose, half exploration
  c.task.name = "pushobj"
  base.apply_scale(c, scale)
  return base.push_cpu_settings(c) if scale == "cpu" else c
