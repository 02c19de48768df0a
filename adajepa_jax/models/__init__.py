"""World models: the only place flax modules live. Outside, a model is `make_world_model(cfg.model, obs_spec)`
(pure functions) and a plain param pytree."""
from adajepa_jax.models import lora
from adajepa_jax.models.world_model import (WorldModel, layer_groups, make_world_model, masked_latent_mse,
                                            obs_spec, pair_mask, param_count)

__all__ = ["WorldModel", "layer_groups", "lora", "make_world_model", "masked_latent_mse", "obs_spec",
           "pair_mask", "param_count"]
