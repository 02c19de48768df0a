"""Frozen vs adaptive MPC from a trained checkpoint, over shift conditions.

  python experiments/evaluate.py --config=adajepa_jax/configs/stored.py:workdirs/pusht \
      --workdir=workdirs/pusht/eval --shifts=clean,blur,dark --modes=frozen,predlast+enclast \
      --config.plan.planner=gd --config.eval.episodes=50 --config.eval.seeds=3

The config is the one stored with the checkpoint (`configs/stored.py`), with `--config.section.key=value`
overrides on top (planning, adaptation, the evaluation budget); the params come from the same checkpoint.
Writes a success table (CSV + markdown), success-vs-replan curves, GIFs and per-run JSON under --workdir (see
adajepa_jax/eval/pipeline.py); an interrupted run resumes.

On several hosts run the same command on each with $JAX_COORDINATOR_ADDRESS (process 0's host:port),
$JAX_NUM_PROCESSES and $JAX_PROCESS_ID set (README "Several hosts"; `utils.join_hosts`).
"""
import json
import os

from absl import flags
from ml_collections import config_flags

from adajepa_jax import utils

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "adajepa_jax/configs/stored.py:<training workdir>, plus "
                                "--config.section.key=value overrides.")
flags.DEFINE_string("workdir", None, "Where tables, curves and GIFs are written.")
flags.DEFINE_list("shifts", ["clean"], "Shift conditions (adajepa_jax.envs.shifts.names()).")
flags.DEFINE_list("modes", [], "'frozen', 'oracle' / 'oracle_mujoco' (the ceiling planning with MJX / MuJoCo C rollouts; the "
                  "latter is faster on CPU) and/or adaptation specs. Default: frozen and the config's adapt.spec.")
flags.DEFINE_integer("gifs", 2, "Episodes per run written as GIFs.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  del argv
  from adajepa_jax import adaptation
  from adajepa_jax.training import checkpoint
  from adajepa_jax.eval import build, pipeline

  config = FLAGS.config
  build.check_conditions(config.task.name, FLAGS.shifts)
  modes = FLAGS.modes or ["frozen", config.adapt.spec]
  build.parse_modes(modes)
  _, params, _ = checkpoint.load(None, config=config)
  os.makedirs(FLAGS.workdir, exist_ok=True)
  with open(os.path.join(FLAGS.workdir, "config.json"), "w") as f:
    json.dump(config.to_dict(), f, indent=1, default=str)
  lrs = adaptation.learning_rates(config)
  print(f"adaptation learning rates: predictor {lrs[0]:g}, encoder {lrs[1]:g} (training: "
        f"{config.train.lr_predictor:g}, {config.train.lr_encoder:g})")
  pipeline.evaluate_and_report(config, params, FLAGS.workdir, FLAGS.shifts, modes, gifs=FLAGS.gifs)
  with open(os.path.join(FLAGS.workdir, "success.md")) as f:
    print(f.read())


if __name__ == "__main__":
  utils.join_hosts()
  utils.run(main)
