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
A `BufferRule` holds a policy and weighting as arrays (slots in use, hard, merged), so that episodes of one
compiled program may each follow their own (`buffer_rule`; a grid of settings, `mpc.make_episode(settings=)`):
a buffer sized for the largest rule serves every smaller one, its slots beyond the rule's capacity left empty.
"""
from typing import Optional, Union

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


@flax.struct.dataclass
class BufferRule:
  """A policy and weighting as data: capacity i32[] (slots in use, from slot 0; <= the buffer's size), hard
  bool[] (keep the highest-scored windows instead of the newest), merged bool[] (the merged weighting)."""
  capacity: jax.Array
  hard: jax.Array
  merged: jax.Array


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


def merged_weights(count: jax.typing.ArrayLike, size: jax.typing.ArrayLike, history: int,
                   slots: Optional[int] = None) -> jax.Array:
  """Per-slot loss weights of a ring buffer under the `merged` weighting (see the module docstring).

  Args:
    count: i32[] transitions ever added (slot `(count - 1) % size` holds the newest).
    size: the ring's capacity (int or i32[]).
    history: transitions per window (the predictor's history).
    slots: the buffer's number of slots N >= size (static; default `size`); slots from `size` on stay empty.

  Returns:
    f32[N]: the number of windows covering each filled slot's transition; 0 for empty slots.
  """
  slot = jnp.arange(size if slots is None else slots)
  n = jnp.minimum(count, size)                               # filled slots
  age = (count - 1 - slot) % size                            # 0 = newest
  i = n - age                                                # 1 = oldest .. n = newest
  windows = jnp.minimum(i - 1, n - history) - jnp.maximum(0, i - history) + 1
  covered = jnp.where(n > history, windows, 1)
  return jnp.where((age < n) & (slot < size), covered, 0).astype(jnp.float32)


def buffer_size(policy: str, size: int, replans: int) -> int:
  """The number of slots a policy needs: `size` for recent/hard, 1 for none, `replans` for unbounded."""
  _check_policy(policy)
  return {"recent": size, "hard": size, "none": 1, "unbounded": replans}[policy]


def buffer_rule(policy: str, size: int, replans: int, weighting: str = "uniform") -> BufferRule:
  """The `BufferRule` of a policy (`buffer_size(policy, size, replans)` slots in use) and weighting."""
  check_buffer(policy, weighting)
  return BufferRule(capacity=jnp.int32(buffer_size(policy, size, replans)), hard=jnp.bool_(policy == "hard"),
                    merged=jnp.bool_(weighting == "merged"))


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


def buffer_add(buffer: Buffer, window: dict, score: jax.typing.ArrayLike, policy: Union[str, BufferRule],
               weighting: str = "uniform") -> Buffer:
  """Adds one window under `policy` (pure; jittable, vmappable, fixed shapes).

  Args:
    buffer: Buffer.
    window: pytree like `buffer.windows` without the leading N axis (its 'actions' f32[h, A] give the history).
    score: f32[] the window's prediction error (used by `hard`; pass 0 otherwise).
    policy: one of POLICIES (static; `none` uses slot 0 only, the others every slot), or a `BufferRule`
      (traced; it carries its weighting).
    weighting: one of WEIGHTINGS (static; with a policy name): the filled slots' loss weights.

  Returns:
    The updated Buffer.
  """
  uniform_only = isinstance(policy, str) and weighting == "uniform"
  if isinstance(policy, str):
    check_buffer(policy, weighting)
    policy = BufferRule(capacity=jnp.int32(1 if policy == "none" else buffer.size),
                        hard=jnp.bool_(policy == "hard"), merged=jnp.bool_(weighting == "merged"))
  in_use = jnp.arange(buffer.size) < policy.capacity
  # hard: empty slots first (score -inf), else the lowest-scored entry, ties to the lowest index; recent: a ring.
  effective = jnp.where(in_use, jnp.where(buffer.weight > 0, buffer.score, -jnp.inf), jnp.inf)
  slot = jnp.where(policy.hard, jnp.argmin(effective), buffer.count % policy.capacity).astype(jnp.int32)
  windows = jax.tree_util.tree_map(
      lambda buf, x: jax.lax.dynamic_update_index_in_dim(buf, jnp.asarray(x, buf.dtype), slot, 0),
      buffer.windows, window)
  weight = buffer.weight.at[slot].set(1.0)
  if not uniform_only:
    merged = merged_weights(buffer.count + 1, policy.capacity, buffer.windows["actions"].shape[1], buffer.size)
    weight = jnp.where(policy.merged, merged, weight)
  score = buffer.score.at[slot].set(jnp.asarray(score, jnp.float32))
  return buffer.replace(windows=windows, weight=weight, score=score, count=buffer.count + 1)


def buffer_rescore(buffer: Buffer, scores: jax.typing.ArrayLike) -> Buffer:
  """Replaces the per-slot scores (e.g. prediction errors under the current params), f32[N]."""
  scores = jnp.asarray(scores, jnp.float32)
  if scores.shape != buffer.score.shape:
    raise ValueError(f"scores must have shape {buffer.score.shape}; got {scores.shape}")
  return buffer.replace(score=scores)
