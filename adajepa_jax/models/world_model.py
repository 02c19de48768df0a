"""The JEPA world model as a frozen dataclass of pure functions over a plain param pytree.

Example:
  wm = make_world_model(cfg.model, dict(image_size=64, proprio_size=4, action_size=10, history=3))
  params = wm.init(jax.random.key(0))
  z = wm.encode(params, obs)                        # f32[..., N, D]
  f = wm.features(params, obs["pixels"])            # the encoder trunk's output, f32[..., N, F]
  z = wm.encode(params, {"features": f, "proprio": obs["proprio"]})   # the same z, trunk skipped
  z_next = wm.predict(params, z_hist, a_hist)       # teacher-forced, f32[..., T, N, D]
  z_plan = wm.rollout(params, z_ctx, a_ctx, plan)   # autoregressive lax.scan, f32[..., H, N, D]

Latent layout: z = concat(visual tokens f32[N, latent_dim], proprio embedding broadcast to every token
f32[N, proprio_emb_dim]); D = latent_dim + proprio_emb_dim and `wm.visual_dim = latent_dim`. The action
embedding is concatenated to every token inside the predictor only.

Param tree: {'encoder': {'stem', 'stage_0'.., 'head'}, 'proprio_encoder', 'action_encoder',
'predictor': {...}, 'decoder'? (visualisation only), 'lora'? (adapters, merged by every function)}.
"""
import dataclasses
import math
from typing import Callable, Mapping, Optional

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import optax

from adajepa_jax.models import decoder as decoder_lib
from adajepa_jax.models import encoders
from adajepa_jax.models import lora
from adajepa_jax.models import predictors

OBS_SPEC_KEYS = ("image_size", "proprio_size", "action_size", "history")

Obs = dict     # {'pixels': uint8[..., H, W, 3] or 'features': f32[..., N, F], 'proprio': f32[..., P]}
Batch = dict   # the loader's batch (see `WorldModel.loss`)
Metrics = dict[str, jax.Array]
InitFn = Callable[[chex.PRNGKey], optax.Params]
EncodeFn = Callable[[optax.Params, Obs], jax.Array]
FeaturesFn = Callable[[optax.Params, jax.Array], jax.Array]
PredictFn = Callable[..., jax.Array]   # (params, z, actions, valid=None) -> z_next
RolloutFn = Callable[..., jax.Array]   # (params, z_ctx, a_ctx, plan, valid=None) -> z_plan
LossFn = Callable[[optax.Params, Batch], tuple[jax.Array, Metrics]]
LossWithLatentsFn = Callable[[optax.Params, Batch], tuple[jax.Array, tuple[Metrics, jax.Array]]]
DecodeFn = Callable[[optax.Params, jax.Array], jax.Array]


@dataclasses.dataclass(frozen=True)
class WorldModel:
  """Pure functions of a world model; see the module docstring. All accept leading batch dims `...`.

  Attributes:
    init: key -> params (jitted).
    encode: (params, obs {'pixels': uint8[..., H, W, 3], 'proprio': f32[..., P]}) -> z f32[..., N, D].
      obs may carry 'features' f32[..., N, F] (from `features`) instead of 'pixels': the trunk is skipped.
    features: (params, pixels uint8[..., H, W, 3]) -> f32[..., N, F], the encoder trunk (all of the visual
      encoder but its head). While the trunk is not adapted, a frame's features never change, so callers
      keep them instead of the frame (the MPC episode does) and re-run only the head.
    predict: (params, z f32[..., T, N, D], actions f32[..., T, A], valid bool[..., T] | None)
      -> f32[..., T, N, D]; output k predicts frame k+1 from frames <= k.
    rollout: (params, z_ctx f32[..., T, N, D], a_ctx f32[..., T-1, A], plan f32[..., H, A],
      valid bool[..., T] | None) -> f32[..., H, N, D]; a `lax.scan` over the plan with a sliding window of
      `history` frames (context shorter than the history is left-padded and masked).
    loss: (params, batch) -> (loss f32[], metrics): teacher-forced one-step latent MSE against
      stop-gradient targets (visual + proprio dims). batch: the loader's {'pixels' uint8[B, h+1, H, W, 3],
      'proprio' f32[B, h+1, P], 'actions' f32[B, h, A]} plus optional 'valid' bool[B, h+1], 'weight' f32[B]
      and 'target_mask' bool[B, h] (which one-step predictions k -> k+1 count; default all valid pairs: the
      MPC buffer counts only each window's newest transition); 'features' f32[B, h+1, N, F] may replace
      'pixels' (see `encode`).
    loss_with_latents: like `loss` but returns (loss, (metrics, z f32[B, h+1, N, D])) for regularisers.
    decode: (params, z f32[..., N, D]) -> f32[..., H, W, 3] in [0, 1], or None without a decoder.
    visual_dim: the first `visual_dim` channels of D are visual, the rest proprio.
    latent_dim: D.
    num_tokens: N.
    history: predictor context frames.
    action_size: A (env action size * frameskip).
  """
  init: InitFn
  encode: EncodeFn
  features: FeaturesFn
  predict: PredictFn
  rollout: RolloutFn
  loss: LossFn
  loss_with_latents: LossWithLatentsFn
  decode: Optional[DecodeFn]
  visual_dim: int
  latent_dim: int
  num_tokens: int
  history: int
  action_size: int


def obs_spec(image_size: int, proprio_size: int, action_size: int, history: int) -> dict[str, int]:
  """The observation spec a `WorldModel` is built for; every caller builds it here (training from its data,
  evaluation from its env, a checkpoint stores it).

  Args:
    image_size: side of the square RGB frames (pixels).
    proprio_size: size of the proprioceptive vector.
    action_size: size of one model action: the env's action size x the frameskip.
    history: context frames.
  """
  return _check_spec(dict(image_size=image_size, proprio_size=proprio_size, action_size=action_size,
                          history=history))


def _check_spec(obs_spec):
  missing = [k for k in OBS_SPEC_KEYS if k not in obs_spec]
  if missing:
    raise ValueError(f"obs_spec lacks {missing}; it needs keys {OBS_SPEC_KEYS}")
  return {k: int(obs_spec[k]) for k in OBS_SPEC_KEYS}


def _flatten_lead(x, trailing):
  """Reshapes x [..., *trailing_shape] to [B, *trailing_shape]; returns it and the leading shape."""
  lead = x.shape[: x.ndim - trailing]
  return x.reshape((math.prod(lead),) + x.shape[x.ndim - trailing:]), lead


def _left_window(x, size, pad_value):
  """Last `size` entries of x along axis 1, left-padded with `pad_value` when x is shorter."""
  t = x.shape[1]
  if t >= size:
    return x[:, t - size:]
  pad = jnp.full((x.shape[0], size - t) + x.shape[2:], pad_value, x.dtype)
  return jnp.concatenate([pad, x], axis=1)


def pair_mask(valid):
  """bool[B, h+1] frame validity -> bool[B, h] validity of (frame k, frame k+1) pairs."""
  return valid[:, :-1] & valid[:, 1:]


def masked_latent_mse(pred, target, valid_pairs, weight=None):
  """Mean squared error per (sample, step), averaged over valid pairs with optional sample weights.

  Args:
    pred, target: f32[B, h, N, C].
    valid_pairs: bool[B, h].
    weight: f32[B] or None.

  Returns:
    f32[] weighted mean over valid pairs of the per-pair MSE (0 when nothing is valid).
  """
  err = jnp.mean(jnp.square(pred - target), axis=(-2, -1))
  w = valid_pairs.astype(jnp.float32)
  if weight is not None:
    w = w * weight[:, None]
  return jnp.sum(err * w) / jnp.maximum(jnp.sum(w), 1e-8)


def make_world_model(model_cfg: ml_collections.ConfigDict, obs_spec: Mapping[str, int]) -> WorldModel:
  """Builds the world model's pure functions from `cfg.model` and the observation spec.

  Args:
    model_cfg: the `model` config section (encoder, widths, latent_dim, predictor, depth, heads, mlp_ratio,
      action_emb_dim, proprio_emb_dim, residual, decoder, gem_p).
    obs_spec: mapping with image_size, proprio_size, action_size (= env action size * frameskip), history.

  Returns:
    A `WorldModel`.
  """
  spec = _check_spec(obs_spec)
  if model_cfg.encoder not in encoders.ENCODERS:
    raise ValueError(f"Unknown encoder {model_cfg.encoder!r}; valid: {', '.join(encoders.ENCODERS)}")
  if model_cfg.predictor not in predictors.PREDICTORS:
    raise ValueError(f"Unknown predictor {model_cfg.predictor!r}; valid: {', '.join(predictors.PREDICTORS)}")
  for name in ("latent_dim", "proprio_emb_dim", "action_emb_dim", "depth"):
    if int(model_cfg[name]) < 1:
      raise ValueError(f"model.{name} must be >= 1, got {model_cfg[name]}")
  spatial = model_cfg.encoder == "spatial"
  residual = bool(model_cfg.residual)
  hist = spec["history"]
  img, psize, asize = spec["image_size"], spec["proprio_size"], spec["action_size"]
  dv = int(model_cfg.latent_dim)
  d = dv + int(model_cfg.proprio_emb_dim)
  n = encoders.num_tokens(img, model_cfg.widths, spatial)

  enc = encoders.VisualEncoder(model_cfg.widths, dv, spatial, float(model_cfg.gem_p))
  prop = nn.Dense(int(model_cfg.proprio_emb_dim))
  act = nn.Dense(int(model_cfg.action_emb_dim))
  if model_cfg.predictor == "transformer":
    pred = predictors.TransformerPredictor(
        width=dv, depth=int(model_cfg.depth), heads=int(model_cfg.heads), mlp_ratio=int(model_cfg.mlp_ratio),
        max_frames=hist, residual=residual)
  else:
    pred = predictors.MLPPredictor(width=dv * int(model_cfg.mlp_ratio), depth=int(model_cfg.depth),
                                   residual=residual)
  dec = decoder_lib.Decoder(img) if model_cfg.decoder else None

  def _init(key):
    keys = jax.random.split(key, 5)
    params = {
        "encoder": enc.init(keys[0], jnp.zeros((1, img, img, 3), jnp.uint8)),
        "proprio_encoder": prop.init(keys[1], jnp.zeros((1, psize)))["params"],
        "action_encoder": act.init(keys[2], jnp.zeros((1, asize)))["params"],
        "predictor": pred.init(keys[3], jnp.zeros((1, hist, n, d)), jnp.zeros((1, hist, act.features)),
                               jnp.ones((1, hist), bool))["params"],
    }
    if dec is not None:
      params["decoder"] = dec.init(keys[4], jnp.zeros((1, n, d)))["params"]
    return params

  def _features(p, pixels):
    if pixels.shape[-3:] != (img, img, 3):
      raise ValueError(f"the encoder expects pixels [..., {img}, {img}, 3], got {pixels.shape}")
    px, lead = _flatten_lead(pixels, 3)
    return enc.features(p["encoder"], px).reshape(lead + (n, enc.feature_dim))

  def _encode(p, obs):
    proprio = obs["proprio"]
    if proprio.shape[-1:] != (psize,):
      raise ValueError(f"encode expects proprio [..., {psize}], got {proprio.shape}")
    if "features" in obs:
      feats = obs["features"]
      if feats.shape[-2:] != (n, enc.feature_dim):
        raise ValueError(f"encode expects features [..., {n}, {enc.feature_dim}], got {feats.shape}")
    elif "pixels" in obs:
      feats = _features(p, obs["pixels"])
    else:
      raise ValueError(f"encode needs obs['pixels'] or obs['features']; got keys {sorted(obs)}")
    fx, lead = _flatten_lead(feats, 2)
    pr, _ = _flatten_lead(proprio, 1)
    zv = enc.project(p["encoder"], fx)
    zp = prop.apply({"params": p["proprio_encoder"]}, pr.astype(jnp.float32))
    z = jnp.concatenate([zv, jnp.broadcast_to(zp[:, None], (zv.shape[0], n, zp.shape[-1]))], -1)
    return z.reshape(lead + (n, d))

  def _predict_flat(p, z, a_emb, valid, last_only=False):
    return pred.apply({"params": p["predictor"]}, z, a_emb, valid, last_only)

  def _check_z(z, name):
    if z.shape[-2:] != (n, d):
      raise ValueError(f"{name} must end in (N, D) = ({n}, {d}), got shape {z.shape}")

  def _predict(p, z, actions, valid=None):
    _check_z(z, "z")
    zf, lead = _flatten_lead(z, 3)
    af, _ = _flatten_lead(actions, 2)
    if af.shape[1:] != (zf.shape[1], asize):
      raise ValueError(f"actions must be [..., T={zf.shape[1]}, A={asize}], got {actions.shape}")
    vf = jnp.ones(zf.shape[:2], bool) if valid is None else _flatten_lead(valid, 1)[0].astype(bool)
    a_emb = act.apply({"params": p["action_encoder"]}, af)
    return _predict_flat(p, zf, a_emb, vf).reshape(z.shape)

  def _rollout(p, z_ctx, a_ctx, plan, valid=None):
    _check_z(z_ctx, "z_ctx")
    zf, lead = _flatten_lead(z_ctx, 3)
    b, t = zf.shape[:2]
    cf = _flatten_lead(a_ctx, 2)[0]
    if cf.shape != (b, t - 1, asize):
      raise ValueError(f"a_ctx must be [..., T-1={t - 1}, A={asize}] with the batch dims of z_ctx, got "
                       f"{a_ctx.shape}")
    pf = _flatten_lead(plan, 2)[0]
    if pf.shape[0] != b or pf.shape[-1] != asize:
      raise ValueError(f"plan must be [..., H, A={asize}] with the batch dims of z_ctx, got {plan.shape}")
    horizon = pf.shape[1]
    vf = jnp.ones((b, t), bool) if valid is None else _flatten_lead(valid, 1)[0].astype(bool)
    # Frame k of the window is followed by action k: the context actions then the first planned action.
    a_emb_ctx = act.apply({"params": p["action_encoder"]}, jnp.concatenate([cf, pf[:, :1]], 1))
    a_emb_next = act.apply({"params": p["action_encoder"]}, pf[:, 1:])
    a_emb_next = jnp.concatenate([a_emb_next, jnp.zeros((b, 1, act.features))], 1)  # the last one is unused
    window = (_left_window(zf, hist, 0.0), _left_window(a_emb_ctx, hist, 0.0), _left_window(vf, hist, False))

    def step(carry, a_next):
      zw, aw, vw = carry
      z_next = _predict_flat(p, zw, aw, vw, last_only=True)[:, 0]
      carry = (jnp.concatenate([zw[:, 1:], z_next[:, None]], 1),
               jnp.concatenate([aw[:, 1:], a_next[:, None]], 1),
               jnp.concatenate([vw[:, 1:], jnp.ones((b, 1), bool)], 1))
      return carry, z_next

    _, zs = jax.lax.scan(step, window, jnp.swapaxes(a_emb_next, 0, 1))
    return jnp.swapaxes(zs, 0, 1).reshape(lead + (horizon, n, d))

  def _loss_with_latents(params, batch):
    p = lora.merge(params)
    z = _encode(p, batch)   # reads 'features' or 'pixels', and 'proprio'
    b, t1 = z.shape[:2]
    valid = batch.get("valid")
    valid = jnp.ones((b, t1), bool) if valid is None else valid.astype(bool)
    weight = batch.get("weight")
    target = jax.lax.stop_gradient(z[:, 1:])
    z_pred = _predict(p, z[:, :-1], batch["actions"], valid[:, :-1])
    m = pair_mask(valid)
    if "target_mask" in batch:
      m = m & batch["target_mask"].astype(bool)
    loss = masked_latent_mse(z_pred, target, m, weight)
    metrics = {
        "pred_loss": loss,
        "visual_loss": masked_latent_mse(z_pred[..., :dv], target[..., :dv], m, weight),
        "proprio_loss": masked_latent_mse(z_pred[..., dv:], target[..., dv:], m, weight),
        "copy_loss": masked_latent_mse(jax.lax.stop_gradient(z[:, :-1]), target, m, weight),
    }
    return loss, (metrics, z)

  def _loss(params, batch):
    loss, (metrics, _) = _loss_with_latents(params, batch)
    return loss, metrics

  def _decode(params, z):
    zf, lead = _flatten_lead(z, 2)
    return dec.apply({"params": params["decoder"]}, zf).reshape(lead + (img, img, 3))

  return WorldModel(
      init=jax.jit(_init),
      encode=lambda params, obs: _encode(lora.merge(params), obs),
      features=lambda params, pixels: _features(lora.merge(params), pixels),
      predict=lambda params, z, actions, valid=None: _predict(lora.merge(params), z, actions, valid),
      rollout=lambda params, z_ctx, a_ctx, plan, valid=None: _rollout(lora.merge(params), z_ctx, a_ctx, plan,
                                                                      valid),
      loss=_loss,
      loss_with_latents=_loss_with_latents,
      decode=_decode if dec is not None else None,
      visual_dim=dv,
      latent_dim=d,
      num_tokens=n,
      history=hist,
      action_size=asize,
  )


def layer_groups(params: optax.Params) -> dict[str, list[tuple[str, ...]]]:
  """Param path prefixes of the named layer groups adaptation specs refer to.

  Args:
    params: world-model params.

  Returns:
    {'encfirst': [('encoder', 'stem')], 'enclast': [('encoder', 'head')],
     'predfirst': [('predictor', 'block_0')],
     'predlast': [('predictor', 'block_{L-1}'), ('predictor', 'final_norm')?, ('predictor', 'out_proj')?],
     'predlastblock': the same without 'out_proj' (the paper's predictor has no output map)}
    plus 'lora': [('lora',)] when adapters are present. For the MLP predictor, blocks are its hidden layers.
  """
  pred = params["predictor"]
  blocks = sorted((k for k in pred if k.startswith("block_")), key=lambda k: int(k.split("_")[1]))
  if not blocks:
    raise ValueError(f"predictor params have no block_i entries: {sorted(pred)}")
  block_norm = [("predictor", blocks[-1])] + [("predictor", "final_norm")] * ("final_norm" in pred)
  groups = {
      "encfirst": [("encoder", "stem")],
      "enclast": [("encoder", "head")],
      "predfirst": [("predictor", blocks[0])],
      "predlast": block_norm + [("predictor", "out_proj")] * ("out_proj" in pred),
      "predlastblock": block_norm,
  }
  if lora.LORA_KEY in params:
    groups["lora"] = [(lora.LORA_KEY,)]
  return groups


def param_count(params: optax.Params) -> int:
  """Total number of scalars in a param tree."""
  return sum(int(x.size) for x in jax.tree.leaves(params))
