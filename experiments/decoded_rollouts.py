"""Decoded rollouts: does adaptation calibrate the model or relearn it? A picture of what the frozen and the
adapted model predict, through a visualisation decoder trained on the model's detached latents.

  python experiments/decoded_rollouts.py --config=adajepa_jax/configs/stored.py:workdirs/pusht_base \
      --workdir=workdirs/pusht_base/decoded --shifts=blur,red_block --out=results/decoded_rollouts_pusht.png

First trains (or resumes, or reuses) the decoder of the stored model (`training.decoder`, checkpoints in
`<training workdir>/decoder/`). Then, for each shift, runs the same `--episodes` episodes frozen and adaptive
(`--mode`, default the config's `adapt.spec`) and draws, for the first episode, at each of `--replans`: the
goal; each run's real next frame and real frame `horizon` steps on; and the decoded prediction of the chosen
plan at those two steps (the latents the model predicted with its params of that replan). Writes the figure
to --out and the decoder's pixel error to <workdir>/decoder_eval.json.
"""
import json
import os

from absl import flags
from ml_collections import config_flags

from adajepa_jax import utils

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "adajepa_jax/configs/stored.py:<training workdir>.")
flags.DEFINE_string("workdir", None, "Where the evaluation files go.")
flags.DEFINE_list("shifts", ["blur", "red_block"], "Shift conditions (each a block of rows).")
flags.DEFINE_string("mode", None, "Adaptation spec of the adaptive run (default: the config's adapt.spec).")
flags.DEFINE_integer("episodes", 2, "Episodes per shift (the first is drawn).")
flags.DEFINE_list("replans", ["0", "5", "10", "14"], "Replans drawn (each < eval.replans - plan.horizon + 1).")
flags.DEFINE_integer("decoder_steps", 2000, "Decoder training steps.")
flags.DEFINE_string("out", None, "The figure's path (PNG).")
flags.mark_flags_as_required(["config", "workdir", "out"])


def run_pair(config, params, condition, mode, episodes):
  """(frozen, adaptive) EpisodeResults (numpy, leading axis `episodes`) of the same episodes."""
  import jax
  import numpy as np

  from adajepa_jax.envs import shifts
  from adajepa_jax.eval import build
  from adajepa_jax.mpc import episode_keys, evaluate, make_episode
  cond = shifts.get(condition)
  env = cond.task_env(config.task.name, **config.task.kwargs)
  wm = build.world_model_for(config, env)
  keys = episode_keys(config.eval.seed, 1, episodes)
  out = []
  for m in ("frozen", mode):
    program = make_episode(env, wm, build.mode_config(config, m), [cond], record_frames=True)
    out.append(jax.tree.map(np.asarray, evaluate(program, params, keys, mesh=None)))
  return out


def draw(blocks, replans, horizon, path):
  """blocks: [(condition, goal uint8[H, W, 3], {run: (real uint8[R+1, H, W, 3], decoded f32[R, Hp, H, W, 3])})]."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  import numpy as np
  cols = [(r, k) for r in replans for k in (1, horizon)]
  rows = [(c, goal, run, kind) for c, goal, runs in blocks for run in runs for kind in ("real", "decoded")]
  fig, axes = plt.subplots(len(rows), len(cols) + 1, figsize=(1.25 * (len(cols) + 1), 1.3 * len(rows)),
                           squeeze=False)
  for i, (cond, goal, run, kind) in enumerate(rows):
    real, decoded = next(b[2] for b in blocks if b[0] == cond)[run]
    axes[i, 0].imshow(goal)
    axes[i, 0].set_ylabel(f"{cond}\n{run}\n{kind}", fontsize=7)
    if i == 0:
      axes[i, 0].set_title("goal", fontsize=7)
    for j, (r, k) in enumerate(cols, start=1):
      img = real[r + k] if kind == "real" else np.clip(decoded[r, k - 1], 0, 1)
      axes[i, j].imshow(img)
      if i == 0:
        axes[i, j].set_title(f"replan {r}, +{k}", fontsize=7)
  for ax in axes.flat:
    ax.set_xticks([])
    ax.set_yticks([])
  fig.tight_layout(pad=0.2)
  fig.savefig(path, dpi=110)
  plt.close(fig)


def main(argv):
  del argv
  import jax
  import numpy as np

  from adajepa_jax.training import checkpoint
  from adajepa_jax.errors import UsageError
  from adajepa_jax.eval import build
  from adajepa_jax.training import decoder

  config = FLAGS.config
  mode = FLAGS.mode or config.adapt.spec
  build.parse_modes([mode])
  build.check_conditions(config.task.name, FLAGS.shifts)
  horizon, budget = int(config.plan.horizon), int(config.eval.replans)
  try:
    replans = [int(r) for r in FLAGS.replans]
  except ValueError:
    raise UsageError(f"--replans takes integers, got {FLAGS.replans}") from None
  bad = [r for r in replans if not 0 <= r <= budget - horizon]
  if bad:
    raise UsageError(f"--replans={bad[0]}: must be in 0..{budget - horizon} (eval.replans {budget} minus the "
                     f"plan horizon {horizon}, so the real frames the plan predicts exist)")
  if FLAGS.episodes < 1:
    raise UsageError(f"--episodes={FLAGS.episodes}: must be >= 1")
  _, params, _ = checkpoint.load(None, config=config)
  dec_params, wm = decoder.train_decoder(config, config.checkpoint.workdir, steps=FLAGS.decoder_steps)
  full = dict(params, decoder=dec_params)
  decode = jax.jit(wm.decode)
  os.makedirs(FLAGS.workdir, exist_ok=True)
  blocks, errors = [], {}
  for cond in FLAGS.shifts:
    runs = {}
    for name, result in zip(("frozen", mode), run_pair(config, params, cond, mode, FLAGS.episodes)):
      real, latents = result.frames[0], result.plan_latents[0]            # [R+1, H, W, 3], [R, Hp, N, D]
      decoded = np.asarray(decode(full, latents))                         # [R, Hp, H, W, 3]
      runs[name] = (real, decoded)
      next_real = real[1:].astype(np.float32) / 255.0
      errors[f"{cond}/{name}"] = float(np.mean(np.square(decoded[:, 0] - next_real)))
    blocks.append((cond, result.goal_pixels[0], runs))
  os.makedirs(os.path.dirname(os.path.abspath(FLAGS.out)), exist_ok=True)
  draw(blocks, replans, horizon, FLAGS.out)
  with open(os.path.join(FLAGS.workdir, "decoder_eval.json"), "w") as f:
    json.dump({"next_frame_pixel_mse": errors, "mode": mode, "episodes": FLAGS.episodes,
               "eval_seed": int(config.eval.seed), "decoder_steps": FLAGS.decoder_steps}, f, indent=1)
  print(json.dumps(errors, indent=1))
  print(f"figure: {FLAGS.out}")


if __name__ == "__main__":
  utils.run(main)
