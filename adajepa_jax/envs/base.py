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
  """Base class of project tasks: every member that MPC, the oracle, data collection and the shifts call.

  Subclasses implement the abstract methods (a missing one fails at construction, `TypeError: Can't
  instantiate abstract class`). Optional parts are the capability classes below (`ExpertPolicy`,
  `HostPhysics`): callers test `isinstance(env, ...)` up front and name the missing capability.
  """

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

  @abc.abstractmethod
  def step(self, state: State, action: jax.Array) -> State:
    """One control step: action f32[action_size] in [-1, 1] -> the next State (obs, metrics, info)."""

  @abc.abstractmethod
  def render(self, state_vec: jax.Array, task) -> jax.Array:
    """The observation image of a full state f32[S] of `task`: uint8[H, W, 3]."""

  @abc.abstractmethod
  def simulate(self, state: State, actions: jax.Array) -> jax.Array:
    """Physics only (no rendering): the full states f32[T, S] after each of `actions` f32[T, action_size]
    from `state` (the true-simulator model of the planning ceiling, `mpc.oracle`)."""

  @abc.abstractmethod
  def goal_cost(self, state_vec: jax.Array, goal_state: jax.Array) -> jax.Array:
    """The oracle's state cost: f32[...] for states f32[..., S] against a goal state f32[S] (0 at the goal,
    about 1 at the success tolerance)."""

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


class ExpertPolicy(abc.ABC):
  """Capability: a scripted expert-like policy for offline data (`data.collect`'s `expert_fraction`)."""

  @abc.abstractmethod
  def expert_action(self, key, state: State, prev_action: jax.Array) -> jax.Array:
    """f32[action_size] in [-1, 1]."""


class HostPhysics(abc.ABC):
  """Capability: the same task in plain MuJoCo C on the host (cross-checks, and the oracle's
  `physics='mujoco'`, the faster planning rollouts on CPU).

  Subclasses give the model and the control step, and how a full state f32[S] maps to and from `MjData`;
  `simulate_mujoco` is then `simulate` in MuJoCo C, through `jax.pure_callback`. Models are cached by the
  task fields that `mj_model_for` reads (`mj_task_fields`)."""
  mj_task_fields: tuple = ()
  mj_cache_size: int = 256

  @abc.abstractmethod
  def mj_model_for(self, task):
    """A `mujoco.MjModel` of an (unbatched) task."""

  @abc.abstractmethod
  def mj_control_step(self, mj, md, action):
    """One control step of `md` (`mujoco.MjData`) in place, as `step` does in MJX."""

  @abc.abstractmethod
  def mj_set_state(self, md, state_vec):
    """Writes a full state f32[S] into a freshly reset `md`."""

  @abc.abstractmethod
  def mj_get_state(self, md):
    """The full state f32[S] of `md`."""

  def simulate_mujoco(self, state: State, actions: jax.Array) -> jax.Array:
    """`simulate` in plain MuJoCo C on the host: f32[T, S] after each of `actions` f32[T, action_size].

    A `jax.pure_callback` (works under jit and vmap; a vmapped batch is one call that loops over it in
    numpy) stepping `mj_model_for(task)` with `mj_control_step` from `state.info['state']`, with no solver
    warm start."""
    out = jax.ShapeDtypeStruct(jnp.shape(actions)[:-1] + (self.state_size,), jnp.float32)
    return jax.pure_callback(self._simulate_host, out, state.info["state"], actions, state.info["task"],
                             vmap_method="broadcast_all")

  def _simulate_host(self, state_vec, actions, task):
    """numpy side of `simulate_mujoco`: state_vec [..., S], actions [..., T, A], a task batched [...] ->
    f32[..., T, S]."""
    import mujoco
    import numpy as np
    if not hasattr(self, "_mj_models"):
      self._mj_models = {}
    batch = state_vec.shape[:-1]
    n = int(np.prod(batch))
    flat = lambda x: np.reshape(x, (n,) + np.shape(x)[len(batch):])
    state_vec, actions, task = flat(state_vec), flat(actions), jax.tree.map(flat, task)
    out = np.empty(actions.shape[:-1] + (self.state_size,), np.float32)
    mj = md = None
    for i in range(n):
      task_i = jax.tree.map(lambda x: x[i], task)
      key = b"".join(np.asarray(getattr(task_i, k)).tobytes() for k in self.mj_task_fields)
      model = self._mj_models.get(key)
      if model is None:
        if len(self._mj_models) >= self.mj_cache_size:
          self._mj_models.clear()
        model = self._mj_models[key] = self.mj_model_for(task_i)
      if model is not mj:
        mj, md = model, mujoco.MjData(model)
      mujoco.mj_resetData(mj, md)
      self.mj_set_state(md, state_vec[i])
      for t, a in enumerate(actions[i]):
        self.mj_control_step(mj, md, a)
        out[i, t] = self.mj_get_state(md)
    return out.reshape(batch + out.shape[1:])
