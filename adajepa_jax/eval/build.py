"""Construction glue shared by the evaluation pipeline, the apps, the benchmark and tests: the world model for an
env, the config of a mode, and the checks that fail fast on bad mode or shift names.

Example:
  wm = build.world_model_for(config, env)
  program = make_episode(env, wm, build.mode_config(config, "predlast+enclast"))
"""
from typing import Iterable, Union

import ml_collections

from adajepa_jax import models
from adajepa_jax.errors import UsageError
from adajepa_jax.envs import base as envs_base
from adajepa_jax.envs import shifts
from adajepa_jax.eval import summary


def world_model_for(config: ml_collections.ConfigDict, env: envs_base.TaskEnv) -> models.WorldModel:
  """The world model matching `env`'s observation sizes and the config's frameskip/history.

  A stored config (`configs/stored.py`) carries its checkpoint's spec (`config.checkpoint.obs_spec`): an env
  whose observations differ from the ones the model was trained on raises UsageError naming both."""
  spec = models.obs_spec(env.image_size, env.proprio_size, env.action_size * config.data.frameskip,
                         config.data.history)
  stored = config.get("checkpoint", {}).get("obs_spec")
  if stored is not None and dict(stored) != spec:
    raise UsageError(f"The model at {config.checkpoint.workdir!r} was trained on observations {dict(stored)}, "
                     f"but {config.task.name!r} with task.kwargs {config.task.kwargs.to_dict()} gives {spec}; "
                     "evaluate it with the task settings it was trained with")
  return models.make_world_model(config.model, spec)


def mode_config(config: ml_collections.ConfigDict, mode: Union[str, summary.Mode]) -> ml_collections.ConfigDict:
  """A copy of `config` with adaptation on with the spec of an adaptive `mode` (a `Mode` or a mode name),
  off otherwise (frozen, oracle)."""
  mode = summary.Mode.parse(mode) if isinstance(mode, str) else mode
  cfg = ml_collections.ConfigDict(config.to_dict())
  cfg.adapt.enabled = mode.adapts
  if mode.adapts:
    cfg.adapt.spec = mode.spec
  return cfg


def parse_modes(modes: Iterable[str]) -> list[summary.Mode]:
  """Mode names -> [`Mode`]; UsageError naming the valid choices for a bad one (before anything runs)."""
  return [summary.Mode.parse(m) for m in modes]


def check_conditions(task_name: str, conditions: Iterable[str]) -> None:
  """Raises UsageError for an unknown shift name or one that does not apply to `task_name`."""
  for name in conditions:
    shifts.get(name).check_applies(task_name)
