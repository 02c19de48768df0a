"""adajepa_jax: AdaJEPA in JAX. A flat public API over the subpackages.

  import adajepa_jax as aj
  env = aj.make_env("pusht")                                # brax Env stepping MJX
  wm = aj.make_world_model(cfg.model, obs_spec)             # pure init/encode/predict/rollout/loss
  actions, info = aj.cem_plan(cost_fn, init_actions, key, cfg.plan.cem)
  params, opt_state, m = aj.adapt_step(params, opt_state, buffer, loss_fn=wm.loss, optimizer=opt, labels=labels)
  program = aj.make_episode(env, wm, cfg); result = aj.evaluate(program, params, aj.episode_keys(0, 3, 50))
"""
from adajepa_jax.adaptation import adapt_step, buffer_add, buffer_init, make_adapt_optimizer
from adajepa_jax.adaptation import resolve as resolve_spec
from adajepa_jax.envs import make as make_env
from adajepa_jax.envs import names as task_names
from adajepa_jax.models import make_world_model
from adajepa_jax.mpc import episode_keys, evaluate, make_episode, with_conditions
from adajepa_jax.planning import cem_plan, gd_plan, get_planner, mppi_plan, warm_start

__version__ = "0.1.0"
