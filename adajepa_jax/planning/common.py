"""Helpers shared by the planners: config access, bounds, warm start, cost checking."""
from typing import Any, Callable

import chex
import jax
import jax.numpy as jnp

ACTION_LOW = -1.0
ACTION_HIGH = 1.0

CostFn = Callable[[jax.Array], jax.Array]   # f32[S, H, A] -> f32[S]
# (cost_fn, init_actions f32[H, A], key, cfg section) -> (actions f32[H, A], info)
Planner = Callable[[CostFn, jax.Array, chex.PRNGKey, Any], tuple[jax.Array, dict[str, jax.Array]]]


def cfg_value(cfg, name, planner):
  """Reads `cfg[name]` (ConfigDict or Mapping) at trace time as a static Python value.

  Raises:
    ValueError: if the key is missing, naming the planner and the keys that are present.
  """
  try:
    return cfg[name]
  except (KeyError, AttributeError) as e:
    keys = sorted(cfg.keys()) if hasattr(cfg, "keys") else []
    raise ValueError(f"{planner} config lacks {name!r}; it has {keys}") from e


def check_positive(value, name, planner, allow_zero=False):
  """Raises ValueError unless `value` is > 0 (or >= 0 when `allow_zero`)."""
  if value < 0 or (value == 0 and not allow_zero):
    bound = ">= 0" if allow_zero else "> 0"
    raise ValueError(f"{planner}: {name}={value!r} must be {bound}")


def settings(cfg, planner, allow_zero=(), at_most=(), **types):
  """Reads a planner's config values `name=type` as static Python numbers, in the order given, each checked
  to be > 0 (>= 0 if named in `allow_zero`) and `a <= b` for each pair of names (a, b) in `at_most`.

  Example:
    >>> samples, elites = settings(cfg, "cem", samples=int, elites=int, at_most=(("elites", "samples"),))
  """
  values = {name: cast(cfg_value(cfg, name, planner)) for name, cast in types.items()}
  for name, value in values.items():
    check_positive(value, name, planner, allow_zero=name in allow_zero)
  for a, b in at_most:
    if values[a] > values[b]:
      raise ValueError(f"{planner}: {a}={values[a]} must be <= {b}={values[b]}")
  return tuple(values.values())


def clip_actions(actions):
  """Clips actions to the valid box [-1, 1]."""
  return jnp.clip(actions, ACTION_LOW, ACTION_HIGH)


def check_init(init_actions, planner):
  """Validates `init_actions` as f32[H, A] and returns it clipped to [-1, 1]."""
  init_actions = jnp.asarray(init_actions, jnp.float32)
  if init_actions.ndim != 2:
    raise ValueError(f"{planner}: init_actions must have shape (H, A); got {init_actions.shape}")
  return clip_actions(init_actions)


def sample_around(key, mean, std, samples):
  """Candidates f32[S, H, A]: mean + std * N(0, 1) clipped to [-1, 1]; sample 0 is the mean itself."""
  noise = jax.random.normal(key, (samples,) + mean.shape, mean.dtype)
  return clip_actions(mean + std * noise).at[0].set(mean)


def batched_cost(cost_fn, samples, planner):
  """Evaluates `cost_fn` on f32[S, H, A]; checks it returns f32[S]; non-finite costs become +inf."""
  costs = cost_fn(samples)
  if costs.shape != samples.shape[:1]:
    raise ValueError(
        f"{planner}: cost_fn must map f32[S, H, A] -> f32[S]; for S={samples.shape[0]} it returned shape "
        f"{costs.shape}")
  costs = costs.astype(jnp.float32)
  return jnp.where(jnp.isfinite(costs), costs, jnp.inf)


def sampling_loop(cost_fn, init_actions, key, *, samples, iterations, init_std, refit, planner):
  """The sampling planners' loop (CEM, MPPI): from the mean `init_actions` f32[H, A] (`check_init`) and std
  `init_std`, `iterations` rounds, in one `lax.scan`, of drawing `samples` candidates around (mean, std)
  (`sample_around`), costing them in one `cost_fn` call and refitting
  `(mean, std, best_cost) = refit(candidates f32[S, H, A], costs f32[S], mean, std)`.

  Returns:
    actions: f32[H, A] the final mean.
    info: {'cost' f32[] (cost of `actions`), 'best_costs' f32[iterations] (each round's `best_cost`),
      'std' f32[H, A] (the final std)}.
  """
  def iteration(carry, step_key):
    mean, std = carry
    candidates = sample_around(step_key, mean, std, samples)
    mean, std, best = refit(candidates, batched_cost(cost_fn, candidates, planner), mean, std)
    return (mean, std), best

  mean0 = check_init(init_actions, planner)
  std0 = jnp.full_like(mean0, init_std)
  (mean, std), best_costs = jax.lax.scan(iteration, (mean0, std0), jax.random.split(key, iterations))
  final_cost = batched_cost(cost_fn, mean[None], planner)[0]
  return mean, {"cost": final_cost, "best_costs": best_costs, "std": std}


def warm_start(prev_plan: jax.Array) -> jax.Array:
  """Shifts a plan by one step for the next replan: drops the executed first step, pads with zeros.

  Args:
    prev_plan: f32[H, A] (or f32[..., H, A]) the previous replan's action sequence.

  Returns:
    f32[H, A]: `prev_plan[1:]` followed by one all-zero step.

  Example:
    >>> warm_start(jnp.array([[1.], [2.], [3.]]))[:, 0]
    Array([2., 3., 0.], dtype=float32)
  """
  prev_plan = jnp.asarray(prev_plan)
  pad = jnp.zeros_like(prev_plan[..., :1, :])
  return jnp.concatenate([prev_plan[..., 1:, :], pad], axis=-2)
