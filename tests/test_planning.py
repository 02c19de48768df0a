"""Planners solve a toy quadratic, respect bounds, warm-start correctly; objectives weight frames."""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from adajepa_jax import planning
from adajepa_jax.configs import base

H, A = 5, 2


def _quadratic(target):
  """cost(a) = sum (a - target)^2 over (H, A): the unique minimiser in the box is clip(target)."""
  return lambda actions: jnp.sum(jnp.square(actions - target), axis=(1, 2))


@pytest.fixture(scope="module")
def plan_cfg():
  return base.plan_config()


@pytest.fixture(scope="module")
def target():
  return jax.random.uniform(jax.random.key(1), (H, A), minval=-0.8, maxval=0.8)


def _toy_cfg(plan_cfg, name):
  cfg = plan_cfg[name].copy_and_resolve_references()
  if name == "mppi":
    # The temperature is in cost units. A unit-noise sample of the toy costs ~H*A = 10, so put the
    # temperature a decade below that spread (the default 0.1 is meant for O(1) latent costs).
    cfg.temperature = 1.0
  return cfg


# Tolerances on the max abs action error (default iteration counts): GD converges, CEM's elites shrink to
# ~min_sigma, MPPI's weighted mean stays coarser after 10 iterations.
@pytest.mark.parametrize("name,tol", [("cem", 0.05), ("mppi", 0.25), ("gd", 0.02)])
def test_planner_solves_quadratic(plan_cfg, target, name, tol):
  cfg = _toy_cfg(plan_cfg, name)
  fn = jax.jit(lambda init, key: planning.plan(name, _quadratic(target), init, key, cfg))
  init = jnp.zeros((H, A))
  actions, info = fn(init, jax.random.key(0))
  chex.assert_shape(actions, (H, A))
  iters = plan_cfg[name].get("iterations", plan_cfg[name].get("steps"))
  chex.assert_shape(info["best_costs"], (iters,))
  np.testing.assert_allclose(actions, target, atol=tol)
  initial_cost = float(_quadratic(target)(init[None])[0])
  assert float(info["cost"]) < 0.05 * initial_cost
  np.testing.assert_allclose(info["cost"], _quadratic(target)(actions[None])[0], rtol=1e-5)


@pytest.mark.parametrize("name", ["cem", "mppi", "gd"])
def test_planner_respects_bounds(plan_cfg, name):
  far = jnp.full((H, A), 3.0).at[:, 1].set(-3.0)   # outside the box: the optimum is the corner (1, -1)
  cfg = _toy_cfg(plan_cfg, name)
  actions, _ = jax.jit(lambda key: planning.plan(name, _quadratic(far), jnp.zeros((H, A)), key, cfg))(
      jax.random.key(2))
  assert float(jnp.max(jnp.abs(actions))) <= 1.0
  if name != "mppi":   # an MPPI mean averages clipped samples, so it approaches a corner only slowly
    np.testing.assert_allclose(actions, jnp.clip(far, -1, 1), atol=0.1)


@pytest.mark.parametrize("name", ["cem", "mppi"])
def test_sample_zero_is_the_mean(plan_cfg, target, name):
  cfg = _toy_cfg(plan_cfg, name)
  cfg.iterations = 1
  _, info = planning.plan(name, _quadratic(target), target, jax.random.key(3), cfg)
  assert float(info["best_costs"][0]) == 0.0   # starting at the optimum, sample 0 hits it exactly


def test_cem_std_floor(target):
  cfg = base.plan_config().cem
  cfg.update(min_sigma=0.3, iterations=4)
  _, info = planning.cem_plan(_quadratic(target), jnp.zeros((H, A)), jax.random.key(4), cfg)
  assert float(jnp.min(info["std"])) >= 0.3


def test_warm_start_shifts_one_step():
  prev = jnp.arange(H * A, dtype=jnp.float32).reshape(H, A)
  shifted = planning.warm_start(prev)
  chex.assert_shape(shifted, (H, A))
  np.testing.assert_array_equal(shifted[:-1], prev[1:])
  np.testing.assert_array_equal(shifted[-1], jnp.zeros(A))


def test_vmap_over_episodes_and_single_trace(plan_cfg):
  targets = jax.random.uniform(jax.random.key(5), (3, H, A), minval=-0.5, maxval=0.5)

  @jax.jit
  @chex.assert_max_traces(n=1)
  def run(targets, keys):
    def one(target, key):
      return planning.cem_plan(_quadratic(target), jnp.zeros((H, A)), key, plan_cfg.cem)
    return jax.vmap(one)(targets, keys)

  actions, info = run(targets, jax.random.split(jax.random.key(6), 3))
  chex.assert_shape(actions, (3, H, A))
  np.testing.assert_allclose(actions, targets, atol=0.05)
  run(targets + 0.1, jax.random.split(jax.random.key(7), 3))   # new values, no retrace


def test_plan_from_config_uses_named_planner(plan_cfg, target):
  cfg = plan_cfg.copy_and_resolve_references()
  cfg.planner = "gd"
  a1, _ = planning.plan_from_config(_quadratic(target), jnp.zeros((H, A)), jax.random.key(0), cfg)
  a2, _ = planning.gd_plan(_quadratic(target), jnp.zeros((H, A)), jax.random.key(0), cfg.gd)
  np.testing.assert_array_equal(a1, a2)


def test_bad_inputs_raise(plan_cfg, target):
  with pytest.raises(ValueError, match="cem, gd, mppi"):
    planning.get_planner("random_shooting")
  cfg = plan_cfg.cem.copy_and_resolve_references()
  cfg.elites = cfg.samples + 1
  with pytest.raises(ValueError, match="elites"):
    planning.cem_plan(_quadratic(target), jnp.zeros((H, A)), jax.random.key(0), cfg)
  with pytest.raises(ValueError, match=r"f32\[S\]"):
    planning.mppi_plan(lambda a: a.sum(-1), jnp.zeros((H, A)), jax.random.key(0), plan_cfg.mppi)
  with pytest.raises(ValueError, match="terminal, all, staged"):
    planning.horizon_weights("first", H)


def test_horizon_weights_modes():
  term = planning.horizon_weights("terminal", 4)
  np.testing.assert_array_equal(term, [0, 0, 0, 1])
  allw = planning.horizon_weights("all", 4)
  np.testing.assert_allclose(allw, np.array([1, 2, 4, 8]) / 15, rtol=1e-6)

  @jax.jit
  @chex.assert_max_traces(n=1)
  def staged(idx):
    return planning.horizon_weights("staged", 4, idx, staged_switch=2)

  np.testing.assert_array_equal(staged(jnp.int32(0)), term)
  np.testing.assert_array_equal(staged(jnp.int32(1)), term)
  np.testing.assert_allclose(staged(jnp.int32(2)), allw)


def test_latent_cost_weights_frames_and_proprio():
  s, n, d, visual_dim = 3, 2, 6, 4
  goal = jax.random.normal(jax.random.key(8), (n, d))
  z = jnp.broadcast_to(goal, (s, H, n, d))
  weights = planning.horizon_weights("all", H)
  np.testing.assert_array_equal(planning.latent_cost(z, goal, weights, visual_dim, 1.0), jnp.zeros(s))
  # Sample 1 is off by 1 in every visual channel of the last frame, sample 2 in every proprio channel.
  z = z.at[1, -1, :, :visual_dim].add(1.0).at[2, -1, :, visual_dim:].add(1.0)
  for pw in (0.0, 0.5):
    cost = planning.latent_cost(z, goal, weights, visual_dim, pw)
    np.testing.assert_allclose(cost, [0.0, weights[-1], pw * weights[-1]], rtol=1e-6)
  term = planning.horizon_weights("terminal", H)
  z_early = jnp.broadcast_to(goal, (1, H, n, d)).at[0, 0].add(1.0)
  assert float(planning.latent_cost(z_early, goal, term, visual_dim)[0]) == 0.0
