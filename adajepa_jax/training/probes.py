"""Evidence that latents are usable for planning: linear probes from latents to the true state.

Example:
  rep = probes.probe_report(wm, params, probes.window_frames(train_ds, 32, 8, 0),
                            probes.window_frames(val_ds, 32, 4, 0), "pusht")   # rep['r2'] per state dim
"""
from typing import TYPE_CHECKING, Any, Callable, Union

import jax
import jax.numpy as jnp
import numpy as np

if TYPE_CHECKING:   # annotations only: no run-time dependency on models or data
  from adajepa_jax.data import dataset as dataset_lib
  from adajepa_jax.models import world_model
  from adajepa_jax.training import synthetic


def linear_probe(z_train: jax.Array, y_train: jax.Array, z_test: jax.Array, y_test: jax.Array,
                 l2: float = 1e-3) -> dict[str, jax.Array]:
  """Ridge regression from latents to targets, scored by R^2 on held-out samples.

  Args:
    z_train: f32[M, C] features; y_train: f32[M, S] targets.
    z_test: f32[K, C]; y_test: f32[K, S].
    l2: ridge strength (relative to the feature variance scale, features are standardised).

  Returns:
    {'r2': f32[S] per target dim, 'r2_mean': f32[], 'weights': f32[C+1, S]}.
  """
  mu, sd = jnp.mean(z_train, 0), jnp.std(z_train, 0) + 1e-6

  def feats(z: jax.Array) -> jax.Array:
    z = (z - mu) / sd
    return jnp.concatenate([z, jnp.ones((z.shape[0], 1), z.dtype)], 1)

  x = feats(z_train)
  reg = l2 * x.shape[0] * jnp.eye(x.shape[1]).at[-1, -1].set(0.0)
  w = jnp.linalg.solve(x.T @ x + reg, x.T @ y_train)
  pred = feats(z_test) @ w
  ss_res = jnp.sum(jnp.square(y_test - pred), 0)
  ss_tot = jnp.sum(jnp.square(y_test - jnp.mean(y_test, 0)), 0)
  r2 = 1.0 - ss_res / jnp.maximum(ss_tot, 1e-12)
  return {"r2": r2, "r2_mean": jnp.mean(r2), "weights": w}


def state_targets(states: np.ndarray, task_name: str) -> tuple[np.ndarray, list[str]]:
  """Probe targets and their names. PushT/PushObj: agent xy, block xy, cos/sin of the block angle.

  Other tasks: the first two state dims (position). states: f32[M, S] -> (f32[M, K], names).
  """
  if task_name.startswith("push") and states.shape[-1] >= 5:
    ang = states[:, 4]
    y = np.stack([states[:, 0], states[:, 1], states[:, 2], states[:, 3], np.cos(ang), np.sin(ang)], 1)
    return y, ["agent_x", "agent_y", "block_x", "block_y", "block_cos", "block_sin"]
  return states[:, :2], ["x", "y"]


def window_frames(dataset: Union["dataset_lib.WindowDataset", "synthetic.SyntheticWindows"], batch_size: int,
                  num_batches: int, seed: int) -> dict[str, np.ndarray]:
  """Frames with their true states from a window dataset (`batches(..., include_states=True)`).

  Returns:
    dict with pixels uint8[M, H, W, 3], proprio f32[M, P], states f32[M, S] (M = frames of all windows).
  """
  out = {"pixels": [], "proprio": [], "states": []}
  for i, b in enumerate(dataset.batches(batch_size, seed, num_batches=num_batches, include_states=True)):
    for k in out:
      out[k].append(b[k].reshape((-1,) + b[k].shape[2:]))
    if i + 1 >= num_batches:
      break
  return {k: np.concatenate(v) for k, v in out.items()}


def encode_in_batches(encode_fn: Callable[[Any, dict[str, np.ndarray]], jax.Array], params: Any,
                      pixels: np.ndarray, proprio: np.ndarray, batch_size: int = 256) -> np.ndarray:
  """Jitted encoder over many frames, `batch_size` at a time (the last chunk padded). -> f32[M, N, D]."""
  enc = jax.jit(encode_fn)
  m = pixels.shape[0]
  pad = (-m) % batch_size
  px = np.concatenate([pixels, np.repeat(pixels[-1:], pad, 0)])
  pr = np.concatenate([proprio, np.repeat(proprio[-1:], pad, 0)])
  zs = [np.asarray(enc(params, {"pixels": px[i:i + batch_size], "proprio": pr[i:i + batch_size]}))
        for i in range(0, m + pad, batch_size)]
  return np.concatenate(zs)[:m]


def probe_report(wm: "world_model.WorldModel", params: Any, train_frames: dict[str, np.ndarray],
                 test_frames: dict[str, np.ndarray], task_name: str) -> dict[str, Any]:
  """Linear probe from the visual latent (proprio dims excluded) to the true state.

  Fit on `train_frames`, scored on `test_frames` (use different episodes, e.g. the train and val splits).

  Returns:
    {'r2': {name: float}, 'r2_mean': float, 'z_std_min': float, 'z_std_mean': float, 'frames': int}.
  """
  def feats(frames: dict[str, np.ndarray]) -> np.ndarray:
    z = encode_in_batches(wm.encode, params, frames["pixels"], frames["proprio"])
    return z[..., :wm.visual_dim].reshape(z.shape[0], -1)

  z_tr, z_te = feats(train_frames), feats(test_frames)
  y_tr, names = state_targets(train_frames["states"], task_name)
  y_te, _ = state_targets(test_frames["states"], task_name)
  res = linear_probe(jnp.asarray(z_tr), jnp.asarray(y_tr), jnp.asarray(z_te), jnp.asarray(y_te))
  std = np.std(z_te, 0)
  return {"r2": {n: float(v) for n, v in zip(names, res["r2"])}, "r2_mean": float(res["r2_mean"]),
          "z_std_min": float(std.min()), "z_std_mean": float(std.mean()), "frames": int(z_tr.shape[0])}
