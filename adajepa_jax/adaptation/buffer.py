"""Fixed-size online buffers of transitions, carried through the MPC `lax.scan`.

A buffer holds N windows in the loader's batch structure (e.g. {'pixels': uint8[N, h+1, H, W, 3],
'proprio': f32[N, h+1, P], 'actions': f32[N, h, A], 'valid': bool[N, h+1], 'target_mask': bool[N, h]}), a
weight per slot (1 when filled, 0 when empty) and a score per slot (the window's prediction error when it
was added, or as last rescored). The MPC episode stores one window per executed chunk whose `target_mask`
selects only its newest transition (the context is there to predict it), so each slot is one transition and
the loss counts each stored transition once. Policies:
  recent     the last N transitions (a ring buffer; the paper's default, N = 5)
  hard       the N transitions with the largest score; the newest is always inserted, evicting the
             lowest-scored entry
  none       only the newest transition (size 1)
  unbounded  every transition of the episode (a ring sized to the replan budget, so nothing is evicted)
"""
import flax.struct
import jax
import jax.numpy as jnp

from adajepa_jax.errors import UsageError

POLICIES = ("recent", "hard", "none", "unbounded")


@flax.struct.dataclass
class Buffer:
  """Online buffer state (a pytree; all shapes fixed).

  Attributes:
    windows: pytree of arrays with leading axis N (the loader's batch structure).
    weight: f32[N] 1 for filled slots, 0 for empty ones (pass as the loss batch's `weight`).
    score: f32[N] per-slot prediction error (used by the `hard` policy).
    count: i32[] number of windows ever added.
  """
  windows: dict
  weight: jax.Array
  score: jax.Array
  count: jax.Array

  @property
  def size(self) -> int:
    """N, the number of slots (static)."""
    return self.weight.shape[0]

  def batch(self) -> dict:
    """The loss batch: `windows` plus `weight` f32[N] (empty slots contribute nothing)."""
    if not isinstance(self.windows, dict):
      raise ValueError(f"Buffer.batch needs dict windows; got {type(self.windows).__name__}")
    return dict(self.windows, weight=self.weight)


def _check_policy(policy):
  if policy not in POLICIES:
    raise UsageError(f"Unknown buffer policy {policy!r}; valid policies: {', '.join(POLICIES)}")


def buffer_size(policy: str, size: int, replans: int) -> int:
  """The number of slots a policy needs: `size` for recent/hard, 1 for none, `replans` for unbounded."""
  _check_policy(policy)
  return {"recent": size, "hard": size, "none": 1, "unbounded": replans}[policy]


def buffer_init(example_window: dict, size: int) -> Buffer:
  """An empty buffer with `size` slots shaped like `example_window`.

  Args:
    example_window: pytree of arrays for ONE window (no leading N axis), e.g. {'pixels': uint8[h+1, H, W, 3],
      'proprio': f32[h+1, P], 'actions': f32[h, A], 'valid': bool[h+1]}. Values are ignored.
    size: N >= 1.

  Returns:
    Buffer with zero-filled windows, zero weights, scores and count.
  """
  if int(size) < 1:
    raise ValueError(f"buffer size={size!r} must be >= 1")
  windows = jax.tree_util.tree_map(
      lambda x: jnp.zeros((int(size),) + jnp.shape(x), jnp.asarray(x).dtype), example_window)
  return Buffer(windows=windows, weight=jnp.zeros((size,), jnp.float32),
                score=jnp.zeros((size,), jnp.float32), count=jnp.zeros((), jnp.int32))


def _slot(buffer, policy):
  """The slot index (i32[]) the next window goes to."""
  n = buffer.size
  if policy == "none":
    return jnp.zeros((), jnp.int32)
  if policy == "hard":
    # Empty slots first (score -inf), else the lowest-scored entry; ties take the lowest index.
    effective = jnp.where(buffer.weight > 0, buffer.score, -jnp.inf)
    return jnp.argmin(effective).astype(jnp.int32)
  return (buffer.count % n).astype(jnp.int32)


def buffer_add(buffer: Buffer, window: dict, score: jax.typing.ArrayLike, policy: str) -> Buffer:
  """Adds one window under `policy` (pure; jittable, vmappable, fixed shapes).

  Args:
    buffer: Buffer.
    window: pytree like `buffer.windows` without the leading N axis.
    score: f32[] the window's prediction error (used by `hard`; pass 0 otherwise).
    policy: one of POLICIES (static).

  Returns:
    The updated Buffer. With `none`, every other slot is emptied (weight 0).
  """
  _check_policy(policy)
  slot = _slot(buffer, policy)
  windows = jax.tree_util.tree_map(
      lambda buf, x: jax.lax.dynamic_update_index_in_dim(buf, jnp.asarray(x, buf.dtype), slot, 0),
      buffer.windows, window)
  if policy == "none":
    weight = jax.nn.one_hot(slot, buffer.size, dtype=jnp.float32)
  else:
    weight = buffer.weight.at[slot].set(1.0)
  score = buffer.score.at[slot].set(jnp.asarray(score, jnp.float32))
  return buffer.replace(windows=windows, weight=weight, score=score, count=buffer.count + 1)


def buffer_rescore(buffer: Buffer, scores: jax.typing.ArrayLike) -> Buffer:
  """Replaces the per-slot scores (e.g. prediction errors under the current params), f32[N]."""
  scores = jnp.asarray(scores, jnp.float32)
  if scores.shape != buffer.score.shape:
    raise ValueError(f"scores must have shape {buffer.score.shape}; got {scores.shape}")
  return buffer.replace(score=scores)
