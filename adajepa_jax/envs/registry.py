"""One place that lists every task: name -> constructor, registered with brax too.

The project's tasks are registered at the bottom of this module: `pusht`, `pushobj` and the PointMaze presets
(`maze.PRESETS`). Users add their own with `register`.

`make(name, **kwargs)` builds a task; `brax.envs.get_environment(name, **kwargs)` gives the same object.
"""
from typing import Callable

import brax.envs

from adajepa_jax.envs import base
from adajepa_jax.errors import UsageError

_TASKS = {}


def register(name: str, constructor: Callable[..., base.TaskEnv]) -> None:
  """Registers `constructor(**kwargs) -> Env` under `name` here and in brax's registry."""
  _TASKS[name] = constructor
  brax.envs.register_environment(name, constructor)


def names() -> list[str]:
  """Sorted names of all registered tasks."""
  return sorted(_TASKS)


def make(name: str, **kwargs) -> base.TaskEnv:
  """Builds the task `name`. Raises UsageError (a ValueError) naming the valid tasks if `name` is unknown."""
  if name not in _TASKS:
    raise UsageError(f"Unknown task {name!r}; valid tasks: {', '.join(names())}")
  return _TASKS[name](**kwargs)


def _register_project_tasks():
  from adajepa_jax.envs import maze, push
  register("pusht", push.make_pusht)
  register("pushobj", push.make_pushobj)
  for name in maze.PRESETS:
    register(name, maze.constructor(name))


_register_project_tasks()
