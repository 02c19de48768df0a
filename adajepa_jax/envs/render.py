"""Pure-JAX anti-aliased top-down rasteriser.

Scenes are painted back to front from signed distance functions (SDF, world units, negative inside).
A pixel's coverage is `clip(0.5 - sdf / pixel_size, 0, 1)`, which gives one pixel of anti-aliasing.
Everything here is jittable and vmappable; nothing depends on MuJoCo.

World frame: x right, y up, the arena spans [0, extent] on both axes. Image row 0 is the top (y = extent).

Example:
  p = pixel_centres(64, 512.0)                                # (64, 64, 2)
  canvas = jnp.ones((64, 64, 3)) * background                 # float RGB in [0, 1]
  canvas = paint(canvas, coverage(disc_sdf(p, agent_xy, 15.), 512. / 64), AGENT_BLUE)
  image = to_uint8(canvas)                                    # (64, 64, 3) uint8
"""
import jax
import jax.numpy as jnp


def pixel_centres(size, extent):
  """World coordinates of pixel centres.

  Args:
    size: image side in pixels (static int).
    extent: arena side in world units.

  Returns:
    f32[size, size, 2]: (x, y) of each pixel centre; row 0 is the top of the arena.
  """
  c = (jnp.arange(size, dtype=jnp.float32) + 0.5) * (extent / size)
  x = jnp.broadcast_to(c[None, :], (size, size))
  y = jnp.broadcast_to(extent - c[:, None], (size, size))
  return jnp.stack([x, y], axis=-1)


def disc_sdf(p, centre, radius):
  """SDF of a disc. p: [..., 2], centre: [2], radius: scalar -> [...]."""
  return jnp.linalg.norm(p - centre, axis=-1) - radius


def box_sdf(p, centre, half_size, angle=0.0):
  """SDF of an oriented box.

  Args:
    p: [..., 2] query points.
    centre: [2] box centre.
    half_size: [2] half width and half height in the box frame.
    angle: rotation of the box frame (radians, counter-clockwise).

  Returns:
    [...] signed distance.
  """
  d = p - centre
  c, s = jnp.cos(angle), jnp.sin(angle)
  local = jnp.stack([c * d[..., 0] + s * d[..., 1], -s * d[..., 0] + c * d[..., 1]], axis=-1)
  q = jnp.abs(local) - half_size
  outside = jnp.linalg.norm(jnp.maximum(q, 0.0), axis=-1)
  inside = jnp.minimum(jnp.max(q, axis=-1), 0.0)
  return outside + inside


def boxes_sdf(p, boxes, mask, pose=(0.0, 0.0, 0.0)):
  """SDF of a union of boxes given in a body frame placed at `pose`.

  Args:
    p: [..., 2] query points (world frame).
    boxes: [K, 4] boxes as (cx, cy, half_w, half_h) in the body frame.
    mask: [K] bool, which boxes exist (padding rows are ignored).
    pose: (x, y, theta) of the body frame in the world.

  Returns:
    [...] signed distance to the union (a large positive value if no box exists).
  """
  x, y, th = pose[0], pose[1], pose[2]
  c, s = jnp.cos(th), jnp.sin(th)
  centres = jnp.stack([x + c * boxes[:, 0] - s * boxes[:, 1], y + s * boxes[:, 0] + c * boxes[:, 1]], -1)
  per_box = jax.vmap(lambda ctr, half: box_sdf(p, ctr, half, th))(centres, boxes[:, 2:4])
  per_box = jnp.where(mask.reshape((-1,) + (1,) * (per_box.ndim - 1)), per_box, 1e9)
  return jnp.min(per_box, axis=0)


def coverage(sdf, pixel_size):
  """Anti-aliased coverage in [0, 1] from an SDF in world units."""
  return jnp.clip(0.5 - sdf / pixel_size, 0.0, 1.0)


def paint(canvas, alpha, colour):
  """Alpha-composites a flat colour over the canvas. canvas [H, W, 3], alpha [H, W], colour [3]."""
  return canvas * (1.0 - alpha[..., None]) + jnp.asarray(colour, canvas.dtype) * alpha[..., None]


def to_uint8(canvas):
  """Float RGB in [0, 1] -> uint8 image."""
  return jnp.clip(jnp.round(canvas * 255.0), 0, 255).astype(jnp.uint8)
