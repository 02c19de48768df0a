"""Pretraining losses: the world model's one-step prediction loss plus optional regularisers.

`wm.loss` (the adaptation loss too) is the teacher-forced one-step latent MSE against stop-gradient
targets. Pretraining may add:
  curvature   temporal straightening: 1 - cos(z_t - z_{t-1}, z_{t+1} - z_t) over valid frame triples,
  VICReg      variance hinge (per-dim std >= 1) and off-diagonal covariance penalty on visual latents,
  decoder     pixel MSE of the visualisation decoder on stop-gradient latents (never shapes the latents).
"""
from typing import TYPE_CHECKING, Any, Callable, Optional

import jax
import jax.numpy as jnp
import ml_collections

if TYPE_CHECKING:   # models is heavier than this module needs at run time
  from adajepa_jax.models import world_model


def curvature_loss(z: jax.Array, valid: Optional[jax.Array] = None) -> jax.Array:
  """Mean temporal curvature of latent trajectories.

  Args:
    z: f32[B, T, N, C] latents of consecutive frames (T >= 3).
    valid: bool[B, T] or None.

  Returns:
    f32[]: mean over valid triples of 1 - cos(v_t, v_{t+1}), v_t = z_{t+1} - z_t (0 if T < 3).
  """
  if z.shape[1] < 3:
    return jnp.zeros((), z.dtype)
  v = (z[:, 1:] - z[:, :-1]).reshape(z.shape[0], z.shape[1] - 1, -1)
  v = v * jax.lax.rsqrt(jnp.sum(jnp.square(v), axis=-1, keepdims=True) + 1e-12)  # finite grad at v = 0
  curv = 1.0 - jnp.sum(v[:, 1:] * v[:, :-1], axis=-1)
  if valid is None:
    return jnp.mean(curv)
  m = (valid[:, :-2] & valid[:, 1:-1] & valid[:, 2:]).astype(z.dtype)
  return jnp.sum(curv * m) / jnp.maximum(jnp.sum(m), 1.0)


def latent_std(z: jax.Array) -> jax.Array:
  """Per-dimension std over all leading axes. z: f32[..., C] -> f32[C]."""
  return jnp.std(z.reshape(-1, z.shape[-1]), axis=0)


def vicreg_terms(z: jax.Array, eps: float = 1e-4) -> tuple[jax.Array, jax.Array]:
  """VICReg variance and covariance terms.

  Args:
    z: f32[M, C] samples (flatten batch, frames and tokens first).

  Returns:
    (variance f32[] = mean(relu(1 - sqrt(var + eps))), covariance f32[] = sum of squared off-diagonal
    covariances / C).
  """
  zc = z - jnp.mean(z, axis=0)
  var = jnp.mean(jax.nn.relu(1.0 - jnp.sqrt(jnp.var(z, axis=0) + eps)))
  cov = zc.T @ zc / jnp.maximum(z.shape[0] - 1, 1)
  off = cov - jnp.diag(jnp.diag(cov))
  return var, jnp.sum(jnp.square(off)) / z.shape[-1]


def make_train_loss(wm: "world_model.WorldModel", train_cfg: ml_collections.ConfigDict
                    ) -> Callable[[Any, dict[str, jax.Array]], tuple[jax.Array, dict[str, jax.Array]]]:
  """The pretraining objective.

  Args:
    wm: a `WorldModel`.
    train_cfg: the `train` config section (curvature_weight, vicreg_var_weight, vicreg_cov_weight,
      decoder_weight).

  Returns:
    loss_fn(params, batch) -> (loss f32[], metrics dict of f32[]), differentiable in params.
  """
  cw = float(train_cfg.curvature_weight)
  vw = float(train_cfg.vicreg_var_weight)
  cvw = float(train_cfg.vicreg_cov_weight)
  dw = float(train_cfg.decoder_weight)
  dv = wm.visual_dim

  def loss_fn(params: Any, batch: dict[str, jax.Array]) -> tuple[jax.Array, dict[str, jax.Array]]:
    pred_loss, (metrics, z) = wm.loss_with_latents(params, batch)
    zv = z[..., :dv]
    valid = batch.get("valid")
    std = latent_std(jax.lax.stop_gradient(zv))
    metrics = dict(metrics, z_std_min=jnp.min(std), z_std_mean=jnp.mean(std))
    loss = pred_loss
    if cw:
      metrics["curvature"] = curvature_loss(zv, valid)
      loss = loss + cw * metrics["curvature"]
    if vw or cvw:
      metrics["vicreg_var"], metrics["vicreg_cov"] = vicreg_terms(zv.reshape(-1, dv))
      loss = loss + vw * metrics["vicreg_var"] + cvw * metrics["vicreg_cov"]
    if wm.decode is not None and dw:
      recon = wm.decode(params, jax.lax.stop_gradient(z))
      metrics["decoder_loss"] = jnp.mean(jnp.square(recon - batch["pixels"].astype(jnp.float32) / 255.0))
      loss = loss + dw * metrics["decoder_loss"]
    metrics["loss"] = loss
    return loss, metrics

  return loss_fn
