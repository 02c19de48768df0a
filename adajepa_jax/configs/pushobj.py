"""PushObj: blocks of several shapes, shape shift. `--config=adajepa_jax/configs/pushobj.py:cpu` (or :tiny,
:paper). Trains on the shape set `task.kwargs.shapes` (the env's default, T, L, Z, +); change it with
`--config.task.kwargs.shapes="('T', 'L')"`."""
import ml_collections

from adajepa_jax.configs import base


def get_config(scale: str = "cpu") -> ml_collections.ConfigDict:
  c = base.base_config()
  c.data.expert_fraction = 0.5   # half expert-like pushes towards a target pose, half exploration
  c.task.name = "pushobj"
  c.task.kwargs.shapes = ("T", "L", "Z", "+")
  base.apply_scale(c, scale)
  return base.push_cpu_settings(c) if scale == "cpu" else c
