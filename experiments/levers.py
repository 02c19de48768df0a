"""What moves frozen success: one frozen evaluation per variant of a trained model's config, on the same
episodes, as one table (RESULTS.md's lever table).

  python experiments/levers.py --config=adajepa_jax/configs/stored.py:workdirs/pusht_expert \
      --workdir=workdirs/pusht_expert/levers --config.eval.episodes=50 --config.eval.seeds=1 \
      --variants="base:;gd:plan.planner='gd';proprio10:plan.proprio_weight=10.0"

The model and its config come from the checkpoint (`configs/stored.py`, with `--config.section.key=value`
overrides for every row). A variant is `name:key=value,key=value` on top of that (config keys with dots, Python
literal values; empty = the config as given). `--compare=b,c` adds other training workdirs (or checkpoint folders
such as `<workdir>/checkpoints/latest`, after `experiments/evidence.py` on them): each runs every
variant on its own stored config with the same `--config.*` overrides. Each row
gives the model's linear-probe R^2 for block x, y and angle (its evidence.json: the evaluated checkpoint),
success (the paper's test), the paired difference against the first row on the same episodes, and the p50
final agent / block (reference units) and angle (degrees) errors. Finished rows are kept (resume).
Writes <workdir>/<checkpoint name>__<variant>.json and <workdir>/levers.{csv,md}.
"""
import os

from absl import flags
from ml_collections import config_flags

from adajepa_jax import utils

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "adajepa_jax/configs/stored.py:<training workdir>, plus "
                                "--config.section.key=value overrides (for every row).")
flags.DEFINE_list("compare", [], "More training workdirs, run with the same variants and --config.* overrides.")
flags.DEFINE_string("workdir", None, "Where the rows and the table are written.")
flags.DEFINE_string("variants", "base:", "';'-separated `name:key=value,key=value` config variants.")
flags.DEFINE_string("condition", "clean", "Shift condition.")
flags.mark_flags_as_required(["config", "workdir"])


def model_configs():
  """The stored config of --config and of each --compare workdir, all with the command line's overrides."""
  from adajepa_jax.configs import stored
  from adajepa_jax.errors import UsageError
  overrides = config_flags.get_override_values(FLAGS["config"])
  configs = [FLAGS.config]
  for workdir in FLAGS.compare:
    config = stored.get_config(workdir)
    config.lock()
    try:
      config.update_from_flattened_dict(overrides)
    except (KeyError, TypeError) as e:
      raise UsageError(f"--compare={workdir}: its config cannot take the --config overrides: {e}") from e
    configs.append(config)
  return configs


def main(argv):
  del argv
  import numpy as np

  from adajepa_jax.configs import base
  from adajepa_jax.eval import build, metrics, pipeline, report
  from adajepa_jax.training import checkpoint, train

  variants = base.parse_variants(FLAGS.variants)
  models = model_configs()
  for model in models:   # every row's config checked before anything runs
    for _, o in variants:
      build.check_conditions(base.apply_overrides(model, o).task.name, [FLAGS.condition])
  os.makedirs(FLAGS.workdir, exist_ok=True)
  rows, first = [], None
  for model in models:
    _, params, _ = checkpoint.load(None, config=model)
    configs = [(name, base.apply_overrides(model, o), o) for name, o in variants]
    ckpt = model.checkpoint.workdir
    r2 = train.read_evidence(ckpt, model.checkpoint.step).get("probe", {}).get("r2", {})
    label = checkpoint.run_label(ckpt)
    for name, cfg, overrides in configs:
      path = os.path.join(FLAGS.workdir, f"{label}__{name}.json")
      summary = None
      if os.path.exists(path):   # a finished row is reused only if it ran the same episodes and overrides
        summary = pipeline.read_summary(path)
        ran = (summary.seeds, summary.episodes_per_seed, summary.replans, summary.extra.get("overrides"))
        if ran != (cfg.eval.seeds, cfg.eval.episodes, cfg.eval.replans, overrides):
          summary = None
      if summary is None:
        runs, _ = pipeline.run_conditions(cfg, params, [FLAGS.condition], "frozen")
        summary = runs[0][0]
        summary.extra.update(variant=name, overrides=overrides, checkpoint=ckpt)
        pipeline.write_summary(summary, path)
      first = first or summary
      diff = (metrics.paired_difference(summary.episodes["success_any"], first.episodes["success_any"],
                                        cfg.eval.seeds) if summary is not first else None)
      err = summary.final_error_p50
      rows.append({
          "model": label, "variant": name, "overrides": " ".join(f"{k}={v}" for k, v in overrides.items()),
          "planner": cfg.plan.planner, "budget": f"{cfg.eval.replans}x1",
          "episodes": summary.success_any.episodes,
          "r2_block_xy": f"{r2.get('block_x', np.nan):.2f}/{r2.get('block_y', np.nan):.2f}",
          "r2_angle_cos_sin": f"{r2.get('block_cos', np.nan):.2f}/{r2.get('block_sin', np.nan):.2f}",
          "success_any_mean": summary.success_any.mean, "success_any_ci95": summary.success_any.ci95,
          "diff_vs_first_mean": diff["mean"] if diff else float("nan"),
          "diff_boot95": f"[{diff['boot_lo']:.1f}, {diff['boot_hi']:.1f}]" if diff else "",
          "agent_err_p50": round(100 * err["agent_error"], 1), "block_err_p50": round(100 * err["block_error"], 1),
          "angle_err_p50_deg": round(float(np.degrees(err["angle_error"])), 1)})
      print(rows[-1])
  columns = [k for k in rows[0] if not k.endswith("_ci95")]
  print(report.write_table(rows, os.path.join(FLAGS.workdir, "levers"), columns))


if __name__ == "__main__":
  utils.run(main)
