"""Fixed-size online buffers of transitions, carried through the MPC `lax.scan`.

A buffer holds N windows in the loader's batch structure (e.g. {'pixels': uint8[N, h+1, H, W, 3],
'proprio': f32[N, h+1, P], 'actions': f32[N, h, A], 'valid': bool[N, h+1], 'target_mask': bool[N, h]}), a
weight per slot (1 when filled, 0 when empty) and a score per slot (the window's prediction error when it
was added, or as last rescored). The MPC episode stores one window per executed chunk whose `target_mask`
selects only its newest transition (the context is there to predict it), so each slot is one transition.
The slot weights say how the buffer's loss weighs them (WEIGHTINGS):
  uniform    each stored transition once (recent-5: the newest weighs 1/5)
  merged     as the authors' merged sequence: n contiguous transitions form one sequence of n+1 frames, over
             which windows of `history` transitions slide; a transition counts once per window covering it
             (recent-5, history 3: 1, 2, 3, 2, 1 out of 9 from oldest to newest; n <= history: one window, all
             equal). It needs a contiguous buffer: recent, none or unbounded.
Policies:
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
WEIGHTINGS = ("uniform", "merged")


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


def check_buffer(policy: str, weighting: str = "uniform") -> None:
  """Raises UsageError for an unknown policy or weighting, or `merged` on a non-contiguous (`hard`) buffer."""
  _check_policy(policy)
  if weighting not in WEIGHTINGS:
    raise UsageError(f"Unknown buffer weighting {weighting!r}; valid weightings: {', '.join(WEIGHTINGS)}")
  if weighting == "merged" and policy == "hard":
    raise UsageError("Buffer weighting 'merged' weighs a contiguous segment of transitions; the 'hard' policy "
                     "keeps scattered ones: use weighting 'uniform' with 'hard', or one of recent, none, unbounded")


def merged_weights(count: jax.typing.ArrayLike, size: int, history: int) -> jax.Array:
  """Per-slot loss weights of a ring buffer under the `merged` weighting (see the module docstring).

  Args:
    count: i32[] transitions ever added (slot `(count - 1) % size` holds the newest).
    size: N, the number of slots.
    history: transitions per window (the predictor's history).

  Returns:
    f32[N]: the number of windows covering each filled slot's transition; 0 for empty slots.
  """
  n = jnp.minimum(count, size)                               # filled slots
  age = (count - 1 - jnp.arange(size)) % size                # 0 = newest
  i = n - age                                                # 1 = oldest .. n = newest
  windows = jnp.minimum(i - 1, n - history) - jnp.maximum(0, i - history) + 1
  covered = jnp.where(n > history, windows, 1)
  return jnp.where(age < n, covered, 0).astype(jnp.float32)


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


def buffer_add(buffer: Buffer, window: dict, score: jax.typing.ArrayLike, policy: str,
               weighting: str = "uniform") -> Buffer:
  """Adds one window under `policy` (pure; jittable, vmappable, fixed shapes).

  Args:
    buffer: Buffer.
    window: pytree like `buffer.windows` without the leading N axis (its 'actions' f32[h, A] give the history).
    score: f32[] the window's prediction error (used by `hard`; pass 0 otherwise).
    policy: one of POLICIES (static).
    weighting: one of WEIGHTINGS (static): the filled slots' loss weights.

  Returns:
    The updated Buffer. With `none`, every other slot is emptied (weight 0).
  """
  check_buffer(policy, weighting)
  slot = _slot(buffer, policy)
  windows = jax.tree_util.tree_map(
      lambda buf, x: jax.lax.dynamic_update_index_in_dim(buf, jnp.asarray(x, buf.dtype), slot, 0),
      buffer.windows, window)
  if policy == "none":
    weight = jax.nn.one_hot(slot, buffer.size, dtype=jnp.float32)
  elif weighting == "merged":
    weight = merged_weights(buffer.count + 1, buffer.size, buffer.windows["actions"].shape[1])
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
