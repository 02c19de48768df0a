"""The scripted PushT / PushObj policies: exploration pushes for offline data, and the expert-like pusher
(the `expert` goal rule and the expert share of offline data). Pure functions of a full state f32[7]
(agent xy, block xy, angle, agent velocity) and the task; `PushEnv.explore_action` / `expert_action` call them.
"""
import jax
import jax.numpy as jnp

from adajepa_jax.envs.push_geometry import ACTION_SCALE, AGENT_RADIUS, SCALE, block_radius, wrap_angle

# The expert-like pusher: a slow, noisy pusher, like the noisy replays of human demonstrations behind the
# reference PushT data (third_party/pusht_pushobj.md).
EXPERT_SPEED = 0.18                # |action| while pushing (x ACTION_SCALE = 18 reference units of offset)
EXPERT_APPROACH_SPEED = 0.5        # |action| while walking to (or around) the block
EXPERT_NOISE = 0.1                 # std of the Gaussian action noise
EXPERT_MOMENTUM = 0.5              # weight of the previous action
EXPERT_ROTATE = 0.35               # lateral push offset per radian of angle error (world units)


def explore(key, state_vec, task, prev_action):
  """Scripted pushes: head for a random point on the block (and beyond it), with noise, momentum and 15%
  uniform random actions. Returns f32[2] in [-1, 1]."""
  k_box, k_pt, k_noise, k_rand, k_u = jax.random.split(key, 5)
  logits = jnp.where(task.mask, 0.0, -jnp.inf)
  i = jax.random.categorical(k_box, logits)
  local = task.boxes[i, :2] + jax.random.uniform(k_pt, (2,), minval=-1.0, maxval=1.0) * task.boxes[i, 2:]
  th = state_vec[4]
  c, s = jnp.cos(th), jnp.sin(th)
  aim = state_vec[2:4] + jnp.array([c * local[0] - s * local[1], s * local[0] + c * local[1]])
  delta = aim - state_vec[:2]
  dist = jnp.linalg.norm(delta)
  heading = delta / jnp.maximum(dist, 1e-6) * jnp.minimum(1.0, dist / ACTION_SCALE + 0.5)
  heading = 0.7 * heading + 0.3 * prev_action + 0.3 * jax.random.normal(k_noise, (2,))
  rand = jax.random.uniform(k_rand, (2,), minval=-1.0, maxval=1.0)
  act = jnp.where(jax.random.uniform(k_u) < 0.15, rand, heading)
  return jnp.clip(act, -1.0, 1.0)

def expert(key, state_vec, task, target, prev_action):
  """A goal-directed pusher (quasi-static pushing heuristics), slow and noisy like human demonstrations.

  It pushes the block along the line to the target position, from behind the block's support point in that
  direction, offset sideways in proportion to the angle error so the push also turns the block; when it is
  on the wrong side of the block it first walks around it. Step sizes EXPERT_SPEED, Gaussian noise
  EXPERT_NOISE, momentum EXPERT_MOMENTUM. Returns f32[2] in [-1, 1].
  """
  agent, block, theta = state_vec[:2], state_vec[2:4], state_vec[4]
  err = target[:2] - block
  u = err / jnp.maximum(jnp.linalg.norm(err), 1e-6)           # push direction
  n = jnp.array([-u[1], u[0]])                                  # its left normal
  # Support distance of the block behind its centre along -u (box corners in the world frame).
  c, s_ = jnp.cos(theta), jnp.sin(theta)
  signs = jnp.array([[1, 1], [1, -1], [-1, 1], [-1, -1]], jnp.float32)
  local = task.boxes[:, None, :2] + signs[None] * task.boxes[:, None, 2:]             # [K, 4, 2]
  world = jnp.stack([c * local[..., 0] - s_ * local[..., 1], s_ * local[..., 0] + c * local[..., 1]], -1)
  back = jnp.max(jnp.where(task.mask[:, None], world @ -u, -jnp.inf))
  radius = block_radius(task)
  # Offset o along n makes torque -o (unit push along u): turn towards the target angle.
  offset = jnp.clip(-EXPERT_ROTATE * wrap_angle(target[2] - theta), -0.4 * radius, 0.4 * radius)
  rel = agent - block
  behind = rel @ -u > back + 0.3 * AGENT_RADIUS
  pre = block - u * (back + AGENT_RADIUS + 5 * SCALE) + n * offset
  lined_up = behind & (jnp.abs(rel @ n - offset) < 20 * SCALE)
  side = jnp.where(rel @ n >= 0, 1.0, -1.0)
  # Walk around: to the block's side first (while ahead of it), then to a point behind it on that side.
  clear = radius + AGENT_RADIUS + 10 * SCALE
  around = block + n * side * clear - u * jnp.where(rel @ u > 0, 0.0, back + AGENT_RADIUS + 10 * SCALE)
  waypoint = jnp.where(lined_up, agent + u * ACTION_SCALE, jnp.where(behind, pre, around))
  delta = (waypoint - agent) / ACTION_SCALE
  speed = jnp.where(lined_up, EXPERT_SPEED, EXPERT_APPROACH_SPEED)
  delta = delta / jnp.maximum(jnp.linalg.norm(delta) / speed, 1.0)
  act = (1 - EXPERT_MOMENTUM) * delta + EXPERT_MOMENTUM * prev_action
  act = act + EXPERT_NOISE * jax.random.normal(key, (2,))
  return jnp.clip(act, -1.0, 1.0)
