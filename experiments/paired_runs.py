"""Paired differences between evaluation runs of other workdirs or settings, on the same episodes.

  python experiments/paired_runs.py --out=results/pushobj_fidelity/buffer_seen \
      --runs="uniform:workdirs/pushobj_base/fid_cpu/results/seen_shapes__predlast+enclast.json,\
merged:workdirs/pushobj_base/fid_merged/results/seen_shapes__predlast+enclast.json"

Each run is `label:path` to a `results/<condition>__<mode>.json` that `evaluate.py` wrote. Items sharing a
label are pooled into one run: other conditions per seed (e.g. the seen shapes, one file per shape;
`eval.metrics.pool_runs`), or one condition's runs on other evaluation seeds as further seeds (e.g. clean on
evaluation seeds 0-2: 9 seeds x 50); give every label its items in the same order. Every run is
compared with the first (paired difference of success_any on the same episodes: the mean over seeds with its
Student-t 95% CI, and the paired bootstrap 95%); runs of other episodes (condition, evaluation seed, seeds,
episodes per seed, replans) are refused before anything is written. `--across_conditions` admits other
conditions of the same evaluation seed: every condition plays the same episode keys, so e.g. frozen under snp1 vs
frozen on clean is the shift's effect on the same scenes. Each row also gives the run's held-out
one-step error (`heldout_error`: the model's loss on each newly observed transition before it adapts on it,
averaged over the episodes and over replans 2 to R, where an adapted model differs from the frozen one) and its
ratio to the first run's: below 1, adaptation generalised to the transitions that came next. Writes
<out>.{csv,md}.
"""
import os

from absl import flags

from adajepa_jax import utils

FLAGS = flags.FLAGS
flags.DEFINE_list("runs", None, "`label:path.json` items (items sharing a label are pooled: other conditions "
                  "per seed, or other evaluation seeds as further seeds); the "
                  "first label is the baseline.")
flags.DEFINE_string("out", None, "Output path stem: <out>.csv and <out>.md.")
flags.DEFINE_integer("budget", None, "Score success within the first this many replans (<= the runs' budget; "
                     "from the per-episode first success), e.g. 20 of a 30-replan run. Default: the runs' budget.")
flags.DEFINE_enum("metric", "success_any", ["success_any", "success_sym_any"],
                  "The per-episode outcome compared: the paper's success test, or the symmetry-aware one (angle "
                  "modulo the shape's symmetry; at a smaller --budget only for runs recording first_success_sym).")
flags.DEFINE_bool("across_conditions", False, "Also pair runs of other shift conditions (same evaluation seed, "
                  "seeds, episodes and budget): every condition plays the same episode keys, so the difference "
                  "is the shift's effect on the same scenes (e.g. frozen snp1 vs frozen clean).")
flags.mark_flags_as_required(["runs", "out"])


def pool(summaries):
  """One RunSummary of several runs of one mode, pooled in one of two ways; UsageError unless they share mode,
  planner and replans, and the way's own fields.
  - Other conditions, one evaluation seed (e.g. one run per shape): episodes pooled per seed (condition
    'a+b+...'); they must share the evaluation seed and the number of seeds.
  - One condition, other evaluation seeds (e.g. the clean row on evaluation seeds 0-2): each run's seeds are
    appended as further seeds (eval_seed '0+1+2', seeds summed); they must share the episodes per seed.
  """
  import dataclasses

  import numpy as np

  from adajepa_jax.errors import UsageError
  from adajepa_jax.eval import metrics
  if len(summaries) == 1:
    return summaries[0]
  first = summaries[0]
  over_eval_seeds = len({s.eval_seed for s in summaries}) > 1
  shared = ("mode", "planner", "replans") + (("condition", "episodes_per_seed") if over_eval_seeds
                                              else ("eval_seed", "seeds"))
  for s in summaries[1:]:
    for field in shared:
      if getattr(s, field) != getattr(first, field):
        raise UsageError(f"Cannot pool {first.condition}__{first.mode} (evaluation seed {first.eval_seed}) with "
                         f"{s.condition}__{s.mode} (evaluation seed {s.eval_seed}): {field} "
                         f"{getattr(first, field)!r} vs {getattr(s, field)!r}")
  keys = set.intersection(*(set(s.episodes) for s in summaries))
  if over_eval_seeds:
    if len({s.eval_seed for s in summaries}) < len(summaries):
      raise UsageError(f"Cannot pool {first.condition}__{first.mode}: evaluation seeds "
                       f"{[s.eval_seed for s in summaries]} repeat")
    episodes = {k: [x for s in summaries for x in s.episodes[k]] for k in keys}
    sizes = np.array([s.seeds * s.episodes_per_seed for s in summaries], np.float64)
    return dataclasses.replace(first, eval_seed="+".join(str(s.eval_seed) for s in summaries), episodes=episodes,
                               seeds=sum(s.seeds for s in summaries),
                               proprio_cost_share=float(np.mean([s.proprio_cost_share for s in summaries])),
                               pred_error_before=_weighted_curve(summaries, sizes))
  episodes = {k: metrics.pool_runs([s.episodes[k] for s in summaries], first.seeds).tolist() for k in keys}
  sizes = np.array([s.episodes_per_seed for s in summaries], np.float64)
  share = float(np.sum(sizes * [s.proprio_cost_share for s in summaries]) / sizes.sum())
  return dataclasses.replace(first, condition="+".join(s.condition for s in summaries), episodes=episodes,
                             episodes_per_seed=int(sizes.sum()), proprio_cost_share=share,
                             pred_error_before=_weighted_curve(summaries, sizes))


def _weighted_curve(summaries, sizes):
  """The pooled per-replan mean of pred_error_before (each run's curve weighted by its episodes); [] when a
  run lacks it."""
  import numpy as np
  curves = [s.pred_error_before for s in summaries]
  if any(len(c) != len(curves[0]) or not c for c in curves):
    return []
  return (np.asarray(sizes) @ np.asarray(curves, np.float64) / np.sum(sizes)).tolist()


def heldout_error(summary):
  """Mean of the per-replan held-out one-step error over replans 2..R (nan when the run lacks it)."""
  import numpy as np
  curve = summary.pred_error_before
  return float(np.mean(curve[1:])) if len(curve) > 1 else float("nan")


def parse_runs(items):
  """['a:x.json', 'b:y.json', 'b:z.json'] -> [('a', summary), ('b', y and z pooled)]; UsageError for a
  malformed or missing item."""
  from adajepa_jax.errors import UsageError
  from adajepa_jax.eval import pipeline
  paths = {}
  for item in items:
    label, sep, path = item.partition(":")
    if not sep or not label or not path:
      raise UsageError(f"Malformed run {item!r}; expected label:path/to/results/<condition>__<mode>.json")
    if not os.path.isfile(path):
      raise UsageError(f"Run {label!r}: no file {path!r}")
    paths.setdefault(label, []).append(path)
  runs = [(label, pool([pipeline.read_summary(p) for p in ps])) for label, ps in paths.items()]
  if len(runs) < 2:
    raise UsageError(f"--runs needs a baseline and at least one more run; got {len(runs)}")
  return runs


def outcomes(summary, budget=None, metric="success_any"):
  """Per-episode outcomes (0/1) of a run: `metric` within `budget` replans (None: the run's own budget)."""
  from adajepa_jax.errors import UsageError
  from adajepa_jax.eval import metrics
  if metric not in summary.episodes:
    raise UsageError(f"--metric={metric}: the run of {summary.condition} / {summary.mode} has no per-episode "
                     f"{metric} (it has {', '.join(sorted(summary.episodes))})")
  if budget is None or budget == summary.replans:
    return summary.episodes[metric]
  first = {"success_any": "first_success", "success_sym_any": "first_success_sym"}[metric]
  if not 1 <= budget <= summary.replans:
    raise UsageError(f"--budget={budget}: must be in 1..{summary.replans} (the runs' replans)")
  if first not in summary.episodes:
    raise UsageError(f"--budget needs per-episode first successes ({first}), which this run summary (older "
                     "code) lacks")
  return metrics.success_within(summary.episodes[first], budget).tolist()


def table(runs, budget=None, metric="success_any", across_conditions=False):
  """Rows: each run's success and its paired difference against the first run (same episodes, checked; other
  conditions on the same episode keys with `across_conditions`)."""
  from adajepa_jax.errors import UsageError
  from adajepa_jax.eval import metrics, summary
  base = runs[0][1]
  for _, s in runs[1:]:
    summary.check_same_episodes(s, base, across_conditions=True)   # other episodes are refused first
    if not across_conditions and s.condition != base.condition:
      raise UsageError(f"Runs {s.condition}__{s.mode} and {base.condition}__{base.mode} are of other conditions; "
                       "--across_conditions pairs them on the same scenes (the shift's own effect)")
  rows = []
  base_error = heldout_error(base)
  for label, s in runs:
    mine = outcomes(s, budget, metric)
    d = None if s is base else metrics.paired_difference(mine, outcomes(base, budget, metric), s.seeds)
    succ = metrics.seed_summary(mine, s.seeds)
    error = heldout_error(s)
    rows.append({"run": label, "condition": s.condition, "eval_seed": s.eval_seed, "mode": s.mode,
                 "planner": s.planner,
                 "budget": f"{budget or s.replans}x1", "episodes": succ["episodes"], "metric": metric,
                 "success_mean": succ["mean"], "success_ci95": succ["ci95"],
                 "diff_vs_first_mean": d["mean"] if d else float("nan"),
                 "diff_vs_first_ci95": d["ci95"] if d else float("nan"),
                 "diff_boot95": f"[{d['boot_lo']:.1f}, {d['boot_hi']:.1f}]" if d else "",
                 "proprio_cost_pct": 100.0 * s.proprio_cost_share,
                 "heldout_error": error,
                 "heldout_error_vs_first": error / base_error if base_error > 0 else float("nan")})
  return rows


def main(argv):
  del argv
  from adajepa_jax.eval import report
  rows = table(parse_runs(FLAGS.runs), FLAGS.budget, FLAGS.metric, FLAGS.across_conditions)
  columns = ["run", "condition", "eval_seed", "mode", "planner", "budget", "episodes", "metric", "success_mean",
             "diff_vs_first_mean", "diff_boot95", "proprio_cost_pct", "heldout_error", "heldout_error_vs_first"]
  print(report.write_table(rows, FLAGS.out, columns))


if __name__ == "__main__":
  utils.run(main)
