"""PointMaze-Medium: dynamics shifts (mass, damping). `--config=adajepa_jax/configs/pointmaze.py:cpu` (or
:tiny, :paper). For the diverse-maze layout shift set `task.name = "pointmaze_diverse"`."""
from adajepa_jax.configs import base


def get_config(scale="cpu"):
  c = base.base_config()
  c.task.name = "pointmaze_medium"
  c.plan.objective = "all"   # mazes: all frames weighted 2^i (reference/adajepa.md section 4)
  return base.apply_scale(c, scale)
