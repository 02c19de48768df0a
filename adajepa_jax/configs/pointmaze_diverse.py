"""Diverse PointMaze: 30 seeded 8x8 layouts, the layout shift (train on 25, hold out 5).
`--config=adajepa_jax/configs/pointmaze_diverse.py:cpu` (or :tiny, :paper)."""
import ml_collections

from adajepa_jax.configs import pointmaze


def get_config(scale: str = "cpu") -> ml_collections.ConfigDict:
  c = pointmaze.get_config(scale)
  c.task.name = "pointmaze_diverse"
  c.plan.proprio_weight = 1.0   # the authors' diverse-maze cost: visual latent + proprio embedding
  return c
