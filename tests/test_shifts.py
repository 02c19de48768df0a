"""Shift suite: each visual shift does what it claims, colour swaps touch one object, task and env shifts."""
import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from adajepa_jax import envs
from adajepa_jax.envs import mazes, shifts

IMAGE = 32
PAPER_CONDITIONS = ("clean", "blur", "snp1", "snp5", "dark", "red_block", "red_anchor", "red_agent",
                    "low_mass", "high_damping", "seen_shapes", "unseen_shapes", "seen_layouts",
                    "unseen_layouts")


@pytest.fixture(scope="module")
def maze_env():
  return envs.make("pointmaze_diverse", image_size=IMAGE)


@pytest.fixture(scope="module")
def maze_scene(maze_env):
  task = maze_env.sample_task(jax.random.key(0))
  state = jnp.concatenate([task.start, jnp.zeros(2)])
  render = jax.jit(maze_env.render)
  return task, state, render


@pytest.fixture(scope="module")
def images(maze_env, maze_scene):
  """uint8[4, 32, 32, 3] maze frames at different ball positions (walls give sharp edges)."""
  task, _, render = maze_scene
  xy = np.array([[1.5, 1.5], [3.5, 5.5], [6.5, 2.5], [8.5, 8.5]], np.float32)
  return jnp.stack([render(jnp.concatenate([p, jnp.zeros(2)]), task) for p in xy])


def _hf_energy(x):
  """Energy of the discrete Laplacian (high frequencies) of images [..., H, W, C]."""
  x = np.asarray(x, np.float64)
  lap = 4 * x[..., 1:-1, 1:-1, :] - x[..., :-2, 1:-1, :] - x[..., 2:, 1:-1, :] - x[..., 1:-1, :-2, :] \
      - x[..., 1:-1, 2:, :]
  return float(np.mean(lap ** 2))


def test_registry_lists_the_paper_conditions():
  for name in PAPER_CONDITIONS:
    assert shifts.get(name).name == name
  assert set(PAPER_CONDITIONS) <= set(shifts.names())
  with pytest.raises(ValueError, match="valid shifts: clean, blur"):
    shifts.get("fog")
  with pytest.raises(ValueError, match="already registered"):
    shifts.register(shifts.Condition("blur", "visual"))
  with pytest.raises(ValueError, match="valid families"):
    shifts.Condition("x", "weather")
  assert "red_block" not in shifts.applicable("pointmaze_medium")
  maze_shifts = set(shifts.applicable("pointmaze_diverse"))
  assert {"seen_layouts", "unseen_layouts", "low_mass", "red_agent"} <= maze_shifts
  assert {"seen_shapes", "unseen_shapes", "red_block"} <= set(shifts.applicable("pushobj"))
  assert "unseen_shapes" not in shifts.applicable("pusht")
  with pytest.raises(ValueError, match="does not apply"):
    shifts.make_env("pusht", "unseen_layouts")


def test_clean_is_identity(maze_env, images, maze_scene):
  clean = shifts.get("clean")
  np.testing.assert_array_equal(clean.apply_pixels(images, jax.random.key(0)), images)
  task = maze_scene[0]
  chex.assert_trees_all_equal(clean.apply_task(task), task)
  key = jax.random.key(5)
  wrapped = shifts.make_env("pointmaze_diverse", "clean", image_size=IMAGE)
  a, b = maze_env.reset(key), wrapped.reset(key)
  np.testing.assert_array_equal(a.obs["pixels"], b.obs["pixels"])
  np.testing.assert_array_equal(a.info["goal_obs"]["pixels"], b.info["goal_obs"]["pixels"])


def test_blur_lowers_high_frequency_energy(images, maze_env, maze_scene):
  blurred = shifts.gaussian_blur(images, None, sigma=2.0)
  assert blurred.dtype == jnp.uint8 and blurred.shape == images.shape
  assert _hf_energy(blurred) < 0.5 * _hf_energy(images)
  # Edge padding keeps the mean brightness (zero padding would darken the borders).
  assert abs(float(jnp.mean(blurred.astype(jnp.float32)) - jnp.mean(images.astype(jnp.float32)))) < 2.0
  # The registered condition scales sigma with the image size; weaker at 32 px than at 64 px but it blurs.
  big = envs.make("pointmaze_diverse", image_size=64)
  task, state, _ = maze_scene
  frame = jax.jit(big.render)(state, task)
  cond = shifts.get("blur")
  assert _hf_energy(cond.apply_pixels(frame, jax.random.key(0))) < _hf_energy(frame)
  assert _hf_energy(shifts.gaussian_blur(frame, None, 2.0, reference_size=32)) < _hf_energy(
      cond.apply_pixels(frame, jax.random.key(0)))


@pytest.mark.parametrize("name,density", [("snp1", 0.01), ("snp5", 0.05)])
def test_salt_and_pepper_turns_density_white_and_density_black(name, density):
  grey = jnp.full((64, IMAGE, IMAGE, 3), 128, jnp.uint8)
  out = np.asarray(shifts.get(name).apply_pixels(grey, jax.random.key(1)))
  n = grey.shape[0] * IMAGE * IMAGE
  changed = np.any(out != 128, axis=-1)
  white, black = np.all(out == 255, axis=-1), np.all(out == 0, axis=-1)
  assert np.array_equal(changed, white | black)             # whole pixels, only white or black
  tol = 4.0 * np.sqrt(density * (1 - density) / n)          # 4 binomial standard deviations
  assert abs(white.mean() - density) < tol                  # the authors' snp1: 1% white AND 1% black
  assert abs(black.mean() - density) < tol
  assert abs(changed.mean() - 2 * density) < 2 * tol
  again = shifts.get(name).apply_pixels(grey, jax.random.key(2))
  assert not np.array_equal(out, np.asarray(again))          # fresh noise per key


def test_salt_and_pepper_refuses_a_density_over_half():
  with pytest.raises(ValueError, match="0.6"):
    shifts.salt_and_pepper(jnp.zeros((4, 4, 3), jnp.uint8), jax.random.key(0), density=0.6)


def test_dark_halves_mean_intensity(images):
  out = shifts.get("dark").apply_pixels(images, jax.random.key(0))
  ratio = float(jnp.mean(out.astype(jnp.float32)) / jnp.mean(images.astype(jnp.float32)))
  assert abs(ratio - 0.5) < 0.5 / float(jnp.mean(images.astype(jnp.float32)))   # rounding only


def _changed_leaves(a, b):
  flat_a = jax.tree_util.tree_flatten_with_path(a)[0]
  flat_b = jax.tree.leaves(b)
  return {jax.tree_util.keystr(p) for (p, x), y in zip(flat_a, flat_b) if not np.array_equal(x, y)}


def test_red_agent_changes_only_the_ball_in_mazes(maze_env, maze_scene):
  task, state, render = maze_scene
  red = shifts.get("red_agent").apply_task(task)
  assert _changed_leaves(task, red) == {".colours['agent']"}
  diff = np.any(np.asarray(render(state, task)) != np.asarray(render(state, red)), axis=-1)
  assert diff.any()
  assert not np.any(diff & ~np.asarray(maze_env.agent_mask(state)))


@pytest.mark.parametrize("name,part", [("red_block", "block"), ("red_anchor", "anchor"),
                                       ("red_agent", "agent")])
def test_push_colour_swaps_change_only_their_object(name, part):
  env = envs.make("pushobj", image_size=IMAGE)
  task = env.sample_task(jax.random.key(0))
  red = shifts.get(name).apply_task(task)
  assert _changed_leaves(task, red) == {f".colours['{part}']"}
  # Agent and block placed off the anchor so all three are visible.
  state = jnp.array([1.0, 1.0, 3.9, 1.3, 0.3, 0.0, 0.0])
  render = jax.jit(env.render)
  base = np.asarray(render(state, task))
  diff = np.any(base != np.asarray(render(state, red)), axis=-1)
  # Where the object shows: pixels that change when it is painted in the background colour instead.
  hidden = task.replace(colours={**task.colours, part: task.colours["background"]})
  region = np.any(base != np.asarray(render(state, hidden)), axis=-1)
  assert diff.any() and not np.any(diff & ~region)
  assert np.all(np.asarray(render(state, red))[diff][:, 0] >= base[diff][:, 0])   # redder where changed


def test_dynamics_conditions_scale_only_their_parameter(maze_scene):
  task = maze_scene[0]
  for name, field, value in (("low_mass", "mass_scale", 0.2), ("high_damping", "damping_scale", 20.0)):
    shifted = shifts.get(name).apply_task(task)
    assert _changed_leaves(task, shifted) == {f".{field}"}
    np.testing.assert_allclose(getattr(shifted, field), value)
  both = shifts.get("low_mass+high_damping").apply_task(task)
  np.testing.assert_allclose([both.mass_scale, both.damping_scale], [0.2, 20.0])


def test_layout_and_shape_conditions_choose_the_sets():
  unseen = shifts.make_env("pointmaze_diverse", "unseen_layouts", image_size=IMAGE)
  seen = shifts.make_env("pointmaze_diverse", "seen_layouts", image_size=IMAGE)
  keys = jax.random.split(jax.random.key(0), 32)
  ids_unseen = set(np.asarray(jax.vmap(unseen.sample_task)(keys).layout_id).tolist())
  ids_seen = set(np.asarray(jax.vmap(seen.sample_task)(keys).layout_id).tolist())
  assert ids_unseen <= set(mazes.DIVERSE_HELDOUT) and ids_seen <= set(mazes.DIVERSE_TRAIN)
  assert len(ids_unseen) > 1
  from adajepa_jax.envs import shapes as shapes_lib
  assert shifts.get("unseen_shapes").env_kwargs["shapes"] == tuple(shapes_lib.TEST_SHAPES)
  assert shifts.get("seen_shapes").env_kwargs["shapes"] == tuple(shapes_lib.TRAIN_SHAPES)
  with pytest.raises(ValueError, match="layouts"):
    shifts.get("seen_layouts+unseen_layouts")


def test_shifted_env_corrupts_observations_and_goals_and_composes():
  user = shifts.Condition("snp10", "visual", visual=functools.partial(shifts.salt_and_pepper, density=0.1),
                          tasks=("pointmaze_*",))
  cond = shifts.compose(user, "low_mass")
  env = cond.make_env("pointmaze_diverse", image_size=IMAGE)
  assert isinstance(env, envs.base.TaskEnv)
  clean = envs.make("pointmaze_diverse", image_size=IMAGE)
  key = jax.random.key(7)
  s, c = jax.jit(env.reset)(key), clean.reset(key)
  assert float(s.info["task"].mass_scale) == pytest.approx(0.2)
  pairs = ((s.obs["pixels"], c.obs["pixels"]), (s.info["goal_obs"]["pixels"], c.info["goal_obs"]["pixels"]))
  for a, b in pairs:
    frac = np.mean(np.any(np.asarray(a) != np.asarray(b), axis=-1))
    assert 0.1 < frac < 0.3   # 10% white + 10% black, less the pixels already white or black
  s2 = jax.jit(env.step)(s, jnp.array([1.0, 0.0]))
  assert not np.array_equal(s2.info["shift_key"], s.info["shift_key"])
  np.testing.assert_array_equal(s2.info["goal_obs"]["pixels"], s.info["goal_obs"]["pixels"])


@pytest.mark.slow
def test_gallery_script_writes_a_png(tmp_path):
  """End to end: experiments/gallery.py writes <workdir>/gallery.png (run as a script, as README does)."""
  import os
  import subprocess
  import sys

  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
  subprocess.run([sys.executable, os.path.join(root, "experiments", "gallery.py"), f"--workdir={tmp_path}",
                  "--tasks=pointmaze_umaze,pusht", "--shifts=clean,dark,red_block", "--image_size=32"],
                 check=True, env=env, cwd=root, capture_output=True)
  import imageio.v3 as iio
  image = iio.imread(tmp_path / "gallery.png")
  assert image.ndim == 3 and image.shape[0] > 64 and image.shape[1] > 96


def test_shape_conditions_pick_one_block_in_the_all_shapes_env():
  """`shape_<name>` conditions share one env (all 7 shapes), so one program runs them all; each replaces the
  sampled task's block by its shape, as the env's own table has it."""
  conds = [shifts.get(shifts.shape_condition(n)) for n in shifts.ALL_SHAPES]
  assert conds[3].name == "shape_plus"
  assert len(shifts.group_by_env(conds)) == 1
  env = conds[0].task_env("pushobj", image_size=IMAGE)
  assert env.shape_names == shifts.ALL_SHAPES
  sampled = env.sample_task(jax.random.key(3))
  for i, cond in enumerate(conds):
    picked, table = cond.apply_task(sampled), env.task_for_shape(i)
    for field in ("shape_id", "boxes", "mask", "mass", "inertia", "symmetry"):
      np.testing.assert_array_equal(getattr(picked, field), getattr(table, field), err_msg=f"{cond.name} {field}")
  with pytest.raises(ValueError, match="does not apply"):
    shifts.get("shape_T").check_applies("pusht")
