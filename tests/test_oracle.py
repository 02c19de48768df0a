"""The planning ceiling: true-simulator MPC on the model runs' episodes."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from adajepa_jax import envs
from adajepa_jax.configs import pusht
from adajepa_jax.mpc import episode_keys, evaluate, make_oracle_episode


@pytest.fixture(scope="module")
def setup():
  cfg = pusht.get_config("tiny")
  cfg.plan.cem.update(samples=48, elites=8, iterations=3)
  env = envs.make(cfg.task.name, **cfg.task.kwargs)
  return cfg, env


def test_simulate_matches_stepping_the_env(setup):
  _, env = setup
  state = jax.jit(env.reset)(jax.random.key(0))
  actions = jax.random.uniform(jax.random.key(1), (7, 2), minval=-1, maxval=1)
  sim = jax.jit(env.simulate)(state, actions)
  stepped = jax.jit(lambda s, a: jax.lax.scan(lambda s, a: (env.step(s, a), env.step(s, a).info["state"]),
                                              s, a)[1])(state, actions)
  np.testing.assert_allclose(sim, stepped, atol=1e-6)
  goal = state.info["goal_state"]
  assert float(env.goal_cost(goal, goal)) == 0.0
  assert float(env.goal_cost(goal.at[2].add(0.9 * 0.2), goal)) < 1.0 < float(env.goal_cost(goal.at[2].add(0.25), goal))


@pytest.mark.slow
def test_oracle_episode_beats_doing_nothing(setup):
  """Slow (~3 min): true-simulator CEM ends closer to the goal than standing still (all-frames cost)."""
  cfg, env = setup
  cfg = cfg.copy_and_resolve_references()
  cfg.plan.objective = "all"
  cfg.eval.replans = 6
  program = make_oracle_episode(env, cfg)
  keys = episode_keys(0, 1, 2)
  result = evaluate(program, None, keys, mesh=None)
  r = cfg.eval.replans
  assert result.states.shape == (2, r + 1, env.state_size) and result.per_replan["success"].shape == (2, r)
  assert result.frames is None and np.all(result.per_replan["pred_error_before"] == 0)
  # The same episodes as the model runs: make_episode's init splits the key the same way.
  k_task, k_reset = jax.random.split(keys[0], 6)[:2]
  state = env.reset_to(k_reset, env.sample_task(k_task))
  np.testing.assert_allclose(result.goal_state[0], state.info["goal_state"], atol=1e-6)
  idle = jax.vmap(lambda k: env.simulate(
      env.reset_to(jax.random.split(k, 6)[1], env.sample_task(jax.random.split(k, 6)[0])),
      jnp.zeros((r * cfg.data.frameskip, 2)))[-1])(keys)
  idle_cost = env.goal_cost(idle, result.goal_state)
  final_cost = env.goal_cost(result.states[:, -1], result.goal_state)
  assert float(np.mean(final_cost)) < float(np.mean(idle_cost))


def test_oracle_rejects_gd(setup):
  cfg, env = setup
  cfg = cfg.copy_and_resolve_references()
  cfg.plan.planner = "gd"
  with pytest.raises(ValueError, match="cem"):
    make_oracle_episode(env, cfg)
