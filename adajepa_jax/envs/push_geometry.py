"""PushT / PushObj geometry shared by the env and its scripted policies: the arena, agent and success
tolerances in world units (reference units / 100; third_party/pusht_pushobj.md), angle wrapping, block reach."""
import jax.numpy as jnp
import numpy as np

REF_ARENA = 512.0
ARENA = 5.12                       # world units
SCALE = ARENA / REF_ARENA          # world units per reference unit
WALL = 7.0 * SCALE                 # inner face of the walls (gym-pusht: segments at 5 with radius 2)
AGENT_RADIUS = 24.0 * SCALE        # >= 3 px at 64 px (the reference disc is 15; see third_party)
ACTION_SCALE = 100.0 * SCALE       # relative target offset for |action| = 1
SUCCESS_POS = 20.0 * SCALE         # L2 over (agent xy, block xy)
SUCCESS_ANGLE = np.pi / 9.0
ANCHOR_POSE = (256.0 * SCALE, 256.0 * SCALE, np.pi / 4.0)


def wrap_angle(angle, symmetry=1):
  """`angle` wrapped to [-period / 2, period / 2), period = 2 pi / symmetry (i32, broadcastable)."""
  period = 2 * jnp.pi / jnp.asarray(symmetry, jnp.float32)
  return jnp.mod(angle + period / 2, period) - period / 2


def block_radius(task):
  """The block's reach from its centre: the largest box-corner distance, f32[]."""
  corner = jnp.linalg.norm(jnp.abs(task.boxes[:, :2]) + task.boxes[:, 2:], axis=-1)
  return jnp.max(jnp.where(task.mask, corner, 0.0))
