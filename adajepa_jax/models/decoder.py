"""Optional decoder from latents to images, trained on stop-gradient latents: visualisation only.

It never shapes the latent space (the training loss detaches its input), so planning and adaptation
ignore it. Params live in `params['decoder']` when `cfg.model.decoder` is True.
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
  """z tokens f32[B, N, D] -> image f32[B, H, W, 3] in [0, 1] (mean over tokens first)."""
  image_size: int
  width: int = 32

  @nn.compact
  def __call__(self, z):
    s, ups = _start_size(self.image_size)
    x = nn.Dense(s * s * self.width)(jnp.mean(z, axis=-2)).reshape(z.shape[0], s, s, self.width)
    for _ in range(ups):
      x = nn.ConvTranspose(self.width, (4, 4), strides=(2, 2))(x)
      x = nn.gelu(nn.GroupNorm(num_groups=8 if self.width % 8 == 0 else 1)(x))
    return nn.sigmoid(nn.Conv(3, (3, 3))(x))
