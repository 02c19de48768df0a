"""PointMaze: layouts, goal sampling, walls, dynamics scales, layout-and-dynamics mixing under one compile."""
import brax.envs
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from adajepa_jax import envs
from adajepa_jax.envs import maze, mazes, shifts

IMAGE = 32
BATCH = 8
STEPS = 40
MAZE_NAMES = ("pointmaze_umaze", "pointmaze_medium", "pointmaze_large", "pointmaze_diverse")


@pytest.fixture(scope="module")
def env():
  return envs.make("pointmaze_diverse", image_size=IMAGE)


@pytest.fixture(scope="module")
def rollout(env):
  """One jitted program: a vmapped batch of episodes (any layouts, any dynamics) x a scan over steps."""

  @jax.jit
  @chex.assert_max_traces(n=1)
  def run(tasks, actions):
    def episode(task, acts):
      state = env.reset_to(jax.random.key(0), task)

      def body(s, a):
        s = env.step(s, a)
        return s, (s.obs["proprio"][:2], s.metrics["success"])

      final, (xy, success) = jax.lax.scan(body, state, acts)
      return xy, success, final.obs, final.info["goal_obs"]

    return jax.vmap(episode)(tasks, actions)

  return run


def _stack(tasks):
  return jax.tree.map(lambda *x: jnp.stack(x), *tasks)


def _open_room(env):
  walls = np.ones(env.grid_shape, bool)
  walls[1:-1, 1:-1] = False
  return walls


def _wall_distance(walls, xy):
  """Distance from points xy [..., 2] to the nearest wall cell (unit boxes), numpy."""
  rows, _ = walls.shape
  r, c = np.nonzero(walls)
  centres = np.stack([c + 0.5, rows - r - 0.5], -1)
  q = np.abs(xy[..., None, :] - centres) - 0.5
  out = np.linalg.norm(np.maximum(q, 0), axis=-1) + np.minimum(q.max(-1), 0)
  return out.min(-1)


@pytest.fixture(scope="module")
def first_batch(env, rollout):
  """Episodes 0-4: Medium (padded to the 10x10 grid) under full control right, left, up, down, diagonal.
  Episodes 5-7: an open room, full control right, with default, low-mass and high-damping dynamics."""
  medium = mazes.pad(mazes.parse(mazes.MEDIUM), env.grid_shape)
  start = env.cell_centre(jnp.int32(2 * env.grid_shape[1] + 5))     # row 2, col 5: a free cell of Medium
  assert not medium[2, 5]
  room = _open_room(env)
  room_start = env.cell_centre(jnp.int32(5 * env.grid_shape[1] + 1))
  tasks = [env.make_task(medium, start, start + 3.0) for _ in range(5)]
  tasks += [shifts.get(name).apply_task(env.make_task(room, room_start, room_start + 3.0))
            for name in ("clean", "low_mass", "high_damping")]
  dirs = np.array([[1, 0], [-1, 0], [0, 1], [0, -1], [1, 1], [1, 0], [1, 0], [1, 0]], np.float32)
  actions = np.broadcast_to(dirs[:, None], (BATCH, STEPS, 2))
  out = rollout(_stack(tasks), jnp.asarray(actions))
  return dict(medium=medium, room=room, start=np.asarray(start), room_start=np.asarray(room_start),
              xy=np.asarray(out[0]), success=np.asarray(out[1]), obs=out[2], goal_obs=out[3])


def test_registered_in_both_registries():
  for name in MAZE_NAMES:
    assert name in envs.names()
  env = brax.envs.get_environment("pointmaze_umaze", image_size=IMAGE)
  assert isinstance(env, maze.PointMaze) and env.grid_shape == (5, 5)
  assert envs.make("pointmaze_large", image_size=IMAGE).grid_shape == (9, 12)


@pytest.mark.parametrize("kwargs,match", [
    (dict(layouts="nope"), "valid names"),
    (dict(goal_rule="manhattan"), "valid rules"),
    (dict(goal_band="huge"), "valid bands"),
    (dict(jitter=0.45), "jitter"),
    (dict(layouts="###\n#X#\n###"), "Unknown maze characters"),
    (dict(layouts="#####\n#OOO#\n#####", goal_rule="bfs", goal_band="far"), "No start/goal pair"),
])
def test_bad_kwargs_raise(kwargs, match):
  with pytest.raises(ValueError, match=match):
    maze.PointMaze(image_size=IMAGE, **kwargs)


def test_walls_stop_the_ball(first_batch):
  walls, xy = first_batch["medium"], first_batch["xy"][:5]
  # Never inside a wall (allowing MuJoCo's soft-contact penetration of a few millimetres).
  assert _wall_distance(walls, xy).min() > maze.BALL_RADIUS - 0.02
  # Full control for many steps ends pressed against a wall, not far beyond the start.
  final = _wall_distance(walls, xy[:, -1])
  np.testing.assert_allclose(final, maze.BALL_RADIUS, atol=0.02)
  # Row 2 of Medium is free from col 4 to 6: pushing right stops at x = 7 - r, left at x = 4 + r.
  assert abs(xy[0, -1, 0] - (7.0 - maze.BALL_RADIUS)) < 0.02
  assert abs(xy[1, -1, 0] - (4.0 + maze.BALL_RADIUS)) < 0.02
  # The same push in the open room travels much farther (the walls did the stopping).
  assert first_batch["xy"][5, -1, 0] - first_batch["room_start"][0] > xy[0, -1, 0] - first_batch["start"][0]


def test_mass_and_damping_scales_change_how_far_the_ball_goes(first_batch):
  xy, x0 = first_batch["xy"][5:], first_batch["room_start"][0]
  k = 6                                          # steps before any of them reaches the far wall
  assert np.all(xy[:, k, 0] < first_batch["room"].shape[1] - 1.5)
  default, low_mass, high_damping = xy[:, k, 0] - x0
  assert low_mass > default * 1.2
  assert high_damping < default * 0.8


def test_observations(env, first_batch):
  obs, goal = first_batch["obs"], first_batch["goal_obs"]
  chex.assert_shape(obs["pixels"], (BATCH, IMAGE, IMAGE, 3))
  chex.assert_shape(obs["proprio"], (BATCH, 4))
  assert obs["pixels"].dtype == jnp.uint8 and np.all(np.isfinite(np.asarray(obs["proprio"])))
  # The goal image is the ball drawn at the goal.
  task = env.make_task(first_batch["medium"], first_batch["start"], first_batch["start"] + 3.0)
  expected = jax.jit(env.render)(jnp.concatenate([task.goal, jnp.zeros(2)]), task)
  np.testing.assert_array_equal(np.asarray(goal["pixels"][0]), np.asarray(expected))


def test_mixed_batch_does_not_recompile(env, rollout, first_batch):
  """A second batch with other layouts (training and held-out) and other scales reuses the compile."""
  del first_batch                                     # makes sure the first call happened
  keys = jax.random.split(jax.random.key(3), BATCH)
  tasks = jax.vmap(env.sample_task)(keys)
  held_out = envs.make("pointmaze_diverse", image_size=IMAGE, layouts="test")
  other = jax.vmap(held_out.sample_task)(keys)
  mix = jnp.arange(BATCH) % 2 == 0
  tasks = jax.tree.map(lambda a, b: jnp.where(mix.reshape((-1,) + (1,) * (a.ndim - 1)), a, b), tasks, other)
  tasks = tasks.replace(mass_scale=jnp.linspace(0.2, 2.0, BATCH),
                        damping_scale=jnp.linspace(20.0, 1.0, BATCH))
  xy, success, _, _ = rollout(tasks, jnp.zeros((BATCH, STEPS, 2)))
  assert len(set(np.asarray(tasks.layout_id).tolist())) > 2
  assert np.all(np.isfinite(np.asarray(xy)))
  assert success.shape == (BATCH, STEPS)


def test_layout_split_is_fixed_disjoint_and_connected():
  layouts = mazes.diverse_layouts()
  assert layouts.shape == (30, 10, 10)
  train, train_ids = mazes.diverse_split("train")
  test, test_ids = mazes.diverse_split("test")
  assert len(train) == 25 and len(test) == 5 and not set(train_ids) & set(test_ids)
  assert not {w.tobytes() for w in train} & {w.tobytes() for w in test}
  assert len({w.tobytes() for w in layouts}) == 30
  for w in layouts:
    assert mazes.is_connected(w)
    assert w[0].all() and w[-1].all() and w[:, 0].all() and w[:, -1].all()
  np.testing.assert_array_equal(layouts, mazes._diverse_cached.__wrapped__())   # same seed, same mazes
  for name in mazes.REFERENCE:
    assert mazes.is_connected(mazes.parse(mazes.REFERENCE[name]))
  with pytest.raises(ValueError, match="valid splits"):
    mazes.diverse_split("val")


def test_is_connected_detects_a_split_maze():
  walls = mazes.parse("#####\n#O#O#\n#####")
  assert not mazes.is_connected(walls)
  d = mazes.bfs_distances(mazes.parse(mazes.U_MAZE), (1, 1))
  assert d[3, 1] == 6 and d[2, 1] == -1


@pytest.mark.parametrize("band", ["near", "mid", "far"])
def test_bfs_goal_distances_fall_in_band(band):
  env = envs.make("pointmaze_diverse", image_size=IMAGE, goal_band=band)
  tasks = jax.jit(jax.vmap(env.sample_task))(jax.random.split(jax.random.key(1), 64))
  lo, hi = mazes.BANDS[band]
  for i in range(64):
    walls = np.asarray(tasks.walls[i])
    s, g = np.asarray(tasks.start[i]), np.asarray(tasks.goal[i])
    rs, cs = (int(v) for v in env.cell_of(jnp.asarray(s)))
    rg, cg = (int(v) for v in env.cell_of(jnp.asarray(g)))
    assert lo <= mazes.bfs_distances(walls, (rs, cs))[rg, cg] <= hi
    for p, (r, c) in ((s, (rs, cs)), (g, (rg, cg))):
      centre = np.asarray(env.cell_centre(jnp.int32(r * walls.shape[1] + c)))
      assert np.all(np.abs(p - centre) <= 0.1 + 1e-6)
  assert set(np.asarray(tasks.layout_id).tolist()) <= set(mazes.DIVERSE_TRAIN)


def test_medium_goals_are_far_enough_and_jittered():
  env = envs.make("pointmaze_medium", image_size=IMAGE)
  tasks = jax.jit(jax.vmap(env.sample_task))(jax.random.split(jax.random.key(2), 128))
  cells = [np.array([[int(v) for v in env.cell_of(p)] for p in ps]) for ps in (tasks.start, tasks.goal)]
  assert np.all(np.linalg.norm(cells[0] - cells[1], axis=-1) >= 3.0)
  walls = mazes.parse(mazes.MEDIUM)
  assert not walls[cells[0][:, 0], cells[0][:, 1]].any() and not walls[cells[1][:, 0], cells[1][:, 1]].any()
  offsets = np.asarray(tasks.goal) - np.stack([cells[1][:, 1] + 0.5, 8 - cells[1][:, 0] - 0.5], -1)
  assert np.abs(offsets).max() <= 0.25 + 1e-6 and np.abs(offsets).max() > 0.1


def test_explore_actions_have_momentum():
  def chain(key, momentum):
    keys = jax.random.split(key, 2000)
    e = envs.make("pointmaze_diverse", image_size=IMAGE, explore_momentum=momentum)

    def body(a, k):
      a = e.explore_action(k, None, a)
      return a, a

    return jax.lax.scan(body, jnp.zeros(2), keys)[1]

  smooth, white = (np.asarray(chain(jax.random.key(4), m)) for m in (0.9, 0.0))
  for acts in (smooth, white):
    assert np.all(np.abs(acts) <= 1.0)
  corr = [np.corrcoef(a[:-1, 0], a[1:, 0])[0, 1] for a in (smooth, white)]
  assert corr[0] > 0.5 and abs(corr[1]) < 0.1


def test_offline_collection_pipeline_runs_on_mazes(env):
  """The shared collector (explore_action under vmap x scan) produces moving trajectories in many layouts."""
  from adajepa_jax.data import collect
  episodes, length = 6, 30
  traj = collect.collect(env, jax.random.split(jax.random.key(0), episodes), length)
  chex.assert_shape(traj["pixels"], (episodes, length + 1, IMAGE, IMAGE, 3))
  chex.assert_shape(traj["actions"], (episodes, length, 2))
  actions, states = np.asarray(traj["actions"]), np.asarray(traj["states"])
  assert np.all(np.abs(actions) <= 1.0) and np.all(np.isfinite(states))
  np.testing.assert_array_equal(states[..., :4], np.asarray(traj["proprio"]))
  assert set(np.asarray(traj["task_ids"]).tolist()) <= set(mazes.DIVERSE_TRAIN)
  assert len(set(np.asarray(traj["task_ids"]).tolist())) > 1
  layouts, visited = mazes.diverse_layouts(), 0
  for e in range(episodes):
    xy = states[e, :, :2]
    assert np.linalg.norm(xy - xy[0], axis=-1).max() > maze.BALL_RADIUS      # the ball moves
    cells = {tuple(int(v) for v in env.cell_of(jnp.asarray(p))) for p in xy}
    assert not any(layouts[traj["task_ids"][e]][c] for c in cells)          # and never enters a wall
    visited += len(cells)
  assert visited > episodes                                   # on average it leaves its start cell


def test_maze_data_fingerprint_names_the_physics_version(env, tmp_path):
  """Data collected under older maze physics is not resumed: the fingerprint includes the version."""
  from adajepa_jax.data import collect, storage
  manifest = collect.collect_to_dir(env, str(tmp_path), episodes=2, length=3)
  settings = dict(episodes=2, length=3, seed=0, shard_episodes=2, image_size=int(env.image_size))
  assert env.physics_version >= 1
  assert manifest["fingerprint"] == storage.fingerprint(dict(settings, physics_version=env.physics_version))
  assert manifest["fingerprint"] != storage.fingerprint(settings)


def test_task_with_another_grid_is_rejected(env):
  small = env.make_task(mazes.parse(mazes.U_MAZE), [1.5, 3.5], [3.5, 1.5])
  with pytest.raises(ValueError, match="grid"):
    env.reset_to(jax.random.key(0), small)


CROSS_STEPS = 40           # two periods of the scenarios' oscillating actions
CROSS_TOL = 1e-3           # cells: MJX (float32) vs MuJoCo C (float64) position error, open loop
CROSS_STEP_TOL = 1e-4      # cells: after one step of MuJoCo C from MJX's state (the old 0.002 margin: ~3e-3)


@pytest.fixture(scope="module")
def cross(env):
  """The three cross-check scenarios in Medium (padded to the env's grid), default and low-mass dynamics."""
  walls = mazes.pad(mazes.parse(mazes.MEDIUM), env.grid_shape)
  out = {}
  for name, (start, actions) in maze.cross_check_scenarios(walls, CROSS_STEPS, seed=1).items():
    task = env.make_task(walls, start, start)
    out[name] = env.cross_check(task, actions)
    out[name + "_low_mass"] = env.cross_check(shifts.get("low_mass").apply_task(task), actions)
  return walls, out


@pytest.mark.parametrize("scenario", maze.CROSS_CHECK_SCENARIOS)
def test_cross_check_mjx_matches_mujoco_c(cross, scenario):
  walls, runs = cross
  run = runs[scenario]
  chex.assert_shape(run["mjx"], (CROSS_STEPS + 1, 4))
  assert run["error"].max() < CROSS_TOL, run["error"].max()
  for r in (run, runs[scenario + "_low_mass"]):      # the low-mass ball's contacts are as soft in both
    assert r["step_error"].max() < CROSS_STEP_TOL, r["step_error"].max()
  # The scenarios do what they say, so the agreement is not vacuous.
  gap = _wall_distance(walls, run["c"][:, :2]) - maze.BALL_RADIUS
  if scenario == "free":
    assert run["contacts"].max() == 0 and gap.min() > 0.1
  elif scenario == "slide":
    assert np.all(run["contacts"][5:] >= 1) and np.all(np.abs(gap[5:]) < 0.01)   # pressed on the wall
    along = np.ptp(run["c"][:, :2], axis=0).max()
    assert along > 0.5                                   # and sliding along it across the boxes' joint
  else:
    assert run["contacts"].max() >= 2 and gap.min() < 0.0      # both walls of the corner at once


def test_mj_model_for_mirrors_the_mjx_model(env):
  """The C model has a box per wall cell and the same ball as `model_for` (mass, damping, inverse weights)."""
  walls = mazes.pad(mazes.parse(mazes.U_MAZE), env.grid_shape)
  task = env.make_task(walls, [1.5, 8.5], [3.5, 6.5]).replace(
      mass_scale=jnp.float32(0.2), damping_scale=jnp.float32(20.0))
  mj, mx = env.mj_model_for(task), env.model_for(task)
  assert mj.ngeom == walls.sum() + 1
  for field in ("body_mass", "body_invweight0", "dof_damping", "dof_invweight0"):
    np.testing.assert_allclose(np.asarray(getattr(mx, field)), getattr(mj, field), rtol=1e-5, err_msg=field)
  with pytest.raises(ValueError, match="inner corner"):
    maze.cross_check_scenarios(mazes.parse("###\n#O#\n###"), 4)


def test_simulate_mujoco_replays_the_cross_check(env, cross):
  """The generic host rollout (`HostPhysics.simulate_mujoco`) steps the same C model as the cross-check, so on
  the corner scenario (both walls touched) it gives the cross-check's MuJoCo C trajectory."""
  from types import SimpleNamespace
  walls, runs = cross
  start, actions = maze.cross_check_scenarios(walls, CROSS_STEPS, seed=1)["corner"]
  task = env.make_task(walls, start, start)
  state = SimpleNamespace(info={"task": task, "state": jnp.concatenate([jnp.asarray(start, jnp.float32),
                                                                       jnp.zeros(2)])})
  host = np.asarray(env.simulate_mujoco(state, jnp.asarray(actions, jnp.float32)))
  np.testing.assert_allclose(host, runs["corner"]["c"][1:], atol=1e-5)


def test_goal_cost_is_distance_in_success_radii(env):
  goal = jnp.array([2.0, 3.0, 0.0, 0.0])
  states = jnp.array([[2.0, 3.0, 1.0, 1.0], [2.0 + maze.SUCCESS_DISTANCE, 3.0, 0.0, 0.0], [4.0, 3.0, 0.0, 0.0]])
  np.testing.assert_allclose(env.goal_cost(states, goal), [0.0, 1.0, (2.0 / maze.SUCCESS_DISTANCE) ** 2],
                             rtol=1e-6)


def test_task_env_declares_every_member_callers_use():
  """A task missing a declared member fails at construction, naming it, not late inside a program."""
  from adajepa_jax.envs import base

  class NoCost(base.TaskEnv):
    sample_task = reset_to = step = render = simulate = lambda *a: None

  with pytest.raises(TypeError, match="goal_cost"):
    NoCost()
  assert isinstance(env_medium := envs.make("pointmaze_medium", image_size=IMAGE), base.HostPhysics)
  assert not isinstance(env_medium, base.ExpertPolicy)
  assert isinstance(envs.make("pusht", image_size=IMAGE), base.ExpertPolicy)


@pytest.mark.slow
def test_oracle_plans_on_a_maze():
  """The planning ceiling runs on the maze through the one episode program, with MJX or MuJoCo C rollouts,
  on the same episodes (slow: about a minute of compilation)."""
  from adajepa_jax.configs import pointmaze
  from adajepa_jax.mpc import episode_keys, evaluate, make_oracle_episode
  cfg = pointmaze.get_config("tiny")
  cfg.plan.cem.update(samples=16, elites=4, iterations=2)
  cfg.eval.replans = 2
  env = envs.make(cfg.task.name, **cfg.task.kwargs)
  keys = episode_keys(0, 1, 2)
  runs = {p: evaluate(make_oracle_episode(env, cfg, physics=p), None, keys, mesh=None) for p in ("mjx", "mujoco")}
  np.testing.assert_array_equal(runs["mjx"].goal_state, runs["mujoco"].goal_state)
  np.testing.assert_array_equal(runs["mjx"].states[:, 0], runs["mujoco"].states[:, 0])
  for r in runs.values():
    assert r.states.shape == (2, 3, env.state_size) and np.all(np.isfinite(r.per_replan["plan_cost"]))
