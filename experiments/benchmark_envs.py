"""Env throughput: rendered env-steps/s for batch 1..256, MJX vs plain MuJoCo (C), and collection time.

  python experiments/benchmark_envs.py                       # pusht, 64 px, batches 1,4,16,64,256
  python experiments/benchmark_envs.py --task=pushobj --batches=1,64 --collect_episodes=0

Prints one table: per batch size, rendered env-steps/s (physics + render, what data collection and MPC pay),
physics-only MJX env-steps/s, and their ratio to single-threaded plain MuJoCo C stepping the same model and
control law on the same actions. Then times the real collection program (one shard of `--collect_episodes`
episodes x `--collect_length` steps, including each episode's goal rollout) and projects the time for
`--target_episodes` episodes; `--collect_full` collects them all instead of projecting.
Timings exclude compilation (printed separately) and are not asserted anywhere.
"""
import tempfile
import time

from absl import app
from absl import flags

from adajepa_jax import utils

_TASK = flags.DEFINE_string("task", "pusht", "Registered push task (pusht or pushobj).")
_IMAGE = flags.DEFINE_integer("image_size", 64, "Rendered image side in pixels.")
_BATCHES = flags.DEFINE_list("batches", ["1", "4", "16", "64", "256"], "Batch sizes (episodes in parallel).")
_STEPS = flags.DEFINE_integer("steps", 20, "Env steps per timed rollout.")
_REPEATS = flags.DEFINE_integer("repeats", 2, "Timed repeats per configuration (best is reported).")
_MJ_STEPS = flags.DEFINE_integer("mj_steps", 500, "Control steps for the plain MuJoCo measurement.")
_COLLECT_EPISODES = flags.DEFINE_integer("collect_episodes", 250,
                                         "Episodes in the timed collection shard (0: skip).")
_COLLECT_LENGTH = flags.DEFINE_integer("collect_length", 100, "Env steps per collected episode.")
_TARGET = flags.DEFINE_integer("target_episodes", 1000, "Episodes to project the collection time for.")
_FULL = flags.DEFINE_bool("collect_full", False, "Collect all target episodes (to a temp dir) instead.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed.")


def _time(fn, *args, repeats):
  import jax

  t = time.perf_counter()
  jax.block_until_ready(fn(*args))
  compile_s = time.perf_counter() - t
  best, out = float("inf"), None
  for _ in range(repeats):
    t = time.perf_counter()
    out = jax.block_until_ready(fn(*args))
    best = min(best, time.perf_counter() - t)
  return compile_s, best, out


def _programs(env, steps):
  """jit(vmap) rollouts from reset states: with rendering (env.step) and physics only."""
  import jax
  import jax.numpy as jnp

  def rendered(state, keys):
    def body(carry, k):
      s, prev = carry
      a = env.explore_action(k, s, prev)
      return (env.step(s, a), a), a
    (s, _), actions = jax.lax.scan(body, (state, jnp.zeros(2)), keys)
    return s.info["state"], actions

  def physics(state, actions):
    model = env._model(state.info["task"])  # pylint: disable=protected-access
    d, _ = jax.lax.scan(lambda d, a: (env._physics(model, d, a), None),  # pylint: disable=protected-access
                        state.pipeline_state, actions)
    return d.qpos

  return jax.jit(jax.vmap(rendered)), jax.jit(jax.vmap(physics))


def _mujoco_c(env, actions):
  """Plain MuJoCo env-steps/s on one thread, replaying `actions` f32[T, 2] from the env's first state."""
  import mujoco
  import numpy as np

  mj = env.mj_model_for(0)
  md = mujoco.MjData(mj)
  t = time.perf_counter()
  for a in actions:
    env.mj_control_step(mj, md, np.asarray(a, np.float64))
  return len(actions) / (time.perf_counter() - t)


def main(argv):
  del argv
  utils.setup_runtime()
  import jax
  import numpy as np
  from tqdm import tqdm

  from adajepa_jax import envs
  from adajepa_jax.data import collect

  env = envs.make(_TASK.value, image_size=_IMAGE.value)
  if not hasattr(env, "mj_model_for"):
    raise ValueError(f"benchmark_envs supports push tasks (pusht, pushobj), got {_TASK.value!r}")
  steps, repeats = _STEPS.value, _REPEATS.value
  rendered, physics = _programs(env, steps)
  reset = jax.jit(jax.vmap(env.reset))
  key = jax.random.key(_SEED.value)

  rows, mj_actions = [], None
  for b in tqdm([int(x) for x in _BATCHES.value], desc="batch sizes"):
    k_reset, k_act = jax.random.split(jax.random.fold_in(key, b))
    state = reset(jax.random.split(k_reset, b))
    act_keys = jax.random.split(k_act, b * steps).reshape(b, steps)
    c_r, t_r, (_, actions) = _time(rendered, state, act_keys, repeats=repeats)
    c_p, t_p, _ = _time(physics, state, actions, repeats=repeats)
    if mj_actions is None:
      mj_actions = np.asarray(actions[0])
    rows.append((b, b * steps / t_r, b * steps / t_p, c_r + c_p))

  reps = -(-_MJ_STEPS.value // len(mj_actions))
  c_rate = _mujoco_c(env, np.tile(mj_actions, (reps, 1))[:_MJ_STEPS.value])
  print(f"\n{_TASK.value} at {_IMAGE.value}px, {env.substeps} physics substeps per env step; "
        f"plain MuJoCo C (1 thread, no rendering): {c_rate:,.0f} env-steps/s")
  print(f"{'batch':>6} {'rendered steps/s':>17} {'MJX physics steps/s':>20} {'MJX/C physics':>14} "
        f"{'rendered/C':>11} {'compile s':>10}")
  for b, r, p, c in rows:
    print(f"{b:>6} {r:>17,.0f} {p:>20,.0f} {p / c_rate:>14.2f} {r / c_rate:>11.2f} {c:>10.1f}")

  if _COLLECT_EPISODES.value > 0:
    n, length = _COLLECT_EPISODES.value, _COLLECT_LENGTH.value
    if _FULL.value:
      with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        with tqdm(total=-(-_TARGET.value // n), desc="collect", unit="shard") as bar:
          m = collect.collect_to_dir(env, tmp, _TARGET.value, length, seed=_SEED.value, shard_episodes=n,
                                     progress=lambda i, k: bar.update(1))
        total = time.perf_counter() - t
      print(f"collected {_TARGET.value} x {length} steps at {_IMAGE.value}px in {total:.1f} s "
            f"(including compilation); contact in {100 * m['contact_fraction']:.1f}% of episodes")
    else:
      program = collect.make_collect(env, length)
      keys = collect.episode_keys(_SEED.value, n)
      c, t, out = _time(program, keys, repeats=1)
      per = t / n
      print(f"collection: {n} episodes x {length} steps at {_IMAGE.value}px in {t:.1f} s "
            f"(+{c - t:.1f} s compile) = {n * length / t:,.0f} env-steps/s; contact in "
            f"{100 * float(np.mean(np.asarray(out['contact']) > 0)):.1f}% of episodes")
      print(f"projected {_TARGET.value} x {length}: {per * _TARGET.value:.0f} s "
            f"({per * _TARGET.value / 60:.1f} min) plus one compilation")


if __name__ == "__main__":
  app.run(main)
