"""Frozen vs adaptive evaluation over shift conditions, written as tables, curves and GIFs under a workdir.

`evaluate_and_report(config, params, workdir, conditions, modes)` runs, for every condition and mode,
`config.eval.seeds x config.eval.episodes` episodes as one sharded `jit(vmap(episode))`, and writes:
  <workdir>/results/<condition>__<mode>.json   per-run summary (finished runs are skipped on resume)
  <workdir>/success.{csv,md}                   success table: mean ± 95% CI over seeds
  <workdir>/success_curve_<condition>.png      success reached vs replan, one line per mode
  <workdir>/gifs/<condition>__<mode>_<i>.gif   a few episodes, observed frames beside the goal
  <workdir>/maze_<condition>__<mode>.png       trajectories (maze tasks)
A mode is "frozen" or an adaptation spec string ("predlast+enclast", "lora", ...).
"""
import json
import os
import time

import jax
import ml_collections
import numpy as np
from tqdm import tqdm

from adajepa_jax import envs, models
from adajepa_jax.envs import shifts
from adajepa_jax.eval import metrics, plots, report
from adajepa_jax.mpc import episode_keys, evaluate, make_episode


def world_model_for(config, env):
  """The world model matching `env`'s observation sizes and the config's frameskip/history."""
  obs_spec = dict(image_size=env.image_size, proprio_size=env.proprio_size,
                  action_size=env.action_size * config.data.frameskip, history=config.data.history)
  return models.make_world_model(config.model, obs_spec)


def mode_config(config, mode):
  """A copy of `config` with adaptation off (mode "frozen") or on with spec `mode`."""
  cfg = ml_collections.ConfigDict(config.to_dict())
  cfg.adapt.enabled = mode != "frozen"
  if mode != "frozen":
    cfg.adapt.spec = mode
  return cfg


def check_modes(modes):
  """Raises ValueError for a mode that is neither 'frozen' nor a valid adaptation spec."""
  from adajepa_jax import adaptation
  for mode in modes:
    if mode != "frozen":
      adaptation.parse(mode)


def check_conditions(task_name, conditions):
  """Raises ValueError for an unknown shift name or one that does not apply to `task_name`."""
  for name in conditions:
    if not shifts.get(name).applies_to(task_name):
      raise ValueError(f"Shift {name!r} does not apply to task {task_name!r}; shifts that do: "
                       f"{', '.join(shifts.applicable(task_name))}")


def run_condition(config, params, condition_name, mode, gifs=0):
  """Runs one (condition, mode). Returns (summary dict, EpisodeResult as numpy, env)."""
  condition = shifts.get(condition_name)
  kwargs = dict(config.task.kwargs)
  kwargs.update(condition.env_kwargs)
  env = envs.make(config.task.name, **kwargs)
  wm = world_model_for(config, env)
  cfg = mode_config(config, mode)
  program = make_episode(env, wm, cfg, condition, record_frames=gifs > 0)
  keys = episode_keys(config.eval.seed, config.eval.seeds, config.eval.episodes)
  start = time.perf_counter()
  result = jax.tree.map(np.asarray, evaluate(program, params, keys))
  seconds = time.perf_counter() - start
  per = result.per_replan
  summary = {
      "condition": condition_name, "mode": mode, "planner": cfg.plan.planner, "replans": cfg.eval.replans,
      "seeds": cfg.eval.seeds, "episodes_per_seed": cfg.eval.episodes,
      "success_any": metrics.seed_summary(result.success_any, cfg.eval.seeds),
      "success_final": metrics.seed_summary(result.success_final, cfg.eval.seeds),
      "curve": metrics.success_curve(per["success"]).tolist(),
      "pred_error_before": np.mean(per["pred_error_before"], axis=0).tolist(),
      "pred_error_after": np.mean(per["pred_error_after"], axis=0).tolist(),
      "skipped_steps": int(np.sum(per["skipped"])),
      "seconds": seconds,
  }
  return summary, result, env


def evaluate_and_report(config, params, workdir, conditions, modes, gifs=2, progress=True):
  """Runs every (condition, mode) pair and writes the report files listed in the module docstring.

  Returns the list of summary dicts (one per pair). Pairs with a results JSON already present are loaded,
  not re-run, so an interrupted evaluation resumes where it stopped.
  """
  check_conditions(config.task.name, conditions)
  check_modes(modes)
  os.makedirs(os.path.join(workdir, "results"), exist_ok=True)
  os.makedirs(os.path.join(workdir, "gifs"), exist_ok=True)
  summaries = []
  pairs = [(c, m) for c in conditions for m in modes]
  for cond, mode in tqdm(pairs, desc="evaluate", disable=not progress):
    path = os.path.join(workdir, "results", f"{cond}__{mode}.json")
    if os.path.exists(path):
      with open(path) as f:
        summaries.append(json.load(f))
      continue
    summary, result, env = run_condition(config, params, cond, mode, gifs=gifs)
    for i in range(min(gifs, len(result.success_any))):
      plots.write_episode_gif(result.frames[i], result.goal_pixels[i],
                              os.path.join(workdir, "gifs", f"{cond}__{mode}_{i}.gif"))
    if hasattr(result.task, "walls"):   # maze tasks: trajectories of episodes sharing episode 0's layout
      same = np.flatnonzero(result.task.layout_id == result.task.layout_id[0])[:6]
      plots.plot_maze_trajectories(
          result.task.walls[0], [result.states[i, :, :2] for i in same], [result.goal_state[i, :2] for i in same],
          os.path.join(workdir, f"maze_{cond}__{mode}.png"), title=f"{cond} / {mode}")
    with open(path, "w") as f:
      json.dump(summary, f, indent=1)
    summaries.append(summary)
  _write_outputs(workdir, summaries, conditions, modes)
  return summaries


def _write_outputs(workdir, summaries, conditions, modes):
  rows = []
  for s in summaries:
    rows.append({"condition": s["condition"], "mode": s["mode"], "planner": s["planner"],
                 "replans": s["replans"], "episodes": s["success_any"]["episodes"],
                 "success_any_mean": s["success_any"]["mean"], "success_any_ci95": s["success_any"]["ci95"],
                 "success_final_mean": s["success_final"]["mean"],
                 "success_final_ci95": s["success_final"]["ci95"], "skipped_steps": s["skipped_steps"]})
  report.write_table(rows, os.path.join(workdir, "success"),
                     ["condition", "mode", "planner", "replans", "episodes", "success_any_mean",
                      "success_final_mean", "skipped_steps"])
  for cond in conditions:
    curves = {s["mode"]: s["curve"] for s in summaries if s["condition"] == cond}
    plots.plot_success_curves(curves, os.path.join(workdir, f"success_curve_{cond}.png"), title=cond)
