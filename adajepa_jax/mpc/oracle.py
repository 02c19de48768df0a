"""The planning ceiling: the same MPC protocol with the true simulator as the world model.

Each replan plans with the configured planner (CEM / MPPI; GD needs gradients and is not offered) over
rollouts of the env's own physics from the current true state, with the task's state cost (`env.goal_cost`,
weighted over the horizon like the latent cost), then executes the first chunk with `env.step`. Episodes are
the model runs' episodes for the same keys (the key is split exactly as `make_episode.init` splits it), so a
model's success is reported as a fraction of this ceiling on the same goals.

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

from adajepa_jax import planning
from adajepa_jax.envs import base as envs_base
from adajepa_jax.envs import shifts as shifts_lib
from adajepa_jax.mpc.episode import EpisodeProgram, EpisodeResult
from adajepa_jax.planning import objectives


# physics name -> the env method that rolls out a plan: simulate(state, actions f32[T, a]) -> f32[T, S].
PHYSICS = {"mjx": "simulate", "mujoco": "simulate_mujoco"}


def make_oracle_episode(env, cfg, conditions=None, physics="mjx") -> EpisodeProgram:
  """The true-simulator episode as an `EpisodeProgram` (only `run` and `conditions` are set).

  `program.run(params, key, task=None, condition=0) -> EpisodeResult` ignores `params` (there is no model);
  its per_replan prediction errors are 0. `mpc.evaluate` runs it like any program.

  Args:
    env: a `TaskEnv` (its `simulate` and `goal_cost`; `physics='mujoco'` also needs `envs.base.HostPhysics`).
    cfg: the full config (data.frameskip, plan.*, eval.replans are read).
    conditions: as in `make_episode`; only their task transforms matter (the simulator sees no pixels).
    physics: 'mjx' or 'mujoco', the engine of the planning rollouts (see the module docstring).
  """
  if physics not in PHYSICS:
    raise ValueError(f"Unknown oracle physics {physics!r}; valid: {', '.join(PHYSICS)}")
  if physics == "mujoco" and not isinstance(env, envs_base.HostPhysics):
    raise ValueError(f"{type(env).__name__} has no plain-MuJoCo physics (envs.base.HostPhysics): the oracle "
                     "with physics='mujoco' needs it; use physics='mjx'")
  simulate = getattr(env, PHYSICS[physics])
  if cfg.plan.planner == "gd":
    raise ValueError("the oracle plans with 'cem' or 'mppi' (the simulator gives no gradients), got 'gd'")
  conditions = shifts_lib.same_env(conditions if conditions is not None else "clean")
  fs, horizon, replans = cfg.data.frameskip, cfg.plan.horizon, cfg.eval.replans
  env_a = env.action_size
  planner = planning.get_planner(cfg.plan.planner)
  planner_cfg = cfg.plan[cfg.plan.planner]
  zero = jnp.zeros(())

  def replan(carry, replan_idx):
    state, plan, success_any, key = carry
    key, k_plan = jax.random.split(key)
    goal = state.info["goal_state"]
    weights = objectives.horizon_weights(cfg.plan.objective, horizon, replan_idx, cfg.plan.staged_switch)

    def cost_fn(plans):                                                   # [S, H, fs * a] -> [S]
      states = jax.vmap(lambda p: simulate(state, p.reshape(horizon * fs, env_a)))(plans)
      return env.goal_cost(states[:, fs - 1::fs], goal) @ weights        # the state after each chunk

    plan, info = planner(cost_fn, planning.warm_start(plan), k_plan, planner_cfg)
    state, _ = jax.lax.scan(lambda s, a: (env.step(s, a), None), state, plan[0].reshape(fs, env_a))
    success = state.metrics["success"] > 0.5
    metrics = {f"env_{k}": v for k, v in state.metrics.items() if k != "success"}
    metrics.update(success=state.metrics["success"], plan_cost=info["cost"], plan_visual_cost=zero,
                   plan_proprio_cost=zero, pred_error_before=zero,
                   pred_error_after=zero, adapt_loss=zero, skipped=zero)
    return (state, plan, success_any | success, key), (metrics, state.info["state"])

  def run(params, key, task=None, condition=0):
    del params
    k_task, k_reset, _, _, _, k_run = jax.random.split(key, 6)   # as make_episode's init splits it
    condition = jnp.asarray(condition, jnp.int32)
    if task is None:
      task = env.sample_task(k_task)
    fns = [c.apply_task for c in conditions]
    task = fns[0](task) if len(fns) == 1 else jax.lax.switch(condition, fns, task)
    state = env.reset_to(k_reset, task)
    carry = (state, jnp.zeros((horizon, fs * env_a)), jnp.zeros((), bool), k_run)
    (final, _, success_any, _), (per_replan, states) = jax.lax.scan(replan, carry, jnp.arange(replans))
    return EpisodeResult(success_any=success_any, success_final=final.metrics["success"] > 0.5,
                         per_replan=per_replan, states=jnp.concatenate([state.info["state"][None], states], 0),
                         goal_state=state.info["goal_state"], frames=None,
                         goal_pixels=state.info["goal_obs"]["pixels"], task=state.info["task"],
                         condition=condition)

  return EpisodeProgram(init=None, replan=None, finish=None, run=run, conditions=conditions)
