"""Test setup: 2 host devices (for sharding tests), a persistent compilation cache, and the tiny PushT model
shared by the MPC test files.

XLA_FLAGS must be set before jax initialises its backends, so this runs at import time.
"""
import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=2")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402

from adajepa_jax import utils  # noqa: E402

utils.setup_runtime(os.environ.get(
    "ADAJEPA_JAX_CACHE", os.path.join(os.path.dirname(os.path.dirname(__file__)), ".jax_cache")))


import pytest  # noqa: E402


@pytest.fixture(scope="module")
def tiny_pusht():
  """(cfg, env, wm, params, keys) of the tiny PushT config: random params, typed keys of 2 seeds x 2 episodes
  (4 episodes: divisible by the 2 host devices)."""
  from adajepa_jax import envs
  from adajepa_jax.configs import pusht
  from adajepa_jax.eval import build
  from adajepa_jax.mpc import episode_keys
  cfg = pusht.get_config("tiny")
  env = envs.make(cfg.task.name, **cfg.task.kwargs)
  wm = build.world_model_for(cfg, env)
  return cfg, env, wm, jax.jit(wm.init)(jax.random.key(0)), episode_keys(0, 2, 2)
