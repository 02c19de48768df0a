"""Optional decoder from latents to images, trained on stop-gradient latents: visualisation only.

It never shapes the latent space (the training loss detaches its input), so planning and adaptation
ignore it. Params live in `params['decoder']` when `cfg.model.decoder` is True.

Upsampling is nearest-neighbour repeat + 3x3 conv with the width halving at each doubling: on XLA:CPU a
strided `ConvTranspose` at constant width was 5x slower per step (~27 s vs ~5.7 s for 256 frames at 64 px,
measured 2026-12-06 on the 2 shared cores), and the halving widths bring 64 frames to ~0.3 s.
"""
import flax.linen as nn
import jax.numpy as jnp


def _start_size(image_size):
  """Halves `image_size` while even and > 8; returns (start size, number of 2x upsamplings)."""
  size, ups = image_size, 0
  while size % 2 == 0 and size > 8:
    size, ups = size // 2, ups + 1
  return size, ups


class Decoder(nn.Module):
  """z tokens f32[B, N, D] -> image f32[B, H, W, 3] in [0, 1] (mean over tokens first).

  `width` channels at the start size, halved (down to 8) at each 2x upsampling.
  """
  image_size: int
  width: int = 64

  @nn.compact
  def __call__(self, z):
    s, ups = _start_size(self.image_size)
    w = self.width
    x = nn.Dense(s * s * w)(jnp.mean(z, axis=-2)).reshape(z.shape[0], s, s, w)
    for _ in range(ups):
      w = max(w // 2, 8)
      x = jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)
      x = nn.gelu(nn.GroupNorm(num_groups=8 if w % 8 == 0 else 1)(nn.Conv(w, (3, 3))(x)))
    return nn.sigmoid(nn.Conv(3, (3, 3))(x))
