"""Model-predictive path integral planning: exponentially weighted averages of Gaussian perturbations."""
from typing import Any

import chex
import jax
import jax.numpy as jnp

from adajepa_jax.planning import common


def mppi_plan(cost_fn: common.CostFn, init_actions: jax.Array, key: chex.PRNGKey, cfg: Any
              ) -> tuple[jax.Array, dict[str, jax.Array]]:
  """Plans with MPPI: the mean moves to the softmax(-cost / temperature)-weighted average of samples.

  Each iteration draws `samples` sequences `clip(mean + std * eps)` (sample 0 is the mean itself) and
  evaluates them in one `cost_fn` call. Costs are shifted by their minimum before weighting, so the
  temperature is in cost units. The std starts at `noise` and is refitted each iteration as the weighted
  std of the samples, clipped to [min_sigma, noise] (covariance-adapting MPPI, as in TD-MPC); set
  `min_sigma = noise` for classic fixed-noise MPPI.

  Args:
    cost_fn: f32[S, H, A] -> f32[S], pure and jittable.
    init_actions: f32[H, A] the initial mean.
    key: PRNG key.
    cfg: the `plan.mppi` section: samples, iterations, temperature, noise, min_sigma (static numbers).

  Returns:
    actions: f32[H, A] the final mean, in [-1, 1].
    info: dict with `cost` f32[] (cost of `actions`), `best_costs` f32[iterations] and `std` f32[H, A].

  Example:
    >>> actions, info = mppi_plan(cost_fn, jnp.zeros((5, 2)), key, cfg.plan.mppi)
  """
  samples, iterations, temperature, noise_scale, min_sigma = common.settings(
      cfg, "mppi", samples=int, iterations=int, temperature=float, noise=float, min_sigma=float,
      allow_zero=("min_sigma",), at_most=(("min_sigma", "noise"),))

  def refit(candidates, costs, mean, std):
    """The softmax(-cost / temperature)-weighted mean and std (clipped to [min_sigma, noise])."""
    best = jnp.min(costs)
    # Where every cost is +inf, keep the mean (weights would be NaN).
    logits = jnp.where(jnp.isfinite(costs), -(costs - best) / temperature, -jnp.inf)
    weights = jax.nn.softmax(jnp.where(jnp.isfinite(best), logits, 0.0))
    new_mean = jnp.einsum("s,sha->ha", weights, candidates)
    new_std = jnp.sqrt(jnp.einsum("s,sha->ha", weights, jnp.square(candidates - new_mean)))
    new_std = jnp.clip(new_std, min_sigma, noise_scale)
    ok = jnp.isfinite(best)
    return jnp.where(ok, new_mean, mean), jnp.where(ok, new_std, std), best

  return common.sampling_loop(cost_fn, init_actions, key, samples=samples, iterations=iterations,
                              init_std=noise_scale, refit=refit, planner="mppi")
