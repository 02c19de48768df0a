"""The planning ceiling: true-simulator MPC on the model runs' episodes (MJX or MuJoCo C planning rollouts)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from adajepa_jax import envs
from adajepa_jax.configs import pusht
from adajepa_jax.eval import build, summary
from adajepa_jax.mpc import episode_keys, evaluate, make_oracle_episode, oracle

# MuJoCo C (float64) vs MJX (float32) from the same state: measured max |difference| ~1e-5 over 7 control steps
# with contact (default and scaled dynamics, T / L / + blocks).
HOST_ATOL = 1e-4


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


def test_simulate_mujoco_matches_mjx(setup):
  """The host simulator follows MJX under vmap over episodes and plans, for default and non-default tasks."""
  _, env = setup
  t = env.task_for_shape(0)
  tasks = [t, t.replace(mass_scale=jnp.float32(2.0), friction_scale=jnp.float32(2.0)), env.with_shape(t, "L")]
  tasks = jax.tree.map(lambda *x: jnp.stack(x), *tasks)
  states = jax.jit(jax.vmap(env.reset_to))(jax.random.split(jax.random.key(0), 3), tasks)
  plans = jax.random.uniform(jax.random.key(1), (3, 4, 7, 2), minval=-1, maxval=1)
  rollout = lambda sim: jax.jit(jax.vmap(lambda s, p: jax.vmap(lambda a: sim(s, a))(p)))(states, plans)
  mjx_states, host_states = rollout(env.simulate), rollout(env.simulate_mujoco)
  assert host_states.shape == mjx_states.shape == (3, 4, 7, env.state_size)
  np.testing.assert_allclose(host_states, mjx_states, atol=HOST_ATOL)
  moved = np.abs(mjx_states[..., -1, 2:5] - states.info["state"][:, None, 2:5]).max(-1)
  assert np.all(moved.max(-1) > 1e-2)   # the block is pushed in every episode
  one = jax.tree.map(lambda x: x[1], states)                            # unbatched, scaled dynamics
  np.testing.assert_allclose(jax.jit(env.simulate_mujoco)(one, plans[1, 0]), mjx_states[1, 0], atol=HOST_ATOL)


def test_oracle_physics_choices(setup):
  """Both oracle modes pass the mode check; an unknown physics, or one the env lacks, raises."""
  cfg, env = setup
  modes = build.parse_modes(["frozen", *summary.ORACLE_PHYSICS])
  assert [m.kind for m in modes] == ["frozen", "oracle", "oracle"]
  assert [str(m) for m in modes] == ["frozen", *summary.ORACLE_PHYSICS]
  assert set(summary.ORACLE_PHYSICS.values()) == set(oracle.PHYSICS)
  with pytest.raises(ValueError, match="mjx, mujoco"):
    make_oracle_episode(env, cfg, physics="bogus")
  mjx_only = type("MjxOnly", (), {"simulate": env.simulate, "goal_cost": env.goal_cost, "action_size": 2})()
  make_oracle_episode(mjx_only, cfg)
  with pytest.raises(ValueError, match="HostPhysics"):
    make_oracle_episode(mjx_only, cfg, physics="mujoco")


@pytest.mark.slow
def test_oracle_mujoco_runs_the_same_episodes(setup):
  """Slow (~30-40 s: a program with a host callback is compiled afresh, the persistent cache skips it): the
  "oracle_mujoco" mode's program, planned in MuJoCo C and stepped in MJX, runs the MJX oracle's episodes."""
  cfg, env = setup
  cfg = cfg.copy_and_resolve_references()
  cfg.plan.cem.update(samples=8, elites=2, iterations=2)
  cfg.eval.replans = 2
  keys = episode_keys(0, 1, 2)
  results = {p: evaluate(make_oracle_episode(env, cfg, physics=p), None, keys, mesh=None)
             for p in ("mujoco", "mjx")}
  host, mjx = results["mujoco"], results["mjx"]
  assert host.states.shape == (2, 3, env.state_size) and host.per_replan["success"].shape == (2, 2)
  np.testing.assert_array_equal(host.goal_state, mjx.goal_state)
  np.testing.assert_array_equal(host.states[:, 0], mjx.states[:, 0])
  assert np.all(np.isfinite(host.per_replan["plan_cost"]))
