"""ml_collections configs, one file per task; each `get_config(scale)` with scale in tiny|cpu|paper."""
from adajepa_jax.configs.base import SCALES, apply_scale, base_config
