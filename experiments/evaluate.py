"""Frozen vs adaptive MPC from a trained checkpoint, over shift conditions.

  python experiments/evaluate.py --checkpoint=workdirs/pusht/train --workdir=workdirs/pusht/eval \
      --shifts=clean,blur,dark --modes=frozen,predlast+enclast --planner=cem --episodes=50 --seeds=3

The task and model come from the checkpoint's stored config; flags override planning, adaptation and the
evaluation budget. Writes a success table (CSV + markdown), success-vs-replan curves, GIFs and per-run
JSON under --workdir (see adajepa_jax/eval/pipeline.py); an interrupted run resumes.
"""
import json
import os

from absl import app, flags

from adajepa_jax import utils

FLAGS = flags.FLAGS
flags.DEFINE_string("checkpoint", None, "Training workdir (or its checkpoint folder) of the world model.")
flags.DEFINE_string("workdir", None, "Where tables, curves and GIFs are written.")
flags.DEFINE_list("shifts", ["clean"], "Shift conditions (adajepa_jax.envs.shifts.names()).")
flags.DEFINE_list("modes", ["frozen", "predlast+enclast"], "'frozen' and/or adaptation specs.")
flags.DEFINE_enum("planner", None, ["cem", "gd", "mppi"], "Planner (default: the checkpoint config's).")
flags.DEFINE_integer("episodes", None, "Episodes per seed.")
flags.DEFINE_integer("seeds", None, "Test seeds.")
flags.DEFINE_integer("replans", None, "Replanning budget per episode.")
flags.DEFINE_integer("batch_size", None, "Most episodes per compiled call (default: eval.batch_size).")
flags.DEFINE_integer("samples", None, "CEM/MPPI samples.")
flags.DEFINE_integer("iterations", None, "CEM/MPPI iterations (GD: steps).")
flags.DEFINE_string("buffer", None, "Adaptation buffer: recent | hard | none | unbounded.")
flags.DEFINE_float("adapt_lr_scale", None, "Multiplies both adaptation learning rates.")
flags.DEFINE_integer("adapt_steps", None, "Gradient steps per replan (U).")
flags.DEFINE_integer("gifs", 2, "Episodes per run written as GIFs.")
flags.DEFINE_string("set", "", "Config overrides on top of the checkpoint's config, e.g. "
                    "'plan.proprio_weight=100.0,eval.seed=1' (applied before the flags above).")
flags.mark_flags_as_required(["checkpoint", "workdir"])


def apply_overrides(config):
  """Applies the command-line overrides to the evaluation sections of `config` (in place)."""
  if FLAGS.planner:
    config.plan.planner = FLAGS.planner
  for name, section, key in (("episodes", "eval", "episodes"), ("seeds", "eval", "seeds"),
                             ("replans", "eval", "replans"), ("batch_size", "eval", "batch_size"),
                             ("buffer", "adapt", "buffer"),
                             ("adapt_steps", "adapt", "steps")):
    if getattr(FLAGS, name) is not None:
      config[section][key] = getattr(FLAGS, name)
  if FLAGS.samples is not None:
    config.plan.cem.samples = config.plan.mppi.samples = FLAGS.samples
  if FLAGS.iterations is not None:
    config.plan.cem.iterations = config.plan.mppi.iterations = config.plan.gd.steps = FLAGS.iterations
  if FLAGS.adapt_lr_scale is not None:
    from adajepa_jax import adaptation
    lr_predictor, lr_encoder = adaptation.learning_rates(config)
    config.adapt.update(lr_predictor=lr_predictor * FLAGS.adapt_lr_scale,
                        lr_encoder=lr_encoder * FLAGS.adapt_lr_scale)
  return config


def main(argv):
  del argv
  utils.setup_runtime()
  from adajepa_jax import adaptation
  from adajepa_jax.eval import pipeline
  from adajepa_jax.training import checkpoint

  from adajepa_jax.configs import base
  params, config = checkpoint.load_world_model(FLAGS.checkpoint)
  config = apply_overrides(base.apply_overrides(config, base.parse_overrides(FLAGS.set)))
  os.makedirs(FLAGS.workdir, exist_ok=True)
  with open(os.path.join(FLAGS.workdir, "config.json"), "w") as f:
    json.dump(config.to_dict(), f, indent=1, default=str)
  lrs = adaptation.learning_rates(config)
  print(f"adaptation learning rates: predictor {lrs[0]:g}, encoder {lrs[1]:g} (training: "
        f"{config.train.lr_predictor:g}, {config.train.lr_encoder:g})")
  pipeline.evaluate_and_report(config, params, FLAGS.workdir, FLAGS.shifts, FLAGS.modes, gifs=FLAGS.gifs)
  with open(os.path.join(FLAGS.workdir, "success.md")) as f:
    print(f.read())


if __name__ == "__main__":
  app.run(main)
