"""PointMaze-Medium: dynamics shifts (mass, damping). `--config=adajepa_jax/configs/pointmaze.py:cpu` (or
:tiny, :paper). The diverse-maze layout shift: `pointmaze_diverse.py`."""
import ml_collections

from adajepa_jax.configs import base


def get_config(scale: str = "cpu") -> ml_collections.ConfigDict:
  c = base.base_config()
  c.task.name = "pointmaze_medium"
  c.plan.objective = "all"   # mazes: all frames weighted 2^i (reference/adajepa.md section 4)
  c.plan.proprio_weight = 0.0   # the authors' PointMaze-Medium cost: the visual latent alone
  return base.apply_scale(c, scale)
