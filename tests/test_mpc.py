"""The MPC episode (one lax.scan over replans) and batched, sharded evaluation, on the tiny PushT config."""
import chex
import jax
import numpy as np
import pytest

from adajepa_jax.eval import build
from adajepa_jax.envs import shifts
from adajepa_jax.mpc import chunk_size, evaluate, make_episode, make_mesh, with_conditions

SEEDS, EPISODES = 2, 2   # conftest's tiny_pusht keys: 4 episodes, divisible by its 2 host devices
CONDITIONS = ("clean", "blur", "low_mass")
BATCH_SIZE = 6           # the 3 x 4 episodes run in two chunks
# tests/test_pipeline.py evaluates the same programs (conditions, episodes, chunks): compilation cache hits.


@pytest.fixture(scope="module")
def results(tiny_pusht):
  """Frozen and adaptive: the 4 episodes under each of CONDITIONS, one sharded program each; and the first
  episode alone through a clean-only adaptive program (fewer episodes than devices: one device)."""
  cfg, env, wm, params, keys = tiny_pusht
  assert len(jax.devices()) == 2, "conftest should give 2 host devices"
  all_keys, ids = with_conditions(keys, len(CONDITIONS))
  out = {"ids": ids}
  for mode in ("frozen", "predlast+enclast"):
    program = make_episode(env, wm, build.mode_config(cfg, mode), CONDITIONS)
    out[mode] = jax.tree.map(np.asarray, evaluate(program, params, all_keys, ids, mesh=make_mesh(),
                                                  batch_size=BATCH_SIZE))
  adaptive = make_episode(env, wm, build.mode_config(cfg, "predlast+enclast"))
  out["single"] = jax.tree.map(np.asarray, evaluate(adaptive, params, keys[:1], mesh=make_mesh()))
  return out


def test_result_shapes(tiny_pusht, results):
  cfg, env, _, _, _ = tiny_pusht
  r = results["predlast+enclast"]
  n, replans = len(CONDITIONS) * SEEDS * EPISODES, cfg.eval.replans
  chex.assert_shape(r.success_any, (n,))
  chex.assert_shape(r.states, (n, replans + 1, env.state_size))
  chex.assert_shape(r.frames, (n, replans + 1, env.image_size, env.image_size, 3))
  for name, v in r.per_replan.items():
    chex.assert_shape(v, (n, replans))
    assert np.all(np.isfinite(v)), name
  np.testing.assert_array_equal(r.condition, results["ids"])
  # Reached-within-budget includes the final step.
  assert np.all(r.success_any >= r.success_final)


def test_sharded_mixed_equals_single_device_clean(results):
  """Episode 0 (clean) of the sharded, chunked program mixing conditions equals the same episode run alone on
  one device by a clean-only program."""
  mixed, single = results["predlast+enclast"], results["single"]
  chex.assert_shape(single.success_any, (1,))
  sharded = jax.tree.map(lambda x: x[:1], mixed).replace(condition=single.condition)
  np.testing.assert_array_equal(sharded.success_any, single.success_any)
  np.testing.assert_array_equal(sharded.frames, single.frames)
  # The partitioned program may fuse and reassociate float ops differently (seen: 1e-4 relative in MJX
  # velocities); discrete outcomes and rendered frames above are exact, continuous values agree to 1e-3.
  chex.assert_trees_all_close(sharded, single, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("mode", ["frozen", "predlast+enclast"])
def test_conditions_apply_to_their_rows(results, mode):
  """Every condition runs the same 4 scenes: blur rows see them blurred, low-mass rows run the lighter block."""
  r, ids = results[mode], results["ids"]
  clean, blur = (jax.tree.map(lambda x: x[ids == i], r) for i in (0, 1))
  blurred = shifts.get("blur").apply_pixels   # deterministic: same scene -> same blurred image
  np.testing.assert_array_equal(blur.goal_pixels, blurred(clean.goal_pixels, jax.random.key(0)))
  np.testing.assert_array_equal(blur.frames[:, 0], blurred(clean.frames[:, 0], jax.random.key(0)))
  np.testing.assert_array_equal(blur.states[:, 0], clean.states[:, 0])
  np.testing.assert_allclose(r.task.mass_scale[ids == 2], 0.2)
  np.testing.assert_allclose(r.task.mass_scale[ids != 2], 1.0)


def test_adaptation_changes_only_what_follows_the_first_update(results):
  frozen, adaptive = results["frozen"], results["predlast+enclast"]
  # Same keys -> same tasks, same initial states and the same first plan (adaptation happens after it).
  np.testing.assert_array_equal(frozen.states[:, :2], adaptive.states[:, :2])
  np.testing.assert_array_equal(frozen.goal_pixels, adaptive.goal_pixels)
  # The frozen program never updates: its error after equals before; the adaptive step lowers the loss of
  # the window it was just trained on (one Adam step at the predictor's lr on a small buffer).
  np.testing.assert_array_equal(frozen.per_replan["pred_error_after"], frozen.per_replan["pred_error_before"])
  before, after = adaptive.per_replan["pred_error_before"], adaptive.per_replan["pred_error_after"]
  assert np.mean(after < before) > 0.8, (before, after)
  assert np.all(adaptive.per_replan["skipped"] == 0)


def test_bad_mode_and_shift_fail_fast(tiny_pusht):
  cfg = tiny_pusht[0]
  with pytest.raises(ValueError, match="valid specs"):
    build.parse_modes(["frozen", "predlast+encmiddle"])
  with pytest.raises(ValueError, match="Unknown"):
    build.check_conditions(cfg.task.name, ["blurry"])


def test_condition_ids_and_batch_size_are_checked(tiny_pusht):
  cfg, env, wm, params, keys = tiny_pusht
  program = make_episode(env, wm, build.mode_config(cfg, "frozen"), ["clean", "blur"])
  assert jax.dtypes.issubdtype(keys.dtype, jax.dtypes.prng_key) and keys.shape == (SEEDS * EPISODES,)
  with pytest.raises(TypeError, match=r"uint32\[4, 2\].*wrap_key_data"):   # raw key data
    evaluate(program, params, jax.random.key_data(keys))
  with pytest.raises(TypeError, match="typed PRNG keys"):
    with_conditions(np.asarray(jax.random.key_data(keys)), 2)
  with pytest.raises(ValueError, match=r"key<fry>\[2, 2\]"):
    evaluate(program, params, keys.reshape(2, 2))
  with pytest.raises(ValueError, match="E >= 1"):
    evaluate(program, params, keys[:0])
  with pytest.raises(ValueError, match="clean, blur"):
    evaluate(program, params, keys, np.full(len(keys), 2))
  with pytest.raises(ValueError, match="batch_size"):
    evaluate(program, params, keys, batch_size=0)
  with pytest.raises(ValueError, match="build different envs"):
    shifts.same_env(["clean", "unseen_shapes"])
  assert shifts.group_by_env(["clean", "seen_shapes", "blur", "unseen_shapes"]) == [
      ["clean", "blur"], ["seen_shapes"], ["unseen_shapes"]]


@pytest.mark.parametrize("episodes,batch_size,multiple,expected", [
    (12, None, 2, 12), (12, 6, 2, 6), (13, 6, 2, 6), (65, 64, 2, 34), (3, 64, 1, 3), (1, 64, 8, 8)])
def test_chunk_size(episodes, batch_size, multiple, expected):
  assert chunk_size(episodes, batch_size, multiple) == expected
