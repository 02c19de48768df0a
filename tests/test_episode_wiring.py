"""How the episode program is wired for adaptation: which leaves become per-episode under vmap, and the cached
trunk features standing in for pixels. Separate from tests/test_mpc.py so that the two files, each compiling
several episode programs, run on different test workers (`make test`: one file per worker)."""
import chex
import jax
import numpy as np

from adajepa_jax.eval import build
from adajepa_jax.mpc import evaluate, make_episode


def test_batched_adaptive_episodes_share_frozen_weights(tiny_pusht):
  """Under vmap over episodes only the adapted leaves become per-episode: frozen conv weights stay shared, so
  the encoder's convolutions are not lowered as grouped (per-episode-kernel) convolutions."""
  import re
  cfg, env, wm, params, keys = tiny_pusht
  program = make_episode(env, wm, build.mode_config(cfg, "predlast+enclast"), record_frames=False)
  text = jax.jit(jax.vmap(lambda k: program.run(params, k))).lower(keys).as_text()
  convs = re.findall(r"stablehlo\.convolution.*", text)
  assert convs
  groups = [int(m) for c in convs for m in re.findall(r"feature_group_count = (\d+)", c)]
  assert groups and all(g == 1 for g in groups), groups


def test_cached_trunk_features_match_re_encoding_pixels(tiny_pusht):
  """With a frozen trunk the episode keeps frames as trunk features; a spec that adapts the trunk keeps pixels
  and re-encodes them. With the trunk's learning rate at zero the two programs compute the same episode."""
  cfg, env, wm, params, keys = tiny_pusht
  params = jax.tree.map(lambda x: x, params)
  params["predictor"]["out_proj"]["kernel"] = 0.1 * jax.random.normal(
      jax.random.key(7), params["predictor"]["out_proj"]["kernel"].shape)   # gradients reach the blocks
  runs = {}
  for spec in ("predlast", "predlast+encfirst"):
    c = build.mode_config(cfg, spec)
    c.adapt.lr_encoder = 0.0
    program = make_episode(env, wm, c, record_frames=False)
    carry = jax.eval_shape(program.init, params, keys[0])   # traced, not compiled
    assert set(carry.model.context.obs) == ({"features", "proprio"} if spec == "predlast" else {"pixels", "proprio"})
    assert set(carry.model.buffer.windows) >= set(carry.model.context.obs)
    runs[spec] = jax.tree.map(np.asarray, evaluate(program, params, keys[:2], mesh=None))
  cached, pixels = runs["predlast"], runs["predlast+encfirst"]
  np.testing.assert_array_equal(cached.success_any, pixels.success_any)
  chex.assert_trees_all_close(cached.per_replan, pixels.per_replan, rtol=1e-4, atol=1e-5)
  chex.assert_trees_all_close(cached.states, pixels.states, rtol=1e-4, atol=1e-5)
  assert np.all(cached.per_replan["pred_error_after"] != cached.per_replan["pred_error_before"])
