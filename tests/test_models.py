"""World model: shapes of all variants, jit == eager, causality, rollout consistency, LoRA, vmap, paper scale."""
import functools

import chex
import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from adajepa_jax import models
from adajepa_jax.configs import pusht
from adajepa_jax.models import lora

IMG, P, A, HIST, B = 32, 4, 10, 3, 2
SPEC = dict(image_size=IMG, proprio_size=P, action_size=A, history=HIST)
VARIANTS = [("resnet", "transformer"), ("resnet", "mlp"), ("spatial", "transformer"), ("spatial", "mlp")]


def _cfg(encoder="resnet", predictor="transformer", **kw):
  cfg = pusht.get_config("tiny")
  cfg.model.update(encoder=encoder, predictor=predictor, **kw)
  return cfg.model


def _batch(key, b=B, t=HIST + 1):
  k1, k2, k3 = jax.random.split(key, 3)
  return {"pixels": jax.random.randint(k1, (b, t, IMG, IMG, 3), 0, 256).astype(jnp.uint8),
          "proprio": jax.random.normal(k2, (b, t, P)),
          "actions": jax.random.uniform(k3, (b, t - 1, A), minval=-1, maxval=1)}


@pytest.fixture(scope="module", params=VARIANTS, ids=["-".join(v) for v in VARIANTS])
def variant(request):
  wm = models.make_world_model(_cfg(*request.param, decoder=True), SPEC)
  params = wm.init(jax.random.key(0))
  return request.param, wm, params


def test_shapes_and_names(variant):
  (encoder, predictor), wm, params = variant
  n = 1 if encoder == "resnet" else (IMG // 4) ** 2
  d = 16 + 10
  assert (wm.num_tokens, wm.latent_dim, wm.visual_dim) == (n, d, 16)
  batch = _batch(jax.random.key(1))
  z = wm.encode(params, {"pixels": batch["pixels"], "proprio": batch["proprio"]})
  chex.assert_shape(z, (B, HIST + 1, n, d))
  chex.assert_shape(wm.predict(params, z[:, :-1], batch["actions"]), (B, HIST, n, d))
  for horizon in (1, 5):
    chex.assert_shape(wm.rollout(params, z[:, :2], batch["actions"][:, :1], jnp.zeros((B, horizon, A))),
                      (B, horizon, n, d))
  chex.assert_shape(wm.decode(params, z), (B, HIST + 1, IMG, IMG, 3))
  loss, metrics = wm.loss(params, batch)
  assert np.isfinite(float(loss))
  assert set(metrics) >= {"pred_loss", "visual_loss", "proprio_loss", "copy_loss"}
  assert set(params) == {"encoder", "proprio_encoder", "action_encoder", "predictor", "decoder"}
  assert {"stem", "stage_0", "head"} <= set(params["encoder"])
  groups = models.layer_groups(params)
  assert groups["predfirst"] == [("predictor", "block_0")] and groups["enclast"] == [("encoder", "head")]
  for paths in groups.values():
    for path in paths:
      node = params
      for k in path:
        node = node[k]
  if predictor == "transformer":
    assert {"in_proj", "pos_emb", "final_norm", "out_proj"} <= set(params["predictor"])


def test_jit_equals_eager(variant):
  _, wm, params = variant
  batch = _batch(jax.random.key(2))
  chex.assert_trees_all_close(jax.jit(wm.loss)(params, batch), wm.loss(params, batch), rtol=1e-5, atol=1e-6)
  z = wm.encode(params, {"pixels": batch["pixels"], "proprio": batch["proprio"]})
  plan = jax.random.uniform(jax.random.key(3), (B, 4, A))
  args = (params, z[:, :HIST], batch["actions"][:, :HIST - 1], plan)
  chex.assert_trees_all_close(jax.jit(wm.rollout)(*args), wm.rollout(*args), rtol=1e-5, atol=1e-5)


def test_rollout_matches_teacher_forcing(variant):
  """Rollout step 0 is the teacher-forced prediction of the window; step 1 the prediction after sliding.

  (The rollout computes only the last frame's output in the predictor's last block; teacher forcing all.)"""
  _, wm, params = variant
  params = _perturbed(params)   # a zero output layer would make every prediction the copy of its input
  batch = _batch(jax.random.key(4))
  z = wm.encode(params, {"pixels": batch["pixels"], "proprio": batch["proprio"]})[:, :HIST]
  a_ctx = batch["actions"][:, :HIST - 1]
  plan = jax.random.uniform(jax.random.key(5), (B, 2, A), minval=-1, maxval=1)
  out = wm.rollout(params, z, a_ctx, plan)
  step0 = wm.predict(params, z, jnp.concatenate([a_ctx, plan[:, :1]], 1))[:, -1]
  window = jnp.concatenate([z[:, 1:], step0[:, None]], 1)
  step1 = wm.predict(params, window, jnp.concatenate([a_ctx[:, 1:], plan], 1))[:, -1]
  chex.assert_trees_all_close(out[:, 0], step0, atol=1e-5)
  chex.assert_trees_all_close(out[:, 1], step1, atol=1e-5)


def _perturbed(params):
  """Params whose predictor output layer is non-zero (residual predictors start as the identity)."""
  kernel = params["predictor"]["out_proj"]["kernel"]
  noise = 0.1 * jax.random.normal(jax.random.key(9), kernel.shape)
  return {**params, "predictor": {**params["predictor"], "out_proj": {**params["predictor"]["out_proj"],
                                                                         "kernel": kernel + noise}}}


def test_features_stand_in_for_pixels(variant):
  """encode / loss from cached trunk features equal those from pixels; gradients reach the head alike."""
  _, wm, params = variant
  params = _perturbed(params)
  batch = _batch(jax.random.key(6))
  feats = wm.features(params, batch["pixels"])
  chex.assert_shape(feats, (B, HIST + 1, wm.num_tokens, params["encoder"]["head"]["Dense_0"]["kernel"].shape[0]))
  from_pixels = wm.encode(params, {"pixels": batch["pixels"], "proprio": batch["proprio"]})
  from_feats = wm.encode(params, {"features": feats, "proprio": batch["proprio"]})
  chex.assert_trees_all_close(from_feats, from_pixels, atol=1e-6)
  cached = {k: v for k, v in batch.items() if k != "pixels"} | {"features": feats}
  head_grad = lambda b: jax.grad(lambda p: wm.loss(p, b)[0])(params)["encoder"]["head"]  # noqa: E731
  chex.assert_trees_all_close(wm.loss(params, cached)[0], wm.loss(params, batch)[0], atol=1e-6)
  chex.assert_trees_all_close(head_grad(cached), head_grad(batch), atol=1e-5)
  with pytest.raises(ValueError, match="features"):
    wm.encode(params, {"features": feats[..., :3], "proprio": batch["proprio"]})
  with pytest.raises(ValueError, match="needs obs"):
    wm.encode(params, {"proprio": batch["proprio"]})


def test_predictor_is_frame_causal_and_masks_padding():
  wm = models.make_world_model(_cfg(), SPEC)
  params = _perturbed(wm.init(jax.random.key(0)))
  z = jax.random.normal(jax.random.key(1), (B, HIST, 1, wm.latent_dim))
  a = jax.random.normal(jax.random.key(2), (B, HIST, A))
  base = wm.predict(params, z, a)
  later = wm.predict(params, z.at[:, -1].add(1.0), a)
  chex.assert_trees_all_close(base[:, :-1], later[:, :-1], atol=1e-6)   # future frames do not leak back
  assert not np.allclose(base[:, -1], later[:, -1], atol=1e-4)
  valid = jnp.array([[False, True, True]] * B)
  m1 = wm.predict(params, z, a, valid)
  m2 = wm.predict(params, z.at[:, 0].add(5.0), a, valid)
  chex.assert_trees_all_close(m1[:, 1:], m2[:, 1:], atol=1e-5)           # padded frames are ignored
  # A rollout from one frame of context equals one from a left-padded window of `history` frames.
  plan = jax.random.normal(jax.random.key(3), (B, 3, A))
  short = wm.rollout(params, z[:, -1:], a[:, :0], plan)
  only_last = jnp.array([[False, False, True]] * B)
  padded = wm.rollout(params, z.at[:, :-1].set(0.0), jnp.zeros((B, HIST - 1, A)), plan, valid=only_last)
  chex.assert_trees_all_close(short, padded, atol=1e-5)
  # The first prediction from one frame of context is the trained one: output 0 of a full teacher-forced
  # window (the frame sits in the first positional slot, as in every training window).
  teacher = wm.predict(params, jnp.concatenate([z[:, -1:], z[:, :-1]], 1), jnp.concatenate([plan[:, :1],
                                                                                           a[:, 1:]], 1))
  chex.assert_trees_all_close(short[:, 0], teacher[:, 0], atol=1e-5)
  # Two real frames after one pad: the same as the first two slots of a full window.
  two = wm.rollout(params, z[:, 1:], a[:, 1:2], plan)
  teacher2 = wm.predict(params, jnp.concatenate([z[:, 1:], z[:, :1]], 1),
                        jnp.concatenate([a[:, 1:2], plan[:, :1], a[:, :1]], 1))
  chex.assert_trees_all_close(two[:, 0], teacher2[:, 1], atol=1e-5)


@pytest.mark.parametrize("elementwise", [True, False])
def test_attention_forms_agree(monkeypatch, elementwise):
  """The elementwise short-sequence attention (chosen on CPU with the project's XLA flags) equals the dots."""
  from adajepa_jax.models import predictors
  wm = models.make_world_model(_cfg(), SPEC)
  params = _perturbed(wm.init(jax.random.key(0)))
  z = jax.random.normal(jax.random.key(1), (B, HIST, 1, wm.latent_dim))
  a = jax.random.normal(jax.random.key(2), (B, HIST, A))
  valid = jnp.array([[False, True, True], [True, True, True]])
  monkeypatch.setattr(predictors, "_elementwise_attention", lambda length: elementwise)
  got = wm.predict(params, z, a, valid), wm.rollout(params, z, a[:, :-1], a)
  monkeypatch.setattr(predictors, "_elementwise_attention", lambda length: not elementwise)
  chex.assert_trees_all_close(got, (wm.predict(params, z, a, valid), wm.rollout(params, z, a[:, :-1], a)),
                              atol=1e-5)


def test_lora_starts_as_identity_and_changes_the_model():
  wm = models.make_world_model(_cfg(), SPEC)
  params = _perturbed(wm.init(jax.random.key(0)))
  adapters = lora.init_adapters(jax.random.key(1), params, rank=2)
  with_lora = dict(params, lora=adapters)
  batch = _batch(jax.random.key(2))
  chex.assert_trees_all_close(wm.loss(with_lora, batch)[0], wm.loss(params, batch)[0], atol=1e-6)
  shapes = [x.shape for x in jax.tree.leaves(adapters)]
  assert shapes and all(len(s) == 2 for s in shapes)
  assert "qkv" in adapters["predictor"]["block_0"]["attn"] and "head" in adapters["encoder"]
  assert "stem" not in adapters["encoder"]                                # conv kernels are not adapted
  assert set(adapters) == {"encoder", "predictor"}                        # nor the action / proprio encoders
  # The merged kernel adds (alpha / rank) a @ b: with every b = 1, alpha / rank = 8 times a @ 1.
  flat = {p: (jnp.ones_like(v) if p[-1] == "b" else v)
          for p, v in flax.traverse_util.flatten_dict(adapters).items()}
  merged = lora.merge(dict(params, lora=flax.traverse_util.unflatten_dict(flat)))
  path = next(p[:-1] for p in flat if p[-1] == "a")
  get = lambda tree: functools.reduce(lambda t, k: t[k], path, tree)   # noqa: E731
  a = flat[path + ("a",)]
  np.testing.assert_allclose(get(merged) - get(params), (lora.ALPHA / 2) * a @ jnp.ones((2, get(params).shape[1])),
                             rtol=1e-5, atol=1e-5)
  bumped = jax.tree.map(lambda x: x + 0.05, with_lora["lora"])
  assert not np.allclose(wm.loss(dict(params, lora=bumped), batch)[0], wm.loss(params, batch)[0])
  assert models.layer_groups(with_lora)["lora"] == [("lora",)]
  with pytest.raises(ValueError, match="rank"):
    lora.init_adapters(jax.random.key(1), params, rank=0)


def test_params_vmap_over_seeds():
  wm = models.make_world_model(_cfg(), SPEC)
  params = jax.vmap(wm.init)(jax.random.split(jax.random.key(0), 3))
  assert all(x.shape[0] == 3 for x in jax.tree.leaves(params))
  batch = _batch(jax.random.key(1))
  losses, _ = jax.jit(jax.vmap(wm.loss, in_axes=(0, None)))(params, batch)
  chex.assert_shape(losses, (3,))
  single = wm.init(jax.random.split(jax.random.key(0), 3)[1])
  chex.assert_trees_all_close(jax.tree.map(lambda x: x[1], params), single, atol=1e-6)
  assert not np.allclose(params["encoder"]["head"]["Dense_0"]["kernel"][0],
                         params["encoder"]["head"]["Dense_0"]["kernel"][1])


def test_bad_inputs_raise():
  with pytest.raises(ValueError, match="valid: resnet, spatial"):
    models.make_world_model(_cfg(encoder="vit"), SPEC)
  with pytest.raises(ValueError, match="valid: transformer, mlp"):
    models.make_world_model(_cfg(predictor="rnn"), SPEC)
  with pytest.raises(ValueError, match="obs_spec lacks"):
    models.make_world_model(_cfg(), dict(image_size=IMG))
  wm = models.make_world_model(_cfg(), SPEC)
  params = wm.init(jax.random.key(0))
  with pytest.raises(ValueError, match="pixels"):
    wm.encode(params, {"pixels": jnp.zeros((2, 16, 16, 3), jnp.uint8), "proprio": jnp.zeros((2, P))})


def test_paper_config_builds_and_traces():
  cfg = pusht.get_config("paper")
  spec = dict(image_size=cfg.task.kwargs.image_size, proprio_size=P, action_size=2 * cfg.data.frameskip,
              history=cfg.data.history)
  wm = models.make_world_model(cfg.model, spec)
  params = jax.eval_shape(wm.init, jax.random.key(0))
  assert wm.visual_dim == 384 and wm.num_tokens == 1
  assert len([k for k in params["predictor"] if k.startswith("block_")]) == 6
  bs, s = cfg.train.batch_size, cfg.task.kwargs.image_size
  batch = {"pixels": jax.ShapeDtypeStruct((bs, cfg.data.history + 1, s, s, 3), jnp.uint8),
           "proprio": jax.ShapeDtypeStruct((bs, cfg.data.history + 1, P), jnp.float32),
           "actions": jax.ShapeDtypeStruct((bs, cfg.data.history, spec["action_size"]), jnp.float32)}
  loss, _ = jax.eval_shape(wm.loss, params, batch)
  assert loss.shape == ()
  assert models.param_count(params) > 1_000_000
