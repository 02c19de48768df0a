"""How hard are a push task's goals: percentiles of the start -> goal motion over many resets.

  python experiments/goal_stats.py --task=pusht --goal_rule=expert --resets=256 --out=results/goals_expert.json

Prints p10 / p50 / p90 of the block translation and rotation and of the agent translation (reference units
of the 512-unit canvas, degrees), the fraction of goal segments with contact, and the fraction of starts that
already pass the success test.
"""
import json

from absl import flags

from adajepa_jax import utils

FLAGS = flags.FLAGS
flags.DEFINE_string("task", "pusht", "A push task (pusht or pushobj).")
flags.DEFINE_string("goal_rule", "expert", "Goal rule of the push env (expert | explore).")
flags.DEFINE_integer("resets", 256, "Number of resets.")
flags.DEFINE_integer("seed", 1, "Reset seed.")
flags.DEFINE_string("out", None, "Optional JSON output path.")


def main(argv):
  del argv
  import jax
  import numpy as np

  from adajepa_jax import envs
  from adajepa_jax.envs import push
  from adajepa_jax.errors import UsageError

  if not FLAGS.task.startswith("push"):
    raise UsageError(f"--task must be a push task (pusht, pushobj), got {FLAGS.task!r}")
  env = envs.make(FLAGS.task, image_size=32, goal_rule=FLAGS.goal_rule)
  st = jax.jit(jax.vmap(env.reset))(jax.random.split(jax.random.key(FLAGS.seed), FLAGS.resets))
  s, g = np.asarray(st.info["state"]), np.asarray(st.info["goal_state"])
  ref = 1.0 / push.SCALE
  stats = {
      "block_translation": np.linalg.norm(g[:, 2:4] - s[:, 2:4], axis=1) * ref,
      "block_rotation_deg": np.degrees(np.abs((g[:, 4] - s[:, 4] + np.pi) % (2 * np.pi) - np.pi)),
      "agent_translation": np.linalg.norm(g[:, :2] - s[:, :2], axis=1) * ref,
  }
  out = {k: dict(zip(("p10", "p50", "p90"), np.percentile(v, [10, 50, 90]).round(1).tolist()))
         for k, v in stats.items()}
  out.update(task=FLAGS.task, goal_rule=FLAGS.goal_rule, resets=FLAGS.resets, seed=FLAGS.seed,
             contact_fraction=float(np.mean(st.info["goal_contact"])),
             start_success_fraction=float(np.mean(st.metrics["success"])))
  print(json.dumps(out, indent=1))
  if FLAGS.out:
    with open(FLAGS.out, "w") as f:
      json.dump(out, f, indent=1)


if __name__ == "__main__":
  utils.run(main)
