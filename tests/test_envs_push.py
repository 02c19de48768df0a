"""PushT / PushObj: jit + vmap without NaNs, pushing physics, success test, shape rendering, bad input."""
import brax.envs
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from adajepa_jax import envs
from adajepa_jax.envs import push
from adajepa_jax.envs import shapes

IMAGE = 32
BATCH = 4
STEPS = 6


def _stack(trees):
  return jax.tree_util.tree_map(lambda *x: jnp.stack(x), *trees)


@pytest.fixture(scope="module")
def env():
  return envs.make("pushobj", image_size=IMAGE)


@pytest.fixture(scope="module")
def programs(env):
  """One reset program and one rollout program (jit of vmap), compiled once for the module."""
  reset_to = jax.jit(jax.vmap(env.reset_to))

  def rollout(state, actions):   # actions f32[STEPS, A] per episode
    def body(s, a):
      s = env.step(s, a)
      return s, (s.info["state"], s.obs, s.metrics)
    return jax.lax.scan(body, state, actions)

  return reset_to, jax.jit(jax.vmap(rollout))


@pytest.fixture(scope="module")
def mixed(env, programs):
  """A batch of episodes with the env's different shapes (T, L, Z, +) in one compiled program."""
  reset_to, _ = programs
  tasks = _stack([env.task_for_shape(i) for i in range(BATCH)])
  return reset_to(jax.random.split(jax.random.key(0), BATCH), tasks)


def test_registry_and_brax(env):
  assert {"pusht", "pushobj"} <= set(envs.names())
  assert isinstance(brax.envs.get_environment("pusht", image_size=IMAGE), push.PushEnv)
  assert env.shape_names == shapes.TRAIN_SHAPES
  assert envs.make("pusht").shape_names == ("T",)
  with pytest.raises(ValueError, match="pushobj"):
    envs.make("push_nonexistent")


def test_reset_and_step_under_jit_vmap(env, programs, mixed):
  _, rollout = programs
  keys = jax.random.split(jax.random.key(1), BATCH * STEPS).reshape(BATCH, STEPS)
  actions = jax.vmap(jax.vmap(lambda k: jax.random.uniform(k, (2,), minval=-1, maxval=1)))(keys)
  final, (states, obs, metrics) = rollout(mixed, actions)
  assert mixed.obs["pixels"].shape == (BATCH, IMAGE, IMAGE, 3) and mixed.obs["pixels"].dtype == jnp.uint8
  assert obs["proprio"].shape == (BATCH, STEPS, push.PROPRIO_SIZE)
  assert states.shape == (BATCH, STEPS, push.STATE_SIZE)
  assert mixed.info["goal_obs"]["pixels"].shape == (BATCH, IMAGE, IMAGE, 3)
  for tree in (final.info["state"], final.info["goal_state"], obs["proprio"], states, metrics):
    for leaf in jax.tree_util.tree_leaves(tree):
      assert np.all(np.isfinite(np.asarray(leaf)))
  assert set(metrics) >= {"success", "state_error", "angle_error", "contact"}
  np.testing.assert_array_equal(final.info["steps"], STEPS)
  np.testing.assert_array_equal(mixed.info["task"].shape_id, np.arange(BATCH))
  # Everything stays inside the arena.
  xy = np.concatenate([states[..., :2], states[..., 2:4]], -1)
  assert xy.min() > 0 and xy.max() < push.ARENA


def test_pusht_is_pushobj_with_the_t(env):
  """pusht traces under jit/vmap, and its episodes are the pushobj episodes of shape 0 (same model and task),
  which the compiled tests above run; this avoids compiling a second identical program."""
  pusht = envs.make("pusht", image_size=IMAGE)
  keys = jax.random.split(jax.random.key(2), 2)
  state = jax.eval_shape(jax.vmap(pusht.reset), keys)
  nxt = jax.eval_shape(jax.vmap(pusht.step), state, jax.ShapeDtypeStruct((2, 2), jnp.float32))
  assert nxt.obs["pixels"].shape == (2, IMAGE, IMAGE, 3) and nxt.info["state"].shape == (2, push.STATE_SIZE)
  same = jax.tree_util.tree_map(np.array_equal, pusht.task_for_shape(0), env.task_for_shape(0))
  assert all(jax.tree_util.tree_leaves(same))
  assert pusht.mj_model.ngeom == env.mj_model.ngeom and pusht.max_boxes == env.max_boxes


def test_goals_are_reachable_pushes(mixed):
  moved = np.abs(np.asarray(mixed.info["goal_state"][:, 2:5] - mixed.info["state"][:, 2:5])).max(-1)
  assert np.mean(moved > 1e-3) > 0.5
  np.testing.assert_array_equal(mixed.metrics["success"], 0.0)   # the goal needs pushing from the start
  assert not np.array_equal(mixed.obs["pixels"], mixed.info["goal_obs"]["pixels"])
  np.testing.assert_array_equal(mixed.info["goal_contact"], 1.0)  # expert segments are filtered for contact


def test_expert_goals_are_near_and_explore_goals_far():
  """The default goal rule replays the expert-like pusher (goals ~25 reference units of block motion); the
  `explore` rule keeps the old, far goals (25 exploration steps)."""
  def block_motion(rule):
    e = envs.make("pusht", image_size=IMAGE, goal_rule=rule)
    st = jax.jit(jax.vmap(e.reset))(jax.random.split(jax.random.key(5), 16))
    moved = np.linalg.norm(np.asarray(st.info["goal_state"][:, 2:4] - st.info["state"][:, 2:4]), axis=-1)
    return np.median(moved) / push.SCALE, np.mean(np.asarray(st.info["goal_contact"]))
  expert, contact = block_motion("expert")
  explore, _ = block_motion("explore")
  assert 5.0 < expert < 80.0 and contact >= 0.9
  assert explore > 2 * expert
  with pytest.raises(ValueError, match="goal_rule.*expert, explore"):
    envs.make("pusht", goal_rule="demo")


def test_expert_pushes_the_block_towards_its_target(env, mixed):
  def run(state):
    def body(c, k):
      s, prev = c
      a = env.expert_action(k, s, prev)
      return (env.step(s, a), a), None
    (end, _), _ = jax.lax.scan(body, (state, jnp.zeros(2)), jax.random.split(jax.random.key(2), 40))
    return end
  end = jax.jit(jax.vmap(run))(mixed)
  dist = lambda st: np.linalg.norm(np.asarray(st.info["state"][:, 2:4] - st.info["expert_target"][:, :2]), axis=-1)
  assert np.mean(dist(end)) < np.mean(dist(mixed)) - 0.1   # 10+ reference units closer on average


def test_symmetric_shapes_and_symmetry_aware_success(env):
  assert [shapes.symmetry_order(shapes.get(n)) for n in ("T", "L", "Z", "+", "I", "smallT", "square")] == [
      1, 1, 2, 4, 2, 1, 4]
  goal = jnp.array([2.0, 2.0, 2.5, 2.5, 0.3, 0.0, 0.0])
  quarter, half = goal.at[4].add(jnp.pi / 2), goal.at[4].add(jnp.pi)
  assert float(env.success(quarter, goal)) == 0.0 and float(env.success(half, goal)) == 0.0
  assert [float(env.success(quarter, goal, k)) for k in (1, 2, 4)] == [0.0, 0.0, 1.0]
  assert [float(env.success(half, goal, k)) for k in (1, 2, 4)] == [0.0, 1.0, 1.0]
  square = env.with_shape(env.task_for_shape(0), "square")
  assert int(square.symmetry) == 4 and int(env.task_for_shape(0).symmetry) == 1


def test_pushing_moves_block_and_untouched_block_stays(env, programs, mixed):
  """Episode 0: agent left of the block pushing right. Episode 1: agent in a corner moving away."""
  _, rollout = programs
  centre = push.ARENA / 2
  qpos = np.array(mixed.pipeline_state.qpos)
  qpos[:2, 2:5] = [centre, centre, 0.0]
  qpos[0, :2] = [centre - 1.0, centre]
  qpos[1, :2] = [push.WALL + 0.5, push.WALL + 0.5]
  data = mixed.pipeline_state.replace(qpos=jnp.asarray(qpos), qvel=jnp.zeros_like(mixed.pipeline_state.qvel))
  state_vec = jnp.concatenate([data.qpos[:, :5], data.qvel[:, :2]], -1)
  start = mixed.replace(pipeline_state=data, info=dict(mixed.info, state=state_vec))
  actions = np.zeros((BATCH, STEPS, 2), np.float32)
  actions[0, :, 0] = 1.0
  actions[1] = -1.0
  _, (states, _, metrics) = rollout(start, jnp.asarray(actions))
  pushed = np.asarray(states[0, -1, 2:4]) - centre
  assert pushed[0] > 0.05 and abs(pushed[0]) > abs(pushed[1])
  assert metrics["contact"][0].max() == 1.0
  np.testing.assert_allclose(states[1, :, 2:5], np.broadcast_to([centre, centre, 0.0], (STEPS, 3)), atol=1e-6)
  np.testing.assert_array_equal(metrics["contact"][1], 0.0)


def test_success_true_at_goal_false_away(env, mixed):
  goal = mixed.info["goal_state"][0]
  near = goal.at[4].add(0.8 * push.SUCCESS_ANGLE).at[0].add(0.8 * push.SUCCESS_POS)
  far = goal.at[2].add(1.2 * push.SUCCESS_POS)
  turned = goal.at[4].add(1.2 * push.SUCCESS_ANGLE)
  got = [float(env.success(s, goal)) for s in (goal, near, far, turned)]
  assert got == [1.0, 1.0, 0.0, 0.0]
  wrapped_goal = goal.at[4].set(jnp.pi - 0.01)
  assert float(env.success(goal.at[4].set(-jnp.pi + 0.01), wrapped_goal)) == 1.0
  np.testing.assert_array_equal(mixed.metrics["success"],
                                env.success(mixed.info["state"], mixed.info["goal_state"]))


@pytest.mark.parametrize("size", [128])
def test_each_shape_renders_with_area_proportional_to_geometry(size):
  names = shapes.TRAIN_SHAPES + shapes.TEST_SHAPES
  black = (0.0, 0.0, 0.0)
  env = push.PushEnv(shapes=names, image_size=size, colours=dict(
      background=black, wall=black, agent=black, anchor=black, block=(1.0, 1.0, 1.0)))
  state = jnp.array([0.5, 0.5, push.ARENA / 2, push.ARENA / 2, 0.3, 0.0, 0.0])
  render = jax.jit(lambda i: env.render(state, env.task_for_shape(i)))
  pixel_area = (push.ARENA / size) ** 2
  for i, name in enumerate(names):
    area = np.asarray(render(i), np.float64)[..., 0].sum() / 255.0 * pixel_area
    expected = shapes.get(name).area * push.SCALE ** 2
    assert abs(area / expected - 1.0) < 0.03, (name, area, expected)


def test_agent_is_at_least_three_pixels_at_64():
  assert push.AGENT_RADIUS / (push.ARENA / 64) >= 3.0


def test_with_shape_and_user_boxes(env, mixed):
  task = env.with_shape(mixed.info["task"], [(0, 0, 100, 30), (0, 40, 30, 50)])
  assert task.boxes.shape == mixed.info["task"].boxes.shape
  np.testing.assert_array_equal(task.mask.sum(-1), 2)
  np.testing.assert_array_equal(task.shape_id, -1)
  one = envs.make("pushobj", shapes=[(0, 0, 100, 30), (0, 40, 30, 50)], image_size=IMAGE)
  assert one.shape_names == ("custom",) and one.shape_specs[0].num_boxes == 2
  two = envs.make("pushobj", shapes=("T", [(0, 0, 80, 80)]), image_size=IMAGE)
  assert two.shape_names == ("T", "custom")
  spec = shapes.from_boxes([(0, 0, 80, 40)], name="bar")
  assert spec.area == 3200 and np.allclose(spec.com, 0)


@pytest.mark.parametrize("boxes", [[], [(0, 0, -5, 10)], [(0, 0, 10)], [(0, 0, float("nan"), 3)], "T-ish",
                                   [(0, 0, 10, "x")], [(500, 0, 10, 10)]])
def test_malformed_boxes_raise(boxes):
  with pytest.raises(ValueError, match="box|shape"):
    shapes.from_boxes(boxes)


def test_bad_inputs_raise(env, mixed):
  with pytest.raises(ValueError, match="valid shapes: T, L"):
    envs.make("pushobj", shapes=("T", "hexagon"))
  with pytest.raises(ValueError, match="valid shapes"):
    shapes.get("hexagon")
  with pytest.raises(ValueError, match="pushobj"):
    envs.make("pusht", shapes=("L",))
  with pytest.raises(ValueError, match="valid: background"):
    envs.make("pusht", colours={"goal": (1, 0, 0)})
  with pytest.raises(ValueError, match="max_boxes"):
    envs.make("pushobj", shapes=("+",), max_boxes=2)
  one = jax.tree_util.tree_map(lambda x: x[0], mixed)
  with pytest.raises(ValueError, match=r"shape \(2,\)"):
    jax.eval_shape(env.step, one, jnp.zeros((3,)))
  with pytest.raises(ValueError, match=r"shape \(2,\)"):
    jax.eval_shape(env.step, one, jnp.zeros((BATCH, 2)))
