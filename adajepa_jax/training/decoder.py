"""The visualisation decoder trained after the fact on a trained world model's detached latents.

The world model stays frozen (its latents are stop-gradient inputs), so the decoder shows what a latent
holds without changing it: `decode(params, z)` turns predicted latents into pictures (RESULTS' decoded
rollouts). Checkpoints live in `<workdir>/decoder/` and resume.

Example:
  dec_params, wm = train_decoder(config, workdir, steps=2000)      # config: the stored config of workdir
  images = wm.decode(dict(params, decoder=dec_params), z)          # f32[..., H, W, 3] in [0, 1]
"""
import math
import os
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from tqdm import tqdm

from adajepa_jax import models
from adajepa_jax.errors import UsageError
from adajepa_jax.training import checkpoint, train

DECODER_DIR = "decoder"


def decoder_world_model(config: ml_collections.ConfigDict) -> models.WorldModel:
  """The stored model's `WorldModel` with a decoder (`model.decoder=True`); its other params are unchanged."""
  model_cfg = ml_collections.ConfigDict(config.model.to_dict())
  model_cfg.decoder = True
  return models.make_world_model(model_cfg, config.checkpoint_meta["obs_spec"])


def train_decoder(config: ml_collections.ConfigDict, workdir: str, steps: int = 2000, lr: float = 1e-3,
                  batch_size: int = 64, checkpoint_every: int = 500, progress: bool = True
                  ) -> tuple[Any, models.WorldModel]:
  """Trains (or resumes, or loads when finished) the decoder of the world model under `workdir`.

  Args:
    config: `workdir`'s stored config (`configs/stored.get_config`; overrides outside its model section are fine).
    workdir: the training workdir (its data and its evaluated checkpoint, best else latest).
    steps, lr, batch_size: Adam steps, learning rate and batch size (each batch is one frame of each of
      `batch_size` training windows: at step i the frame i mod the window's length).
    checkpoint_every: steps between checkpoints in `<workdir>/decoder/`.
    progress: show a tqdm bar.

  Returns:
    (decoder params, the decoder `WorldModel`): `wm.decode(dict(params, decoder=decoder_params), z)`.
  """
  if int(steps) < 1 or int(batch_size) < 1:
    raise UsageError(f"Decoder steps and batch size must be >= 1, got {steps}, {batch_size}")
  _, params, stored = checkpoint.load(workdir, config=config)
  wm = decoder_world_model(stored)
  dec_params = jax.jit(wm.init)(jax.random.key(int(config.train.seed)))["decoder"]
  tx = optax.adam(float(lr))
  opt_state = tx.init(dec_params)
  manager = checkpoint.make_manager(os.path.join(workdir, DECODER_DIR), max_to_keep=1)
  start = 0
  if manager.latest_step() is not None:
    dec_params, opt_state, start = checkpoint.restore(manager, dec_params, opt_state)
    start = int(start)
  if start >= int(steps):
    return dec_params, wm

  def loss_fn(dec, batch):
    z = jax.lax.stop_gradient(wm.encode(params, {"pixels": batch["pixels"], "proprio": batch["proprio"]}))
    recon = wm.decode(dict(params, decoder=dec), z)
    return jnp.mean(jnp.square(recon - batch["pixels"].astype(jnp.float32) / 255.0))

  @jax.jit
  def step(dec, opt_state, batch):
    loss, grads = jax.value_and_grad(loss_fn)(dec, batch)
    updates, opt_state = tx.update(grads, opt_state, dec)
    return optax.apply_updates(dec, updates), opt_state, loss

  dataset = train.make_datasets(stored, os.path.join(workdir, "data"))[0]
  segment = math.gcd(start, int(checkpoint_every)) or int(checkpoint_every)   # a run extended past its end
  batches = train.batch_stream(dataset, int(batch_size), int(config.train.seed) + 1, start, segment)
  loss = np.nan
  for i in tqdm(range(start, int(steps)), initial=start, total=int(steps), desc="decoder", disable=not progress):
    batch = next(batches)
    frame = i % batch["pixels"].shape[1]                              # pixels u8[B, F, H, W, 3]
    dec_params, opt_state, loss = step(dec_params, opt_state, {k: batch[k][:, frame] for k in ("pixels", "proprio")})
    if (i + 1) % int(checkpoint_every) == 0 or i + 1 == int(steps):
      checkpoint.save(manager, i + 1, dec_params, opt_state, stored,
                      {"pixel_mse": float(loss), "world_model_step": int(stored.checkpoint_meta["step"])})
  return dec_params, wm
