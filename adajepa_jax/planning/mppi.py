"""Model-predictive path integral planning: exponentially weighted averages of Gaussian perturbations."""
import jax
import jax.numpy as jnp

from adajepa_jax.planning import common


def mppi_plan(cost_fn, init_actions, key, cfg):
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
  name = "mppi"
  samples = int(common.cfg_value(cfg, "samples", name))
  iterations = int(common.cfg_value(cfg, "iterations", name))
  temperature = float(common.cfg_value(cfg, "temperature", name))
  noise_scale = float(common.cfg_value(cfg, "noise", name))
  min_sigma = float(common.cfg_value(cfg, "min_sigma", name))
  for value, label in ((samples, "samples"), (iterations, "iterations"), (temperature, "temperature"),
                       (noise_scale, "noise")):
    common.check_positive(value, label, name)
  common.check_positive(min_sigma, "min_sigma", name, allow_zero=True)
  if min_sigma > noise_scale:
    raise ValueError(f"mppi: min_sigma={min_sigma} must be <= noise={noise_scale}")
  mean0 = common.check_init(init_actions, name)

  def iteration(carry, step_key):
    mean, std = carry
    candidates = common.sample_around(step_key, mean, std, samples)
    costs = common.batched_cost(cost_fn, candidates, name)
    best = jnp.min(costs)
    # Where every cost is +inf, keep the mean (weights would be NaN).
    logits = jnp.where(jnp.isfinite(costs), -(costs - best) / temperature, -jnp.inf)
    weights = jax.nn.softmax(jnp.where(jnp.isfinite(best), logits, 0.0))
    new_mean = jnp.einsum("s,sha->ha", weights, candidates)
    new_std = jnp.sqrt(jnp.einsum("s,sha->ha", weights, jnp.square(candidates - new_mean)))
    new_std = jnp.clip(new_std, min_sigma, noise_scale)
    ok = jnp.isfinite(best)
    return (jnp.where(ok, new_mean, mean), jnp.where(ok, new_std, std)), best

  std0 = jnp.full_like(mean0, noise_scale)
  (mean, std), best_costs = jax.lax.scan(iteration, (mean0, std0), jax.random.split(key, iterations))
  final_cost = common.batched_cost(cost_fn, mean[None], name)[0]
  return mean, {"cost": final_cost, "best_costs": best_costs, "std": std}
