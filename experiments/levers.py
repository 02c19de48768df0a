"""What moves frozen success: one frozen evaluation per variant of a trained model's config, on the same
episodes, as one table (RESULTS.md's lever table).

  python experiments/levers.py --checkpoint=workdirs/pusht_expert --workdir=workdirs/pusht_expert/levers \
      --variants="base:;gd:plan.planner='gd';proprio10:plan.proprio_weight=10.0" --episodes=50 --seeds=1

A variant is `name:key=value,key=value` (config keys with dots, Python literal values; empty = the stored
config). Several checkpoints may be compared with `--checkpoint=a,b` (every variant runs on each). Each row
gives the model's linear-probe R^2 for block x, y and angle (its evidence.json: the evaluated checkpoint),
success (the paper's test), the paired difference against the first row on the same episodes, and the p50
final agent / block (reference units) and angle (degrees) errors. Finished rows are kept (resume).
Writes <workdir>/<checkpoint name>__<variant>.json and <workdir>/levers.{csv,md}.
"""
import json
import os

from absl import app, flags

from adajepa_jax import utils

FLAGS = flags.FLAGS
flags.DEFINE_list("checkpoint", None, "Training workdir(s) of the world model(s).")
flags.DEFINE_string("workdir", None, "Where the rows and the table are written.")
flags.DEFINE_string("variants", "base:", "';'-separated `name:key=value,key=value` config variants.")
flags.DEFINE_integer("episodes", 50, "Episodes per seed.")
flags.DEFINE_integer("seeds", 1, "Test seeds.")
flags.DEFINE_string("condition", "clean", "Shift condition.")
flags.mark_flags_as_required(["checkpoint", "workdir"])


def parse_variants(text):
  """'a:x.y=1,z.w=2;b:' -> [('a', {'x.y': 1, 'z.w': 2}), ('b', {})]; ValueError names a malformed part."""
  from adajepa_jax.configs import base
  out = []
  for part in filter(None, (p.strip() for p in text.split(";"))):
    name, sep, body = part.partition(":")
    if not sep or not name:
      raise ValueError(f"Malformed variant {part!r}; expected name:key=value,key=value")
    out.append((name, base.parse_overrides(body)))
  if not out:
    raise ValueError("--variants names no variant")
  return out


def main(argv):
  del argv
  utils.setup_runtime()
  import numpy as np

  from adajepa_jax.configs import base
  from adajepa_jax.eval import metrics, pipeline, report
  from adajepa_jax.training import checkpoint

  variants = parse_variants(FLAGS.variants)
  os.makedirs(FLAGS.workdir, exist_ok=True)
  rows, first = [], None
  for ckpt in FLAGS.checkpoint:
    params, stored = checkpoint.load_world_model(ckpt)
    stored.eval.update(episodes=FLAGS.episodes, seeds=FLAGS.seeds)
    configs = [(name, base.apply_overrides(stored, o), o) for name, o in variants]   # all checked before running
    for _, cfg, _ in configs:
      pipeline.check_conditions(cfg.task.name, [FLAGS.condition])
    with open(os.path.join(ckpt, "evidence.json")) as f:
      r2 = json.load(f).get("probe", {}).get("r2", {})
    label = os.path.basename(os.path.normpath(ckpt))
    for name, cfg, overrides in configs:
      path = os.path.join(FLAGS.workdir, f"{label}__{name}.json")
      if os.path.exists(path):
        with open(path) as f:
          summary = json.load(f)
      else:
        runs, _ = pipeline.run_conditions(cfg, params, [FLAGS.condition], "frozen")
        summary = dict(runs[0][0], variant=name, overrides=overrides, checkpoint=ckpt)
        with open(path, "w") as f:
          json.dump(summary, f, indent=1)
      first = first or summary
      diff = (metrics.paired_difference(summary["episodes"]["success_any"], first["episodes"]["success_any"],
                                        FLAGS.seeds) if summary is not first else None)
      err = summary["final_error_p50"]
      rows.append({
          "model": label, "variant": name, "overrides": " ".join(f"{k}={v}" for k, v in overrides.items()),
          "planner": cfg.plan.planner, "budget": f"{cfg.eval.replans}x1",
          "episodes": summary["success_any"]["episodes"],
          "r2_block_xy": f"{r2.get('block_x', np.nan):.2f}/{r2.get('block_y', np.nan):.2f}",
          "r2_angle_cos_sin": f"{r2.get('block_cos', np.nan):.2f}/{r2.get('block_sin', np.nan):.2f}",
          "success_any_mean": summary["success_any"]["mean"], "success_any_ci95": summary["success_any"]["ci95"],
          "diff_vs_first_mean": diff["mean"] if diff else float("nan"),
          "diff_boot95": f"[{diff['boot_lo']:.1f}, {diff['boot_hi']:.1f}]" if diff else "",
          "agent_err_p50": round(100 * err["agent_error"], 1), "block_err_p50": round(100 * err["block_error"], 1),
          "angle_err_p50_deg": round(float(np.degrees(err["angle_error"])), 1)})
      print(rows[-1])
  columns = [k for k in rows[0] if not k.endswith("_ci95")]
  print(report.write_table(rows, os.path.join(FLAGS.workdir, "levers"), columns))


if __name__ == "__main__":
  app.run(main)
