"""Frozen vs adaptive evaluation over shift conditions, written as tables, curves and GIFs under a workdir.

`evaluate_and_report(config, params, workdir, conditions, modes)` runs, for every condition and mode,
`config.eval.seeds x config.eval.episodes` episodes (the same ones for every pair); per mode, the conditions
that build the same env run as one sharded `jit(vmap(episode))`. It writes:
  <workdir>/results/<condition>__<mode>.json   per-run `summary.RunSummary` (finished runs are skipped on resume)
  <workdir>/success.{csv,md}                   success table: mean ± 95% CI over seeds, paired diff vs frozen
  <workdir>/paired_modes.{csv,md}              paired differences between the non-frozen modes (two or more)
  <workdir>/success_curve_<condition>.png      success reached vs replan, one line per mode
  <workdir>/gifs/<condition>__<mode>_<i>.gif   a few episodes, observed frames beside the goal
  <workdir>/maze_<condition>__<mode>.png       trajectories (maze tasks)
A mode (`summary.Mode`) is "frozen", an adaptation spec ("predlast+enclast", "lora", ...) or "oracle" /
"oracle_mujoco" (the planning ceiling: the same MPC episode with the true simulator as the model,
`mpc.oracle`, planning with MJX or with plain MuJoCo C rollouts, the faster on CPU; the same episodes).
Every mode other than frozen is compared with frozen on the same episodes (paired difference with its 95% CIs).
"""
import json
import os
import time
from typing import Any, Callable, Optional, Sequence, Union

import jax
import ml_collections
import numpy as np
from tqdm import tqdm

from adajepa_jax import adaptation, utils
from adajepa_jax.envs import shifts
from adajepa_jax.eval import build, metrics, plots, report
from adajepa_jax.eval import summary as summary_lib
from adajepa_jax.mpc import episode_keys, evaluate, make_episode, make_oracle_episode, with_conditions


def run_conditions(config: ml_collections.ConfigDict, params: Any, condition_names: Sequence[str],
                   mode: Union[str, summary_lib.Mode], gifs: int = 0,
                   progress: Optional[Callable[[int], Any]] = None) -> tuple[list, Any]:
  """Runs conditions that build the same env (`shifts.same_env`) under one mode (a `summary.Mode` or its name)
  as one program, each on the same `config.eval.seeds x config.eval.episodes` episodes (paired across
  conditions and modes). `progress(episodes)` is called as chunks of episodes finish.

  Returns ([(RunSummary, EpisodeResult as numpy)] in the order of `condition_names`, env).
  """
  mode = summary_lib.Mode.parse(mode) if isinstance(mode, str) else mode
  conditions = shifts.same_env(condition_names)
  env = conditions[0].task_env(config.task.name, **config.task.kwargs)
  wm = build.world_model_for(config, env)
  cfg = build.mode_config(config, mode)
  if mode.kind == "oracle":
    program, gifs = make_oracle_episode(env, cfg, conditions, physics=mode.physics), 0
  else:
    program = make_episode(env, wm, cfg, conditions, record_frames=gifs > 0)
  keys = episode_keys(config.eval.seed, config.eval.seeds, config.eval.episodes)
  keys, condition_ids = with_conditions(keys, len(conditions))
  start = time.perf_counter()
  # Host-callback physics runs on one device: sharded, the other devices wait for it at a collective, and
  # XLA:CPU aborts a collective that waits over 40 s.
  mesh = None if mode.physics == "mujoco" else "auto"
  result = jax.tree.map(np.asarray, evaluate(program, params, keys, condition_ids, mesh=mesh,
                                             batch_size=config.eval.batch_size, progress=progress))
  seconds = time.perf_counter() - start
  out = []
  for i, name in enumerate(condition_names):
    r = jax.tree.map(lambda x: x[condition_ids == i], result)
    out.append((_summarise(cfg, name, mode, r, seconds, condition_names), r))
  return out, env


def _stat(success, seeds):
  return summary_lib.Stat(**metrics.seed_summary(success, seeds))


def _summarise(cfg, condition, mode, r, seconds, evaluated_with):
  """The RunSummary of one condition's EpisodeResult (numpy, leading axis = episodes, seed-major)."""
  per = r.per_replan
  errors = {k[4:]: v for k, v in per.items() if k.startswith("env_") and k.endswith("_error")}
  seeds = cfg.eval.seeds
  episodes = {"success_any": r.success_any.astype(int).tolist(),
              "success_final": r.success_final.astype(int).tolist(),
              "first_success": metrics.first_success(per["success"]).tolist()}
  sym = None
  if "env_success_sym" in per:   # symmetry-aware success test (symmetric PushObj shapes)
    sym_any = np.any(per["env_success_sym"] > 0.5, axis=1)
    sym = _stat(sym_any, seeds)
    episodes["success_sym_any"] = sym_any.astype(int).tolist()
    episodes["first_success_sym"] = metrics.first_success(per["env_success_sym"]).tolist()
  proprio, visual = np.sum(per["plan_proprio_cost"]), np.sum(per["plan_visual_cost"])
  return summary_lib.RunSummary(
      condition=condition, mode=str(mode), planner=cfg.plan.planner, replans=cfg.eval.replans, seeds=seeds,
      episodes_per_seed=cfg.eval.episodes, eval_seed=cfg.eval.seed, settings=summary_lib.run_settings(cfg),
      success_any=_stat(r.success_any, seeds), success_final=_stat(r.success_final, seeds),
      curve=metrics.success_curve(per["success"]).tolist(),
      pred_error_before=np.mean(per["pred_error_before"], axis=0).tolist(),
      pred_error_after=np.mean(per["pred_error_after"], axis=0).tolist(),
      skipped_steps=int(np.sum(per["skipped"])), seconds=seconds, evaluated_with=list(evaluated_with),
      episodes=episodes,
      final_error_p50={k: float(np.median(v[:, -1])) for k, v in errors.items()},
      error_curve={k: np.mean(v, axis=0).tolist() for k, v in errors.items()},
      plan_cost=np.mean(per["plan_cost"], axis=0).tolist(),
      plan_visual_cost=np.mean(per["plan_visual_cost"], axis=0).tolist(),
      plan_proprio_cost=np.mean(per["plan_proprio_cost"], axis=0).tolist(),
      proprio_cost_share=float(proprio / max(proprio + visual, 1e-12)),
      success_sym_any=sym, commit=summary_lib.code_commit(), host=utils.host_info(),
      extra={"planned_adapted_share": float(np.mean(per["planned_adapted"]))} if "planned_adapted" in per else {})


def evaluate_and_report(config: ml_collections.ConfigDict, params: Any, workdir: str, conditions: Sequence[str],
                        modes: Sequence[str], gifs: int = 2,
                        progress: bool = True) -> list[summary_lib.RunSummary]:
  """Runs every (condition, mode) pair and writes the report files listed in the module docstring.

  Conditions that build the same env run together as one program per mode. Returns the list of RunSummary
  (one per pair, conditions outer, modes inner). Pairs with a results JSON already present are loaded, not
  re-run, so an interrupted evaluation resumes where it stopped; a file of a run with other episodes or
  settings raises UsageError (`summary.check_resumable`) before anything runs.
  """
  build.check_conditions(config.task.name, conditions)
  modes = build.parse_modes(modes)
  adaptation.check_buffer(config.adapt.buffer, config.adapt.buffer_weighting)
  adaptation.check_optimizer(config.adapt.optimizer)
  os.makedirs(os.path.join(workdir, "results"), exist_ok=True)
  os.makedirs(os.path.join(workdir, "gifs"), exist_ok=True)
  done = {}

  def path(cond, mode):
    return os.path.join(workdir, "results", f"{cond}__{mode}.json")

  for cond in conditions:
    for mode in modes:
      if os.path.exists(path(cond, mode)):
        found = read_summary(path(cond, mode))
        expected = summary_lib.expected_provenance(build.mode_config(config, mode), cond, mode)
        summary_lib.check_resumable(found, expected, path(cond, mode))
        done[cond, str(mode)] = found
  programs = [(mode, [c for c in group if (c, str(mode)) not in done])
              for mode in modes for group in shifts.group_by_env(conditions)]
  programs = [(mode, group) for mode, group in programs if group]
  per_condition = config.eval.seeds * config.eval.episodes
  bar = tqdm(total=per_condition * sum(len(g) for _, g in programs), desc="evaluate", unit="episode",
             disable=not progress)
  for mode, group in programs:
    bar.set_description(f"evaluate {mode} on {len(group)} condition(s)")
    runs, env = run_conditions(config, params, group, mode, gifs=gifs, progress=bar.update)
    for run, result in runs:
      _write_run_figures(workdir, run.condition, run.mode, result, gifs)
      write_summary(run, path(run.condition, run.mode))
      done[run.condition, run.mode] = run
  bar.close()
  summaries = [done[c, str(m)] for c in conditions for m in modes]
  _write_outputs(workdir, summaries, conditions)
  return summaries


def read_summary(path: str) -> summary_lib.RunSummary:
  """The RunSummary stored at `path` (a results/<condition>__<mode>.json)."""
  with open(path) as f:
    return summary_lib.RunSummary.from_json(json.load(f))


def write_summary(run: summary_lib.RunSummary, path: str) -> None:
  with open(path, "w") as f:
    json.dump(run.to_json(), f, indent=1)


def _write_run_figures(workdir, cond, mode, result, gifs):
  """GIFs of the first `gifs` episodes; for maze tasks, trajectories of episodes sharing episode 0's layout."""
  for i in range(min(gifs, len(result.success_any)) if result.frames is not None else 0):
    plots.write_episode_gif(result.frames[i], result.goal_pixels[i],
                            os.path.join(workdir, "gifs", f"{cond}__{mode}_{i}.gif"))
  if hasattr(result.task, "walls"):
    same = np.flatnonzero(result.task.layout_id == result.task.layout_id[0])[:6]
    plots.plot_maze_trajectories(
        result.task.walls[0], [result.states[i, :, :2] for i in same], [result.goal_state[i, :2] for i in same],
        os.path.join(workdir, f"maze_{cond}__{mode}.png"), title=f"{cond} / {mode}")


def paired(run: summary_lib.RunSummary, baseline: Optional[summary_lib.RunSummary]) -> Optional[dict]:
  """Paired difference run - baseline of success_any (%) on the same episodes (`metrics.paired_difference`),
  or None when either lacks per-episode outcomes or they are not the same number of episodes."""
  a = run.episodes.get("success_any")
  b = baseline.episodes.get("success_any") if baseline else None
  if a is None or b is None or len(a) != len(b):
    return None
  return metrics.paired_difference(a, b, run.seeds)


def _paired_between_modes(summaries):
  """Rows 'mode_b - mode_a' (paired, same episodes) for every pair of non-frozen modes of a condition, a before
  b in the order given (e.g. predfirst+enclast - predlast+enclast); [] with fewer than two such modes."""
  rows = []
  for cond in dict.fromkeys(s.condition for s in summaries):
    runs = [s for s in summaries if s.condition == cond and s.mode != summary_lib.FROZEN]
    for i, a in enumerate(runs):
      for b in runs[i + 1:]:
        d = paired(b, a)
        if d:
          rows.append({"condition": cond, "difference": f"{b.mode} - {a.mode}", "episodes": d["episodes"],
                       "diff_mean": d["mean"], "diff_ci95": d["ci95"],
                       "diff_boot95": f"[{d['boot_lo']:.1f}, {d['boot_hi']:.1f}]"})
  return rows


def _write_outputs(workdir, summaries, conditions):
  rows = []
  frozen = {s.condition: s for s in summaries if s.mode == summary_lib.FROZEN}
  nan = float("nan")
  for s in summaries:
    diff = None if s.mode == summary_lib.FROZEN else paired(s, frozen.get(s.condition))
    sym = s.success_sym_any
    rows.append({"condition": s.condition, "mode": s.mode, "planner": s.planner,
                 "budget": f"{s.replans}x1", "episodes": s.success_any.episodes,
                 "success_any_mean": s.success_any.mean, "success_any_ci95": s.success_any.ci95,
                 "diff_vs_frozen_mean": diff["mean"] if diff else nan,
                 "diff_vs_frozen_ci95": diff["ci95"] if diff else nan,
                 "diff_boot95": f"[{diff['boot_lo']:.1f}, {diff['boot_hi']:.1f}]" if diff else "",
                 "success_final_mean": s.success_final.mean,
                 "success_final_ci95": s.success_final.ci95,
                 "success_sym_any_mean": sym.mean if sym else nan,
                 "success_sym_any_ci95": sym.ci95 if sym else nan,
                 "proprio_cost_pct": 100.0 * s.proprio_cost_share,
                 "skipped_steps": s.skipped_steps})
  columns = ["condition", "mode", "planner", "budget", "episodes", "success_any_mean", "diff_vs_frozen_mean",
             "diff_boot95", "success_final_mean"]
  if any(s.success_sym_any for s in summaries):
    columns.append("success_sym_any_mean")
  report.write_table(rows, os.path.join(workdir, "success"), columns + ["proprio_cost_pct", "skipped_steps"])
  between = _paired_between_modes(summaries)
  if between:
    report.write_table(between, os.path.join(workdir, "paired_modes"),
                       ["condition", "difference", "episodes", "diff_mean", "diff_boot95"])
  for cond in conditions:
    curves = {s.mode: s.curve for s in summaries if s.condition == cond}
    plots.plot_success_curves(curves, os.path.join(workdir, f"success_curve_{cond}.png"), title=cond)
