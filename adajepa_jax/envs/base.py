"""Conventions shared by every task (brax `Env` protocol, stepping MJX directly).

A task keeps everything that varies between episodes (shape, layout, mass/damping/friction scales, colours)
in a per-episode `task` pytree stored in `state.info['task']`, so one compiled env runs a vmapped batch of
episodes that mix them. `reset(key)` samples a task then calls `reset_to(key, task)`.

State layout (brax `State`):
  pipeline_state: mjx.Data
  obs:     {'pixels': uint8[H, W, 3], 'proprio': f32[P]}
  reward:  f32[] (negative goal error; planning never reads it)
  done:    f32[] (always 0: episodes end by budget)
  metrics: {'success': f32[], ...task-specific errors}
  info:    {'task': task pytree, 'goal_obs': {'pixels', 'proprio'}, 'goal_state': f32[S],
            'state': f32[S] full low-dimensional state, 'steps': i32[]}
"""
import abc

import jax
import jax.numpy as jnp
from brax.envs import base as brax_base

State = brax_base.State


class TaskEnv(brax_base.Env, abc.ABC):
  """Base class of project tasks. Subclasses implement `sample_task`, `reset_to` and `step`."""

  image_size: int
  proprio_size: int
  state_size: int
  # Bumped when a task's physics change (offline data collected before then is not resumed: the collection
  # fingerprint includes it when non-zero).
  physics_version: int = 0

  @abc.abstractmethod
  def sample_task(self, key):
    """Samples the per-episode task pytree (shape, layout, dynamics scales, colours, goal seed...)."""

  @abc.abstractmethod
  def reset_to(self, key, task) -> State:
    """Resets an episode of the given task."""

  def explore_action(self, key, state, prev_action):
    """Exploration policy for offline data: f32[action_size] in [-1, 1]. Default: uniform random.

    Tasks override it (PushT/PushObj: scripted pushes biased towards the block; mazes: random with momentum).
    """
    del state, prev_action
    return jax.random.uniform(key, (self.action_size,), minval=-1.0, maxval=1.0)

  def reset(self, rng) -> State:
    k_task, k_reset = jax.random.split(rng)
    return self.reset_to(k_reset, self.sample_task(k_task))

  @property
  def observation_size(self):
    return {"pixels": (self.image_size, self.image_size, 3), "proprio": (self.proprio_size,)}

  @property
  def backend(self) -> str:
    return "mjx"

  def check_action(self, action):
    """Raises ValueError (at trace time) if `action` does not have shape (action_size,)."""
    if jnp.shape(action) != (self.action_size,):
      raise ValueError(
          f"{type(self).__name__}.step expects an action of shape ({self.action_size},), "
          f"got {jnp.shape(action)}; vmap over a batch of episodes instead of passing a batch.")
    return jnp.asarray(action, jnp.float32)
