"""Continual adaptation: does a model that keeps adapting across consecutive episodes in the same shifted world
improve over a model reset to its pretrained params at every episode?

  python experiments/continual.py --config=adajepa_jax/configs/stored.py:workdirs/quickstart_maze \
      --workdir=workdirs/quickstart_maze/continual --shifts=clean,high_damping --length=10 --sequences=10

For each shift, `--sequences` sequences of `--length` episodes (each episode its own task, start and goal;
the sequence key of sequence s is `mpc.episode_keys(eval.seed, 1, sequences)[s]`, its episodes
`mpc.sequence_keys`). Four variants play the same episodes:
  frozen      the pretrained model, no adaptation;
  reset       adaptation (`--mode`, default the config's adapt.spec), params reset at every episode (the paper);
  continual   the adapted params carried from episode to episode (`mpc.make_continual`);
  continual_buffer  the same, keeping the buffer of recent transitions too.
Writes <workdir>/runs/<variant>.json (per-episode success; reused on a rerun with the same settings, so an
interrupted run resumes by variant), continual.{csv,md} (success per variant, and the paired differences
against `reset` over all episodes and over the second half of each sequence, with a Student-t 95% CI over
sequences and the paired bootstrap; and the mean one-step prediction error on the first chunk of episodes 2..K,
before the episode's first update: what the carried params predict), and continual_<shift>.png (success
against the episode index).
"""
import json
import os

from absl import flags
from ml_collections import config_flags

from adajepa_jax import utils

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "adajepa_jax/configs/stored.py:<training workdir>.")
flags.DEFINE_string("workdir", None, "Where the runs, the table and the figures go.")
flags.DEFINE_list("shifts", ["clean"], "Shift conditions, each a world the sequences play in.")
flags.DEFINE_string("mode", None, "Adaptation spec (default: the config's adapt.spec).")
flags.DEFINE_integer("length", 10, "Episodes per sequence.")
flags.DEFINE_integer("sequences", 10, "Sequences per shift (independent units of the confidence intervals).")
flags.mark_flags_as_required(["config", "workdir"])

VARIANTS = ("frozen", "reset", "continual", "continual_buffer")


def settings(config, mode):
  """What a variant's outcomes depend on (a rerun with other settings does not reuse the runs)."""
  from adajepa_jax.eval import summary
  return {"shifts": list(FLAGS.shifts), "length": FLAGS.length, "sequences": FLAGS.sequences,
          "eval_seed": config.eval.seed, "replans": config.eval.replans, "mode": mode,
          **summary.run_settings(config)}


def run_variant(config, params, variant, mode):
  """Per-episode outcomes of `variant`, each [C, S, K] (shift, sequence, episode): success_any (int) and
  pred_error_first (the one-step prediction error on the episode's first executed chunk, before any update in
  the episode: it shows what the carried params predict)."""
  import jax
  import jax.numpy as jnp
  import numpy as np
  from tqdm import tqdm

  from adajepa_jax.envs import shifts
  from adajepa_jax.eval import build
  from adajepa_jax.mpc import episode_keys, evaluate, make_continual, make_episode, sequence_keys, with_conditions
  c, s, k = len(FLAGS.shifts), FLAGS.sequences, FLAGS.length
  conditions = shifts.same_env(FLAGS.shifts)
  env = conditions[0].task_env(config.task.name, **config.task.kwargs)
  program = make_episode(env, build.world_model_for(config, env),
                         build.mode_config(config, "frozen" if variant == "frozen" else mode), conditions,
                         record_frames=False)
  keys, condition_ids = with_conditions(episode_keys(config.eval.seed, 1, s), c)     # [C * S]
  if variant in ("frozen", "reset"):   # every episode of every sequence on its own
    keys = jax.vmap(lambda key: sequence_keys(key, k))(keys).reshape(-1)
    condition_ids = np.repeat(condition_ids, k)
  else:
    program = make_continual(program, k, keep_buffer=variant == "continual_buffer")
  unit = "episode" if variant in ("frozen", "reset") else "sequence"
  with tqdm(total=keys.shape[0], desc=variant, unit=unit) as bar:
    result = evaluate(program, params, keys, jnp.asarray(condition_ids), batch_size=config.eval.batch_size,
                      progress=bar.update)
  return {"success_any": np.asarray(result.success_any).reshape(c, s, k).astype(int),
          "pred_error_first": np.asarray(result.per_replan["pred_error_before"])[..., 0].reshape(c, s, k)}


def table_rows(success, config, mode):
  """Rows per shift and variant: success (%, t 95% over sequences) and paired differences against `reset`."""
  import numpy as np

  from adajepa_jax.eval import metrics
  s, k = FLAGS.sequences, FLAGS.length
  late = slice(k // 2, k)
  rows = []
  for ci, cond in enumerate(FLAGS.shifts):
    for v in VARIANTS:
      mine, base = success[v]["success_any"][ci], success["reset"]["success_any"][ci]   # [S, K]
      summ = metrics.seed_summary(mine.reshape(-1), s)
      row = {"shift": cond, "variant": v, "mode": "frozen" if v == "frozen" else mode,
             "budget": f"{config.eval.replans}x1", "sequences_x_length": f"{s} x {k}",
             "success_mean": summ["mean"], "success_ci95": summ["ci95"],
             "late_half_success": 100.0 * float(mine[:, late].mean()),
             "first_pred_error_later_episodes": f"{np.mean(success[v]['pred_error_first'][ci][:, 1:]):.4f}"}
      for name, part in (("all", slice(0, k)), ("late", late)):
        if v == "reset":
          row.update({f"diff_vs_reset_{name}_mean": float("nan"), f"diff_vs_reset_{name}_ci95": float("nan"),
                      f"diff_vs_reset_{name}_boot95": ""})
          continue
        d = metrics.paired_difference(mine[:, part].reshape(-1), base[:, part].reshape(-1), s)
        row.update({f"diff_vs_reset_{name}_mean": d["mean"], f"diff_vs_reset_{name}_ci95": d["ci95"],
                    f"diff_vs_reset_{name}_boot95": f"[{d['boot_lo']:.1f}, {d['boot_hi']:.1f}]"})
      rows.append(row)
  return rows


def plot(success, path_stem):
  """One PNG per shift: success (% of sequences) against the episode index, a line per variant."""
  import numpy as np

  from adajepa_jax.eval import plots
  paths = []
  for ci, cond in enumerate(FLAGS.shifts):
    curves = {v: 100.0 * np.asarray(success[v]["success_any"][ci]).mean(axis=0) for v in VARIANTS}
    path = f"{path_stem}_{cond}.png"
    plots.plot_success_curves(curves, path, title=f"{cond}: success by episode in the sequence",
                              budget_label="episode in the sequence", ylabel="success (% of sequences)")
    paths.append(path)
  return paths


def main(argv):
  del argv
  import numpy as np

  from adajepa_jax.errors import UsageError
  from adajepa_jax.eval import build, report
  from adajepa_jax.training import checkpoint

  config = FLAGS.config
  if FLAGS.length < 2 or FLAGS.sequences < 2:
    raise UsageError(f"--length={FLAGS.length} and --sequences={FLAGS.sequences} must each be >= 2 (a "
                     "sequence needs a next episode to carry to; the CI needs 2 sequences)")
  build.check_conditions(config.task.name, FLAGS.shifts)
  mode = FLAGS.mode or config.adapt.spec
  if not build.parse_modes([mode])[0].adapts:
    raise UsageError(f"--mode={mode!r} must be an adaptation spec (e.g. predlast+enclast), not frozen or oracle")
  _, params, _ = checkpoint.load(None, config=config)
  runs_dir = os.path.join(FLAGS.workdir, "runs")
  os.makedirs(runs_dir, exist_ok=True)
  wanted = settings(config, mode)
  success = {}
  for v in VARIANTS:
    path = os.path.join(runs_dir, f"{v}.json")
    if os.path.isfile(path):
      with open(path) as f:
        stored = json.load(f)
      if stored["settings"] == json.loads(json.dumps(wanted, default=str)) and "pred_error_first" in stored:
        success[v] = {k: np.asarray(stored[k]) for k in ("success_any", "pred_error_first")}
        print(f"{v}: reused {path}")
        continue
      print(f"{v}: {path} has other settings; running again")
    print(f"{v}: {len(FLAGS.shifts)} shifts x {FLAGS.sequences} sequences x {FLAGS.length} episodes ...",
          flush=True)
    success[v] = run_variant(config, params, v, mode)
    with open(path, "w") as f:
      json.dump({"settings": wanted, **{k: a.tolist() for k, a in success[v].items()}}, f, default=str)
  rows = table_rows(success, config, mode)
  columns = ["shift", "variant", "mode", "budget", "sequences_x_length", "success_mean", "late_half_success",
             "diff_vs_reset_all_mean", "diff_vs_reset_all_boot95", "diff_vs_reset_late_mean",
             "diff_vs_reset_late_boot95", "first_pred_error_later_episodes"]
  print(report.write_table(rows, os.path.join(FLAGS.workdir, "continual"), columns))
  for p in plot(success, os.path.join(FLAGS.workdir, "continual")):
    print(f"wrote {p}")


if __name__ == "__main__":
  utils.run(main)
