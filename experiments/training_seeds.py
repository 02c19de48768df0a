"""Variance over training runs: one config trained from several seeds (the model's init and the batch order;
the offline data is collected once and shared), each model evaluated frozen and adaptive on the same episodes.

  python experiments/training_seeds.py --config=adajepa_jax/configs/pusht.py:cpu --workdir=workdirs/seeds_pusht \
      --train_seeds=0,1,2 --groups=clean --eval_seeds=0,1,2
  python experiments/training_seeds.py --config=adajepa_jax/configs/pushobj.py:cpu --workdir=workdirs/seeds_pushobj \
      --groups="unseen:shape_I+shape_smallT+shape_square" --config.eval.seed=2

A group is `name:cond+cond` (its conditions pooled per seed, as the shape sets of RESULTS) or one condition;
`--eval_seeds` pools evaluation seeds as further seeds (default: the config's `eval.seed`). `--reuse` names
training workdirs of the same recipe (task, data, model and training sections equal but for `train.seed` and
`train.data_dir`) whose models stand for their own `train.seed`, instead of training it again.
Layout: <workdir>/data (collected once), <workdir>/seed<s> (checkpoints and evidence of a model trained here;
eval_seed<e>/ as `evaluate.py` writes it, for reused models too). Every stage resumes, so re-running the command continues an interrupted run.
Writes <workdir>/training_seeds.{csv,md}: per model, group and adaptive mode the frozen and adaptive success and
the paired difference (t 95% over seeds [paired bootstrap 95%]); then per group and mode, across models: the
mean of the per-model gains, their standard deviation, range and t 95% over models. And
<workdir>/training_seeds.png: each model's paired gain with its bootstrap interval.
"""
import os

from absl import flags
from ml_collections import config_flags

from adajepa_jax import utils

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "The training config, e.g. adajepa_jax/configs/pusht.py:cpu.")
flags.DEFINE_string("workdir", None, "The run's folder (shared data, one sub-folder per training seed).")
flags.DEFINE_list("train_seeds", ["0", "1", "2"], "Training seeds (`train.seed`): one model each.")
flags.DEFINE_list("groups", ["clean"], "`name:cond+cond` (conditions pooled per seed) or one condition.")
flags.DEFINE_list("eval_seeds", [], "Evaluation seeds pooled as further seeds (default: the config's eval.seed).")
flags.DEFINE_list("modes", [], "'frozen' and adaptation specs. Default: frozen and the config's adapt.spec.")
flags.DEFINE_list("reuse", [], "Training workdirs of the same recipe standing for their own train.seed.")
flags.mark_flags_as_required(["config", "workdir"])

RECIPE = ("task", "data", "model", "train")   # sections a reused model must share (but for IGNORED)
IGNORED = ("train.seed", "train.data_dir")


def parse_groups(items):
  """{name: [condition]} from `name:c1+c2` or `c` items; UsageError naming a bad item."""
  from adajepa_jax.errors import UsageError
  groups = {}
  for item in items:
    name, _, conds = item.partition(":") if ":" in item else (item, "", item)
    conds = [c for c in conds.split("+") if c]
    if not name or not conds:
      raise UsageError(f"--groups item {item!r}: write `name:cond+cond` or one condition")
    if name in groups:
      raise UsageError(f"--groups: the name {name!r} is used twice")
    groups[name] = conds
  return groups


def parse_seeds(values, flag):
  from adajepa_jax.errors import UsageError
  try:
    seeds = [int(v) for v in values]
  except ValueError:
    raise UsageError(f"--{flag} takes integers, got {','.join(values)}") from None
  if len(set(seeds)) != len(seeds) or any(s < 0 for s in seeds):
    raise UsageError(f"--{flag}={','.join(values)}: give distinct seeds >= 0")
  return seeds


def recipe_difference(a, b):
  """The first key of the RECIPE sections (but IGNORED) where configs a and b differ, or None."""
  import flax.traverse_util as tu
  flat = [tu.flatten_dict({s: c.to_dict()[s] for s in RECIPE}, sep=".") for c in (a, b)]
  for key in sorted(set(flat[0]) | set(flat[1])):
    if key not in IGNORED and flat[0].get(key, "<absent>") != flat[1].get(key, "<absent>"):
      return f"{key}: {flat[0].get(key, '<absent>')!r} vs {flat[1].get(key, '<absent>')!r}"
  return None


def model_dirs(config, workdir, seeds, reuse):
  """{train seed: training workdir}: <workdir>/seed<s>, or a --reuse workdir of that seed (checked)."""
  from adajepa_jax.errors import UsageError
  from adajepa_jax.training import checkpoint
  dirs = {s: os.path.join(workdir, f"seed{s}") for s in seeds}
  for path in reuse:
    stored, _ = checkpoint.load_config(path)
    s = int(stored.train.seed)
    if s not in dirs:
      raise UsageError(f"--reuse {path}: its train.seed {s} is not among --train_seeds {seeds}")
    diff = recipe_difference(config, stored)
    if diff:
      raise UsageError(f"--reuse {path}: not the same recipe as --config ({diff})")
    dirs[s] = path
  return dirs


def outcomes(summaries, conds, eval_seeds, mode, seeds):
  """success_any of a group: its conditions pooled per seed, evaluation seeds appended as further seeds."""
  import numpy as np

  from adajepa_jax.eval import metrics
  return np.concatenate([metrics.pool_runs([summaries[e][c, mode].episodes["success_any"] for c in conds], seeds)
                         for e in eval_seeds])


def table_rows(results, groups, eval_seeds, modes, seeds):
  """Rows per model x group x adaptive mode, then across models per group x mode.

  results: {train seed: {eval seed: {(condition, mode): RunSummary}}}."""
  import numpy as np

  from adajepa_jax.eval import metrics
  n = seeds * len(eval_seeds)   # seeds of the pooled runs
  rows, gains = [], {}
  for name, conds in groups.items():
    for m in modes:
      if m == "frozen":
        continue
      for s, summaries in results.items():
        f = outcomes(summaries, conds, eval_seeds, "frozen", seeds)
        a = outcomes(summaries, conds, eval_seeds, m, seeds)
        sf, sa, d = metrics.seed_summary(f, n), metrics.seed_summary(a, n), metrics.paired_difference(a, f, n)
        gains.setdefault((name, m), []).append(d)
        rows.append({"group": name, "mode": m, "model": f"seed {s}", "episodes": len(f),
                     "frozen_mean": sf["mean"], "frozen_ci95": sf["ci95"], "adaptive_mean": sa["mean"],
                     "adaptive_ci95": sa["ci95"], "diff_mean": d["mean"], "diff_ci95": d["ci95"],
                     "diff_boot95": f"[{d['boot_lo']:.1f}, {d['boot_hi']:.1f}]", "diff_boot_lo": d["boot_lo"],
                     "diff_boot_hi": d["boot_hi"], "diff_sd": float("nan"), "diff_range": ""})
      means = np.array([d["mean"] for d in gains[name, m]])
      k = len(means)
      sd = float(means.std(ddof=1)) if k > 1 else float("nan")
      rows.append({"group": name, "mode": m, "model": f"across {k} models", "episodes": "",
                   "frozen_mean": float("nan"), "frozen_ci95": float("nan"), "adaptive_mean": float("nan"),
                   "adaptive_ci95": float("nan"), "diff_mean": float(means.mean()),
                   "diff_ci95": metrics.t_quantile_975(k - 1) * sd / np.sqrt(k) if k > 1 else float("nan"),
                   "diff_boot95": "", "diff_boot_lo": float("nan"), "diff_boot_hi": float("nan"), "diff_sd": sd,
                   "diff_range": f"[{means.min():.1f}, {means.max():.1f}]"})
  return rows


def main(argv):
  del argv
  import ml_collections

  from adajepa_jax.data import collect
  from adajepa_jax.eval import build, pipeline, plots, report
  from adajepa_jax.training import checkpoint, train

  base = FLAGS.config
  train_seeds = parse_seeds(FLAGS.train_seeds, "train_seeds")
  eval_seeds = parse_seeds(FLAGS.eval_seeds, "eval_seeds") if FLAGS.eval_seeds else [int(base.eval.seed)]
  groups = parse_groups(FLAGS.groups)
  conditions = list(dict.fromkeys(c for conds in groups.values() for c in conds))
  build.check_conditions(base.task.name, conditions)
  modes = [str(m) for m in build.parse_modes(FLAGS.modes or ["frozen", base.adapt.spec])]
  if "frozen" not in modes or len(modes) < 2:
    from adajepa_jax.errors import UsageError
    raise UsageError(f"--modes={','.join(modes)}: give 'frozen' and at least one adaptation spec")
  dirs = model_dirs(base, FLAGS.workdir, train_seeds, FLAGS.reuse)
  data_dir = os.path.join(FLAGS.workdir, "data")
  if set(dirs.values()) - set(FLAGS.reuse):   # some model trains here
    collect.collect_for_config(base, FLAGS.workdir)
  results = {}
  for s, model_dir in dirs.items():
    cfg = ml_collections.ConfigDict(base.to_dict())
    cfg.train.seed, cfg.train.data_dir = s, data_dir
    if model_dir not in FLAGS.reuse:
      print(f"[model seed {s}] training -> {model_dir}", flush=True)
      train.train_and_evaluate(cfg, model_dir)
    _, params, _ = checkpoint.load(model_dir, config=cfg)
    results[s] = {}
    for e in eval_seeds:
      cfg.eval.seed = e
      print(f"[model seed {s}] evaluation seed {e}: {', '.join(conditions)} x {', '.join(modes)}", flush=True)
      done = pipeline.evaluate_and_report(cfg, params, os.path.join(FLAGS.workdir, f"seed{s}", f"eval_seed{e}"),
                                          conditions, modes, gifs=0)
      results[s][e] = {(r.condition, r.mode): r for r in done}
  rows = table_rows(results, groups, eval_seeds, modes, int(base.eval.seeds))
  columns = ["group", "mode", "model", "episodes", "frozen_mean", "adaptive_mean", "diff_mean", "diff_boot95",
             "diff_sd", "diff_range"]
  print(report.write_table(rows, os.path.join(FLAGS.workdir, "training_seeds"), columns))
  gains = {}
  for r in rows:
    if r["model"].startswith("seed"):
      gains.setdefault(f"{r['group']}, {r['mode']}", []).append(
          (r["model"], r["diff_mean"], r["diff_boot_lo"], r["diff_boot_hi"]))
  path = os.path.join(FLAGS.workdir, "training_seeds.png")
  plots.plot_paired_gains(gains, path, title=f"{base.task.name}: adaptive - frozen per training run")
  print(f"wrote {path}")


if __name__ == "__main__":
  utils.run(main)
