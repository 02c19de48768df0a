"""Cross-entropy method over action sequences: `lax.scan` over iterations, one batched cost call each."""
from typing import Any

import chex
import jax
import jax.numpy as jnp

from adajepa_jax.planning import common


def cem_plan(cost_fn: common.CostFn, init_actions: jax.Array, key: chex.PRNGKey, cfg: Any
             ) -> tuple[jax.Array, dict[str, jax.Array]]:
  """Plans with the cross-entropy method (diagonal Gaussian, elites by `lax.top_k`).

  Each iteration draws `samples` sequences around the current mean (sample 0 is the mean itself), clips
  them to [-1, 1], evaluates them in one `cost_fn` call, and refits mean and std to the `elites` lowest-cost
  sequences; the std is floored at `min_sigma`.

  Args:
    cost_fn: f32[S, H, A] -> f32[S], pure and jittable (the world model enters only here).
    init_actions: f32[H, A] the initial mean (e.g. `warm_start(previous_plan)` or zeros).
    key: PRNG key.
    cfg: the `plan.cem` section: samples, elites, iterations, init_sigma, min_sigma (static numbers).

  Returns:
    actions: f32[H, A] the final mean, in [-1, 1].
    info: dict with `cost` f32[] (cost of `actions`), `best_costs` f32[iterations] (lowest sampled cost per
      iteration) and `std` f32[H, A] (the final std).

  Example:
    >>> actions, info = cem_plan(lambda a: jnp.sum(a ** 2, (1, 2)), jnp.ones((5, 2)), key, cfg.plan.cem)
  """
  samples, elites, iterations, init_sigma, min_sigma = common.settings(
      cfg, "cem", samples=int, elites=int, iterations=int, init_sigma=float, min_sigma=float,
      allow_zero=("min_sigma",), at_most=(("elites", "samples"),))

  def refit(candidates, costs, mean, std):
    """Mean and std (floored at `min_sigma`) of the `elites` lowest-cost candidates."""
    del mean, std
    neg_elite_costs, idx = jax.lax.top_k(-costs, elites)
    elite = candidates[idx]
    return elite.mean(axis=0), jnp.maximum(elite.std(axis=0), min_sigma), -neg_elite_costs[0]

  return common.sampling_loop(cost_fn, init_actions, key, samples=samples, iterations=iterations,
                              init_std=init_sigma, refit=refit, planner="cem")
