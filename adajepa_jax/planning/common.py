"""Helpers shared by the planners: config access, bounds, warm start, cost checking."""
import jax
import jax.numpy as jnp

ACTION_LOW = -1.0
ACTION_HIGH = 1.0


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


def warm_start(prev_plan):
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
