"""Env throughput: rendered env-steps/s for batch 1..256, MJX vs plain MuJoCo (C), and collection time.

  python experiments/benchmark_envs.py                       # pusht, 64 px, batches 1,4,16,64,256
  python experiments/benchmark_envs.py --task=pushobj --batches=1,64 --collect_episodes=0
  python experiments/benchmark_envs.py --cross_check          # maze physics: MJX vs MuJoCo C trajectories

Prints one table: per batch size, rendered env-steps/s (physics + render, what data collection and MPC pay),
physics-only MJX env-steps/s, and their ratio to single-threaded plain MuJoCo C stepping the same model and
control law on the same actions. Then times the real collection program (one shard of `--collect_episodes`
episodes x `--collect_length` steps, including each episode's goal rollout) and projects the time for
`--target_episodes` episodes; `--collect_full` collects them all instead of projecting.
Timings exclude compilation (printed separately) and are not asserted anywhere.

`--cross_check` prints the maze physics cross-check instead: the free / slide / corner scenarios of
`maze.cross_check_scenarios` (`--cross_seeds` placements per layout, `--cross_steps` env steps each), stepped
by MJX and by plain MuJoCo C from the same state; per layout and scenario the open-loop position error (max
and median over steps and placements, cells), the one-step error (MuJoCo C stepped from MJX's state) and the
fraction of steps with a MuJoCo C contact.
"""
import tempfile
import time

from absl import flags

from adajepa_jax import utils
from adajepa_jax.errors import UsageError

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
_CROSS = flags.DEFINE_bool("cross_check", False, "Print the maze MJX vs MuJoCo C cross-check (no timing).")
_CROSS_LAYOUTS = flags.DEFINE_list("cross_layouts", ["umaze", "medium", "large", "diverse0", "diverse7",
                                                     "diverse25"],
                                   "Maze layouts: umaze, medium, large or diverse<id> (0-29).")
_CROSS_STEPS = flags.DEFINE_integer("cross_steps", 150, "Env steps per cross-check scenario.")
_CROSS_SEEDS = flags.DEFINE_integer("cross_seeds", 3, "Placements of each scenario per layout.")
_CROSS_CONDITION = flags.DEFINE_string("cross_condition", "clean",
                                       "Shift whose task transform (dynamics) the cross-check applies.")


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


def _layout(name):
  from adajepa_jax.envs import mazes

  if name in mazes.REFERENCE:
    return mazes.parse(mazes.REFERENCE[name])
  if name.startswith("diverse") and name[7:].isdigit() and int(name[7:]) < mazes.DIVERSE_COUNT:
    return mazes.diverse_layouts()[int(name[7:])]
  raise UsageError(f"Unknown layout {name!r}; valid: {', '.join(mazes.REFERENCE)}, "
                   f"diverse0..diverse{mazes.DIVERSE_COUNT - 1}")


def cross_check():
  """Prints the maze MJX vs MuJoCo C cross-check table (see the module docstring)."""
  import numpy as np

  from adajepa_jax.envs import maze, mazes, shifts

  names = _CROSS_LAYOUTS.value
  walls = [_layout(n) for n in names]
  env = maze.PointMaze(layouts=walls, image_size=16, goal_rule="bfs", goal_band=(1, 100))
  condition = shifts.get(_CROSS_CONDITION.value)
  steps, seeds = _CROSS_STEPS.value, _CROSS_SEEDS.value
  print(f"MJX vs MuJoCo C, {steps} env steps x {seeds} placements per scenario, condition "
        f"{_CROSS_CONDITION.value}; position errors in cells")
  print(f"{'layout':>10} {'scenario':>8} {'open-loop max':>13} {'p50':>8} {'one-step max':>12} {'p50':>8} "
        f"{'contact steps':>13}")

  def row(label, scenario, runs):
    err, one, contact = (np.concatenate([r[k][1:] for r in runs]) for k in ("error", "step_error", "contacts"))
    print(f"{label:>10} {scenario:>8} {err.max():>13.1e} {np.median(err):>8.1e} {one.max():>12.1e} "
          f"{np.median(one):>8.1e} {100 * np.mean(contact > 0):>12.0f}%")

  pooled = {s: [] for s in maze.CROSS_CHECK_SCENARIOS}
  for name, w in zip(names, walls):
    w = mazes.pad(w, env.grid_shape)
    runs = {s: [] for s in maze.CROSS_CHECK_SCENARIOS}
    for seed in range(seeds):
      for s, (start, actions) in maze.cross_check_scenarios(w, steps, seed=seed).items():
        runs[s].append(env.cross_check(condition.apply_task(env.make_task(w, start, start)), actions))
    for s, rs in runs.items():
      pooled[s] += rs
      row(name, s, rs)
  for s, rs in pooled.items():
    row("all", s, rs)


def main(argv):
  del argv
  if _CROSS.value:
    cross_check()
    return
  import jax
  import numpy as np
  from tqdm import tqdm

  from adajepa_jax import envs
  from adajepa_jax.data import collect
  from adajepa_jax.envs import push

  env = envs.make(_TASK.value, image_size=_IMAGE.value)
  if not isinstance(env, push.PushEnv):
    raise UsageError(f"benchmark_envs times push tasks (pusht, pushobj), got {_TASK.value!r}; the maze's "
                     "physics check is --cross_check")
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
  utils.run(main)
