"""Visual, proprio and action encoders (flax linen; only `world_model.py` touches them directly).

Visual encoder: a residual conv net trained from scratch (the paper's "small ResNet"):
  stem     Conv3x3/2 -> GroupNorm -> GELU                          ("encfirst")
  stage_i  residual block Conv3x3/2-GN-GELU-Conv3x3-GN (+ 1x1/2 projection skip) -> GELU
  pooling  GeM (generalised mean, fixed p) to one global vector      (global variant only)
  head     Dense -> GELU -> Dense -> LayerNorm, applied per token    ("enclast")
The spatial variant skips pooling and returns the final feature map as (h*w) patch tokens.

The trunk (stem, stages, pooling) and the head are separate modules so that a caller can keep the trunk's
output ("features", f32[N, widths[-1]]) of frames it has already seen while only the head is being adapted.
Their params sit side by side under one tree: {'stem', 'stage_0', .., 'head'}.
"""
from typing import Sequence

import flax.linen as nn
import jax
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


class EncoderTrunk(nn.Module):
  """Stem, residual stages and (global variant) GeM pooling.

  Attributes:
    widths: channels of the stem then of each residual stage (len(widths) - 1 stages).
    spatial: False -> one pooled token; True -> h*w patch tokens.
    gem_p: the GeM exponent.
  """
  widths: Sequence[int]
  spatial: bool = False
  gem_p: float = 3.0

  @nn.compact
  def __call__(self, pixels):
    """pixels: uint8[B, H, W, 3] -> features f32[B, N, widths[-1]] (N = 1, or (H/2^S)^2 for spatial)."""
    x = pixels.astype(jnp.float32) / 255.0 - 0.5
    x = ConvStage(self.widths[0], name="stem")(x)
    for i, w in enumerate(self.widths[1:]):
      x = ResidualStage(w, name=f"stage_{i}")(x)
    if self.spatial:
      return x.reshape(x.shape[0], -1, x.shape[-1])
    return gem_pool(x, self.gem_p)[:, None, :]


class VisualEncoder:
  """The residual conv encoder: `trunk` then the per-token `head`, over one param tree.

  params = {'stem', 'stage_0', .., 'head'} (the trunk's entries and 'head').
  """

  def __init__(self, widths, latent_dim, spatial=False, gem_p=3.0):
    self.trunk = EncoderTrunk(tuple(widths), spatial, gem_p)
    self.head = ProjectionHead(latent_dim)
    self.feature_dim = int(widths[-1])

  def init(self, key, pixels):
    """Params for pixels uint8[B, H, W, 3]."""
    k_trunk, k_head = jax.random.split(key)
    trunk = self.trunk.init(k_trunk, pixels)["params"]
    return dict(trunk, head=self.head.init(k_head, self.trunk.apply({"params": trunk}, pixels))["params"])

  def features(self, params, pixels):
    """uint8[B, H, W, 3] -> f32[B, N, feature_dim] (the trunk; reads every entry but 'head')."""
    return self.trunk.apply({"params": {k: v for k, v in params.items() if k != "head"}}, pixels)

  def project(self, params, features):
    """f32[B, N, feature_dim] -> f32[B, N, latent_dim] (the head)."""
    return self.head.apply({"params": params["head"]}, features)


def num_tokens(image_size, widths, spatial):
  """Tokens per frame the encoder outputs for `image_size` px images."""
  if not spatial:
    return 1
  size = image_size
  for _ in range(len(widths)):
    size = -(-size // 2)  # SAME padding with stride 2 rounds up
  return size * size
