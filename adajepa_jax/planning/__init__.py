"""Planners over action sequences (CEM, GD, MPPI) and latent goal objectives.

Every planner has the signature `plan(cost_fn, init_actions f32[H, A], key, cfg) -> (actions f32[H, A],
info)` with `cost_fn: f32[S, H, A] -> f32[S]`; actions live in [-1, 1]; iterations run in a `lax.scan`,
samples are evaluated in one batched `cost_fn` call. All are pure, jittable and vmappable.
"""
from adajepa_jax.errors import UsageError
from adajepa_jax.planning.cem import cem_plan
from adajepa_jax.planning.common import CostFn, Planner, warm_start
from adajepa_jax.planning.gd import gd_plan
from adajepa_jax.planning.mppi import mppi_plan
from adajepa_jax.planning.objectives import MODES as OBJECTIVES
from adajepa_jax.planning.objectives import horizon_weights, latent_cost

_PLANNERS = {"cem": cem_plan, "gd": gd_plan, "mppi": mppi_plan}


def names() -> tuple[str, ...]:
  """Names of the registered planners."""
  return tuple(sorted(_PLANNERS))


def get_planner(name: str) -> Planner:
  """Returns the planner function registered as `name`; an unknown name raises UsageError listing them."""
  if name not in _PLANNERS:
    raise UsageError(f"Unknown planner {name!r}; valid planners: {', '.join(names())}")
  return _PLANNERS[name]


def plan(name, cost_fn, init_actions, key, cfg):
  """Runs planner `name` with its config section `cfg` (e.g. `config.plan.cem`)."""
  return get_planner(name)(cost_fn, init_actions, key, cfg)


def plan_from_config(cost_fn, init_actions, key, plan_cfg):
  """Runs the planner named by `plan_cfg.planner` with its section `plan_cfg[plan_cfg.planner]`."""
  name = plan_cfg.planner
  get_planner(name)
  return plan(name, cost_fn, init_actions, key, plan_cfg[name])
