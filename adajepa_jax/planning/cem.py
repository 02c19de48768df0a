"""Cross-entropy method over action sequences: `lax.scan` over iterations, one batched cost call each."""
import jax
import jax.numpy as jnp

from adajepa_jax.planning import common


def cem_plan(cost_fn, init_actions, key, cfg):
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
  name = "cem"
  samples = int(common.cfg_value(cfg, "samples", name))
  elites = int(common.cfg_value(cfg, "elites", name))
  iterations = int(common.cfg_value(cfg, "iterations", name))
  init_sigma = float(common.cfg_value(cfg, "init_sigma", name))
  min_sigma = float(common.cfg_value(cfg, "min_sigma", name))
  for value, label in ((samples, "samples"), (elites, "elites"), (iterations, "iterations"),
                       (init_sigma, "init_sigma")):
    common.check_positive(value, label, name)
  common.check_positive(min_sigma, "min_sigma", name, allow_zero=True)
  if elites > samples:
    raise ValueError(f"cem: elites={elites} must be <= samples={samples}")
  mean0 = common.check_init(init_actions, name)

  def iteration(carry, step_key):
    mean, std = carry
    candidates = common.sample_around(step_key, mean, std, samples)
    costs = common.batched_cost(cost_fn, candidates, name)
    neg_elite_costs, idx = jax.lax.top_k(-costs, elites)
    elite = candidates[idx]
    new_mean = elite.mean(axis=0)
    new_std = jnp.maximum(elite.std(axis=0), min_sigma)
    return (new_mean, new_std), -neg_elite_costs[0]

  std0 = jnp.full_like(mean0, init_sigma)
  (mean, std), best_costs = jax.lax.scan(iteration, (mean0, std0), jax.random.split(key, iterations))
  final_cost = common.batched_cost(cost_fn, mean[None], name)[0]
  return mean, {"cost": final_cost, "best_costs": best_costs, "std": std}
