"""PushT: T block, visual shifts. `--config=adajepa_jax/configs/pusht.py:cpu` (or :tiny, :paper)."""
import ml_collections

from adajepa_jax.configs import base


def get_config(scale: str = "cpu") -> ml_collections.ConfigDict:
  c = base.base_config()
  c.data.expert_fraction = 0.5   # half expert-like pushes towards a target pose, half exploration
  c.task.name = "pusht"
  base.apply_scale(c, scale)
  return base.push_cpu_settings(c) if scale == "cpu" else c
