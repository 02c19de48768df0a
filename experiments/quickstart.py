"""README's main job: offline data -> world model -> frozen vs adaptive MPC -> REPORT.md, on a small default.

  python experiments/quickstart.py --config.eval.episodes=20 --workdir=workdirs/quickstart    # (or: make demo)

The default task is PointMaze-Medium under its dynamics shift (clean vs high damping): at CPU scale it is the
task whose frozen model plans well within the quickstart's 20-minute budget. PushT (the longer run, about
45 minutes, RESULTS.md section 2):
  python experiments/quickstart.py --config=adajepa_jax/configs/pusht.py:cpu --shifts=clean --workdir=workdirs/pusht

Settings are the config's (`--config.section.key=value` overrides; e.g. `--config.eval.episodes=20` for the
evaluation budget, 3 seeds x 50 episodes by default).

Every stage resumes: data shards, training checkpoints and finished evaluation runs are reused when the
command is run again, so an interruption loses at most the stage in flight. Writes under --workdir:
  data/            offline shards, manifest.json, contact_sheet.png
  config.json, metrics.csv, tb/, checkpoints/, evidence.json     (training)
  eval/            success.{csv,md}, success_curve_<shift>.png, gifs/, results/*.json, config.json
  REPORT.md        what was run, the commands, the evidence and the success table
"""
import json
import os
import sys
import time

from absl import flags
from ml_collections import config_flags

from adajepa_jax import utils

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", "adajepa_jax/configs/pointmaze.py:cpu", "Run config.")
flags.DEFINE_string("workdir", "workdirs/quickstart", "Run folder.")
flags.DEFINE_list("shifts", ["clean", "high_damping"], "Shift conditions to evaluate.")
flags.DEFINE_list("modes", [], "'frozen' and/or adaptation specs. Default: frozen and the config's adapt.spec.")


def _report(workdir, config, manifest, evidence, success_md, timings):
  from adajepa_jax import adaptation
  ev = evidence or {}
  probe = ev.get("probe", {})
  lrs = adaptation.learning_rates(config)
  lines = [
      "# Quickstart report", "",
      f"Task `{config.task.name}` ({config.task.kwargs.image_size} px), world model "
      f"`{config.model.encoder}` encoder + {config.model.depth}-block `{config.model.predictor}` predictor, "
      f"planner `{config.plan.planner}`, budget {config.eval.replans} replans x 1 chunk of "
      f"{config.data.frameskip} env steps, {config.eval.seeds} seeds x {config.eval.episodes} episodes.", "",
      "Produced by `python " + " ".join(sys.argv) + "`.", "",
      "## Data",
      f"{manifest.get('episodes')} episodes x {manifest.get('length')} steps"
      + ("" if manifest.get("contact_fraction") is None else
         f"; fraction of episodes with agent-block contact: {manifest['contact_fraction']:.2f}")
      + ". Files: `data/`.", "",
      "## World model evidence (validation split)",
      f"- one-step prediction loss {ev.get('val_pred_loss', float('nan')):.5f} vs copy-last-latent baseline "
      f"{ev.get('val_copy_loss', float('nan')):.5f} (ratio {ev.get('pred_over_copy', float('nan')):.3f})",
      f"- visual latent per-dim std: min {ev.get('z_std_min', float('nan')):.4f}, "
      f"mean {ev.get('z_std_mean', float('nan')):.4f}",
      f"- linear probe R^2 latent -> state: {probe.get('r2_mean', float('nan')):.3f} "
      f"({', '.join(f'{k} {v:.2f}' for k, v in probe.get('r2', {}).items())})",
      f"Evidence is computed on the checkpoint evaluation loads (step {ev.get('checkpoint_step', '?')}). "
      "Files: `evidence.json`, `metrics.csv`, `checkpoints/`.", "",
      "## Frozen vs adaptive MPC (success %, mean ± 95% CI over seeds)",
      "`success_any` = reached at any chunk within the budget; `success_final` = at the last step. "
      "`diff_vs_frozen` = paired difference on the same episodes (mean over seeds of the per-seed mean "
      "differences ± its 95% t-interval over seeds); `diff_boot95` = paired bootstrap 95% interval over "
      "episodes. Budget = replans x chunks of " + f"{config.data.frameskip} env steps. Adaptation learning "
      f"rates: predictor {lrs[0]:g}, encoder {lrs[1]:g} (training: {config.train.lr_predictor:g}, "
      f"{config.train.lr_encoder:g}).", "",
      success_md, "",
      "Curves: " + ", ".join(f"`eval/success_curve_{s}.png`" for s in FLAGS.shifts) + "; GIFs: `eval/gifs/`.",
      "", "## Wall time (s)", "", "| stage | seconds |", "|---|---|",
  ] + [f"| {k} | {v:.0f} |" for k, v in timings.items()]
  with open(os.path.join(workdir, "REPORT.md"), "w") as f:
    f.write("\n".join(lines) + "\n")


def main(argv):
  del argv
  from adajepa_jax.data import collect
  from adajepa_jax.eval import build, pipeline
  from adajepa_jax.training import checkpoint, train

  config = FLAGS.config
  workdir = FLAGS.workdir
  # Validate every choice before the long stages start.
  modes = FLAGS.modes or ["frozen", config.adapt.spec]
  build.parse_modes(modes)
  build.check_conditions(config.task.name, FLAGS.shifts)
  os.makedirs(workdir, exist_ok=True)
  timings = {}

  t = time.perf_counter()
  print(f"[1/3] collecting {config.data.episodes} {config.task.name} episodes -> {workdir}/data")
  manifest = collect.collect_for_config(config, workdir)
  timings["data"] = time.perf_counter() - t

  t = time.perf_counter()
  print(f"[2/3] training the world model ({config.train.steps} steps) -> {workdir}")
  summary = train.train_and_evaluate(config, workdir)
  timings["train"] = time.perf_counter() - t

  t = time.perf_counter()
  print(f"[3/3] frozen vs adaptive MPC on {FLAGS.shifts} -> {workdir}/eval")
  _, params, _ = checkpoint.load(workdir, config=config)   # the evaluated checkpoint: best, else latest
  eval_dir = os.path.join(workdir, "eval")
  os.makedirs(eval_dir, exist_ok=True)
  with open(os.path.join(eval_dir, "config.json"), "w") as f:
    json.dump(config.to_dict(), f, indent=1, default=str)
  pipeline.evaluate_and_report(config, params, eval_dir, FLAGS.shifts, modes)
  timings["evaluate"] = time.perf_counter() - t

  with open(os.path.join(eval_dir, "success.md")) as f:
    success_md = f.read()
  _report(workdir, config, manifest, summary.get("evidence"), success_md, timings)
  print(success_md)
  print(f"report: {os.path.join(workdir, 'REPORT.md')}")


if __name__ == "__main__":
  utils.run(main)
