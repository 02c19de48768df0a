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



# `make test` runs pytest-xdist with `--dist loadfile`: each test file goes to one worker, so its module-scoped
# fixtures are built once. The files named here go to the worker of another file, after it: they compile the
# same programs, so the second file hits the persistent compilation cache (the pipeline file: about 30 s
# after the MPC file, against about 2 min alone). (`--dist loadgroup` cannot do this under pytest 9: xdist
# 3.8 renames node ids through an attribute pytest 9 no longer reads.)
SAME_WORKER_AS = {"tests/test_pipeline.py": "tests/test_mpc.py"}


def pytest_xdist_make_scheduler(config, log):
  from xdist.scheduler import LoadFileScheduling

  class Scheduler(LoadFileScheduling):
    def _split_scope(self, nodeid):
      path = super()._split_scope(nodeid)
      return SAME_WORKER_AS.get(path, path)

  return Scheduler(config, log)
