"""The planning ceiling: the same MPC episode (`make_episode`) with the true simulator as the model.

Each replan plans with the configured planner (CEM / MPPI; GD needs gradients and is refused up front) over
rollouts of the env's own physics from the current true state, with the task's state cost (`env.goal_cost`,
weighted over the horizon like the latent cost), then executes the first chunk. It is `make_episode` with
another `PlanningModel`, so its episodes are the model runs' episodes for the same keys, and a model's
success is reported as a fraction of this ceiling on the same goals.

The planning rollouts run in MJX (`physics='mjx'`, `env.simulate`; the choice on accelerators) or in plain
MuJoCo C on the host (`physics='mujoco'`, `env.simulate_mujoco`, a `jax.pure_callback`): on CPU the latter is
about 5x faster, which makes the ceiling at the paper's CEM budget (200 samples x 10 iterations) affordable.
The executed steps are MJX either way, so both variants evaluate the same episodes. Evaluate the 'mujoco'
variant on one device (`evaluate(..., mesh=None)`; the pipeline does): sharded, the other devices would wait
for the host physics at a collective, which XLA:CPU aborts after 40 s.

Example:
  program = make_oracle_episode(env, cfg)
  result = evaluate(program, None, episode_keys(seed=0, seeds=1, episodes=16))   # EpisodeResult
"""
import jax
import jax.numpy as jnp

from adajepa_jax.envs import base as envs_base
from adajepa_jax.mpc.episode import EpisodeProgram, PlanningModel, make_episode
from adajepa_jax.planning import objectives


# physics name -> the env method that rolls out a plan: simulate(state, actions f32[T, a]) -> f32[T, S].
PHYSICS = {"mjx": "simulate", "mujoco": "simulate_mujoco"}


def simulator_model(env, cfg, physics="mjx") -> PlanningModel:
  """The true simulator as a `PlanningModel`: plans are rolled out from the current true state with the env's
  physics and scored with its state cost (`env.goal_cost`, weighted over the horizon like the latent cost,
  at the state after each chunk). It keeps no state of its own and ignores `params`.

  Args:
    env: a `TaskEnv` (its `simulate` and `goal_cost`; `physics='mujoco'` also needs `envs.base.HostPhysics`).
    cfg: the full config (data.frameskip, plan.* are read).
    physics: 'mjx' or 'mujoco', the engine of the planning rollouts (see the module docstring).
  """
  if physics not in PHYSICS:
    raise ValueError(f"Unknown oracle physics {physics!r}; valid: {', '.join(PHYSICS)}")
  if physics == "mujoco" and not isinstance(env, envs_base.HostPhysics):
    raise ValueError(f"{type(env).__name__} has no plain-MuJoCo physics (envs.base.HostPhysics): the oracle "
                     "with physics='mujoco' needs it; use physics='mjx'")
  simulate = getattr(env, PHYSICS[physics])
  fs, horizon, env_a = cfg.data.frameskip, cfg.plan.horizon, env.action_size
  zero = jnp.zeros(())

  def init(params, key, obs0, goal_obs, setting=None):
    del params, key, obs0, goal_obs, setting
    return ()

  def planning(state, env_state, replan_idx):
    del state
    goal = env_state.info["goal_state"]
    weights = objectives.horizon_weights(cfg.plan.objective, horizon, replan_idx, cfg.plan.staged_switch)

    def cost_fn(plans):                                                   # [S, H, fs * a] -> [S]
      states = jax.vmap(lambda p: simulate(env_state, p.reshape(horizon * fs, env_a)))(plans)
      return env.goal_cost(states[:, fs - 1::fs], goal) @ weights        # the state after each chunk

    return cost_fn, lambda plan: ({"plan_visual_cost": zero, "plan_proprio_cost": zero}, None)

  def observe(state, new_obs, chunk):
    del new_obs, chunk
    return state, {"pred_error_before": zero, "pred_error_after": zero, "adapt_loss": zero, "skipped": zero}

  return PlanningModel(init=init, planning=planning, observe=observe, gradients=False)


def make_oracle_episode(env, cfg, conditions=None, physics="mjx", record_frames=False) -> EpisodeProgram:
  """`make_episode` with the true simulator (`simulator_model`) as the model: the same episodes as the model
  runs for the same keys. `program.run(params, key, ...)` ignores `params`; its prediction errors are 0."""
  return make_episode(env, simulator_model(env, cfg, physics), cfg, conditions, record_frames=record_frames)
