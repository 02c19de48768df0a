"""Visual, proprio and action encoders (flax linen; only `world_model.py` touches them directly).

Visual encoder: a residual conv net trained from scratch (the paper's "small ResNet"):
  stem     Conv3x3/2 -> GroupNorm -> GELU                          ("encfirst")
  stage_i  residual block Conv3x3/2-GN-GELU-Conv3x3-GN (+ 1x1/2 projection skip) -> GELU
  pooling  GeM (generalised mean, fixed p) to one global vector      (global variant only)
  head     Dense -> GELU -> Dense -> LayerNorm, applied per token    ("enclast")
The spatial variant skips pooling and returns the final feature map as (h*w) patch tokens.
"""
from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

ENCODERS = ("resnet", "spatial")


def _groups(width):
  """The largest group count <= 8 dividing `width` (GroupNorm needs an exact division)."""
  for g in (8, 4, 2, 1):
    if width % g == 0:
      return g
  return 1


class ConvStage(nn.Module):
  """Conv3x3 (stride 2) -> GroupNorm -> GELU. x: f32[B, H, W, C] -> f32[B, H/2, W/2, width]."""
  width: int

  @nn.compact
  def __call__(self, x):
    x = nn.Conv(self.width, (3, 3), strides=(2, 2))(x)
    return nn.gelu(nn.GroupNorm(num_groups=_groups(self.width))(x))


class ResidualStage(nn.Module):
  """Downsampling residual block. x: f32[B, H, W, C] -> f32[B, H/2, W/2, width]."""
  width: int

  @nn.compact
  def __call__(self, x):
    g = _groups(self.width)
    h = nn.Conv(self.width, (3, 3), strides=(2, 2))(x)
    h = nn.gelu(nn.GroupNorm(num_groups=g)(h))
    h = nn.Conv(self.width, (3, 3))(h)
    h = nn.GroupNorm(num_groups=g)(h)
    skip = nn.Conv(self.width, (1, 1), strides=(2, 2), name="skip")(x)
    return nn.gelu(h + skip)


class ProjectionHead(nn.Module):
  """Dense -> GELU -> Dense -> LayerNorm. x: f32[..., C] -> f32[..., latent_dim]."""
  latent_dim: int

  @nn.compact
  def __call__(self, x):
    x = nn.gelu(nn.Dense(self.latent_dim)(x))
    x = nn.Dense(self.latent_dim)(x)
    return nn.LayerNorm()(x)


def gem_pool(x, p=3.0, eps=1e-6):
  """Generalised-mean pooling over space. x: f32[B, H, W, C] -> f32[B, C]."""
  return jnp.mean(jnp.clip(x, eps, None) ** p, axis=(1, 2)) ** (1.0 / p)


class VisualEncoder(nn.Module):
  """Residual conv encoder.

  Attributes:
    widths: channels of the stem then of each residual stage (len(widths) - 1 stages).
    latent_dim: output channels per token.
    spatial: False -> one global token (GeM pooling); True -> h*w patch tokens.
    gem_p: the GeM exponent.
  """
  widths: Sequence[int]
  latent_dim: int
  spatial: bool = False
  gem_p: float = 3.0

  @nn.compact
  def __call__(self, pixels):
    """pixels: uint8[B, H, W, 3] -> f32[B, N, latent_dim] (N = 1, or (H/2^S)^2 for spatial)."""
    x = pixels.astype(jnp.float32) / 255.0 - 0.5
    x = ConvStage(self.widths[0], name="stem")(x)
    for i, w in enumerate(self.widths[1:]):
      x = ResidualStage(w, name=f"stage_{i}")(x)
    if self.spatial:
      tokens = x.reshape(x.shape[0], -1, x.shape[-1])
    else:
      tokens = gem_pool(x, self.gem_p)[:, None, :]
    return ProjectionHead(self.latent_dim, name="head")(tokens)


def num_tokens(image_size, widths, spatial):
  """Tokens per frame the encoder outputs for `image_size` px images."""
  if not spatial:
    return 1
  size = image_size
  for _ in range(len(widths)):
    size = -(-size // 2)  # SAME padding with stride 2 rounds up
  return size * size
