"""Construction glue shared by the evaluation pipeline, the apps, the benchmark and tests: the world model for an
env, the config of a mode, and the checks that fail fast on bad mode or shift names.

Example:
  wm = build.world_model_for(config, env)
  program = make_episode(env, wm, build.mode_config(config, "predlast+enclast"))
"""
import ml_collections

from adajepa_jax import models
from adajepa_jax.envs import shifts

# Oracle mode name -> the physics of its planning rollouts (`mpc.make_oracle_episode`).
ORACLE_MODES = {"oracle": "mjx", "oracle_mujoco": "mujoco"}


def world_model_for(config, env):
  """The world model matching `env`'s observation sizes and the config's frameskip/history."""
  obs_spec = dict(image_size=env.image_size, proprio_size=env.proprio_size,
                  action_size=env.action_size * config.data.frameskip, history=config.data.history)
  return models.make_world_model(config.model, obs_spec)


def mode_config(config, mode):
  """A copy of `config` with adaptation off (mode "frozen") or on with spec `mode`."""
  cfg = ml_collections.ConfigDict(config.to_dict())
  cfg.adapt.enabled = mode != "frozen"
  if mode != "frozen":
    cfg.adapt.spec = mode
  return cfg


def check_modes(modes):
  """Raises UsageError for a mode that is neither 'frozen', an oracle mode nor a valid adaptation spec."""
  from adajepa_jax import adaptation
  for mode in modes:
    if mode != "frozen" and mode not in ORACLE_MODES:
      adaptation.parse(mode)   # UsageError naming the valid atoms


def check_conditions(task_name, conditions):
  """Raises UsageError for an unknown shift name or one that does not apply to `task_name`."""
  for name in conditions:
    shifts.get(name).check_applies(task_name)
