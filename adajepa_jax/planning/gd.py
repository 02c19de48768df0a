"""Gradient-descent planning: Adam with a cosine learning-rate schedule on the action sequence."""
from typing import Any

import chex
import jax
import jax.numpy as jnp
import optax

from adajepa_jax.planning import common


def gd_plan(cost_fn: common.CostFn, init_actions: jax.Array, key: chex.PRNGKey, cfg: Any
            ) -> tuple[jax.Array, dict[str, jax.Array]]:
  """Plans by projected gradient descent (Adam, cosine-decayed lr) on one action sequence.

  The cost of a single sequence is `cost_fn(actions[None])[0]`; after every Adam step the actions are
  clipped to [-1, 1]. A step whose cost or gradient is non-finite leaves the actions unchanged.

  Args:
    cost_fn: f32[S, H, A] -> f32[S], pure and differentiable in the actions.
    init_actions: f32[H, A] the starting sequence (the paper starts from zeros or the warm start).
    key: PRNG key (unused: GD is deterministic; kept for a common planner signature).
    cfg: the `plan.gd` section: lr, steps (static numbers).

  Returns:
    actions: f32[H, A] the final iterate, in [-1, 1].
    info: dict with `cost` f32[] (cost of `actions`) and `best_costs` f32[steps] (the cost of the iterate
      before each step).

  Example:
    >>> actions, info = gd_plan(cost_fn, jnp.zeros((5, 2)), key, cfg.plan.gd)
  """
  del key
  name = "gd"
  lr, steps = common.settings(cfg, name, lr=float, steps=int)
  actions0 = common.check_init(init_actions, name)
  optimizer = optax.adam(optax.cosine_decay_schedule(lr, steps))

  def single_cost(actions):
    return common.batched_cost(cost_fn, actions[None], name)[0]

  def step(carry, _):
    actions, opt_state = carry
    cost, grad = jax.value_and_grad(single_cost)(actions)
    updates, new_opt_state = optimizer.update(grad, opt_state, actions)
    new_actions = common.clip_actions(optax.apply_updates(actions, updates))
    ok = jnp.isfinite(cost) & jnp.all(jnp.isfinite(grad))
    actions = jnp.where(ok, new_actions, actions)
    opt_state = jax.tree_util.tree_map(lambda new, old: jnp.where(ok, new, old), new_opt_state, opt_state)
    return (actions, opt_state), cost

  (actions, _), costs = jax.lax.scan(step, (actions0, optimizer.init(actions0)), None, length=steps)
  return actions, {"cost": single_cost(actions), "best_costs": costs}
